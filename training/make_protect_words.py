#!/usr/bin/env python3
"""Write tests/fixtures/protect/words.txt: the words whose must-keep verdicts the Rust test
tests/protect_fixture.rs records in words.tsv (KOMPRESS_BLESS=1 cargo test --test
protect_fixture), and training/tests/test_must_keep.py checks the Python port against.

The list is deterministic: hand-picked tricky cases, then every distinct non-ASCII word of
the dev corpus (capped), then distinct corpus words picked by the smallest SHA-256 of the word.
"""

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "training"))
from kompress_train.must_keep import words  # noqa: E402

TRICKY = r"""
TokenExpiredError /var/log/app.log 3.28.33 1.5.0 127.0.0.1 9d85279 a3f9c2e E0277 error[E0277]:
TS2345 8f3a2c91-4b2e-11ee x86_64 ord_8f3a2c91 10ms 3s Foo.Bar /Users/Me C:\Users CVE-2024-3094
0x7ffd5e8c src/main.rs:12:5 https://example.com/a --release -v HTTP getValue __init__
os.path.join not Never must or FAILED failed H2SO4 NaCl user@example.com mode=content std::io
./configure the running long-running Compiling Downloading with a -- - ... e this ( file
("/tmp/x.log"), 3.28.33. `foo_bar` NOT Not nOt can't Can't CAN'T don't. (error) "failed",
*warning* [null] {true} <false> 'none' fails: panic! Error: ERRORS error, errors; timeout?
_ __ ___ a_ _a a_b a.b .a a. a..b a.b.c .hidden ..  ../x ~/x ~\x ~ x/ /x / // /. ./ .\ \x x\y
-- --- -x --x --x-y --x=1 --x= -x=y -1 --1 -_ --_a --a_b -X -Xy --a.b --a/b -- -= =x x= a=b ==
A: a:/ C:/x z:\ 1:\ ftp://x git+ssh://a a+b://c a://b ://b HTTP:// x@y @x x@ a@@b
AB Ab aB ABc aBc AbC Abc A_ A_B _A a_ ÉX éX xÉ Éé café café_x naïve ñ_ _ñ ñ.ñ ñ=1 ñ= straße
ⓐ Ⓐ_ ⓐ_x x_ⓐ ² x² ²_ _² x_² Ⅻ Ⅻ_ _Ⅻ x‿y x‿ ‿x ٣ ٣_ x_٣ ́ á_ x_́ ‌_ _‌ x‌_ _‍x
日本語 日本_語 日本.語 a.日本 日本.a 中文/路径 /中文 路径: “quoted” «x» ‘a_b’ —— – … • → ✓ ✗ ✔
::: :: a:: ::a std:: x::y a:b a::b ;; ,, ,a, ,a_b, ((a)) [[x]] {{x}} <<x>> ``x`` **x** *a_b*
(no) (not) no. no, no! no? nor; and, or: xor. Only ONLY Always REQUIRED Deprecated DENIED
""".split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=str(ROOT / "training" / "data" / "dev.jsonl.gz"),
                    help="dev corpus (default: the repository's training/data/dev.jsonl.gz)")
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "protect" / "words.txt"))
    args = ap.parse_args()
    out = Path(args.out)
    corpus = Path(args.corpus)
    seen: dict[str, None] = {}
    for w in TRICKY:
        seen.setdefault(w, None)
    distinct: set[str] = set()
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        for line in f:
            distinct.update(words(json.loads(line)["text"]))
    non_ascii = sorted((w for w in distinct if not w.isascii() and len(w) <= 80),
                       key=lambda w: hashlib.sha256(w.encode()).digest())
    for w in non_ascii[:600]:
        seen.setdefault(w, None)
    ascii_words = sorted((w for w in distinct if w.isascii() and len(w) <= 80),
                         key=lambda w: hashlib.sha256(w.encode()).digest())
    for w in ascii_words[:4000]:
        seen.setdefault(w, None)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(w + "\n" for w in seen), encoding="utf-8")
    print(f"{out}: {len(seen)} words ({len(distinct)} distinct in the corpus)")


if __name__ == "__main__":
    main()
