//! The PostToolUse hook on arbitrary payloads.
//!
//! Every input is used twice:
//! 1. as raw bytes handed to `hook::handle` (default `Config`, a far deadline, no scorer);
//! 2. through `arbitrary`, as a structured Bash, Grep or MCP payload whose texts are
//!    built from runs of realistic and arbitrary lines, so the pipeline has something to
//!    compress.
//!
//! Checks: no panic; a reply is JSON with `hookEventName` = `PostToolUse`; the updated
//! tool output has the original's shape (`kompress::eval::check_shape`); every replaced
//! text saves tokens; a replaced Bash `stdout` or MCP string is shorter than the original.
//!
//! Payloads naming a `persistedOutputPath` are skipped: the hook would read that file.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use kompress::config::Config;
use kompress::eval::check_shape;
use kompress::hook::{self, Reply};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

static CONFIG: LazyLock<Config> = LazyLock::new(Config::default);

/// Texts stay under this many bytes, to keep executions fast.
const MAX_TEXT: usize = 16 * 1024;

const LINES: &[&str] = &[
    "Traceback (most recent call last):",
    "  File \"/usr/lib/python3.11/site-packages/django/core/handlers/base.py\", line 197, in _get_response",
    "    response = wrapped_callback(request, *callback_args, **callback_kwargs)",
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    "KeyError: 'user_id'",
    "tests/test_models.py::TestUser::test_create PASSED                       [ 12%]",
    "tests/test_models.py::TestUser::test_delete FAILED                       [ 25%]",
    "test result: FAILED. 41 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
    "test parser::tests::round_trip ... ok",
    "   Compiling serde v1.0.228",
    "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 3.21s",
    "warning: unused variable: `x`",
    "error[E0308]: mismatched types",
    "src/lib.rs:42:    let value = parse(input)?;",
    "./src/components/Button.tsx",
    "./node_modules/react/index.js",
    "drwxr-xr-x  5 user staff   160 Mar  3 12:01 src",
    "-rw-r--r--  1 user staff  1024 Mar  3 12:01 Cargo.toml",
    "\u{1b}[32m✓\u{1b}[0m renders the button (12 ms)",
    "Downloading numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl (18.2 MB)",
    "  45%|████▌     | 450/1000 [00:02<00:02, 210.5it/s]\r  46%|████▌     | 460/1000",
    "{\"id\": 1, \"name\": \"alpha\", \"tags\": [\"a\", \"b\"]}",
    "  \"login\": \"octocat\",",
    "",
    "    ",
    "diff --git a/src/main.rs b/src/main.rs",
    "@@ -1,4 +1,5 @@",
    "+    println!(\"hello\");",
];

#[derive(Arbitrary, Debug)]
enum Piece {
    Raw(String),
    Line(u8),
}

#[derive(Arbitrary, Debug)]
struct Run {
    piece: Piece,
    times: u8,
}

/// A text: runs of lines, each repeated 1–8 times.
#[derive(Arbitrary, Debug)]
struct Text {
    runs: Vec<Run>,
    final_newline: bool,
}

impl Text {
    fn render(&self) -> String {
        let mut out = String::new();
        for run in &self.runs {
            let line = match &run.piece {
                Piece::Raw(s) => s.as_str(),
                Piece::Line(i) => LINES[*i as usize % LINES.len()],
            };
            for _ in 0..=(run.times % 8) {
                if out.len() + line.len() + 1 > MAX_TEXT {
                    return out;
                }
                out.push_str(line);
                out.push('\n');
            }
        }
        if !self.final_newline && out.ends_with('\n') {
            out.pop();
        }
        out
    }
}

