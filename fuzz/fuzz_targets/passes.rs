//! Each structural pass on arbitrary text.
//!
//! Input: the first byte picks the pass (`Pass::ALL[b % len]`), the rest is the text
//! (lossy UTF-8). Checks, mirroring `src/passes/invariants.rs` and `tests/invariants.rs`:
//! no panic; never longer; the final newline kept (and one only added where the pass
//! emptied the last line); `Owned` only when something changed; the word-preserving
//! passes (TrailingWhitespace, BlankLines, Repeats, SimilarLines) keep every protected
//! word of the input in `expand_ranges(output)`; the line-folding passes (Repeats,
//! SimilarLines, TestRunner, BlankLines) keep every line they keep unaltered; Json keeps
//! a JSON document (or every JSON Lines line) equal as a `serde_json::Value`.
#![no_main]

use std::borrow::Cow;
use std::collections::HashSet;

use kompress::passes::{Pass, is_marker, repeats::expand_ranges};
use kompress::protect;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let pass = Pass::ALL[selector as usize % Pass::ALL.len()];
    let text = String::from_utf8_lossy(rest);
    check(pass, &text);
});

fn check(pass: Pass, text: &str) {
    let out = pass.apply(text);
    assert!(
        out.len() <= text.len(),
        "{pass:?} grew {} -> {} bytes",
        text.len(),
        out.len()
    );
    if text.ends_with('\n') {
        assert!(
            out.ends_with('\n') || out.is_empty(),
            "{pass:?} dropped the final newline"
        );
    } else if out.ends_with('\n') {
        let last = text.rsplit('\n').next().unwrap_or("");
        let emptied = pass.apply(last);
        assert!(
            !emptied.chars().any(char::is_alphanumeric),
            "{pass:?} added a final newline"
        );
    }
    if let Cow::Owned(changed) = &out {
        assert_ne!(changed, text, "{pass:?} returned an unchanged Owned");
    }
    match pass {
        Pass::TrailingWhitespace | Pass::BlankLines | Pass::Repeats | Pass::SimilarLines => {
            let expanded = expand_ranges(&out);
            for word in protect::protected_words(text) {
                assert!(
                    expanded.contains(word),
                    "{pass:?} lost protected word {word:?}"
                );
            }
        }
        Pass::Json => json_equal(text, &out),
        _ => {}
    }
    if matches!(
        pass,
        Pass::Repeats | Pass::SimilarLines | Pass::TestRunner | Pass::BlankLines
    ) {
        let input: HashSet<&str> = text.lines().collect();
        for line in out.lines() {
            assert!(
                is_marker(line) || line.is_empty() || input.contains(line),
                "{pass:?} altered line {line:?}"
            );
        }
    }
}

/// Json: a JSON document stays an equal document; a changed non-document is JSON Lines
/// whose every line stays an equal document.
fn json_equal(text: &str, out: &str) {
    if let Ok(before) = serde_json::from_str::<Value>(text.trim()) {
        let after: Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("Json broke a JSON document: {e}"));
        assert_eq!(before, after, "Json changed a value");
        return;
    }
    if out == text {
        return;
    }
    let before: Vec<&str> = text.lines().collect();
    let after: Vec<&str> = out.lines().collect();
    assert_eq!(
        before.len(),
        after.len(),
        "Json changed the number of lines"
    );
    for (a, b) in before.iter().zip(&after) {
        if a.trim().is_empty() {
            assert_eq!(a, b, "Json changed a blank line");
            continue;
        }
        let a: Value = serde_json::from_str(a.trim()).expect("a compacted line was JSON");
        let b: Value = serde_json::from_str(b.trim()).expect("Json broke a JSON line");
        assert_eq!(a, b, "Json changed a value in a JSON line");
    }
}
