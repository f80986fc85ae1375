//! A measuring tool, not a test (ignored): word scores and final keep decisions of a model on
//! real tool outputs, written to a file, so runs with different numerics
//! (`KOMPRESS_ACT_BITS=16`, `KOMPRESS_DEQUANT=1`) can be compared word by word. It gave the
//! 8-bit activation figures in `src/model/qmatmul.rs`'s docs and docs/bench.md.
//!
//! ```text
//! DUMP_OUT=scores-16.jsonl KOMPRESS_ACT_BITS=16 \
//!     cargo test --release --test score_dump -- --ignored --nocapture
//! ```
//! `DUMP_CORPUS` (default `training/data/dev.jsonl.gz`),
//! `DUMP_RECORDS` (default 300), `DUMP_MODEL` (default the repository's `model/`).

use std::io::{BufRead, BufReader, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kompress::config::Config;
use kompress::domain::Hints;
use kompress::model::words::{ModelScorer, gapped_words};
use kompress::pipeline::{self, Request};
use kompress::scorer::Scorer;
use serde_json::{Value, json};

/// The model, remembering the words and scores of its last call.
struct Capture<'a> {
    model: &'a ModelScorer,
    last: Mutex<Option<(String, Vec<f32>)>>,
}

impl Scorer for Capture<'_> {
    fn score(&self, words: &[(&str, &str)], deadline: Instant) -> anyhow::Result<Vec<f32>> {
        let scores = self.model.score_gapped(words, deadline)?;
        let text: String = words.iter().map(|(g, w)| format!("{g}{w}")).collect();
        *self.last.lock().unwrap() = Some((text, scores.clone()));
        Ok(scores)
    }

    fn describe(&self) -> String {
        "capture".into()
    }
}

/// The model pass's final decision per word (as `pipeline::drop_words` makes it): kept when
/// its score is ≥ 0.5 or it is protected, or on a marker line.
fn final_keep(text: &str, scores: &[f32]) -> Vec<bool> {
    let mut scores = scores.iter();
    let mut out = Vec::new();
    for line in text.split_inclusive('\n') {
        let words: Vec<&str> = kompress::protect::words(line).collect();
        let line_scores: Vec<f32> = scores.by_ref().take(words.len()).copied().collect();
        let marker = kompress::passes::is_marker(line);
        for (w, s) in words.iter().zip(&line_scores) {
            out.push(
                marker || *s >= pipeline::KEEP_THRESHOLD || kompress::protect::is_protected(w),
            );
        }
    }
    out
}

#[test]
#[ignore]
fn corpus_scores() {
    let out_path = std::env::var("DUMP_OUT").expect("DUMP_OUT");
    let corpus = std::env::var("DUMP_CORPUS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/training/data/dev.jsonl.gz").into()
    });
    let records: usize = std::env::var("DUMP_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let model_dir = std::env::var("DUMP_MODEL")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/model").into());
    let model = ModelScorer::load(std::path::Path::new(&model_dir)).unwrap();
    let config = Config::default();
    let far = || Instant::now() + Duration::from_secs(3600);
    let reader = BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&corpus).unwrap(),
    ));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&out_path).unwrap());
    let mut n_words = 0usize;
    for line in reader.lines().take(records) {
        let rec: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let text = rec["text"].as_str().unwrap();
        // b: raw word scores of the whole text.
        let words = gapped_words(text);
        let scores = model.score_gapped(&words, far()).unwrap();
        n_words += words.len();
        // c: the pipeline as the hook runs it (without middle elision, so the model pass's
        // decisions are the final output's).
        let input = &rec["tool_input"];
        let str_of = |k: &str| input.get(k).and_then(Value::as_str);
        let hints = Hints {
            tool_name: rec["tool_name"].as_str(),
            command: str_of("command"),
            file_path: str_of("file_path"),
            grep_mode: rec["tool_response"]
                .get("mode")
                .and_then(Value::as_str)
                .or(str_of("output_mode")),
        };
        let request = Request {
            text,
            hints,
            domain: None,
            max_output_chars: None,
            full_output: None,
            intent: None,
            known: None,
            unprotected: false,
        };
        let capture = Capture {
            model: &model,
            last: Mutex::new(None),
        };
        let result = pipeline::compress(&request, &config, Some(&capture), far());
        let (model_text, keep) = match capture.last.into_inner().unwrap() {
            Some((t, s)) => {
                let keep = final_keep(&t, &s);
                (Some(t), keep)
            }
            None => (None, Vec::new()),
        };
        let (outcome, output) = match &result {
            Ok(c) => (format!("compressed:{}", c.domain), Some(c.text.clone())),
            Err(p) => (format!("passthrough:{p}"), None),
        };
        let row = json!({
            "id": rec["id"],
            "scores": scores,
            "outcome": outcome,
            "model_words": model_text.as_ref().map(|t| gapped_words(t).len()),
            "keep": keep,
            "output": output,
        });
        writeln!(out, "{row}").unwrap();
    }
    out.flush().unwrap();
    eprintln!("{records} records, {n_words} words -> {out_path}");
}
