//! Invariants every pass keeps, checked on the real corpus (when it is there) and on
//! random inputs: no panic, never longer, the final-newline status kept, `Borrowed` when
//! nothing changed, and the facts a pass may not drop still there.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use proptest::prelude::*;

use super::{Pass, is_marker};
use crate::protect;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("training/data")
}

/// One corpus text and what its record says about it.
struct Sample {
    id: String,
    text: String,
    tool: Option<String>,
    command: Option<String>,
    grep_mode: Option<String>,
}

impl Sample {
    /// The domain the pipeline would detect for it.
    fn domain(&self) -> crate::domain::Domain {
        let hints = crate::domain::Hints {
            tool_name: self.tool.as_deref(),
            command: self.command.as_deref(),
            file_path: None,
            grep_mode: self.grep_mode.as_deref(),
        };
        crate::domain::detect(&hints, &self.text)
    }
}

/// Every `text` of the dev corpus, plus the raw cargo outputs; empty when absent.
fn samples() -> Vec<Sample> {
    let dir = corpus_dir();
    let mut samples = Vec::new();
    let string = |v: &serde_json::Value| v.as_str().map(str::to_string);
    if let Ok(file) = std::fs::File::open(dir.join("dev.jsonl.gz")) {
        let reader = BufReader::new(flate2::read::GzDecoder::new(file));
        for line in reader.lines() {
            let r: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            samples.push(Sample {
                id: string(&r["id"]).unwrap_or_default(),
                text: string(&r["text"]).unwrap_or_default(),
                tool: string(&r["tool_name"]),
                command: string(&r["tool_input"]["command"]),
                grep_mode: string(&r["tool_input"]["output_mode"]),
            });
        }
    }
    if let Ok(file) = std::fs::File::open(dir.join("cargo_outputs.jsonl")) {
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let r: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            samples.push(Sample {
                id: format!("cargo-{i}"),
                text: string(&r["output"]).unwrap_or_default(),
                tool: Some("Bash".into()),
                command: string(&r["command"]),
                grep_mode: None,
            });
        }
    }
    samples
}

/// Every `text` of the dev corpus, plus the raw cargo outputs; empty when absent.
pub(crate) fn corpus() -> Vec<(String, String)> {
    let dir = corpus_dir();
    let mut texts = Vec::new();
    if let Ok(file) = std::fs::File::open(dir.join("dev.jsonl.gz")) {
        let reader = BufReader::new(flate2::read::GzDecoder::new(file));
        for line in reader.lines() {
            let record: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            let id = record["id"].as_str().unwrap_or("?").to_string();
            texts.push((id, record["text"].as_str().unwrap_or("").to_string()));
        }
    }
    if let Ok(file) = std::fs::File::open(dir.join("cargo_outputs.jsonl")) {
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let record: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            texts.push((
                format!("cargo-{i}"),
                record["output"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    texts
}

/// How many lines of the corpus `matcher` accepts, after checking that on every line it
/// answers as `pattern` does: a hand-written matcher keeps to the regex it replaces.
pub(crate) fn lines_agree(matcher: impl Fn(&str) -> bool, pattern: &str) -> usize {
    let pattern = regex::Regex::new(pattern).expect("valid pattern");
    let mut accepted = 0;
    for (_, text) in corpus() {
        for line in text.lines() {
            assert_eq!(matcher(line), pattern.is_match(line), "{line:?}");
            accepted += usize::from(matcher(line));
        }
    }
    accepted
}

/// The general invariants; returns the output.
fn check<'a>(pass: Pass, id: &str, text: &'a str) -> Cow<'a, str> {
    let out = pass.apply(text);
    assert!(out.len() <= text.len(), "{pass:?} grew {id}");
    // The final newline is never dropped. It may appear only when the pass emptied the
    // last line (spaces, an escape sequence, a `\r`), never when that line had a word.
    if text.ends_with('\n') {
        assert!(
            out.ends_with('\n') || out.is_empty(),
            "{pass:?} dropped the final newline of {id}"
        );
    } else if out.ends_with('\n') {
        let last = text.rsplit('\n').next().unwrap_or("");
        let emptied = pass.apply(last);
        assert!(
            !emptied.chars().any(char::is_alphanumeric),
            "{pass:?} added a final newline to {id}: {text:?}"
        );
    }
    if let Cow::Owned(changed) = &out {
        assert_ne!(
            changed, text,
            "{pass:?} returned an unchanged Owned for {id}"
        );
    }
    out
}

/// Protected words of `text` missing from `out`.
fn lost_words<'a>(text: &'a str, out: &str) -> Vec<&'a str> {
    let have: HashSet<&str> = protect::protected_words(out).into_iter().collect();
    let mut lost: Vec<&str> = protect::protected_words(text)
        .into_iter()
        .filter(|w| !have.contains(w) && !out.contains(w))
        .collect();
    lost.dedup();
    lost
}

