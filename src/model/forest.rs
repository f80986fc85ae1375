//! A gradient-boosted tree ensemble: the line model's runtime.
//!
//! The file (`model/lines.json`, written by `training/line_model.py` from a LightGBM
//! booster) names its features, so a binary whose feature extractor differs refuses it
//! instead of scoring garbage. Each tree is flat arrays: node `i` sends `x` left when
//! `x[feature[i]] <= threshold[i]`; a child `c >= 0` is a node, `c < 0` the leaf `-c - 1`.
//! The score is the logistic of the sum of the leaves plus `base`.
//!
//! In the file each array is the base64 of its little-endian values (`f` u16, `t` and `v`
//! f32, `l` and `r` i32). Every hook call that selects lines reads the file, and parsing the
//! shipped forest's 37,000 numbers as JSON took about 2 ms of it.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use serde::Deserialize;

/// The format name the file must carry.
pub const FORMAT: &str = "kompress-line-forest-2";

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

impl Tree {
    fn eval(&self, x: &[f32]) -> f32 {
        if self.feature.is_empty() {
            return self.leaf.first().copied().unwrap_or(0.0);
        }
        let mut node = 0usize;
        loop {
            let go_left = x[self.feature[node] as usize] <= self.threshold[node];
            let next = if go_left {
                self.left[node]
            } else {
                self.right[node]
            };
            if next < 0 {
                return self.leaf[(-next - 1) as usize];
            }
            node = next as usize;
        }
    }

    fn check(&self, features: usize) -> Result<()> {
        let nodes = self.feature.len();
        ensure!(
            self.threshold.len() == nodes && self.left.len() == nodes && self.right.len() == nodes,
            "tree arrays differ in length"
        );
        ensure!(!self.leaf.is_empty(), "tree without leaves");
        ensure!(
            nodes == 0 || nodes + 1 == self.leaf.len(),
            "a binary tree has one leaf more than nodes"
        );
        for i in 0..nodes {
            ensure!(
                (self.feature[i] as usize) < features,
                "feature index out of range"
            );
            for child in [self.left[i], self.right[i]] {
                if child >= 0 {
                    // Children come after their parent: no cycles.
                    ensure!(
                        (child as usize) > i && (child as usize) < nodes,
                        "bad child index"
                    );
                } else {
                    ensure!(((-child - 1) as usize) < self.leaf.len(), "bad leaf index");
                }
            }
        }
        Ok(())
    }
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

/// How many of the training repositories' step outputs each common item occurs in: what
/// makes an item generic (`self`, `return`) or distinctive, for the line features
/// ([`crate::select::features`]). Written by `kompress model line-data` from the
/// training trajectories and carried into the model file, so that training and run time
/// read the same table.
///
/// In the file: `{"outputs": N, "items": "a b …", "counts": base64 of u32 LE}`, the
/// items sorted and separated by spaces (items are words: they hold none). Read as a JSON
/// object of 4,500 items it took over 1 ms of every hook call that selects lines; this way
/// loading is one string and an index of 64-bit hashes, each hit checked against the item
/// itself.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(try_from = "EncodedVocab", into = "EncodedVocab")]
pub struct Vocab {
    /// Step outputs counted.
    pub outputs: u32,
    /// The items in at least [`crate::usage::MIN_GENERIC_OUTPUTS`] of them, sorted, each
    /// ended by a space.
    items: String,
    /// Where each item starts in `items`; one more entry, the end.
    starts: Vec<u32>,
    /// Each item's count.
    counts: Vec<u32>,
    /// The item's [`hash`] to its position.
    index: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
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
            items: v.items,
        }
    }
}

/// FNV-1a, 64 bits: the index key of an item.
fn hash(item: &str) -> u64 {
    item.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
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
        let mut v = Vocab {
            outputs,
            starts: Vec::with_capacity(n + 1),
            counts: Vec::with_capacity(n),
            index: HashMap::with_capacity_and_hasher(n, BuildHasherDefault::default()),
            ..Vocab::default()
        };
        for (position, (item, count)) in sorted.enumerate() {
            ensure!(
                !item.is_empty() && !item.contains(' '),
                "bad vocabulary item {item:?}"
            );
            v.starts.push(v.items.len() as u32);
            v.items.push_str(item);
            v.items.push(' ');
            v.counts.push(count);
            let clash = v.index.insert(hash(item), position as u32);
            ensure!(
                clash.is_none(),
                "vocabulary items {item:?} and another share a hash"
            );
        }
        v.starts.push(v.items.len() as u32);
        Ok(v)
    }

    /// Every `(item, count)`, sorted by item.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.starts
            .windows(2)
            .zip(&self.counts)
            .map(|(w, &n)| (&self.items[w[0] as usize..w[1] as usize - 1], n))
    }

    /// The outputs `item` occurs in (0 when it is not in the table: it is rare).
    pub fn df(&self, item: &str) -> u32 {
        let Some(&position) = self.index.get(&hash(item)) else {
            return 0;
        };
        let p = position as usize;
        let found = &self.items[self.starts[p] as usize..self.starts[p + 1] as usize - 1];
        if found == item { self.counts[p] } else { 0 }
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

/// A loaded ensemble.
#[derive(Debug)]
pub struct Forest {
    base: f32,
    trees: Vec<Tree>,
    features: usize,
    /// Calibrated prices per kind of command ([`crate::domain::CommandKind::name`]): how
    /// many tokens a used item is worth when deciding which lines go (see
    /// [`crate::select::choose`]). A kind without a price keeps every line.
    pub prices: BTreeMap<String, f32>,
    /// Free-form training facts from the file (data, split, metrics), for `model info`.
    pub meta: serde_json::Value,
    /// The item counts the features were computed with.
    pub vocab: Vocab,
}

impl Forest {
    /// Parse a forest file and check it against the extractor's feature names.
    pub fn from_json(bytes: &[u8], expected_features: &[&str]) -> Result<Forest> {
        let file: File = serde_json::from_slice(bytes).context("line model is not valid JSON")?;
        if file.format != FORMAT {
            bail!("line model format `{}`, expected `{FORMAT}`", file.format);
        }
        // A file trained on a prefix of the extractor's features (an older model, before
        // features were appended) still reads them in the same places.
        let prefix = file.features.len() <= expected_features.len()
            && file
                .features
                .iter()
                .zip(expected_features)
                .all(|(a, b)| a == b);
        if !prefix || file.features.is_empty() {
            bail!(
                "line model was trained on other features ({} names, expected {}): retrain it",
                file.features.len(),
                expected_features.len()
            );
        }
        for tree in &file.trees {
            tree.check(file.features.len())?;
        }
        Ok(Forest {
            base: file.base,
            trees: file.trees,
            features: file.features.len(),
            prices: file.prices,
            meta: file.meta,
            vocab: file.vocab,
        })
    }

    /// The probability that the line with features `x` is needed (the extractor's row:
    /// only the first features the file names are read).
    pub fn predict(&self, x: &[f32]) -> f32 {
        debug_assert!(x.len() >= self.features);
        let x = &x[..self.features];
        let sum: f32 = self.base + self.trees.iter().map(|t| t.eval(x)).sum::<f32>();
        1.0 / (1.0 + (-sum).exp())
    }

    /// The number of trees.
    pub fn trees(&self) -> usize {
        self.trees.len()
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
}
