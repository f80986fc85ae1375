//! The real binary against good and bad input: hook, pipe and wrapper modes.
//!
//! Hook mode must fail open: whatever arrives, it exits 0, writes nothing to stderr,
//! and prints either nothing or a replacement in the tool's own shape.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kompress::eval::check_shape;
use serde_json::{Value, json};

mod common;

use common::Env;

/// A Bash output worth compressing: a build log with a long run of similar lines and a
/// repeated warning.
fn noisy_log() -> String {
    let mut text = String::from("    Updating crates.io index\n");
    for i in 0..120 {
        text.push_str(&format!("   Compiling dependency_{i} v0.{i}.3\n"));
    }
    for _ in 0..40 {
        text.push_str("warning: unused manifest key: package.metadata.release\n");
    }
    text.push_str(
        "error[E0277]: the trait bound `Foo: Bar` is not satisfied\n  --> src/main.rs:4:5\n",
    );
    text.push_str("    Finished `dev` profile [unoptimized + debuginfo] target(s) in 3.28s\n");
    text
}

fn payload(tool: &str, input: Value, response: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "s1",
        "hook_event_name": "PostToolUse",
        "tool_name": tool,
        "tool_input": input,
        "tool_response": response,
        "tool_use_id": "toolu_1",
        "cwd": "/tmp",
    }))
    .unwrap()
}

/// Exit 0, silent stderr, and nothing on stdout: Claude Code keeps the original.
fn assert_passthrough(output: &Output) {
    assert_passthrough_of("", output);
}

/// [`assert_passthrough`], naming the case in a failure.
fn assert_passthrough_of(case: &str, output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{case} stderr: {stderr}");
    assert!(output.stderr.is_empty(), "{case} stderr: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.stdout.is_empty(), "{case} stdout: {stdout}");
}

/// Exit 0, silent stderr, and a replacement of `response`'s shape. Returns it.
fn assert_replaced(tool: &str, response: &Value, output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reply: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON object");
    assert_eq!(reply["hookSpecificOutput"]["hookEventName"], "PostToolUse");
    let updated = reply["hookSpecificOutput"]["updatedToolOutput"].clone();
    check_shape(tool, response, &updated).unwrap();
    updated
}

#[test]
fn bad_payloads_pass_through() {
    let env = Env::new();
    let log = noisy_log();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty stdin", Vec::new()),
        ("invalid JSON", b"{not json".to_vec()),
        ("truncated JSON", payload("Bash", json!({}), json!({"stdout": log}))[..200].to_vec()),
        ("invalid UTF-8", vec![0xff, 0xfe, b'{', 0x80, b'}']),
        ("a JSON array", b"[1, 2, 3]".to_vec()),
        ("a JSON string", b"\"hello\"".to_vec()),
        ("NUL bytes", b"\0\0\0{\"tool_name\":\"Bash\"}".to_vec()),
        ("unknown tool", payload("Write", json!({}), json!({"stdout": log}))),
        ("no tool_name", serde_json::to_vec(&json!({"tool_response": {"stdout": log}})).unwrap()),
        ("no tool_response", serde_json::to_vec(&json!({"tool_name": "Bash"})).unwrap()),
        ("stdout is a number", payload("Bash", json!({}), json!({"stdout": 42}))),
        ("tool_response is null", payload("Bash", json!({}), Value::Null)),
        ("tool_input is a string", payload("Bash", json!("ls"), json!({"stdout": "x"}))),
        ("NUL in stdout", payload("Bash", json!({}), json!({"stdout": format!("{log}\0{log}")}))),
        ("short output", payload("Bash", json!({"command": "ls"}), json!({"stdout": "a\nb\nc\n"}))),
        ("image", payload("Bash", json!({}), json!({"stdout": log, "isImage": true}))),
        ("Read of an image", payload("Read", json!({}), json!({"type": "image", "file": {"base64": log}}))),
        ("Grep count mode", payload("Grep", json!({}), json!({"mode": "count", "content": log}))),
        ("PreToolUse event", serde_json::to_vec(&json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}})).unwrap()),
        ("missing persisted file", payload("Bash", json!({}), json!({"stdout": log, "persistedOutputPath": "/nonexistent/kompress/out.txt", "persistedOutputSize": 99999}))),
        ("unreadable persisted file", payload("Bash", json!({}), json!({"stdout": log, "persistedOutputPath": "/", "persistedOutputSize": 99999}))),
        ("persisted path not a string", payload("Bash", json!({}), json!({"stdout": log, "persistedOutputPath": 7}))),
        ("deeply nested", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
    ];
    for (name, input) in cases {
        assert_passthrough_of(name, &env.run(&["hook"], &input));
    }
    // Errors went to the log, not to the user.
    let log = env.log();
    assert!(log.contains("payload is not JSON"), "{log}");
    assert!(
        log.contains("cannot open /nonexistent/kompress/out.txt"),
        "{log}"
    );
}

