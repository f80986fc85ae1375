//! Unicode character classes as the `regex` crate defines them (`\p{L}`, `\p{N}`, `\s`),
//! without compiling a regex: the pre-tokenizers of both tokenizers ([`crate::tokens`]'s
//! cl100k and the model's BPE) are written by hand, and building a Unicode-class regex
//! automaton takes milliseconds that a hook process cannot spare. The ranges come from
//! `regex-syntax`, the tables `regex` itself uses, so the classes match it exactly.

use std::sync::OnceLock;

/// Sorted code point ranges of a Unicode class, from the same tables the `regex` crate uses.
fn class_ranges(pattern: &str) -> Vec<(char, char)> {
    use regex_syntax::hir::{Class, HirKind};
    let hir = regex_syntax::Parser::new()
        .parse(pattern)
        .expect("valid class");
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => class
            .ranges()
            .iter()
            .map(|r| (r.start(), r.end()))
            .collect(),
        other => panic!("{pattern} is not a Unicode class: {other:?}"),
    }
}

fn in_ranges(ranges: &[(char, char)], c: char) -> bool {
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `\p{L}` as in `regex`.
pub fn is_letter(c: char) -> bool {
    static RANGES: OnceLock<Vec<(char, char)>> = OnceLock::new();
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    in_ranges(RANGES.get_or_init(|| class_ranges(r"\p{L}")), c)
}

/// `\p{N}` as in `regex`.
pub fn is_number(c: char) -> bool {
    static RANGES: OnceLock<Vec<(char, char)>> = OnceLock::new();
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    in_ranges(RANGES.get_or_init(|| class_ranges(r"\p{N}")), c)
}

/// `\s` as in `regex` (Unicode `White_Space`, which is what `char::is_whitespace` tests).
pub fn is_space(c: char) -> bool {
    c.is_whitespace()
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Letter,
    Number,
    Space,
    Other,
}

pub fn class(c: char) -> Class {
    if is_letter(c) {
        Class::Letter
    } else if is_number(c) {
        Class::Number
    } else if is_space(c) {
        Class::Space
    } else {
        Class::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_classes_match_regex() {
        let letters = regex::Regex::new(r"^\p{L}$").unwrap();
        let numbers = regex::Regex::new(r"^\p{N}$").unwrap();
        let spaces = regex::Regex::new(r"^\s$").unwrap();
        for c in (0..0x3_0000).filter_map(char::from_u32) {
            let s = c.to_string();
            assert_eq!(is_letter(c), letters.is_match(&s), "{c:?}");
            assert_eq!(is_number(c), numbers.is_match(&s), "{c:?}");
            assert_eq!(is_space(c), spaces.is_match(&s), "{c:?}");
        }
    }
}
