//! Word-level scoring on top of a sub-token model.
//!
//! The pipeline works on words (`crate::protect::words`: runs of non-whitespace); the model
//! sees byte-level BPE sub-tokens. Here each word is tokenized together with the whitespace
//! that precedes it, which gives exactly the sub-tokens the model would see in running text
//! (the GPT-2 pre-tokenizer and OLMo's whitespace-run tokens never join characters across a
//! whitespace → non-whitespace boundary, so tokenizing `gap + word` piece by piece equals
//! tokenizing the whole text). Words are packed into chunks of at most `max_len` tokens,
//! `[CLS]` and `[SEP]` included, that never split a word; the next chunk restarts at the
//! first word not seen whole. A word longer than a whole chunk gets a chunk of its own with
//! its sub-tokens truncated (it stays one word). A word's score is the maximum of its
//! sub-tokens' keep scores.
//!
//! [`ModelScorer`] implements [`Scorer`] with a ModernBERT token classifier or the Kompress
//! dual head; it takes each word with the real whitespace before it (newlines included), as
//! the training data was tokenized (training/train.py `Encoder`).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Device, IndexOp, Tensor};

use super::modernbert::{Config, KompressDual, ModernBertForTokenClassification, load_safetensors};
use super::tokenizer::Tokenizer;
use super::weights::Weights;
use crate::scorer::Scorer;

/// The longest chunk, in tokens including `[CLS]` and `[SEP]` (ModernBERT's training length
/// for the token head).
pub const MAX_CHUNK_TOKENS: usize = 512;

/// Turns words into sub-token ids; [`Tokenizer`] is the real one.
pub trait WordEncoder: Send + Sync {
    /// Appends the ids of `gap` (the whitespace before the word) followed by `word`.
    fn encode_word(&self, gap: &str, word: &str, out: &mut Vec<u32>);
    fn cls_id(&self) -> u32;
    fn sep_id(&self) -> u32;
}

impl WordEncoder for Tokenizer {
    fn encode_word(&self, gap: &str, word: &str, out: &mut Vec<u32>) {
        if gap.is_empty() {
            self.encode_into(word, out);
        } else {
            let mut text = String::with_capacity(gap.len() + word.len());
            text.push_str(gap);
            text.push_str(word);
            self.encode_into(&text, out);
        }
    }
    fn cls_id(&self) -> u32 {
        Tokenizer::cls_id(self)
    }
    fn sep_id(&self) -> u32 {
        Tokenizer::sep_id(self)
    }
}

/// The words of `text` with the whitespace before each: `(gap, word)` pairs, in order.
pub fn gapped_words(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let start = rest.len() - rest.trim_start().len();
        if start == rest.len() {
            return out;
        }
        let after = &rest[start..];
        let len = after.find(char::is_whitespace).unwrap_or(after.len());
        out.push((&rest[..start], &after[..len]));
        rest = &after[len..];
    }
}

/// One model input: `[CLS] sub-tokens… [SEP]`, and which word each sub-token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub ids: Vec<u32>,
    /// `word_of[i]` is the word index of `ids[i]`; `None` for `[CLS]` and `[SEP]`.
    pub word_of: Vec<Option<usize>>,
}

/// Packs per-word sub-tokens into chunks of at most `max_len` tokens (`[CLS]`/`[SEP]`
/// included) that never split a word; see the module docs.
pub fn chunk_words(word_ids: &[Vec<u32>], max_len: usize, cls: u32, sep: u32) -> Vec<Chunk> {
    assert!(
        max_len >= 3,
        "a chunk needs room for [CLS], one token and [SEP]"
    );
    let room = max_len - 2;
    let mut chunks = Vec::new();
    let mut current = Chunk {
        ids: vec![cls],
        word_of: vec![None],
    };
    let finish = |chunk: &mut Chunk, chunks: &mut Vec<Chunk>| {
        if chunk.ids.len() > 1 {
            chunk.ids.push(sep);
            chunk.word_of.push(None);
            chunks.push(std::mem::replace(
                chunk,
                Chunk {
                    ids: vec![cls],
                    word_of: vec![None],
                },
            ));
        }
    };
    for (w, ids) in word_ids.iter().enumerate() {
        let used = current.ids.len() - 1;
        if used + ids.len() > room {
            finish(&mut current, &mut chunks);
        }
        let take = ids.len().min(room);
        current.ids.extend_from_slice(&ids[..take]);
        current.word_of.extend(std::iter::repeat_n(Some(w), take));
        if take < ids.len() {
            // Longer than a chunk: truncated, alone in its chunk.
            finish(&mut current, &mut chunks);
        }
    }
    finish(&mut current, &mut chunks);
    chunks
}

