//! `kompress init` and `kompress doctor`, run as the real binary against settings files in
//! temporary directories. `HOME`, `CLAUDE_CONFIG_DIR` and `KOMPRESS_HOME` always point into the
//! sandbox, so nothing here reads or writes the real home.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const MATCHER: &str = "Bash|Read|Grep|Glob|WebFetch|Agent|mcp__.*";

/// The events kompress registers for, with their matchers (timeout 10 each), in the order
/// `init` adds them: written out here independently of the crate's table.
const TABLE: [(&str, &str); 3] = [
    ("PostToolUse", MATCHER),
    ("PreToolUse", "Bash"),
    ("SessionStart", "compact"),
];

/// The matcher group `init` appends for `event`.
fn our_group(event: &str, command: &str) -> Value {
    let matcher = TABLE.iter().find(|(e, _)| *e == event).unwrap().1;
    json!({"matcher": matcher, "hooks": [{"type": "command", "command": command, "timeout": 10}]})
}

/// The `hooks` object a fresh install writes.
fn full_hooks(command: &str) -> Value {
    let mut hooks = serde_json::Map::new();
    for (event, _) in TABLE {
        hooks.insert(event.into(), json!([our_group(event, command)]));
    }
    Value::Object(hooks)
}
const BIN: &str = env!("CARGO_BIN_EXE_kompress");

