"""Word-level keep/drop labels.

A word is a run of non-whitespace (src/protect.rs `words`); labels are one bit per word of
the *text* (1 = keep). Two label sources:

* synthetic pairs: a word is kept iff it survives in the reference, found by a longest
  common subsequence over words (`lcs_keep`). The generators build the reference by
  deleting words, so the LCS recovers exactly that deletion up to ties between equal words.
* real corpus records (training/data/dev.jsonl.gz), labelled where the model meets them:
  the record is piped through the release binary (`kompress --domain <domain>`, model
  off), so the text is what the structural passes leave, and a word of it is kept iff
  (a) the must-keep rules protect it, or
  (b) the filler teacher (filler.py) does not call it filler.
  The structural passes' own decisions were the first label source tried: aligned to the
  raw text they keep ~97% of the words (whole redundant lines go, nothing inside a line),
  so they teach almost only "keep", and the runtime has already applied them anyway.
  "What the agent used later in the trajectory" is not available: dev.jsonl.gz holds
  single tool results with their `source` (instance) but no trajectories.

Records are split into train/validation by a SHA-256 of their `source` (80/20), so no
instance is in both.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from . import filler
from .must_keep import gapped_words, is_protected, words

ROOT = Path(__file__).resolve().parents[2]
# The dev corpus in the repository (training/data/README.md); KOMPRESS_CORPUS or --corpus
# (this module's command line) points elsewhere.
CORPUS = Path(os.environ.get("KOMPRESS_CORPUS", ROOT / "training" / "data" / "dev.jsonl.gz"))
VAL_PERCENT = 20


# ---------------------------------------------------------------- alignment


def lcs_keep(a: list[str], b: list[str]) -> list[bool]:
    """For each word of `a`, whether it is part of a longest common subsequence with `b`.

    Bit-parallel LCS (Hyyrö 2004): row i is an m-bit vector whose zero bits mark where
    L[i][j] increases with j, so L[i][j] = j - popcount(V_i & (2^j - 1)). Rows are kept for
    the backtrack, which walks from (n, m): a match is taken whenever the words are equal
    (always optimal), otherwise the step that keeps L.
    """
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return [False] * n
    masks: dict[str, int] = {}
    for j, w in enumerate(b):
        masks[w] = masks.get(w, 0) | (1 << j)
    full = (1 << m) - 1
    rows = [full]
    v = full
    for w in a:
        u = v & masks.get(w, 0)
        v = ((v + u) | (v - u)) & full
        rows.append(v)

    def L(i: int, j: int) -> int:
        return j - (rows[i] & ((1 << j) - 1)).bit_count()

    keep = [False] * n
    i, j = n, m
    while i > 0 and j > 0:
        if a[i - 1] == b[j - 1]:
            keep[i - 1] = True
            i -= 1
            j -= 1
        elif L(i - 1, j) >= L(i, j - 1):
            i -= 1
        else:
            j -= 1
    return keep


def pair_labels(text: str, reference: str) -> tuple[list[int], list[int]]:
    """(keep, must) per word of `text` for a (text, reference) pair."""
    tw = words(text)
    keep = lcs_keep(tw, words(reference))
    must = [int(is_protected(w)) for w in tw]
    return [int(k) for k in keep], must


# ---------------------------------------------------------------- split


def split_of(source: str) -> str:
    h = int.from_bytes(hashlib.sha256(source.encode()).digest()[:8], "big")
    return "val" if h % 100 < VAL_PERCENT else "train"


# ---------------------------------------------------------------- real records


def structural_output(binary: Path, domain: str, text: str, home: str) -> str:
    env = dict(os.environ, KOMPRESS_HOME=home, KOMPRESS_MIN_CHARS="0", KOMPRESS_MIN_SAVING="0")
    env.pop("KOMPRESS_DISABLE", None)
    r = subprocess.run([str(binary), "--domain", domain], input=text.encode(),
                       capture_output=True, env=env, timeout=60, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"kompress failed ({r.returncode}): {r.stderr.decode()[:500]}")
    return r.stdout.decode("utf-8", errors="replace")


def load_corpus(path: Path = CORPUS) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def label_real(records: list[dict], binary: Path, progress: bool = True) -> list[dict]:
    """Label each record as the model meets it at run time.

    The model pass runs *after* the structural passes, so a row's text is the record's
    text after them (the release binary with the model off), and its labels are
    keep = must-keep OR not filler (filler.py). Training on the raw text instead would
    teach the model to redo the passes' line removals and leave a training-production gap.
    """
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    it = records
    if progress and tqdm is not None:
        it = tqdm(records, desc="label real records", unit="rec", file=sys.stderr)
    out = []
    with tempfile.TemporaryDirectory(prefix="kompress-label-") as home:
        for r in it:
            if not words(r["text"]):
                continue
            text = structural_output(binary, r["domain"], r["text"], home)
            tw = words(text)
            if not tw:
                continue
            teacher = filler.keep_labels(text)
            must = [int(is_protected(w)) for w in tw]
            keep = [int(t or m) for t, m in zip(teacher, must)]
            out.append({
                "id": r["id"], "source": r["source"], "domain": r["domain"],
                "split": split_of(r["source"]), "text": text,
                "raw_words": len(words(r["text"])),
                "keep": "".join(map(str, keep)), "must": "".join(map(str, must)),
            })
    return out


def stats(rows: list[dict]) -> dict:
    """Per (domain, split): words, keep rate, must-keep share, the share of the raw words
    the structural passes leave (struct_keep_rate), records with a dropped word."""
    acc: dict = defaultdict(lambda: defaultdict(int))
    for r in rows:
        for key in ((r["domain"], r["split"]), ("ALL", r["split"])):
            a = acc[key]
            a["records"] += 1
            a["words"] += len(r["keep"])
            a["keep"] += r["keep"].count("1")
            a["must"] += r["must"].count("1")
            a["raw_words"] += r.get("raw_words", len(r["keep"]))
            a["records_with_drops"] += int("0" in r["keep"])
    out = {}
    for (dom, split), a in sorted(acc.items()):
        w = max(a["words"], 1)
        out[f"{dom}/{split}"] = {
            "records": a["records"], "words": a["words"],
            "keep_rate": round(a["keep"] / w, 4), "must_share": round(a["must"] / w, 4),
            "struct_keep_rate": round(a["words"] / max(a["raw_words"], 1), 4),
            "records_with_drops": a["records_with_drops"],
        }
    return out


def format_stats(st: dict) -> str:
    cols = ["records", "words", "keep_rate", "must_share", "struct_keep_rate",
            "records_with_drops"]
    lines = ["%-26s" % "domain/split" + "".join("%12s" % c[:12] for c in cols)]
    for k, v in st.items():
        lines.append("%-26s" % k + "".join("%12s" % v[c] for c in cols))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Label the real corpus and print statistics.")
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "kompress"))
    ap.add_argument("--out", help="write labeled records (JSON Lines) here")
    ap.add_argument("--limit", type=int, default=0, help="only the first N records")
    ap.add_argument("--corpus", default=str(CORPUS),
                    help="corpus in the dev format (default training/data/dev.jsonl.gz)")
    args = ap.parse_args(argv)
    recs = load_corpus(Path(args.corpus))
    if args.limit:
        recs = recs[: args.limit]
    rows = label_real(recs, Path(args.binary))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(format_stats(stats(rows)))


if __name__ == "__main__":
    main()
