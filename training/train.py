#!/usr/bin/env python3
"""Train kompress's word-level keep/drop classifier (ModernBertForTokenClassification).

One entry point (training/train.sh calls this):

1. data: real corpus records self-labelled by
   kompress_train.labels (the text after the structural passes; keep = must-keep OR not
   filler), split by `source` 80/20 (no instance in both); the held-out records are written
   to heldout.jsonl for `kompress eval`; optionally synthetic pairs from
   kompress_train.generators (train seed 42, validation seed 43; off by default, see
   SYNTHETIC_DOMAINS);
2. tokenization exactly as the Rust runtime (src/model/words.rs): every word is encoded with
   the whitespace before it, without special tokens; words are packed into chunks of at most
   512 tokens ([CLS] and [SEP] included) that never split a word;
3. labels: a word's label goes to *all* its sub-tokens. The runtime scores a word by the
   maximum over its sub-tokens, so every sub-token of a drop word must score low; labelling
   only the first sub-token would leave the others untrained and the max arbitrary;
4. loss: token cross-entropy weighted must-keep x W_MUST (default 5), keep x 1, drop x W_DROP
   (default 3: only ~2% of real words are filler, and at weight 1 the drop class was learnt
   slowly: 0.32 drop recall after 2 epochs, run v2),
   special tokens x 0, summed and divided by the number of real tokens (seed recipe, §3.1);
5. AdamW + linear warm-up / cosine decay, gradient clip 1.0, validation every --eval-every
   steps, early stopping on validation loss (patience), best weights kept;
6. saves a Hugging Face checkpoint (config.json, model.safetensors, tokenizer.json), converts
   it (`kompress model convert`: Q8_0 GGUF, compiled tokenizer) into <out>/model, runs
   `kompress eval` on the held-out records rules-only and with the model (<out>/eval.md),
   and, with --ship only, converts it into the repository's model/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from kompress_train import generators, labels  # noqa: E402
from kompress_train.must_keep import gapped_words  # noqa: E402

DROP, KEEP = 0, 1


def log_setup(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a", encoding="utf-8")

    def log(msg: str) -> None:
        line = time.strftime("%H:%M:%S ") + msg
        print(line, file=sys.stderr, flush=True)
        f.write(line + "\n")
        f.flush()

    return log


# ---------------------------------------------------------------- data


# The model pass runs on bash_output and error_trace (and test/build/prose, which the corpus
# labels as these); the synthetic file_read and JSON generators drop comment lines and keys,
# which would teach exactly what the runtime must never do where the model does run.
# Synthetic pairs are off by default: a model trained with 600 pairs per domain of these
# two (run v1, MODEL_CARD.md) learned their whole-line filler and dropped content words
# from real prose ("Successfully installed the package into the environment and it is
# now ready for the use" -> "Successfully installed and use"); the shipped model trains on
# real records only.
SYNTHETIC_DOMAINS = ("bash_output", "error_trace")
# Real domains to train on: file_read and json_tool_result are never model-compressed (the
# runtime leaves reads exact and JSON to the JSON pass); search results are, like bash
# output, mostly code lines, and teach the model to leave code alone.
REAL_DOMAINS = ("bash_output", "error_trace", "search_result")


def synthetic_rows(seed: int, n_per_domain: int, split: str) -> list[dict]:
    rows = []
    for p in generators.generate(seed, n_per_domain, SYNTHETIC_DOMAINS):
        keep, must = labels.pair_labels(p.text, p.reference)
        rows.append({"id": p.id, "domain": p.domain, "source": "synthetic", "split": split,
                     "text": p.text, "keep": "".join(map(str, keep)),
                     "must": "".join(map(str, must))})
    return rows


def real_rows(cache: Path, limit: int, binary: Path, log) -> list[dict]:
    if cache.exists():
        rows = [json.loads(l) for l in cache.open(encoding="utf-8")]
        log(f"real labels: {len(rows)} records from cache {cache}")
        return rows
    recs = labels.load_corpus()
    if limit:
        recs = recs[:limit]
    rows = labels.label_real(recs, binary)
    tmp = cache.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.rename(cache)
    return rows


def write_heldout(path: Path, val_ids: set[str], limit: int, log) -> None:
    """The validation split's raw corpus records (every domain), for `kompress eval`."""
    recs = labels.load_corpus()
    if limit:
        recs = recs[:limit]
    held = [r for r in recs if labels.split_of(r["source"]) == "val"]
    with path.open("w", encoding="utf-8") as f:
        for r in held:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    log(f"held-out split: {len(held)} records ({len(val_ids)} labelled) -> {path}")


