//! Golden tests: real tool outputs from the dev corpus through the hook, compared with
//! committed snapshots.
//!
//! `tests/golden/records.jsonl` holds 281 records picked by `tests/golden/select.py`
//! (every domain and tool, plus pass-through checks under 200 characters). For each,
//! `tests/golden/expected/<id>.txt` is the text the model receives after the hook, and
//! `tests/golden/summary.tsv` lists every record's outcome. After an intended change,
//! regenerate with `KOMPRESS_BLESS=1 cargo test --test golden` and review the diff.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kompress::config::Config;
use kompress::eval::{Record, check_shape, payload, read_corpus, visible_text};
use kompress::{hook, tokens};
use serde_json::Value;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The hook's view of one record: the text the model gets, and whether it changed.
fn through_hook(record: &Record) -> (bool, String) {
    let bytes = serde_json::to_vec(&payload(record)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let reply = hook::handle(&bytes, &Config::default(), None, deadline).unwrap();
    let before = visible_text(&record.tool_name, &record.tool_response);
    let Some(reply) = reply else { return (false, before) };
    let reply: Value = serde_json::from_str(&reply.json).unwrap();
    assert_eq!(reply["hookSpecificOutput"]["hookEventName"], "PostToolUse");
    let updated = &reply["hookSpecificOutput"]["updatedToolOutput"];
    check_shape(&record.tool_name, &record.tool_response, updated)
        .unwrap_or_else(|e| panic!("{}: {e}", record.id));
    (true, visible_text(&record.tool_name, updated))
}

#[test]
fn golden_records() {
    let dir = golden_dir();
    let records = read_corpus(&dir.join("records.jsonl")).unwrap();
    assert!(records.len() >= 250, "{} records", records.len());
    let bless = std::env::var_os("KOMPRESS_BLESS").is_some();
    let expected_dir = dir.join("expected");
    if bless {
        let _ = std::fs::remove_dir_all(&expected_dir);
        std::fs::create_dir_all(&expected_dir).unwrap();
    }
    let mut summary = String::from("id\tdomain\ttool\treplaced\ttokens_in\ttokens_out\n");
    let mut mismatches = Vec::new();
    for record in &records {
        let before = visible_text(&record.tool_name, &record.tool_response);
        let (replaced, after) = through_hook(record);
        let (tokens_in, tokens_out) = (tokens::count(&before), tokens::count(&after));
        // Invariants that hold for every record, snapshot or not.
        assert!(tokens_out <= tokens_in, "{}: {tokens_in} → {tokens_out} tokens", record.id);
        assert!(after.len() <= before.len(), "{}: longer output", record.id);
        if before.chars().count() < 200 {
            assert!(!replaced, "{}: a short output was changed", record.id);
        }
        if record.tool_name == "Read" {
            assert!(!replaced, "{}: a source read was changed", record.id);
        }
        writeln!(
            summary,
            "{}\t{}\t{}\t{}\t{tokens_in}\t{tokens_out}",
            record.id, record.domain, record.tool_name, replaced
        )
        .unwrap();
        let path = expected_dir.join(format!("{}.txt", record.id));
        if bless {
            if replaced {
                std::fs::write(&path, &after).unwrap();
            }
        } else if replaced {
            match std::fs::read_to_string(&path) {
                Ok(expected) if expected == after => {}
                _ => mismatches.push(record.id.clone()),
            }
        } else if path.exists() {
            mismatches.push(format!("{} (no longer replaced)", record.id));
        }
    }
    let summary_path = dir.join("summary.tsv");
    if bless {
        std::fs::write(&summary_path, &summary).unwrap();
        return;
    }
    let expected_summary = std::fs::read_to_string(&summary_path).unwrap_or_default();
    assert!(
        mismatches.is_empty() && expected_summary == summary,
        "golden outputs differ for {} records ({:?}…) or summary.tsv differs; \
         review and run KOMPRESS_BLESS=1 cargo test --test golden",
        mismatches.len(),
        mismatches.iter().take(5).collect::<Vec<_>>()
    );
}
