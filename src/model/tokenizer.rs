//! ModernBERT's byte-level BPE, loaded from a compact binary form in well under a millisecond.
//!
//! The hook is a new process per tool call, so tokenizer load time is paid on every call.
//! The `tokenizers` crate parses the 1.5 MB `tokenizer.json` and builds its hash maps, tries
//! and regexes on every load (tens of milliseconds, see `tests/tokenizer.rs`). This module
//! instead reads a precompiled file (see [`compile`]) that is memory-mapped and used in place:
//! loading is a header check plus bounds checks, and the BPE merge table is a sorted,
//! per-first-token indexed array that is searched directly in the mapping.
//!
//! Encoding reproduces `tokenizers` 0.23 for the ModernBERT tokenizer (the OLMo / GPT-NeoX BPE
//! plus ModernBERT's special tokens), pinned by the parity fixture
//! `tests/fixtures/tokenizer/cases.jsonl`:
//!
//! 1. added tokens with `normalized: false` (the special tokens) are split out of the raw
//!    text, leftmost-longest, `lstrip` eating the whitespace to their left;
//! 2. the rest is NFC-normalized (skipped for ASCII and quick-check-yes text);
//! 3. added tokens with `normalized: true` (OLMo's whitespace runs, PII placeholders) are
//!    split out the same way;
//! 4. the rest is pre-tokenized with the GPT-2 pattern
//!    `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, hand-written
//!    here with the same Unicode classes as the `regex` crate;
//! 5. each piece's bytes are merged by BPE rank, lowest rank first and leftmost on ties;
//! 6. `[CLS] … [SEP]` when special tokens are asked for.
//!
//! [`compile`] accepts exactly this shape of `tokenizer.json` (BPE, ByteLevel pre-tokenizer
//! without prefix space, NFC or no normalizer, no dropout) and rejects anything else, so a
//! tokenizer it cannot reproduce fails at conversion time rather than tokenizing differently.

use std::borrow::Cow;
use std::collections::BinaryHeap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;

use crate::charclass::{Class, class};

/// File name of the compiled form next to `tokenizer.json` in a model directory.
pub const COMPILED_FILE: &str = "tokenizer.ktok";

const MAGIC: &[u8; 8] = b"KTOKBPE1";
const HEADER_WORDS: usize = 8;
/// Byte id of the bytes that cannot occur in UTF-8 text.
const NO_TOKEN: u32 = u32::MAX;

const FLAG_NORMALIZED: u32 = 1;
const FLAG_LSTRIP: u32 = 2;
const FLAG_SPECIAL: u32 = 4;

/// Bytes of a compiled tokenizer: a read-only memory map or an owned buffer.
enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An added token, parsed at load (there are about a hundred).
#[derive(Clone, Debug)]
struct Added {
    id: u32,
    flags: u32,
    content: Box<[u8]>,
}

/// Added tokens of one pass, with the set of their first bytes to skip most positions fast.
#[derive(Clone, Debug)]
struct AddedSet {
    tokens: Vec<Added>,
    first: [bool; 256],
}

impl AddedSet {
    fn new(tokens: Vec<Added>) -> Self {
        let mut first = [false; 256];
        for t in &tokens {
            first[t.content[0] as usize] = true;
        }
        Self { tokens, first }
    }
}

/// Byte ranges of the sections of a compiled file; see [`compile`] for the layout.
#[derive(Clone, Copy, Debug)]
struct Layout {
    byte_ids: usize,
    merge_index: usize,
    merges: usize,
    n_merges: usize,
    token_offsets: usize,
    token_blob: usize,
}

/// ModernBERT's tokenizer; cheap to load, `Send + Sync`.
pub struct Tokenizer {
    bytes: Bytes,
    layout: Layout,
    vocab_size: u32,
    cls: u32,
    sep: u32,
    pad: u32,
    mask: u32,
    nfc: bool,
    /// Added tokens with `normalized: false`, then with `normalized: true`.
    raw_added: AddedSet,
    normalized_added: AddedSet,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("merges", &self.layout.n_merges)
            .field(
                "added",
                &(self.raw_added.tokens.len() + self.normalized_added.tokens.len()),
            )
            .finish()
    }
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

