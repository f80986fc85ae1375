//! Savings statistics: one JSON line per hook call or `kompress show`, and the report of
//! `kompress stats`.
//!
//! Events go to `events.jsonl` in the state directory (0600, directory 0700). Each event
//! is one `write(2)` of one line on a file opened with `O_APPEND`, which the kernel
//! serialises against the other appenders: parallel hooks interleave whole lines, never
//! parts of them. Past [`MAX_EVENTS_BYTES`] the file is renamed to `events.jsonl.1` (one
//! rename at a time, under a flock); the report reads both.
//!
//! Every token count is cl100k ([`crate::tokens`]), the same count the pipeline decides
//! with. Pass-throughs are counted as calls but not tokenized: loading the tokenizer for
//! an output kompress leaves alone would cost every short call 25 ms.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::paths::{self, Dirs};
use crate::store;

/// Size at which the events file is rotated (two files are kept: about 100,000 events).
pub const MAX_EVENTS_BYTES: u64 = 8 << 20;

/// The longest command kept in an event.
const MAX_COMMAND_CHARS: usize = 120;

/// One event. Empty fields are left out of the line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// Seconds since the epoch.
    pub ts: u64,
    /// `compress`, `passthrough` or `show`.
    pub event: String,
    /// Claude Code's session id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub session: String,
    /// The tool.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tool: String,
    /// The domain the output was compressed as.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// `compressed`, `unchanged` or `diff` (session memory).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The Bash command (its first characters), or the file path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command: String,
    /// Why a pass-through passed through.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// cl100k tokens of the original text fields.
    #[serde(skip_serializing_if = "is_zero")]
    pub tokens_in: u64,
    /// cl100k tokens of what the model got instead, trailer included.
    #[serde(skip_serializing_if = "is_zero")]
    pub tokens_out: u64,
    /// Ids of the stored originals (`compress`), or the one shown (`show`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Event {
    /// An event of type `event`, now.
    pub fn new(event: &str) -> Event {
        Event {
            ts: store::now_secs(),
            event: event.to_string(),
            ..Event::default()
        }
    }

    /// Set the command, cut to a bounded length on one line.
    pub fn with_command(mut self, command: &str) -> Event {
        let one_line = command.split_whitespace().collect::<Vec<_>>().join(" ");
        self.command = one_line.chars().take(MAX_COMMAND_CHARS).collect();
        self
    }
}

/// Append `event` to the user's events file. Errors are for the caller to log.
pub fn record(dirs: &Dirs, event: &Event) -> Result<()> {
    append(&dirs.events_file(), event)
}

/// Append `event` to `path` as one line, in one write.
pub fn append(path: &Path, event: &Event) -> Result<()> {
    let mut line = serde_json::to_vec(event)?;
    line.push(b'\n');
    let mut file = paths::in_private_dir(path, || {
        paths::private_file_options().append(true).create(true).open(path)
    })
    .with_context(|| format!("cannot open {}", path.display()))?;
    let written = file
        .write(&line)
        .with_context(|| format!("cannot write {}", path.display()))?;
    if written != line.len() {
        bail!(
            "short write to {} ({written} of {} bytes)",
            path.display(),
            line.len()
        );
    }
    if file.metadata().map(|m| m.len()).unwrap_or(0) > MAX_EVENTS_BYTES {
        rotate(path)?;
    }
    Ok(())
}

/// Rename a full events file to `.1`, once, whoever else sees it full at the same time.
fn rotate(path: &Path) -> Result<()> {
    let lock_path = path.with_extension("lock");
    let lock = paths::private_file_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)?;
    if !paths::lock_exclusive(&lock, false) {
        return Ok(());
    }
    // Another process may have rotated it between our write and our lock.
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) > MAX_EVENTS_BYTES {
        std::fs::rename(path, rotated(path))?;
    }
    Ok(())
}

/// The previous events file.
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Every event in `path` and its rotated predecessor, oldest first. Lines that do not parse
/// are skipped.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    for file in [rotated(path), path.to_path_buf()] {
        let handle = match std::fs::File::open(&file) {
            Ok(handle) => handle,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).with_context(|| format!("cannot open {}", file.display())),
        };
        for line in BufReader::new(handle).lines() {
            let line = line.with_context(|| format!("cannot read {}", file.display()))?;
            if let Ok(event) = serde_json::from_str::<Event>(&line) {
                events.push(event);
            }
        }
    }
    Ok(events)
}

/// Counts for one row of the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Row {
    /// Hook calls (compressed and passed through).
    pub calls: u64,
    /// Calls whose output was replaced.
    pub compressed: u64,
    /// Tokens of the replaced outputs' originals.
    pub tokens_in: u64,
    /// Tokens the model got instead.
    pub tokens_out: u64,
    /// `tokens_in - tokens_out`.
    pub tokens_saved: u64,
    /// `kompress show` calls for these outputs' originals.
    pub fetched: u64,
}