/// A temporary home, project directory and settings file.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["home", "project", "claude", "kompress"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Sandbox { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The settings file most tests pass with `--settings`.
    fn settings(&self) -> PathBuf {
        self.path("claude/settings.json")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .env("HOME", self.path("home"))
            .env_remove("CLAUDE_CONFIG_DIR")
            .env("KOMPRESS_HOME", self.path("kompress"))
            .env_remove("KOMPRESS_CONFIG")
            .env_remove("KOMPRESS_MODEL")
            .env_remove("KOMPRESS_NO_MODEL")
            .env_remove("KOMPRESS_DISABLE")
            .current_dir(self.path("project"));
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    fn init(&self, extra: &[&str]) -> Output {
        let settings = self.settings();
        let mut args = vec!["init", "--settings", settings.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

#[track_caller]
fn assert_fails(output: &Output) {
    assert!(
        !output.status.success(),
        "expected a failure\nstdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// The command `init` registers: this test binary's kompress, by its canonical path.
fn expected_command() -> String {
    let exe = fs::canonicalize(BIN).unwrap();
    let exe = exe.to_str().unwrap();
    let plain = exe
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
    if plain {
        format!("{exe} hook")
    } else {
        format!("'{}' hook", exe.replace('\'', r"'\''"))
    }
}

fn parse(bytes: &[u8]) -> Value {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not valid JSON ({e}):\n{text}"))
}

/// Order-sensitive text of a value (`serde_json`'s map equality ignores key order).
fn text(value: &Value) -> String {
    serde_json::to_string(value).unwrap()
}

/// Whether a handler object is a kompress hook (written independently of the crate's code).
fn is_ours(handler: &Value) -> bool {
    let command = handler.get("command").and_then(Value::as_str).unwrap_or("");
    let exec_hook = handler
        .get("args")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        == Some("hook");
    command.contains("kompress") && (command.trim_end().ends_with(" hook") || exec_hook)
}

/// Every kompress handler under `hooks.<event>`.
fn ours_in(settings: &Value, event: &str) -> Vec<Value> {
    let mut found = Vec::new();
    if let Some(groups) = settings
        .get("hooks")
        .and_then(|hooks| hooks.get(event))
        .and_then(Value::as_array)
    {
        for group in groups {
            if let Some(handlers) = group.get("hooks").and_then(Value::as_array) {
                found.extend(handlers.iter().filter(|h| is_ours(h)).cloned());
            }
        }
    }
    found
}

/// Every kompress handler, in every event.
fn ours(settings: &Value) -> Vec<Value> {
    let Some(hooks) = settings.get("hooks").and_then(Value::as_object) else {
        return Vec::new();
    };
    hooks
        .keys()
        .flat_map(|event| ours_in(settings, event))
        .collect()
}

/// `settings` without kompress's handlers: a group left empty by their removal goes, and so do
/// an empty array of an event kompress registers for or had a handler in, and an empty `hooks`.
fn strip(settings: &Value) -> Value {
    let mut settings = settings.clone();
    let Some(root) = settings.as_object_mut() else {
        return settings;
    };
    if let Some(Value::Object(hooks)) = root.get_mut("hooks") {
        let mut emptied = Vec::new();
        for (event, value) in hooks.iter_mut() {
            let Value::Array(groups) = value else {
                continue;
            };
            let mut kept = Vec::new();
            let mut removed = false;
            for mut group in std::mem::take(groups) {
                if let Some(Value::Array(handlers)) = group.get_mut("hooks") {
                    let before = handlers.len();
                    handlers.retain(|h| !is_ours(h));
                    removed |= handlers.len() < before;
                    if handlers.len() < before && handlers.is_empty() {
                        continue;
                    }
                }
                kept.push(group);
            }
            *groups = kept;
            let in_table = TABLE.iter().any(|(e, _)| e == event);
            if groups.is_empty() && (in_table || removed) {
                emptied.push(event.clone());
            }
        }
        for event in emptied {
            hooks.shift_remove(&event);
        }
        if hooks.is_empty() {
            root.shift_remove("hooks");
        }
    }
    settings
}

fn backup_of(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        "{}.kompress.bak",
        path.file_name().unwrap().to_string_lossy()
    ))
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Whether uninstall must give back the original value exactly.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// The original has no kompress entry and no empty hook containers.
    Exact,
    /// The original had kompress entries (removed) or empty containers (removed).
    Stripped,
}

/// init, init again, uninstall, uninstall again, checking everything on the way.
fn round_trip(content: Option<&str>, expect: Expect) {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    let dir = path.parent().unwrap().to_path_buf();
    if let Some(content) = content {
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    }
    let original = content.map_or(json!({}), |c| parse(c.as_bytes()));
    if expect == Expect::Exact {
        assert_eq!(
            text(&strip(&original)),
            text(&original),
            "the variant is not Exact"
        );
    }

    // init
    let output = sandbox.init(&[]);
    assert_ok(&output);
    let said = stdout(&output);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        ["registered in", "created", "updated", "upgraded"]
            .iter()
            .any(|w| said.contains(w)),
        "{said}"
    );
    let installed_bytes = fs::read(&path).unwrap();
    let installed = parse(&installed_bytes);
    for (event, _) in TABLE {
        let found = ours_in(&installed, event);
        assert_eq!(
            found.len(),
            1,
            "kompress must be registered once for {event}:\n{installed:#}"
        );
        assert_eq!(found[0]["command"], expected_command(), "{installed:#}");
        if ours_in(&original, event).is_empty() {
            // A fresh entry: its own group, at the end, exactly as documented.
            let groups = installed["hooks"][event].as_array().unwrap();
            assert_eq!(
                groups.last().unwrap(),
                &our_group(event, &expected_command())
            );
        }
    }
    assert_eq!(
        text(&strip(&installed)),
        text(&strip(&original)),
        "other settings changed"
    );
    if let Some(content) = content {
        assert_eq!(
            fs::read(backup_of(&path)).unwrap(),
            content.as_bytes(),
            "backup"
        );
        assert_eq!(mode(&path), 0o640, "permissions");
        assert_eq!(mode(&backup_of(&path)), 0o640, "backup permissions");
    }
    let listing_after_install = listing(&dir);

    // init again: nothing changes, not even the bytes.
    let output = sandbox.init(&[]);
    assert_ok(&output);
    assert!(
        stdout(&output).contains("already registered"),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        installed_bytes,
        "second init changed the file"
    );
    assert_eq!(
        listing(&dir),
        listing_after_install,
        "second init wrote files"
    );

    // uninstall
    let output = sandbox.init(&["--uninstall"]);
    assert_ok(&output);
    assert!(stdout(&output).contains("removed"), "{}", stdout(&output));
    let removed_bytes = fs::read(&path).unwrap();
    let removed = parse(&removed_bytes);
    assert!(ours(&removed).is_empty(), "{removed:#}");
    assert_eq!(
        text(&removed),
        text(&strip(&original)),
        "uninstall left other changes"
    );
    if expect == Expect::Exact {
        assert_eq!(text(&removed), text(&original));
    }
    // Backups: the plain one holds the installed file; an older one the original.
    assert_eq!(fs::read(backup_of(&path)).unwrap(), installed_bytes);
    if let Some(content) = content {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let rotated: Vec<String> = listing(&dir)
            .into_iter()
            .filter(|n| n.starts_with(&format!("{name}.kompress.bak.")))
            .collect();
        assert_eq!(rotated.len(), 1, "{:?}", listing(&dir));
        assert_eq!(fs::read(dir.join(&rotated[0])).unwrap(), content.as_bytes());
        assert_eq!(mode(&path), 0o640, "permissions after uninstall");
        // A file already in Claude Code's own format comes back byte for byte.
        let canonical = serde_json::to_string_pretty(&original).unwrap();
        if expect == Expect::Exact && content.trim_end_matches('\n') == canonical {
            assert_eq!(String::from_utf8(removed_bytes.clone()).unwrap(), content);
        }
    }
    for name in listing(&dir) {
        assert!(!name.contains("tmp"), "temporary file left: {name}");
    }

    // uninstall again: nothing to do.
    let output = sandbox.init(&["--uninstall"]);
    assert_ok(&output);
    assert!(
        stdout(&output).contains("nothing to do"),
        "{}",
        stdout(&output)
    );
    assert_eq!(fs::read(&path).unwrap(), removed_bytes);
}

macro_rules! round_trips {
    ($($name:ident: $expect:ident, $content:expr;)*) => {
        $(
            #[test]
            fn $name() {
                round_trip($content, Expect::$expect);
            }
        )*
    };
}

round_trips! {
    missing_file: Exact, None;
    empty_object: Exact, Some("{}");
    empty_object_with_newline: Exact, Some("{}\n");
    blank_file: Exact, Some("\n\n");
    other_top_level_keys: Exact, Some(r#"{
  "model": "opus",
  "permissions": {
    "allow": [
      "Bash(npm run lint)",
      "Bash(git status:*)",
      "Read(~/.zshrc)"
    ],
    "deny": [
      "Bash(curl:*)",
      "Read(./.env)",
      "Read(./secrets/**)"
    ],
    "ask": [],
    "defaultMode": "acceptEdits"
  },
  "env": {
    "CLAUDE_CODE_ENABLE_TELEMETRY": "0",
    "BASH_MAX_OUTPUT_LENGTH": "60000"
  },
  "includeCoAuthoredBy": false,
  "cleanupPeriodDays": 30
}
"#);
    realistic_full_settings: Exact, Some(r#"{
  "$schema": "https://json.schemastore.org/claude-code-settings.json",
  "apiKeyHelper": "~/.claude/anthropic_key.sh",
  "statusLine": {
    "type": "command",
    "command": "~/.claude/statusline.sh",
    "padding": 0
  },
  "enabledPlugins": {
    "formatter@acme-tools": true,
    "deployer@acme-tools": false
  },
  "extraKnownMarketplaces": {
    "acme-tools": {
      "source": {
        "source": "github",
        "repo": "acme-corp/claude-plugins"
      }
    }
  },
  "hooks": {
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [
          {
            "type": "command",
            "command": "rtk hook claude"
          }
        ]
      }
    ],
    "PostToolUse": [
      {
        "matcher": "Write|Edit|MultiEdit",
        "hooks": [
          {
            "type": "command",
            "command": "npx prettier --write \"$CLAUDE_FILE_PATHS\"",
            "timeout": 30
          }
        ]
      }
    ],
    "Stop": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "afplay /System/Library/Sounds/Glass.aiff"
          }
        ]
      }
    ],
    "Notification": [
      {
        "matcher": "",
        "hooks": [
          {
            "type": "command",
            "command": "notify-send 'Claude Code' 'Awaiting your input'"
          }
        ]
      }
    ]
  },
  "alwaysThinkingEnabled": true,
  "outputStyle": "Explanatory",
  "spinnerTipsEnabled": false
}"#);
    other_post_tool_use_hooks: Exact, Some(r#"{"hooks": {"PostToolUse": [
        {"matcher": "Write|Edit", "hooks": [{"type": "command", "command": "cargo fmt", "timeout": 60}]},
        {"matcher": "mcp__github__.*", "hooks": [{"type": "command", "command": "audit.sh"}]},
        {"hooks": [{"type": "command", "command": "log-every-tool.sh", "async": true}]}
    ]}}"#);
    bash_group_with_someone_elses_hook: Exact, Some(r#"{
    "hooks": {
        "PostToolUse": [
            {
                "matcher": "Bash",
                "hooks": [
                    {"type": "command", "command": "squeez hook post", "statusMessage": "squeezing"}
                ]
            }
        ]
    }
}"#);
    other_hooks_in_every_event: Exact, Some(r#"{"hooks": {
        "SessionStart": [{"matcher": "compact", "hooks": [{"type": "command", "command": "reload-notes.sh"}]}],
        "PostToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "squeez hook post"}]}],
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "rtk hook claude"}]},
            {"matcher": "Write|Edit", "hooks": [{"type": "command", "command": "guard.sh"}]}
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]
    }}"#);
    older_kompress_in_pre_tool_use_and_leftover_pre_compact: Stripped, Some(r#"{"hooks": {
        "PreCompact": [{"hooks": [{"type": "command", "command": "/old/bin/kompress hook"}]}],
        "PreToolUse": [{"matcher": "Bash", "hooks": [
            {"type": "command", "command": "rtk hook claude"},
            {"type": "command", "command": "/old/bin/kompress hook", "timeout": 5}
        ]}]
    }}"#);
    pre_tool_use_only: Exact, Some(r#"{"hooks":{"PreToolUse":[{"matcher":"Bash","hooks":[{"type":"command","command":"rtk hook claude"}]}],"SessionStart":[{"hooks":[{"type":"command","command":"echo hi"}]}]}}"#);
    older_kompress_entry: Stripped, Some(r#"{
  "hooks": {
    "PostToolUse": [
      {
        "matcher": "Bash|Read|Grep|Glob|WebFetch|mcp__.*",
        "hooks": [
          {
            "type": "command",
            "command": "/usr/local/bin/kompress hook",
            "timeout": 10
          }
        ]
      }
    ]
  }
}
"#);
    older_kompress_entry_in_shared_group: Stripped, Some(r#"{"hooks": {"PostToolUse": [
        {"matcher": "Bash", "hooks": [
            {"type": "command", "command": "before.sh"},
            {"type": "command", "command": "'/Users/me/my tools/kompress' hook", "timeout": 30},
            {"type": "command", "command": "after.sh"}
        ]}
    ]}, "model": "sonnet"}"#);
    duplicate_kompress_entries: Stripped, Some(r#"{"hooks": {"PostToolUse": [
        {"matcher": "Bash", "hooks": [{"type": "command", "command": "kompress hook"}]},
        {"matcher": "Read", "hooks": [{"type": "command", "command": "/opt/kompress hook"}]},
        {"matcher": "Grep", "hooks": [{"type": "command", "command": "grep.sh"}, {"type": "command", "command": "~/bin/kompress hook"}]}
    ]}}"#);
    empty_hooks_object: Stripped, Some(r#"{"model": "haiku", "hooks": {}}"#);
    empty_post_tool_use_array: Stripped, Some(r#"{"hooks": {"PreToolUse": [], "PostToolUse": []}}"#);
    group_with_empty_hooks_array: Exact, Some(r#"{"hooks": {"PostToolUse": [{"matcher": "Write", "hooks": []}]}}"#);
    odd_entries_kept: Exact, Some(r#"{"hooks": {"PostToolUse": [
        "not a group", null, 42,
        {"matcher": "Edit"},
        {"matcher": "Read", "hooks": "not an array"},
        {"matcher": "Glob", "hooks": [null, "x", {"type": "http", "url": "http://localhost:8080/kompress/hook"}]}
    ]}}"#);
    other_hook_types: Exact, Some(r#"{"hooks": {"PostToolUse": [
        {"matcher": "Bash", "hooks": [{"type": "command", "command": "/bin/check", "args": ["--post", "hook"], "if": "Bash(git *)"}]},
        {"matcher": "Read", "hooks": [{"type": "prompt", "prompt": "Summarize kompress hook output", "timeout": 30}]},
        {"matcher": "mcp__memory__.*", "hooks": [{"type": "mcp_tool", "server": "memory", "tool": "log"}]},
        {"matcher": "Agent", "hooks": [{"type": "agent", "prompt": "review"}]}
    ]}}"#);
    // `kompress hook` under PreToolUse is kompress's own now: updated, then removed.
    kompress_mentioned_elsewhere: Stripped, Some(r#"{
  "permissions": {"allow": ["Bash(kompress hook)", "Bash(kompress run:*)"]},
  "env": {"KOMPRESS_DISABLE": "0", "NOTE": "run kompress hook by hand"},
  "hooks": {
    "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "kompress hook"}]}],
    "PostToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "kompress run -- true"}]}]
  }
}"#);
    unicode_content: Exact, Some("{\n  \"model\": \"opus\",\n  \"env\": {\n    \"GREETING\": \"héllo wörld ✓ 日本語 🚀\",\n    \"RTL\": \"שלום\",\n    \"ESCAPED\": \"caf\\u00e9 \\\"quoted\\\" tab\\t nl\\n \\u0001\",\n    \"ЖУРНАЛ\": \"путь/к/файлу\"\n  },\n  \"note 📝\": [\"∑\", \"∞\", \"\\ud83d\\ude00\"]\n}\n");
    deeply_nested_unrelated_keys: Exact, Some(&deeply_nested());
    numbers_kept_as_written: Exact, Some(r#"{"big": 123456789012345678901234567890, "float": 1.0, "exp": 1e400, "neg": -0, "small": 0.000000000000000000001, "x": [1.50, 2E3]}"#);
    tab_indent_and_crlf: Exact, Some("{\r\n\t\"model\": \"opus\",\r\n\t\"env\": {\r\n\t\t\"A\": \"1\"\r\n\t}\r\n}\r\n");
    compact_one_line_no_newline: Exact, Some(r#"{"model":"opus","permissions":{"allow":["Read"]}}"#);
    byte_order_mark: Exact, Some("\u{feff}{\n  \"model\": \"opus\"\n}\n");
    null_and_bool_values: Exact, Some(r#"{"apiKeyHelper": null, "includeCoAuthoredBy": true, "forceLoginMethod": false, "permissions": {"allow": [], "deny": [null]}}"#);
}

fn deeply_nested() -> String {
    let mut value = json!({"leaf": [1, "two", {"three": null}]});
    for depth in (0..40).rev() {
        value = json!({ format!("level{depth}"): value, "sibling": depth });
    }
    let mut root = serde_json::Map::new();
    root.insert("a".into(), json!(1));
    root.insert("nested".into(), value);
    root.insert(
        "z".into(),
        json!({"hooks": {"PostToolUse": "not the real hooks"}}),
    );
    serde_json::to_string_pretty(&Value::Object(root)).unwrap()
}

#[test]
fn numbers_are_written_as_they_were() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    fs::write(
        &path,
        r#"{"big": 123456789012345678901234567890, "exp": 1e400, "f": 1.50}"#,
    )
    .unwrap();
    assert_ok(&sandbox.init(&[]));
    let written = fs::read_to_string(&path).unwrap();
    // Digits survive as written; serde_json spells exponents its own way (`1e+400`).
    for literal in ["123456789012345678901234567890", "1e+400", "1.50"] {
        assert!(written.contains(literal), "{literal} missing:\n{written}");
    }
}

#[test]
fn file_style_is_kept() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    fs::write(&path, "{\r\n\t\"model\": \"opus\"\r\n}\r\n").unwrap();
    assert_ok(&sandbox.init(&[]));
    let written = fs::read_to_string(&path).unwrap();
    assert!(
        written.starts_with("{\r\n\t\"model\": \"opus\",\r\n\t\"hooks\": {\r\n\t\t\"PostToolUse\""),
        "{written:?}"
    );
    assert!(written.ends_with("}\r\n"), "{written:?}");
    assert!(!written.replace("\r\n", "").contains('\n'), "{written:?}");

    fs::write(&path, "{\n    \"model\": \"opus\"\n}").unwrap();
    assert_ok(&sandbox.init(&[]));
    let written = fs::read_to_string(&path).unwrap();
    assert!(
        written.starts_with("{\n    \"model\": \"opus\",\n    \"hooks\": {\n        \""),
        "{written:?}"
    );
    assert!(
        written.ends_with('}'),
        "no newline was there, none is added: {written:?}"
    );
}

