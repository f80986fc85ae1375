//! cl100k token counts: the unit of every size decision and every reported saving.
//!
//! Exact cl100k_base counts (tiktoken's), computed without loading anything. The previous
//! counter, `bpe-openai`, deserializes its tables on first use: ~25 ms of CPU, which every
//! hook that had shortened an output paid, and most of a passthrough's time. Here:
//!
//! - the vocabulary is a table sorted by bytes that `build.rs` writes (from `bpe-openai`, a
//!   build dependency) and the binary embeds; a piece's rank is a binary search in it;
//! - the cl100k pre-tokenizer pattern is matched by hand ([`piece_len`]), with the Unicode
//!   classes of the `regex` crate ([`crate::charclass`]) and no regex to compile;
//! - each piece that is not itself a token is merged as tiktoken does: the adjacent pair of
//!   lowest rank first, the leftmost on ties ([`piece_tokens`]).
//!
//! Tests check the counts against `bpe-openai` on the golden records and on random text.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::charclass::{Class, class};

/// See `build.rs` for the layout.
static TABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cl100k.bin"));

fn u32_at(bytes: &[u8], i: usize) -> usize {
    u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes")) as usize
}

/// The rank (token id) of `bytes` (not empty), if it is a cl100k token.
fn rank(bytes: &[u8]) -> Option<u32> {
    const INDEX: usize = (1 << 16) + 1;
    let n = u32_at(TABLE, 0);
    let offsets = &TABLE[4..4 * (n + 2)];
    let ranks = &TABLE[4 * (n + 2)..4 * (2 * n + 2)];
    let index = &TABLE[4 * (2 * n + 2)..4 * (2 * n + 2 + INDEX)];
    let blob = &TABLE[4 * (2 * n + 2 + INDEX)..];
    let key = usize::from(bytes[0]) << 8 | usize::from(bytes.get(1).copied().unwrap_or(0));
    let (mut lo, mut hi) = (u32_at(index, key), u32_at(index, key + 1));
    while lo < hi {
        let mid = (lo + hi) / 2;
        let entry = &blob[u32_at(offsets, mid)..u32_at(offsets, mid + 1)];
        match entry.cmp(bytes) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Some(u32_at(ranks, mid) as u32),
        }
    }
    None
}

/// Number of cl100k_base tokens in `text`.
pub fn count(text: &str) -> usize {
    let mut merge = Merge::default();
    Pieces(text).map(|p| merge.tokens(p.as_bytes())).sum()
}

/// [`count`] of `head` followed by `tail`, given `head_tokens`, the count of `head`.
///
/// When `head` ends a line and `tail` starts with a character that is not whitespace, no
/// pre-tokenizer piece spans the two (a piece holds a line break only at its end, or
/// whitespace after it), so the counts add up and `head` is not counted again; otherwise
/// the whole text is counted.
pub fn count_joined(head: &str, head_tokens: usize, tail: &str) -> usize {
    if head.ends_with('\n') && tail.starts_with(|c: char| !c.is_whitespace()) {
        head_tokens + count(tail)
    } else {
        count(&format!("{head}{tail}"))
    }
}

/// `Some(n)` when `text` has at most `limit` tokens, `None` as soon as it has more.
///
/// Cheaper than [`count`] on huge inputs when only a comparison is needed.
pub fn count_up_to(text: &str, limit: usize) -> Option<usize> {
    let mut merge = Merge::default();
    let mut n = 0;
    for piece in Pieces(text) {
        n += merge.tokens(piece.as_bytes());
        if n > limit {
            return None;
        }
    }
    Some(n)
}

/// The pre-tokenizer's pieces of a text, in order.
struct Pieces<'a>(&'a str);

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        let (piece, rest) = self.0.split_at(piece_len(self.0));
        self.0 = rest;
        Some(piece)
    }
}

