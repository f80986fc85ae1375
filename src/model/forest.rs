//! A gradient-boosted tree ensemble: the line model's runtime.
//!
//! Training (`training/line_model.py`, from a LightGBM booster) writes JSON
//! ([`Forest::from_json`]); `kompress model pack-lines` packs it into the file that ships,
//! `model/lines.bin` ([`Forest::to_packed`], [`Forest::from_packed`]). Both name their
//! features, so a binary whose feature extractor differs refuses them instead of scoring
//! garbage. Each tree is flat arrays: node `i` sends `x` left when
//! `x[feature[i]] <= threshold[i]`; a child `c >= 0` is a node, `c < 0` the leaf `-c - 1`.
//! The score is the logistic of the sum of the leaves plus `base`.
//!
//! In the JSON each array is the base64 of its little-endian values (`f` u16, `t` and `v`
//! f32, `l` and `r` i32). Every hook call that selects lines loads the model, and reading
//! that JSON (trees and item table) took 1.3 ms of it; the packed file is a small JSON
//! header and the same arrays as raw little-endian values, the item table's hash index
//! included, which [`Forest::open`] maps into memory and reads in place.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::ops::{Deref, Range};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use serde::Deserialize;

/// The format name the JSON file must carry.
pub const FORMAT: &str = "kompress-line-forest-2";

/// The first bytes of a packed file.
pub const PACKED_MAGIC: &[u8] = b"kompress-line-forest-packed-1\n";

/// One tree, as flat arrays.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "EncodedTree")]
struct Tree {
    feature: Vec<u16>,
    threshold: Vec<f32>,
    left: Vec<i32>,
    right: Vec<i32>,
    leaf: Vec<f32>,
}

/// A tree as the file has it: each array base64-encoded.
#[derive(Deserialize)]
struct EncodedTree {
    f: String,
    t: String,
    l: String,
    r: String,
    v: String,
}

impl TryFrom<EncodedTree> for Tree {
    type Error = anyhow::Error;

    fn try_from(e: EncodedTree) -> Result<Tree> {
        Ok(Tree {
            feature: decode(&e.f, u16::from_le_bytes).context("tree array `f`")?,
            threshold: decode(&e.t, f32::from_le_bytes).context("tree array `t`")?,
            left: decode(&e.l, i32::from_le_bytes).context("tree array `l`")?,
            right: decode(&e.r, i32::from_le_bytes).context("tree array `r`")?,
            leaf: decode(&e.v, f32::from_le_bytes).context("tree array `v`")?,
        })
    }
}

/// The little-endian values of `N` bytes each in base64 `text`.
fn decode<T, const N: usize>(text: &str, value: fn([u8; N]) -> T) -> Result<Vec<T>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .context("not base64")?;
    ensure!(
        bytes.len() % N == 0,
        "{} bytes are not a whole number of {N}-byte values",
        bytes.len()
    );
    Ok(bytes
        .chunks_exact(N)
        .map(|c| value(c.try_into().expect("chunks of N bytes")))
        .collect())
}

/// The file's encoding of one array: what `training/line_model.py` writes.
fn encode<T: Copy, const N: usize>(values: &[T], bytes: fn(T) -> [u8; N]) -> String {
    let raw: Vec<u8> = values.iter().flat_map(|&v| bytes(v)).collect();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

#[derive(Debug, Deserialize)]
struct File {
    format: String,
    features: Vec<String>,
    base: f32,
    trees: Vec<Tree>,
    #[serde(default)]
    prices: BTreeMap<String, f32>,
    #[serde(default)]
    meta: serde_json::Value,
    #[serde(default)]
    vocab: Vocab,
}

/// The bytes [`Array`]s view: a packed file mapped into memory, or a buffer of their own.
/// Either way 4-byte aligned (a mapping starts on a page), so that an array at a multiple
/// of 4 bytes reads as `&[u32]` or `&[f32]` in place.
enum Buffer {
    Mapped(memmap2::Mmap),
    /// Words, and how many of their bytes are used.
    Owned(Vec<u32>, usize),
}

impl Buffer {
    fn copy(bytes: &[u8]) -> Buffer {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Buffer::Owned(words, bytes.len())
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Buffer::Mapped(map) => map,
            Buffer::Owned(words, len) => &bytemuck::cast_slice(words)[..*len],
        }
    }
}

