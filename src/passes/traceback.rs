//! Stack traces: drop column decoration and fold interpreter-internal frames.
//!
//! 1. Python ≥ 3.11 caret lines. Under the source line of a frame, Python prints a line
//!    of `^` and `~` that points at the columns of the failing expression:
//!
//!    ```text
//!      File "/testbed/django/db/utils.py", line 214, in __getitem__
//!        backend = load_backend(db['ENGINE'])
//!                  ^^^^^^^^^^^^^^^^^^^^^^^^^^
//!    ```
//!
//!    A line made only of spaces, tabs, `^` and `~` (at least one `^`), indented at least
//!    as deep as the line above it, is dropped when that line is a source line (indented
//!    deeper than the frame) directly under a frame line `File "…", line N, in X` (or
//!    pytest's short form `path.py:N: in X`). The frame's file and line stay. Like the
//!    escape sequences the ANSI pass strips, these lines are pure decoration, so **no
//!    marker** is written for them. The caret under a `SyntaxError` stays: its frame has
//!    no `, in X`, and there the column is the message.
//! 2. Runs of at least 2 consecutive frames of interpreter machinery fold into one marker,
//!    indented like the frames, when the marker is shorter than the run:
//!    - Python's frozen import system and `-m` runner, each frame with its source and caret
//!      lines if any: `File "<frozen importlib._bootstrap>", line 1204, in _gcd_import`
//!      (also `importlib._bootstrap_external`, `zipimport`, `runpy`) →
//!      `[kompress: 6 frozen importlib frames omitted]`. Other frozen modules
//!      (`<frozen posixpath>`, `<frozen os>`) are ordinary library code and often where
//!      the error was raised: they stay.
//!    - Node: `at f (node:internal/…:1:2)`, `at node:internal/…`, and the pre-16
//!      `internal/….js:1:2` → `[kompress: 4 node internal frames omitted]`.
//!    - JVM: `at java.base/…`, `at jdk.internal.…`, `at sun.…` →
//!      `[kompress: 3 JDK internal frames omitted]`.
//!
//!    Node and JVM traces list the innermost frame first, right under the exception: when
//!    a run starts there, its first frame (where the error was thrown) stays and only the
//!    rest may fold.
//!
//! Repeated frames (a `RecursionError`) are the repeats pass's job, not this one's.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use super::lines::{self, Line, Out};
use super::pattern::Pattern;

// ASCII classes (`[[:word:]]`, `[[:space:]]`, `[0-9]`, `(?-u:\b)`): the Unicode ones cost
// ms to compile on every hook call that reaches these patterns (see `crate::domain`).
/// A Python frame line: `  File "path", line 12, in name`.
static PY_FRAME: Pattern = Pattern::new(r#"^[ \t]*File ".*", line [0-9]+, in \S.*$"#);

/// pytest's short traceback frame: `django/db/utils.py:219: in __iter__`.
static PYTEST_FRAME: Pattern = Pattern::new(r"^\S+:[0-9]+: in \S+$");

/// A frame of Python's frozen import system or `-m` runner; captures the module.
static FROZEN_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^[ \t]*File "<frozen (importlib[[:word:].]*|zipimport|runpy)>", line [0-9]+, in \S.*$"#,
    )
    .expect("valid regex")
});

/// A Node frame inside Node's own code.
static NODE_FRAME: Pattern = Pattern::new(r"^[ \t]+at (?:async )?(?:[^()]* \()?(?:node:)?internal/[^[:space:]()]+:[0-9]+:[0-9]+\)?$");

/// Any JVM or Node frame line (`at x (…)`), to tell where a trace's frames begin.
static AT_FRAME: Pattern = Pattern::new(r"^[ \t]+at \S");

/// A JVM frame inside the JDK.
static JDK_FRAME: Pattern = Pattern::new(r"^[ \t]+at (?:java\.base(?:@[[:word:].-]+)?/|jdk\.internal\.|sun\.)[[:word:]$.<>/-]+\([^()]*\)$");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Frozen,
    Node,
    Jdk,
}

