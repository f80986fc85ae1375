//! Line helpers shared by the passes: split a text into lines that remember their
//! ending, and rebuild a text with marker lines while keeping the input's final-newline
//! status.

/// One line of a text: its body and its ending (`"\n"`, `"\r\n"`, or `""` for a last
/// line without a newline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    pub body: &'a str,
    pub eol: &'a str,
}

impl<'a> Line<'a> {
    /// True when the line holds only whitespace.
    pub fn is_blank(&self) -> bool {
        self.body.trim().is_empty()
    }

    /// The leading spaces and tabs of the line.
    pub fn indent(&self) -> &'a str {
        let body = self.body;
        &body[..body.len() - body.trim_start_matches([' ', '\t']).len()]
    }

    /// Bytes the line takes in the text, ending included.
    pub fn len(&self) -> usize {
        self.body.len() + self.eol.len()
    }
}

/// Split `text` into lines. A `\r` directly before `\n` belongs to the ending.
pub(crate) fn split(text: &str) -> Vec<Line<'_>> {
    text.split_inclusive('\n')
        .map(|piece| {
            if let Some(body) = piece.strip_suffix("\r\n") {
                Line {
                    body,
                    eol: &piece[body.len()..],
                }
            } else if let Some(body) = piece.strip_suffix('\n') {
                Line {
                    body,
                    eol: &piece[body.len()..],
                }
            } else {
                Line {
                    body: piece,
                    eol: "",
                }
            }
        })
        .collect()
}

/// The line ending a marker written among `lines` should use: the first non-empty ending
/// found among them, else `"\n"`.
pub(crate) fn eol_of(lines: &[Line<'_>]) -> &'static str {
    match lines.iter().find(|l| !l.eol.is_empty()) {
        Some(l) if l.eol == "\r\n" => "\r\n",
        _ => "\n",
    }
}

/// An output under construction.
pub(crate) struct Out {
    text: String,
    trailing_newline: bool,
}

impl Out {
    /// An empty output for `input`: it ends with a newline exactly when `input` does.
    pub fn new(input: &str) -> Out {
        Out {
            text: String::with_capacity(input.len()),
            trailing_newline: input.ends_with('\n'),
        }
    }

    /// Append a line as it was.
    pub fn line(&mut self, line: &Line<'_>) {
        self.text.push_str(line.body);
        self.text.push_str(line.eol);
    }

    /// Append a body with an ending.
    pub fn push(&mut self, body: &str, eol: &str) {
        self.text.push_str(body);
        self.text.push_str(eol);
    }

    /// Append a marker line (see [`super::marker`]) with an indentation and an ending.
    pub fn marker(&mut self, indent: &str, msg: &str, eol: &str) {
        self.text.push_str(indent);
        self.text.push_str(&super::marker(msg));
        self.text.push_str(eol);
    }

    /// The output, with the input's final-newline status.
    pub fn finish(mut self) -> String {
        if !self.trailing_newline {
            if self.text.ends_with("\r\n") {
                self.text.truncate(self.text.len() - 2);
            } else if self.text.ends_with('\n') {
                self.text.truncate(self.text.len() - 1);
            }
        }
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_endings() {
        let lines = split("a\r\nb\n\rc\r");
        assert_eq!(
            lines,
            vec![
                Line {
                    body: "a",
                    eol: "\r\n"
                },
                Line {
                    body: "b",
                    eol: "\n"
                },
                Line {
                    body: "\rc\r",
                    eol: ""
                },
            ]
        );
        assert!(split("").is_empty());
        let rebuilt: String = split("x\n\ny\r\n")
            .iter()
            .map(|l| format!("{}{}", l.body, l.eol))
            .collect();
        assert_eq!(rebuilt, "x\n\ny\r\n");
    }

    #[test]
    fn finish_keeps_final_newline_status() {
        let mut out = Out::new("a");
        out.push("a", "\n");
        out.marker("", "x", "\n");
        assert_eq!(out.finish(), "a\n[kompress: x]");
        let mut out = Out::new("a\n");
        out.marker("  ", "x", "\r\n");
        assert_eq!(out.finish(), "  [kompress: x]\r\n");
    }
}
