//! Test-runner output: keep what failed and the summaries, count what passed.
//!
//! Recognised per-test lines that are folded (and counted):
//! - pytest: `path::test PASSED [ 40%]`, `SKIPPED`, `XFAIL`, xdist `[gw0] [ 10%] PASSED x`,
//!   `-rA` summary lines `PASSED path::test`, progress lines `tests/x.py ....s.. [ 40%]`
//!   (dots, `s` and `x` only);
//! - unittest, Django runtests, cargo/libtest: `name ... ok`, `... skipped 'why'`,
//!   `... ignored`, `... expected failure`, plus the `test_x (mod.Class)` line above a
//!   docstring line that ends in `... ok`; bare progress lines `.....s..` when the text
//!   has a `Ran N tests in` summary;
//! - go test: `--- PASS: Name (0.00s)`, `--- SKIP:`, and the `=== RUN/PAUSE/CONT Name`
//!   lines of tests that passed or were skipped;
//! - jest/vitest/mocha: `✓ name`, `√ name`, `○ skipped name`, `↓ name`, `PASS file`.
//!
//! The looser patterns only count with a runner's summary in the text, so an agent's own
//! script printing `✓ case: OK` or `Checking x ... ok` is left alone: `... ok` needs a
//! `Ran N tests` / `running N tests` / `test result:` line unless the line names itself
//! as a test (`test_x (mod.Class) ... ok`, `test path ... ok`); `✓`/`○` need jest's
//! `Tests:`, vitest's `Test Files` or mocha's `N passing (`.
//!
//! Everything else stays where it was: failing and erroring test lines (`... FAIL`,
//! `FAILED`, `--- FAIL`, `✕`, progress lines with `F` or `E`), tracebacks, assertion
//! diffs, panics, warnings, captured output, summaries, and any line the pass does not
//! recognise. The output is split into sections at section lines (`=====`, `-----`,
//! `running N tests`, `test result:`, `Ran N tests`, `OK`/`FAILED (…)`, go's
//! `ok`/`FAIL pkg`, jest's `Tests:`…); in each section with at least 3 folded tests, the
//! folded lines are replaced by one marker where the last of them was, such as
//! `[kompress: 212 passing tests omitted]` or
//! `[kompress: 40 passing, 3 skipped, 1 xfail tests omitted]`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::lines::{self, Line, Out};
use super::pattern::{Gated, Pattern};

/// What folding a line adds to its section's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: usize,
    skipped: usize,
    xfail: usize,
    /// go `=== RUN` / `=== PAUSE` / `=== CONT` lines.
    runs: usize,
    /// jest `PASS file` lines.
    files: usize,
    /// unittest `test_x (mod.Class)` lines above a docstring line.
    headers: usize,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.skipped += other.skipped;
        self.xfail += other.xfail;
        self.runs += other.runs;
        self.files += other.files;
        self.headers += other.headers;
    }

    fn tests(&self) -> usize {
        self.passed + self.skipped + self.xfail
    }

    fn is_empty(&self) -> bool {
        *self == Counts::default()
    }

    fn message(&self) -> String {
        let mut kinds = Vec::new();
        if self.passed > 0 {
            kinds.push(format!("{} passing", self.passed));
        }
        if self.skipped > 0 {
            kinds.push(format!("{} skipped", self.skipped));
        }
        if self.xfail > 0 {
            kinds.push(format!("{} xfail", self.xfail));
        }
        let mut items = Vec::new();
        if !kinds.is_empty() {
            let noun = if self.tests() == 1 { "test" } else { "tests" };
            items.push(format!("{} {noun}", kinds.join(", ")));
        }
        if self.files > 0 {
            items.push(format!("{} PASS file lines", self.files));
        }
        if self.runs > 0 {
            items.push(format!("{} \"=== RUN\" lines", self.runs));
        }
        format!("{} omitted", items.join(", "))
    }
}

fn passed(n: usize) -> Option<Counts> {
    Some(Counts {
        passed: n,
        ..Counts::default()
    })
}

fn skipped(n: usize) -> Option<Counts> {
    Some(Counts {
        skipped: n,
        ..Counts::default()
    })
}

fn xfail(n: usize) -> Option<Counts> {
    Some(Counts {
        xfail: n,
        ..Counts::default()
    })
}

