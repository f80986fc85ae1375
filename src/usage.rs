//! What an agent used of a tool output: labels from whole trajectories.
//!
//! A trajectory (the dev corpus's `trajectories-*.jsonl.gz`) holds every step of an agent
//! run: its words before each call (`thought`), the command, the output, what it saw of
//! the output (`shown`, when the run cut a long one) and the final patch. What the agent
//! did afterwards tells which parts of an output it needed:
//!
//! - an **item** is a word of the output (`[A-Za-z_][A-Za-z0-9_]*` or a dotted number) of
//!   at least [`MIN_ITEM_LEN`] characters;
//! - it is **used** when it appears in one of the next [`HORIZON`] steps' thoughts or
//!   commands, or in the final patch;
//! - unless the agent **already knew** it: it is in the task, or in a thought or command
//!   of this step or an earlier one (a grep pattern recurs in every hit and proves
//!   nothing; a file the agent named before is not news when an output names it again);
//! - and unless it is **generic**: it occurs in at least [`GENERIC_DF`] of all the file's
//!   outputs (`self`, `return`, `django`: words that recur whatever was read);
//! - only what the agent saw counts: for a cut output, the lines of `shown`.
//!
//! A line is used when it holds a used item. `docs/trajectories.md` gives the numbers
//! behind the horizon and the thresholds; the same definitions feed both `kompress eval
//! --trajectories` and the line model's training data, so they cannot drift apart.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

/// Steps after the output whose thoughts and commands count as use.
pub const HORIZON: usize = 5;
/// Shortest item, in bytes: shorter words (`a`, `id`, `0`) match by chance.
pub const MIN_ITEM_LEN: usize = 3;
/// An item in at least this fraction of all outputs is generic.
pub const GENERIC_DF: f64 = 0.05;

/// An item in fewer outputs than this is never generic (small files have no statistics).
pub const MIN_GENERIC_OUTPUTS: u32 = 20;

/// One agent run.
#[derive(Clone, Debug, Deserialize)]
pub struct Trajectory {
    /// `model:instance`.
    pub id: String,
    /// `owner/name` of the task's repository (the held-out split is by repository).
    pub repo: String,
    /// The issue text the agent was given.
    #[serde(default)]
    pub task: String,
    /// The final diff.
    #[serde(default)]
    pub patch: Option<String>,
    /// Every tool call.
    pub steps: Vec<Step>,
}

/// One tool call of a trajectory.
#[derive(Clone, Debug, Deserialize)]
pub struct Step {
    /// The agent's words before the call.
    #[serde(default)]
    pub thought: String,
    /// The shell command.
    pub command: String,
    /// Its exit status.
    #[serde(default)]
    pub returncode: Option<i64>,
    /// The whole output.
    pub output: String,
    /// What the agent saw when the run cut a long output; `None`: all of it.
    #[serde(default)]
    pub shown: Option<String>,
}

impl Step {
    /// What the hook knows of this step: a Bash call of its command.
    pub fn hints(&self) -> crate::domain::Hints<'_> {
        crate::domain::Hints {
            tool_name: Some("Bash"),
            command: Some(&self.command),
            ..crate::domain::Hints::default()
        }
    }
}

/// Read a trajectories file (JSON Lines, gzipped when the name ends in `.gz`).
pub fn read(path: &Path) -> Result<Vec<Trajectory>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut out = Vec::new();
    for (number, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let t: Trajectory = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a trajectory", path.display(), number + 1))?;
        out.push(t);
    }
    Ok(out)
}

/// The items of `text`: its words and dotted numbers of [`MIN_ITEM_LEN`] bytes or more.
pub fn items(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            let start = i;
            if b.is_ascii_alphabetic() || b == b'_' {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
            } else if b.is_ascii_digit() {
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                while i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            } else {
                i += 1;
                continue;
            }
            if i - start >= MIN_ITEM_LEN {
                return Some(&text[start..i]);
            }
        }
        None
    })
}

/// The distinct items of a text.
pub fn item_set(text: &str) -> HashSet<&str> {
    items(text).collect()
}

/// How many of `trajectories`' step outputs each item occurs in, and how many outputs.
pub struct Generic {
    df: HashMap<String, u32>,
    outputs: u32,
}

impl Generic {
    /// Count over every step output of `trajectories`.
    pub fn of(trajectories: &[Trajectory]) -> Generic {
        Generic::count(
            trajectories
                .iter()
                .flat_map(|t| &t.steps)
                .map(|s| s.output.as_str()),
        )
    }