/// Checks specific to each pass.
fn check_facts(pass: Pass, id: &str, text: &str, out: &str) {
    match pass {
        // These keep every word as printed (json: modulo the whitespace between tokens).
        Pass::TrailingWhitespace | Pass::BlankLines | Pass::Repeats | Pass::SimilarLines => {
            let lost = lost_words(text, &super::repeats::expand_ranges(out));
            assert!(lost.is_empty(), "{pass:?} lost {lost:?} in {id}");
        }
        Pass::Json if out != text => {
            let a: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
            let b: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
            assert_eq!(a, b, "json changed a value in {id}");
        }
        Pass::PathLists => {
            // Expand the grouped runs back: the same lines, as a multiset.
            let mut recovered: Vec<String> = Vec::new();
            let mut in_run = false;
            for line in out.lines() {
                if is_marker(line) {
                    in_run = line.contains("paths grouped by directory");
                    continue;
                }
                match line.split_once("/: ") {
                    Some((dir, names)) if in_run && !dir.contains(' ') => {
                        recovered.extend(names.split(' ').map(|n| format!("{dir}/{n}")));
                    }
                    _ => {
                        in_run &= !line.contains(char::is_whitespace);
                        recovered.push(line.to_string());
                    }
                }
            }
            let mut original: Vec<String> = text.lines().map(str::to_string).collect();
            original.sort();
            recovered.sort();
            assert!(
                original == recovered,
                "lists lost or changed a line in {id}"
            );
        }
        Pass::TestRunner => {
            // Only passing/skipped test lines go; a kept line is never altered.
            let kept: HashSet<&str> = out.lines().collect();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let lower = line.to_lowercase();
                let signal = ["fail", "error", "panic", "traceback", "exception"]
                    .iter()
                    .any(|w| lower.contains(w));
                let passing = |l: &str| {
                    l.ends_with(" ... ok")
                        || l.contains(" ... skip")
                        || l.contains(" ... ignored")
                        || l.contains(" PASSED")
                        || l.contains(" XFAIL")
                        || l.contains(" SKIPPED")
                };
                // A unittest `test_x (mod.Class)` line above its passing docstring line.
                let header =
                    line.ends_with(')') && lines.get(i + 1).is_some_and(|l| l.ends_with(" ... ok"));
                if signal && !passing(line) && !header {
                    assert!(kept.contains(line), "testrun dropped {line:?} in {id}");
                }
            }
        }
        _ => {}
    }
    // Lines are kept whole: every output line that is not a marker (or a path group) was
    // an input line, after the pass's own line edit.
    if matches!(
        pass,
        Pass::Repeats | Pass::SimilarLines | Pass::TestRunner | Pass::BlankLines
    ) {
        let input: HashSet<&str> = text.lines().collect();
        for line in out.lines() {
            assert!(
                is_marker(line) || line.is_empty() || input.contains(line),
                "{pass:?} altered {line:?} in {id}"
            );
        }
    }
}