/// A `[T]` inside a shared [`Buffer`] (the file's values are little-endian, and so is
/// every machine kompress loads them on: [`Forest::from_packed`] refuses others).
struct Array<T> {
    buffer: Arc<Buffer>,
    range: Range<usize>,
    kind: PhantomData<T>,
}

impl<T: bytemuck::Pod> Array<T> {
    /// An array of its own holding `values`.
    fn of(values: &[T]) -> Array<T> {
        let bytes: &[u8] = bytemuck::cast_slice(values);
        Array {
            buffer: Arc::new(Buffer::copy(bytes)),
            range: 0..bytes.len(),
            kind: PhantomData,
        }
    }

    /// The values at `range` of `buffer`, which must be aligned for `T`.
    fn at(buffer: &Arc<Buffer>, range: Range<usize>) -> Result<Array<T>> {
        let bytes = buffer.bytes().get(range.clone()).context("array out of the file")?;
        bytemuck::try_cast_slice::<u8, T>(bytes)
            .map_err(|e| anyhow::anyhow!("array not aligned: {e:?}"))?;
        Ok(Array {
            buffer: Arc::clone(buffer),
            range,
            kind: PhantomData,
        })
    }
}

impl<T: bytemuck::Pod> Deref for Array<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        bytemuck::cast_slice(&self.buffer.bytes()[self.range.clone()])
    }
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Array<T> {
        Array {
            buffer: Arc::clone(&self.buffer),
            range: self.range.clone(),
            kind: PhantomData,
        }
    }
}

impl<T> Default for Array<T> {
    fn default() -> Array<T> {
        Array {
            buffer: Arc::new(Buffer::Owned(Vec::new(), 0)),
            range: 0..0,
            kind: PhantomData,
        }
    }
}

impl<T: bytemuck::Pod + std::fmt::Debug> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} values]", self.len())
    }
}

/// How many of the training repositories' step outputs each common item occurs in: what
/// makes an item generic (`self`, `return`) or distinctive, for the line features
/// ([`crate::select::features`]). Written by `kompress model line-data` from the
/// training trajectories and carried into the model file, so that training and run time
/// read the same table.
///
/// In JSON: `{"outputs": N, "items": "a b …", "counts": base64 of u32 LE}`, the items
/// sorted and separated by spaces (items are words: they hold none). Lookups go through an
/// open-addressing table of [`hash`]es, built once and packed with the model, each hit
/// checked against the item itself.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(try_from = "EncodedVocab", into = "EncodedVocab")]
pub struct Vocab {
    /// Step outputs counted.
    pub outputs: u32,
    /// The items in at least [`crate::usage::MIN_GENERIC_OUTPUTS`] of them, sorted, each
    /// ended by a space (UTF-8).
    items: Array<u8>,
    /// Where each item starts in `items`; one more entry, the end.
    starts: Array<u32>,
    /// Each item's count.
    counts: Array<u32>,
    /// A power-of-two table: slot `hash(item) & (len - 1)`, or the next free one after it
    /// (wrapping), holds the item's position + 1; 0 is free. At least one slot is free.
    slots: Array<u32>,
}

/// The vocabulary as the file has it.
#[derive(Clone, Deserialize, serde::Serialize)]
struct EncodedVocab {
    outputs: u32,
    items: String,
    counts: String,
}

impl TryFrom<EncodedVocab> for Vocab {
    type Error = anyhow::Error;

    fn try_from(e: EncodedVocab) -> Result<Vocab> {
        let counts = decode(&e.counts, u32::from_le_bytes).context("vocabulary counts")?;
        let items: Vec<&str> = e.items.split_terminator(' ').collect();
        ensure!(
            items.len() == counts.len(),
            "{} vocabulary items for {} counts",
            items.len(),
            counts.len()
        );
        Vocab::build(e.outputs, items.into_iter().zip(counts))
    }
}