/// Byte length of the cl100k pre-tokenizer's match at the start of `s` (non-empty), that is
/// of the first alternative of
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// that matches there, as the regex's leftmost-first alternation picks it.
fn piece_len(s: &str) -> usize {
    let mut chars = s.chars();
    let c0 = chars.next().expect("non-empty");
    let c1 = chars.next();
    let at1 = c0.len_utf8();
    if c0 == '\''
        && let Some(n) = contraction(&s[1..])
    {
        return 1 + n;
    }
    let k0 = class(c0);
    let k1 = c1.map(class);
    if k0 == Class::Letter {
        return run_end(s, 0, Class::Letter);
    }
    if k1 == Some(Class::Letter) && k0 != Class::Number && c0 != '\r' && c0 != '\n' {
        return run_end(s, at1, Class::Letter);
    }
    if k0 == Class::Number {
        return s
            .char_indices()
            .take(3)
            .take_while(|&(_, c)| class(c) == Class::Number)
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
    }
    let punctuation = if c0 == ' ' && k1 == Some(Class::Other) {
        Some(at1)
    } else if k0 == Class::Other {
        Some(0)
    } else {
        None
    };
    if let Some(from) = punctuation {
        let end = run_end(s, from, Class::Other);
        return end
            + s[end..]
                .bytes()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
    }
    // Whitespace. `\s*[\r\n]+`: up to the run's last line break, if it has one.
    let end = run_end(s, 0, Class::Space);
    if let Some(i) = s[..end].rfind(['\r', '\n']) {
        return i + 1;
    }
    // `\s+(?!\S)`: the whole run at the end of the text, else all but its last character
    // (which goes with the next piece); `\s+` for a single character before a non-space.
    if end == s.len() {
        return end;
    }
    match s[..end].char_indices().next_back() {
        Some((last, _)) if last > 0 => last,
        _ => end,
    }
}

/// Byte length of the contraction suffix (`s`, `t`, `re`, `ve`, `m`, `ll`, `d`, any case)
/// at the start of `rest`, the text after an apostrophe.
fn contraction(rest: &str) -> Option<usize> {
    // Case-insensitive as `regex` folds: `s` also matches `S` and `ſ` (U+017F).
    let fold = |c: char| match c {
        'ſ' => 's',
        c => c.to_ascii_lowercase(),
    };
    let mut chars = rest.chars();
    let a = chars.next()?;
    match fold(a) {
        's' | 't' | 'm' | 'd' => Some(a.len_utf8()),
        'r' | 'v' => (chars.next().map(fold) == Some('e')).then_some(2),
        'l' => (chars.next().map(fold) == Some('l')).then_some(2),
        _ => None,
    }
}

/// End (byte index) of the run of `class` characters in `s` from byte `from`.
fn run_end(s: &str, from: usize, want: Class) -> usize {
    s[from..]
        .char_indices()
        .find(|&(_, c)| class(c) != want)
        .map_or(s.len(), |(i, _)| from + i)
}

/// Byte-pair merging of one piece, with buffers reused across pieces.
#[derive(Default)]
struct Merge {
    /// Per byte position that starts a part: where the next part starts (`len` at the end).
    next: Vec<usize>,
    /// Where the previous part starts.
    prev: Vec<usize>,
    /// Bumped whenever the pair starting at a position changes, so stale heap entries
    /// are recognized.
    version: Vec<u32>,
    alive: Vec<bool>,
    heap: BinaryHeap<Reverse<(u32, usize, u32)>>,
}

impl Merge {
    /// Tokens of `piece`: 1 if it is a token, else the parts left after merging, pair by
    /// pair, the adjacent pair whose concatenation has the lowest rank (the leftmost on
    /// ties) until no adjacent pair is a token.
    fn tokens(&mut self, piece: &[u8]) -> usize {
        let n = piece.len();
        // Every single byte is a cl100k token.
        if n <= 1 || rank(piece).is_some() {
            return n.min(1);
        }
        self.next.clear();
        self.next.extend(1..=n);
        self.next.push(n);
        self.prev.clear();
        self.prev.extend((0..n).map(|i| i.saturating_sub(1)));
        self.version.clear();
        self.version.resize(n, 0);
        self.alive.clear();
        self.alive.resize(n, true);
        self.heap.clear();
        for i in 0..n - 1 {
            self.push(piece, i);
        }
        let mut parts = n;
        while let Some(Reverse((_, i, version))) = self.heap.pop() {
            if !self.alive[i] || self.version[i] != version {
                continue;
            }
            let j = self.next[i];
            self.alive[j] = false;
            self.next[i] = self.next[j];
            if self.next[j] < n {
                self.prev[self.next[j]] = i;
            }
            parts -= 1;
            self.version[i] += 1;
            self.push(piece, i);
            if i > 0 {
                let p = self.prev[i];
                self.version[p] += 1;
                self.push(piece, p);
            }
        }
        parts
    }