#[test]
fn corpus_invariants() {
    let corpus = corpus();
    if corpus.is_empty() {
        eprintln!("corpus not found at {}: skipped", corpus_dir().display());
        return;
    }
    for (id, text) in &corpus {
        for &pass in Pass::ALL {
            let out = check(pass, id, text);
            check_facts(pass, id, text, &out);
        }
    }
}

/// Bytes in and out per pass over the whole corpus, each pass alone on the raw text.
/// `cargo test --lib passes::invariants::corpus_bytes_per_pass -- --ignored --nocapture`
#[test]
#[ignore]
fn corpus_bytes_per_pass() {
    let corpus = corpus();
    let total: usize = corpus.iter().map(|(_, t)| t.len()).sum();
    println!("{} texts, {total} bytes", corpus.len());
    println!(
        "{:<22} {:>10} {:>10} {:>8} {:>8} {:>9}",
        "pass", "in", "out", "saved%", "changed", "time_ms"
    );
    for &pass in Pass::ALL {
        let start = std::time::Instant::now();
        let mut out_bytes = 0;
        let mut changed = 0;
        for (_, text) in &corpus {
            let out = pass.apply(text);
            if matches!(out, Cow::Owned(_)) {
                changed += 1;
            }
            out_bytes += out.len();
        }
        let ms = start.elapsed().as_millis();
        println!(
            "{:<22} {total:>10} {out_bytes:>10} {:>7.2}% {changed:>8} {ms:>9}",
            pass.name(),
            100.0 * (total - out_bytes) as f64 / total as f64
        );
    }
    // All passes chained in pipeline order, as if every domain ran all of them.
    let mut out_bytes = 0;
    for (_, text) in &corpus {
        let mut cur = Cow::Borrowed(text.as_str());
        for &pass in Pass::ALL {
            if let Cow::Owned(o) = pass.apply(&cur) {
                cur = Cow::Owned(o);
            }
        }
        out_bytes += cur.len();
    }
    println!(
        "{:<22} {total:>10} {out_bytes:>10} {:>7.2}%",
        "all (chained)",
        100.0 * (total - out_bytes) as f64 / total as f64
    );

    // As the pipeline runs them: each text through its detected domain's passes.
    println!("\nper pass, within the detected domain's pass list (chained in order):");
    let samples = samples();
    let mut per_pass: Vec<(usize, usize, usize)> = vec![(0, 0, 0); Pass::ALL.len()];
    let mut per_domain: std::collections::BTreeMap<&str, (usize, usize, usize)> =
        Default::default();
    for sample in &samples {
        let domain = sample.domain();
        let settings = domain.settings();
        let mut cur = Cow::Borrowed(sample.text.as_str());
        for (k, &pass) in Pass::ALL.iter().enumerate() {
            if !settings.passes.contains(&pass) {
                continue;
            }
            let before = cur.len();
            let next = pass.apply(&cur).into_owned();
            per_pass[k].0 += before;
            per_pass[k].1 += next.len();
            if next.len() != before || next != *cur {
                per_pass[k].2 += 1;
            }
            cur = Cow::Owned(next);
        }
        let entry = per_domain.entry(domain.name()).or_default();
        entry.0 += sample.text.len();
        entry.1 += cur.len();
        entry.2 += 1;
    }
    for (k, &pass) in Pass::ALL.iter().enumerate() {
        let (i, o, c) = per_pass[k];
        println!(
            "{:<22} {i:>10} {o:>10} saved {:>8} bytes  changed {c:>5} texts",
            pass.name(),
            i - o
        );
    }
    for (domain, (i, o, n)) in per_domain {
        println!(
            "{domain:<22} {i:>10} {o:>10} {:>7.2}%  ({n} texts)",
            100.0 * (i - o) as f64 / i.max(1) as f64
        );
    }
}