impl From<Vocab> for EncodedVocab {
    fn from(v: Vocab) -> EncodedVocab {
        EncodedVocab {
            outputs: v.outputs,
            counts: encode(&v.counts, u32::to_le_bytes),
            items: v.iter().map(|(item, _)| format!("{item} ")).collect(),
        }
    }
}

/// FNV-1a, 64 bits: the item table's index key ([`hash`]), and the hasher of the line
/// features' per-output word tables, where SipHash's resistance to chosen keys buys
/// nothing over short words of one output.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = bytes
            .iter()
            .fold(self.0, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    }
}

/// The index key of an item: FNV-1a of its bytes.
fn hash(item: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = Fnv::default();
    h.write(item.as_bytes());
    h.finish()
}

impl Vocab {
    /// The table of `(item, count)` pairs (items without spaces, each once).
    pub fn new<S: AsRef<str>>(
        outputs: u32,
        df: impl IntoIterator<Item = (S, u32)>,
    ) -> Result<Vocab> {
        let mut pairs: Vec<(S, u32)> = df.into_iter().collect();
        pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        Vocab::build(outputs, pairs.iter().map(|(s, n)| (s.as_ref(), *n)))
    }

    fn build<'a>(
        outputs: u32,
        sorted: impl ExactSizeIterator<Item = (&'a str, u32)>,
    ) -> Result<Vocab> {
        let n = sorted.len();
        let mut items = String::new();
        let mut starts = Vec::with_capacity(n + 1);
        let mut counts = Vec::with_capacity(n);
        let mut slots = vec![0u32; (2 * n + 1).next_power_of_two()];
        let mask = slots.len() - 1;
        let mut previous: Option<&str> = None;
        for (position, (item, count)) in sorted.enumerate() {
            ensure!(
                !item.is_empty() && !item.contains(' '),
                "bad vocabulary item {item:?}"
            );
            ensure!(
                previous.is_none_or(|p| p < item),
                "vocabulary items are not sorted and distinct at {item:?}"
            );
            previous = Some(item);
            starts.push(items.len() as u32);
            items.push_str(item);
            items.push(' ');
            counts.push(count);
            let mut slot = hash(item) as usize & mask;
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = position as u32 + 1;
        }
        starts.push(items.len() as u32);
        Ok(Vocab {
            outputs,
            items: Array::of(items.as_bytes()),
            starts: Array::of(&starts),
            counts: Array::of(&counts),
            slots: Array::of(&slots),
        })
    }

    /// The bytes of the item at `position`.
    fn item(&self, position: usize) -> &[u8] {
        &self.items[self.starts[position] as usize..self.starts[position + 1] as usize - 1]
    }

    /// Check a table read from a packed file: every lookup ends and every item is whole.
    fn check(&self) -> Result<()> {
        let n = self.counts.len();
        ensure!(
            self.starts.len() == n + 1,
            "vocabulary starts and counts differ"
        );
        ensure!(
            std::str::from_utf8(&self.items).is_ok(),
            "vocabulary items are not UTF-8"
        );
        ensure!(
            self.starts.first() == Some(&0)
                && self.starts.last().map(|&e| e as usize) == Some(self.items.len())
                && self.starts.windows(2).all(|w| w[0] < w[1])
                && self.items.ends_with(b" ") == (n > 0)
                && self.starts[1..]
                    .iter()
                    .all(|&e| self.items[e as usize - 1] == b' '),
            "vocabulary items are not whole"
        );
        ensure!(
            self.slots.len().is_power_of_two()
                && self.slots.iter().any(|&s| s == 0)
                && self.slots.iter().all(|&s| s as usize <= n),
            "vocabulary index is broken"
        );
        Ok(())
    }