#[test]
fn older_entry_is_updated_in_place() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    let original = json!({"hooks": {"PostToolUse": [
        {"matcher": "Write", "hooks": [{"type": "command", "command": "fmt.sh"}]},
        {"matcher": "Bash|Read", "hooks": [
            {"type": "command", "command": "before.sh"},
            {"type": "command", "command": "/usr/local/bin/kompress hook", "timeout": 30, "statusMessage": "kompressing"}
        ]},
        {"matcher": "Grep", "hooks": [{"type": "command", "command": "after.sh"}]}
    ]}});
    fs::write(&path, serde_json::to_string_pretty(&original).unwrap()).unwrap();
    let output = sandbox.init(&[]);
    assert_ok(&output);
    assert!(
        stdout(&output).contains("/usr/local/bin/kompress hook"),
        "{}",
        stdout(&output)
    );
    let installed = parse(&fs::read(&path).unwrap());
    let mut expected = original.clone();
    expected["hooks"]["PostToolUse"][1]["hooks"][1]["command"] = json!(expected_command());
    for event in ["PreToolUse", "SessionStart"] {
        expected["hooks"][event] = json!([our_group(event, &expected_command())]);
    }
    assert_eq!(text(&installed), text(&expected));
}

#[test]
fn duplicates_are_merged_into_the_first() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    fs::write(
        &path,
        r#"{"hooks": {"PostToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "kompress hook"}]},
            {"matcher": "Read", "hooks": [{"type": "command", "command": "/opt/kompress hook"}]},
            {"matcher": "Grep", "hooks": [{"type": "command", "command": "grep.sh"}, {"type": "command", "command": "kompress hook"}]}
        ]}}"#,
    )
    .unwrap();
    let output = sandbox.init(&[]);
    assert_ok(&output);
    assert!(
        stdout(&output).contains("2 duplicate"),
        "{}",
        stdout(&output)
    );
    let installed = parse(&fs::read(&path).unwrap());
    assert_eq!(
        text(&installed),
        text(&json!({"hooks": {
            "PostToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": expected_command()}]},
                {"matcher": "Grep", "hooks": [{"type": "command", "command": "grep.sh"}]}
            ],
            "PreToolUse": [our_group("PreToolUse", &expected_command())],
            "SessionStart": [our_group("SessionStart", &expected_command())]
        }}))
    );
}

