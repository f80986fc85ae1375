//! Regexes for the hot path: compiled on first use, and built lean.
//!
//! A hook call is one short process, so every regex it uses is compiled in that call, and
//! compiling cost more than matching: `regex::Regex` also builds a full DFA for small
//! patterns, a one-pass DFA, a backtracker and a literal prefilter, which pay off over many
//! searches, not over the few hundred lines of one output. A [`Pattern`] is the lazy DFA
//! alone (the PikeVM behind it), which still scans a line in microseconds: compiling
//! `select`'s signal-line pattern went from 0.65 to 0.29 ms and the log pattern of
//! `pipeline` from 0.87 to 0.13 ms, measured one after the other in one process.
//!
//! Patterns that only ask whether ASCII signals occur ([`Pattern::bytes`]) compile over
//! bytes with ASCII classes: `.`, `\S` and `[^…]` over Unicode text become UTF-8
//! automata, most of a pattern's compile time.

use std::sync::OnceLock;

use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;

/// A regex compiled on first use; see the module docs.
pub struct Pattern {
    source: &'static str,
    unicode: bool,
    regex: OnceLock<Regex>,
}

impl Pattern {
    /// `source` with the usual (Unicode) meaning.
    pub const fn new(source: &'static str) -> Pattern {
        Pattern {
            source,
            unicode: true,
            regex: OnceLock::new(),
        }
    }

    /// `source` over bytes, with ASCII classes: only for [`Pattern::is_match`] on patterns
    /// whose literals are ASCII (a test should check it agrees with [`compile`]`(source,
    /// true)` on real text).
    pub const fn bytes(source: &'static str) -> Pattern {
        Pattern {
            source,
            unicode: false,
            regex: OnceLock::new(),
        }
    }

    /// The pattern as written.
    pub fn source(&self) -> &'static str {
        self.source
    }

    fn regex(&self) -> &Regex {
        self.regex
            .get_or_init(|| compile(self.source, self.unicode))
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex().is_match(text)
    }

    /// The non-overlapping matches in `text`, left to right.
    pub fn find_iter<'t>(&self, text: &'t str) -> impl Iterator<Item = &'t str> {
        assert!(
            self.unicode,
            "a bytes pattern's matches may split a character"
        );
        self.regex().find_iter(text).map(move |m| &text[m.range()])
    }
}

/// A pattern behind a literal test: compiling a pattern costs more than most of a hook
/// call, and most outputs hold none of the literals a pattern needs, so most hook calls
/// never compile it.
pub struct Gated {
    /// Every match of the pattern holds one of these. One that starts with `\n` stands
    /// for a line start: it may also begin the text.
    pub needles: &'static [&'static str],
    pub pattern: Pattern,
}

impl Gated {
    /// False only when the pattern cannot match `text`.
    pub fn may_match(&self, text: &str) -> bool {
        self.needles.iter().any(|needle| match needle.strip_prefix('\n') {
            Some(start) => text.starts_with(start) || text.contains(needle),
            None => text.contains(needle),
        })
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.may_match(text) && self.pattern.is_match(text)
    }
}

/// `source` built lean, over Unicode text or (`unicode` false) over bytes with ASCII
/// classes. Panics on an invalid pattern: patterns are constants, and tests compile each.
pub fn compile(source: &str, unicode: bool) -> Regex {
    let config = meta::Config::new()
        .dfa(false)
        .onepass(false)
        .backtrack(false)
        .auto_prefilter(false)
        .utf8_empty(unicode);
    Regex::builder()
        .configure(config)
        .syntax(syntax::Config::new().unicode(unicode).utf8(unicode))
        .build(source)
        .expect("valid regex")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_the_regex_crate() {
        let p = Pattern::new(r"(?:[A-Za-z0-9_.\-]+/)+[A-Za-z0-9_.\-]+\.[A-Za-z]{1,4}(?-u:\b)");
        let text = "see src/a.rs and ä/b/c.py, not x.y";
        let got: Vec<&str> = p.find_iter(text).collect();
        let want: Vec<&str> = regex::Regex::new(p.source())
            .unwrap()
            .find_iter(text)
            .map(|m| m.as_str())
            .collect();
        assert_eq!(got, want);
        assert_eq!(got, ["src/a.rs", "b/c.py"]);
        let bytes = Pattern::bytes(r"^\S+ [0-9]+$");
        assert!(bytes.is_match("日本 42") && !bytes.is_match("a 4x"));
    }
}
