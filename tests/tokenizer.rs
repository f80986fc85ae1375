//! The ModernBERT tokenizer (`src/model/tokenizer.rs`) against the reference implementations,
//! and word-level scoring (`src/model/words.rs`) end to end on the tiny model fixtures.
//!
//! * `tests/fixtures/tokenizer/cases.jsonl`: (text, ids) pairs written by the Python
//!   `tokenizers` package (`training/build_tokenizer.py --fixtures`) from `model/tokenizer.json`.
//! * The Rust `tokenizers` crate on the same file, on the fixture texts and on a few thousand
//!   generated strings made of the characters tool output is made of.
//!
//! Load-time and throughput measurements are `#[ignore]`d; run them in fresh processes:
//! `cargo test --release --test tokenizer -- --ignored --nocapture --exact <name>`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use kompress::model::modernbert::{Config, ModernBertForTokenClassification, load_safetensors};
use kompress::model::tokenizer::{self, Tokenizer};
use kompress::model::words::{self, ModelScorer, WordEncoder, gapped_words};
use kompress::scorer::Scorer;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn json_path() -> PathBuf {
    root().join("model/tokenizer.json")
}

fn ours() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::from_json_file(&json_path()).unwrap())
}

fn reference() -> &'static tokenizers::Tokenizer {
    static TOK: OnceLock<tokenizers::Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| tokenizers::Tokenizer::from_file(json_path()).unwrap())
}

fn reference_ids(text: &str) -> Vec<u32> {
    reference().encode(text, true).unwrap().get_ids().to_vec()
}

fn cases() -> Vec<(String, Vec<u32>)> {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/tokenizer/cases.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let ids = v["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as u32);
            (v["text"].as_str().unwrap().to_string(), ids.collect())
        })
        .collect()
}

