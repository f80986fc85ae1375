//! Must-keep protection at the **word** level.
//!
//! The published Kompress model checked its must-keep rules per subtoken, so
//! `TokenExpiredError` (three subtokens, none of them "must keep" alone) and
//! `/var/log/app.log` could be dropped piece by piece. Here the unit is the word: a run
//! of non-whitespace characters as the tool printed it, stripped of the punctuation
//! around it. A word is protected when any rule in [`Kind`] matches anywhere inside it,
//! and a protected word is kept whole or not at all, never split.
//!
//! What is protected, and why (tool output is dense in facts an agent acts on):
//! anything with a digit (numbers, versions such as `3.28.33`, `file:line:col`, hashes,
//! error codes such as `E0277` and `TS2345`, CVE ids, addresses, durations, IPs),
//! ALLCAPS, CamelCase and camelCase, snake_case, dotted identifiers, paths and URLs,
//! flags, `key=value` pairs, e-mail-like `@` words, and the small words that flip or
//! bound meaning: negations, modals, conjunctions and status words (`not`, `must`,
//! `or`, `failed`…).

use std::sync::LazyLock;

use regex::Regex;

/// Why a word is protected (the first rule that matched).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Contains a digit: numbers, versions, hashes, codes, line numbers, addresses.
    Numeric,
    /// Two or more capitals in a row, or a capitalised word with an inner capital.
    Identifier,
    /// `snake_case`, `dotted.name`, `kebab-case` with a digit or capital, `key=value`.
    Compound,
    /// A filesystem path, URL or e-mail address.
    Path,
    /// A command-line flag (`-v`, `--release`).
    Flag,
    /// A negation, modal, conjunction or status word.
    Meaning,
}

/// Punctuation that wraps a word without being part of it.
const LEADING: &[char] = &['(', '[', '{', '<', '"', '\'', '`', '*', ','];
const TRAILING: &[char] = &[')', ']', '}', '>', '"', '\'', '`', ',', ';', ':', '.', '!', '?', '*'];

/// Lower-case words that flip or bound the meaning of what surrounds them.
const MEANING_WORDS: &[&str] = &[
    // negations
    "not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "cannot", "can't",
    "don't", "doesn't", "didn't", "won't", "isn't", "aren't", "wasn't", "weren't", "shouldn't",
    "mustn't", "couldn't", "wouldn't", "hasn't", "haven't", "without", "unless", "except",
    // modals and constraints
    "must", "should", "shall", "only", "always", "required", "mandatory", "avoid", "forbidden",
    "prohibited", "disallow", "refuse", "deprecated",
    // conjunctions that change a condition
    "and", "or", "xor",
    // status words
    "error", "errors", "failed", "failure", "failures", "fail", "fails", "fatal", "panic",
    "panicked", "warning", "warnings", "denied", "missing", "invalid", "unexpected", "timeout",
    "aborted", "killed", "true", "false", "null",
];

/// The pattern rules, tried in order; see [`Kind`].
static RULES: LazyLock<Vec<(Kind, Regex)>> = LazyLock::new(|| {
    let rule = |kind, pattern: &str| (kind, Regex::new(pattern).expect("valid protect rule"));
    vec![
        rule(Kind::Numeric, r"[0-9]"),
        rule(Kind::Path, r"(^|[\w.~-])[/\\][\w.~-]|^/[\w.~-]|^~[/\\]|^[A-Za-z]:[/\\]|^[a-zA-Z][\w+.-]*://|\w@\w"),
        rule(Kind::Flag, r"^--?[A-Za-z][\w-]*(=.*)?$"),
        rule(Kind::Identifier, r"[A-Z][A-Z_]|[A-Z][a-z]+[A-Z]|[a-z][A-Z]"),
        rule(Kind::Compound, r"\w_\w|_\w|\w_|[A-Za-z_]\w*\.[A-Za-z_]\w*|\w=|::"),
    ]
});

/// Strip the punctuation that surrounds a word (quotes, brackets, a trailing comma or period).
pub fn core(word: &str) -> &str {
    word.trim_start_matches(LEADING).trim_end_matches(TRAILING)
}

/// Why `word` is protected, or `None` when it may be dropped.
///
/// `word` is one whitespace-free token as printed; surrounding punctuation is ignored.
pub fn classify(word: &str) -> Option<Kind> {
    let core = core(word);
    if core.is_empty() {
        return None;
    }
    if let Some((kind, _)) = RULES.iter().find(|(_, re)| re.is_match(core)) {
        return Some(*kind);
    }
    let lower = core.to_lowercase();
    MEANING_WORDS.contains(&lower.as_str()).then_some(Kind::Meaning)
}

/// True when `word` must survive every pass unchanged.
pub fn is_protected(word: &str) -> bool {
    classify(word).is_some()
}

/// The words of `text`: maximal runs of non-whitespace, in order.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split_whitespace()
}

/// The protected words of `text`, as their cores (see [`core`]), in order of appearance.
pub fn protected_words(text: &str) -> Vec<&str> {
    words(text).filter(|w| is_protected(w)).map(core).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_gaps_are_protected() {
        // Every word the seed's regex lost (kompress-model.md §1.6) and the post's examples.
        for word in [
            "TokenExpiredError",
            "/var/log/app.log",
            "3.28.33",
            "1.5.0",
            "127.0.0.1",
            "9d85279",
            "a3f9c2e",
            "E0277",
            "error[E0277]:",
            "TS2345",
            "8f3a2c91-4b2e-11ee",
            "x86_64",
            "ord_8f3a2c91",
            "10ms",
            "3s",
            "Foo.Bar",
            "/Users/Me",
            r"C:\Users",
            "CVE-2024-3094",
            "0x7ffd5e8c",
            "src/main.rs:12:5",
            "https://example.com/a",
            "--release",
            "-v",
            "HTTP",
            "getValue",
            "__init__",
            "os.path.join",
            "not",
            "Never",
            "must",
            "or",
            "FAILED",
            "failed",
            "H2SO4",
            "NaCl",
            "user@example.com",
            "mode=content",
            "std::io",
            "./configure",
        ] {
            assert!(is_protected(word), "{word} must be protected");
        }
    }

    #[test]
    fn plain_words_are_not_protected() {
        for word in [
            "the", "running", "long-running", "Compiling", "Downloading", "with", "a",
            "--", "-", "...", "e", "this", "(", "file",
        ] {
            assert!(!is_protected(word), "{word} must not be protected");
        }
    }

    #[test]
    fn core_strips_wrapping_punctuation() {
        assert_eq!(core("(\"/tmp/x.log\"),"), "/tmp/x.log");
        assert_eq!(core("3.28.33."), "3.28.33");
        assert_eq!(core("`foo_bar`"), "foo_bar");
    }

    #[test]
    fn protected_words_in_order() {
        let text = "error: cannot find value `x_1` in /src/lib.rs:3:9, see E0425";
        assert_eq!(
            protected_words(text),
            vec!["error", "cannot", "x_1", "/src/lib.rs:3:9", "E0425"]
        );
    }
}