#[test]
fn huge_payload_stays_within_the_deadline() {
    let env = Env::new();
    // 100 MB of distinct lines: nothing folds, so every pass has to look at all of it.
    let mut text = String::with_capacity(102 << 20);
    let mut i = 0u64;
    while text.len() < 100 << 20 {
        text.push_str(&format!(
            "line {i} {:x}\n",
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ));
        i += 1;
    }
    let input = payload(
        "Bash",
        json!({"command": "cat big"}),
        json!({"stdout": text, "stderr": "", "interrupted": false}),
    );
    let mut command = env.command(&["hook"]);
    command.env("KOMPRESS_DEADLINE_MS", "1000");
    let start = Instant::now();
    let output = env.run_with(command, &input);
    let elapsed = start.elapsed();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty());
    if !output.stdout.is_empty() {
        let reply: Value = serde_json::from_slice(&output.stdout).unwrap();
        let stdout = reply["hookSpecificOutput"]["updatedToolOutput"]["stdout"]
            .as_str()
            .unwrap();
        assert!(stdout.len() <= 30_000);
    }
    // Reading and parsing 100 MB takes time of its own; the deadline bounds the rest. The
    // bound is loose on purpose: this checks that the hook gives up, not how fast it is.
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
}

/// Work that outlasts the deadline and its grace (here: parsing a 40 MB payload in a debug
/// build, with a 1 ms deadline) is cut short by the watchdog: exit 0, nothing printed,
/// one line in the log, and the call still counted as a pass-through that ran out of time.
#[test]
fn the_hard_deadline_ends_the_call_as_a_passthrough() {
    let env = Env::new();
    let text: String = (0..1_000_000u64)
        .map(|i| format!("line {i} {:x}\n", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    let input = payload(
        "Bash",
        json!({"command": "cat big"}),
        json!({"stdout": text, "stderr": "", "interrupted": false}),
    );
    let mut command = env.command(&["hook"]);
    command.env("KOMPRESS_DEADLINE_MS", "1");
    let start = Instant::now();
    let output = env.run_with(command, &input);
    let elapsed = start.elapsed();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
    let log = env.log();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("hook: deadline of "), "{log}");
    let stats = env.run(&["stats", "--json"], b"");
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["total"]["calls"], 1, "{stats}");
    assert_eq!(stats["total"]["compressed"], 0, "{stats}");
    assert!(stats.to_string().contains("deadline"), "{stats}");
    eprintln!("ended after {elapsed:?}");
}

#[test]
fn every_tool_gets_its_own_shape() {
    let env = Env::new();
    let log = noisy_log();
    let listing: Vec<String> = (0..300)
        .map(|i| format!("/repo/src/module_{}/file_{i}.rs", i % 3))
        .collect();
    // Without -n, identical matching lines of one file print identically.
    let grep: String = (0..20)
        .map(|i| format!("src/m{i}.rs:    let x = compute();\n").repeat(20))
        .collect();
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "Bash",
            json!({"command": "cargo build"}),
            json!({"stdout": log, "stderr": "", "interrupted": false, "isImage": false, "noOutputExpected": false}),
        ),
        (
            "Grep",
            json!({"pattern": "compute", "output_mode": "content"}),
            json!({"mode": "content", "numFiles": 1, "filenames": [], "content": grep, "numLines": 400}),
        ),
        (
            "Grep",
            json!({"pattern": "x"}),
            json!({"mode": "files_with_matches", "numFiles": 300, "filenames": listing}),
        ),
        (
            "Glob",
            json!({"pattern": "**/*.rs"}),
            json!({"durationMs": 12, "numFiles": 300, "filenames": listing, "truncated": false}),
        ),
        (
            "WebFetch",
            json!({"url": "https://example.com", "prompt": "x"}),
            json!({"bytes": 10, "code": 200, "codeText": "OK", "result": log, "durationMs": 5, "url": "https://example.com"}),
        ),
        (
            "Agent",
            json!({"prompt": "x"}),
            json!({"status": "completed", "agentId": "a1", "content": [{"type": "text", "text": log}], "totalToolUseCount": 3, "totalDurationMs": 10, "totalTokens": 100, "usage": {}, "prompt": "x"}),
        ),
        (
            "mcp__github__list_issues",
            json!({}),
            json!([{"type": "text", "text": serde_json::to_string_pretty(&json!({"items": (0..50).map(|i| json!({"number": i, "title": format!("issue {i}"), "state": "open"})).collect::<Vec<_>>()})).unwrap()}]),
        ),
    ];
    for (tool, input, response) in cases {
        let output = env.run(&["hook"], &payload(tool, input, response.clone()));
        let updated = assert_replaced(tool, &response, &output);
        let before = kompress::eval::visible_text(tool, &response);
        let after = kompress::eval::visible_text(tool, &updated);
        assert!(
            after.len() < before.len(),
            "{tool}: {} → {}",
            before.len(),
            after.len()
        );
    }
}