#[test]
fn duplicates_and_stale_paths_are_handled_per_event() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    let current = expected_command();
    let original = json!({"hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "/old/kompress hook"}]},
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "rtk hook claude"}, {"type": "command", "command": "kompress hook"}]}
        ],
        "SessionStart": [
            our_group("SessionStart", &current),
            our_group("SessionStart", &current)
        ],
        "PostToolUse": [our_group("PostToolUse", &current)]
    }});
    fs::write(&path, serde_json::to_string_pretty(&original).unwrap()).unwrap();
    let output = sandbox.init(&[]);
    assert_ok(&output);
    let said = stdout(&output);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains(&format!(
            "updated PreToolUse (Bash): `/old/kompress hook` -> `{current}`"
        )) && said.contains(
            "removed 2 duplicate kompress hook(s) (PreToolUse (Bash), SessionStart (compact))"
        ),
        "{said}"
    );
    let installed = parse(&fs::read(&path).unwrap());
    assert_eq!(
        text(&installed),
        text(&json!({"hooks": {
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": current}]},
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "rtk hook claude"}]}
            ],
            "SessionStart": [our_group("SessionStart", &current)],
            "PostToolUse": [our_group("PostToolUse", &current)]
        }}))
    );
    let output = sandbox.init(&[]);
    assert!(
        stdout(&output).contains("already registered"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn upgrade_from_a_post_tool_use_only_install() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    // What `kompress init` wrote before it knew PreToolUse and SessionStart.
    let older = json!({
        "model": "opus",
        "hooks": {
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "rtk hook claude"}]}],
            "PostToolUse": [our_group("PostToolUse", &expected_command())]
        }
    });
    let content = serde_json::to_string_pretty(&older).unwrap() + "\n";
    fs::write(&path, &content).unwrap();
    let output = sandbox.init(&[]);
    assert_ok(&output);
    let said = stdout(&output);
    assert_eq!(
        said,
        format!(
            "kompress: upgraded the registration in {}: added PreToolUse (Bash), SessionStart \
             (compact) next to the existing PostToolUse registration (upgrade from an older \
             kompress): `{}` (backup: {})\n",
            path.display(),
            expected_command(),
            backup_of(&path).display()
        )
    );
    let installed = parse(&fs::read(&path).unwrap());
    assert_eq!(
        text(&installed),
        text(&json!({
            "model": "opus",
            "hooks": {
                "PreToolUse": [
                    {"matcher": "Bash", "hooks": [{"type": "command", "command": "rtk hook claude"}]},
                    our_group("PreToolUse", &expected_command())
                ],
                "PostToolUse": [our_group("PostToolUse", &expected_command())],
                "SessionStart": [our_group("SessionStart", &expected_command())]
            }
        }))
    );
    assert_eq!(fs::read_to_string(backup_of(&path)).unwrap(), content);

    // The second run: nothing to do, nothing written.
    let bytes = fs::read(&path).unwrap();
    let output = sandbox.init(&[]);
    assert_ok(&output);
    assert_eq!(
        stdout(&output),
        format!(
            "kompress: already registered in {}: PostToolUse, PreToolUse (Bash), SessionStart \
             (compact): `{}`; nothing to do\n",
            path.display(),
            expected_command()
        )
    );
    assert_eq!(fs::read(&path).unwrap(), bytes);

    // Uninstall takes out all three and leaves rtk's hook.
    let output = sandbox.init(&["--uninstall"]);
    assert_ok(&output);
    assert_eq!(
        stdout(&output),
        format!(
            "kompress: removed the kompress hook from {}: PreToolUse, PostToolUse, \
             SessionStart (backup: {})\n",
            path.display(),
            backup_of(&path).display()
        )
    );
    assert_eq!(
        text(&parse(&fs::read(&path).unwrap())),
        text(&json!({
            "model": "opus",
            "hooks": {
                "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "rtk hook claude"}]}]
            }
        }))
    );
}