impl Tokenizer {
    /// Memory-maps a compiled tokenizer file (written by [`compile`]).
    pub fn open(path: &Path) -> Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: the file is kompress's own installed tokenizer, which nothing rewrites while it
        // is used; every read from the mapping is bounds-checked against the length validated in
        // `from_storage`, so a truncated file is an error at load, not undefined behaviour in Rust
        // code (a file shrunk underneath a live mapping is the hazard every mmap reader accepts).
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("mapping {}", path.display()))?;
        Self::from_storage(Bytes::Mapped(map))
            .with_context(|| format!("loading {}", path.display()))
    }

    /// Loads a compiled tokenizer from bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::from_storage(Bytes::Owned(bytes))
    }

    /// Compiles a `tokenizer.json` in memory (slow: tens of milliseconds; for conversion and
    /// tests, not for the hook).
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_bytes(compile(&text).with_context(|| format!("compiling {}", path.display()))?)
    }

    /// Loads the tokenizer of a model directory: the compiled [`COMPILED_FILE`] when present,
    /// else `tokenizer.json` compiled in memory.
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        let compiled = dir.join(COMPILED_FILE);
        if compiled.is_file() {
            Self::open(&compiled)
        } else {
            Self::from_json_file(&dir.join("tokenizer.json"))
        }
    }

    fn from_storage(bytes: Bytes) -> Result<Self> {
        let b: &[u8] = &bytes;
        ensure!(
            b.len() >= 8 + HEADER_WORDS * 4 && &b[..8] == MAGIC,
            "not a compiled kompress tokenizer"
        );
        let h = |i: usize| u32_at(b, 8 + 4 * i);
        let (vocab_size, cls, sep, pad, mask, flags, n_merges, n_added) = (
            h(0),
            h(1),
            h(2),
            h(3),
            h(4),
            h(5),
            h(6) as usize,
            h(7) as usize,
        );
        let vocab = vocab_size as usize;
        ensure!(
            vocab > 0 && [cls, sep, pad, mask].iter().all(|&id| id < vocab_size),
            "bad header"
        );
        let mut at = 8 + HEADER_WORDS * 4;
        let mut take = |len: usize| -> Result<usize> {
            let start = at;
            at = at
                .checked_add(len)
                .filter(|&end| end <= b.len())
                .ok_or_else(|| anyhow!("truncated"))?;
            Ok(start)
        };
        let byte_ids = take(256 * 4)?;
        let merge_index = take((vocab + 1) * 4)?;
        let merges = take(n_merges * 12)?;
        let added_table = take(n_added * 12)?;
        let token_offsets = take((vocab + 1) * 4)?;
        let blob_len = u32_at(b, token_offsets + vocab * 4) as usize;
        let token_blob = take(blob_len)?;
        let mut added_blob = take(0)?;
        // Validate every id and index once, so encoding can index without checks failing.
        ensure!(
            (0..256).all(|i| {
                let id = u32_at(b, byte_ids + 4 * i);
                id < vocab_size || (id == NO_TOKEN && (i == 0xC0 || i == 0xC1 || i >= 0xF5))
            }),
            "bad byte ids"
        );
        let mut prev = 0;
        for a in 0..=vocab {
            let v = u32_at(b, merge_index + 4 * a) as usize;
            ensure!(v >= prev && v <= n_merges, "bad merge index");
            prev = v;
        }
        ensure!(prev == n_merges, "bad merge index end");
        for m in 0..n_merges {
            let e = merges + 12 * m;
            ensure!(
                u32_at(b, e) < vocab_size && u32_at(b, e + 8) < vocab_size,
                "bad merge"
            );
        }
        let mut prev = 0;
        for i in 0..=vocab {
            let v = u32_at(b, token_offsets + 4 * i) as usize;
            ensure!(v >= prev && v <= blob_len, "bad token offsets");
            prev = v;
        }
        let mut raw_added = Vec::new();
        let mut normalized_added = Vec::new();
        for i in 0..n_added {
            let e = added_table + 12 * i;
            let (id, flags, len) = (u32_at(b, e), u32_at(b, e + 4), u32_at(b, e + 8) as usize);
            ensure!(id < vocab_size && len > 0, "bad added token");
            let start = added_blob;
            added_blob = added_blob
                .checked_add(len)
                .filter(|&end| end <= b.len())
                .ok_or_else(|| anyhow!("truncated"))?;
            let content: Box<[u8]> = b[start..added_blob].into();
            ensure!(
                std::str::from_utf8(&content).is_ok(),
                "added token is not UTF-8"
            );
            let token = Added { id, flags, content };
            if flags & FLAG_NORMALIZED != 0 {
                normalized_added.push(token);
            } else {
                raw_added.push(token);
            }
        }
        let layout = Layout {
            byte_ids,
            merge_index,
            merges,
            n_merges,
            token_offsets,
            token_blob,
        };
        Ok(Self {
            bytes,
            layout,
            vocab_size,
            cls,
            sep,
            pad,
            mask,
            nfc: flags & 1 != 0,
            raw_added: AddedSet::new(raw_added),
            normalized_added: AddedSet::new(normalized_added),
        })
    }

    pub fn vocab_size(&self) -> u32 {
        self.vocab_size
    }
    pub fn cls_id(&self) -> u32 {
        self.cls
    }
    pub fn sep_id(&self) -> u32 {
        self.sep
    }
    pub fn pad_id(&self) -> u32 {
        self.pad
    }
    pub fn mask_id(&self) -> u32 {
        self.mask
    }

    /// The raw bytes of token `id` (byte-level BPE tokens are byte strings, not always UTF-8).
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        if id >= self.vocab_size {
            return None;
        }
        let o = self.layout.token_offsets + 4 * id as usize;
        let (s, e) = (
            u32_at(&self.bytes, o) as usize,
            u32_at(&self.bytes, o + 4) as usize,
        );
        Some(&self.bytes[self.layout.token_blob + s..self.layout.token_blob + e])
    }

    /// Token ids of `text`, with `[CLS] … [SEP]` when `add_special_tokens`.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 2);
        if add_special_tokens {
            ids.push(self.cls);
        }
        self.encode_into(text, &mut ids);
        if add_special_tokens {
            ids.push(self.sep);
        }
        ids
    }

    /// Appends the ids of `text` (no special tokens around it) to `out`.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) {
        let mut bpe = Bpe::default();
        split_added(text, &self.raw_added, &mut |piece| match piece {
            Piece::Token(id) => out.push(id),
            Piece::Text(raw) => {
                let normalized = if self.nfc {
                    nfc(raw)
                } else {
                    Cow::Borrowed(raw)
                };
                split_added(
                    &normalized,
                    &self.normalized_added,
                    &mut |piece| match piece {
                        Piece::Token(id) => out.push(id),
                        Piece::Text(text) => {
                            pre_tokenize(text, &mut |word| self.bpe(word.as_bytes(), &mut bpe, out))
                        }
                    },
                );
            }
        });
    }

    fn byte_id(&self, byte: u8) -> u32 {
        u32_at(&self.bytes, self.layout.byte_ids + 4 * byte as usize)
    }

    /// `(rank, new_id)` of merging `a` then `b`.
    fn merge(&self, a: u32, b: u32) -> Option<(u32, u32)> {
        let bytes: &[u8] = &self.bytes;
        let l = &self.layout;
        let idx = l.merge_index + 4 * a as usize;
        let (mut lo, mut hi) = (u32_at(bytes, idx) as usize, u32_at(bytes, idx + 4) as usize);
        // Entries for `a` are sorted by `b`; usually there are only a few.
        while lo < hi {
            let mid = (lo + hi) / 2;
            let e = l.merges + 12 * mid;
            let key = u32_at(bytes, e);
            match key.cmp(&b) {
                std::cmp::Ordering::Equal => {
                    return Some((u32_at(bytes, e + 4), u32_at(bytes, e + 8)));
                }
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }

    /// Byte-level BPE of one pre-token, as `tokenizers`' `Word::merge_all`: repeatedly apply
    /// the merge of lowest rank, leftmost first on equal ranks.
    fn bpe(&self, word: &[u8], scratch: &mut Bpe, out: &mut Vec<u32>) {
        if word.len() == 1 {
            out.push(self.byte_id(word[0]));
            return;
        }
        let Bpe { symbols, heap } = scratch;
        symbols.clear();
        heap.clear();
        let n = word.len();
        for (i, &byte) in word.iter().enumerate() {
            symbols.push(Symbol {
                id: self.byte_id(byte),
                prev: i as i32 - 1,
                next: if i + 1 < n { i as i32 + 1 } else { -1 },
                alive: true,
            });
        }
        for i in 0..n - 1 {
            if let Some((rank, new_id)) = self.merge(symbols[i].id, symbols[i + 1].id) {
                heap.push(Merge {
                    rank,
                    pos: i as u32,
                    new_id,
                });
            }
        }
        while let Some(top) = heap.pop() {
            let pos = top.pos as usize;
            let current = symbols[pos];
            if !current.alive || current.next < 0 {
                continue;
            }
            let next_pos = current.next as usize;
            let right = symbols[next_pos];
            // Skip stale entries: the pair at `pos` changed since this merge was queued.
            if self.merge(current.id, right.id).map(|m| m.1) != Some(top.new_id) {
                continue;
            }
            symbols[pos].id = top.new_id;
            symbols[pos].next = right.next;
            symbols[next_pos].alive = false;
            if right.next >= 0 {
                symbols[right.next as usize].prev = pos as i32;
            }
            if current.prev >= 0 {
                let prev = current.prev as usize;
                if let Some((rank, new_id)) = self.merge(symbols[prev].id, top.new_id) {
                    heap.push(Merge {
                        rank,
                        pos: prev as u32,
                        new_id,
                    });
                }
            }
            if right.next >= 0
                && let Some((rank, new_id)) =
                    self.merge(top.new_id, symbols[right.next as usize].id)
            {
                heap.push(Merge {
                    rank,
                    pos: top.pos,
                    new_id,
                });
            }
        }
        out.extend(symbols.iter().filter(|s| s.alive).map(|s| s.id));
    }
}

#[derive(Clone, Copy, Debug)]
struct Symbol {
    id: u32,
    prev: i32,
    next: i32,
    alive: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Merge {
    rank: u32,
    pos: u32,
    new_id: u32,
}

impl Ord for Merge {
    /// Max-heap order: the lowest rank, then the lowest position, comes out first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.rank.cmp(&self.rank).then(other.pos.cmp(&self.pos))
    }
}

impl PartialOrd for Merge {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Reusable buffers for [`Tokenizer::bpe`].
#[derive(Default)]
struct Bpe {
    symbols: Vec<Symbol>,
    heap: BinaryHeap<Merge>,
}

enum Piece<'a> {
    Text(&'a str),
    Token(u32),
}

/// Splits `text` on `tokens`, leftmost-longest like `tokenizers`' `AddedVocabulary`
/// (`daachorse` with `MatchKind::LeftmostLongest`); an `lstrip` token also takes the
/// whitespace before it, back to the previous match.
fn split_added<'a>(text: &'a str, set: &AddedSet, emit: &mut dyn FnMut(Piece<'a>)) {
    let tokens = &set.tokens;
    if text.is_empty() {
        return;
    }
    let bytes = text.as_bytes();
    let mut emitted = 0; // end of the last emitted piece
    let mut at = 0;
    while at < bytes.len() {
        let first = bytes[at];
        if !set.first[first as usize] {
            at += 1;
            continue;
        }
        let best = tokens
            .iter()
            .filter(|t| t.content[0] == first && bytes[at..].starts_with(&t.content))
            .max_by_key(|t| t.content.len());
        let Some(token) = best else {
            at += 1;
            continue;
        };
        let mut start = at;
        if token.flags & FLAG_LSTRIP != 0 {
            let before = &text[emitted..at];
            start = emitted + before.trim_end_matches(char::is_whitespace).len();
        }
        if emitted < start {
            emit(Piece::Text(&text[emitted..start]));
        }
        emit(Piece::Token(token.id));
        at += token.content.len();
        emitted = at;
    }
    if emitted < bytes.len() {
        emit(Piece::Text(&text[emitted..]));
    }
}

/// NFC, skipped when the text is ASCII or already (quick-check) NFC.
fn nfc(text: &str) -> Cow<'_, str> {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    if text.is_ascii() || is_nfc_quick(text.chars()) == IsNormalized::Yes {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfc().collect())
    }
}