// ASCII classes (`[[:word:]]`, `[[:space:]]`, `[0-9]`, `(?-u:\b)`): the Unicode ones cost
// ms to compile on every hook call that reaches these patterns (see `crate::domain`).
static DOTS_RESULT: LazyLock<Regex> = LazyLock::new(|| {
    // `name ... ok`, `name ... skipped 'why'`, `name ... ignored, why`, `... expected failure`
    Regex::new(r"^[[:space:]]*\S.*? \.\.\. (?:(ok)(?: \([0-9]+(?:\.[0-9]+)?m?s\))?|(skipped|skip|ignored)(?-u:\b).*|(expected failure))$")
        .expect("valid regex")
});

static PYTEST_RESULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:\[gw[0-9]+\] \[[[:space:]]*[0-9]+%\] (PASSED|SKIPPED|XFAIL) \S.*",
        r"|\S+::\S.*? (PASSED|SKIPPED|XFAIL)(?: \(.*\))?(?:[[:space:]]+\[[[:space:]]*[0-9]+%\])?",
        r"|(PASSED|SKIPPED|XFAIL) (?:\[[0-9]+\] )?\S.*)$"
    ))
    .expect("valid regex")
});

static PYTEST_PROGRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\S+\.py ([.sx]+)(?:[[:space:]]+\[[[:space:]]*[0-9]+%\])?|([.sx]+)[[:space:]]+\[[[:space:]]*[0-9]+%\])$")
        .expect("valid regex")
});

static GO_RESULT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[[:space:]]*--- (PASS|SKIP): (\S+)").expect("valid regex"));

static GO_RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[[:space:]]*=== (?:RUN|PAUSE|CONT|NAME)[[:space:]]+(\S+)[[:space:]]*$")
        .expect("valid regex")
});

static JS_FILE_PASS: Pattern = Pattern::new(r"^[[:space:]]*PASS[[:space:]]+\S+\.[[:word:]]+(?:[[:space:]].*)?$");

static UNITTEST_HEADER: Pattern = Pattern::new(r"^[[:word:]]+ \([[:word:].]+\)$");

/// A unittest or libtest summary somewhere in the text.
static UNITTEST_CONTEXT: Gated = Gated {
    needles: &["Ran ", "running ", "test result: "],
    pattern: Pattern::new(r"(?m)^(?:Ran [0-9]+ tests? in |running [0-9]+ tests?\r?$|test result: )"),
};

/// A jest, vitest or mocha summary somewhere in the text.
static JS_CONTEXT: Gated = Gated {
    needles: &["Tests:", "Test Suites:", "Test Files", " passing ("],
    pattern: Pattern::new(r"(?m)^[[:space:]]*(?:Tests:[[:space:]]+[0-9]|Test Suites:|Test Files[[:space:]]+[0-9]|[0-9]+ passing \()"),
};

/// A per-test `... ok` line that names itself as one without a summary around it:
/// unittest's `test_x (mod.Class)`, libtest's `test path`.
static NAMED_TEST: Pattern = Pattern::new(r"^(?:[[:word:]]+ \([[:word:].]+\)|test \S+) ");

/// Which summaries the text has: they make the looser line patterns safe to fold.
#[derive(Clone, Copy, Default)]
struct Context {
    /// `Ran N tests in`, `running N tests`, `test result:`.
    unittest: bool,
    /// jest's `Tests:`, vitest's `Test Files`, mocha's `N passing (`.
    js: bool,
}

static SECTION: Pattern = Pattern::new(concat!(
        r"^(?:={3,}[[:space:]]*$|={3,} .*={3,}[[:space:]]*$|-{5,}[[:space:]]*$|_{3,}",
        r"|[[:space:]]*running [0-9]+ tests?$|test result: |[[:space:]]*(?:Running|Doc-tests) |failures:$",
        r"|Ran [0-9]+ tests? in |OK(?-u:\b)|FAILED(?-u:\b)",
        r"|ok[[:space:]]+\S|(?:FAIL|PASS)(?:[[:space:]]|$)|\?[[:space:]]+\S+[[:space:]]+\[no test files\]",
        r"|(?:Tests|Test Suites|Snapshots|Time):",
        r")"
    ));

/// Whether `line` may be a [`GO_RESULT`] (which then need not be compiled for the others).
fn is_go_result(line: &str) -> bool {
    line.contains("--- PASS: ") || line.contains("--- SKIP: ")
}