#[test]
fn install_into_empty_settings_says_so() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    fs::write(&path, "{}\n").unwrap();
    let output = sandbox.init(&[]);
    assert_ok(&output);
    assert_eq!(
        stdout(&output),
        format!(
            "kompress: registered in {}: PostToolUse, PreToolUse (Bash), SessionStart \
             (compact): `{}` (backup: {})\n",
            path.display(),
            expected_command(),
            backup_of(&path).display()
        )
    );
    assert_eq!(
        text(&parse(&fs::read(&path).unwrap())),
        text(&json!({"hooks": full_hooks(&expected_command())}))
    );
}

#[test]
fn uninstall_leaves_foreign_hooks_in_every_event() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    let foreign = json!({"hooks": {
        "PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "fmt.sh"}]}],
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "rtk hook claude"}]}],
        "SessionStart": [{"matcher": "compact", "hooks": [{"type": "command", "command": "notes.sh"}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]
    }});
    fs::write(&path, serde_json::to_string_pretty(&foreign).unwrap()).unwrap();
    assert_ok(&sandbox.init(&[]));
    // A leftover from a hand edit, in an event `init` does not register.
    let mut installed = parse(&fs::read(&path).unwrap());
    installed["hooks"]["PreCompact"] = json!([{"hooks": [
        {"type": "command", "command": "/somewhere/kompress hook"}
    ]}]);
    fs::write(&path, serde_json::to_string_pretty(&installed).unwrap()).unwrap();
    let output = sandbox.init(&["--uninstall"]);
    assert_ok(&output);
    assert!(
        stdout(&output).contains(": PostToolUse, PreToolUse, SessionStart, PreCompact"),
        "{}",
        stdout(&output)
    );
    assert_eq!(text(&parse(&fs::read(&path).unwrap())), text(&foreign));
}

#[test]
fn hooks_json_registers_the_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/hooks.json");
    let plugin = parse(&fs::read(&path).unwrap());
    // The plugin runs `kompress hook` by name, for exactly the events `init` registers.
    assert_eq!(
        text(&plugin),
        text(&json!({"hooks": full_hooks("kompress hook")}))
    );
    let sandbox = Sandbox::new();
    assert_ok(&sandbox.init(&[]));
    let installed = parse(&fs::read(sandbox.settings()).unwrap());
    let mut renamed = installed.clone();
    for (event, _) in TABLE {
        renamed["hooks"][event][0]["hooks"][0]["command"] = json!("kompress hook");
    }
    assert_eq!(text(&renamed), text(&plugin), "init and hooks.json differ");
}

#[test]
fn already_registered_changes_nothing() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    // The user's own matchers and timeouts stay as they are.
    let content = format!(
        "{{\"hooks\": {{\"SessionStart\": [{{\"hooks\": [{{\"type\": \"command\", \"command\": \"{c}\"}}]}}], \"PreToolUse\": [{{\"matcher\": \"Bash|Task\", \"hooks\": [{{\"type\": \"command\", \"command\": \"{c}\", \"timeout\": 5}}]}}], \"PostToolUse\": [{{\"matcher\": \"Bash\", \"hooks\": [{{\"type\": \"command\", \"command\": \"{c}\", \"timeout\": 99}}]}}]}}}}",
        c = expected_command()
    );
    fs::write(&path, &content).unwrap();
    let output = sandbox.init(&[]);
    assert_ok(&output);
    assert!(
        stdout(&output).contains("already registered"),
        "{}",
        stdout(&output)
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), content);
    assert!(!backup_of(&path).exists(), "no write, no backup");
}

