"""Train the line model: which lines of a tool output will the agent need?

Reads the line data `kompress model line-data` writes (features and use labels of every
line of every trajectory step, computed by the runtime's own Rust code), trains a LightGBM
binary classifier, calibrates one keep threshold per domain on repositories it was not
trained on, and writes `lines.json` (the forest format `src/model/forest.rs` reads).

Split by repository, never by step: the model trains on TRAIN_REPOS, the thresholds are
calibrated on CALIB_REPOS, and everything else is held out for `kompress eval
--trajectories` (the numbers in model/MODEL_CARD.md).

    python training/line_model.py --data lines.jsonl --out model/lines.json
"""

import argparse
import json
import math
import sys
import time
from collections import defaultdict

import lightgbm as lgb
import numpy as np

TRAIN_REPOS = {"django/django"}
CALIB_REPOS = {"matplotlib/matplotlib"}
# The domains where the line pass runs (`Domain::settings`, `lines: true`).
LINE_DOMAINS = {"bash_output", "error_trace", "search_result", "file_list", "test_output", "build_log"}
MIN_LINES = 8  # src/select/mod.rs MIN_LINES
NEG_TOKENS = 12.0  # an unused line of this many tokens weighs as much as one used item
MIN_CALIB_OUTPUTS = 40  # fewer outputs with used items: the domain takes the global threshold


