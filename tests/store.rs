//! The real binary's store of originals, statistics and session memory: `kompress hook`
//! writes them, `kompress show`, `stats` and `purge` read and delete them, and 32 hooks
//! running at once corrupt none of them.

use std::path::{Path, PathBuf};
use std::process::{Child, Output};

use kompress::linediff;
use kompress::store::{Store, id_of};
use serde_json::{Value, json};

mod common;

use common::Env;

impl Env {
    /// Run the hook on a Bash output; the text the model gets, or `None` (pass-through).
    fn bash(&self, session: &str, command: &str, stdout: &str) -> Option<String> {
        hook_text(self.run(&["hook"], &bash_payload(session, command, stdout)))
    }

    /// `kompress show ARGS…`, which must succeed.
    fn show(&self, args: &[&str]) -> Vec<u8> {
        let mut all = vec!["show"];
        all.extend_from_slice(args);
        let output = self.run(&all, b"");
        assert!(
            output.status.success(),
            "show {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    fn stats(&self) -> Value {
        let output = self.run(&["stats", "--json"], b"");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Every stored record, the newest first: (the id it is stored under, its bytes).
    fn originals(&self) -> Vec<(String, Vec<u8>)> {
        Store::new(self.kompress_home().join("cache/originals"), u64::MAX, 365).list()
    }

    /// The bytes the store's files take (packs, footers included).
    fn stored_bytes(&self) -> u64 {
        walk(&self.kompress_home().join("cache/originals"))
            .iter()
            .filter(|p| p.is_file() && !p.ends_with(".lock"))
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    }
}

fn bash_payload(session: &str, command: &str, stdout: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": session,
        "hook_event_name": "PostToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command},
        "tool_response": {"stdout": stdout, "stderr": "", "interrupted": false, "isImage": false},
        "tool_use_id": "toolu_1",
        "cwd": "/repo",
    }))
    .unwrap()
}

/// The hook's stdout as the text the model gets; `None` when it printed nothing.
fn hook_text(output: Output) -> Option<String> {
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if output.stdout.is_empty() {
        return None;
    }
    let reply: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let updated = &reply["hookSpecificOutput"]["updatedToolOutput"];
    assert_eq!(updated["stderr"], "");
    assert_eq!(updated["interrupted"], false);
    Some(
        updated["stdout"]
            .as_str()
            .expect("stdout stays a string")
            .to_string(),
    )
}

/// A build log worth compressing; `variant` changes one line in the middle.
fn build_log(variant: usize) -> String {
    let mut text = String::from("    Updating crates.io index\n");
    for i in 0..150 {
        if i == 75 {
            text.push_str(&format!("warning: variant {variant} of this build\n"));
        }
        text.push_str(&format!("   Compiling dependency_{i} v0.{i}.3\n"));
    }
    text.push_str(
        "error[E0277]: the trait bound `Foo: Bar` is not satisfied\n  --> src/main.rs:4:5\n",
    );
    text.push_str("    Finished `dev` profile [unoptimized + debuginfo] target(s) in 3.28s\n");
    text
}