/// Assert `init` (and `init --uninstall`) refuse the file and leave it exactly as it was.
#[track_caller]
fn refused(content: &[u8], init_error: &[&str], uninstall_fails: bool) {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    fs::write(&path, content).unwrap();
    let before = listing(path.parent().unwrap());

    let output = sandbox.init(&[]);
    assert_fails(&output);
    let err = stderr(&output);
    assert!(
        err.contains(path.to_str().unwrap()),
        "the message names the file: {err}"
    );
    for needle in init_error {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
    assert!(
        err.contains(MATCHER) && err.contains("by hand"),
        "the snippet is printed: {err}"
    );
    let snippet = &err[err.find("\n{").expect("a snippet") + 1..];
    assert_eq!(
        parse(snippet.as_bytes()),
        json!({"hooks": full_hooks(&expected_command())}),
        "the snippet shows every event"
    );
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    assert_eq!(fs::read(&path).unwrap(), content, "the file was changed");
    assert_eq!(
        listing(path.parent().unwrap()),
        before,
        "files were written"
    );

    let output = sandbox.init(&["--uninstall"]);
    if uninstall_fails {
        assert_fails(&output);
        assert!(
            stderr(&output).contains(path.to_str().unwrap()),
            "{}",
            stderr(&output)
        );
    } else {
        assert_ok(&output);
        assert!(
            stdout(&output).contains("nothing to do"),
            "{}",
            stdout(&output)
        );
    }
    assert_eq!(
        fs::read(&path).unwrap(),
        content,
        "uninstall changed the file"
    );
    assert_eq!(listing(path.parent().unwrap()), before);
}

#[test]
fn jsonc_line_comment_is_refused() {
    refused(
        b"{\n  // my settings\n  \"model\": \"opus\"\n}\n",
        &["line 2", "column 3", "comment"],
        true,
    );
}

#[test]
fn jsonc_block_comment_is_refused() {
    refused(
        b"{\n  \"model\": \"opus\", /* fast */\n  \"env\": {}\n}\n",
        &["line 2", "comment"],
        true,
    );
}

#[test]
fn trailing_comma_is_refused() {
    refused(
        b"{\n  \"permissions\": {\n    \"allow\": [\"Read\",]\n  },\n}\n",
        &["trailing comma", "line 3"],
        true,
    );
}

#[test]
fn truncated_json_is_refused() {
    refused(
        b"{\"model\": \"opus\", \"hooks\": {",
        &["EOF", "line 1"],
        true,
    );
}

#[test]
fn invalid_utf8_is_refused() {
    refused(b"{\"model\": \"op\xffus\"}", &["UTF-8"], true);
}

#[test]
fn hooks_string_is_refused() {
    refused(br#"{"hooks": "none"}"#, &["\"hooks\" is a string"], false);
}

#[test]
fn hooks_array_is_refused() {
    refused(
        br#"{"hooks": [{"matcher": "Bash"}]}"#,
        &["\"hooks\" is an array"],
        false,
    );
}

#[test]
fn hooks_null_is_refused() {
    refused(
        br#"{"hooks": null, "model": "opus"}"#,
        &["\"hooks\" is null"],
        false,
    );
}

#[test]
fn post_tool_use_object_is_refused() {
    refused(
        br#"{"hooks": {"PostToolUse": {"matcher": "Bash"}}}"#,
        &["\"PostToolUse\" is an object"],
        false,
    );
}

#[test]
fn pre_tool_use_string_is_refused() {
    refused(
        br#"{"hooks": {"PostToolUse": [], "PreToolUse": "kompress hook"}}"#,
        &["\"hooks\".\"PreToolUse\" is a string, not an array"],
        false,
    );
}

#[test]
fn session_start_object_is_refused() {
    refused(
        br#"{"hooks": {"SessionStart": {"matcher": "compact"}}}"#,
        &["\"hooks\".\"SessionStart\" is an object, not an array"],
        false,
    );
}

#[test]
fn session_start_null_is_refused_even_with_post_tool_use_installed() {
    let content = r#"{"hooks": {"PostToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/old/kompress hook"}]}], "SessionStart": null}}"#;
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    fs::write(&path, content).unwrap();
    let output = sandbox.init(&[]);
    assert_fails(&output);
    assert!(
        stderr(&output).contains("\"hooks\".\"SessionStart\" is null"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), content);
    assert_eq!(listing(path.parent().unwrap()), ["settings.json"]);
    // Uninstall still takes kompress out of the events it can read.
    let output = sandbox.init(&["--uninstall"]);
    assert_ok(&output);
    assert_eq!(
        text(&parse(&fs::read(&path).unwrap())),
        r#"{"hooks":{"SessionStart":null}}"#
    );
}

#[test]
fn top_level_array_is_refused() {
    refused(b"[]\n", &["top level is an array"], false);
}

#[test]
fn read_only_file_is_refused() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    let content = "{\n  \"model\": \"opus\"\n}\n";
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    let output = sandbox.init(&[]);
    assert_fails(&output);
    assert!(stderr(&output).contains("read-only"), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(path.to_str().unwrap()),
        "{}",
        stderr(&output)
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), content);
    assert_eq!(mode(&path), 0o444);
    assert_eq!(listing(path.parent().unwrap()), ["settings.json"]);
}

#[test]
fn read_only_file_already_registered_is_fine() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    assert_ok(&sandbox.init(&[]));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    let output = sandbox.init(&[]);
    assert_ok(&output);
    assert!(stdout(&output).contains("already registered"));
    let output = sandbox.init(&["--uninstall"]);
    assert_fails(&output);
    assert!(stderr(&output).contains("read-only"), "{}", stderr(&output));
    assert_eq!(ours(&parse(&fs::read(&path).unwrap())).len(), TABLE.len());
}

#[test]
fn symlink_is_followed_and_kept() {
    let sandbox = Sandbox::new();
    let dotfiles = sandbox.path("dotfiles/claude");
    fs::create_dir_all(&dotfiles).unwrap();
    let target = dotfiles.join("settings.json");
    let content = "{\n  \"model\": \"opus\"\n}\n";
    fs::write(&target, content).unwrap();
    let link = sandbox.settings();
    std::os::unix::fs::symlink("../dotfiles/claude/settings.json", &link).unwrap();

    let output = sandbox.init(&[]);
    assert_ok(&output);
    assert!(
        stdout(&output).contains(target.to_str().unwrap()),
        "{}",
        stdout(&output)
    );
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("../dotfiles/claude/settings.json")
    );
    assert_eq!(ours(&parse(&fs::read(&target).unwrap())).len(), TABLE.len());
    assert_eq!(fs::read_to_string(backup_of(&target)).unwrap(), content);
    assert_eq!(
        listing(link.parent().unwrap()),
        ["settings.json"],
        "nothing next to the link"
    );

    assert_ok(&sandbox.init(&["--uninstall"]));
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), content);
}

#[test]
fn dangling_symlink_creates_its_target() {
    let sandbox = Sandbox::new();
    let target = sandbox.path("elsewhere/settings.json");
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, sandbox.settings()).unwrap();
    assert_ok(&sandbox.init(&[]));
    assert!(
        fs::symlink_metadata(sandbox.settings())
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(ours(&parse(&fs::read(&target).unwrap())).len(), TABLE.len());
}

