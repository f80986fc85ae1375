//! Collapse runs of two or more blank (whitespace-only) lines to one empty line.
//!
//! No marker: a blank line carries no fact, and one blank line still shows the break.
//! A single blank line is left exactly as it was.

use std::borrow::Cow;

use super::lines::{self, Out};

pub fn apply(text: &str) -> Cow<'_, str> {
    let lines = lines::split(text);
    let has_run = lines.windows(2).any(|w| w[0].is_blank() && w[1].is_blank());
    if !has_run {
        return Cow::Borrowed(text);
    }
    let mut out = Out::new(text);
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].is_blank() {
            out.line(&lines[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].is_blank() {
            i += 1;
        }
        if i - start == 1 {
            out.line(&lines[start]);
        } else {
            out.push("", lines::eol_of(&lines[start..i]));
        }
    }
    Cow::Owned(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_collapse_to_one_empty_line() {
        let text = "Ran 11 tests in 0.022s\n\n\n\nOK\n  \n\t\n\nTests run: 11\n";
        assert_eq!(
            apply(text),
            "Ran 11 tests in 0.022s\n\nOK\n\nTests run: 11\n"
        );
    }

    #[test]
    fn single_blank_lines_and_edges() {
        let text = "a\n   \nb\n";
        assert!(matches!(apply(text), Cow::Borrowed(_)));
        assert!(matches!(apply(""), Cow::Borrowed(_)));
        assert_eq!(apply("a\r\n\r\n\r\nb\r\n"), "a\r\n\r\nb\r\n");
        // Trailing blank run without a final newline keeps the missing newline.
        assert_eq!(apply("a\n\n\n  "), "a\n");
        assert_eq!(apply("\n\n\n"), "\n");
        assert_eq!(apply("é\n\n\nü"), "é\n\nü");
    }
}