fn internal_frame(body: &str) -> Option<Kind> {
    let t = body.trim_start_matches([' ', '\t']);
    if t.starts_with("File \"<frozen ") {
        FROZEN_FRAME.is_match(body).then_some(Kind::Frozen)
    } else if !t.starts_with("at ") {
        None
    } else if NODE_FRAME.is_match(body) {
        Some(Kind::Node)
    } else if JDK_FRAME.is_match(body) {
        Some(Kind::Jdk)
    } else {
        None
    }
}

/// A frame line under which Python prints a source line and maybe a caret line.
fn caret_frame(body: &str) -> bool {
    let t = body.trim_start_matches([' ', '\t']);
    if t.starts_with("File \"") {
        PY_FRAME.is_match(body)
    } else {
        body.contains(": in ") && PYTEST_FRAME.is_match(body)
    }
}

/// A line of only spaces, tabs, `^` and `~`, with at least one `^`.
fn is_caret(body: &str) -> bool {
    body.contains('^') && body.chars().all(|c| matches!(c, ' ' | '\t' | '^' | '~'))
}

/// `line` is the source line printed under a frame line `frame`.
fn is_source(frame: &Line<'_>, line: &Line<'_>) -> bool {
    !line.is_blank()
        && line.indent().len() > frame.indent().len()
        && !super::is_marker(line.body)
        && !caret_frame(line.body)
        && internal_frame(line.body).is_none()
}