#[test]
fn user_scope_uses_home() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["init"]);
    assert_ok(&output);
    let path = sandbox.path("home/.claude/settings.json");
    assert!(
        stdout(&output).contains(path.to_str().unwrap()),
        "{}",
        stdout(&output)
    );
    assert_eq!(ours(&parse(&fs::read(&path).unwrap())).len(), TABLE.len());
    assert!(!sandbox.path("project/.claude").exists());
    assert_ok(&sandbox.run(&["init", "--uninstall"]));
    assert_eq!(parse(&fs::read(&path).unwrap()), json!({}));
}

#[test]
fn user_scope_follows_claude_config_dir() {
    let sandbox = Sandbox::new();
    let config_dir = sandbox.path("claude-work");
    let output = sandbox
        .command()
        .arg("init")
        .env("CLAUDE_CONFIG_DIR", &config_dir)
        .output()
        .unwrap();
    assert_ok(&output);
    assert_eq!(
        ours(&parse(&fs::read(config_dir.join("settings.json")).unwrap())).len(),
        TABLE.len()
    );
    assert!(!sandbox.path("home/.claude").exists());
}

#[test]
fn project_scope_uses_the_current_directory() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["init", "--project"]);
    assert_ok(&output);
    let path = sandbox.path("project/.claude/settings.json");
    assert_eq!(ours(&parse(&fs::read(&path).unwrap())).len(), TABLE.len());
    assert!(
        !sandbox.path("home/.claude").exists(),
        "the user file was touched"
    );
    // --settings wins over --project.
    let settings = sandbox.settings();
    assert_ok(&sandbox.run(&[
        "init",
        "--project",
        "--settings",
        settings.to_str().unwrap(),
    ]));
    assert!(settings.exists());
}

#[test]
fn relative_settings_path() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["init", "--settings", "sub/dir/settings.json"]);
    assert_ok(&output);
    let path = sandbox.path("project/sub/dir/settings.json");
    assert!(
        stdout(&output).contains(path.to_str().unwrap()),
        "{}",
        stdout(&output)
    );
    assert_eq!(ours(&parse(&fs::read(&path).unwrap())).len(), TABLE.len());
}

#[test]
fn uninstall_without_a_file_creates_none() {
    let sandbox = Sandbox::new();
    let output = sandbox.init(&["--uninstall"]);
    assert_ok(&output);
    assert!(
        stdout(&output).contains("does not exist"),
        "{}",
        stdout(&output)
    );
    assert!(!sandbox.settings().exists());
}

#[test]
fn uninstall_when_not_installed_changes_nothing() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    let content = "{\"hooks\":{\"PostToolUse\":[{\"matcher\":\"Bash\",\"hooks\":[{\"type\":\"command\",\"command\":\"rtk hook claude\"}]}]}}";
    fs::write(&path, content).unwrap();
    let output = sandbox.init(&["--uninstall"]);
    assert_ok(&output);
    assert!(
        stdout(&output).contains("no kompress hook"),
        "{}",
        stdout(&output)
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), content);
    assert_eq!(listing(path.parent().unwrap()), ["settings.json"]);
}

#[test]
fn backups_are_never_lost() {
    let sandbox = Sandbox::new();
    let path = sandbox.settings();
    let dir = path.parent().unwrap();
    let v0 = "{\"model\": \"opus\"}";
    fs::write(&path, v0).unwrap();
    assert_ok(&sandbox.init(&[]));
    let v1 = fs::read(&path).unwrap();
    assert_ok(&sandbox.init(&["--uninstall"]));
    let v2 = fs::read(&path).unwrap();
    assert_ok(&sandbox.init(&[]));
    // Every earlier state of the file is somewhere among the backups.
    let backups: Vec<Vec<u8>> = listing(dir)
        .iter()
        .filter(|n| n.contains(".kompress.bak"))
        .map(|n| fs::read(dir.join(n)).unwrap())
        .collect();
    assert_eq!(backups.len(), 3, "{:?}", listing(dir));
    for state in [v0.as_bytes(), &v1, &v2] {
        assert!(backups.iter().any(|b| b == state), "a state was lost");
    }
    assert_eq!(
        fs::read(backup_of(&path)).unwrap(),
        v2,
        "the plain backup is the latest"
    );
}

#[test]
fn new_file_gets_a_newline_and_its_directory() {
    let sandbox = Sandbox::new();
    let path = sandbox.path("claude/deep/er/settings.json");
    let output = sandbox.run(&["init", "--settings", path.to_str().unwrap()]);
    assert_ok(&output);
    assert!(stdout(&output).contains("created"), "{}", stdout(&output));
    let written = fs::read_to_string(&path).unwrap();
    assert!(written.ends_with("}\n"));
    assert_eq!(
        text(&parse(written.as_bytes())),
        text(&json!({"hooks": full_hooks(&expected_command())}))
    );
    assert_eq!(
        stdout(&output),
        format!(
            "kompress: created {}, registered: PostToolUse, PreToolUse (Bash), SessionStart \
             (compact): `{}`\n",
            path.display(),
            expected_command()
        )
    );
}

// ---------------------------------------------------------------------------------------------
// doctor

fn fake_claude(sandbox: &Sandbox, version: &str) -> PathBuf {
    let bin = sandbox.path("bin");
    fs::create_dir_all(&bin).unwrap();
    let script = bin.join("claude");
    fs::write(&script, format!("#!/bin/sh\necho '{version}'\n")).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn doctor(sandbox: &Sandbox, path_dir: &Path) -> Output {
    sandbox
        .command()
        .arg("doctor")
        .env("PATH", path_dir)
        .output()
        .unwrap()
}

fn line<'a>(report: &'a str, name: &str) -> Vec<&'a str> {
    report
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(name))
        .collect()
}

