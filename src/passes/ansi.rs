//! Strip ANSI / VT escape sequences: colours, cursor movement, erase-line, OSC titles and
//! hyperlinks. Terminal state is not content; the text between sequences is kept as is.
//!
//! Recognised (ECMA-48):
//! - CSI `ESC [` parameters (0x30–0x3F), intermediates (0x20–0x2F), one final byte
//!   (0x40–0x7E);
//! - string sequences OSC `ESC ]`, DCS `ESC P`, SOS `ESC X`, PM `ESC ^`, APC `ESC _`, ended
//!   by BEL or ST (`ESC \`);
//! - `ESC` + intermediates + one final byte (`ESC ( B`, `ESC 7`, `ESC =`…).
//!
//! A malformed or unterminated sequence never swallows a line ending: it ends before the
//! first byte that cannot belong to it (a string sequence ends at a newline), and that
//! byte is kept.

use std::borrow::Cow;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

pub fn apply(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let Some(first) = bytes.iter().position(|&b| b == ESC) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0; // bytes[..copied] are handled
    let mut i = first;
    while i < bytes.len() {
        if bytes[i] != ESC {
            i += 1;
            continue;
        }
        out.push_str(&text[copied..i]);
        i = skip_sequence(bytes, i);
        copied = i;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// `bytes[start]` is ESC: the index just past the sequence it opens. Every index returned
/// is at an ASCII byte or the end, so it is a char boundary.
fn skip_sequence(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    let Some(&kind) = bytes.get(i) else { return i };
    match kind {
        b'[' => {
            i += 1;
            while i < bytes.len() && (0x30..=0x3f).contains(&bytes[i]) {
                i += 1;
            }
            while i < bytes.len() && (0x20..=0x2f).contains(&bytes[i]) {
                i += 1;
            }
            if i < bytes.len() && (0x40..=0x7e).contains(&bytes[i]) {
                i += 1;
            }
            i
        }
        b']' | b'P' | b'X' | b'^' | b'_' => {
            i += 1;
            while i < bytes.len() {
                match bytes[i] {
                    BEL => return i + 1,
                    ESC if bytes.get(i + 1) == Some(&b'\\') => return i + 2,
                    // Another sequence starts: this one was unterminated.
                    ESC | b'\n' => return i,
                    _ => i += 1,
                }
            }
            i
        }
        0x20..=0x2f => {
            while i < bytes.len() && (0x20..=0x2f).contains(&bytes[i]) {
                i += 1;
            }
            if i < bytes.len() && (0x30..=0x7e).contains(&bytes[i]) {
                i += 1;
            }
            i
        }
        0x30..=0x7e => i + 1,
        // ESC followed by a control byte or non-ASCII: drop the lone ESC only.
        _ => i,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_colours_are_stripped() {
        // dev-002005: `cargo test --color=always`.
        let text = "\x1b[1m\x1b[33mwarning\x1b[0m\x1b[1m: use of deprecated macro `try`: use the `?` operator instead\x1b[0m\n  \x1b[1m\x1b[94m--> \x1b[0msrc/same_file.rs:28:15\n\x1b[1m\x1b[94m28\x1b[0m \x1b[1m\x1b[94m|\x1b[0m     let md1 = try!(fs::metadata(p1));\n";
        assert_eq!(
            apply(text),
            "warning: use of deprecated macro `try`: use the `?` operator instead\n  --> src/same_file.rs:28:15\n28 |     let md1 = try!(fs::metadata(p1));\n"
        );
    }

    #[test]
    fn grep_colours_with_erase_line_are_stripped() {
        // dev-002813: `grep --color=always -n "pub fn" src/lib.rs`.
        let text = "\x1b[32m\x1b[K289\x1b[m\x1b[K\x1b[36m\x1b[K:\x1b[m\x1b[K    \x1b[01;31m\x1b[Kpub fn\x1b[m\x1b[K new<P: AsRef<Path>>(root: P) -> Self {\n";
        assert_eq!(
            apply(text),
            "289:    pub fn new<P: AsRef<Path>>(root: P) -> Self {\n"
        );
    }

    #[test]
    fn osc_and_short_sequences() {
        assert_eq!(apply("\x1b]0;title\x07hello"), "hello");
        assert_eq!(
            apply("\x1b]8;;https://x.y\x1b\\link\x1b]8;;\x1b\\ end"),
            "link end"
        );
        assert_eq!(apply("a\x1b(Bb\x1b7c\x1b=d"), "abcd");
        assert_eq!(apply("\x1b[?25lhidden cursor\x1b[?25h"), "hidden cursor");
        assert_eq!(apply("\x1b[2J\x1b[1;1Hscreen"), "screen");
    }

    #[test]
    fn malformed_sequences_keep_text_and_newlines() {
        // Unterminated OSC stops at the newline.
        assert_eq!(apply("\x1b]0;title\nnext line\n"), "\nnext line\n");
        // CSI cut by a newline keeps the newline.
        assert_eq!(apply("a\x1b[31\nb"), "a\nb");
        // ESC at the very end, ESC before non-ASCII.
        assert_eq!(apply("end\x1b"), "end");
        assert_eq!(apply("\x1bé ü"), "é ü");
        assert_eq!(apply("\x1b[31mrouge é\x1b[0m"), "rouge é");
    }

    #[test]
    fn unchanged_text_is_borrowed() {
        assert!(matches!(apply("plain text\n"), Cow::Borrowed(_)));
        assert!(matches!(apply(""), Cow::Borrowed(_)));
        assert_eq!(apply("\r\n\x1b[0m\r\n"), "\r\n\r\n");
    }
}