/// The GPT-2 pre-tokenizer pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, matched left
/// to right with leftmost-first alternation, as `fancy-regex`'s `find_iter` does.
fn pre_tokenize<'a>(text: &'a str, emit: &mut dyn FnMut(&'a str)) {
    let mut rest = text;
    while !rest.is_empty() {
        let len = match_at(rest);
        emit(&rest[..len]);
        rest = &rest[len..];
    }
}

/// Byte length of the pre-tokenizer match at the start of `s` (never 0 for non-empty `s`).
fn match_at(s: &str) -> usize {
    let b = s.as_bytes();
    if b[0] == b'\'' {
        for suffix in ["s", "t", "re", "ve", "m", "ll", "d"] {
            if s[1..].starts_with(suffix) {
                return 1 + suffix.len();
            }
        }
    }
    let mut chars = s.char_indices();
    let (_, c0) = chars.next().expect("non-empty");
    let run = |from: usize, want: Class| -> usize {
        s[from..]
            .char_indices()
            .find(|&(_, c)| class(c) != want)
            .map_or(s.len(), |(i, _)| from + i)
    };
    let class0 = class(c0);
    if c0 == ' ' {
        if let Some((i1, c1)) = chars.next() {
            let class1 = class(c1);
            if class1 != Class::Space {
                return run(i1, class1);
            }
        }
    } else if class0 != Class::Space {
        return run(0, class0);
    }
    // Whitespace: `\s+(?!\S)` takes the run but leaves its last character for the next word;
    // a single whitespace character before a non-space is `\s+` on its own.
    let end = run(0, Class::Space);
    if end == s.len() {
        return end;
    }
    let last = s[..end].char_indices().next_back().map_or(0, |(i, _)| i);
    if last > 0 { last } else { end }
}

