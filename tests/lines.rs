//! Line selection through the real binary, on real held-out agent outputs: the shipped
//! line model drops runs of unneeded lines, every marker names a range that `kompress show
//! ID --lines` brings back exactly, and error lines and the last line always stay.

mod common;

use common::Env;
use serde_json::{Value, json};

fn hook(env: &Env, text: &str, command: &str) -> Option<String> {
    let payload = json!({
        "session_id": "s", "hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_input": {"command": command, "description": ""},
        "tool_response": {"stdout": text, "stderr": "", "interrupted": false, "isImage": false},
        "tool_use_id": "toolu_1",
    });
    let out = env.run(&["hook"], payload.to_string().as_bytes());
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.is_empty() {
        return None;
    }
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(
        reply["hookSpecificOutput"]["updatedToolOutput"]["stdout"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

/// The steps of one repository of the shipped trajectories.
fn steps_of(repo: &str) -> Vec<kompress::usage::Step> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/training/data/trajectories-dev.jsonl.gz"
    );
    kompress::usage::read(std::path::Path::new(path))
        .unwrap()
        .into_iter()
        .filter(|t| t.repo == repo)
        .flat_map(|t| t.steps)
        .collect()
}

/// Step outputs of one held-out repository of the shipped trajectories (never trained on):
/// (command, output) of the non-read outputs of 200+ characters.
fn held_out_outputs(limit: usize) -> Vec<(String, String)> {
    steps_of("pylint-dev/astroid")
        .into_iter()
        .filter(|step| {
            let reads = ["cat ", "sed ", "head ", "tail ", "nl "]
                .iter()
                .any(|r| step.command.starts_with(r));
            step.output.len() >= 200 && step.output.lines().count() >= 8 && !reads
        })
        .map(|step| (step.command, step.output))
        .take(limit)
        .collect()
}

#[test]
fn dropped_runs_come_back_by_their_line_numbers() {
    let env = Env::new().with_model();
    let mut with_markers = 0;
    for (command, text) in held_out_outputs(60) {
        let Some(after) = hook(&env, &text, &command) else {
            continue;
        };
        assert!(after.len() < text.len());
        let original: Vec<&str> = text.split('\n').collect();
        // The last non-blank line and every error line stay.
        let last = original
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap();
        // (Its words: a path list's last path may be grouped under its directory.)
        let kept: std::collections::HashSet<&str> = kompress::usage::items(&after).collect();
        assert!(
            kompress::usage::items(last).all(|w| kept.contains(w)),
            "{command}: last line {last:?} lost:\n{after}"
        );
        for line in original.iter().filter(|l| l.contains("Error: ")) {
            assert!(
                after.contains(line.trim_end()),
                "{command}: {line:?} lost:\n{after}"
            );
        }
        let markers: Vec<&str> = after
            .lines()
            .filter(|l| l.starts_with("[kompress: line") || l.starts_with("[line"))
            .collect();
        if markers.is_empty() {
            continue;
        }
        with_markers += 1;
        // The first marker names the command, and stands in for the trailer; the others
        // are short. Every marker names its original range.
        assert!(markers[0].contains(" omitted; kompress show "), "{after}");
        assert!(
            markers[1..].iter().all(|m| !m.contains("kompress")),
            "{after}"
        );
        assert!(!after.contains(" tokens · full output: "), "{after}");
        let id = markers[0]
            .split("kompress show ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        for marker in markers {
            let range = marker
                .split_whitespace()
                .skip_while(|w| !w.trim_start_matches('[').starts_with("line"))
                .nth(1)
                .unwrap();
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
            let shown = env.run(&["show", id, "--lines", &format!("{a}:{b}")], b"");
            assert!(
                shown.status.success(),
                "{}",
                String::from_utf8_lossy(&shown.stderr)
            );
            let shown = String::from_utf8(shown.stdout).unwrap();
            // A range may end on the empty "line" after the text's last newline, which
            // `show` has no line for.
            assert_eq!(
                shown.trim_end_matches('\n'),
                original[a - 1..b].join("\n").trim_end_matches('\n'),
                "{command}: {marker}"
            );
        }
    }
    assert!(
        with_markers >= 3,
        "only {with_markers} outputs had lines dropped"
    );
}

/// `git diff` outputs of a held-out repository: the line model drops whole lines of a diff
/// and rewrites none (whitespace is content: every kept line is an original line, in order,
/// byte for byte).
#[test]
fn diffs_lose_whole_lines_only() {
    let diffs: Vec<(String, String)> = steps_of("scikit-learn/scikit-learn")
        .into_iter()
        .filter(|s| s.command.starts_with("git diff") && s.output.lines().count() >= 8)
        .map(|s| (s.command, s.output))
        .collect();
    assert!(diffs.len() >= 10, "{}", diffs.len());
    let env = Env::new().with_model();
    let mut shortened = 0;
    for (command, text) in &diffs {
        let Some(after) = hook(&env, text, command) else {
            continue;
        };
        shortened += 1;
        let mut original = text.split('\n');
        for line in after.lines() {
            if kompress::passes::is_marker(line) {
                continue;
            }
            assert!(
                original.any(|o| o == line),
                "{command}: {line:?} is not an original line, in order:\n{after}"
            );
        }
    }
    assert!(
        shortened >= 5,
        "only {shortened} of {} diffs shortened",
        diffs.len()
    );
    // The same diffs read from a file are reads: whole, whatever the range.
    for (_, text) in diffs.iter().take(5) {
        for command in ["cat fix.patch", "head -200 fix.patch"] {
            assert_eq!(hook(&env, text, command), None, "{command}");
        }
    }
}

#[test]
fn rules_only_drops_no_lines() {
    let env = Env::new();
    for (command, text) in held_out_outputs(30) {
        if let Some(after) = hook(&env, &text, &command) {
            assert!(!after.contains(" omitted; kompress show"), "{after}");
        }
    }
}

#[test]
fn a_short_output_is_left_to_the_rules() {
    let env = Env::new().with_model();
    let text = "Collecting a\nCollecting b\nCollecting c\n".repeat(2);
    assert_eq!(hook(&env, &text, "pip install a b c"), None);
}

/// Pipe mode has no hook to store the original: when its output names `kompress show ID
/// --lines`, the original is in the store under that id.
#[test]
fn pipe_markers_point_at_a_stored_original() {
    let env = Env::new().with_model();
    let mut checked = 0;
    // Debug builds run the model some 50 times slower: stop at the first three.
    for (_, text) in held_out_outputs(60) {
        if checked == 3 {
            break;
        }
        let out = env.run(&["--domain", "bash_output"], text.as_bytes());
        assert!(out.status.success());
        let after = String::from_utf8(out.stdout).unwrap();
        let Some(marker) = after
            .lines()
            .find(|l| l.contains(" omitted; kompress show "))
        else {
            continue;
        };
        let mut words = marker
            .split("kompress show ")
            .nth(1)
            .unwrap()
            .split_whitespace();
        let (id, range) = (
            words.next().unwrap(),
            words.nth(1).unwrap().trim_end_matches(']'),
        );
        let shown = env.run(&["show", id, "--lines", range], b"");
        assert!(
            shown.status.success(),
            "{}",
            String::from_utf8_lossy(&shown.stderr)
        );
        let (a, b) = range.split_once(':').unwrap();
        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
        let original: Vec<&str> = text.split('\n').collect();
        assert_eq!(
            String::from_utf8(shown.stdout)
                .unwrap()
                .trim_end_matches('\n'),
            original[a - 1..b].join("\n")
        );
        checked += 1;
    }
    assert!(checked > 0, "no pipe output had lines dropped");
}