/// Print what one pass does to the corpus records it changes (for tuning by eye).
/// `KOMPRESS_PASS=similar_lines cargo test --lib passes::invariants::corpus_show -- --ignored --nocapture`
#[test]
#[ignore]
fn corpus_show() {
    let name = std::env::var("KOMPRESS_PASS").unwrap_or_else(|_| "similar_lines".into());
    let pass = *Pass::ALL
        .iter()
        .find(|p| p.name() == name)
        .expect("a pass name");
    let all = std::env::var("KOMPRESS_ALL_DOMAINS").is_ok();
    let only = std::env::var("KOMPRESS_ID").ok();
    for sample in samples() {
        if let Some(only) = &only {
            if &sample.id == only {
                println!(
                    "{}\n----- becomes -----\n{}",
                    sample.text,
                    pass.apply(&sample.text)
                );
            }
            continue;
        }
        let domain = sample.domain();
        if !all && !domain.settings().passes.contains(&pass) {
            continue;
        }
        let (id, text) = (&sample.id, &sample.text);
        if let Cow::Owned(out) = pass.apply(text) {
            println!(
                "===== {id} ({domain}): {} -> {} bytes",
                text.len(),
                out.len()
            );
            for line in out.lines().filter(|l| is_marker(l)) {
                println!("{line}");
            }
        }
    }
}

#[test]
fn huge_and_pathological_inputs() {
    let big_line = "x".repeat(5_000_000);
    let many_lines = "tests/a/b.py\n".repeat(200_000);
    let crs = "\r".repeat(100_000);
    let escs = "\x1b[".repeat(100_000);
    let alternating: String = (0..100_000).map(|i| format!("l{}\n", i % 2)).collect();
    let json_deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for text in [
        &big_line,
        &many_lines,
        &crs,
        &escs,
        &alternating,
        &json_deep,
    ] {
        // Sized so that a quadratic pass would not finish; no timing is asserted.
        for &pass in Pass::ALL {
            check(pass, "pathological", text);
        }
    }
}

fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "\n",
        "\r\n",
        "\r",
        " ",
        "\t",
        "\x1b",
        "\x1b[",
        "31m",
        "\x07",
        "]",
        "[",
        "é",
        "━━━",
        "50%",
        "/",
        "a/b/",
        "x.py",
        "::",
        " PASSED",
        " ... ok",
        " ... FAIL",
        "test_x",
        "ok",
        "{",
        "}",
        "\"",
        ":",
        ",",
        "1",
        "0x1f",
        "=====",
        "-----",
        "--- PASS: T",
        "=== RUN T",
        "✓ ",
        "running 3 tests",
        "Ran 3 tests in 0.1s",
        "...",
        "Compiling foo v1.0",
        "error",
        "[kompress: x]",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_inputs_keep_the_invariants(pieces in prop::collection::vec(piece(), 0..200)) {
        let text = pieces.concat();
        for &pass in Pass::ALL {
            check(pass, "random", &text);
        }
    }

    #[test]
    fn random_repeats_keep_lines_whole(lines in prop::collection::vec(prop::sample::select(vec![
        "a", "b", "  File \"x.py\", line 1, in f", "    return f()", "", "Compiling foo v1.0.0", "Compiling bar v2.1.3",
    ]), 0..120)) {
        let text = lines.join("\n");
        for pass in [Pass::Repeats, Pass::SimilarLines, Pass::BlankLines] {
            let out = check(pass, "random", &text);
            check_facts(pass, "random", &text, &out);
        }
    }
}

/// Time every pass on a 60 MB text (the corpus, repeated).
/// `cargo test --release --lib passes::invariants::sixty_megabytes -- --ignored --nocapture`
#[test]
#[ignore]
fn sixty_megabytes() {
    let corpus = corpus();
    if corpus.is_empty() {
        return;
    }
    let one: String = corpus
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let big = one.repeat(60_000_000 / one.len().max(1) + 1);
    println!("{} bytes", big.len());
    for &pass in Pass::ALL {
        let start = std::time::Instant::now();
        let out = pass.apply(&big);
        println!(
            "{:<22} {:>10} -> {:>10} in {:?}",
            pass.name(),
            big.len(),
            out.len(),
            start.elapsed()
        );
    }
}