#[test]
fn mcp_json_stays_valid_and_equal() {
    let env = Env::new();
    let doc = json!({"items": (0..40).map(|i| json!({"id": i, "ratio": 1.50, "big": 12345678901234567890u64, "name": format!("n\u{e9}{i}")})).collect::<Vec<_>>()});
    let text = serde_json::to_string_pretty(&doc).unwrap();
    let response = json!([{"type": "text", "text": text}]);
    let output = env.run(
        &["hook"],
        &payload("mcp__x__y", json!({}), response.clone()),
    );
    let updated = assert_replaced("mcp__x__y", &response, &output);
    let after: Value = serde_json::from_str(updated[0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(after, serde_json::from_str::<Value>(&text).unwrap());
}

#[test]
fn persisted_bash_output_is_read_and_its_keys_dropped() {
    let env = Env::new();
    let full = noisy_log().repeat(40);
    let path = env.home.path().join("persisted.txt");
    std::fs::write(&path, &full).unwrap();
    let response = json!({"stdout": &full[..30_000], "stderr": "", "interrupted": false, "isImage": false,
                          "persistedOutputPath": path, "persistedOutputSize": full.len()});
    let output = env.run(
        &["hook"],
        &payload("Bash", json!({"command": "cargo build"}), response.clone()),
    );
    let updated = assert_replaced("Bash", &response, &output);
    assert!(updated.get("persistedOutputPath").is_none());
    let stdout = updated["stdout"].as_str().unwrap();
    assert!(stdout.len() <= 30_000, "{}", stdout.len());
    // The tail of the full output, past the 30,000 characters Claude Code inlined, is there.
    assert!(stdout.contains("Finished `dev` profile"), "{stdout}");
}

#[test]
fn disable_means_passthrough() {
    let env = Env::new();
    let mut command = env.command(&["hook"]);
    command.env("KOMPRESS_DISABLE", "1");
    let input = payload(
        "Bash",
        json!({"command": "cargo build"}),
        json!({"stdout": noisy_log(), "stderr": "", "interrupted": false}),
    );
    assert_passthrough(&env.run_with(command, &input));
}

#[test]
fn bad_config_is_logged_not_shown() {
    let env = Env::new();
    let config = env.home.path().join("kompress/config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "min_chars = \"many\"\n").unwrap();
    let input = payload(
        "Bash",
        json!({"command": "cargo build"}),
        json!({"stdout": noisy_log(), "stderr": "", "interrupted": false}),
    );
    assert_passthrough(&env.run(&["hook"], &input));
    assert!(env.log().contains("invalid config file"), "{}", env.log());
}

#[test]
fn pipe_compresses_and_passes_bytes_through() {
    let env = Env::new();
    let log = noisy_log();
    let output = env.run(&[], log.as_bytes());
    assert!(output.status.success());
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(out.len() < log.len());
    assert!(out.contains("error[E0277]: the trait bound `Foo: Bar` is not satisfied"));
    assert!(out.contains("3.28s"));

    let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let output = env.run(&[], &bytes);
    assert!(output.status.success());
    assert_eq!(output.stdout, bytes);

    let short = b"hello\n";
    assert_eq!(env.run(&[], short).stdout, short);

    let forced = env.run(&["--domain", "file_read"], log.as_bytes());
    assert_eq!(forced.stdout, log.as_bytes());

    let unknown = env.run(&["--domain", "nope"], b"");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("expected one of"));
}

#[test]
fn run_keeps_the_exit_code_and_merges_output() {
    let env = Env::new();
    let output = env.run(
        &["run", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
        b"",
    );
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "out\nerr\n");

    let script = format!("cat <<'EOF'\n{}EOF\nexit 1", noisy_log());
    let output = env.run(&["run", "--", "sh", "-c", &script], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.len() < noisy_log().len());

    let missing = env.run(&["run", "--", "/nonexistent/kompress-test-cmd"], b"");
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot run"));

    let killed = env.run(&["run", "--", "sh", "-c", "kill -9 $$"], b"");
    assert_eq!(killed.status.code(), Some(137));
}

#[test]
fn reads_stay_line_for_line() {
    let env = Env::new();
    let code: String = (0..600)
        .map(|i| format!("    let value_{i} = compute(input, {i});\n"))
        .collect();
    let read = |content: &str| {
        let lines = content.lines().count();
        json!({"type": "text", "file": {"filePath": "/repo/src/data.rs", "content": content,
                                         "numLines": lines, "startLine": 1, "totalLines": lines}})
    };
    // Ordinary source, however big: untouched, so Edit can copy from it.
    let response = read(&code);
    assert_passthrough(&env.run(
        &["hook"],
        &payload("Read", json!({"file_path": "/repo/src/data.rs"}), response),
    ));
    // A big embedded blob: elided, with every line still at its number.
    let blob = "    \"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=\",\n";
    let content = format!("{code}{}{code}", blob.repeat(300));
    let response = read(&content);
    let output = env.run(
        &["hook"],
        &payload(
            "Read",
            json!({"file_path": "/repo/src/data.rs"}),
            response.clone(),
        ),
    );
    let updated = assert_replaced("Read", &response, &output);
    let after = updated["file"]["content"].as_str().unwrap();
    assert_eq!(after.lines().count(), content.lines().count());
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines[1200], "    let value_300 = compute(input, 300);");
    assert!(
        lines[600].starts_with("[kompress: this line and the next 299"),
        "{}",
        lines[600]
    );
}