#[test]
fn doctor_on_a_fresh_install() {
    let sandbox = Sandbox::new();
    assert_ok(&sandbox.run(&["init"]));
    let bin = fake_claude(&sandbox, "2.1.240 (Claude Code)");
    let output = doctor(&sandbox, &bin);
    assert_ok(&output);
    let report = stdout(&output);
    assert!(line(&report, "binary")[0].starts_with("ok"), "{report}");
    assert!(
        line(&report, "binary")[0].contains(env!("CARGO_PKG_VERSION")),
        "{report}"
    );
    // A checkout's binary finds the repository's model/.
    let model = line(&report, "model")[0];
    assert!(
        model.starts_with("ok")
            && model.contains("ModernBERT token classifier")
            && model.contains("found via the repository's model/"),
        "{report}"
    );
    let hook = line(&report, "hook");
    assert_eq!(hook.len(), 1, "{report}");
    assert!(
        hook[0].starts_with("ok")
            && hook[0].contains("home/.claude/settings.json")
            && hook[0].contains(": PostToolUse, PreToolUse (Bash), SessionStart (compact): `"),
        "{report}"
    );
    assert!(line(&report, "claude")[0].starts_with("ok"), "{report}");
    assert!(line(&report, "claude")[0].contains("2.1.240"), "{report}");
    assert!(
        line(&report, "state")[0].contains("kompress.log"),
        "{report}"
    );
    for l in report.lines() {
        assert!(
            ["ok ", "warn ", "FAIL "].iter().any(|s| l.starts_with(s)),
            "{l}"
        );
    }
}

#[test]
fn doctor_warns_about_old_or_missing_claude() {
    let sandbox = Sandbox::new();
    let bin = fake_claude(&sandbox, "2.1.120 (Claude Code)");
    let output = doctor(&sandbox, &bin);
    assert_ok(&output);
    let report = stdout(&output);
    let claude = line(&report, "claude")[0];
    assert!(
        claude.starts_with("warn") && claude.contains("older versions ignore updatedToolOutput"),
        "{report}"
    );
    assert!(
        line(&report, "hook")[0].starts_with("warn"),
        "not registered: {report}"
    );

    let empty = sandbox.path("empty-path");
    fs::create_dir_all(&empty).unwrap();
    let report = stdout(&doctor(&sandbox, &empty));
    let claude = line(&report, "claude")[0];
    assert!(
        claude.starts_with("warn") && claude.contains("not on PATH"),
        "{report}"
    );
}

#[test]
fn doctor_reports_an_installed_model_that_cannot_load() {
    let sandbox = Sandbox::new();
    let model = sandbox.path("kompress/data/model");
    fs::create_dir_all(&model).unwrap();
    fs::write(model.join("config.json"), "{}").unwrap();
    fs::write(model.join("model.q8_0.gguf"), "not a gguf file").unwrap();
    let report = stdout(&doctor(&sandbox, &sandbox.path("project")));
    let model_line = line(&report, "model")[0];
    assert!(
        model_line.starts_with("warn")
            && model_line.contains("rules-only")
            && model_line.contains("cannot be loaded"),
        "{report}"
    );
    assert!(model_line.contains(model.to_str().unwrap()), "{report}");
}

#[test]
fn doctor_fails_on_a_stale_registration_and_a_bad_config() {
    let sandbox = Sandbox::new();
    let settings = sandbox.path("home/.claude/settings.json");
    fs::create_dir_all(settings.parent().unwrap()).unwrap();
    fs::write(
        &settings,
        r#"{"hooks": {"PostToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/gone/kompress hook"}]}]}}"#,
    )
    .unwrap();
    let output = doctor(&sandbox, &sandbox.path("project"));
    assert_fails(&output);
    let report = stdout(&output);
    assert!(line(&report, "hook")[0].starts_with("FAIL"), "{report}");
    assert!(
        line(&report, "hook")[1]
            .contains("run `kompress init` again to add PreToolUse and SessionStart"),
        "{report}"
    );
    assert!(
        stderr(&output).contains("1 check(s) failed"),
        "{}",
        stderr(&output)
    );

    fs::remove_file(&settings).unwrap();
    let config = sandbox.path("kompress/config/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(&config, "min_char = 5\n").unwrap();
    let output = doctor(&sandbox, &sandbox.path("project"));
    assert_fails(&output);
    assert!(
        line(&stdout(&output), "config")[0].starts_with("FAIL"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn doctor_asks_an_older_install_to_run_init_again() {
    let sandbox = Sandbox::new();
    let settings = sandbox.path("home/.claude/settings.json");
    fs::create_dir_all(settings.parent().unwrap()).unwrap();
    fs::write(
        &settings,
        text(&json!({"hooks": {"PostToolUse": [our_group("PostToolUse", &expected_command())]}})),
    )
    .unwrap();
    let output = doctor(&sandbox, &sandbox.path("project"));
    assert_ok(&output);
    let report = stdout(&output);
    let hook = line(&report, "hook");
    assert_eq!(hook.len(), 2, "{report}");
    assert!(
        hook[0].starts_with("ok") && hook[0].contains(": PostToolUse: `"),
        "{report}"
    );
    assert!(
        hook[1].starts_with("warn")
            && hook[1].contains("PreToolUse (Bash), SessionStart (compact) not registered")
            && hook[1].ends_with("run `kompress init` again to add PreToolUse and SessionStart"),
        "{report}"
    );

    // Registered in the project file, the other events count as well.
    let project = sandbox.path("project/.claude/settings.json");
    fs::create_dir_all(project.parent().unwrap()).unwrap();
    let mut hooks = full_hooks(&expected_command());
    hooks.as_object_mut().unwrap().shift_remove("PostToolUse");
    fs::write(&project, text(&json!({ "hooks": hooks }))).unwrap();
    let report = stdout(&doctor(&sandbox, &sandbox.path("project")));
    let hook = line(&report, "hook");
    assert_eq!(hook.len(), 2, "{report}");
    assert!(hook.iter().all(|l| l.starts_with("ok")), "{report}");

    // After `kompress init`, one line.
    fs::remove_file(&project).unwrap();
    assert_ok(&sandbox.run(&["init"]));
    let report = stdout(&doctor(&sandbox, &sandbox.path("project")));
    let hook = line(&report, "hook");
    assert_eq!(hook.len(), 1, "{report}");
    assert!(hook[0].starts_with("ok"), "{report}");
}

#[test]
fn doctor_reports_an_unreadable_settings_file() {
    let sandbox = Sandbox::new();
    let settings = sandbox.path("project/.claude/settings.json");
    fs::create_dir_all(settings.parent().unwrap()).unwrap();
    fs::write(&settings, "{ // comment\n}").unwrap();
    let output = doctor(&sandbox, &sandbox.path("project"));
    assert_ok(&output);
    let report = stdout(&output);
    assert!(
        line(&report, "hook")
            .iter()
            .any(|l| l.starts_with("warn") && l.contains("line 1")),
        "{report}"
    );
}
