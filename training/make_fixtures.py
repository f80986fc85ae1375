#!/usr/bin/env python3
"""Build the ModernBERT parity fixtures under tests/fixtures/model/.

Run by hand (never by CI) when the fixtures must change:

    python3 -m venv /tmp/fxvenv
    /tmp/fxvenv/bin/pip install -r training/requirements-fixtures.txt
    /tmp/fxvenv/bin/python training/make_fixtures.py

Every model is tiny and randomly initialised from a fixed seed, so the fixtures say nothing
about task quality: they pin down that the Rust forward in src/model/modernbert.rs computes
the same function as Hugging Face transformers, down to float32 rounding.

Weights are re-drawn at O(1) scale after construction: HF's own init (std 0.02) makes every
activation so small that a wrong RoPE or window would still pass a 1e-4 tolerance.

Fixtures:

* tiny-token-cls/       ModernBertForTokenClassification, HF defaults (no biases except
                        classifier.bias), saved with save_pretrained (safetensors).
* tiny-token-cls-bias/  the same with norm_bias, attention_bias, mlp_bias and
                        classifier_bias on, so the bias paths of the loader are exercised
                        (2 layers: one global, one local).
* tiny-dual/            the Kompress dual head (kompress-model.md §0, §1.9): ModernBertModel
                        encoder + token_head Linear(H→2) + span_conv
                        Conv1d(H→256,k5,p2) → GELU → Conv1d(256→1,k3,p1) → sigmoid.
                        The published checkpoint is a torch pickle with three state dicts
                        (encoder_state_dict with bare ModernBertModel names, token_head_state_dict,
                        span_conv_state_dict); flattened into one safetensors file they become
                        `encoder.<name>`, `token_head.{weight,bias}` and
                        `span_conv.{0,2}.{weight,bias}`. That is the naming used here.

Each directory holds config.json, model.safetensors and expected.json (input_ids and
outputs; tiny-token-cls also has the embedding and layer-0 hidden states for debugging).
All three together stay under 2 MB (decimal); vocab is 64 for that reason.
"""

import json
import math
import os
import sys

import torch
import torch.nn as nn
import transformers
from safetensors.torch import save_file
from transformers import ModernBertConfig, ModernBertForTokenClassification, ModernBertModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model")
SEQ_LEN = 40  # longer than the local window (16), so banded attention really bands
VOCAB = 64


def tiny_config(layers=4, **extra):
    return ModernBertConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=96,
        max_position_embeddings=128,
        local_attention=16,
        global_attn_every_n_layers=3,
        global_rope_theta=160000.0,
        local_rope_theta=10000.0,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
        num_labels=2,
        hidden_activation="gelu",
        classifier_activation="gelu",
        attn_implementation="eager",
        **extra,
    )


def rerandomize(module, gen):
    """Draw every parameter at O(1) scale: norms near 1, weights ~ N(0, 1/fan_in)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1 and "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in) * 1.5)


def input_ids(gen):
    body = torch.randint(4, VOCAB, (SEQ_LEN - 2,), generator=gen)
    return torch.cat([torch.tensor([1]), body, torch.tensor([2])]).unsqueeze(0)


def tolist(t):
    """Nested lists of floats rounded to 9 significant digits, which round-trip float32
    exactly while keeping the JSON about a third smaller than Python's float repr."""
    return _round(t.detach().to(torch.float32).cpu().tolist())


def _round(v):
    if isinstance(v, list):
        return [_round(x) for x in v]
    return float("%.9g" % v)


def write_expected(path, ids, outputs, hidden_states):
    doc = {
        "generator": f"training/make_fixtures.py, torch {torch.__version__}, "
        f"transformers {transformers.__version__}",
        "input_ids": ids[0].tolist(),
        **{k: tolist(v[0]) for k, v in outputs.items()},
    }
    if hidden_states is not None:
        # For debugging a mismatch: hidden_states[0] is the embedding output, [1] the output
        # of layer 0 (before final_norm). Later layers are left out to keep fixtures small.
        doc["hidden_states"] = [tolist(h[0]) for h in hidden_states[:2]]
    with open(path, "w") as f:
        json.dump(doc, f)


def make_token_cls(name, seed, debug_states, **extra):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    config = tiny_config(**extra)
    model = ModernBertForTokenClassification(config).eval()
    rerandomize(model, gen)
    ids = input_ids(gen)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
        last = model.model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    write_expected(
        os.path.join(d, "expected.json"),
        ids,
        {"logits": out.logits, "last_hidden_state": last},
        out.hidden_states if debug_states else None,
    )
    print(name, "logits", tuple(out.logits.shape), "max |logit|", out.logits.abs().max().item())


class DualHead(nn.Module):
    """The Kompress model as headroom runs it (kompress-model.md §0, §1.9)."""

    def __init__(self, config):
        super().__init__()
        h = config.hidden_size
        self.encoder = ModernBertModel(config)
        self.token_head = nn.Linear(h, 2)
        self.span_conv = nn.Sequential(
            nn.Conv1d(h, 256, kernel_size=5, padding=2),
            nn.GELU(),
            nn.Conv1d(256, 1, kernel_size=3, padding=1),
        )

    def forward(self, ids, mask):
        out = self.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        hidden = out.last_hidden_state
        token_logits = self.token_head(hidden)
        span = torch.sigmoid(self.span_conv(hidden.transpose(1, 2))).squeeze(1)
        scores = torch.softmax(token_logits, dim=-1)[..., 1] * (0.5 + 0.5 * span)
        return token_logits, span, scores, hidden, out.hidden_states


def make_dual(name, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    config = tiny_config()
    model = DualHead(config).eval()
    rerandomize(model, gen)
    ids = input_ids(gen)
    with torch.no_grad():
        token_logits, span, scores, hidden, hidden_states = model(ids, torch.ones_like(ids))
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    tensors = {f"encoder.{k}": v.contiguous() for k, v in model.encoder.state_dict().items()}
    tensors.update({f"token_head.{k}": v.contiguous() for k, v in model.token_head.state_dict().items()})
    tensors.update({f"span_conv.{k}": v.contiguous() for k, v in model.span_conv.state_dict().items()})
    save_file(tensors, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(d)
    write_expected(
        os.path.join(d, "expected.json"),
        ids,
        {"token_logits": token_logits, "span": span, "scores": scores},
        None,
    )
    print(name, "scores", tuple(scores.shape), "range", scores.min().item(), scores.max().item())


def main():
    torch.set_num_threads(1)
    make_token_cls("tiny-token-cls", seed=1, debug_states=True)
    # Two layers (one global, one local) are enough to cover the bias paths and keep the
    # fixtures under 2 MB in total.
    make_token_cls(
        "tiny-token-cls-bias",
        seed=2,
        debug_states=False,
        layers=2,
        norm_bias=True,
        attention_bias=True,
        mlp_bias=True,
        classifier_bias=True,
    )
    make_dual("tiny-dual", seed=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