/// What folding `body` would count, or `None` when the line stays.
fn classify(body: &str, ctx: Context, go_passed: &HashSet<&str>) -> Option<Counts> {
    let t = body.trim_end();
    if t.is_empty() || t.len() > 4000 {
        return None;
    }
    // (`tests/x.py ...   [ 40%]` has ` ... ` too: it is a pytest progress line, below.)
    if t.contains(" ... ")
        && let Some(caps) = DOTS_RESULT.captures(t)
    {
        if !ctx.unittest && !NAMED_TEST.is_match(t) {
            return None;
        }
        return if caps.get(1).is_some() {
            passed(1)
        } else if caps.get(2).is_some() {
            skipped(1)
        } else {
            xfail(1)
        };
    }
    if t.contains("PASSED") || t.contains("SKIPPED") || t.contains("XFAIL") {
        if let Some(caps) = PYTEST_RESULT.captures(t) {
            let word = (1..=3).find_map(|i| caps.get(i)).map(|m| m.as_str());
            return match word {
                Some("PASSED") => passed(1),
                Some("SKIPPED") => skipped(1),
                _ => xfail(1),
            };
        }
        return None;
    }
    let first = t.trim_start().chars().next()?;
    if matches!(first, '.' | 's' | 'x') || t.contains(".py ") {
        // The pattern needs one of these (and most lines starting `s` or `x` are code).
        let progress = if t.contains(".py ") || t.contains("%]") {
            PYTEST_PROGRESS.captures(t)
        } else {
            None
        };
        let dots = if let Some(caps) = progress {
            caps.get(1).or(caps.get(2)).map(|m| m.as_str())
        } else if ctx.unittest && t.bytes().all(|b| matches!(b, b'.' | b's' | b'x')) {
            Some(t)
        } else {
            None
        };
        if let Some(dots) = dots {
            return Some(Counts {
                passed: dots.bytes().filter(|&b| b == b'.').count(),
                skipped: dots.bytes().filter(|&b| b == b's').count(),
                xfail: dots.bytes().filter(|&b| b == b'x').count(),
                ..Counts::default()
            });
        }
    }
    match first {
        '✓' | '✔' | '√' if ctx.js => return passed(1),
        '○' | '↓' | '✎' if ctx.js => return skipped(1),
        '-' if is_go_result(t) => {
            let caps = GO_RESULT.captures(t)?;
            return if &caps[1] == "PASS" {
                passed(1)
            } else {
                skipped(1)
            };
        }
        '=' if ["=== RUN", "=== PAUSE", "=== CONT", "=== NAME"]
            .iter()
            .any(|w| t.contains(w)) =>
        {
            let caps = GO_RUN.captures(t)?;
            return go_passed.contains(&caps[1]).then(|| Counts {
                runs: 1,
                ..Counts::default()
            });
        }
        'P' if JS_FILE_PASS.is_match(t) => {
            return Some(Counts {
                files: 1,
                ..Counts::default()
            });
        }
        _ => {}
    }
    // A PASS/SKIP word somewhere else in a go-style line is not ours.
    None
}

