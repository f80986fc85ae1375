//! The must-keep verdicts of `kompress::protect` for a fixed word list, recorded as a fixture
//! that the Python port (training/kompress_train/must_keep.py) is checked against
//! (training/tests/test_must_keep.py).
//!
//! Input: `tests/fixtures/protect/words.txt`, one word per line (written by
//! training/make_protect_words.py). Output: `tests/fixtures/protect/words.tsv`, one line per
//! word: `word<TAB>core<TAB>kind` where kind is the `Kind` name or `-` when not protected.
//! `KOMPRESS_BLESS=1 cargo test --test protect_fixture` regenerates the TSV; without it the
//! test fails when the TSV differs from what the rules say now.

use std::fmt::Write as _;
use std::path::PathBuf;

use kompress::protect::{classify, core};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protect")
}

fn render() -> String {
    let words = std::fs::read_to_string(fixture_dir().join("words.txt")).expect("words.txt");
    let mut out = String::new();
    for word in words.split('\n').filter(|w| !w.is_empty()) {
        assert!(
            !word.contains(char::is_whitespace),
            "fixture word {word:?} contains whitespace"
        );
        let kind = classify(word).map_or_else(|| "-".to_string(), |k| format!("{k:?}"));
        writeln!(out, "{word}\t{}\t{kind}", core(word)).expect("write to a String");
    }
    out
}

#[test]
fn protect_fixture_matches_rules() {
    let path = fixture_dir().join("words.tsv");
    let now = render();
    if std::env::var_os("KOMPRESS_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &now).expect("write words.tsv");
        return;
    }
    let recorded = std::fs::read_to_string(&path)
        .expect("words.tsv missing: run KOMPRESS_BLESS=1 cargo test --test protect_fixture");
    for (i, (a, b)) in recorded.lines().zip(now.lines()).enumerate() {
        assert_eq!(a, b, "words.tsv line {} differs from the rules", i + 1);
    }
    assert_eq!(
        recorded.lines().count(),
        now.lines().count(),
        "words.tsv and words.txt have different lengths"
    );
}