// ---------------------------------------------------------------------------------------------
// Compilation from tokenizer.json

/// GPT-2's byte ↔ printable character table, as `char → byte`.
fn byte_level_decoder() -> std::collections::HashMap<char, u8> {
    let mut printable: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..=255u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    printable
        .iter()
        .zip(&chars)
        .map(|(&b, &c)| (char::from_u32(c).expect("valid char"), b as u8))
        .collect()
}

/// Compiles a Hugging Face `tokenizer.json` (the ModernBERT/OLMo byte-level BPE shape) into the
/// binary form [`Tokenizer::open`] maps.
///
/// Layout, all integers u32 little-endian:
///
/// ```text
/// "KTOKBPE1"
/// header: vocab_size cls sep pad mask flags(1 = NFC) n_merges n_added
/// byte_ids[256]                    token id of each single byte
/// merge_index[vocab_size + 1]      merges of first token a: merge_index[a]..merge_index[a+1]
/// merges[n_merges]                 (b, rank, new_id), sorted by a then b
/// added[n_added]                   (id, flags(1 normalized, 2 lstrip, 4 special), byte_len)
/// token_offsets[vocab_size + 1]    token id's bytes: blob[off[id]..off[id+1]]
/// token_blob
/// added token contents, concatenated
/// ```
pub fn compile(json: &str) -> Result<Vec<u8>> {
    let tok: Value = serde_json::from_str(json).context("parsing tokenizer.json")?;
    let model = &tok["model"];
    ensure!(
        model["type"] == "BPE",
        "model must be BPE, got {}",
        model["type"]
    );
    for (key, ok) in [
        ("dropout", Value::Null),
        ("continuing_subword_prefix", Value::Null),
        ("end_of_word_suffix", Value::Null),
    ] {
        ensure!(
            model.get(key).is_none_or(|v| *v == ok),
            "unsupported BPE {key}: {}",
            model[key]
        );
    }
    for key in ["byte_fallback", "ignore_merges"] {
        ensure!(
            model.get(key).is_none_or(|v| *v == Value::Bool(false)),
            "unsupported BPE {key}"
        );
    }
    let nfc = match &tok["normalizer"] {
        Value::Null => false,
        n if n["type"] == "NFC" => true,
        other => bail!("unsupported normalizer {other}"),
    };
    let pre = &tok["pre_tokenizer"];
    ensure!(
        pre["type"] == "ByteLevel"
            && pre["add_prefix_space"] == Value::Bool(false)
            && pre.get("use_regex").is_none_or(|v| *v == Value::Bool(true)),
        "unsupported pre_tokenizer {pre}"
    );

    let decode = byte_level_decoder();
    let to_bytes = |token: &str| -> Result<Vec<u8>> {
        token
            .chars()
            .map(|c| {
                decode
                    .get(&c)
                    .copied()
                    .ok_or_else(|| anyhow!("{token:?} is not byte-level"))
            })
            .collect()
    };
    let vocab_json = model["vocab"]
        .as_object()
        .ok_or_else(|| anyhow!("no model.vocab"))?;
    let mut by_string = std::collections::HashMap::new();
    let mut max_id = 0u32;
    for (token, id) in vocab_json {
        let id = id.as_u64().ok_or_else(|| anyhow!("bad id for {token:?}"))? as u32;
        max_id = max_id.max(id);
        by_string.insert(token.as_str(), id);
    }
    let mut added = Vec::new();
    for t in tok["added_tokens"].as_array().into_iter().flatten() {
        let content = t["content"]
            .as_str()
            .ok_or_else(|| anyhow!("added token without content"))?;
        let id = t["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("added token without id"))? as u32;
        ensure!(!content.is_empty(), "empty added token");
        for key in ["rstrip", "single_word"] {
            ensure!(
                t[key] != Value::Bool(true),
                "unsupported {key} on added token {content:?}"
            );
        }
        let mut flags = 0;
        if t["normalized"] == Value::Bool(true) {
            flags |= FLAG_NORMALIZED;
        }
        if t["lstrip"] == Value::Bool(true) {
            flags |= FLAG_LSTRIP;
        }
        if t["special"] == Value::Bool(true) {
            flags |= FLAG_SPECIAL;
        }
        max_id = max_id.max(id);
        added.push((id, flags, content.to_string()));
    }
    let vocab_size = max_id + 1;
    let mut tokens: Vec<Option<Vec<u8>>> = vec![None; vocab_size as usize];
    for (token, &id) in &by_string {
        // Added tokens that are also in the BPE vocab keep their literal content.
        let bytes = match added.iter().find(|a| a.0 == id) {
            Some(a) => a.2.as_bytes().to_vec(),
            None => to_bytes(token)?,
        };
        tokens[id as usize] = Some(bytes);
    }
    for (id, _, content) in &added {
        tokens[*id as usize].get_or_insert_with(|| content.as_bytes().to_vec());
    }
    ensure!(
        tokens.iter().all(Option::is_some),
        "vocab ids are not contiguous"
    );

    // Bytes that never occur in UTF-8 (0xC0, 0xC1, 0xF5..=0xFF) may lack a token; input is
    // always a `&str`, so they are never looked up.
    let mut byte_ids = [NO_TOKEN; 256];
    for (c, b) in &decode {
        match by_string.get(c.to_string().as_str()) {
            Some(&id) => byte_ids[*b as usize] = id,
            None if *b == 0xC0 || *b == 0xC1 || *b >= 0xF5 => {}
            None => bail!("byte {b:#04x} has no token"),
        }
    }

    let special_id = |name: &str| -> Result<u32> {
        by_string
            .get(name)
            .copied()
            .or_else(|| added.iter().find(|a| a.2 == name).map(|a| a.0))
            .ok_or_else(|| anyhow!("no {name} token"))
    };
    let post = &tok["post_processor"];
    ensure!(
        post["type"] == "TemplateProcessing",
        "post_processor must be TemplateProcessing"
    );
    let single: Vec<String> = post["single"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| match (p.get("SpecialToken"), p.get("Sequence")) {
            (Some(s), _) => s["id"].as_str().unwrap_or("?").to_string(),
            (_, Some(_)) => "$A".to_string(),
            _ => "?".to_string(),
        })
        .collect();
    ensure!(
        single == ["[CLS]", "$A", "[SEP]"],
        "unsupported template {single:?}"
    );
    let (cls, sep) = (special_id("[CLS]")?, special_id("[SEP]")?);
    let (pad, mask) = (special_id("[PAD]")?, special_id("[MASK]")?);

    let mut merges: Vec<(u32, u32, u32, u32)> = Vec::new(); // (a, b, rank, new)
    for (rank, m) in model["merges"]
        .as_array()
        .ok_or_else(|| anyhow!("no merges"))?
        .iter()
        .enumerate()
    {
        let (a, b) = match m {
            Value::String(s) => s
                .split_once(' ')
                .ok_or_else(|| anyhow!("bad merge {s:?}"))?,
            Value::Array(pair) if pair.len() == 2 => (
                pair[0].as_str().ok_or_else(|| anyhow!("bad merge"))?,
                pair[1].as_str().ok_or_else(|| anyhow!("bad merge"))?,
            ),
            other => bail!("bad merge {other}"),
        };
        let id = |t: &str| {
            by_string
                .get(t)
                .copied()
                .ok_or_else(|| anyhow!("merge token {t:?} not in vocab"))
        };
        let new = id(&format!("{a}{b}"))?;
        merges.push((id(a)?, id(b)?, rank as u32, new));
    }
    merges.sort_by_key(|m| (m.0, m.1));
    for w in merges.windows(2) {
        ensure!((w[0].0, w[0].1) != (w[1].0, w[1].1), "duplicate merge");
    }

    let mut out = Vec::with_capacity(2 << 20);
    let put = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
    out.extend_from_slice(MAGIC);
    for v in [
        vocab_size,
        cls,
        sep,
        pad,
        mask,
        nfc as u32,
        merges.len() as u32,
        added.len() as u32,
    ] {
        put(&mut out, v);
    }
    for id in byte_ids {
        put(&mut out, id);
    }
    let mut next = 0;
    for a in 0..=vocab_size {
        while next < merges.len() && merges[next].0 < a {
            next += 1;
        }
        put(&mut out, next as u32);
    }
    for &(_, b, rank, new) in &merges {
        for v in [b, rank, new] {
            put(&mut out, v);
        }
    }
    for (id, flags, content) in &added {
        for v in [*id, *flags, content.len() as u32] {
            put(&mut out, v);
        }
    }
    let mut offset = 0u32;
    put(&mut out, 0);
    for t in tokens.iter().flatten() {
        offset += t.len() as u32;
        put(&mut out, offset);
    }
    for t in tokens.iter().flatten() {
        out.extend_from_slice(t);
    }
    for (_, _, content) in &added {
        out.extend_from_slice(content.as_bytes());
    }
    Ok(out)
}

/// Compiles `json_path` into `out_path` (what `kompress model convert` will call).
pub fn compile_file(json_path: &Path, out_path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(json_path)
        .with_context(|| format!("reading {}", json_path.display()))?;
    let bytes = compile(&text).with_context(|| format!("compiling {}", json_path.display()))?;
    std::fs::write(out_path, bytes).with_context(|| format!("writing {}", out_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        pre_tokenize(text, &mut |p| out.push(p));
        out
    }

    #[test]
    fn pre_tokenizer_follows_the_gpt2_pattern() {
        assert_eq!(pieces("Hello world"), ["Hello", " world"]);
        assert_eq!(pieces("it's 42x"), ["it", "'s", " 42", "x"]);
        assert_eq!(pieces("a   b"), ["a", "  ", " b"]);
        assert_eq!(pieces("a\n\nb"), ["a", "\n", "\n", "b"]);
        assert_eq!(pieces("a \n b"), ["a", " \n", " b"]);
        assert_eq!(pieces("x  "), ["x", "  "]);
        assert_eq!(pieces("''s"), ["''", "s"]);
        assert_eq!(pieces(" ✅ ok"), [" ✅", " ok"]);
        assert_eq!(pieces("café"), ["café"]);
        assert_eq!(pieces("\t\tx"), ["\t", "\t", "x"]);
    }

    #[test]
    fn rejects_foreign_files() {
        assert!(Tokenizer::from_bytes(b"not a tokenizer".to_vec()).is_err());
        assert!(compile(r#"{"model": {"type": "WordPiece"}}"#).is_err());
    }
}