class Encoder:
    """Word-by-word encoding matching src/model/words.rs."""

    def __init__(self, tokenizer_path: Path):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(tokenizer_path))
        self.cls = self.tok.token_to_id("[CLS]")
        self.sep = self.tok.token_to_id("[SEP]")
        self.pad = self.tok.token_to_id("[PAD]")
        self.cache: dict[str, list[int]] = {}

    def word_ids(self, text: str) -> list[list[int]]:
        pieces = [g + w for g, w in gapped_words(text)]
        todo = list({p for p in pieces if p not in self.cache})
        for i in range(0, len(todo), 4096):
            batch = todo[i:i + 4096]
            for p, enc in zip(batch, self.tok.encode_batch(batch, add_special_tokens=False)):
                self.cache[p] = enc.ids
        return [self.cache[p] for p in pieces]


def chunk_words(word_ids: list[list[int]], max_len: int, cls: int, sep: int):
    """Port of src/model/words.rs `chunk_words`: [(ids, word_of)]; word_of None for specials."""
    room = max_len - 2
    chunks = []
    ids, word_of = [cls], [None]

    def finish():
        nonlocal ids, word_of
        if len(ids) > 1:
            chunks.append((ids + [sep], word_of + [None]))
        ids, word_of = [cls], [None]

    for w, wi in enumerate(word_ids):
        if len(ids) - 1 + len(wi) > room:
            finish()
        take = min(len(wi), room)
        ids.extend(wi[:take])
        word_of.extend([w] * take)
        if take < len(wi):
            finish()
    finish()
    return chunks


def encode_rows(rows: list[dict], enc: Encoder, max_len: int, w_must: float, w_drop: float):
    """Chunks as dicts: ids, labels, weights, must (per token), word_of, row index."""
    out = []
    for ri, r in enumerate(rows):
        wids = enc.word_ids(r["text"])
        keep, must = r["keep"], r["must"]
        assert len(wids) == len(keep) == len(must), r["id"]
        for ids, word_of in chunk_words(wids, max_len, enc.cls, enc.sep):
            lab, wt, mk = [], [], []
            for w in word_of:
                if w is None:
                    lab.append(-100), wt.append(0.0), mk.append(0)
                    continue
                k, m = keep[w] == "1", must[w] == "1"
                lab.append(KEEP if k else DROP)
                wt.append(w_must if m else (1.0 if k else w_drop))
                mk.append(int(m))
            out.append({"ids": ids, "labels": lab, "weights": wt, "must": mk,
                        "word_of": word_of, "row": ri, "domain": r["domain"]})
    return out


def batches(chunks: list[dict], max_tokens: int, rng: random.Random | None):
    """Length-bucketed batches of at most `max_tokens` padded tokens."""
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i]["ids"]))
    out, cur, longest = [], [], 0
    for i in order:
        n = len(chunks[i]["ids"])
        if cur and max(longest, n) * (len(cur) + 1) > max_tokens:
            out.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        out.append(cur)
    if rng is not None:
        rng.shuffle(out)
    return out


def collate(chunks, idx, pad, torch):
    L = max(len(chunks[i]["ids"]) for i in idx)
    B = len(idx)
    ids = torch.full((B, L), pad, dtype=torch.long)
    att = torch.zeros((B, L), dtype=torch.long)
    lab = torch.full((B, L), -100, dtype=torch.long)
    wt = torch.zeros((B, L), dtype=torch.float)
    for b, i in enumerate(idx):
        c = chunks[i]
        n = len(c["ids"])
        ids[b, :n] = torch.tensor(c["ids"])
        att[b, :n] = 1
        lab[b, :n] = torch.tensor(c["labels"])
        wt[b, :n] = torch.tensor(c["weights"])
    return ids, att, lab, wt