impl Row {
    fn add(&mut self, event: &Event) {
        self.calls += 1;
        if event.event == "compress" {
            self.compressed += 1;
            self.tokens_in += event.tokens_in;
            self.tokens_out += event.tokens_out;
            self.tokens_saved += event.tokens_in.saturating_sub(event.tokens_out);
        }
    }
}

/// The `kompress stats` report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// Only events at or after this time (seconds since the epoch); 0: all.
    pub since: u64,
    /// Every call together.
    pub total: Row,
    /// Share of compressed outputs whose original was fetched back with `kompress show`.
    /// High means kompress removed what the agent needed.
    pub fetch_rate: f64,
    /// `kompress show` calls, including those for originals of older events.
    pub shows: u64,
    /// Bash commands the PreToolUse hook ran under `kompress run --trailer` (their outputs
    /// are counted as calls of their own, by `kompress run`).
    pub rewrites: u64,
    /// Compressed outputs by kind: compressed, unchanged, diff.
    pub by_kind: BTreeMap<String, u64>,
    /// Pass-throughs by reason.
    pub passthrough: BTreeMap<String, u64>,
    /// Per tool.
    pub by_tool: BTreeMap<String, Row>,
    /// Per domain (compressed outputs only: pass-throughs are not classified).
    pub by_domain: BTreeMap<String, Row>,
    /// Per UTC day, `YYYY-MM-DD`.
    pub by_day: BTreeMap<String, Row>,
    /// Per Claude Code session.
    pub by_session: BTreeMap<String, Row>,
    /// Commands (their first words) by tokens saved, most first, at most 10.
    pub top_commands: Vec<(String, Row)>,
}

/// Build the report from `events`, keeping those at or after `since`.
pub fn report(events: &[Event], since: u64) -> Report {
    let mut report = Report {
        since,
        ..Report::default()
    };
    let mut commands: BTreeMap<String, Row> = BTreeMap::new();
    // Which rows a stored original belongs to, to attribute its fetches.
    let mut owner: BTreeMap<&str, [String; 5]> = BTreeMap::new();
    for event in events.iter().filter(|e| e.ts >= since) {
        match event.event.as_str() {
            "compress" | "passthrough" => {}
            "rewrite" => {
                report.rewrites += 1;
                continue;
            }
            "show" => {
                report.shows += 1;
                if let Some([tool, domain, day, session, command]) =
                    event.ids.first().and_then(|id| owner.get(id.as_str()))
                {
                    report.total.fetched += 1;
                    report.by_tool.entry(tool.clone()).or_default().fetched += 1;
                    report.by_domain.entry(domain.clone()).or_default().fetched += 1;
                    report.by_day.entry(day.clone()).or_default().fetched += 1;
                    report
                        .by_session
                        .entry(session.clone())
                        .or_default()
                        .fetched += 1;
                    if !command.is_empty() {
                        commands.entry(command.clone()).or_default().fetched += 1;
                    }
                }
                continue;
            }
            _ => continue,
        }
        let day = day_of(event.ts);
        let session = if event.session.is_empty() {
            "-"
        } else {
            event.session.as_str()
        };
        let command = command_key(&event.command);
        report.total.add(event);
        report
            .by_tool
            .entry(event.tool.clone())
            .or_default()
            .add(event);
        report.by_day.entry(day.clone()).or_default().add(event);
        report
            .by_session
            .entry(session.to_string())
            .or_default()
            .add(event);
        if event.event == "passthrough" {
            let reason = if event.reason.is_empty() {
                "-"
            } else {
                event.reason.as_str()
            };
            *report.passthrough.entry(reason.to_string()).or_default() += 1;
            continue;
        }
        report
            .by_domain
            .entry(event.domain.clone())
            .or_default()
            .add(event);
        *report.by_kind.entry(event.kind.clone()).or_default() += 1;
        if !command.is_empty() {
            commands.entry(command.clone()).or_default().add(event);
        }
        for id in &event.ids {
            let row = [&event.tool, &event.domain, &day, session, &command].map(|s| s.to_string());
            owner.insert(id, row);
        }
    }
    if report.total.compressed > 0 {
        report.fetch_rate = report.total.fetched as f64 / report.total.compressed as f64;
    }
    let mut top: Vec<(String, Row)> = commands
        .into_iter()
        .filter(|(_, r)| r.compressed > 0)
        .collect();
    top.sort_by(|a, b| b.1.tokens_saved.cmp(&a.1.tokens_saved).then(a.0.cmp(&b.0)));
    top.truncate(10);
    report.top_commands = top;
    report
}

