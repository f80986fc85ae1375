"""Word-level keep/drop labels.

A word is a run of non-whitespace (src/protect.rs `words`); labels are one bit per word of
the *text* (1 = keep). Two label sources:

* synthetic pairs: a word is kept iff it survives in the reference, found by a longest
  common subsequence over words (`lcs_keep`). The generators build the reference by
  deleting words, so the LCS recovers exactly that deletion up to ties between equal words.
* real corpus records (shared/corpus/dev.jsonl.gz): the union of
  (a) the must-keep rules (a protected word is always kept), and
  (b) the structural passes' decisions: the record is piped through the release binary
      (`kompress --domain <domain>`, model off since model/ holds no weights) and a text
      word is kept iff the LCS aligns it to a word of the output.
  (c) "what the agent used later in the trajectory" is not available: dev.jsonl.gz holds
      single tool results with their `source` (instance) but no trajectories (no later
      assistant turns), so this source cannot be computed from it.

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

from .must_keep import gapped_words, is_protected, words

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("KOMPRESS_CORPUS", "/work/shared/corpus/dev.jsonl.gz"))
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


def same_json(a: str, b: str) -> bool:
    """True when both texts parse as JSON to equal values (a lossless re-serialisation)."""
    if a == b or not b.lstrip().startswith(("{", "[")):
        return False
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return False


def load_corpus(path: Path = CORPUS) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def label_real(records: list[dict], binary: Path, progress: bool = True) -> list[dict]:
    """Label each record: keep = must-keep OR kept by the structural passes."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    it = records
    if progress and tqdm is not None:
        it = tqdm(records, desc="structural labels", unit="rec", file=sys.stderr)
    out = []
    with tempfile.TemporaryDirectory(prefix="kompress-label-") as home:
        for r in it:
            text = r["text"]
            tw = words(text)
            if not tw:
                continue
            compressed = structural_output(binary, r["domain"], text, home)
            if same_json(text, compressed):
                # The JSON pass re-serialises (pretty -> compact) without dropping anything;
                # word alignment would call every re-spaced word dropped.
                struct = [True] * len(tw)
            else:
                struct = lcs_keep(tw, words(compressed))
            must = [int(is_protected(w)) for w in tw]
            keep = [int(s or m) for s, m in zip(struct, must)]
            out.append({
                "id": r["id"], "source": r["source"], "domain": r["domain"],
                "split": split_of(r["source"]), "text": text,
                "keep": "".join(map(str, keep)), "must": "".join(map(str, must)),
                "struct": "".join("1" if s else "0" for s in struct),
            })
    return out


def stats(rows: list[dict]) -> dict:
    """Per (domain, split): words, keep rate, must-keep share, structural keep rate, and how
    many words only the must-keep rules saved (structural dropped a protected word)."""
    acc: dict = defaultdict(lambda: defaultdict(int))
    for r in rows:
        for key in ((r["domain"], r["split"]), ("ALL", r["split"])):
            a = acc[key]
            a["records"] += 1
            a["words"] += len(r["keep"])
            a["keep"] += r["keep"].count("1")
            a["must"] += r["must"].count("1")
            s = r.get("struct")
            if s:
                a["struct_keep"] += s.count("1")
                a["rescued"] += sum(1 for x, y in zip(s, r["must"]) if x == "0" and y == "1")
                a["compressed_records"] += int("0" in s)
    out = {}
    for (dom, split), a in sorted(acc.items()):
        w = max(a["words"], 1)
        out[f"{dom}/{split}"] = {
            "records": a["records"], "words": a["words"],
            "keep_rate": round(a["keep"] / w, 4), "must_share": round(a["must"] / w, 4),
            "struct_keep_rate": round(a["struct_keep"] / w, 4),
            "must_rescued_share": round(a["rescued"] / w, 4),
            "records_with_drops": a["compressed_records"],
        }
    return out


def format_stats(st: dict) -> str:
    cols = ["records", "words", "keep_rate", "must_share", "struct_keep_rate",
            "must_rescued_share", "records_with_drops"]
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
    args = ap.parse_args(argv)
    recs = load_corpus()
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
