//! The whole pipeline on arbitrary text, in every domain.
//!
//! Input: byte 0 picks the domain (`Domain::ALL[b % len]`), byte 1 the
//! `max_output_chars` (128 + 32·b), the rest is the text (lossy UTF-8).
//! Checks, mirroring `tests/invariants.rs`: no panic; on `Ok`, fewer tokens and fewer
//! bytes than the input, `tokens_out` is the output's count, and the output fits
//! `max_output_chars` (outside file reads); in the JSON domain, a valid JSON input stays
//! valid, equal JSON; the model pass with `FixedScorer(0.0)` (a domain set to
//! `passes = []`, `model = true`) keeps every protected word.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use kompress::config::Config;
use kompress::domain::{Domain, Settings};
use kompress::pipeline::{Request, compress};
use kompress::protect;
use kompress::scorer::FixedScorer;
use kompress::tokens;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static DEFAULT: LazyLock<Config> = LazyLock::new(Config::default);
static MODEL_ONLY: LazyLock<Config> = LazyLock::new(|| Config {
    domains: [(
        Domain::Prose,
        Settings {
            passes: vec![],
            model: true,
        },
    )]
    .into(),
    ..Config::default()
});

fn later() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

fuzz_target!(|data: &[u8]| {
    let [d, m, rest @ ..] = data else {
        return;
    };
    let domain = Domain::ALL[*d as usize % Domain::ALL.len()];
    let max = 128 + 32 * *m as usize;
    let text = String::from_utf8_lossy(rest);
    let text: &str = &text;

    for max_output_chars in [None, Some(max)] {
        let request = Request {
            text,
            domain: Some(domain),
            max_output_chars,
            ..Request::default()
        };
        let Ok(out) = compress(&request, &DEFAULT, None, later()) else {
            continue;
        };
        assert!(out.tokens_out < out.tokens_in, "{domain:?}: tokens grew");
        assert!(out.text.len() < text.len(), "{domain:?}: bytes grew");
        assert_eq!(out.tokens_out, tokens::count(&out.text));
        assert_eq!(out.domain, domain);
        if let Some(max) = max_output_chars
            && domain != Domain::FileRead
        {
            assert!(
                out.text.len() <= max,
                "{domain:?}: {} bytes over max_output_chars {max}",
                out.text.len()
            );
        }
        if domain == Domain::JsonToolResult
            && let Ok(before) = serde_json::from_str::<Value>(text.trim())
        {
            let after: Value = serde_json::from_str(out.text.trim())
                .unwrap_or_else(|e| panic!("JSON domain broke a JSON document: {e}"));
            assert_eq!(before, after, "JSON domain changed a value");
        }
    }

    // The model pass alone, dropping every word it may.
    let request = Request {
        text,
        domain: Some(Domain::Prose),
        ..Request::default()
    };
    if let Ok(out) = compress(&request, &MODEL_ONLY, Some(&FixedScorer(0.0)), later()) {
        assert!(out.text.len() < text.len());
        let kept: Vec<&str> = protect::words(&out.text).collect();
        for word in protect::protected_words(text) {
            assert!(
                kept.iter().any(|k| protect::core(k) == word),
                "model pass lost protected word {word:?}"
            );
        }
    }
});
