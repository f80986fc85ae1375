//! Data elision for big file reads, keeping every line number right.
//!
//! Claude Code's Edit copies exact text from what Read showed, and Read's result is
//! numbered by Claude Code from `startLine`, so a file read must keep its lines where they
//! are. This pass only touches big files (at least [`MIN_BYTES`]) and only regions an agent
//! does not read as code: runs of at least [`MIN_RUN`] data lines (base64, hex, long
//! numeric rows) and single lines longer than [`MAX_LINE`] bytes (minified code, embedded
//! blobs). Each region keeps its line count: its first line becomes a marker saying what
//! was there and how to see it, the others become empty. Ordinary source is untouched.

use std::borrow::Cow;

use super::lines::{self, Out};

/// Files smaller than this are left alone.
pub const MIN_BYTES: usize = 20_000;
/// Fewer consecutive data lines than this stay.
pub const MIN_RUN: usize = 20;
/// A single line longer than this is elided whatever it holds.
pub const MAX_LINE: usize = 2_000;

/// What a data line is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Data {
    Base64,
    Hex,
    Numeric,
}

impl Data {
    fn name(self) -> &'static str {
        match self {
            Data::Base64 => "base64",
            Data::Hex => "hex",
            Data::Numeric => "numeric",
        }
    }
}

/// Classify a line as data: at least 64 bytes, made almost only of one alphabet.
fn data(body: &str) -> Option<Data> {
    let core = body.trim_matches(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '"' | '\'' | ',' | ';' | '[' | ']' | '(' | ')' | '{' | '}'
            )
    });
    if core.len() < 64 || core.contains(char::is_whitespace) && !numeric_row(core) {
        return None;
    }
    if core.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(Data::Hex);
    }
    if numeric_row(core) {
        return Some(Data::Numeric);
    }
    let base64 = core
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'));
    // Base64 mixes cases and digits; a long identifier does not.
    let mixed = core.bytes().any(|b| b.is_ascii_digit())
        && core.bytes().any(|b| b.is_ascii_uppercase())
        && core.bytes().any(|b| b.is_ascii_lowercase());
    (base64 && mixed).then_some(Data::Base64)
}

/// Numbers separated by commas, spaces or tabs, and nothing else.
fn numeric_row(core: &str) -> bool {
    let mut digits = 0;
    for b in core.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b',' | b' ' | b'\t' | b'.' | b'-' | b'+' | b'e' | b'E' => {}
            _ => return false,
        }
    }
    digits * 2 >= core.len()
}

pub fn apply(text: &str) -> Cow<'_, str> {
    if text.len() < MIN_BYTES {
        return Cow::Borrowed(text);
    }
    let lines = lines::split(text);
    let kinds: Vec<Option<Data>> = lines.iter().map(|l| data(l.body)).collect();
    let mut out = Out::new(text);
    let mut changed = false;
    let mut i = 0;
    while i < lines.len() {
        if let Some(kind) = kinds[i] {
            let run = kinds[i..].iter().take_while(|k| **k == Some(kind)).count();
            if run >= MIN_RUN {
                let bytes: usize = lines[i..i + run].iter().map(|l| l.len()).sum();
                let msg = format!(
                    "this line and the next {} ({bytes} bytes of {} data) elided; read them with offset/limit if needed",
                    run - 1,
                    kind.name()
                );
                out.marker("", &msg, lines[i].eol);
                for line in &lines[i + 1..i + run] {
                    out.push("", line.eol);
                }
                changed = true;
                i += run;
                continue;
            }
        }
        let line = &lines[i];
        if line.body.len() > MAX_LINE {
            let msg = format!(
                "line of {} bytes elided (minified or data); read it with offset/limit if needed",
                line.body.len()
            );
            out.marker("", &msg, line.eol);
            changed = true;
        } else {
            out.line(line);
        }
        i += 1;
    }
    if changed {
        Cow::Owned(out.finish())
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(lines: usize) -> String {
        (0..lines)
            .map(|i| format!("    let value_{i} = compute(input, {i});\n"))
            .collect()
    }

    #[test]
    fn small_files_and_source_are_untouched() {
        let small = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=\n".repeat(50);
        assert!(matches!(apply(&small), Cow::Borrowed(_)));
        let big = source(2000);
        assert!(big.len() > MIN_BYTES);
        assert!(matches!(apply(&big), Cow::Borrowed(_)));
    }

    #[test]
    fn data_runs_keep_line_numbers() {
        let blob = "    \"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=\",\n";
        let text = format!("{}{}{}", source(300), blob.repeat(200), source(300));
        let out = apply(&text);
        assert_eq!(out.lines().count(), text.lines().count());
        assert!(out.len() + 15_000 < text.len(), "{} of {}", out.len(), text.len());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[299], "    let value_299 = compute(input, 299);");
        assert!(
            lines[300].starts_with("[kompress: this line and the next 199 ("),
            "{}",
            lines[300]
        );
        assert!(lines[300].contains("base64 data"));
        assert_eq!(lines[301], "");
        assert_eq!(lines[500], "    let value_0 = compute(input, 0);");
    }

    #[test]
    fn numeric_rows_and_minified_lines() {
        let row = "0.125, 0.250, 0.375, 0.500, 0.625, 0.750, 0.875, 1.000, 1.125, 1.250, 1.375,\n";
        let minified = format!("var a={};\n", "x+1;".repeat(1000));
        let text = format!(
            "{}{}{}{}",
            source(400),
            row.repeat(30),
            minified,
            source(100)
        );
        let out = apply(&text);
        assert_eq!(out.lines().count(), text.lines().count());
        assert!(out.contains("bytes of numeric data) elided"));
        assert!(out.contains("[kompress: line of 4007 bytes elided (minified or data)"));
        // Short runs stay.
        let few = format!("{}{}", source(800), row.repeat(5));
        assert!(matches!(apply(&few), Cow::Borrowed(_)));
    }

    #[test]
    fn long_identifiers_are_not_base64() {
        assert_eq!(
            data(
                "    test_this_is_a_very_long_function_name_that_goes_on_and_on_forever_and_ever_more"
            ),
            None
        );
        assert_eq!(
            data("deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef00"),
            Some(Data::Hex)
        );
    }
}
