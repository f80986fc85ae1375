//! Strip trailing spaces and tabs at line ends. Line endings (`\n`, `\r\n`) are kept, and
//! so is everything else: leading indentation, inner spacing, a lone `\r`.

use std::borrow::Cow;

use super::lines;

fn trim_end(body: &str) -> &str {
    body.trim_end_matches([' ', '\t'])
}

pub fn apply(text: &str) -> Cow<'_, str> {
    let lines = lines::split(text);
    if !lines.iter().any(|l| trim_end(l.body).len() != l.body.len()) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for line in &lines {
        out.push_str(trim_end(line.body));
        out.push_str(line.eol);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_blanks_go_endings_stay() {
        // git log --stat output ends its graph lines with a space (dev-002481).
        let text =
            "| Date:   Fri Mar 1 12:55:08 2024 -0500\n| \n|     2.5.0\t \r\n|  Cargo.toml | 2 +-";
        assert_eq!(
            apply(text),
            "| Date:   Fri Mar 1 12:55:08 2024 -0500\n|\n|     2.5.0\r\n|  Cargo.toml | 2 +-"
        );
    }

    #[test]
    fn inner_and_leading_whitespace_is_kept() {
        let text = "    x  =  1\n\tfoo\n";
        assert!(matches!(apply(text), Cow::Borrowed(_)));
        assert_eq!(apply("   \n"), "\n");
        assert_eq!(apply("a  "), "a");
        assert_eq!(apply("é \u{a0}\n"), "é \u{a0}\n");
        // A lone \r is not an ending: the spaces before it are not at a line end.
        assert!(matches!(apply("a \rb\n"), Cow::Borrowed(_)));
        assert!(matches!(apply(""), Cow::Borrowed(_)));
    }
}