/// Deterministic pseudo-random strings from the pieces tool output is made of.
fn generated(n: usize) -> Vec<String> {
    const PIECES: &[&str] = &[
        " ",
        " ",
        " ",
        "  ",
        "   ",
        "\t",
        "\n",
        "\r\n",
        "\n\n",
        "    ",
        "a",
        "the",
        "Error",
        "TokenExpiredError",
        "/var/log/app.log",
        "x_1",
        "42",
        "3.14",
        "0x1f",
        "'s",
        "'",
        "'ll",
        "\"",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ":",
        ";",
        ",",
        ".",
        "...",
        "-",
        "--",
        "==",
        "=>",
        "|",
        "|||IP_ADDRESS|||",
        "[MASK]",
        "[CLS]",
        "[unused7]",
        "<|endoftext|>",
        "é",
        "e\u{301}",
        "日本",
        "Привет",
        "🚀",
        "👍🏽",
        "├──",
        "█",
        "\u{a0}",
        "\u{3000}",
        "١٢٣",
        "²",
        "Ⅻ",
        "\u{0}",
        "\u{1b}[0m",
        "$HOME",
        "~/x",
        "C:\\x",
        "@",
        "#",
        "%",
        "&&",
        "->",
        "::",
        "<",
        ">",
        "`",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|_| {
            let len = (next() % 24) as usize;
            (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect()
        })
        .collect()
}

#[test]
fn published_modernbert_ids() {
    let tok = ours();
    assert_eq!(tok.encode("Hello world", true), [50281, 12092, 1533, 50282]);
    assert_eq!(
        tok.encode("The capital of France is [MASK].", true),
        [50281, 510, 5347, 273, 6181, 310, 50284, 15, 50282]
    );
    assert_eq!(
        (
            tok.cls_id(),
            tok.sep_id(),
            tok.pad_id(),
            tok.mask_id(),
            tok.vocab_size()
        ),
        (50281, 50282, 50283, 50284, 50368)
    );
}

#[test]
fn parity_with_python_fixture() {
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut mismatches = Vec::new();
    for (text, want) in &cases {
        let got = ours().encode(text, true);
        if &got != want {
            mismatches.push(format!("{text:?}\n  ours: {got:?}\n  want: {want:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn parity_with_tokenizers_crate() {
    let texts: Vec<String> = cases()
        .into_iter()
        .map(|(t, _)| t)
        .chain(generated(3000))
        .collect();
    let mut mismatches = Vec::new();
    for text in &texts {
        let (got, want) = (ours().encode(text, true), reference_ids(text));
        if got != want {
            mismatches.push(format!("{text:?}\n  ours: {got:?}\n  want: {want:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        texts.len(),
        mismatches
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn compiled_file_round_trips_through_mmap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(tokenizer::COMPILED_FILE);
    tokenizer::compile_file(&json_path(), &path).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 2_000_000, "compiled form is {size} bytes");
    let mapped = Tokenizer::open(&path).unwrap();
    for (text, want) in cases() {
        assert_eq!(mapped.encode(&text, true), want, "{text:?}");
    }
    // A truncated file is refused at load.
    let bytes = std::fs::read(&path).unwrap();
    assert!(Tokenizer::from_bytes(bytes[..bytes.len() / 2].to_vec()).is_err());
    // The token table decodes back to the text for byte-level tokens.
    let ids = mapped.encode("café ├── x", false);
    let decoded: Vec<u8> = ids
        .iter()
        .flat_map(|&id| mapped.token_bytes(id).unwrap().to_vec())
        .collect();
    assert_eq!(String::from_utf8(decoded).unwrap(), "café ├── x");
}

/// Tokenizing each word with the whitespace before it gives the ids of the whole text.
#[test]
fn word_by_word_equals_running_text() {
    let texts: Vec<String> = cases()
        .into_iter()
        .map(|(t, _)| t)
        .chain(generated(1000))
        .collect();
    for text in &texts {
        let trimmed = text.trim_end();
        let mut ids = Vec::new();
        for (gap, word) in gapped_words(trimmed) {
            ours().encode_word(gap, word, &mut ids);
        }
        assert_eq!(ids, ours().encode(trimmed, false), "{trimmed:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Word-level scoring on the tiny fixtures.

/// The tiny fixtures have a 64-token vocabulary, so real ModernBERT ids cannot be fed to them.
/// This test-only encoder tokenizes with the real tokenizer and folds every id into the fixture
/// vocabulary as `3 + id % 61` (0 is [PAD], 1 [CLS], 2 [SEP] in the fixtures). Word boundaries
/// and sub-token counts are the real ones; only the ids are folded.
struct FoldedEncoder;

impl WordEncoder for FoldedEncoder {
    fn encode_word(&self, gap: &str, word: &str, out: &mut Vec<u32>) {
        let start = out.len();
        ours().encode_word(gap, word, out);
        for id in &mut out[start..] {
            *id = 3 + *id % 61;
        }
    }
    fn cls_id(&self) -> u32 {
        1
    }
    fn sep_id(&self) -> u32 {
        2
    }
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/model").join(name)
}

fn scorer(name: &str) -> ModelScorer {
    ModelScorer::load_with_encoder(&fixture(name), Box::new(FoldedEncoder), None).unwrap()
}

/// The fixture texts joined by newlines, `repeats` times.
fn long_text(repeats: usize) -> String {
    let cases = cases();
    let once: Vec<&str> = cases.iter().map(|(t, _)| t.as_str()).collect();
    vec![once.join("\n"); repeats].join("\n")
}

#[test]
fn scores_every_word_across_chunks() {
    // About 400 words: several 128-token chunks, yet quick in a debug build.
    let text = long_text(1);
    let words: Vec<&str> = kompress::protect::words(&text).take(400).collect();
    for name in ["tiny-token-cls", "tiny-dual"] {
        let scorer = scorer(name);
        assert_eq!(scorer.max_len(), 128, "min(512, max_position_embeddings)");
        let chunks = scorer.chunks(&words::single_spaced(&words));
        assert!(chunks.len() >= 5, "{name}: {} chunks", chunks.len());
        // Every chunk fits, and every word lies whole in exactly one chunk, in order.
        let mut seen = vec![0usize; words.len()];
        let mut last = 0;
        for chunk in &chunks {
            assert!(chunk.ids.len() <= 128);
            assert_eq!((chunk.ids[0], *chunk.ids.last().unwrap()), (1, 2));
            for w in chunk.word_of.iter().flatten() {
                assert!(*w >= last, "words out of order");
                last = *w;
                seen[*w] += 1;
            }
        }
        for (i, word) in words.iter().enumerate() {
            let mut ids = Vec::new();
            FoldedEncoder.encode_word(if i == 0 { "" } else { " " }, word, &mut ids);
            assert_eq!(
                seen[i],
                ids.len().min(126),
                "word {i} {word:?} split or lost"
            );
        }
        let scores = scorer
            .score_gapped(&words::single_spaced(&words), far())
            .unwrap();
        assert_eq!(scores.len(), words.len());
        assert!(
            scores.iter().all(|s| (0.0..=1.0).contains(s)),
            "{name}: {scores:?}"
        );
        assert_eq!(
            scores,
            scorer
                .score_gapped(&words::single_spaced(&words), far())
                .unwrap(),
            "{name}: not deterministic"
        );
        let spread =
            scores.iter().cloned().fold(0.0, f32::max) - scores.iter().cloned().fold(1.0, f32::min);
        assert!(spread > 1e-3, "{name}: all scores equal");
        eprintln!("{name}: {} words, {} chunks", words.len(), chunks.len());
    }
}

#[test]
fn word_score_is_max_of_its_subtokens() {
    let dir = fixture("tiny-token-cls");
    let words = [
        "TokenExpiredError",
        "at",
        "/var/log/app.log:42",
        "🚀",
        "done",
    ];
    let scorer = scorer("tiny-token-cls");
    let scores = scorer
        .score_gapped(&words::single_spaced(&words), far())
        .unwrap();
    let chunks = scorer.chunks(&words::single_spaced(&words));
    assert_eq!(chunks.len(), 1);
    // The same forward by hand.
    let cfg = Config::from_file(&dir.join("config.json")).unwrap();
    let vb = load_safetensors(&[dir.join("model.safetensors")], &candle_core::Device::Cpu).unwrap();
    let model = ModernBertForTokenClassification::load(&cfg, vb).unwrap();
    let ids = candle_core::Tensor::new(chunks[0].ids.as_slice(), &candle_core::Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let probs = candle_nn::ops::softmax_last_dim(&model.forward(&ids, None).unwrap()).unwrap();
    let keep: Vec<Vec<f32>> = probs.squeeze(0).unwrap().to_vec2().unwrap();
    for (w, score) in scores.iter().enumerate() {
        let want = chunks[0]
            .word_of
            .iter()
            .zip(&keep)
            .filter(|(word, _)| **word == Some(w))
            .map(|(_, p)| p[1])
            .fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(*score, want, "word {w}");
    }
    assert!(
        chunks[0].word_of.iter().filter(|w| **w == Some(0)).count() >= 3,
        "TokenExpiredError is several sub-tokens"
    );
}

#[test]
fn overlong_word_stays_one_word() {
    let scorer = scorer("tiny-dual").with_max_len(16);
    let long = "a".repeat(200) + "/" + &"b1".repeat(100);
    let words = ["before", long.as_str(), "after", "x"];
    let chunks = scorer.chunks(&words::single_spaced(&words));
    assert!(chunks.iter().all(|c| c.ids.len() <= 16));
    let owners: Vec<Vec<usize>> = chunks
        .iter()
        .map(|c| c.word_of.iter().flatten().copied().collect())
        .collect();
    assert_eq!(owners[0], vec![0]);
    assert_eq!(owners[1], vec![1; 14], "the long word alone, truncated");
    assert_eq!(
        scorer
            .score_gapped(&words::single_spaced(&words), far())
            .unwrap()
            .len(),
        4
    );
    assert!(scorer.score_gapped(&[], far()).unwrap().is_empty());
    assert!(scorer.describe().contains("dual"));
    let past = std::time::Instant::now();
    assert!(
        scorer
            .score_gapped(&words::single_spaced(&words), past)
            .is_err(),
        "a passed deadline stops the scoring"
    );
}

fn far() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(600)
}

// ---------------------------------------------------------------------------------------------
// Measurements (ignored; run in fresh release processes).

fn compiled_path() -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(tokenizer::COMPILED_FILE);
    if !path.exists() {
        tokenizer::compile_file(&json_path(), &path).unwrap();
    }
    path
}

#[test]
#[ignore]
fn load_time_tokenizers_crate() {
    let start = Instant::now();
    let tok = tokenizers::Tokenizer::from_file(json_path()).unwrap();
    let loaded = start.elapsed();
    let ids = tok.encode("Hello world", true).unwrap();
    eprintln!(
        "tokenizers crate: load {:.2} ms, load + first encode {:.2} ms ({:?})",
        loaded.as_secs_f64() * 1e3,
        start.elapsed().as_secs_f64() * 1e3,
        ids.get_ids()
    );
}

#[test]
#[ignore]
fn load_time_compiled() {
    let path = compiled_path();
    let start = Instant::now();
    let tok = Tokenizer::open(&path).unwrap();
    let loaded = start.elapsed();
    let ids = tok.encode("Hello world ✅ café", true);
    eprintln!(
        "compiled mmap: load {:.3} ms, load + first encode (non-ASCII) {:.3} ms ({ids:?})",
        loaded.as_secs_f64() * 1e3,
        start.elapsed().as_secs_f64() * 1e3
    );
}

/// The fallback when a model directory has no compiled form: compile the JSON in memory.
#[test]
#[ignore]
fn load_time_json_fallback() {
    let start = Instant::now();
    let tok = Tokenizer::from_json_file(&json_path()).unwrap();
    eprintln!(
        "compile tokenizer.json in memory: {:.1} ms ({} ids)",
        start.elapsed().as_secs_f64() * 1e3,
        tok.encode("Hello world", true).len()
    );
}

#[test]
#[ignore]
fn encode_throughput() {
    let text: String = (0..40).map(|_| long_text(6)).collect::<Vec<_>>().join("\n");
    let mb = text.len() as f64 / 1e6;
    let ours = Tokenizer::open(&compiled_path()).unwrap();
    let start = Instant::now();
    let n = ours.encode(&text, true).len();
    let t_ours = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let m = reference()
        .encode(text.as_str(), true)
        .unwrap()
        .get_ids()
        .len();
    let t_ref = start.elapsed().as_secs_f64();
    assert_eq!(n, m);
    eprintln!(
        "{mb:.2} MB, {n} tokens: compiled {:.1} MB/s ({:.2} M tokens/s); tokenizers crate {:.1} MB/s ({:.2} M tokens/s)",
        mb / t_ours,
        n as f64 / t_ours / 1e6,
        mb / t_ref,
        m as f64 / t_ref / 1e6
    );
}

/// `--device cuda`'s path, run on the CPU: the GGUF file dequantized onto a device and the
/// candle forward (`ModelScorer::load_with_encoder(…, Some(device))`). Apart from the device
/// itself, this is every step a CUDA build takes; it must score like the fast CPU forward
/// on the same Q8_0 file, up to the integer kernel's 8-bit activation rounding. The random
/// fixtures put many words near 0.5, so a small change flips some: measured 98.0% agreement
/// and max |Δscore| 0.115 on tiny-token-cls (100% and 4e-4 with `KOMPRESS_ACT_BITS=16`);
/// [`device_path_scores_like_the_fast_forward_on_the_shipped_model`] holds a trained model
/// to a far tighter bound.
#[test]
fn device_path_scores_like_the_fast_forward() {
    let text = long_text(1);
    let words: Vec<&str> = kompress::protect::words(&text).take(300).collect();
    let gapped = words::single_spaced(&words);
    let later = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    for name in ["tiny-token-cls", "tiny-dual"] {
        let dir = tempfile::tempdir().unwrap();
        kompress::model::convert::convert(&fixture(name), dir.path()).unwrap();
        let fast =
            ModelScorer::load_with_encoder(dir.path(), Box::new(FoldedEncoder), None).unwrap();
        let cpu = candle_core::Device::Cpu;
        let on = ModelScorer::load_with_encoder(dir.path(), Box::new(FoldedEncoder), Some(&cpu))
            .unwrap();
        assert!(on.describe().ends_with("on cpu"), "{}", on.describe());
        let (a, b) = (
            fast.score_gapped(&gapped, later).unwrap(),
            on.score_gapped(&gapped, later).unwrap(),
        );
        assert_eq!(a.len(), b.len());
        let max_diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        let agree = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| (**x > 0.5) == (**y > 0.5))
            .count();
        let pct = 100.0 * agree as f64 / a.len() as f64;
        eprintln!(
            "{name}: device path vs fast forward: max |Δscore| {max_diff:.2e}, keep agreement {pct:.2}% of {} words",
            a.len()
        );
        assert!(max_diff < 0.25, "{name}: max |Δscore| {max_diff}");
        assert!(pct >= 97.0, "{name}: agreement {pct:.2}%");
    }
}

/// The same comparison with the shipped model, its tokenizer and real tool output (the
/// golden records): a trained model's scores sit away from 0.5, so the 8-bit rounding of the
/// fast forward must leave essentially every keep decision as the F32 device path makes it.
#[test]
fn device_path_scores_like_the_fast_forward_on_the_shipped_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("model");
    let records = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/records.jsonl"),
    )
    .unwrap();
    let text: String = records
        .lines()
        .take(40)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let words: Vec<&str> = kompress::protect::words(&text).take(600).collect();
    let gapped = words::single_spaced(&words);
    let later = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    let fast = ModelScorer::load(&dir).unwrap();
    let on = ModelScorer::load_on(&dir, Some(&candle_core::Device::Cpu)).unwrap();
    let (a, b) = (
        fast.score_gapped(&gapped, later).unwrap(),
        on.score_gapped(&gapped, later).unwrap(),
    );
    let max_diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    let flips = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| (**x >= 0.5) != (**y >= 0.5))
        .count();
    eprintln!(
        "shipped model: device path vs fast forward on {} words: max |Δscore| {max_diff:.2e}, {flips} keep decisions differ",
        a.len()
    );
    assert!(a.len() >= 500, "{} words", a.len());
    assert!(flips * 1000 <= a.len(), "{flips} of {} differ", a.len());
    assert!(max_diff < 0.02, "max |Δscore| {max_diff}");
}