def log(msg):
    print(f"[line_model {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load(path):
    """The feature names (the header line) and the outputs the line pass would see."""
    rows = []
    with open(path) as f:
        names = json.loads(f.readline())["features"]
        for line in f:
            r = json.loads(line)
            if r["domain"] not in LINE_DOMAINS or len(r["y"]) < MIN_LINES:
                continue
            rows.append(r)
    return names, rows


def matrix(rows, key):
    """Features, labels and weights of the seen lines of `rows`.

    A used line weighs its number of used items (dropping it loses them all), an unused
    one its cl100k tokens over NEG_TOKENS (dropping it saves them): the loss then trades
    recall of items against reduction in tokens, the two numbers the thresholds are set on.
    """
    xs, ys, ws = [], [], []
    for r in rows:
        for x, y, seen, items, tokens in zip(r[key], r["y"], r["seen"], r["items"], r["tokens"]):
            if seen:
                xs.append(x)
                ys.append(y)
                ws.append(max(len(items), 1) if y else tokens / NEG_TOKENS)
    return np.asarray(xs, dtype=np.float32), np.asarray(ys, dtype=np.float32), np.asarray(ws, dtype=np.float32)


def keep_mask(r, probs, t):
    """src/select/mod.rs keep_mask: score, signal lines, the last non-blank line."""
    keep = probs >= t
    keep |= np.asarray(r["signal"], dtype=bool)
    tokens = r["tokens"]
    # The last non-blank line: tokens of a blank line are 1 (the newline).
    for i in range(len(tokens) - 1, -1, -1):
        if r["blank"][i] == 0:
            keep[i] = True
            break
    return keep


def outcome(r, probs, t):
    """(used items, kept used items, tokens, dropped tokens) of one output at threshold t."""
    keep = keep_mask(r, probs, t)
    kept_items = set()
    for k, items in zip(keep, r["items"]):
        if k:
            kept_items.update(items)
    tokens = np.asarray(r["tokens"])
    return r["n_used"], len(kept_items), int(tokens.sum()), int(tokens[~keep].sum())


def sweep(rows, preds, thresholds):
    """Per threshold: item recall and token reduction over `rows`."""
    out = []
    for t in thresholds:
        used = kept = tok = dropped = 0
        for r, p in zip(rows, preds):
            u, k, n, d = outcome(r, p, t)
            used += u
            kept += k
            tok += n
            dropped += d
        out.append((t, kept / max(used, 1), dropped / max(tok, 1)))
    return out


def calibrate(rows, preds, target):
    """The highest threshold whose item recall over `rows` is at least `target`."""
    grid = sorted(set(np.round(np.quantile(np.concatenate(preds), np.linspace(0.0, 0.9, 91)), 4)))
    best = 0.0
    for t, recall, _ in sweep(rows, preds, grid):
        if recall >= target:
            best = t
    return best


def flatten(tree):
    """LightGBM's nested tree to the flat arrays of src/model/forest.rs."""
    f, t, l, r, v = [], [], [], [], []

    def walk(node):
        if "leaf_value" in node:
            v.append(node["leaf_value"])
            return -len(v)
        assert node["decision_type"] == "<=", node["decision_type"]
        i = len(f)
        f.append(node["split_feature"])
        t.append(node["threshold"])
        l.append(0)
        r.append(0)
        l[i] = walk(node["left_child"])
        r[i] = walk(node["right_child"])
        return i

    root = walk(tree["tree_structure"])
    if root < 0:  # a single leaf
        return {"f": [], "t": [], "l": [], "r": [], "v": v}
    return {"f": f, "t": t, "l": l, "r": r, "v": v}


def predict_flat(trees, x):
    s = np.zeros(len(x))
    for tr in trees:
        for n, row in enumerate(x):
            if not tr["f"]:
                s[n] += tr["v"][0]
                continue
            i = 0
            while True:
                c = tr["l"][i] if row[tr["f"][i]] <= np.float32(tr["t"][i]) else tr["r"][i]
                if c < 0:
                    s[n] += tr["v"][-c - 1]
                    break
                i = c
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="output of `kompress model line-data`")
    ap.add_argument("--out", required=True, help="where to write lines.json")
    ap.add_argument("--target", type=float, default=0.975, help="item recall the thresholds are calibrated to")
    ap.add_argument("--rounds", type=int, default=400)
    ap.add_argument("--leaves", type=int, default=63)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    log(f"reading {args.data}")
    feature_names, rows = load(args.data)
    blank = feature_names.index("blank")
    for r in rows:
        r["blank"] = [x[blank] for x in r["x"]]
    train = [r for r in rows if r["repo"] in TRAIN_REPOS]
    calib = [r for r in rows if r["repo"] in CALIB_REPOS]
    held = [r for r in rows if r["repo"] not in TRAIN_REPOS | CALIB_REPOS]
    log(f"{len(rows)} outputs: {len(train)} train, {len(calib)} calibration, {len(held)} held out")

    # With the intent and without it (the same outputs), so that the model works either way.
    x1, y1, w1 = matrix(train, "x")
    x0, y0, w0 = matrix(train, "x_none")
    x = np.concatenate([x1, x0])
    y = np.concatenate([y1, y0])
    w = np.concatenate([w1, w0])
    log(f"{len(x)} training lines ({y.mean():.3f} used)")
    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": args.leaves,
        "min_data_in_leaf": 100,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "num_threads": args.threads,
        "seed": 7,
        "verbose": -1,
    }
    xc, yc, wc = matrix(calib, "x")
    dtrain = lgb.Dataset(x, y, weight=w)
    dvalid = lgb.Dataset(xc, yc, weight=wc, reference=dtrain)
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=args.rounds,
        valid_sets=[dvalid],
        callbacks=[lgb.log_evaluation(50), lgb.early_stopping(50, verbose=True)],
    )
    log(f"{booster.num_trees()} trees")

    dump = booster.dump_model()
    trees = [flatten(t) for t in dump["tree_info"]]
    # The flat trees must predict exactly what LightGBM predicts.
    probe = xc[:2000]
    ref = booster.predict(probe, raw_score=True)
    got = predict_flat(trees, probe)
    err = float(np.max(np.abs(ref - got))) if len(probe) else 0.0
    log(f"flat trees vs LightGBM on {len(probe)} lines: max |Δ raw score| {err:.2e}")
    assert err < 1e-3, err

    def preds_of(rs, key):
        return [1 / (1 + np.exp(-booster.predict(np.asarray(r[key], dtype=np.float32), raw_score=True))) for r in rs]

    pc = preds_of(calib, "x")
    by_domain = defaultdict(list)
    for i, r in enumerate(calib):
        by_domain[r["domain"]].append(i)
    global_t = calibrate(calib, pc, args.target)
    thresholds = {}
    for d in sorted(LINE_DOMAINS):
        idx = [i for i in by_domain.get(d, []) if calib[i]["n_used"] > 0]
        if len(idx) >= MIN_CALIB_OUTPUTS:
            thresholds[d] = calibrate([calib[i] for i in idx], [pc[i] for i in idx], args.target)
        else:
            thresholds[d] = global_t
        log(f"threshold {d}: {thresholds[d]:.3f} ({len(idx)} calibration outputs with used items)")

    # What the held-out repositories get at those thresholds (line pass alone).
    def report(rs, key):
        ps = preds_of(rs, key)
        per = defaultdict(lambda: [0, 0, 0, 0])
        for r, p in zip(rs, ps):
            u, k, n, dr = outcome(r, p, thresholds[r["domain"]])
            for g in (r["kind"], "all"):
                a = per[g]
                a[0] += u
                a[1] += k
                a[2] += n
                a[3] += dr
        return {g: {"recall": a[1] / max(a[0], 1), "reduction": a[3] / max(a[2], 1), "tokens": a[2]} for g, a in per.items()}

    held_intent = report(held, "x")
    held_none = report(held, "x_none")
    for g in sorted(held_intent):
        a, b = held_intent[g], held_none[g]
        log(f"held-out {g:8} with intent: recall {a['recall']:.3f} reduction {a['reduction']:.3f} | without: recall {b['recall']:.3f} reduction {b['reduction']:.3f}")

    gain = booster.feature_importance("gain")
    top = sorted(zip(feature_names, gain), key=lambda p: -p[1])[:10]
    model = {
        "format": "kompress-line-forest-1",
        "features": feature_names,
        "base": 0.0,
        "trees": [{k: ([round(float(v), 6) for v in vals] if k in ("t", "v") else vals) for k, vals in t.items()} for t in trees],
        "thresholds": {d: round(t, 4) for d, t in thresholds.items()},
        "meta": {
            "trainer": f"LightGBM {lgb.__version__}, {json.dumps(params, sort_keys=True)}, {booster.num_trees()} trees",
            "train_repos": sorted(TRAIN_REPOS),
            "calibration_repos": sorted(CALIB_REPOS),
            "target_recall": args.target,
            "train_lines": int(len(x)),
            "heldout_line_pass": {"with_intent": held_intent, "without_intent": held_none},
            "top_features_by_gain": [[n, round(float(g), 1)] for n, g in top],
        },
    }
    with open(args.out, "w") as f:
        json.dump(model, f, separators=(",", ":"))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