def weighted_loss(logits, lab, wt, torch):
    ce = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), lab.reshape(-1), ignore_index=-100, reduction="none")
    mask = (lab.reshape(-1) != -100).float()
    return (ce * wt.reshape(-1) * mask).sum() / mask.sum().clamp(min=1.0)


def evaluate(model, chunks, bsz_tokens, pad, torch):
    """Validation loss (same weighting) and word-level metrics (word score = max over
    sub-tokens of p(keep), threshold 0.5)."""
    model.eval()
    tot_loss, tot_tok = 0.0, 0
    words: dict[tuple[int, int], list] = {}
    dev = next(model.parameters()).device
    with torch.no_grad():
        for idx in batches(chunks, bsz_tokens, None):
            ids, att, lab, wt = (t.to(dev) for t in collate(chunks, idx, pad, torch))
            logits = model(input_ids=ids, attention_mask=att).logits
            n = int((lab != -100).sum())
            tot_loss += float(weighted_loss(logits, lab, wt, torch)) * n
            tot_tok += n
            p = torch.softmax(logits, -1)[..., KEEP].cpu()
            for b, i in enumerate(idx):
                c = chunks[i]
                for t, w in enumerate(c["word_of"]):
                    if w is None:
                        continue
                    key = (c["row"], w)
                    s = float(p[b, t])
                    if key in words:
                        words[key][0] = max(words[key][0], s)
                    else:
                        words[key] = [s, c["labels"][t], c["must"][t]]
    model.train()
    n = max(len(words), 1)
    pred = [(s > 0.5, l == KEEP, m) for s, l, m in words.values()]
    must = [p for p, _, m in pred if m]
    drops = [p for p, l, _ in pred if not l]
    return {
        "loss": tot_loss / max(tot_tok, 1),
        "word_acc": sum(p == l for p, l, _ in pred) / n,
        "word_keep_rate": sum(p for p, _, _ in pred) / n,
        "label_keep_rate": sum(l for _, l, _ in pred) / n,
        "must_recall": sum(must) / max(len(must), 1),
        "drop_recall": sum(not p for p in drops) / max(len(drops), 1),
    }


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(HERE / "runs" / "latest"))
    ap.add_argument("--smoke", action="store_true", help="tiny data, a few steps")
    ap.add_argument("--ship", action="store_true", help="convert the best checkpoint into model/")
    ap.add_argument("--synthetic-per-domain", type=int, default=0,
                    help="synthetic pairs per domain (off by default: see SYNTHETIC_DOMAINS)")
    ap.add_argument("--val-synthetic-per-domain", type=int, default=0)
    ap.add_argument("--real-limit", type=int, default=0, help="first N corpus records (0 = all)")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--val-chunks", type=int, default=400,
                    help="evaluate on this many validation chunks during training (all at the end)")
    ap.add_argument("--w-must", type=float, default=5.0)
    ap.add_argument("--w-drop", type=float, default=3.0)
    ap.add_argument("--max-len", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default=os.environ.get("KOMPRESS_TRAIN_DEVICE", "auto"),
                    help="auto (CUDA when torch.cuda.is_available(), else CPU), cpu, cuda or "
                         "cuda:N (default: $KOMPRESS_TRAIN_DEVICE or auto)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=512)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "kompress"))
    ap.add_argument("--tokenizer", default=str(ROOT / "model" / "tokenizer.json"))
    args = ap.parse_args()
    if args.smoke:
        args.synthetic_per_domain = min(args.synthetic_per_domain, 24)
        args.val_synthetic_per_domain = min(args.val_synthetic_per_domain, 6)
        args.real_limit = args.real_limit or 150
        args.max_steps = args.max_steps or 40
        args.eval_every = min(args.eval_every, 10)
        args.warmup = min(args.warmup, 5)
        args.batch_tokens = min(args.batch_tokens, 2048)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = log_setup(out / "train.log")
    log(f"args: {json.dumps(vars(args), sort_keys=True)}")

    import torch
    from tqdm import tqdm
    from transformers import ModernBertConfig, ModernBertForTokenClassification

    torch.set_num_threads(args.threads)
    device = torch.device(args.device if args.device != "auto"
                          else "cuda" if torch.cuda.is_available() else "cpu")
    log(f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
                               f" ({args.threads} threads)"))
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    rng = random.Random(args.seed)

    # -- data
    t0 = time.time()
    train_rows = synthetic_rows(42, args.synthetic_per_domain, "train")
    val_rows = synthetic_rows(43, args.val_synthetic_per_domain, "val")
    if not args.no_real:
        cache = out / ("real_labels.jsonl" if not args.real_limit else f"real_labels_{args.real_limit}.jsonl")
        real = real_rows(cache, args.real_limit, Path(args.binary), log)
        st = labels.stats(real)
        log("real label statistics (keep = must-keep OR not filler):\n" + labels.format_stats(st))
        write_heldout(out / "heldout.jsonl", {r["id"] for r in real if r["split"] == "val"},
                      args.real_limit, log)
        real = [r for r in real if r["domain"] in REAL_DOMAINS]
        train_rows += [r for r in real if r["split"] == "train"]
        val_rows += [r for r in real if r["split"] == "val"]
        tr_src = {r["source"] for r in real if r["split"] == "train"}
        va_src = {r["source"] for r in real if r["split"] == "val"}
        assert not tr_src & va_src, "an instance is in both splits"
    enc = Encoder(Path(args.tokenizer))
    train = encode_rows(train_rows, enc, args.max_len, args.w_must, args.w_drop)
    val = encode_rows(val_rows, enc, args.max_len, args.w_must, args.w_drop)
    ntok = sum(len(c["ids"]) for c in train)
    log(f"data: {len(train_rows)} train rows -> {len(train)} chunks, {ntok} tokens; "
        f"{len(val_rows)} val rows -> {len(val)} chunks; built in {time.time() - t0:.1f}s")

    # -- model
    cfg = ModernBertConfig(
        vocab_size=50368, hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, intermediate_size=args.intermediate,
        max_position_embeddings=512, local_attention=128, global_attn_every_n_layers=3,
        global_rope_theta=160000.0, local_rope_theta=10000.0,
        pad_token_id=enc.pad, bos_token_id=enc.cls, eos_token_id=enc.sep,
        cls_token_id=enc.cls, sep_token_id=enc.sep, num_labels=2,
        id2label={DROP: "drop", KEEP: "keep"}, label2id={"drop": DROP, "keep": KEEP},
        attn_implementation="eager",
    )
    model = ModernBertForTokenClassification(cfg).to(device)
    nparam = sum(p.numel() for p in model.parameters())
    log(f"model: {nparam / 1e6:.1f}M parameters, hidden {args.hidden}, {args.layers} layers")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = len(batches(train, args.batch_tokens, None))
    total = args.max_steps or steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(args.warmup, 1))
        * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))

    best, best_state, bad_evals, step = float("inf"), None, 0, 0
    curve = []
    seen_tok, train_time = 0, 0.0
    val_probe = random.Random(7).sample(val, min(len(val), args.val_chunks))
    m0 = evaluate(model, val_probe, args.batch_tokens, enc.pad, torch)
    log(f"step 0 val {json.dumps({k: round(v, 4) for k, v in m0.items()})}")
    curve.append({"step": 0, **m0})
    stop = False
    bar = tqdm(total=total, desc="train", unit="step", file=sys.stderr)
    model.train()
    while not stop:
        for idx in batches(train, args.batch_tokens, rng):
            ts = time.time()
            ids, att, lab, wt = (t.to(device) for t in collate(train, idx, enc.pad, torch))
            loss = weighted_loss(model(input_ids=ids, attention_mask=att).logits, lab, wt, torch)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            train_time += time.time() - ts
            seen_tok += int(att.sum())
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", tok_s=f"{seen_tok / train_time:.0f}")
            if step % args.eval_every == 0 or step == total:
                m = evaluate(model, val_probe, args.batch_tokens, enc.pad, torch)
                curve.append({"step": step, "train_loss": float(loss.detach()), **m})
                log(f"step {step} train_loss {float(loss.detach()):.4f} tok/s {seen_tok / train_time:.0f} "
                    f"val {json.dumps({k: round(v, 4) for k, v in m.items()})}")
                if m["loss"] < best - 1e-4:
                    best, bad_evals = m["loss"], 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    bad_evals += 1
                    if bad_evals >= args.patience:
                        log(f"early stop at step {step}: no val improvement in {bad_evals} evals")
                        stop = True
            if step >= total or stop:
                stop = True
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    final = evaluate(model, val, args.batch_tokens, enc.pad, torch)
    log(f"best checkpoint on the whole validation split: "
        f"{json.dumps({k: round(v, 4) for k, v in final.items()})}")
    ckpt = out / "checkpoint"
    model.save_pretrained(ckpt, safe_serialization=True)
    shutil.copy(args.tokenizer, ckpt / "tokenizer.json")
    summary = {"steps": step, "train_seconds": round(train_time, 1),
               "train_tokens_per_s": round(seen_tok / max(train_time, 1e-9), 1),
               "best_val_loss": best, "final_val": final, "curve": curve}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    log(f"saved {ckpt}; {step} steps in {train_time:.1f}s ({summary['train_tokens_per_s']} tok/s)")
    converted = out / "model"
    subprocess.run([args.binary, "model", "convert", str(ckpt), str(converted)], check=True)
    if not args.no_real and not args.smoke:
        table = heldout_table(Path(args.binary), out / "heldout.jsonl", converted, out, log)
        (out / "eval.md").write_text(table)
        log("held-out evaluation (kompress eval, rules-only vs rules + this model):\n" + table)
    if args.ship:
        model_dir = ROOT / "model"
        subprocess.run([args.binary, "model", "convert", str(ckpt), str(model_dir)], check=True)
        log(f"shipped into {model_dir}")