/// kompress never talks to the network: the binary imports no function that opens, names
/// or resolves a network endpoint. (`sendmsg` and `socketpair` are there: the standard
/// library's process spawning passes a pidfd over a local socket pair.)
#[test]
fn binary_imports_no_network_functions() {
    let Ok(output) = Command::new("nm")
        .args(["-D", "--undefined-only", env!("CARGO_BIN_EXE_kompress")])
        .output()
    else {
        eprintln!("nm not found (binutils): skipped");
        return;
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let symbols = String::from_utf8_lossy(&output.stdout);
    assert!(symbols.contains("write"), "nm saw no imports: {symbols}");
    for name in [
        "socket",
        "connect",
        "getaddrinfo",
        "gethostbyname",
        "sendto",
        "bind",
        "listen",
        "accept",
    ] {
        assert!(
            !symbols
                .split_whitespace()
                .any(|s| s == name || s.starts_with(&format!("{name}@"))),
            "the binary imports {name}"
        );
    }
}

/// And at run time: no network system call in hook, pipe or wrapper mode.
#[test]
fn no_network_system_calls() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("strace not found: skipped");
        return;
    }
    let env = Env::new();
    let trace = env.home.path().join("trace");
    let input = payload(
        "Bash",
        json!({"command": "cargo build"}),
        json!({"stdout": noisy_log(), "stderr": "", "interrupted": false}),
    );
    for args in [
        &["hook"][..],
        &[][..],
        &["run", "--", "sh", "-c", "echo hi"][..],
    ] {
        let mut command = env.command(&[]);
        let mut all = vec![
            "-f",
            "-qq",
            "-e",
            "trace=%network",
            "-e",
            "signal=none",
            "-o",
            trace.to_str().unwrap(),
            env!("CARGO_BIN_EXE_kompress"),
        ];
        all.extend_from_slice(args);
        let program = std::mem::replace(&mut command, Command::new("strace"));
        command
            .args(&all)
            .env_clear()
            .envs(program.get_envs().filter_map(|(k, v)| Some((k, v?))));
        let output = env.run_with(command, &input);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let calls = std::fs::read_to_string(&trace).unwrap_or_default();
        // Spawning a child uses a local socket pair; anything that reaches out is a failure.
        let reaching_out: Vec<&str> = calls
            .lines()
            .filter(|l| {
                [
                    "connect(",
                    "bind(",
                    "listen(",
                    "accept",
                    "sendto(",
                    "AF_INET",
                    "AF_NETLINK",
                ]
                .iter()
                .any(|p| l.contains(p))
            })
            .collect();
        assert!(
            reaching_out.is_empty(),
            "{args:?} made network calls:\n{calls}"
        );
    }
}

#[test]
fn a_five_megabyte_line_and_an_unwritable_cache_fail_open() {
    let env = Env::new();
    let line = "x".repeat(5 << 20);
    let response = json!({"stdout": line, "stderr": "", "interrupted": false});
    let output = env.run(
        &["hook"],
        &payload("Bash", json!({"command": "cat blob"}), response.clone()),
    );
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty());
    if !output.stdout.is_empty() {
        let updated = assert_replaced("Bash", &response, &output);
        assert!(updated["stdout"].as_str().unwrap().len() <= 30_000);
    }
    // The cache directory cannot be created (a file stands where it should be): the hook
    // must not lose the output, so it passes it through. (Root ignores permission bits, so
    // a read-only directory would prove nothing here.)
    let env = Env::new();
    let home = env.home.path().join("kompress");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("cache"), b"not a directory").unwrap();
    std::fs::write(home.join("state"), b"not a directory").unwrap();
    let input = payload(
        "Bash",
        json!({"command": "cargo build"}),
        json!({"stdout": noisy_log(), "stderr": "", "interrupted": false}),
    );
    assert_passthrough(&env.run(&["hook"], &input));
}