/// The first words of a command that name what it does: `cargo test`, `git diff`,
/// `npm run build`. Leading `cd DIR &&` and variable assignments are skipped.
pub fn command_key(command: &str) -> String {
    let segment = command
        .split(['&', ';', '|'])
        .map(str::trim)
        .find(|s| !s.is_empty() && !s.starts_with("cd ") && *s != "cd")
        .unwrap_or("");
    let words: Vec<&str> = segment
        .split_whitespace()
        .skip_while(|w| w.contains('=') && !w.starts_with('-'))
        .take(3)
        .collect();
    let Some((first, rest)) = words.split_first() else {
        return String::new();
    };
    let mut key = first.rsplit('/').next().unwrap_or(first).to_string();
    for word in rest {
        let plain = word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':');
        if !plain || word.starts_with('-') {
            break;
        }
        key.push(' ');
        key.push_str(word);
        if !matches!(
            *first,
            "npm" | "pnpm" | "yarn" | "uv" | "poetry" | "docker" | "kubectl" | "go"
        ) {
            break;
        }
    }
    key
}

/// `YYYY-MM-DD` (UTC) of a time in seconds since the epoch.
pub fn day_of(ts: u64) -> String {
    let (y, m, d) = crate::clock::civil_from_days((ts / 86_400).cast_signed());
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parse `7d`, `24h`, `30m`, `90s` or `all` into seconds (`all`: `None`).
pub fn parse_since(text: &str) -> Result<Option<u64>> {
    let text = text.trim();
    if text == "all" {
        return Ok(None);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .with_context(|| format!("{text:?}: expected e.g. 7d, 24h, 30m or all"))?;
    let unit = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" | "" => 1,
        _ => bail!("{text:?}: expected e.g. 7d, 24h, 30m or all"),
    };
    Ok(Some(n.saturating_mul(unit)))
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

/// The report as markdown tables.
pub fn markdown(report: &Report, source: &Path) -> String {
    let t = &report.total;
    let mut out = String::new();
    let window = match report.since {
        0 => "all events".to_string(),
        since => format!("events since {} UTC", day_of(since)),
    };
    let _ = writeln!(out, "kompress stats: {window}, from {}\n", source.display());
    let _ = writeln!(
        out,
        "{} calls, {} compressed ({}): {} → {} tokens, {} saved ({} of what was compressed)",
        thousands(t.calls),
        thousands(t.compressed),
        percent(t.compressed, t.calls),
        thousands(t.tokens_in),
        thousands(t.tokens_out),
        thousands(t.tokens_saved),
        percent(t.tokens_saved, t.tokens_in),
    );
    let _ = writeln!(
        out,
        "originals fetched back with `kompress show`: {} of {} compressed outputs ({}; {} show calls in all)",
        thousands(t.fetched),
        thousands(t.compressed),
        percent(t.fetched, t.compressed),
        thousands(report.shows),
    );
    if report.rewrites > 0 {
        let _ = writeln!(
            out,
            "Bash commands rewritten to run under kompress (PreToolUse): {}",
            thousands(report.rewrites),
        );
    }
    let kinds: Vec<String> = report
        .by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let reasons: Vec<String> = report
        .passthrough
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "replaced as: {}",
        if kinds.is_empty() {
            "-".into()
        } else {
            kinds.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "passed through: {}",
        if reasons.is_empty() {
            "-".into()
        } else {
            reasons.join(", ")
        }
    );
    let table = |out: &mut String, title: &str, rows: &mut dyn Iterator<Item = (&String, &Row)>| {
        let _ = writeln!(
            out,
            "\n| {title} | calls | compressed | tokens in | tokens out | saved | fetched |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        for (name, r) in rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                if name.is_empty() { "-" } else { name },
                thousands(r.calls),
                thousands(r.compressed),
                thousands(r.tokens_in),
                thousands(r.tokens_out),
                thousands(r.tokens_saved),
                thousands(r.fetched),
            );
        }
    };
    table(&mut out, "tool", &mut report.by_tool.iter());
    table(&mut out, "domain", &mut report.by_domain.iter());
    table(&mut out, "day (UTC)", &mut report.by_day.iter());
    let mut sessions: Vec<_> = report.by_session.iter().collect();
    sessions.sort_by(|a, b| b.1.tokens_saved.cmp(&a.1.tokens_saved).then(a.0.cmp(b.0)));
    let more = sessions.len().saturating_sub(10);
    table(
        &mut out,
        "session (top 10 by saved)",
        &mut sessions.into_iter().take(10),
    );
    if more > 0 {
        let _ = writeln!(
            out,
            "\n({more} more sessions: `kompress stats --json` lists all)"
        );
    }
    table(
        &mut out,
        "command",
        &mut report.top_commands.iter().map(|(c, r)| (c, r)),
    );
    out
}

/// `kompress stats`.
pub fn main(as_json: bool, since: Option<&str>) -> Result<()> {
    let dirs = Dirs::resolve().context("no home directory: cannot find the events file")?;
    let path = dirs.events_file();
    let window = match since {
        Some(text) => parse_since(text)?,
        None => None,
    };
    let since = window.map_or(0, |secs| store::now_secs().saturating_sub(secs));
    let events = read_events(&path)?;
    let report = report(&events, since);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", markdown(&report, &path));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress(ts: u64, tool: &str, command: &str, tokens: (u64, u64), id: &str) -> Event {
        Event {
            ts,
            event: "compress".into(),
            session: "s1".into(),
            tool: tool.into(),
            domain: "build_log".into(),
            kind: "compressed".into(),
            command: command.into(),
            tokens_in: tokens.0,
            tokens_out: tokens.1,
            ids: vec![id.into()],
            ..Event::default()
        }
    }

    #[test]
    fn report_sums_and_attributes_fetches() {
        let day = 1_700_000_000;
        let mut show = Event::new("show");
        show.ts = day + 10;
        show.ids = vec!["aa".into()];
        let mut rewrite = Event::new("rewrite");
        rewrite.ts = day + 6;
        let mut pass = Event::new("passthrough");
        pass.ts = day + 5;
        pass.tool = "Bash".into();
        pass.reason = "too short".into();
        let events = vec![
            compress(
                day,
                "Bash",
                "cd x && cargo test --release",
                (1000, 100),
                "aa",
            ),
            compress(day + 1, "Bash", "cargo test", (500, 400), "bb"),
            compress(day + 2, "Grep", "", (300, 200), "cc"),
            pass,
            rewrite,
            show,
        ];
        let r = report(&events, 0);
        // A rewrite is not a call: its output is counted by the `kompress run` it runs.
        assert_eq!(r.total.calls, 4);
        assert_eq!(r.rewrites, 1);
        assert_eq!(r.total.compressed, 3);
        assert_eq!(
            (r.total.tokens_in, r.total.tokens_out, r.total.tokens_saved),
            (1800, 700, 1100)
        );
        assert_eq!(r.total.fetched, 1);
        assert!((r.fetch_rate - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.by_tool["Bash"].calls, 3);
        assert_eq!(r.by_tool["Bash"].fetched, 1);
        assert_eq!(r.by_tool["Grep"].tokens_saved, 100);
        assert_eq!(r.passthrough["too short"], 1);
        assert_eq!(r.by_day["2023-11-14"].calls, 4);
        assert_eq!(r.top_commands[0].0, "cargo test");
        assert_eq!(r.top_commands[0].1.tokens_saved, 1000);
        assert_eq!(report(&events, day + 2).total.calls, 2);
        let text = markdown(&r, Path::new("/x"));
        assert!(text.contains("rewritten to run under kompress (PreToolUse): 1"));
        assert!(
            text.contains("| Bash | 3 | 2 | 1,500 | 500 | 1,000 | 1 |"),
            "{text}"
        );
    }

    #[test]
    fn events_append_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/events.jsonl");
        let event = compress(1, "Bash", "make\nall", (10, 5), "ab").with_command("make\n  all");
        append(&path, &event).unwrap();
        append(&path, &event).unwrap();
        let read = read_events(&path).unwrap();
        assert_eq!(read, vec![event.clone(), event.clone()]);
        assert_eq!(read[0].command, "make all");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        // Past the size bound the file is rotated and both halves are read.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&vec![b'\n'; MAX_EVENTS_BYTES as usize])
            .unwrap();
        append(&path, &event).unwrap();
        assert!(rotated(&path).exists());
        assert!(!path.exists());
        append(&path, &event).unwrap();
        assert_eq!(read_events(&path).unwrap().len(), 4);
    }

    #[test]
    fn helpers() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(951_782_400), "2000-02-29");
        assert_eq!(parse_since("7d").unwrap(), Some(604_800));
        assert_eq!(parse_since("all").unwrap(), None);
        assert!(parse_since("7w").is_err());
        assert_eq!(thousands(4210), "4,210");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(command_key("FOO=1 cargo test -p x"), "cargo test");
        assert_eq!(command_key("cd /a && npm run build"), "npm run build");
        assert_eq!(command_key("/usr/bin/ls -la"), "ls");
        assert_eq!(command_key("git diff HEAD~1"), "git diff");
        assert_eq!(command_key("grep -rn foo ."), "grep");
    }
}
