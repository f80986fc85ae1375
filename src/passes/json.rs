//! Compact pretty-printed JSON, keeping every key and value; the result stays valid JSON.
//!
//! - The whole text (trimmed) is one JSON object or array: it is re-emitted compactly.
//! - Otherwise, when every non-empty line is a JSON object or array (JSON Lines, such as
//!   `cargo build --message-format=json`), each line is compacted on its own and empty
//!   lines stay.
//!
//! serde_json only validates: the output is the input minus the whitespace between
//! tokens, so key order, string escapes (`"\u00e9"`) and number spellings (`1.0`, `1e5`,
//! 30-digit integers) stay byte for byte. A document with a duplicate key in some object is left as it was, since a parser keeps
//! only one of the two values. The input's final-newline status is kept. No marker: the
//! output holds everything the input did.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

pub fn apply(text: &str) -> Cow<'_, str> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Cow::Borrowed(text);
    }
    let newline = if text.ends_with("\r\n") {
        "\r\n"
    } else if text.ends_with('\n') {
        "\n"
    } else {
        ""
    };
    if let Some(compact) = compact(trimmed) {
        return shorter(text, compact + newline);
    }
    match json_lines(text) {
        Some(out) => shorter(text, out),
        None => Cow::Borrowed(text),
    }
}

/// JSON Lines, each line compacted: `None` unless every non-empty line is a JSON object
/// or array and there are at least two lines.
fn json_lines(text: &str) -> Option<String> {
    let lines = super::lines::split(text);
    if lines.len() < 2 {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for line in &lines {
        let body = line.body.trim();
        if body.is_empty() {
            out.push_str(line.body);
        } else {
            out.push_str(&compact(body)?);
        }
        out.push_str(line.eol);
    }
    Some(out)
}

fn shorter(text: &str, out: String) -> Cow<'_, str> {
    if out.len() < text.len() {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// `json` as compact JSON, when it is one object or array without duplicate keys.
///
/// serde_json validates; the output is the input with the whitespace between tokens
/// removed, so every string escape and number spelling stays byte for byte.
fn compact(json: &str) -> Option<String> {
    if !(json.starts_with('{') || json.starts_with('[')) {
        return None;
    }
    serde_json::from_str::<NoDuplicateKeys>(json).ok()?;
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut kept = 0;
    for (i, b) in json.bytes().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            // Whitespace between tokens: only ASCII bytes are cut, so `kept` and `i`
            // are char boundaries.
            out.push_str(&json[kept..i]);
            kept = i + 1;
        }
    }
    out.push_str(&json[kept..]);
    Some(out)
}

/// Deserializes any JSON value and fails on an object with a repeated key.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key) {
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::Value;

    fn same_json(a: &str, b: &str) {
        let a: Value = serde_json::from_str(a).unwrap();
        let b: Value = serde_json::from_str(b).unwrap();
        assert_eq!(a, b);
    }

    // An MCP github response in the corpus's pretty style (indent 2).
    const PRETTY: &str = r#"{
  "login": "octocat",
  "id": 1,
  "node_id": "MDQ6VXNlcjE=",
  "site_admin": false,
  "score": 1.0,
  "ratio": 1e5,
  "big": 123456789012345678901234567890,
  "neg": -0.000,
  "name": null,
  "bio": "line one\nline two \"quoted\" \u00e9 \ud83d\ude00",
  "plan": {
    "name": "free",
    "collaborators": [],
    "private_repos": [
      1,
      2.50
    ]
  }
}
"#;

    #[test]
    fn pretty_object_is_compacted_exactly() {
        let out = apply(PRETTY);
        assert_eq!(
            out,
            "{\"login\":\"octocat\",\"id\":1,\"node_id\":\"MDQ6VXNlcjE=\",\"site_admin\":false,\"score\":1.0,\"ratio\":1e5,\"big\":123456789012345678901234567890,\"neg\":-0.000,\"name\":null,\"bio\":\"line one\\nline two \\\"quoted\\\" \\u00e9 \\ud83d\\ude00\",\"plan\":{\"name\":\"free\",\"collaborators\":[],\"private_repos\":[1,2.50]}}\n"
        );
        same_json(&out, PRETTY);
    }

    #[test]
    fn duplicate_keys_leave_the_text_alone() {
        let text = "{\n  \"a\": 1,\n  \"b\": {\n    \"x\": 1,\n    \"x\": 2\n  }\n}\n";
        assert!(matches!(apply(text), Cow::Borrowed(_)));
        let text = "[\n  {\"a\": 1},\n  {\"a\": 2, \"a\": 3}\n]";
        assert!(matches!(apply(text), Cow::Borrowed(_)));
        // The same key in sibling objects is fine.
        assert_eq!(
            apply("[\n  {\"a\": 1},\n  {\"a\": 2}\n]"),
            "[{\"a\":1},{\"a\":2}]"
        );
    }

    #[test]
    fn json_lines_compact_line_by_line() {
        let text = "{\"reason\": \"compiler-artifact\", \"package_id\": \"walkdir 0.1.5\"}\n\n{\"reason\": \"build-finished\", \"success\": true}\n";
        assert_eq!(
            apply(text),
            "{\"reason\":\"compiler-artifact\",\"package_id\":\"walkdir 0.1.5\"}\n\n{\"reason\":\"build-finished\",\"success\":true}\n"
        );
        // One line that is not JSON: unchanged.
        let mixed = "{\"a\": 1}\n   Compiling walkdir v0.1.5\n{\"b\": 2}\n";
        assert!(matches!(apply(mixed), Cow::Borrowed(_)));
    }

    #[test]
    fn not_json_or_already_compact_stays() {
        for text in [
            "",
            "   \n",
            "{\"a\":1}",
            "[1,2]\n",
            "{ not json }",
            "\"just a string\"",
            "42",
            "{\"a\": 1} trailing",
            "[\"\\ud800\"]",
            "\r",
        ] {
            assert!(matches!(apply(text), Cow::Borrowed(_)), "{text:?}");
        }
        // Deeper than serde_json's recursion limit: left alone, no panic.
        let deep = format!("{}{}", "[ ".repeat(1000), " ]".repeat(1000));
        assert!(matches!(apply(&deep), Cow::Borrowed(_)));
    }

    #[test]
    fn crlf_and_surrounding_whitespace() {
        assert_eq!(apply("\r\n  [\r\n  1,\r\n  2\r\n]\r\n"), "[1,2]\r\n");
        assert_eq!(apply("{ \"a\" : [ 1 ] }"), "{\"a\":[1]}");
    }
}