/// 64 hooks at once on large inputs, sharing one home: every one exits 0 with a valid reply
/// or nothing, the batch finishes near the deadline at worst, each hook's own peak RSS
/// stays bounded, and the shared state is whole afterwards: the statistics count every
/// call, and every replaced output's original comes back byte for byte.
///
/// Each hook runs under `kompress measure-child`: read straight from here, a child's
/// `ru_maxrss` would start at this test binary's peak (Linux carries the spawning
/// process's peak into the child at `exec`; see `kompress::measure`).
#[test]
fn sixty_four_hooks_at_once() {
    const HOOKS: usize = 64;
    /// Measured 2026-11-26 on this input: 48 MiB for one debug-build hook alone.
    const RSS_BOUND_KB: u64 = 128 << 10;
    let env = Env::new();
    let reports = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    let start = Instant::now();
    for i in 0..HOOKS {
        let text: String = (0..4000)
            .map(|j| format!("[{i}] step {j} of the batch job finished in {}ms\n", j % 17))
            .collect();
        let response = json!({"stdout": text, "stderr": "", "interrupted": false});
        let input = payload(
            "Bash",
            json!({"command": format!("job {i}")}),
            response.clone(),
        );
        let report = reports.path().join(format!("{i}.json"));
        let mut command = env.measured(&report, &["hook"]);
        command.env("KOMPRESS_DEADLINE_MS", "2000");
        children.push((env.spawn_with(command, &input), response, text, report));
    }
    let mut replaced = Vec::new();
    let mut peak_kb = 0;
    let mut usages = Vec::new();
    for (child, response, text, report) in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        assert!(
            output.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let usage = kompress::measure::read_report(&report).unwrap();
        assert!(
            usage.max_rss_kb <= RSS_BOUND_KB,
            "a hook peaked at {} KiB",
            usage.max_rss_kb
        );
        peak_kb = peak_kb.max(usage.max_rss_kb);
        usages.push(usage);
        if !output.stdout.is_empty() {
            let updated = assert_replaced("Bash", &response, &output);
            let stdout = updated["stdout"].as_str().unwrap();
            let id = stdout
                .split("kompress show ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next());
            replaced.push((
                id.expect("a replacement names its original").to_string(),
                text,
            ));
        }
    }
    let elapsed = start.elapsed();
    eprintln!(
        "{HOOKS} hooks: {} replaced, {elapsed:?} in all, largest peak RSS {peak_kb} KiB",
        replaced.len()
    );
    // 64 processes share 2 cores here; each gives up at its 2 s deadline, so the whole
    // batch is bounded by the deadline times the oversubscription, with a wide margin.
    assert!(elapsed < Duration::from_secs(120), "{elapsed:?}");

    let stats = env.run(&["stats", "--json"], b"");
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["total"]["calls"], HOOKS, "{stats}");
    assert_eq!(stats["total"]["compressed"], replaced.len(), "{stats}");
    for (id, text) in &replaced {
        let shown = env.run(&["show", id], b"");
        assert!(
            shown.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&shown.stderr)
        );
        assert!(
            shown.stdout == text.as_bytes(),
            "{id}: the original came back changed"
        );
    }
    // A hook that ran out of time says so in the log, and nothing else is logged.
    let log = env.log();
    assert!(
        log.lines().all(|line| line.contains("hook: deadline of")),
        "{log}"
    );
    let slowest = usages.iter().map(|u| u.wall_ms).fold(0.0, f64::max);
    eprintln!(
        "{} of {HOOKS} hit the 2 s deadline; slowest hook {slowest:.0} ms",
        log.lines().count()
    );
}

/// The launcher reports the child's own peak, not its caller's: with 256 MiB touched in
/// this process, a `kompress --version` under `measure-child` still reports a few MiB.
#[test]
fn measure_child_reports_the_childs_own_peak() {
    let ballast = vec![1u8; 256 << 20];
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("usage.json");
    let output = env.run_with(env.measured(&report, &["--version"]), b"");
    assert!(output.status.success());
    let usage = kompress::measure::read_report(&report).unwrap();
    assert!(usage.success(), "{usage:?}");
    assert!(
        usage.max_rss_kb > 0 && usage.max_rss_kb < 64 << 10,
        "{usage:?}"
    );
    assert!(usage.wall_ms > 0.0);
    std::hint::black_box(&ballast);

    // The command's exit code and signal come through.
    let status = env
        .run_with(env.measured(&report, &["show", "no-such-id"]), b"")
        .status;
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        kompress::measure::read_report(&report).unwrap().code,
        Some(1)
    );
}

/// Prose in a Bash output: the shipped model drops function words, never a protected word,
/// and `KOMPRESS_NO_MODEL=1` (or `model = false`) turns the model pass off.
#[test]
fn the_shipped_model_drops_filler_words_and_can_be_turned_off() {
    let env = Env::new().with_model();
    let mut text = String::new();
    for i in 0..12 {
        text.push_str(&format!(
            "In run {i} the migration of the table is now done and it was applied to the database at /srv/app/db.sqlite3 by the worker\n"
        ));
    }
    let with_model = env.run(&["--domain", "prose"], text.as_bytes());
    assert!(with_model.status.success());
    let out = String::from_utf8(with_model.stdout).unwrap();
    assert!(out.len() < text.len(), "nothing dropped:\n{out}");
    for word in text
        .split_whitespace()
        .filter(|w| kompress::protect::is_protected(w))
    {
        assert!(out.contains(word), "protected {word:?} lost:\n{out}");
    }
    assert!(!out.contains(" the "), "function words stay:\n{out}");

    let mut command = env.command(&["--domain", "prose"]);
    command.env("KOMPRESS_NO_MODEL", "1");
    let rules = env.run_with(command, text.as_bytes());
    assert_eq!(
        String::from_utf8(rules.stdout).unwrap(),
        text,
        "rules alone change nothing here"
    );
    assert_eq!(env.log(), "", "no error logged");
}