/// Word scores from per-token scores: the maximum over each word's sub-tokens; a word with no
/// sub-tokens (an empty word) scores 1.0, i.e. it is kept.
pub fn word_scores(chunks: &[Chunk], token_scores: &[Vec<f32>], n_words: usize) -> Vec<f32> {
    let mut out = vec![f32::NEG_INFINITY; n_words];
    for (chunk, scores) in chunks.iter().zip(token_scores) {
        for (word, score) in chunk.word_of.iter().zip(scores) {
            if let Some(w) = word {
                out[*w] = out[*w].max(*score);
            }
        }
    }
    for s in &mut out {
        if *s == f32::NEG_INFINITY {
            *s = 1.0;
        }
    }
    out
}

/// Which head produces the per-token keep scores.
enum Head {
    /// `softmax(logits)[keep]`.
    TokenClassification {
        model: ModernBertForTokenClassification,
        keep: usize,
    },
    /// The dual head's `scores`.
    Dual(KompressDual),
}

/// A [`Scorer`] backed by a ModernBERT model and a sub-token encoder.
pub struct ModelScorer {
    head: Head,
    encoder: Box<dyn WordEncoder>,
    max_len: usize,
    device: Device,
    description: String,
}

/// The keep class of a token classifier: a label named `keep` (any case), else class 1 of two.
fn keep_label(cfg: &Config) -> Result<usize> {
    if let Some((id, _)) = cfg
        .id2label
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case("keep"))
    {
        return Ok(*id as usize);
    }
    match cfg.num_labels() {
        2 => Ok(1),
        n => bail!("{n} labels and none named `keep`: cannot tell which class means keep"),
    }
}