    /// Queues the pair starting at part `i`, if there is one and it is a token.
    fn push(&mut self, piece: &[u8], i: usize) {
        let j = self.next[i];
        if j >= piece.len() {
            return;
        }
        if let Some(r) = rank(&piece[i..self.next[j]]) {
            self.heap.push(Reverse((r, i, self.version[i])));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_cl100k() {
        // Reference values from tiktoken's cl100k_base.
        assert_eq!(count(""), 0);
        assert_eq!(count("hello world"), 2);
        assert_eq!(count("TokenExpiredError"), 3);
    }

    proptest::proptest! {
        #[test]
        fn joined_counts_add_up_after_a_line_break(
            head in proptest::collection::vec(proptest::sample::select(PARTS.to_vec()), 0..12),
            tail in proptest::collection::vec(proptest::sample::select(PARTS.to_vec()), 0..12),
        ) {
            let (head, tail) = (head.concat(), tail.concat());
            let joined = format!("{head}{tail}");
            proptest::prop_assert_eq!(count_joined(&head, count(&head), &tail), count(&joined));
        }
    }

    /// Pieces that stress the pre-tokenizer at a join: line breaks, runs of spaces,
    /// contractions, digits, punctuation, letters from other scripts.
    const PARTS: &[&str] = &[
        "\n", "\r\n", "\n\n", " ", "  ", "\t", "\u{a0}", "'s", "'", "x", "Error", "123", "4567",
        "[", "[kompress: 3→2 tokens]", ")", "...", "é", "日本", "\u{2028}", "-", "_a",
    ];

    #[test]
    fn limit_stops_early() {
        let text = "word ".repeat(1000);
        assert_eq!(count_up_to(&text, 10), None);
        assert_eq!(count_up_to("hello world", 10), Some(2));
    }

    fn pieces(text: &str) -> Vec<&str> {
        Pieces(text).collect()
    }

    #[test]
    fn pre_tokenizer_follows_the_cl100k_pattern() {
        assert_eq!(pieces("Hello world"), ["Hello", " world"]);
        assert_eq!(pieces("it's 1234x"), ["it", "'s", " ", "123", "4", "x"]);
        assert_eq!(pieces("THEY'RE 'sam"), ["THEY", "'RE", " '", "sam"]);
        assert_eq!(pieces("a   b"), ["a", "  ", " b"]);
        assert_eq!(pieces("a \n\n b"), ["a", " \n\n", " b"]);
        assert_eq!(pieces("x  "), ["x", "  "]);
        assert_eq!(pieces("\tfoo $bar"), ["\tfoo", " $", "bar"]);
        assert_eq!(pieces("x = {};\r\n"), ["x", " =", " {};\r\n"]);
        assert_eq!(pieces(" 12"), [" ", "12"]);
        assert_eq!(pieces("café ✅ok"), ["café", " ✅", "ok"]);
    }

    /// Against `bpe-openai` (the counter this replaced), text by text: the golden records
    /// (real tool outputs), and text made of the characters the pattern treats differently.
    #[test]
    fn counts_match_bpe_openai() {
        let reference = bpe_openai::cl100k_base();
        let records = include_str!("../tests/golden/records.jsonl");
        let mut texts: Vec<String> = records
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("golden record");
                v["text"].as_str().unwrap_or_default().to_string()
            })
            .collect();
        let alphabet: Vec<char> = " \t\r\n\u{a0}\u{2003}'sStTrRvVeEmMlLdDſ09٣Ⅻ½aZéß漢字😀✅-_.,;:!?$#@/\\\"{}()[]<>=+*&|^%~`"
            .chars()
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let len = (state % 40) as usize;
            let s: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            texts.push(s);
        }
        texts.push(" ".repeat(3000) + &"=".repeat(5000) + &"ab".repeat(4000));
        for text in &texts {
            assert_eq!(count(text), reference.count(text.as_str()), "{text:?}");
        }
    }
}