/// The trailer's numbers and id: `[kompress: 4,210→1,130 tokens · full output: kompress show ID]`.
fn trailer(text: &str) -> (u64, u64, String) {
    let last = text.lines().last().unwrap();
    let inner = last
        .strip_prefix("[kompress: ")
        .and_then(|l| l.strip_suffix("]"))
        .unwrap_or_else(|| panic!("no trailer: {last:?}"));
    let (counts, id) = inner
        .split_once(" tokens · full output: kompress show ")
        .unwrap();
    let (a, b) = counts.split_once('→').unwrap();
    let number = |s: &str| s.replace(',', "").parse::<u64>().unwrap();
    assert_eq!(id.len(), 10);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    (number(a), number(b), id.to_string())
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn show_gives_back_the_exact_original() {
    let env = Env::new();
    // Trailing spaces and a missing final newline: bytes the compressed output drops.
    let original = format!(
        "{}tail line without newline   ",
        build_log(0).replace("v0.3.3\n", "v0.3.3  \t\n")
    );
    let text = env
        .bash("s1", "cargo build", &original)
        .expect("compressed");
    let (tokens_in, tokens_out, id) = trailer(&text);
    assert_eq!(tokens_in, kompress::tokens::count(&original) as u64);
    assert_eq!(tokens_out, kompress::tokens::count(&text) as u64);
    assert!(tokens_out < tokens_in);
    assert_eq!(&id, &id_of(original.as_bytes())[..10]);
    assert_eq!(env.show(&[&id]), original.as_bytes());
    assert_eq!(
        env.show(&[&id[..6]]),
        original.as_bytes(),
        "a unique prefix"
    );

    let lines: Vec<&str> = original.split_inclusive('\n').collect();
    assert_eq!(
        env.show(&[&id, "--lines", "2:4"]),
        lines[1..4].concat().as_bytes()
    );
    assert_eq!(
        env.show(&[&id, "--lines", "150:"]),
        lines[149..].concat().as_bytes()
    );
    let grep = String::from_utf8(env.show(&[&id, "--grep", "^error|variant"])).unwrap();
    assert_eq!(
        grep,
        "77:warning: variant 0 of this build\n153:error[E0277]: the trait bound `Foo: Bar` is not satisfied\n"
    );
    let both =
        String::from_utf8(env.show(&[&id, "--lines", "1:100", "--grep", "error|variant"])).unwrap();
    assert_eq!(both, "77:warning: variant 0 of this build\n");

    let missing = env.run(&["show", "0000000000"], b"");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no stored original"));
    let bad = env.run(&["show", &id, "--lines", "5:2"], b"");
    assert_eq!(bad.status.code(), Some(1));

    // What `kompress show` prints comes back through the hook unchanged, whatever asked.
    let shown = String::from_utf8(env.show(&[&id])).unwrap();
    assert_eq!(env.bash("s1", &format!("kompress show {id}"), &shown), None);
    assert_eq!(
        env.bash(
            "s1",
            &format!("~/.local/bin/kompress show {id} --lines 1:400"),
            &shown
        ),
        None
    );
    // And a compressed output (it holds markers) is never compressed again.
    assert_eq!(
        env.bash("s2", "cat saved-output.txt", &text.repeat(3)),
        None
    );
    assert!(env.log().is_empty(), "{}", env.log());
}

#[test]
fn everything_kompress_keeps_is_private() {
    let env = Env::new();
    env.bash("s1", "cargo build", &build_log(1))
        .expect("compressed");
    env.bash("s1", "cargo build", &build_log(2)).expect("diff");
    let home = env.kompress_home();
    let originals = home.join("cache/originals");
    let mut dirs = vec![
        home.join("cache"),
        originals.clone(),
        home.join("state"),
        home.join("state/sessions"),
    ];
    let mut files = vec![home.join("state/events.jsonl")];
    for entry in walk(&originals)
        .into_iter()
        .chain(walk(&home.join("state/sessions")))
    {
        if entry.is_dir() {
            dirs.push(entry)
        } else {
            files.push(entry)
        }
    }
    // The events, the store's pack and the session log at least.
    for wanted in [originals.join("pack"), home.join("state/sessions/log")] {
        assert!(files.contains(&wanted), "{files:?}");
    }
    for dir in dirs {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn eviction_keeps_the_store_under_its_bound() {
    let mut env = Env::new();
    let bound = 30_000u64;
    env.vars
        .push(("KOMPRESS_STORE_MAX_BYTES", bound.to_string()));
    let mut ids = Vec::new();
    for i in 0..14 {
        // Distinct commands: session memory stays out of it.
        let text = env
            .bash("s1", &format!("make step{i}"), &build_log(i))
            .expect("compressed");
        ids.push(trailer(&text).2);
        let total = env.stored_bytes();
        assert!(total <= bound, "after {i}: {total} bytes stored");
    }
    assert!(env.originals().len() < 14, "nothing was evicted");
    // The newest is there, the oldest is gone.
    assert_eq!(env.show(&[ids.last().unwrap()]), build_log(13).as_bytes());
    let gone = env.run(&["show", &ids[0]], b"");
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("evicted"),
        "{gone:?}"
    );
    // An original larger than half the bound is not stored, so the hook passes through.
    let huge = build_log(99).repeat(8);
    assert_eq!(env.bash("s1", "make huge", &huge), None);
    assert!(env.log().contains("do not fit"), "{}", env.log());
}

#[test]
fn stats_add_up_to_what_the_hooks_did() {
    let env = Env::new();
    let (mut calls, mut compressed, mut tokens_in, mut tokens_out) = (0, 0, 0, 0);
    let mut first_id = String::new();
    for i in 0..6 {
        let text = env.bash(
            &format!("s{}", i % 2),
            &format!("cargo build -p c{i}"),
            &build_log(i),
        );
        calls += 1;
        let (a, b, id) = trailer(&text.unwrap());
        compressed += 1;
        tokens_in += a;
        tokens_out += b;
        if i == 0 {
            first_id = id;
        }
    }
    // Two pass-throughs: too short, and `kompress show`.
    assert_eq!(env.bash("s0", "ls", "a\nb\n"), None);
    assert_eq!(
        env.bash("s0", &format!("kompress show {first_id}"), &build_log(0)),
        None
    );
    calls += 2;
    env.show(&[&first_id]);
    let stats = env.stats();
    let total = &stats["total"];
    assert_eq!(total["calls"], calls);
    assert_eq!(total["compressed"], compressed);
    assert_eq!(total["tokens_in"], tokens_in);
    assert_eq!(total["tokens_out"], tokens_out);
    assert_eq!(total["tokens_saved"], tokens_in - tokens_out);
    assert_eq!(total["fetched"], 1);
    assert_eq!(stats["shows"], 1);
    assert_eq!(stats["by_tool"]["Bash"]["calls"], calls);
    assert_eq!(stats["by_session"]["s0"]["calls"], 5);
    assert_eq!(stats["by_session"]["s1"]["compressed"], 3);
    assert_eq!(stats["passthrough"]["too short"], 1);
    assert_eq!(stats["passthrough"]["kompress show"], 1);
    assert_eq!(stats["by_kind"]["compressed"], 6);
    assert_eq!(stats["top_commands"][0][0], "cargo build");
    let per_domain: u64 = stats["by_domain"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["tokens_in"].as_u64().unwrap())
        .sum();
    assert_eq!(per_domain, tokens_in);
    let per_day: u64 = stats["by_day"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(per_day, calls);
    // A window that ends before now holds everything; the markdown report reads the same.
    let window = |period: &str| {
        let output = env.run(&["stats", "--json", "--since", period], b"");
        let mut report: Value = serde_json::from_slice(&output.stdout).unwrap();
        report.as_object_mut().unwrap().remove("since");
        report
    };
    assert_eq!(window("1d"), window("all"));
    let text = String::from_utf8(env.run(&["stats"], b"").stdout).unwrap();
    assert!(
        text.contains(&format!("{calls} calls, {compressed} compressed")),
        "{text}"
    );
    assert!(!env.run(&["stats", "--since", "7w"], b"").status.success());
}

#[test]
fn session_memory_through_the_binary() {
    let env = Env::new();
    let first = build_log(1);
    let text = env.bash("s1", "cargo build", &first).expect("compressed");
    let first_id = trailer(&text).2;
    // The same output again: one line.
    let again = env.bash("s1", "cargo build", &first).expect("unchanged");
    assert_eq!(
        again,
        format!(
            "[kompress: output unchanged since the earlier identical call in this session · full output: kompress show {first_id}]"
        )
    );
    // In another session, or another directory's same command: the whole output.
    trailer(&env.bash("s2", "cargo build", &first).expect("compressed"));
    // One line changed: the diff, which rebuilds the new output from the old one.
    let second = build_log(2);
    let diff = env.bash("s1", "cargo build", &second).expect("diff");
    assert!(diff.starts_with(&format!("[kompress: output changed since the earlier identical call in this session (kompress show {first_id})")), "{diff}");
    let (_, _, second_id) = trailer(&diff);
    assert_eq!(env.show(&[&second_id]), second.as_bytes());
    let old = String::from_utf8(env.show(&[&first_id])).unwrap();
    let body: String = diff
        .split_inclusive('\n')
        .skip(1)
        .filter(|l| !l.starts_with("[kompress: "))
        .collect();
    assert_eq!(linediff::apply(&old, &body).unwrap(), second);
    assert!(
        diff.contains("-warning: variant 1 of this build\n+warning: variant 2 of this build\n"),
        "{diff}"
    );
    let stats = env.stats();
    assert_eq!(stats["by_kind"]["unchanged"], 1);
    assert_eq!(stats["by_kind"]["diff"], 1);
    // Turned off: the whole output every time.
    let mut env2 = Env::new();
    env2.vars.push(("KOMPRESS_SESSION_MEMORY", "0".into()));
    trailer(&env2.bash("s1", "cargo build", &first).unwrap());
    trailer(&env2.bash("s1", "cargo build", &first).unwrap());
}

#[test]
fn thirty_two_hooks_at_once() {
    let env = Env::new();
    // One session, one command: every hook reads and writes the same session record,
    // and many of them store the same content.
    let inputs: Vec<String> = (0..32).map(|i| build_log(i % 5)).collect();
    let children: Vec<Child> = inputs
        .iter()
        .map(|input| {
            // Staggered a little, so that later hooks find the records of earlier ones
            // while most of them still run at the same time.
            std::thread::sleep(std::time::Duration::from_millis(10));
            env.spawn(&["hook"], &bash_payload("s1", "cargo build", input))
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut kinds = std::collections::BTreeMap::new();
    for (input, output) in inputs.iter().zip(outputs) {
        let text = hook_text(output).expect("every output is replaced");
        let show = |id: &str| String::from_utf8(env.show(&[id])).unwrap();
        let kind = if text.starts_with("[kompress: output unchanged") {
            let id = text
                .rsplit("kompress show ")
                .next()
                .unwrap()
                .trim_end_matches(']');
            assert_eq!(&show(id), input);
            "unchanged"
        } else if text.starts_with("[kompress: output changed") {
            let previous = text
                .split("(kompress show ")
                .nth(1)
                .unwrap()
                .split(')')
                .next()
                .unwrap();
            let body: String = text
                .split_inclusive('\n')
                .skip(1)
                .filter(|l| !l.starts_with("[kompress: "))
                .collect();
            assert_eq!(&linediff::apply(&show(previous), &body).unwrap(), input);
            assert_eq!(&show(&trailer(&text).2), input);
            "diff"
        } else {
            assert_eq!(&show(&trailer(&text).2), input);
            "compressed"
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    eprintln!("32 concurrent hooks: {kinds:?}");
    let stats = env.stats();
    assert_eq!(stats["total"]["calls"], 32, "{stats}");
    assert_eq!(stats["total"]["compressed"], 32);
    assert_eq!(stats["shows"], 32 + kinds.get("diff").copied().unwrap_or(0));
    // The store: every record whole and under its content's id, five distinct contents.
    let originals = env.originals();
    assert!(originals.len() >= 5, "{}", originals.len());
    for (id, bytes) in &originals {
        assert_eq!(id, &id_of(bytes));
    }
    let mut distinct: Vec<&String> = originals.iter().map(|o| &o.0).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "{distinct:?}");
    // Every event line is whole JSON.
    let events = std::fs::read_to_string(env.kompress_home().join("state/events.jsonl")).unwrap();
    for line in events.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    assert!(env.log().is_empty(), "{}", env.log());
}

#[test]
fn purge_removes_everything() {
    let env = Env::new();
    let text = env.bash("s1", "cargo build", &build_log(3)).unwrap();
    let id = trailer(&text).2;
    let output = env.run(&["purge"], b"");
    assert!(output.status.success());
    let said = String::from_utf8(output.stdout).unwrap();
    assert!(said.contains("removed stored originals"), "{said}");
    assert!(said.contains("removed session memory"), "{said}");
    assert!(said.contains("removed statistics"), "{said}");
    let home = env.kompress_home();
    assert!(!home.join("cache/originals").exists());
    assert!(!home.join("state/sessions").exists());
    assert!(!home.join("state/events.jsonl").exists());
    assert!(!env.run(&["show", &id], b"").status.success());
    assert_eq!(env.stats()["total"]["calls"], 0);
    // The session forgot too: the same output is whole again.
    trailer(&env.bash("s1", "cargo build", &build_log(3)).unwrap());
    let again = String::from_utf8(env.run(&["purge"], b"").stdout).unwrap();
    assert!(again.contains("removed stored originals"), "{again}");
    let nothing = String::from_utf8(env.run(&["purge"], b"").stdout).unwrap();
    assert!(nothing.contains("no stored originals"), "{nothing}");
}