impl ModelScorer {
    /// Loads `dir/config.json`, `dir/model.q8_0.gguf` (else `dir/model.safetensors`) and the tokenizer
    /// ([`Tokenizer::from_model_dir`]). A checkpoint with `token_head.weight` is the Kompress
    /// dual head (encoder under `encoder.`); otherwise a `ModernBertForTokenClassification`.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_on(dir, None)
    }

    /// Like [`Self::load`], on `device` (see [`super::device::DeviceChoice::resolve`]):
    /// `None` for the fast CPU forward, `Some(d)` for F32 weights and the candle forward on
    /// `d`.
    pub fn load_on(dir: &Path, device: Option<&Device>) -> Result<Self> {
        let tokenizer = Tokenizer::from_model_dir(dir)?;
        Self::load_with_encoder(dir, Box::new(tokenizer), device)
    }

    /// Like [`Self::load_on`] with another sub-token encoder (tests use one that fits a tiny
    /// fixture vocabulary).
    pub fn load_with_encoder(
        dir: &Path,
        encoder: Box<dyn WordEncoder>,
        device: Option<&Device>,
    ) -> Result<Self> {
        let gguf = dir.join(super::GGUF_FILE);
        if gguf.is_file() {
            return Self::load_weights(dir, &gguf, encoder, device);
        }
        Self::load_weights(dir, &dir.join(super::SAFETENSORS_FILE), encoder, device)
    }

    /// Loads `dir/config.json` with the weights in `weights`: a GGUF file (Q8_0 matrices used
    /// in place from the mapping, or dequantized onto `device`) or F32 safetensors (on
    /// `device`, else the CPU).
    pub fn load_weights(
        dir: &Path,
        weights: &Path,
        encoder: Box<dyn WordEncoder>,
        on: Option<&Device>,
    ) -> Result<Self> {
        super::tune_allocator();
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let device = on.cloned().unwrap_or(Device::Cpu);
        let vb: Weights = if weights.extension().is_some_and(|e| e == "gguf") {
            Weights::open_gguf_on(weights, on)?
        } else {
            load_safetensors(&[weights], &device)
                .with_context(|| format!("loading {}", weights.display()))?
                .into()
        };
        let (head, kind) = if vb.contains_tensor("token_head.weight") {
            (
                Head::Dual(KompressDual::load(&cfg, "encoder", vb)?),
                "Kompress dual head",
            )
        } else {
            let keep = keep_label(&cfg)?;
            let model = ModernBertForTokenClassification::load(&cfg, vb)?;
            (
                Head::TokenClassification { model, keep },
                "token classifier",
            )
        };
        let max_len = MAX_CHUNK_TOKENS.min(cfg.max_position_embeddings);
        let description = format!(
            "ModernBERT {kind} ({} layers, hidden {}) from {} on {}",
            cfg.num_hidden_layers,
            cfg.hidden_size,
            weights.display(),
            super::device::name(on)
        );
        Ok(Self {
            head,
            encoder,
            max_len,
            device,
            description,
        })
    }

    /// Sets the chunk length (tokens including `[CLS]`/`[SEP]`, at least 3).
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        assert!(max_len >= 3);
        self.max_len = max_len;
        self
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The chunks `words` (with the whitespace before each) are scored in.
    pub fn chunks(&self, words: &[(&str, &str)]) -> Vec<Chunk> {
        let mut word_ids = Vec::with_capacity(words.len());
        for (gap, word) in words {
            let mut ids = Vec::new();
            self.encoder.encode_word(gap, word, &mut ids);
            word_ids.push(ids);
        }
        chunk_words(
            &word_ids,
            self.max_len,
            self.encoder.cls_id(),
            self.encoder.sep_id(),
        )
    }

    /// Keep scores of every token of each chunk, the chunks run as one batch (right-padded
    /// to the longest, padding masked out).
    ///
    /// The keep probability is computed here rather than with candle's softmax: candle's
    /// CPU ops start a rayon pool, two spinning threads on the cold-start path for a
    /// two-class softmax.
    fn token_scores(&self, chunks: &[Chunk]) -> Result<Vec<Vec<f32>>> {
        let (model, keep) = match &self.head {
            Head::TokenClassification { model, keep } => (model, *keep),
            Head::Dual(model) => {
                return chunks
                    .iter()
                    .map(|chunk| {
                        let ids = Tensor::new(chunk.ids.as_slice(), &self.device)?.unsqueeze(0)?;
                        Ok(model.forward(&ids, None)?.scores.i(0)?.to_vec1()?)
                    })
                    .collect();
            }
        };
        let longest = chunks.iter().map(|c| c.ids.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(chunks.len() * longest);
        let mut mask = Vec::with_capacity(chunks.len() * longest);
        for chunk in chunks {
            let pad = longest - chunk.ids.len();
            ids.extend_from_slice(&chunk.ids);
            ids.extend(std::iter::repeat_n(0u32, pad));
            mask.extend(std::iter::repeat_n(1u32, chunk.ids.len()));
            mask.extend(std::iter::repeat_n(0u32, pad));
        }
        let shape = (chunks.len(), longest);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = if chunks.iter().any(|c| c.ids.len() < longest) {
            Some(Tensor::from_vec(mask, shape, &self.device)?)
        } else {
            None
        };
        let logits: Vec<Vec<Vec<f32>>> = model.forward(&ids, mask.as_ref())?.to_vec3()?;
        Ok(chunks
            .iter()
            .zip(logits)
            .map(|(chunk, rows)| {
                rows[..chunk.ids.len()]
                    .iter()
                    .map(|row| keep_probability(row, keep))
                    .collect()
            })
            .collect())
    }

    /// One score per word, given the whitespace before each word. Fails as soon as a batch
    /// ends after `deadline`, rather than finishing a scoring that can no longer be used.
    ///
    /// Chunks run two at a time when their lengths are within a quarter of each other
    /// (the fast forward gives each of its 2 threads a whole sequence, with no barrier per
    /// layer); a short last chunk runs alone rather than padded.
    pub fn score_gapped(&self, words: &[(&str, &str)], deadline: Instant) -> Result<Vec<f32>> {
        let chunks = self.chunks(words);
        let mut token_scores = Vec::with_capacity(chunks.len());
        let mut i = 0;
        while i < chunks.len() {
            if Instant::now() > deadline {
                bail!("deadline passed after {i} of {} chunks", chunks.len());
            }
            let pair = chunks.get(i + 1).is_some_and(|next| {
                let (a, b) = (chunks[i].ids.len(), next.ids.len());
                4 * a.min(b) >= 3 * a.max(b)
            });
            let n = if pair { 2 } else { 1 };
            token_scores.extend(self.token_scores(&chunks[i..i + n])?);
            i += n;
        }
        match &self.head {
            Head::TokenClassification { model, .. } => model.encoder().release_buffers(),
            Head::Dual(model) => model.encoder().release_buffers(),
        }
        Ok(word_scores(&chunks, &token_scores, words.len()))
    }
}

/// `softmax(row)[keep]`, as `1 / Σ exp(l − l_keep)` (an overflowing term gives 0, the
/// limit).
fn keep_probability(row: &[f32], keep: usize) -> f32 {
    let own = row[keep];
    1.0 / row.iter().map(|l| (l - own).exp()).sum::<f32>()
}

/// `(gap, word)` pairs for bare words: one space before every word but the first.
pub fn single_spaced<'a>(words: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| (if i == 0 { "" } else { " " }, *w))
        .collect()
}