    /// Count over `outputs`.
    pub fn count<'a>(outputs: impl IntoIterator<Item = &'a str>) -> Generic {
        let mut df: HashMap<String, u32> = HashMap::new();
        let mut outputs_seen = 0;
        for output in outputs {
            outputs_seen += 1;
            for item in item_set(output) {
                *df.entry(item.to_string()).or_default() += 1;
            }
        }
        Generic {
            df,
            outputs: outputs_seen,
        }
    }

    /// The count per item and the number of outputs.
    pub fn into_parts(self) -> (HashMap<String, u32>, u32) {
        (self.df, self.outputs)
    }

    /// Whether `item` occurs in at least [`GENERIC_DF`] of the outputs.
    pub fn is_generic(&self, item: &str) -> bool {
        let n = self.df.get(item).copied().unwrap_or(0);
        n >= MIN_GENERIC_OUTPUTS && n as f64 >= GENERIC_DF * self.outputs as f64
    }
}

/// What the agent used of one step's output.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// The used items (each once).
    pub used: Vec<String>,
    /// Per line of `output` (split on `\n`): whether the agent saw it.
    pub seen: Vec<bool>,
    /// Per line of `output`: whether it holds a used item (and was seen).
    pub line_used: Vec<bool>,
}

/// The choices behind the labels; [`Rules::DEFAULT`] is what training and evaluation use,
/// the others exist to show why (`kompress model label-stats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Steps after the output that count as use.
    pub horizon: usize,
    /// Earlier steps' thoughts and commands count as known (not only this step's).
    pub earlier_known: bool,
    /// The final patch counts as use.
    pub patch: bool,
}

impl Rules {
    /// The rules in force.
    pub const DEFAULT: Rules = Rules {
        horizon: HORIZON,
        earlier_known: true,
        patch: true,
    };
}

/// Label step `index` of `trajectory` with what the agent used of its output.
pub fn label(trajectory: &Trajectory, index: usize, generic: &Generic) -> Usage {
    label_with(trajectory, index, generic, Rules::DEFAULT)
}

/// [`label`] under other rules.
pub fn label_with(trajectory: &Trajectory, index: usize, generic: &Generic, rules: Rules) -> Usage {
    let step = &trajectory.steps[index];
    let mut known = item_set(&trajectory.task);
    let first_known = if rules.earlier_known { 0 } else { index };
    for earlier in &trajectory.steps[first_known..=index] {
        known.extend(items(&earlier.thought));
        known.extend(items(&earlier.command));
    }
    let mut later: HashSet<&str> = match (rules.patch, trajectory.patch.as_deref()) {
        (true, Some(patch)) => item_set(patch),
        _ => HashSet::new(),
    };
    for next in trajectory.steps.iter().skip(index + 1).take(rules.horizon) {
        later.extend(items(&next.thought));
        later.extend(items(&next.command));
    }
    let shown_lines: Option<HashSet<&str>> = step.shown.as_deref().map(|s| s.split('\n').collect());
    let is_used =
        |item: &str| later.contains(item) && !known.contains(item) && !generic.is_generic(item);
    let mut used: Vec<String> = Vec::new();
    let mut seen_used: HashSet<&str> = HashSet::new();
    let mut usage = Usage::default();
    for line in step.output.split('\n') {
        let seen = shown_lines.as_ref().is_none_or(|s| s.contains(line));
        let mut line_used = false;
        if seen {
            for item in items(line) {
                if is_used(item) {
                    line_used = true;
                    if seen_used.insert(item) {
                        used.push(item.to_string());
                    }
                }
            }
        }
        usage.seen.push(seen);
        usage.line_used.push(line_used);
    }
    usage.used = used;
    usage
}

/// The share of seen lines that hold a used item, per kind of command, under each of
/// `rules` (outputs of `min_chars` or more): what `kompress model label-stats` prints.
pub fn line_use_table(all: &[Trajectory], rules: &[Rules], min_chars: usize) -> String {
    use crate::domain::CommandKind;
    let generic = Generic::of(all);
    let mut out = String::from("| rules | ");
    let kinds = CommandKind::ALL;
    for k in kinds {
        out.push_str(k.name());
        out.push_str(" | ");
    }
    out.push_str("all |\n|---|");
    out.push_str(&"---:|".repeat(kinds.len() + 1));
    out.push('\n');
    for r in rules {
        // (lines seen, lines used) per kind, and in total.
        let mut counts = vec![(0usize, 0usize); kinds.len() + 1];
        for t in all {
            for (i, step) in t.steps.iter().enumerate() {
                if step.output.chars().count() < min_chars {
                    continue;
                }
                let k = kinds
                    .iter()
                    .position(|k| *k == CommandKind::of(&step.hints()))
                    .unwrap_or(kinds.len() - 1);
                let u = label_with(t, i, &generic, *r);
                let seen = u.seen.iter().filter(|s| **s).count();
                let used = u.line_used.iter().filter(|s| **s).count();
                for slot in [k, kinds.len()] {
                    counts[slot].0 += seen;
                    counts[slot].1 += used;
                }
            }
        }
        let horizon = if r.horizon >= usize::MAX / 2 {
            "all".to_string()
        } else {
            r.horizon.to_string()
        };
        out.push_str(&format!(
            "| horizon {horizon}, earlier steps known: {}, patch: {} | ",
            if r.earlier_known { "yes" } else { "no" },
            if r.patch { "yes" } else { "no" }
        ));
        for (seen, used) in counts {
            out.push_str(&format!(
                "{:.1}% | ",
                100.0 * used as f64 / seen.max(1) as f64
            ));
        }
        out.push('\n');
    }
    out
}