    /// Every `(item, count)`, sorted by item.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        // Items are whole UTF-8 words ended by a space (built from `&str`, or checked).
        (0..self.counts.len()).map(|p| {
            let item = std::str::from_utf8(self.item(p)).unwrap_or_default();
            (item, self.counts[p])
        })
    }

    /// The outputs `item` occurs in (0 when it is not in the table: it is rare).
    pub fn df(&self, item: &str) -> u32 {
        if self.slots.is_empty() {
            return 0;
        }
        let slots = &*self.slots;
        let mask = slots.len() - 1;
        let mut slot = hash(item) as usize & mask;
        loop {
            match slots[slot] {
                0 => return 0,
                s if self.item(s as usize - 1) == item.as_bytes() => {
                    return self.counts[s as usize - 1];
                }
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// Whether `item` is generic: in at least [`crate::usage::GENERIC_DF`] of the outputs,
    /// as the labels define it ([`crate::usage::Generic`]).
    pub fn is_generic(&self, item: &str) -> bool {
        let n = self.df(item);
        n >= crate::usage::MIN_GENERIC_OUTPUTS
            && f64::from(n) >= crate::usage::GENERIC_DF * f64::from(self.outputs)
    }

    /// `ln((outputs + 1) / (df + 1))`: how distinctive `item` is.
    pub fn idf(&self, item: &str) -> f32 {
        ((f64::from(self.outputs) + 1.0) / (f64::from(self.df(item)) + 1.0)).ln() as f32
    }
}

/// A loaded ensemble: every tree's arrays end to end.
#[derive(Debug)]
pub struct Forest {
    base: f32,
    /// The feature names the file was trained on (a prefix of the extractor's).
    names: Vec<String>,
    /// Where each tree's nodes start in the node arrays, and one more entry, the end. A
    /// tree has one leaf more than nodes, so tree `t`'s leaves start at `nodes[t] + t`.
    nodes: Array<u32>,
    feature: Array<u16>,
    threshold: Array<f32>,
    left: Array<i32>,
    right: Array<i32>,
    leaf: Array<f32>,
    /// Calibrated prices per kind of command ([`crate::domain::CommandKind::name`]): how
    /// many tokens a used item is worth when deciding which lines go (see
    /// [`crate::select::choose`]). A kind without a price keeps every line.
    pub prices: BTreeMap<String, f32>,
    /// Free-form training facts from the file (data, split, metrics), for `model info`.
    pub meta: serde_json::Value,
    /// The item counts the features were computed with.
    pub vocab: Vocab,
}

/// The JSON header of a packed file: what is not an array, and the arrays' lengths.
#[derive(Deserialize, serde::Serialize)]
struct PackedHeader {
    features: Vec<String>,
    base: f32,
    prices: BTreeMap<String, f32>,
    meta: serde_json::Value,
    trees: u32,
    nodes: u32,
    vocab_outputs: u32,
    vocab_items: u32,
    vocab_slots: u32,
    vocab_bytes: u32,
}

/// Reads a packed file front to back.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.context("packed line model is truncated")?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    /// Skip to the next multiple of 4 bytes.
    fn align(&mut self) -> Result<()> {
        self.take(self.at.next_multiple_of(4) - self.at).map(|_| ())
    }

    /// The next `count` values of `T`, in place in `buffer` (the one `self` reads).
    fn array<T: bytemuck::Pod>(&mut self, buffer: &Arc<Buffer>, count: usize) -> Result<Array<T>> {
        let size = count
            .checked_mul(size_of::<T>())
            .context("packed line model is too large")?;
        let start = self.at;
        self.take(size)?;
        Array::at(buffer, start..start + size)
    }
}

/// Append `values` to `out` as little-endian bytes.
fn put<T: Copy, const N: usize>(out: &mut Vec<u8>, values: &[T], bytes: fn(T) -> [u8; N]) {
    out.extend(values.iter().flat_map(|&v| bytes(v)));
}

/// Pad `out` to a multiple of 4 bytes.
fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

impl Forest {
    /// Parse a forest in the JSON training format and check it against the extractor's
    /// feature names.
    pub fn from_json(bytes: &[u8], expected_features: &[&str]) -> Result<Forest> {
        let file: File = serde_json::from_slice(bytes).context("line model is not valid JSON")?;
        if file.format != FORMAT {
            bail!("line model format `{}`, expected `{FORMAT}`", file.format);
        }
        let (mut starts, mut feature, mut threshold) = (vec![0u32], Vec::new(), Vec::new());
        let (mut left, mut right, mut leaf) = (Vec::new(), Vec::new(), Vec::new());
        for tree in file.trees {
            let nodes = tree.feature.len();
            ensure!(
                tree.threshold.len() == nodes
                    && tree.left.len() == nodes
                    && tree.right.len() == nodes,
                "tree arrays differ in length"
            );
            ensure!(
                tree.leaf.len() == nodes + 1,
                "a binary tree has one leaf more than nodes"
            );
            feature.extend(tree.feature);
            threshold.extend(tree.threshold);
            left.extend(tree.left);
            right.extend(tree.right);
            leaf.extend(tree.leaf);
            starts.push(feature.len() as u32);
        }
        let forest = Forest {
            base: file.base,
            names: file.features,
            nodes: Array::of(&starts),
            feature: Array::of(&feature),
            threshold: Array::of(&threshold),
            left: Array::of(&left),
            right: Array::of(&right),
            leaf: Array::of(&leaf),
            prices: file.prices,
            meta: file.meta,
            vocab: file.vocab,
        };
        forest.check(expected_features)?;
        Ok(forest)
    }

    /// The packed file of this forest: [`PACKED_MAGIC`], the header's length (u32) and
    /// JSON, then, each starting at a multiple of 4 bytes, the arrays as little-endian
    /// values: tree starts, features (u16), thresholds, left and right children, leaves,
    /// then the item table's starts, counts, index slots and items.
    pub fn to_packed(&self) -> Vec<u8> {
        let header = PackedHeader {
            features: self.names.clone(),
            base: self.base,
            prices: self.prices.clone(),
            meta: self.meta.clone(),
            trees: self.trees() as u32,
            nodes: self.feature.len() as u32,
            vocab_outputs: self.vocab.outputs,
            vocab_items: self.vocab.counts.len() as u32,
            vocab_slots: self.vocab.slots.len() as u32,
            vocab_bytes: self.vocab.items.len() as u32,
        };
        let header = serde_json::to_vec(&header).expect("the header serialises");
        let mut out = PACKED_MAGIC.to_vec();
        put(&mut out, &[header.len() as u32], u32::to_le_bytes);
        out.extend(&header);
        pad(&mut out);
        put(&mut out, &self.nodes, u32::to_le_bytes);
        put(&mut out, &self.feature, u16::to_le_bytes);
        pad(&mut out);
        put(&mut out, &self.threshold, f32::to_le_bytes);
        put(&mut out, &self.left, i32::to_le_bytes);
        put(&mut out, &self.right, i32::to_le_bytes);
        put(&mut out, &self.leaf, f32::to_le_bytes);
        let v = &self.vocab;
        put(&mut out, &v.starts, u32::to_le_bytes);
        put(&mut out, &v.counts, u32::to_le_bytes);
        put(&mut out, &v.slots, u32::to_le_bytes);
        out.extend(&*v.items);
        out
    }

    /// Map the packed file at `path` ([`Forest::to_packed`]) into memory and check it
    /// against the extractor's feature names. Its arrays are read in place: loading is
    /// checking them.
    pub fn open(path: &Path, expected_features: &[&str]) -> Result<Forest> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: the mapping is read-only and private; like the word model's GGUF, the
        // file is only replaced by reinstalling, not written in place while in use.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot map {}", path.display()))?;
        Forest::packed(Arc::new(Buffer::Mapped(map)), expected_features)
    }

    /// Read a packed file's bytes ([`Forest::to_packed`]) and check them against the
    /// extractor's feature names.
    pub fn from_packed(bytes: &[u8], expected_features: &[&str]) -> Result<Forest> {
        Forest::packed(Arc::new(Buffer::copy(bytes)), expected_features)
    }

    fn packed(buffer: Arc<Buffer>, expected_features: &[&str]) -> Result<Forest> {
        ensure!(
            cfg!(target_endian = "little"),
            "the packed line model is read in place, on little-endian machines only"
        );
        let bytes = buffer.bytes();
        let mut r = Reader { bytes, at: 0 };
        ensure!(
            r.take(PACKED_MAGIC.len()).ok() == Some(PACKED_MAGIC),
            "not a packed line model (`kompress model pack-lines` writes one)"
        );
        let length = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
        let h: PackedHeader = serde_json::from_slice(r.take(length as usize)?)
            .context("packed line model header is not valid")?;
        r.align()?;
        let (trees, total) = (h.trees as usize, h.nodes as usize);
        let nodes = r.array(&buffer, trees + 1)?;
        let feature = r.array(&buffer, total)?;
        r.align()?;
        let threshold = r.array(&buffer, total)?;
        let left = r.array(&buffer, total)?;
        let right = r.array(&buffer, total)?;
        let leaf = r.array(&buffer, total + trees)?;
        let vocab = Vocab {
            outputs: h.vocab_outputs,
            starts: r.array(&buffer, h.vocab_items as usize + 1)?,
            counts: r.array(&buffer, h.vocab_items as usize)?,
            slots: r.array(&buffer, h.vocab_slots as usize)?,
            items: r.array(&buffer, h.vocab_bytes as usize)?,
        };
        ensure!(r.at == bytes.len(), "packed line model has trailing bytes");
        vocab.check()?;
        let forest = Forest {
            base: h.base,
            names: h.features,
            nodes,
            feature,
            threshold,
            left,
            right,
            leaf,
            prices: h.prices,
            meta: h.meta,
            vocab,
        };
        forest.check(expected_features)?;
        Ok(forest)
    }

    /// Check the feature names against the extractor's, and every tree's shape.
    fn check(&self, expected_features: &[&str]) -> Result<()> {
        // A file trained on a prefix of the extractor's features (an older model, before
        // features were appended) still reads them in the same places.
        let prefix = self.names.len() <= expected_features.len()
            && self
                .names
                .iter()
                .zip(expected_features)
                .all(|(a, b)| a == b);
        if !prefix || self.names.is_empty() {
            bail!(
                "line model was trained on other features ({} names, expected {}): retrain it",
                self.names.len(),
                expected_features.len()
            );
        }
        let total = self.feature.len();
        ensure!(
            self.nodes.first() == Some(&0)
                && self.nodes.last().map(|&n| n as usize) == Some(total)
                && self.nodes.windows(2).all(|w| w[0] <= w[1])
                && self.threshold.len() == total
                && self.left.len() == total
                && self.right.len() == total
                && self.leaf.len() == total + self.trees(),
            "tree arrays differ in length"
        );
        ensure!(
            self.feature
                .iter()
                .all(|&f| (f as usize) < self.names.len()),
            "feature index out of range"
        );
        for w in self.nodes.windows(2) {
            let (start, end) = (w[0] as usize, w[1] as usize);
            let nodes = (end - start) as i64;
            let children = self.left[start..end].iter().zip(&self.right[start..end]);
            // Children come after their parent (no cycles); leaf `-c - 1` is `!c`. Without
            // branches: which child is a leaf is random, and mispredicting it cost ~100 µs.
            let ok = |i: i64, c: i32| {
                let c = i64::from(c);
                ((c >= 0) & (c > i) & (c < nodes)) | ((c < 0) & (!c <= nodes))
            };
            let bad = (0i64..)
                .zip(children)
                .fold(false, |bad, (i, (&l, &r))| bad | !ok(i, l) | !ok(i, r));
            ensure!(!bad, "bad child index");
        }
        Ok(())
    }

    /// The probability that the line with features `x` is needed (the extractor's row:
    /// only the first features the file names are read).
    pub fn predict(&self, x: &[f32]) -> f32 {
        debug_assert!(x.len() >= self.names.len());
        let x = &x[..self.names.len()];
        let trees = Trees {
            nodes: &self.nodes,
            feature: &self.feature,
            threshold: &self.threshold,
            left: &self.left,
            right: &self.right,
            leaf: &self.leaf,
        };
        let sum: f32 = self.base + (0..self.trees()).map(|t| trees.eval(t, x)).sum::<f32>();
        1.0 / (1.0 + (-sum).exp())
    }

    /// The number of trees.
    pub fn trees(&self) -> usize {
        self.nodes.len() - 1
    }
}

