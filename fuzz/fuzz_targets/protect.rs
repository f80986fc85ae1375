//! Word protection on arbitrary text.
//!
//! Checks: no panic; `core(w)` is a substring of `w` (a slice of it, in fact) and
//! idempotent; `classify` is deterministic and depends only on the core;
//! `is_protected` agrees with `classify`; `protected_words` returns exactly the cores of
//! the protected words of the text, in order.
#![no_main]

use kompress::protect;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;
    let mut expected = Vec::new();
    for word in protect::words(text) {
        assert!(!word.is_empty() && !word.contains(char::is_whitespace));
        let core = protect::core(word);
        assert!(word.contains(core), "core {core:?} not in {word:?}");
        // A sub-slice of the word, not merely equal text found elsewhere.
        let offset = core.as_ptr() as usize - word.as_ptr() as usize;
        assert!(offset + core.len() <= word.len());
        assert_eq!(
            protect::core(core),
            core,
            "core is not idempotent on {word:?}"
        );
        let kind = protect::classify(word);
        assert_eq!(
            kind,
            protect::classify(word),
            "classify is not deterministic"
        );
        assert_eq!(
            kind,
            protect::classify(core),
            "classify of {word:?} differs from its core's"
        );
        assert_eq!(kind.is_some(), protect::is_protected(word));
        if core.is_empty() {
            assert_eq!(kind, None, "an empty core is protected: {word:?}");
        }
        if kind.is_some() {
            expected.push(core);
        }
    }
    let protected = protect::protected_words(text);
    assert_eq!(protected, expected);
    for core in protected {
        // Every returned core lies inside the text itself.
        let start = core.as_ptr() as usize;
        let base = text.as_ptr() as usize;
        assert!(start >= base && start + core.len() <= base + text.len());
    }
});