/// Which of `used` survive in `after` (as whole items).
pub fn kept(used: &[String], after: &str) -> usize {
    let present = item_set(after);
    used.iter().filter(|u| present.contains(u.as_str())).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trajectory(steps: Vec<Step>, patch: &str) -> Trajectory {
        Trajectory {
            id: "t".into(),
            repo: "o/r".into(),
            task: "Fix the crash in parse_header".into(),
            patch: Some(patch.into()),
            steps,
        }
    }

    fn step(thought: &str, command: &str, output: &str) -> Step {
        Step {
            thought: thought.into(),
            command: command.into(),
            returncode: Some(0),
            output: output.into(),
            shown: None,
        }
    }

    #[test]
    fn items_are_words_and_dotted_numbers() {
        let got: Vec<&str> =
            items("File \"a/b.py\", line 1234, in parse_v2: 3.11.4 x ok").collect();
        assert_eq!(got, ["File", "line", "1234", "parse_v2", "3.11.4"]);
    }

    #[test]
    fn used_means_later_and_new() {
        let t = trajectory(
            vec![
                step(
                    "look for parse_header",
                    "grep -rn parse_header src",
                    "src/http.py:10:def parse_header(raw):\nsrc/mail.py:99:    parse_header(x) # legacy_mode\nsrc/util.py:5:import nothing_here",
                ),
                step(
                    "The http module is the one",
                    "sed -n 1,40p src/http.py",
                    "...",
                ),
                step("", "python -c 'legacy_mode'", ""),
            ],
            "--- a/src/http.py\n+++ b/src/http.py\n",
        );
        let generic = Generic::of(std::slice::from_ref(&t));
        let u = label(&t, 0, &generic);
        // `parse_header` was in the task and the command; `http` and `src` recur later but
        // `src` is in the command; `legacy_mode` is used by step 2.
        assert!(u.used.contains(&"http".to_string()));
        assert!(u.used.contains(&"legacy_mode".to_string()));
        assert!(!u.used.iter().any(|w| w == "parse_header" || w == "src"));
        assert_eq!(u.line_used, [true, true, false]);
    }

    #[test]
    fn horizon_limits_use() {
        let mut steps = vec![step("", "ls", "far_away_name\nnear_name")];
        steps.push(step("near_name", "true", ""));
        for _ in 0..HORIZON {
            steps.push(step("", "true", ""));
        }
        steps.push(step("far_away_name", "true", ""));
        let t = trajectory(steps, "");
        let u = label(&t, 0, &Generic::of(std::slice::from_ref(&t)));
        assert_eq!(u.used, ["near_name"]);
    }

    #[test]
    fn unseen_lines_are_not_evidence() {
        let mut s = step("", "cat big.log", "head_line\nmiddle_secret\ntail_line");
        s.shown = Some("head_line\n[... output cut ...]\ntail_line".into());
        let t = trajectory(
            vec![s, step("middle_secret tail_line head_line", "true", "")],
            "",
        );
        let u = label(&t, 0, &Generic::of(std::slice::from_ref(&t)));
        assert_eq!(u.seen, [true, false, true]);
        assert_eq!(u.line_used, [true, false, true]);
        assert_eq!(u.used, ["head_line", "tail_line"]);
    }

    #[test]
    fn generic_items_are_not_used() {
        // `common` is in every output: at least 5% of them.
        let mut steps: Vec<Step> = (0..40)
            .map(|i| step("", "true", &format!("common rare{i}")))
            .collect();
        steps.insert(1, step("common rare0", "true", ""));
        let t = trajectory(steps, "");
        let u = label(&t, 0, &Generic::of(std::slice::from_ref(&t)));
        assert_eq!(u.used, ["rare0"]);
    }

    #[test]
    fn kept_counts_whole_items() {
        let used = vec!["parse_header".to_string(), "1234".to_string()];
        assert_eq!(kept(&used, "def parse_header_v2(): line 1234"), 1);
    }
}