/// The forest's arrays as slices, for a row's walk down every tree.
struct Trees<'a> {
    nodes: &'a [u32],
    feature: &'a [u16],
    threshold: &'a [f32],
    left: &'a [i32],
    right: &'a [i32],
    leaf: &'a [f32],
}

impl Trees<'_> {
    /// Tree `t`'s leaf for `x`.
    fn eval(&self, t: usize, x: &[f32]) -> f32 {
        let (start, end) = (self.nodes[t] as usize, self.nodes[t + 1] as usize);
        let leaves = &self.leaf[start + t..=end + t];
        if start == end {
            return leaves[0];
        }
        let mut node = 0usize;
        loop {
            let i = start + node;
            let next = if x[self.feature[i] as usize] <= self.threshold[i] {
                self.left[i]
            } else {
                self.right[i]
            };
            if next < 0 {
                return leaves[!next as usize];
            }
            node = next as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of the file from its arrays.
    fn tree(f: &[u16], t: &[f32], l: &[i32], r: &[i32], v: &[f32]) -> serde_json::Value {
        serde_json::json!({
            "f": encode(f, u16::to_le_bytes),
            "t": encode(t, f32::to_le_bytes),
            "l": encode(l, i32::to_le_bytes),
            "r": encode(r, i32::to_le_bytes),
            "v": encode(v, f32::to_le_bytes),
        })
    }

    /// Two trees on features `a` and `b`, with `right` as the second tree's `r`.
    fn two_trees(feature: u16, right: i32) -> String {
        serde_json::json!({
            "format": FORMAT,
            "features": ["a", "b"],
            "base": 0.5,
            "trees": [
                tree(&[0], &[1.5], &[-1], &[-2], &[-1.0, 1.0]),
                tree(&[feature, 0], &[0.0, 3.0], &[-1, -2], &[right, -3], &[0.25, -0.5, 0.75]),
            ],
            "prices": {"test": 200.0},
        })
        .to_string()
    }

    static TWO_TREES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| two_trees(1, 1));

    #[test]
    fn the_vocabulary_round_trips_and_finds_only_its_items() {
        let v = Vocab::new(10, [("self", 9), ("return", 7), ("abc", 1)]).unwrap();
        assert_eq!((v.df("self"), v.df("return"), v.df("abc")), (9, 7, 1));
        assert_eq!((v.df("ab"), v.df("abcd"), v.df("")), (0, 0, 0));
        assert!(v.is_generic("self") == (9 >= crate::usage::MIN_GENERIC_OUTPUTS));
        assert_eq!(
            v.iter().collect::<Vec<_>>(),
            [("abc", 1), ("return", 7), ("self", 9)]
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["items"], "abc return self ");
        let back: Vocab = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            v.iter().collect::<Vec<_>>()
        );
        assert_eq!(back.outputs, 10);
        let mut short = json;
        short["counts"] = encode(&[1u32, 2], u32::to_le_bytes).into();
        assert!(serde_json::from_value::<Vocab>(short).is_err());
        assert!(Vocab::new(1, [("a b", 1)]).is_err());
    }

    #[test]
    fn predicts_the_sum_of_leaves() {
        let f = Forest::from_json(TWO_TREES.as_bytes(), &["a", "b"]).unwrap();
        let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
        // a=1 → -1; b=0 → leaf 0 (0.25).
        assert!((f.predict(&[1.0, 0.0]) - sig(0.5 - 1.0 + 0.25)).abs() < 1e-6);
        // a=2 → 1; b=1 → node 1: a=2 <= 3 → leaf 1 (-0.5).
        assert!((f.predict(&[2.0, 1.0]) - sig(0.5 + 1.0 - 0.5)).abs() < 1e-6);
        // a=4 → 1; b=1 → node 1: a=4 > 3 → leaf 2 (0.75).
        assert!((f.predict(&[4.0, 1.0]) - sig(0.5 + 1.0 + 0.75)).abs() < 1e-6);
        assert_eq!(f.prices["test"], 200.0);
    }

    #[test]
    fn refuses_other_features_and_broken_trees() {
        assert!(Forest::from_json(TWO_TREES.as_bytes(), &["a", "c"]).is_err());
        assert!(Forest::from_json(TWO_TREES.as_bytes(), &["a"]).is_err());
        // A file on the first features of a longer row reads those.
        let f = Forest::from_json(TWO_TREES.as_bytes(), &["a", "b", "c"]).unwrap();
        assert_eq!(f.predict(&[4.0, 1.0, 9.0]), f.predict(&[4.0, 1.0]));
        let cyclic = two_trees(1, 0);
        assert!(Forest::from_json(cyclic.as_bytes(), &["a", "b"]).is_err());
        let out_of_range = two_trees(2, 1);
        assert!(Forest::from_json(out_of_range.as_bytes(), &["a", "b"]).is_err());
        assert!(Forest::from_json(b"{", &["a", "b"]).is_err());
        // Arrays that are not base64, or not whole values, and the previous format.
        let mut broken: serde_json::Value = serde_json::from_str(&TWO_TREES).unwrap();
        broken["trees"][0]["t"] = "!!".into();
        assert!(Forest::from_json(broken.to_string().as_bytes(), &["a", "b"]).is_err());
        broken["trees"][0]["t"] = encode(&[1u16, 2, 3], u16::to_le_bytes).into();
        assert!(Forest::from_json(broken.to_string().as_bytes(), &["a", "b"]).is_err());
        let old = TWO_TREES.replace(FORMAT, "kompress-line-forest-1");
        assert!(Forest::from_json(old.as_bytes(), &["a", "b"]).is_err());
    }

    /// [`TWO_TREES`] with an item table.
    fn two_trees_and_items() -> Forest {
        let mut f = Forest::from_json(TWO_TREES.as_bytes(), &["a", "b"]).unwrap();
        f.vocab = Vocab::new(30, [("self", 29), ("return", 7), ("abc", 1)]).unwrap();
        f
    }

    #[test]
    fn packing_keeps_every_prediction_and_item() {
        let f = two_trees_and_items();
        let packed = f.to_packed();
        let back = Forest::from_packed(&packed, &["a", "b", "c"]).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &packed).unwrap();
        let mapped = Forest::open(file.path(), &["a", "b"]).unwrap();
        for x in [[1.0, 0.0], [2.0, 1.0], [4.0, 1.0], [-3.0, 9.0]] {
            assert_eq!(back.predict(&x), f.predict(&x));
            assert_eq!(mapped.predict(&x), f.predict(&x));
        }
        assert_eq!(mapped.vocab.df("return"), 7);
        assert_eq!(back.prices, f.prices);
        assert_eq!(back.trees(), 2);
        assert_eq!(
            back.vocab.iter().collect::<Vec<_>>(),
            f.vocab.iter().collect::<Vec<_>>()
        );
        assert_eq!(
            (
                back.vocab.df("self"),
                back.vocab.df("abc"),
                back.vocab.df("zz")
            ),
            (29, 1, 0)
        );
        assert!(back.vocab.is_generic("self"));
        assert_eq!(back.to_packed(), packed);
        // Other features, or the JSON where the packed file belongs, are refused.
        assert!(Forest::from_packed(&packed, &["a", "c"]).is_err());
        assert!(Forest::from_packed(TWO_TREES.as_bytes(), &["a", "b"]).is_err());
    }

    #[test]
    fn broken_packed_files_are_errors_not_panics() {
        let packed = two_trees_and_items().to_packed();
        for end in 0..packed.len() {
            assert!(
                Forest::from_packed(&packed[..end], &["a", "b"]).is_err(),
                "cut at {end}"
            );
        }
        let mut longer = packed.clone();
        longer.push(0);
        assert!(Forest::from_packed(&longer, &["a", "b"]).is_err());
        // Every byte of the arrays changed in turn: an error, or a forest that still
        // answers (a changed threshold or count is still a forest).
        for at in PACKED_MAGIC.len()..packed.len() {
            for value in [0u8, 0x80, 0xff] {
                let mut broken = packed.clone();
                broken[at] = value;
                if let Ok(g) = Forest::from_packed(&broken, &["a", "b"]) {
                    for x in [[1.0, 0.0], [4.0, 1.0], [f32::NAN, -1.0]] {
                        g.predict(&x);
                    }
                    for item in ["self", "return", "abc", "zz", ""] {
                        g.vocab.df(item);
                    }
                }
            }
        }
    }
}
