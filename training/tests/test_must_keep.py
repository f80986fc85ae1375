"""The Python must-keep port agrees with src/protect.rs on every fixture word."""

from pathlib import Path

from kompress_train.must_keep import classify, core, gapped_words, protected_words, words

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "protect" / "words.tsv"


def test_fixture_parity_100_percent():
    rows = FIXTURE.read_text(encoding="utf-8").split("\n")
    rows = [r for r in rows if r]
    assert len(rows) >= 3000
    bad = []
    for row in rows:
        word, rust_core, rust_kind = row.split("\t")
        kind = classify(word) or "-"
        if kind != rust_kind or core(word) != rust_core:
            bad.append((word, rust_core, rust_kind, core(word), kind))
    assert not bad, f"{len(bad)} of {len(rows)} disagree, e.g. {bad[:10]}"


def test_protected_words_in_order():
    text = "error: cannot find value `x_1` in /src/lib.rs:3:9, see E0425"
    assert protected_words(text) == ["error", "cannot", "x_1", "/src/lib.rs:3:9", "E0425"]


def test_words_use_rust_whitespace():
    # U+001C..U+001F are not Unicode White_Space: Rust keeps them inside a word.
    assert words("a\x1cb c\u3000d\te") == ["a\x1cb", "c", "d", "e"]
    assert gapped_words("  a\n\tb  ") == [("  ", "a"), ("\n\t", "b")]