/// `--model DIR` picks the model in pipe mode even when the configuration turned it off,
/// and a directory that holds none is reported on stderr while the output still comes.
#[test]
fn model_flag_selects_the_model_and_reports_a_bad_one() {
    let env = Env::new().with_model();
    let text = "In run 3 the migration of the table is now done and it was applied to the database at /srv/app/db.sqlite3 by the worker\n".repeat(3);
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/model");
    let mut command = env.command(&["--domain", "prose", "--model", shipped]);
    command.env("KOMPRESS_NO_MODEL", "1");
    let out = env.run_with(command, text.as_bytes());
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.starts_with("In run 3 migration table"), "{out}");

    let missing = env.home.path().join("no-model");
    let bad = env.run(
        &["--domain", "prose", "--model", missing.to_str().unwrap()],
        text.as_bytes(),
    );
    assert!(bad.status.success());
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert!(
        stderr.contains("no-model") && stderr.contains("without the model"),
        "{stderr}"
    );
    assert!(!bad.stdout.is_empty());
}

/// `--device`: `cpu` and `auto` run the model here (this build has no CUDA); `cuda` says how
/// to get a CUDA build on stderr in CLI modes and still prints the output, while the hook
/// stays silent and logs it. The configuration's `device` is rejected when unknown.
#[test]
fn device_flag_runs_on_the_cpu_and_explains_a_missing_cuda_build() {
    let env = Env::new().with_model();
    let text = "In run 3 the migration of the table is now done and it was applied to the database at /srv/app/db.sqlite3 by the worker\n".repeat(3);
    for device in ["cpu", "auto"] {
        let out = env.run(&["--domain", "prose", "--device", device], text.as_bytes());
        assert!(
            out.stderr.is_empty(),
            "{device}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8(out.stdout)
                .unwrap()
                .starts_with("In run 3 migration table"),
            "{device}"
        );
    }
    if kompress::model::device::COMPILED_WITH_CUDA {
        return;
    }
    let cuda = env.run(&["--domain", "prose", "--device", "cuda"], text.as_bytes());
    assert!(cuda.status.success());
    let stderr = String::from_utf8(cuda.stderr).unwrap();
    assert!(
        stderr.contains("--features cuda") && stderr.contains("without the model"),
        "{stderr}"
    );
    let out = String::from_utf8(cuda.stdout).unwrap();
    assert!(
        out.starts_with("In run 3 the migration of the table"),
        "rules only: {out}"
    );

    let notes: String = (0..12).map(|i| format!("In run {i} the migration of the table is now done and it was applied to the database by the worker\n")).collect();
    let response = json!({"stdout": notes, "stderr": "", "interrupted": false});
    // The word model is off on tool output by default: turn it on for Bash outputs.
    let config = env.home.path().join("kompress/config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        "[domains.bash_output]\npasses = [\"ansi\"]\nmodel = true\n",
    )
    .unwrap();
    let mut command = env.command(&["hook", "--device", "cuda"]);
    command.env("KOMPRESS_DEADLINE_MS", "60000");
    let output = env.run_with(
        command,
        &payload("Bash", json!({"command": "python migrate.py"}), response),
    );
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(env.log().contains("--features cuda"), "{}", env.log());

    let mut command = env.command(&["--domain", "prose"]);
    command.env("KOMPRESS_DEVICE", "tpu");
    let bad = env.run_with(command, text.as_bytes());
    assert!(
        String::from_utf8(bad.stderr)
            .unwrap()
            .contains("unknown device")
    );
    assert_eq!(
        bad.stdout,
        text.as_bytes(),
        "a bad configuration passes the output through"
    );
    assert!(
        !env.log().contains("unknown device"),
        "CLI errors go to the terminal, not the log"
    );
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// `mount -t tmpfs -o OPTIONS tmpfs DIR`; `None` where this user cannot mount.
    fn mount(dir: &std::path::Path, options: &str) -> Option<Tmpfs> {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The cache directory on a full filesystem, then on a read-only one (a real mount: root
/// ignores permission bits, so `chmod` would prove nothing): the original cannot be stored,
/// so the hook replies nothing (a trailer would promise an original `kompress show` cannot
/// give back), exits 0, keeps stderr silent and logs why. Needs permission to mount a tmpfs
/// (root, as in CI); elsewhere it says it skipped.
#[test]
fn a_full_or_read_only_cache_fails_open() {
    let input = payload(
        "Bash",
        json!({"command": "cargo build"}),
        json!({"stdout": noisy_log(), "stderr": "", "interrupted": false}),
    );
    for (name, options, expected) in [
        ("full", "size=64k,mode=0700", "No space left on device"),
        ("read-only", "ro,mode=0700", "Read-only file system"),
    ] {
        let env = Env::new();
        let cache = env.kompress_home().join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        // First, the same input with a working cache is replaced.
        assert!(
            !env.run(&["hook"], &input).stdout.is_empty(),
            "{name}: compressible input"
        );
        std::fs::remove_dir_all(&cache).unwrap();
        std::fs::create_dir_all(&cache).unwrap();
        let Some(_mount) = Tmpfs::mount(&cache, options) else {
            eprintln!("skipped: this user cannot mount a tmpfs");
            return;
        };
        if name == "full" {
            std::fs::create_dir_all(cache.join("originals")).unwrap();
            let mut file = std::fs::File::create(cache.join("ballast")).unwrap();
            while std::io::Write::write_all(&mut file, &[0u8; 4096]).is_ok() {}
        }
        let mut command = env.command(&["hook"]);
        command.env("KOMPRESS_SESSION_MEMORY", "0");
        let output = env.run_with(command, &input);
        assert_passthrough(&output);
        let log = env.log();
        assert!(log.contains(expected), "{name}: {log}");
    }
}

/// One transcript line the way Claude Code writes it.
fn transcript_line(kind: &str, message: Value) -> String {
    let line = json!({
        "parentUuid": "1f0c9e2a-0000-4000-8000-000000000001",
        "isSidechain": false,
        "userType": "external",
        "cwd": "/tmp",
        "sessionId": "s1",
        "version": "2.1.121",
        "gitBranch": "main",
        "message": message,
        "type": kind,
        "uuid": "9a8b7c6d-0000-4000-8000-000000000003",
        "timestamp": "2026-03-01T10:00:00.000Z",
    });
    format!("{line}\n")
}

/// A session transcript: an earlier exchange (`history` bytes of it at least), the user's
/// prompt, the model's `say` blocks, then its call `toolu_1` (as `cc-e2e --say` leaves it).
fn transcript(history: usize, say: &[&str]) -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < history {
        let id = format!("toolu_old{i}");
        text.push_str(&transcript_line(
            "assistant",
            json!({"id": format!("msg_old{i}"), "role": "assistant",
                   "content": [{"type": "tool_use", "id": id, "name": "Bash", "input": {"command": "ls"}}]}),
        ));
        text.push_str(&transcript_line(
            "user",
            json!({"role": "user", "content": [{"tool_use_id": id, "type": "tool_result",
                                                 "content": "src\ntests\n".repeat(50), "is_error": false}]}),
        ));
        i += 1;
    }
    text.push_str(&transcript_line(
        "user",
        json!({"role": "user", "content": "the build is broken, fix it"}),
    ));
    text.push_str(&transcript_line(
        "assistant",
        json!({"id": "msg_1", "role": "assistant",
               "content": [{"type": "thinking", "thinking": "Not this.", "signature": "EqQB"}]}),
    ));
    for words in say {
        text.push_str(&transcript_line(
            "assistant",
            json!({"id": "msg_1", "role": "assistant", "content": [{"type": "text", "text": words}]}),
        ));
    }
    text.push_str(&transcript_line(
        "assistant",
        json!({"id": "msg_1", "role": "assistant",
               "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                            "input": {"command": "cargo build"}}]}),
    ));
    text
}

/// A Bash payload (`payload`'s `tool_use_id` is `toolu_1`) with `transcript_path` set to
/// `transcript`, when given.
fn payload_with_transcript(stdout: &str, transcript: Option<Value>) -> Vec<u8> {
    let mut payload: Value = serde_json::from_slice(&payload(
        "Bash",
        json!({"command": "cargo build"}),
        json!({"stdout": stdout, "stderr": "", "interrupted": false}),
    ))
    .unwrap();
    if let Some(path) = transcript {
        payload["transcript_path"] = path;
    }
    serde_json::to_vec(&payload).unwrap()
}

/// Run the hook in a fresh home (no session memory) with `KOMPRESS_DEBUG_INTENT` set;
/// the output, and the lines the hook recorded (`None`: it recorded nothing).
fn hook_with_intent_record(
    input: &[u8],
    vars: &[(&'static str, &str)],
) -> (Output, Option<String>) {
    let mut env = Env::new();
    let record = env.home.path().join("intent.txt");
    env.vars
        .push(("KOMPRESS_DEBUG_INTENT", record.display().to_string()));
    for (key, value) in vars {
        env.vars.push((key, (*value).to_string()));
    }
    let output = env.run(&["hook"], input);
    (output, std::fs::read_to_string(&record).ok())
}

#[test]
fn hook_reads_the_agents_words_from_the_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.jsonl");
    std::fs::write(
        &path,
        transcript(
            10_000,
            &["The build fails.", "Let me find the first error."],
        ),
    )
    .unwrap();
    let (with, record) = hook_with_intent_record(
        &payload_with_transcript(&noisy_log(), Some(json!(path))),
        &[],
    );
    assert_eq!(
        record.as_deref(),
        Some("The build fails.\\nLet me find the first error.\n")
    );
    // The pipeline does not use the intent yet: the same reply as without it.
    let (without, record) =
        hook_with_intent_record(&payload_with_transcript(&noisy_log(), None), &[]);
    assert_eq!(record.as_deref(), Some("<none>\n"));
    let response = json!({"stdout": noisy_log(), "stderr": "", "interrupted": false});
    assert_replaced("Bash", &response, &with);
    assert_eq!(with.stdout, without.stdout);

    // Past the first 256 KiB window of a big transcript, and the call near its end.
    std::fs::write(
        &path,
        transcript(3 << 20, &["Rebuilding after the fix."]) + &transcript_line(
            "user",
            json!({"role": "user", "content": [{"tool_use_id": "toolu_1", "type": "tool_result",
                                                 "content": "x\n".repeat(200_000), "is_error": false}]}),
        ),
    )
    .unwrap();
    let (output, record) = hook_with_intent_record(
        &payload_with_transcript(&noisy_log(), Some(json!(path))),
        &[],
    );
    assert_eq!(record.as_deref(), Some("Rebuilding after the fix.\n"));
    assert_eq!(output.stdout, without.stdout);
}

#[test]
fn hook_without_the_agents_words_has_no_intent() {
    let dir = tempfile::tempdir().unwrap();
    // The call is there, with no words before it.
    let silent = dir.path().join("silent.jsonl");
    std::fs::write(&silent, transcript(1_000, &[])).unwrap();
    // Another call's words only.
    let other = dir.path().join("other.jsonl");
    std::fs::write(
        &other,
        transcript(1_000, &["Listing."]).replace("toolu_1", "toolu_2"),
    )
    .unwrap();
    for path in [&silent, &other] {
        let (output, record) = hook_with_intent_record(
            &payload_with_transcript(&noisy_log(), Some(json!(path))),
            &[],
        );
        assert_eq!(record.as_deref(), Some("<none>\n"), "{}", path.display());
        assert_eq!(output.status.code(), Some(0));
    }
    // The hook's intent comes from the transcript only, never from KOMPRESS_INTENT.
    let (_, record) = hook_with_intent_record(
        &payload_with_transcript(&noisy_log(), None),
        &[("KOMPRESS_INTENT", "from the environment")],
    );
    assert_eq!(record.as_deref(), Some("<none>\n"));
    // A short output passes through without reading the transcript.
    let words = dir.path().join("words.jsonl");
    std::fs::write(&words, transcript(1_000, &["Listing."])).unwrap();
    let (output, record) =
        hook_with_intent_record(&payload_with_transcript("a\nb\n", Some(json!(words))), &[]);
    assert_passthrough(&output);
    assert_eq!(record, None);
}

#[test]
fn bad_transcripts_fail_open() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.jsonl");
    let mut bytes = vec![0xff, 0xfe, b'\n', b'{'];
    bytes.extend_from_slice(
        b"toolu_1\n{\"type\":\"assistant\",\"message\":{\"content\":\"toolu_1\"}}\n",
    );
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&junk, bytes).unwrap();
    let (baseline, _) = hook_with_intent_record(&payload_with_transcript(&noisy_log(), None), &[]);
    assert!(!baseline.stdout.is_empty());
    let cases = [
        ("a directory", json!(dir.path())),
        ("/dev/null", json!("/dev/null")),
        (
            "a missing file",
            json!("/nonexistent/kompress/session.jsonl"),
        ),
        ("junk", json!(junk)),
        ("empty", json!("")),
        ("a number", json!(7)),
    ];
    for (case, path) in cases {
        let (output, record) =
            hook_with_intent_record(&payload_with_transcript(&noisy_log(), Some(path)), &[]);
        assert_eq!(output.status.code(), Some(0), "{case}");
        assert!(
            output.stderr.is_empty(),
            "{case}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.stdout, baseline.stdout, "{case}");
        assert_eq!(record.as_deref(), Some("<none>\n"), "{case}");
    }
}

#[test]
fn pipe_and_run_take_the_intent_from_the_flag_or_the_environment() {
    let env = Env::new();
    let log = noisy_log();
    let script = format!("cat <<'EOF'\n{log}EOF\n");
    let baseline = env.run(&[], log.as_bytes()).stdout;
    let run_baseline = env.run(&["run", "--", "sh", "-c", &script], b"").stdout;
    let cases: [(&[&str], Option<&str>, &str); 4] = [
        (
            &["--intent", "find the E0277 error"],
            None,
            "find the E0277 error",
        ),
        (&[], Some("why is the build slow"), "why is the build slow"),
        (
            &["--intent", "the flag wins"],
            Some("not the environment"),
            "the flag wins",
        ),
        (&[], None, "<none>"),
    ];
    for (flags, variable, expected) in cases {
        for run in [false, true] {
            let record = env.home.path().join("intent.txt");
            let _ = std::fs::remove_file(&record);
            let mut args: Vec<&str> = if run { vec!["run"] } else { Vec::new() };
            args.extend_from_slice(flags);
            if run {
                args.extend_from_slice(&["--", "sh", "-c", &script]);
            }
            let mut command = env.command(&args);
            command.env("KOMPRESS_DEBUG_INTENT", &record);
            if let Some(value) = variable {
                command.env("KOMPRESS_INTENT", value);
            }
            let output = env.run_with(command, if run { b"" } else { log.as_bytes() });
            assert!(output.status.success(), "{args:?}");
            assert_eq!(
                std::fs::read_to_string(&record).unwrap(),
                format!("{expected}\n"),
                "{args:?} {variable:?}"
            );
            // Compression does not depend on the intent yet.
            let expected_out = if run { &run_baseline } else { &baseline };
            assert_eq!(&output.stdout, expected_out, "{args:?}");
        }
    }
}
