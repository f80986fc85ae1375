"""What bounds the line model, measured on the held-out repositories of the line data.

    python training/line_analysis.py --data training/runs/lines/lines.jsonl [--model training/runs/lines/lines.json]

- **Recall over what**: used items per domain, so that recall over all outputs (reads kept
  whole) and over non-read outputs can be told apart.
- **Oracles** for the line pass alone (same forced lines and markers as `choose`/`apply`):
  the line oracle keeps every seen line holding a used item; the set-cover oracle keeps, by
  greedy weighted set cover, the fewest tokens that hold every used item once.
- **Discrimination** (with `--model`): per kind of command, AUC and average precision of
  the model's scores (with the intent) on held-out seen lines, against both labels: a line
  holding any used item, and a line holding the first occurrence of one.

Reductions are token-weighted (tokens of dropped lines minus marker tokens, over all
tokens) with the mean per output beside them. The numbers are in docs/labels.md and
model/MODEL_CARD.md.
"""

import argparse
import json
from collections import defaultdict

import numpy as np

import line_model as lm


def read_all(path):
    """Every output of the line data (not only the line-selected ones)."""
    with open(path) as f:
        header = json.loads(f.readline())
        rows = [json.loads(line) for line in f]
    blank = header["features"].index("blank")
    for r in rows:
        r["blank"] = [x[blank] for x in r["x"]]
    return header, rows


def set_cover(r, keep):
    keep = keep.copy()
    covered = set()
    for k, items in zip(keep, r["items"]):
        if k:
            covered.update(items)
    need = set(range(r["n_used"])) - covered
    tokens = r["tokens"]
    while need:
        best, score = None, 0.0
        for i, items in enumerate(r["items"]):
            if keep[i] or not items:
                continue
            gain = len(need.intersection(items))
            if gain and gain / tokens[i] > score:
                best, score = i, gain / tokens[i]
        if best is None:
            break
        keep[best] = True
        need -= set(r["items"][best])
    return keep


def kept_outcome(r, keep):
    tokens = np.asarray(r["tokens"])
    keep, added = lm.apply_markers(keep, tokens)
    kept = set()
    for k, items in zip(keep, r["items"]):
        if k:
            kept.update(items)
    return r["n_used"], len(kept), int(tokens.sum()), int(tokens[~keep].sum()) - added


def auc(y, p):
    y = np.asarray(y, bool)
    p = np.asarray(p)
    _, inv, cnt = np.unique(p, return_inverse=True, return_counts=True)
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    ranks = (np.bincount(inv, weights=ranks) / cnt)[inv]  # ties share their mean rank
    pos = y.sum()
    neg = len(y) - pos
    return (ranks[y].sum() - pos * (pos + 1) / 2) / max(pos * neg, 1)


def average_precision(y, p):
    y = np.asarray(y, bool)[np.argsort(-np.asarray(p))]
    precision = np.cumsum(y) / np.arange(1, len(y) + 1)
    return float((precision * y).sum() / max(y.sum(), 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="output of `kompress model line-data`")
    ap.add_argument("--model", help="a lines.json to measure the discrimination of")
    args = ap.parse_args()
    header, rows = read_all(args.data)
    train_repos = set(header["train_repos"])
    held = [r for r in rows if r["repo"] not in train_repos]

    used = defaultdict(int)
    per = defaultdict(list)
    for r in held:
        groups = ["all", r["domain"]] + ([] if r["domain"] == "file_read" else ["non_read"])
        for g in groups:
            used[g] += r["n_used"]
        selected = lm.line_selected(r)
        forced = lm.forced(r)
        whole = np.ones(len(r["y"]), dtype=bool)
        line = (np.asarray(r["y"], dtype=bool) | forced) if selected else whole
        cover = set_cover(r, forced) if selected else whole
        for g in groups:
            per[g].append((kept_outcome(r, line), kept_outcome(r, cover)))
    print(f"held-out outputs: {len(held)}; used items: " + ", ".join(f"{g} {n}" for g, n in sorted(used.items())))
    print("| group | outputs | line oracle | set-cover oracle |")
    print("|---|---:|---:|---:|")
    for g in sorted(per, key=lambda g: (g not in ("all", "non_read"), g)):
        cells = []
        for k in range(2):
            o = np.asarray([x[k] for x in per[g]], dtype=float)
            total = o[:, 3].sum() / max(o[:, 2].sum(), 1)
            mean = np.mean(o[:, 3] / np.maximum(o[:, 2], 1))
            cells.append(f"{100 * total:.1f}% (mean {100 * mean:.1f}%)")
        print(f"| {g} | {len(per[g])} | {cells[0]} | {cells[1]} |")

    if args.model:
        model = json.load(open(args.model))
        n = len(model["features"])
        trees = [lm.decode_tree(t) for t in model["trees"]]
        assert header["features"][:n] == model["features"], "the model's features are not the data's"
        groups = defaultdict(lambda: ([], [], []))
        for r in held:
            if not lm.line_selected(r):
                continue
            seen = np.asarray(r["seen"], dtype=bool)
            x = np.asarray(r["x"], dtype=np.float32)[:, :n]
            p = (1 / (1 + np.exp(-lm.predict_flat(trees, x))))[seen]
            y = np.asarray(r["y"], dtype=bool)[seen]
            first = np.asarray(lm.first_occurrences(r)[0], dtype=bool)[seen]
            for g in (r["kind"], "all"):
                groups[g][0].append(p)
                groups[g][1].append(y)
                groups[g][2].append(first)
        print("| kind | seen lines | used | AUC | AP | first occurrences | AUC | AP |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for g in sorted(groups, key=lambda g: (g != "all", g)):
            p, y, first = (np.concatenate(v) for v in groups[g])
            print(
                f"| {g} | {len(y)} | {y.mean():.3f} | {auc(y, p):.3f} | {average_precision(y, p):.3f} "
                f"| {first.mean():.3f} | {auc(first, p):.3f} | {average_precision(first, p):.3f} |"
            )


if __name__ == "__main__":
    main()