pub fn apply(text: &str) -> Cow<'_, str> {
    let lines = lines::split(text);
    if lines.len() < 3 {
        return Cow::Borrowed(text);
    }
    let ctx = Context {
        unittest: UNITTEST_CONTEXT.is_match(text),
        js: JS_CONTEXT.is_match(text),
    };
    let go_passed: HashSet<&str> = lines
        .iter()
        .filter(|l| is_go_result(l.body))
        .filter_map(|l| GO_RESULT.captures(l.body))
        .filter_map(|c| c.get(2))
        .map(|m| m.as_str())
        .collect();
    let mut classes: Vec<Option<Counts>> = lines
        .iter()
        .map(|l| classify(l.body, ctx, &go_passed))
        .collect();
    let mut total = Counts::default();
    classes.iter().flatten().for_each(|c| total.add(*c));
    if total.tests() + total.runs + total.files < 3 {
        return Cow::Borrowed(text);
    }
    // `test_x (mod.Class)` above a docstring line that passed.
    for i in 0..lines.len() - 1 {
        if classes[i].is_none()
            && classes[i + 1].is_some_and(|c| c.passed + c.skipped + c.xfail == 1)
            && lines[i + 1].body.contains(" ... ")
            && UNITTEST_HEADER.is_match(lines[i].body.trim_end())
        {
            classes[i] = Some(Counts {
                headers: 1,
                ..Counts::default()
            });
        }
    }

    // Sections: split at section lines; fold each section's classified lines.
    let mut drop = vec![false; lines.len()];
    let mut markers: Vec<(usize, String)> = Vec::new();
    let mut start = 0;
    while start < lines.len() {
        let mut end = start;
        while end < lines.len() && (end == start || !is_section(&lines[end], &classes[end])) {
            end += 1;
        }
        fold_section(&lines, &classes, start..end, &mut drop, &mut markers);
        start = end;
    }
    if markers.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = Out::new(text);
    let mut next_marker = markers.iter().peekable();
    for (i, line) in lines.iter().enumerate() {
        if let Some((at, msg)) = next_marker.peek()
            && *at == i
        {
            out.marker("", msg, lines::eol_of(std::slice::from_ref(line)));
            next_marker.next();
            continue;
        }
        if !drop[i] {
            out.line(line);
        }
    }
    let out = out.finish();
    if out.len() < text.len() {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

fn is_section(line: &Line<'_>, class: &Option<Counts>) -> bool {
    class.is_none() && SECTION.is_match(line.body)
}

/// Mark the folded lines of `lines[range]` dropped and record its marker, when it has at
/// least 3 folded tests (or go `=== RUN` lines) and the marker is shorter than them.
fn fold_section(
    lines: &[Line<'_>],
    classes: &[Option<Counts>],
    range: std::ops::Range<usize>,
    drop: &mut [bool],
    markers: &mut Vec<(usize, String)>,
) {
    let mut counts = Counts::default();
    let mut bytes = 0;
    let mut last = None;
    for i in range.clone() {
        if let Some(c) = classes[i] {
            counts.add(c);
            bytes += lines[i].len();
            last = Some(i);
        }
    }
    let Some(last) = last else { return };
    if counts.is_empty() || counts.tests() + counts.runs + counts.files < 3 {
        return;
    }
    let msg = counts.message();
    if super::marker(&msg).len() + 2 >= bytes {
        return;
    }
    for i in range {
        if classes[i].is_some() {
            drop[i] = true;
        }
    }
    markers.push((last, msg));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_gates_never_hide_a_match() {
        let mut matched = 0;
        for (_, text) in crate::passes::invariants::corpus() {
            for gated in [&UNITTEST_CONTEXT, &JS_CONTEXT] {
                if gated.pattern.is_match(&text) {
                    matched += 1;
                    assert!(gated.may_match(&text), "{}", gated.pattern.source());
                }
            }
        }
        assert!(matched > 0);
    }
    use crate::protect;

    /// Every line of `text` that names a failure or error must survive unchanged.
    fn keeps_failures(text: &str, out: &str) {
        let kept: HashSet<&str> = out.lines().collect();
        let signal = Regex::new(
            r"(?i)\b(fail|failed|failures?|error|errors|panicked|traceback|assert\w*)\b|✕|●",
        )
        .unwrap();
        for line in text.lines() {
            if signal.is_match(line) && !line.ends_with(" ... ok") {
                assert!(kept.contains(line), "lost {line:?} in\n{out}");
            }
        }
    }

    #[test]
    fn pytest_verbose_all_passing() {
        // dev-000365
        let text =
            "============================= test session starts ==============================
platform linux -- Python 3.11.5, pytest-9.0.3, pluggy-1.6.0 -- /opt/miniconda3/bin/python
cachedir: .pytest_cache
rootdir: /testbed
configfile: pyproject.toml
collecting ... collected 1523 items / 1511 deselected / 12 selected

tests/unittest_raw_building.py::RawBuildingTC::test_attach_dummy_node PASSED
tests/unittest_raw_building.py::RawBuildingTC::test_build_class PASSED
tests/unittest_raw_building.py::RawBuildingTC::test_build_from_import PASSED
tests/unittest_raw_building.py::RawBuildingTC::test_build_function PASSED
tests/unittest_raw_building.py::RawBuildingTC::test_build_function_args PASSED
tests/unittest_raw_building.py::RawBuildingTC::test_build_function_deepinspect_deprecation PASSED
tests/unittest_raw_building.py::RawBuildingTC::test_build_function_defaults PASSED
tests/unittest_raw_building.py::RawBuildingTC::test_build_function_kwonlyargs PASSED
tests/unittest_raw_building.py::RawBuildingTC::test_build_function_posonlyargs PASSED
tests/unittest_raw_building.py::RawBuildingTC::test_build_module PASSED
tests/unittest_raw_building.py::RawBuildingTC::test_io_is__io PASSED
tests/unittest_raw_building.py::RawBuildingTC::test_module_object_with_broken_getattr PASSED

===================== 12 passed, 1511 deselected in 1.34s ======================
";
        let out = apply(text);
        assert_eq!(
            out,
            "============================= test session starts ==============================
platform linux -- Python 3.11.5, pytest-9.0.3, pluggy-1.6.0 -- /opt/miniconda3/bin/python
cachedir: .pytest_cache
rootdir: /testbed
configfile: pyproject.toml
collecting ... collected 1523 items / 1511 deselected / 12 selected

[kompress: 12 passing tests omitted]

===================== 12 passed, 1511 deselected in 1.34s ======================
"
        );
    }

    #[test]
    fn pytest_failures_keep_every_detail() {
        let text =
            "============================= test session starts ==============================
collected 6 items

tests/test_a.py::test_one PASSED                                         [ 16%]
tests/test_a.py::test_two FAILED                                         [ 33%]
tests/test_a.py::test_three PASSED                                       [ 50%]
tests/test_a.py::test_four SKIPPED (needs db)                            [ 66%]
tests/test_a.py::test_five XFAIL                                         [ 83%]
tests/test_a.py::test_six PASSED                                         [100%]

=================================== FAILURES ===================================
___________________________________ test_two ___________________________________

    def test_two():
>       assert add(1, 2) == 4
E       assert 3 == 4
E        +  where 3 = add(1, 2)

tests/test_a.py:9: AssertionError
=========================== short test summary info ============================
FAILED tests/test_a.py::test_two - assert 3 == 4
============= 1 failed, 3 passed, 1 skipped, 1 xfailed in 0.05s ===============
";
        let out = apply(text);
        keeps_failures(text, &out);
        assert!(out.contains("tests/test_a.py::test_two FAILED                                         [ 33%]\n[kompress: 3 passing, 1 skipped, 1 xfail tests omitted]\n\n==="), "{out}");
        assert!(!out.contains("test_one"));
        assert!(out.contains("E       assert 3 == 4\nE        +  where 3 = add(1, 2)\n"));
        assert!(out.ends_with(
            "============= 1 failed, 3 passed, 1 skipped, 1 xfailed in 0.05s ===============\n"
        ));
    }

    #[test]
    fn pytest_progress_dots() {
        let text =
            "============================= test session starts ==============================
collected 130 items

tests/test_models.py ........................................................ [ 43%]
......................................s..                                 [ 75%]
tests/test_views.py ....F......x....................                         [ 90%]
tests/test_zoo.py ...                                                    [100%]

=================================== FAILURES ===================================
";
        let out = apply(text);
        assert!(out.contains(
            "tests/test_views.py ....F......x....................                         [ 90%]\n"
        ));
        assert!(
            out.contains("[kompress: 99 passing, 1 skipped tests omitted]"),
            "{out}"
        );
        assert!(!out.contains("test_zoo"));
        assert!(!out.contains("test_models"));
    }

    // dev-001163 (excerpt): Django runtests with interleaved output and a skip.
    const DJANGO: &str = "test_run_loop_catches_stopiteration (tests.utils_tests.test_autoreload.BaseReloaderTests.test_run_loop_catches_stopiteration) ... ok
test_run_loop_stop_and_return (tests.utils_tests.test_autoreload.BaseReloaderTests.test_run_loop_stop_and_return) ... ok
test_wait_for_apps_ready_checks_for_exception (tests.utils_tests.test_autoreload.BaseReloaderTests.test_wait_for_apps_ready_checks_for_exception) ... ok
test_calls_start_django (tests.utils_tests.test_autoreload.RunWithReloaderTests.test_calls_start_django) ... Watching for file changes with _SentinelObject
ok
test_calls_sys_exit (tests.utils_tests.test_autoreload.RunWithReloaderTests.test_calls_sys_exit) ... ok
test_check_availability (tests.utils_tests.test_autoreload.WatchmanReloaderTests.test_check_availability) ... skipped 'Watchman unavailable: Cannot connect to the watchman service.'
test_q (__main__.QTests.test_q) ... ERROR
test_file (tests.utils_tests.test_autoreload.StatReloaderTests.test_file) ... ok

======================================================================
ERROR: test_q (__main__.QTests.test_q)
----------------------------------------------------------------------
Traceback (most recent call last):
  File \"/testbed/django/test/testcases.py\", line 284, in _setup_and_call
    self._post_teardown()
django.core.exceptions.ImproperlyConfigured: settings.DATABASES is improperly configured. Please supply the ENGINE value. Check settings documentation for more details.

----------------------------------------------------------------------
Ran 9 tests in 0.020s

FAILED (errors=1, skipped=1)
";

    #[test]
    fn django_runtests_keeps_errors_and_interleaved_output() {
        let out = apply(DJANGO);
        keeps_failures(DJANGO, &out);
        assert!(out.starts_with("test_calls_start_django (tests.utils_tests.test_autoreload.RunWithReloaderTests.test_calls_start_django) ... Watching for file changes with _SentinelObject\nok\ntest_q (__main__.QTests.test_q) ... ERROR\n[kompress: 5 passing, 1 skipped tests omitted]\n\n====="), "{out}");
        assert!(out.ends_with("Ran 9 tests in 0.020s\n\nFAILED (errors=1, skipped=1)\n"));
        // Every protected word of the kept lines is still there; the dropped ones are
        // passing test names only.
        for line in DJANGO
            .lines()
            .filter(|l| !l.ends_with(" ... ok") && !l.contains("skipped '"))
        {
            for word in protect::protected_words(line) {
                assert!(out.contains(word), "{word} lost");
            }
        }
    }

    #[test]
    fn unittest_dots_and_docstrings() {
        // dev-000931: one short dots line; the marker would be longer.
        let text = "System check identified no issues (0 silenced).
.............................
----------------------------------------------------------------------
Ran 29 tests in 0.073s

OK
";
        assert!(matches!(apply(text), Cow::Borrowed(_)));
        let text = text.replace(
            ".............................\n",
            &format!("{}s{}x\n", ".".repeat(70), ".".repeat(49)),
        );
        assert_eq!(
            apply(&text),
            "System check identified no issues (0 silenced).
[kompress: 119 passing, 1 skipped, 1 xfail tests omitted]
----------------------------------------------------------------------
Ran 29 tests in 0.073s

OK
"
        );
        // Without a `Ran N tests` summary a dots line is not a test report.
        assert!(matches!(
            apply("Loading\n.............................\n...\n....\ndone\n"),
            Cow::Borrowed(_)
        ));
        let doc = "test_a (m.T)\nChecks the first thing ... ok\ntest_b (m.T)\nChecks the second thing ... ok\ntest_c (m.T)\nChecks the third thing ... ok\ntest_d (m.T)\nChecks the fourth thing ... FAIL\nRan 4 tests in 0.001s\n";
        assert_eq!(
            apply(doc),
            "[kompress: 3 passing tests omitted]\ntest_d (m.T)\nChecks the fourth thing ... FAIL\nRan 4 tests in 0.001s\n"
        );
    }

    #[test]
    fn cargo_test_sections_fold_separately() {
        let text = "     Running unittests src/lib.rs (target/debug/deps/walkdir-1dda9e7680dd0ef1)

running 5 tests
test tests::recursive::broken_sym_root_dir_follow_and_root_nofollow ... ok
test tests::recursive::contents_first ... ok
test tests::recursive::empty ... FAILED
test tests::recursive::empty_file ... ignored
test tests::recursive::many_files ... ok

failures:

---- tests::recursive::empty stdout ----
thread 'tests::recursive::empty' panicked at src/tests/recursive.rs:12:5:
assertion `left == right` failed

failures:
    tests::recursive::empty

test result: FAILED. 3 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.18s

   Doc-tests walkdir

running 3 tests
test src/error.rs - error::Error::io_error (line 101) - compile ... ok
test src/lib.rs - (line 10) ... ok
test src/lib.rs - WalkDir (line 200) ... ok

test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.50s
";
        let out = apply(text);
        keeps_failures(text, &out);
        assert!(out.contains("running 5 tests\ntest tests::recursive::empty ... FAILED\n[kompress: 3 passing, 1 skipped tests omitted]\n\nfailures:\n"), "{out}");
        assert!(
            out.contains(
                "running 3 tests\n[kompress: 3 passing tests omitted]\n\ntest result: ok."
            ),
            "{out}"
        );
        assert!(out.contains("    tests::recursive::empty\n"));
    }

    #[test]
    fn go_test_verbose() {
        let text = "=== RUN   TestAdd
--- PASS: TestAdd (0.00s)
=== RUN   TestSub
    calc_test.go:14: Sub(3, 1) = 1; want 2
--- FAIL: TestSub (0.00s)
=== RUN   TestMul
=== RUN   TestMul/zero
=== RUN   TestMul/neg
--- PASS: TestMul (0.00s)
    --- PASS: TestMul/zero (0.00s)
    --- PASS: TestMul/neg (0.00s)
=== RUN   TestDiv
--- SKIP: TestDiv (0.00s)
FAIL
FAIL\texample.com/calc\t0.002s
";
        let out = apply(text);
        keeps_failures(text, &out);
        assert_eq!(
            out,
            "=== RUN   TestSub
    calc_test.go:14: Sub(3, 1) = 1; want 2
--- FAIL: TestSub (0.00s)
[kompress: 4 passing, 1 skipped tests, 5 \"=== RUN\" lines omitted]
FAIL
FAIL\texample.com/calc\t0.002s
"
        );
    }

    #[test]
    fn jest_output() {
        let text = "PASS src/utils.test.js
PASS src/format.test.js (1.2 s)
FAIL src/api.test.js
  api
    ✓ fetches users (12 ms)
    ✓ fetches posts (3 ms)
    ✕ handles errors (5 ms)
    ○ skipped retries

  ● api › handles errors

    expect(received).toBe(expected)

Tests:       1 failed, 1 skipped, 2 passed, 4 total
";
        let out = apply(text);
        keeps_failures(text, &out);
        assert!(
            out.contains(
                "    ✕ handles errors (5 ms)\n[kompress: 2 passing, 1 skipped tests omitted]\n"
            ),
            "{out}"
        );
        assert!(
            out.starts_with(
                "PASS src/utils.test.js\nPASS src/format.test.js (1.2 s)\nFAIL src/api.test.js\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn script_checkmarks_and_ok_lines_without_a_runner_stay() {
        // dev-000668: an agent's own script, not a test runner.
        let text = "Proposed fix test:
✓ de-at with LANGUAGES=['de', 'en']: OK (Should not error) - de-at should be valid when de is available
✓ es-ar with LANGUAGES=['es', 'en']: OK (Should not error) - es-ar should be valid when es is available
✓ fr with LANGUAGES=['de', 'en']: ERROR (Should error) - fr should be invalid when not in LANGUAGES
✓ en-us with LANGUAGES=['de', 'en']: OK (Should not error) - en-us should always be valid
";
        assert!(matches!(apply(text), Cow::Borrowed(_)));
        let text = "Checking imports ... ok\nChecking models ... ok\nChecking views ... ok\nChecking urls ... ok\n";
        assert!(matches!(apply(text), Cow::Borrowed(_)));
    }

    #[test]
    fn edge_inputs() {
        for text in [
            "",
            "ok",
            "\r",
            "a ... ok\nb ... ok",
            "é ... ok\r\nü ... ok\r\n",
        ] {
            assert!(matches!(apply(text), Cow::Borrowed(_)), "{text:?}");
        }
        let crlf = "test_alpha_long_name (m.T.test_alpha_long_name) ... ok\r\ntest_beta_long_name (m.T.test_beta_long_name) ... ok\r\ntest_gamma_long_name (m.T.test_gamma_long_name) ... ok\r\nRan 3 tests in 0.1s\r\nOK";
        assert_eq!(
            apply(crlf),
            "[kompress: 3 passing tests omitted]\r\nRan 3 tests in 0.1s\r\nOK"
        );
        // A failing line never folds even next to passing ones; nothing to fold below 3.
        let two = "t1 ... ok\nt2 ... FAIL\nt3 ... ok\n";
        assert!(matches!(apply(two), Cow::Borrowed(_)));
    }
}