impl Scorer for ModelScorer {
    fn score(&self, words: &[(&str, &str)], deadline: Instant) -> Result<Vec<f32>> {
        self.score_gapped(words, deadline)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes folded into a fixture's 64-token vocabulary (0 [PAD], 1 [CLS], 2 [SEP]).
    struct FixtureBytes;

    impl WordEncoder for FixtureBytes {
        fn encode_word(&self, gap: &str, word: &str, out: &mut Vec<u32>) {
            out.extend(
                gap.bytes()
                    .chain(word.bytes())
                    .map(|b| 3 + u32::from(b) % 61),
            );
        }
        fn cls_id(&self) -> u32 {
            1
        }
        fn sep_id(&self) -> u32 {
            2
        }
    }

    /// Chunks scored as one padded batch get the scores they get alone.
    #[test]
    fn a_batch_of_chunks_scores_like_each_alone() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/model/tiny-token-cls");
        let scorer = ModelScorer::load_with_encoder(&dir, Box::new(FixtureBytes), None)
            .unwrap()
            .with_max_len(40);
        let words: Vec<String> = (0..60).map(|i| format!("w{}", i * 37 % 1000)).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let chunks = scorer.chunks(&single_spaced(&words));
        let last = chunks.len() - 1;
        assert!(chunks.len() >= 3 && chunks[last].ids.len() < chunks[0].ids.len());
        for pair in [[0, 1], [0, last]] {
            let batch: Vec<Chunk> = pair.iter().map(|&i| chunks[i].clone()).collect();
            let together = scorer.token_scores(&batch).unwrap();
            for (k, &i) in pair.iter().enumerate() {
                let alone = scorer
                    .token_scores(std::slice::from_ref(&chunks[i]))
                    .unwrap();
                assert_eq!(alone[0].len(), chunks[i].ids.len());
                let diff = alone[0]
                    .iter()
                    .zip(&together[k])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(diff < 1e-5, "chunk {i} in {pair:?}: {diff}");
            }
        }
        let probabilities = [
            keep_probability(&[0.3, -1.2], 1),
            keep_probability(&[0.3, -1.2], 0),
        ];
        assert!((probabilities[0] + probabilities[1] - 1.0).abs() < 1e-6);
        assert!((probabilities[1] - 1.0 / (1.0 + (-1.5f32).exp())).abs() < 1e-6);
        assert_eq!(keep_probability(&[200.0, -200.0], 1), 0.0);
    }

    #[test]
    fn gapped_words_keep_whitespace() {
        assert_eq!(
            gapped_words("  a b\n\tc  "),
            vec![("  ", "a"), (" ", "b"), ("\n\t", "c")]
        );
        assert!(gapped_words(" \n").is_empty());
        let text = "x  y\r\nz";
        let words: Vec<&str> = crate::protect::words(text).collect();
        let gapped: Vec<&str> = gapped_words(text).into_iter().map(|(_, w)| w).collect();
        assert_eq!(words, gapped);
    }

    #[test]
    fn chunks_never_split_words() {
        // Word w has w % 4 + 1 tokens; 10 tokens per chunk leave room for 8.
        let word_ids: Vec<Vec<u32>> = (0..20).map(|w| vec![100 + w as u32; w % 4 + 1]).collect();
        let chunks = chunk_words(&word_ids, 10, 1, 2);
        let mut next_word = 0;
        for chunk in &chunks {
            assert!(chunk.ids.len() <= 10);
            assert_eq!((chunk.ids[0], *chunk.ids.last().unwrap()), (1, 2));
            let words: Vec<usize> = chunk.word_of.iter().flatten().copied().collect();
            // Consecutive, starting where the previous chunk stopped, each word whole.
            assert_eq!(words[0], next_word);
            for w in words
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>()
            {
                assert_eq!(words.iter().filter(|&&x| x == w).count(), word_ids[w].len());
                next_word = w + 1;
            }
        }
        assert_eq!(next_word, 20);
        assert!(chunks.len() >= 50 / 8);
    }

    #[test]
    fn an_overlong_word_is_truncated_alone() {
        let word_ids = vec![vec![5; 3], vec![6; 20], vec![7; 2]];
        let chunks = chunk_words(&word_ids, 8, 1, 2);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].ids, vec![1, 5, 5, 5, 2]);
        assert_eq!(chunks[1].ids, vec![1, 6, 6, 6, 6, 6, 6, 2]);
        assert_eq!(chunks[2].ids, vec![1, 7, 7, 2]);
        let scores: Vec<Vec<f32>> = chunks
            .iter()
            .map(|c| (0..c.ids.len()).map(|i| i as f32 / 10.0).collect())
            .collect();
        assert_eq!(word_scores(&chunks, &scores, 3), vec![0.3, 0.6, 0.2]);
    }

    #[test]
    fn empty_input_has_no_chunks() {
        assert!(chunk_words(&[], 512, 1, 2).is_empty());
        assert_eq!(word_scores(&[], &[], 2), vec![1.0, 1.0]);
    }
}