#[derive(Arbitrary, Debug)]
enum GrepMode {
    Content,
    FilesWithMatches,
    Count,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Block {
    Text(Text),
    Image(String),
    Other { kind: String, text: String },
}

impl Block {
    fn value(&self) -> Value {
        match self {
            Block::Text(t) => json!({"type": "text", "text": t.render()}),
            Block::Image(data) => json!({"type": "image", "data": data, "mimeType": "image/png"}),
            Block::Other { kind, text } => json!({"type": kind, "text": text}),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum McpResponse {
    String(Text),
    Blocks(Vec<Block>),
    Content {
        content: Vec<Block>,
        is_error: Option<bool>,
    },
    ContentString(Text),
}

#[derive(Arbitrary, Debug)]
enum Shape {
    Bash {
        command: Option<String>,
        stdout: Text,
        stderr: String,
        interrupted: bool,
        is_image: Option<bool>,
    },
    Grep {
        mode: Option<GrepMode>,
        content: Option<Text>,
        filenames: Option<Text>,
        num_files: u16,
    },
    Mcp {
        name: String,
        response: McpResponse,
    },
}

#[derive(Arbitrary, Debug)]
struct Payload {
    event: Option<bool>,
    session: Option<String>,
    shape: Shape,
}

impl Payload {
    /// `(tool_name, payload)`.
    fn build(&self) -> (String, Value) {
        let (tool, input, response) = match &self.shape {
            Shape::Bash {
                command,
                stdout,
                stderr,
                interrupted,
                is_image,
            } => {
                let mut response = json!({"stdout": stdout.render(), "stderr": stderr,
                                          "interrupted": interrupted});
                if let Some(image) = is_image {
                    response["isImage"] = json!(image);
                }
                let input = match command {
                    Some(c) => json!({"command": c, "description": ""}),
                    None => json!({}),
                };
                ("Bash".to_string(), input, response)
            }
            Shape::Grep {
                mode,
                content,
                filenames,
                num_files,
            } => {
                let mut response = json!({"numFiles": num_files});
                let mode = match mode {
                    Some(GrepMode::Content) => Some("content".to_string()),
                    Some(GrepMode::FilesWithMatches) => Some("files_with_matches".to_string()),
                    Some(GrepMode::Count) => Some("count".to_string()),
                    Some(GrepMode::Other(s)) => Some(s.clone()),
                    None => None,
                };
                if let Some(mode) = &mode {
                    response["mode"] = json!(mode);
                }
                if let Some(content) = content {
                    response["content"] = json!(content.render());
                }
                let names: Vec<String> = filenames
                    .as_ref()
                    .map(|t| t.render().lines().map(str::to_string).collect())
                    .unwrap_or_default();
                response["filenames"] = json!(names);
                let input = json!({"pattern": "x", "output_mode": mode});
                ("Grep".to_string(), input, response)
            }
            Shape::Mcp { name, response } => {
                let response = match response {
                    McpResponse::String(t) => json!(t.render()),
                    McpResponse::Blocks(blocks) => {
                        Value::Array(blocks.iter().map(Block::value).collect())
                    }
                    McpResponse::Content { content, is_error } => {
                        let mut v = json!({
                            "content": content.iter().map(Block::value).collect::<Vec<_>>()
                        });
                        if let Some(e) = is_error {
                            v["isError"] = json!(e);
                        }
                        v
                    }
                    McpResponse::ContentString(t) => json!({"content": t.render()}),
                };
                (format!("mcp__{name}"), json!({}), response)
            }
        };
        let mut payload = json!({"tool_name": tool, "tool_input": input,
                                 "tool_response": response});
        if let Some(post) = self.event {
            payload["hook_event_name"] = json!(if post { "PostToolUse" } else { "PreToolUse" });
        }
        if let Some(session) = &self.session {
            payload["session_id"] = json!(session);
        }
        (tool, payload)
    }
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// The checks on one reply to `payload`.
fn check_reply(reply: &Reply, payload: &Value) {
    let out: Value = serde_json::from_str(&reply.json).expect("reply is JSON");
    let specific = &out["hookSpecificOutput"];
    assert_eq!(specific["hookEventName"], "PostToolUse");
    let updated = &specific["updatedToolOutput"];
    let tool = payload["tool_name"].as_str().unwrap_or("");
    assert_eq!(reply.tool_name, tool);
    let original = &payload["tool_response"];
    if let Err(e) = check_shape(tool, original, updated) {
        panic!("shape changed: {e}\noriginal: {original}\nupdated: {updated}");
    }
    assert!(
        !reply.compressed.is_empty(),
        "a reply without a compressed text"
    );
    for c in &reply.compressed {
        assert!(c.tokens_out < c.tokens_in, "tokens grew");
    }
    for o in &reply.originals {
        assert!(o.tokens_out < o.tokens_in, "tokens grew");
    }
    let shorter = |a: &Value, b: &Value| {
        if let (Some(a), Some(b)) = (a.as_str(), b.as_str()) {
            assert!(
                b.len() < a.len(),
                "text grew {} -> {} bytes",
                a.len(),
                b.len()
            );
        }
    };
    if tool == "Bash" {
        shorter(&original["stdout"], &updated["stdout"]);
    } else if tool.starts_with("mcp__") {
        shorter(original, updated);
    }
}

/// True when handling `payload` would read a file.
fn reads_a_file(payload: &Value) -> bool {
    payload
        .get("tool_response")
        .and_then(|r| r.get("persistedOutputPath"))
        .is_some()
}

fuzz_target!(|data: &[u8]| {
    // 1. Raw bytes.
    if let Ok(payload) = serde_json::from_slice::<Value>(data) {
        if !reads_a_file(&payload) {
            if let Ok(Some(reply)) = hook::handle(data, &CONFIG, None, later()) {
                check_reply(&reply, &payload);
            }
        }
    } else {
        // Not JSON: the hook must say so, not panic, and print nothing.
        assert!(hook::handle(data, &CONFIG, None, later()).is_err());
    }

    // 2. A structured payload.
    let mut u = Unstructured::new(data);
    let Ok(structured) = Payload::arbitrary(&mut u) else {
        return;
    };
    let (_, payload) = structured.build();
    let bytes = serde_json::to_vec(&payload).expect("serializable");
    match hook::handle(&bytes, &CONFIG, None, later()) {
        Ok(Some(reply)) => check_reply(&reply, &payload),
        Ok(None) => {}
        Err(e) => panic!("a well-formed payload failed: {e:#}"),
    }
});