/// `lines[i]` is a caret line under the source line of a frame.
fn droppable_caret(lines: &[Line<'_>], i: usize) -> bool {
    i >= 2
        && is_caret(lines[i].body)
        && lines[i].indent().len() >= lines[i - 1].indent().len()
        && caret_frame(lines[i - 2].body)
        && is_source(&lines[i - 2], &lines[i - 1])
}

/// The frozen module of a frame, as the marker names it (`importlib`, `runpy`…).
fn frozen_module(body: &str) -> &str {
    let name = FROZEN_FRAME
        .captures(body)
        .and_then(|c| c.get(1))
        .map_or("", |m| m.as_str());
    if name.starts_with("importlib") {
        "importlib"
    } else {
        name
    }
}

/// A run of internal frames starting at `start`: its end (exclusive) and frame count.
fn run_end(lines: &[Line<'_>], start: usize, kind: Kind) -> (usize, usize) {
    let mut j = start;
    let mut frames = 0;
    while j < lines.len() && internal_frame(lines[j].body) == Some(kind) {
        let frame = &lines[j];
        frames += 1;
        j += 1;
        if kind == Kind::Frozen && j < lines.len() && is_source(frame, &lines[j]) {
            j += 1;
            if j < lines.len()
                && is_caret(lines[j].body)
                && lines[j].indent().len() >= lines[j - 1].indent().len()
            {
                j += 1;
            }
        }
    }
    (j, frames)
}

fn marker_msg(lines: &[Line<'_>], kind: Kind, frames: usize) -> String {
    let what = match kind {
        Kind::Node => "node internal".to_string(),
        Kind::Jdk => "JDK internal".to_string(),
        Kind::Frozen => {
            let mut modules: Vec<&str> = Vec::new();
            for line in lines {
                if internal_frame(line.body) == Some(Kind::Frozen) {
                    let module = frozen_module(line.body);
                    if !modules.contains(&module) {
                        modules.push(module);
                    }
                }
            }
            format!("frozen {}", modules.join("/"))
        }
    };
    format!("{frames} {what} frames omitted")
}

pub fn apply(text: &str) -> Cow<'_, str> {
    if !text.contains('^')
        && !text.contains("<frozen ")
        && !text.contains("internal")
        && !text.contains("at java.base")
        && !text.contains("at sun.")
    {
        return Cow::Borrowed(text);
    }
    let lines = lines::split(text);
    let n = lines.len();
    let mut out: Option<Out> = None;
    let start_out = |out: &mut Option<Out>, upto: usize| {
        if out.is_none() {
            let mut o = Out::new(text);
            lines[..upto].iter().for_each(|l| o.line(l));
            *out = Some(o);
        }
    };
    let mut i = 0;
    while i < n {
        if let Some(kind) = internal_frame(lines[i].body) {
            // The innermost Node/JVM frame, right under the exception, stays.
            let keep_first =
                kind != Kind::Frozen && (i == 0 || !AT_FRAME.is_match(lines[i - 1].body));
            let from = if keep_first { i + 1 } else { i };
            let (end, frames) = run_end(&lines, from, kind);
            if frames >= 2 {
                let run = &lines[from..end];
                let indent = run[0].indent();
                let msg = marker_msg(run, kind, frames);
                let old: usize = run.iter().map(Line::len).sum();
                let eol = lines::eol_of(run);
                if indent.len() + super::marker(&msg).len() + eol.len() < old {
                    start_out(&mut out, i);
                    let o = out.as_mut().expect("started");
                    lines[i..from].iter().for_each(|l| o.line(l));
                    o.marker(indent, &msg, eol);
                    i = end;
                    continue;
                }
            }
        } else if droppable_caret(&lines, i) {
            start_out(&mut out, i);
            i += 1;
            continue;
        }
        if let Some(o) = out.as_mut() {
            o.line(&lines[i]);
        }
        i += 1;
    }
    match out {
        Some(out) => Cow::Owned(out.finish()),
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dev-000021: a Django import through importlib, ending in a `SyntaxError`.
    const DJANGO_IMPORT: &str = r#"Traceback (most recent call last):
  File "/testbed/test_signature.py", line 42, in <module>
    conn = connections[alias]
           ~~~~~~~~~~~^^^^^^^
  File "/testbed/django/db/utils.py", line 214, in __getitem__
    backend = load_backend(db['ENGINE'])
              ^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/testbed/django/db/utils.py", line 111, in load_backend
    return import_module('%s.base' % backend_name)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/opt/miniconda3/lib/python3.11/importlib/__init__.py", line 126, in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "<frozen importlib._bootstrap>", line 1204, in _gcd_import
  File "<frozen importlib._bootstrap>", line 1176, in _find_and_load
  File "<frozen importlib._bootstrap>", line 1147, in _find_and_load_unlocked
  File "<frozen importlib._bootstrap>", line 690, in _load_unlocked
  File "<frozen importlib._bootstrap_external>", line 940, in exec_module
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/testbed/django/db/backends/sqlite3/base.py", line 29, in <module>
    from .creation import DatabaseCreation                      # isort:skip
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/testbed/django/db/backends/sqlite3/creation.py", line 87
    os.remove(test_database_name)    def test_db_signature(self):
                                     ^^^
SyntaxError: invalid syntax
"#;

    #[test]
    fn django_import_trace() {
        let out = apply(DJANGO_IMPORT);
        assert_eq!(
            out,
            r#"Traceback (most recent call last):
  File "/testbed/test_signature.py", line 42, in <module>
    conn = connections[alias]
  File "/testbed/django/db/utils.py", line 214, in __getitem__
    backend = load_backend(db['ENGINE'])
  File "/testbed/django/db/utils.py", line 111, in load_backend
    return import_module('%s.base' % backend_name)
  File "/opt/miniconda3/lib/python3.11/importlib/__init__.py", line 126, in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
  [kompress: 6 frozen importlib frames omitted]
  File "/testbed/django/db/backends/sqlite3/base.py", line 29, in <module>
    from .creation import DatabaseCreation                      # isort:skip
  File "/testbed/django/db/backends/sqlite3/creation.py", line 87
    os.remove(test_database_name)    def test_db_signature(self):
                                     ^^^
SyntaxError: invalid syntax
"#
        );
        // Every kept line is an input line, unchanged and in order.
        let mut input = DJANGO_IMPORT.lines();
        for line in out.lines().filter(|l| !super::super::is_marker(l)) {
            assert!(input.any(|l| l == line), "{line:?} altered or reordered");
        }
    }

    #[test]
    fn runpy_frames_fold_and_user_frames_stay() {
        // dev-000078: `python -m django`.
        let text = r#"Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "<frozen runpy>", line 88, in _run_code
  File "/testbed/django/__main__.py", line 9, in <module>
    management.execute_from_command_line()
  File "/testbed/django/core/management/__init__.py", line 401, in execute_from_command_line
    utility.execute()
ModuleNotFoundError: No module named 'pytz'
"#;
        assert_eq!(
            apply(text),
            r#"Traceback (most recent call last):
  [kompress: 2 frozen runpy frames omitted]
  File "/testbed/django/__main__.py", line 9, in <module>
    management.execute_from_command_line()
  File "/testbed/django/core/management/__init__.py", line 401, in execute_from_command_line
    utility.execute()
ModuleNotFoundError: No module named 'pytz'
"#
        );
    }

    #[test]
    fn frozen_frames_with_source_and_mixed_modules() {
        let text = "Traceback (most recent call last):\n  File \"<frozen runpy>\", line 198, in _run_module_as_main\n  File \"<frozen importlib._bootstrap>\", line 1204, in _gcd_import\n    source of the frame\n    ^^^^^^\n  File \"<frozen zipimport>\", line 10, in load_module\nImportError: x\n";
        assert_eq!(
            apply(text),
            "Traceback (most recent call last):\n  [kompress: 3 frozen runpy/importlib/zipimport frames omitted]\nImportError: x\n"
        );
    }

    #[test]
    fn single_frozen_frame_and_other_frozen_modules_stay() {
        let one = "Traceback (most recent call last):\n  File \"/testbed/a.py\", line 1, in <module>\n    import b\n  File \"<frozen importlib._bootstrap>\", line 1140, in _find_and_load_unlocked\nModuleNotFoundError: No module named 'b'\n";
        assert!(matches!(apply(one), Cow::Borrowed(_)));
        // dev-000115: the error is raised inside posixpath; those frames say where.
        let posix = "  File \"<frozen posixpath>\", line 416, in realpath\n  File \"<frozen posixpath>\", line 451, in _joinrealpath\nValueError: embedded null byte\n";
        assert!(matches!(apply(posix), Cow::Borrowed(_)));
    }

    #[test]
    fn pytest_short_frames_lose_their_carets() {
        // dev-000909: pytest collection error, short traceback.
        let text = "django/db/utils.py:219: in __iter__\n    return iter(self.databases)\n                ^^^^^^^^^^^^^^\ndjango/utils/functional.py:48: in __get__\n    res = instance.__dict__[self.name] = self.func(instance)\n                                         ^^^^^^^^^^^^^^^^^^^\nE   django.core.exceptions.ImproperlyConfigured: Requested setting DATABASES\n";
        assert_eq!(
            apply(text),
            "django/db/utils.py:219: in __iter__\n    return iter(self.databases)\ndjango/utils/functional.py:48: in __get__\n    res = instance.__dict__[self.name] = self.func(instance)\nE   django.core.exceptions.ImproperlyConfigured: Requested setting DATABASES\n"
        );
    }

    #[test]
    fn carets_elsewhere_stay() {
        for text in [
            // SyntaxError: the frame has no `, in X`.
            "  File \"<string>\", line 1\n    import functools; def f(): pass\n                      ^^^\nSyntaxError: invalid syntax\n",
            // Not under a frame's source line.
            "Code: result = 123.format(\"test\")\n    module = astroid.parse(code)\n             ^^^^^^^^^^^^^^^^^^^\n",
            // Directly under the frame line.
            "  File \"a.py\", line 3, in f\n    ^^^^\n",
            // Output interleaved between frame and source (dev-000594).
            "  File \"/s.py\", line 503, in apps\n=== Testing ===\n    return StateApps()\n           ^^^^^^^^^^^\n",
            // A markdown-ish underline, a regex, a caret with other characters.
            "  File \"a.py\", line 3, in f\n    x = 1\n    ^^^ here\n",
            "x\n^\n^^\n",
            "",
            "^",
        ] {
            assert!(matches!(apply(text), Cow::Borrowed(_)), "{text:?}");
        }
    }

    #[test]
    fn node_internal_frames_fold() {
        let text = "/app/src/index.js:3\nconst x = require('./missing');\n          ^\n\nError: Cannot find module './missing'\nRequire stack:\n- /app/src/index.js\n    at Module._resolveFilename (node:internal/modules/cjs/loader:1140:15)\n    at Module._load (node:internal/modules/cjs/loader:981:27)\n    at Module.require (node:internal/modules/cjs/loader:1231:19)\n    at require (node:internal/modules/helpers:177:18)\n    at Object.<anonymous> (/app/src/index.js:3:11)\n    at Module._compile (node:internal/modules/cjs/loader:1364:14)\n    at Module._extensions..js (node:internal/modules/cjs/loader:1422:10)\n    at Module.load (node:internal/modules/cjs/loader:1203:32)\n    at Module._load (node:internal/modules/cjs/loader:1019:12)\n    at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:128:12)\n    at node:internal/main/run_main_module:28:49 {\n  code: 'MODULE_NOT_FOUND',\n  requireStack: [ '/app/src/index.js' ]\n}\n\nNode.js v18.20.4\n";
        assert_eq!(
            apply(text),
            "/app/src/index.js:3\nconst x = require('./missing');\n          ^\n\nError: Cannot find module './missing'\nRequire stack:\n- /app/src/index.js\n    at Module._resolveFilename (node:internal/modules/cjs/loader:1140:15)\n    [kompress: 3 node internal frames omitted]\n    at Object.<anonymous> (/app/src/index.js:3:11)\n    [kompress: 5 node internal frames omitted]\n    at node:internal/main/run_main_module:28:49 {\n  code: 'MODULE_NOT_FOUND',\n  requireStack: [ '/app/src/index.js' ]\n}\n\nNode.js v18.20.4\n"
        );
        // Pre-16 paths, and the async tail of a rejection.
        let text = "TypeError: x is not a function\n    at main (/app/a.js:2:3)\n    at Module._compile (internal/modules/cjs/loader.js:1063:30)\n    at Object.Module._extensions..js (internal/modules/cjs/loader.js:1092:10)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n    at async run (/app/a.js:9:1)\n";
        assert_eq!(
            apply(text),
            "TypeError: x is not a function\n    at main (/app/a.js:2:3)\n    [kompress: 3 node internal frames omitted]\n    at async run (/app/a.js:9:1)\n"
        );
    }

    #[test]
    fn jdk_internal_frames_fold() {
        let text = "Exception in thread \"main\" java.lang.reflect.InvocationTargetException\n\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke(NativeMethodAccessorImpl.java:77)\n\tat java.base/jdk.internal.reflect.DelegatingMethodAccessorImpl.invoke(DelegatingMethodAccessorImpl.java:43)\n\tat java.base/java.lang.reflect.Method.invoke(Method.java:568)\n\tat com.example.Runner.main(Runner.java:21)\nCaused by: java.lang.NumberFormatException: For input string: \"abc\"\n\tat java.base/java.lang.NumberFormatException.forInputString(NumberFormatException.java:67)\n\tat java.base/java.lang.Integer.parseInt(Integer.java:668)\n\tat java.base/java.lang.Integer.parseInt(Integer.java:786)\n\tat com.example.App.parse(App.java:12)\n\t... 5 more\n";
        assert_eq!(
            apply(text),
            "Exception in thread \"main\" java.lang.reflect.InvocationTargetException\n\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n\t[kompress: 3 JDK internal frames omitted]\n\tat com.example.Runner.main(Runner.java:21)\nCaused by: java.lang.NumberFormatException: For input string: \"abc\"\n\tat java.base/java.lang.NumberFormatException.forInputString(NumberFormatException.java:67)\n\t[kompress: 2 JDK internal frames omitted]\n\tat com.example.App.parse(App.java:12)\n\t... 5 more\n"
        );
        // Java 8 `sun.reflect` frames in the middle of a stack.
        let text = "\tat com.example.A.run(A.java:3)\n\tat sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n\tat sun.reflect.NativeMethodAccessorImpl.invoke(NativeMethodAccessorImpl.java:62)\n\tat org.junit.runners.model.FrameworkMethod$1.runReflectiveCall(FrameworkMethod.java:50)\n";
        assert_eq!(
            apply(text),
            "\tat com.example.A.run(A.java:3)\n\t[kompress: 2 JDK internal frames omitted]\n\tat org.junit.runners.model.FrameworkMethod$1.runReflectiveCall(FrameworkMethod.java:50)\n"
        );
        // One internal frame after the thrown one: nothing to fold.
        let text = "java.lang.NullPointerException\n\tat java.base/java.util.Objects.requireNonNull(Objects.java:209)\n\tat java.base/java.util.Optional.of(Optional.java:113)\n\tat com.example.A.run(A.java:3)\n";
        assert!(matches!(apply(text), Cow::Borrowed(_)));
    }

    #[test]
    fn endings_and_final_newline_status() {
        let crlf = DJANGO_IMPORT.replace('\n', "\r\n");
        let out = apply(&crlf);
        assert_eq!(out, apply(DJANGO_IMPORT).replace('\n', "\r\n"));
        let trimmed = DJANGO_IMPORT.trim_end();
        let out = apply(trimmed);
        assert!(out.ends_with("SyntaxError: invalid syntax"));
        assert!(out.len() < trimmed.len());
        // The run and the caret line last, without a final newline.
        let text = "  File \"a.py\", line 1, in f\n    g()\n    ^^^";
        assert_eq!(apply(text), "  File \"a.py\", line 1, in f\n    g()");
        let text = "x\n  File \"<frozen runpy>\", line 198, in _run_module_as_main\n  File \"<frozen runpy>\", line 88, in _run_code";
        assert_eq!(
            apply(text),
            "x\n  [kompress: 2 frozen runpy frames omitted]"
        );
        assert!(matches!(apply("no newline"), Cow::Borrowed(_)));
        assert!(matches!(apply("\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn corpus_error_traces_keep_their_facts() {
        use std::io::BufRead;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/training/data/dev.jsonl.gz");
        let Ok(file) = std::fs::File::open(path) else {
            return;
        };
        let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
        for line in reader.lines() {
            let record: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            let text = record["text"].as_str().unwrap_or("");
            let id = record["id"].as_str().unwrap_or("?");
            let out = apply(text);
            assert!(out.len() <= text.len(), "{id} grew");
            // Kept lines are input lines, in order; what went is carets and internal frames.
            let mut input = text.lines();
            for kept in out.lines() {
                if super::super::is_marker(kept) {
                    continue;
                }
                loop {
                    let dropped = input.next().unwrap_or_else(|| panic!("{id}: {kept:?}"));
                    if dropped == kept {
                        break;
                    }
                    let ok = is_caret(dropped)
                        || dropped.contains("<frozen ")
                        || dropped.starts_with("    ");
                    assert!(ok, "{id}: dropped {dropped:?}");
                }
            }
            // Exception lines and user frames all survive.
            for line in text.lines() {
                if PY_FRAME.is_match(line) && !line.contains("<frozen ") || line.contains("Error: ")
                {
                    assert!(out.contains(line), "{id}: lost {line:?}");
                }
            }
        }
    }

    /// 150,000 frames: a quadratic pass would not finish (no timing is asserted).
    #[test]
    fn huge_inputs_finish_and_fold() {
        let frame = "  File \"<frozen importlib._bootstrap>\", line 1204, in _gcd_import\n  File \"/a.py\", line 3, in f\n    g()\n    ^^^\n";
        let text = frame.repeat(50_000);
        let out = apply(&text);
        assert!(out.len() < text.len());
        let text =
            "    at Module._load (node:internal/modules/cjs/loader:981:27)\n".repeat(100_000);
        assert!(apply(&text).len() < 200);
    }
}