def heldout_table(binary: Path, corpus: Path, model: Path, out: Path, log) -> str:
    """`kompress eval` on the held-out records twice, rules-only and with `model`; a
    markdown table per domain: cl100k token reduction and must-keep retention, plus the
    heretic set's keep_rate, exact_pct and override_delta."""
    runs = {}
    for name, env in (("rules", {"KOMPRESS_NO_MODEL": "1"}), ("model", {"KOMPRESS_MODEL": str(model)})):
        e = dict(os.environ, **env)
        e.pop("KOMPRESS_NO_MODEL" if name == "model" else "KOMPRESS_MODEL", None)
        log(f"kompress eval ({name}) on {corpus}")
        r = subprocess.run([str(binary), "eval", "--corpus", str(corpus), "--heretic", "1000", "--json"],
                           env=e, capture_output=True, text=True, check=True)
        (out / f"eval_{name}.json").write_text(r.stdout)
        runs[name] = json.loads(r.stdout)

    def pct(v):
        return "–" if v is None else f"{v:.1f}%"

    rows = ["| domain | records | tokens in | reduction, rules | reduction, rules + model | "
            "gain (points) | must-keep retention, rules | must-keep retention, rules + model |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    names = sorted(runs["rules"]["domains"]) + ["all"]
    for d in names:
        a = runs["rules"]["all"] if d == "all" else runs["rules"]["domains"][d]
        b = runs["model"]["all"] if d == "all" else runs["model"]["domains"][d]
        rows.append(f"| {d} | {a['records']} | {a['tokens_in']:,} | {pct(a['reduction_pct'])} | "
                    f"{pct(b['reduction_pct'])} | {b['reduction_pct'] - a['reduction_pct']:+.1f} | "
                    f"{pct(a['retention_pct'])} | {pct(b['retention_pct'])} |")
    rows += ["", "| heretic set (1,000 pairs) | keep_rate | exact_pct | exact_pct without override | override_delta |",
             "|---|---:|---:|---:|---:|"]
    for name in ("rules", "model"):
        h = runs[name]["heretic"]["all"]
        rows.append(f"| {name} | {h['keep_rate']:.3f} | {h['exact_pct']:.3f} | "
                    f"{h['exact_pct_without']:.3f} | {h['override_delta']:.3f} |")
    lat = [f"{n}: p50 {runs[n]['all']['p50_ms']:.0f} ms, p95 {runs[n]['all']['p95_ms']:.0f} ms"
           for n in ("rules", "model")]
    rows += ["", "Hook latency per record (process start included): " + "; ".join(lat) + "."]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
