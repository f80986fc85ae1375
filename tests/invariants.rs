//! Property tests of the product's invariants over generated inputs:
//! outputs never grow, must-keep words survive, JSON stays JSON, nothing panics.

use std::time::{Duration, Instant};

use kompress::config::Config;
use kompress::domain::Domain;
use kompress::passes::Pass;
use kompress::pipeline::{Request, compress};
use kompress::protect;
use kompress::scorer::FixedScorer;
use proptest::prelude::*;
use serde_json::Value;

/// Words as tool output has them: filler and facts.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "the", "a", "of", "Compiling", "Downloading", "running", "done", "with", "into",
            "ok", "test", "passed", "in", "from", "Finished", "building", "=>", "|", "...",
        ]).prop_map(str::to_string),
        1 => prop::sample::select(vec![
            "TokenExpiredError", "/var/log/app.log", "3.28.33", "E0277", "0x7ffd5e8c",
            "CVE-2024-3094", "src/main.rs:12:5", "never", "must", "not", "x86_64",
            "--release", "HTTP_PROXY", "os.path.join", "9d85279", "failed", "H2SO4",
        ]).prop_map(str::to_string),
        1 => "[a-z]{1,8}[0-9]{0,3}",
    ]
}

fn line() -> impl Strategy<Value = String> {
    (0usize..3, prop::collection::vec(word(), 0..10))
        .prop_map(|(indent, words)| format!("{}{}", "  ".repeat(indent), words.join(" ")))
}

/// Text with the structure passes look for: runs of repeated and similar lines.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec((line(), 1usize..6), 1..60).prop_map(|runs| {
        let mut text = String::new();
        for (line, times) in runs {
            for _ in 0..times {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    })
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn all_domains() -> impl Strategy<Value = Domain> {
    prop::sample::select(Domain::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Never longer than the input, in tokens or bytes, whatever the domain.
    #[test]
    fn never_longer(text in text(), domain in all_domains()) {
        let request = Request { text: &text, domain: Some(domain), ..Request::default() };
        if let Ok(out) = compress(&request, &Config::default(), None, later()) {
            prop_assert!(out.tokens_out < out.tokens_in);
            prop_assert!(out.text.len() < text.len());
            prop_assert_eq!(out.tokens_out, kompress::tokens::count(&out.text));
        }
    }

    /// The model pass never drops a protected word, even when it would drop every word.
    #[test]
    fn model_pass_keeps_every_protected_word(text in text()) {
        let request = Request { text: &text, domain: Some(Domain::Prose), ..Request::default() };
        let config = Config { domains: [(Domain::Prose, kompress::domain::Settings { passes: vec![], model: true, lines: false })].into(), ..Config::default() };
        if let Ok(out) = compress(&request, &config, Some(&FixedScorer(0.0)), later()) {
            let kept: Vec<&str> = protect::words(&out.text).collect();
            for word in protect::protected_words(&text) {
                prop_assert!(kept.iter().any(|k| protect::core(k) == word), "lost {}", word);
            }
        }
    }

    /// Passes that fold or trim lines keep every protected word somewhere in the output.
    #[test]
    fn word_preserving_passes_keep_protected_words(text in text()) {
        for pass in [Pass::Ansi, Pass::Progress, Pass::TrailingWhitespace, Pass::Repeats, Pass::SimilarLines, Pass::BlankLines] {
            let out = pass.apply(&text);
            prop_assert!(out.len() <= text.len(), "{:?} grew the text", pass);
            let out = kompress::passes::repeats::expand_ranges(&out);
            for word in protect::protected_words(&text) {
                prop_assert!(out.contains(word), "{:?} lost {}", pass, word);
            }
        }
    }

    /// JSON stays valid JSON with the same keys and values.
    #[test]
    fn json_stays_equal(value in json_value()) {
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let out = Pass::Json.apply(&pretty);
        let parsed: Value = serde_json::from_str(&out).unwrap();
        prop_assert_eq!(parsed, value);
    }

    /// The hook never panics, whatever bytes arrive.
    #[test]
    fn hook_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400), text in text()) {
        let _ = kompress::hook::handle(&bytes, &Config::default(), None, later());
        let payload = serde_json::json!({"tool_name": "Bash", "tool_response": {"stdout": text}});
        let _ = kompress::hook::handle(payload.to_string().as_bytes(), &Config::default(), None, later());
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::from(n)),
        (-1e9f64..1e9).prop_map(|f| serde_json::json!(f)),
        "[a-zA-Z0-9 é\"\\\\/\n]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replay the hook payloads the fuzz targets found (`tests/fixtures/fuzz/hook_payload/`):
/// no panic, and a reply keeps the tool output's shape.
#[test]
fn fuzz_hook_payload_reproducers() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz/hook_payload");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let payload: Value = serde_json::from_slice(&bytes).unwrap();
        let reply = kompress::hook::handle(&bytes, &Config::default(), None, later())
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        if let Some(reply) = reply {
            let out: Value = serde_json::from_str(&reply.json).unwrap();
            assert_eq!(out["hookSpecificOutput"]["hookEventName"], "PostToolUse");
            let tool = payload["tool_name"].as_str().unwrap();
            let updated = &out["hookSpecificOutput"]["updatedToolOutput"];
            if let Err(e) = kompress::eval::check_shape(tool, &payload["tool_response"], updated) {
                panic!("{}: {e}", path.display());
            }
        }
        replayed += 1;
    }
    assert!(replayed > 0);
}
