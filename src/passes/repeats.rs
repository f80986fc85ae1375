//! Fold repetition.
//!
//! [`apply`] folds exact repeats: a line repeated on consecutive lines, or a block of 2 to
//! 20 lines repeated back to back (the frames of a recursion traceback, a multi-line
//! warning printed for every file). The first copy stays, followed by
//! `[kompress: previous line repeated N more times]` or
//! `[kompress: previous K lines repeated N more times]`.
//!
//! [`apply_similar`] folds runs of at least 4 consecutive lines that share one shape: the
//! same indentation, the same number of words, and the same words everywhere except in a
//! few positions (crate names and versions in `Compiling foo v1.2.3`, migration names in
//! `Applying app.0001_initial... OK`). The first and last lines stay; the lines between
//! are replaced by one marker that lists, in order, the words each of them had in the
//! varying positions: `[kompress: 48 similar lines; varying: libc v0.2.191, log v0.4.35]`.
//! Every value survives; only the repeated frame is dropped. A fold must save at least a
//! tenth of the run's bytes. Lines that speak of an error, failure, panic, exception or
//! warning, and stack-frame lines, are never folded.
//!
//! Blank lines and kompress markers are never folded by either.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::lines::{self, Line, Out};

/// The largest block [`apply`] looks for.
const MAX_BLOCK: usize = 20;

/// The fewest lines [`apply_similar`] folds (first and last stay).
const MIN_SIMILAR: usize = 4;

fn foldable(line: &Line<'_>) -> bool {
    !line.is_blank() && !super::is_marker(line.body)
}

fn times(n: usize) -> &'static str {
    if n == 1 { "time" } else { "times" }
}

pub fn apply(text: &str) -> Cow<'_, str> {
    let lines = lines::split(text);
    if lines.len() < 2 {
        return Cow::Borrowed(text);
    }
    // Lines as small integers, so blocks compare cheaply.
    let mut intern: HashMap<&str, u32> = HashMap::new();
    let ids: Vec<u32> = lines
        .iter()
        .map(|l| {
            let next = intern.len() as u32;
            *intern.entry(l.body).or_insert(next)
        })
        .collect();
    let ok: Vec<bool> = lines.iter().map(foldable).collect();
    let n = lines.len();

    let mut out: Option<Out> = None;
    let mut i = 0;
    while i < n {
        // The best fold starting at i: (block size, copies, bytes saved).
        let mut best: Option<(usize, usize, usize)> = None;
        for p in 1..=MAX_BLOCK {
            if i + 2 * p > n {
                break;
            }
            if ids[i + p] != ids[i] || ids[i..i + p] != ids[i + p..i + 2 * p] {
                continue;
            }
            // A block of one repeated line is p = 1's job; blank-only blocks are blank.rs's.
            let block = &lines[i..i + p];
            if (p > 1 && ids[i..i + p].iter().all(|&id| id == ids[i]))
                || !ok[i..i + p].iter().any(|&b| b)
                || block.iter().any(|l| super::is_marker(l.body))
            {
                continue;
            }
            let mut copies = 2;
            while i + (copies + 1) * p <= n
                && ids[i..i + p] == ids[i + copies * p..i + (copies + 1) * p]
            {
                copies += 1;
            }
            let dropped: usize = lines[i + p..i + copies * p].iter().map(Line::len).sum();
            let cost = marker_msg(p, copies - 1).len() + 12 + block[0].indent().len() + 2;
            if dropped > cost && best.is_none_or(|(_, _, saved)| dropped - cost > saved) {
                best = Some((p, copies, dropped - cost));
            }
        }
        match best {
            Some((p, copies, _)) => {
                let out = out.get_or_insert_with(|| {
                    let mut out = Out::new(text);
                    lines[..i].iter().for_each(|l| out.line(l));
                    out
                });
                let block = &lines[i..i + p];
                block.iter().for_each(|l| out.line(l));
                out.marker(
                    block[0].indent(),
                    &marker_msg(p, copies - 1),
                    lines::eol_of(block),
                );
                i += p * copies;
            }
            None => {
                if let Some(out) = out.as_mut() {
                    out.line(&lines[i]);
                }
                i += 1;
            }
        }
    }
    match out {
        Some(out) => Cow::Owned(out.finish()),
        None => Cow::Borrowed(text),
    }
}

fn marker_msg(block: usize, more: usize) -> String {
    if block == 1 {
        format!("previous line repeated {more} more {}", times(more))
    } else {
        format!(
            "previous {block} lines repeated {more} more {}",
            times(more)
        )
    }
}

/// Lines that carry the signal: never folded into a similar-lines marker. Stack frames
/// (Python `File "x.py", line 3`, JVM/JS `at f (x.js:1:2)`) count: a trace reads as a
/// sequence of frames.
///
/// Hand-written: the equivalent pattern (in the tests) took 0.2 ms to compile in most hook
/// calls. A line is a signal when it holds one of [`SIGNAL_WORDS`] in any case, or starts,
/// after ASCII whitespace, with `File "`, or after at least one with `at ` and a
/// non-whitespace character.
fn is_signal(body: &str) -> bool {
    // `[[:space:]]`: `char::is_ascii_whitespace` leaves out the vertical tab.
    let indented = body.trim_start_matches([' ', '\t', '\n', '\x0B', '\x0C', '\r']);
    if indented.starts_with("File \"") {
        return true;
    }
    if indented.len() < body.len()
        && let Some(rest) = indented.strip_prefix("at ")
        && rest.chars().next().is_some_and(|c| !c.is_whitespace())
    {
        return true;
    }
    let lower = body.to_ascii_lowercase();
    SIGNAL_WORDS.iter().any(|w| lower.contains(w))
}

/// Words (inside any word, in any case) that make a line a signal.
const SIGNAL_WORDS: &[&str] = &[
    "error", "fail", "panic", "exception", "warn", "fatal", "traceback", "denied", "abort",
];

/// A line that may take part in a similar-lines fold: its indentation and words.
struct Shape<'a> {
    indent: &'a str,
    words: Vec<&'a str>,
}

fn shape<'a>(line: &Line<'a>) -> Option<Shape<'a>> {
    if !foldable(line) || line.body.len() > 2000 || is_signal(line.body) {
        return None;
    }
    let words: Vec<&str> = line.body.split_whitespace().collect();
    if !(2..=64).contains(&words.len()) {
        return None;
    }
    Some(Shape {
        indent: line.indent(),
        words,
    })
}

/// Whether a run whose varying positions are `varying` still shares a shape: at least
/// one word with a letter in it stays the same, and no more than two words vary beyond
/// the number that stay.
fn still_similar(first: &Shape<'_>, varying: &[bool]) -> bool {
    let n_varying = varying.iter().filter(|&&v| v).count();
    let constant = first.words.len() - n_varying;
    let has_literal = first
        .words
        .iter()
        .zip(varying)
        .any(|(w, &v)| !v && w.chars().any(char::is_alphabetic));
    constant >= 1 && has_literal && n_varying <= constant + 2
}

pub fn apply_similar(text: &str) -> Cow<'_, str> {
    let lines = lines::split(text);
    if lines.len() < MIN_SIMILAR {
        return Cow::Borrowed(text);
    }
    let shapes: Vec<Option<Shape<'_>>> = lines.iter().map(shape).collect();
    let n = lines.len();
    let mut out: Option<Out> = None;
    let mut i = 0;
    while i < n {
        let Some(first) = &shapes[i] else {
            if let Some(out) = out.as_mut() {
                out.line(&lines[i]);
            }
            i += 1;
            continue;
        };
        let mut varying = vec![false; first.words.len()];
        let mut j = i + 1;
        while j < n {
            let Some(next) = &shapes[j] else { break };
            if next.indent != first.indent || next.words.len() != first.words.len() {
                break;
            }
            let widened: Vec<bool> = varying
                .iter()
                .zip(first.words.iter().zip(&next.words))
                .map(|(&v, (a, b))| v || a != b)
                .collect();
            if !still_similar(first, &widened) {
                break;
            }
            varying = widened;
            j += 1;
        }
        let run = i..j;
        let fold = (run.len() >= MIN_SIMILAR && varying.iter().any(|&v| v))
            .then(|| similar_marker(&shapes[i + 1..j - 1], &varying))
            .filter(|msg| {
                let kept = lines[i].len() + lines[j - 1].len();
                let new = kept + first.indent.len() + super::marker(msg).len() + 2;
                let old: usize = lines[run.clone()].iter().map(Line::len).sum();
                // Worth a marker only when it saves a tenth of the run.
                new * 10 <= old * 9
            });
        match fold {
            Some(msg) => {
                let out = out.get_or_insert_with(|| {
                    let mut out = Out::new(text);
                    lines[..i].iter().for_each(|l| out.line(l));
                    out
                });
                out.line(&lines[i]);
                out.marker(first.indent, &msg, lines::eol_of(&lines[run.clone()]));
                out.line(&lines[j - 1]);
                i = j;
            }
            None => {
                // A long run that did not pay stays whole; a short one may start later.
                let end = if run.len() >= MIN_SIMILAR { j } else { i + 1 };
                if let Some(out) = out.as_mut() {
                    lines[i..end].iter().for_each(|l| out.line(l));
                }
                i = end;
            }
        }
    }
    match out {
        Some(out) => Cow::Owned(out.finish()),
        None => Cow::Borrowed(text),
    }
}

/// `N similar lines; varying: a b, c d`: the varying words of each folded line, in order.
///
/// When every varying position counts up by one from line to line (`worker=2`,
/// `worker=3`, …, or `batch 7/100`, `batch 8/100`, …), each position is written once as a
/// range instead, `worker={2..1249}`: the same values, exactly, without listing them.
fn similar_marker(folded: &[Option<Shape<'_>>], varying: &[bool]) -> String {
    let rows: Vec<Vec<&str>> = folded
        .iter()
        .flatten()
        .map(|s| {
            s.words
                .iter()
                .zip(varying)
                .filter(|&(_, &v)| v)
                .map(|(w, _)| *w)
                .collect()
        })
        .collect();
    let columns = rows.first().map_or(0, Vec::len);
    let ranges: Option<Vec<String>> = (0..columns)
        .map(|c| counting_range(rows.iter().map(|r| r[c])))
        .collect();
    // Short runs stay literal: easier to read, and every value appears as printed.
    if let Some(ranges) = ranges.filter(|_| rows.len() >= MIN_RANGE_ROWS) {
        return format!("{} similar lines; varying: {}", rows.len(), ranges.join(" "));
    }
    let values: Vec<String> = rows.iter().map(|r| r.join(" ")).collect();
    let sep = if !values.iter().any(|v| v.contains(',')) {
        ", "
    } else if !values.iter().any(|v| v.contains(';')) {
        "; "
    } else {
        " | "
    };
    format!(
        "{} similar lines; varying: {}",
        folded.len(),
        values.join(sep)
    )
}

/// Runs shorter than this list their values even when they count up.
const MIN_RANGE_ROWS: usize = 8;

/// Expand the `prefix{a..b}suffix` ranges of marker lines back into the words they
/// stand for, one per value. Checks of "every value survives" compare against this.
pub fn expand_ranges(text: &str) -> Cow<'_, str> {
    static RANGE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(\S*?)\{([0-9]+)\.\.([0-9]+)\}(\S*)").expect("valid regex")
    });
    if !text.lines().any(|l| super::is_marker(l) && RANGE.is_match(l)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if !super::is_marker(line) {
            out.push_str(line);
            continue;
        }
        // The marker's own closing `]` is not part of the last word.
        let body = line.trim_end_matches(['\n', '\r']);
        let (body, close) = body.strip_suffix(']').map_or((body, ""), |b| (b, "]"));
        let ending = &line[body.len() + close.len()..];
        let expanded = RANGE.replace_all(body, |c: &regex::Captures<'_>| {
            let (start, end): (u64, u64) = (c[2].parse().unwrap_or(1), c[3].parse().unwrap_or(0));
            (start..=end.min(start.saturating_add(1_000_000)))
                .map(|n| format!("{}{n}{}", &c[1], &c[4]))
                .collect::<Vec<_>>()
                .join(" ")
        });
        out.push_str(&expanded);
        out.push_str(close);
        out.push_str(ending);
    }
    Cow::Owned(out)
}

/// `prefix{a..b}suffix` when the words are `prefix` + consecutive integers + `suffix`,
/// each one more than the last and written without leading zeros.
fn counting_range<'a>(words: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut first: Option<(&str, u64, &str)> = None;
    let mut last = 0u64;
    for word in words {
        let start = word.find(|c: char| c.is_ascii_digit())?;
        let len = word[start..].find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len() - start);
        let digits = &word[start..start + len];
        if digits.len() > 1 && digits.starts_with('0') {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        let (prefix, suffix) = (&word[..start], &word[start + len..]);
        match first {
            None => first = Some((prefix, n, suffix)),
            Some((p, _, s)) if p == prefix && s == suffix && n == last + 1 => {}
            Some(_) => return None,
        }
        last = n;
    }
    let (prefix, start, suffix) = first?;
    Some(format!("{prefix}{{{start}..{last}}}{suffix}"))
}

#[cfg(test)]
mod tests {
    /// What [`super::is_signal`] implements.
    const SIGNAL_PATTERN: &str = r#"(?i-u:error|fail|panic|exception|warn|fatal|traceback|denied|abort)|^[[:space:]]*File "|^[[:space:]]+at \S"#;

    #[test]
    fn is_signal_is_its_pattern_on_the_corpus() {
        let signals = crate::passes::invariants::lines_agree(super::is_signal, SIGNAL_PATTERN);
        assert!(signals > 100, "{signals}");
    }

    proptest::proptest! {
        #[test]
        fn is_signal_is_its_pattern(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "ERROR", "Fail", "xpanicky", "Warning", "aBoRt", "err", "File \"", "File", "\"",
                "at", "at ", " ", "\t", "\u{b}", "\u{a0}", "\u{2003}", "x", "é", "(", "f.py",
            ]), 0..7)
        ) {
            let line: String = parts.concat();
            let pattern = regex::Regex::new(SIGNAL_PATTERN).unwrap();
            proptest::prop_assert_eq!(super::is_signal(&line), pattern.is_match(&line), "{:?}", line);
        }
    }

    use super::*;
    use crate::protect;

    #[test]
    fn identical_lines_fold_with_a_count() {
        // dev-000922: `find ... -exec grep -l ... \; | head -10`.
        let mut text = String::from("/testbed/tests/save_delete_hooks/tests.py\n");
        for _ in 0..30 {
            text.push_str("find: 'grep' terminated by signal 13\n");
        }
        text.push_str("done\n");
        assert_eq!(
            apply(&text),
            "/testbed/tests/save_delete_hooks/tests.py\nfind: 'grep' terminated by signal 13\n[kompress: previous line repeated 29 more times]\ndone\n"
        );
    }

    #[test]
    fn repeated_blocks_fold() {
        let frame = "  File \"/testbed/x.py\", line 3, in f\n    return f(n - 1)\n";
        let text = format!(
            "Traceback (most recent call last):\n  File \"/testbed/x.py\", line 5, in <module>\n    f(10)\n{}RecursionError: maximum recursion depth exceeded\n",
            frame.repeat(50)
        );
        let out = apply(&text);
        assert_eq!(
            out,
            format!(
                "Traceback (most recent call last):\n  File \"/testbed/x.py\", line 5, in <module>\n    f(10)\n{frame}  [kompress: previous 2 lines repeated 49 more times]\nRecursionError: maximum recursion depth exceeded\n"
            )
        );
    }

    #[test]
    fn small_repeats_that_do_not_pay_stay() {
        assert!(matches!(apply("ok\nok\n"), Cow::Borrowed(_)));
        assert!(matches!(apply("a\nb\na\nb\n"), Cow::Borrowed(_)));
        assert!(matches!(
            apply("\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(apply(""), Cow::Borrowed(_)));
        assert!(matches!(apply("x"), Cow::Borrowed(_)));
    }

    #[test]
    fn repeats_keep_endings_and_final_newline_status() {
        let line = "warning: unused variable `x` in src/lib.rs\r\n";
        let text = format!("{}tail", line.repeat(4));
        assert_eq!(
            apply(&text),
            format!("{line}[kompress: previous line repeated 3 more times]\r\ntail")
        );
        let text = "same long line of output with é and ü\n".repeat(3);
        let text = text.trim_end();
        assert_eq!(
            apply(text),
            "same long line of output with é and ü\n[kompress: previous line repeated 2 more times]"
        );
    }

    #[test]
    fn markers_are_not_folded() {
        let text = "[kompress: 3 passing tests omitted]\n".repeat(5);
        assert!(matches!(apply(&text), Cow::Borrowed(_)));
        assert!(matches!(apply_similar(&text), Cow::Borrowed(_)));
    }

    const CARGO: &str =
        "warning: no edition set: defaulting to the 2015 edition while the latest is 2024
   Compiling libc v0.2.191
   Compiling regex-syntax v0.3.9
   Compiling utf8-ranges v0.1.3
   Compiling log v0.4.35
   Compiling memchr v0.1.11
   Compiling thread-id v2.0.0
   Compiling aho-corasick v0.5.3
   Compiling thread_local v0.2.7
   Compiling log v0.3.9
   Compiling regex v0.1.80
   Compiling walkdir v1.0.7 (/home/dev/src/walkdir-1.0.7)
warning: use of deprecated macro `try`: use the `?` operator instead
";

    #[test]
    fn similar_lines_fold_and_keep_every_value() {
        // From cargo_outputs.jsonl: walkdir 0.1.5 `cargo test`.
        let out = apply_similar(CARGO);
        assert_eq!(
            out,
            "warning: no edition set: defaulting to the 2015 edition while the latest is 2024
   Compiling libc v0.2.191
   [kompress: 8 similar lines; varying: regex-syntax v0.3.9, utf8-ranges v0.1.3, log v0.4.35, memchr v0.1.11, thread-id v2.0.0, aho-corasick v0.5.3, thread_local v0.2.7, log v0.3.9]
   Compiling regex v0.1.80
   Compiling walkdir v1.0.7 (/home/dev/src/walkdir-1.0.7)
warning: use of deprecated macro `try`: use the `?` operator instead
"
        );
        for word in protect::protected_words(CARGO) {
            assert!(out.contains(word), "{word} lost");
        }
    }

    #[test]
    fn django_migrations_fold() {
        let text = "Operations to perform:
  Apply all migrations: admin, auth, contenttypes, sessions
Running migrations:
  Applying contenttypes.0001_initial... OK
  Applying auth.0001_initial... OK
  Applying admin.0001_initial... OK
  Applying admin.0002_logentry_remove_auto_add... OK
  Applying admin.0003_logentry_add_action_flag_choices... OK
  Applying contenttypes.0002_remove_content_type_name... OK
  Applying auth.0002_alter_permission_name_max_length... OK
  Applying auth.0003_alter_user_email_max_length... OK
  Applying auth.0004_alter_user_username_opts... OK
  Applying auth.0005_alter_user_last_login_null... OK
  Applying auth.0006_require_contenttypes_0002... OK
  Applying auth.0007_alter_validators_add_error_messages... OK
  Applying auth.0008_alter_user_username_max_length... OK
  Applying sessions.0001_initial... OK
";
        let out = apply_similar(text);
        assert!(out.contains("  Applying contenttypes.0001_initial... OK\n  [kompress: 9 similar lines; varying: auth.0001_initial..., admin.0001_initial..., "), "{out}");
        // `error` in a name is a signal: that line stays and splits the run.
        assert!(out.contains("\n  Applying auth.0007_alter_validators_add_error_messages... OK\n"));
        assert!(out.ends_with("  Applying sessions.0001_initial... OK\n"));
        for word in protect::protected_words(text) {
            assert!(out.contains(word), "{word} lost");
        }
        assert!(out.len() < text.len());
    }

    #[test]
    fn signal_lines_and_different_shapes_stay() {
        let text = "test_a (m.T.test_a) ... FAIL\ntest_b (m.T.test_b) ... FAIL\ntest_c (m.T.test_c) ... FAIL\ntest_d (m.T.test_d) ... FAIL\ntest_e (m.T.test_e) ... FAIL\n";
        assert!(matches!(apply_similar(text), Cow::Borrowed(_)));
        let prose = "the cat sat on the mat\na dog ran to its home\nno bird flew over my car\none fox hid in his den\n";
        assert!(matches!(apply_similar(prose), Cow::Borrowed(_)));
        // Different indentation breaks the run.
        let text =
            "  item 1 ready\n    item 2 ready\n  item 3 ready\n    item 4 ready\n  item 5 ready\n";
        assert!(matches!(apply_similar(text), Cow::Borrowed(_)));
        assert!(matches!(apply_similar(""), Cow::Borrowed(_)));
        assert!(matches!(apply_similar("a b\r"), Cow::Borrowed(_)));
    }

    #[test]
    fn similar_keeps_crlf_and_missing_final_newline() {
        let line = |i: u32, ms: u32| {
            format!(
                "INFO served request for the static asset handler GET /api/users/{i} 200 {ms}ms"
            )
        };
        let text: Vec<String> = (1..=5).map(|i| line(i, 3 + i * 2)).collect();
        let text = text.join("\r\n");
        let out = apply_similar(&text);
        assert_eq!(
            out,
            format!(
                "{}\r\n[kompress: 3 similar lines; varying: /api/users/2 7ms, /api/users/3 9ms, /api/users/4 11ms]\r\n{}",
                line(1, 5),
                line(5, 13)
            )
        );
    }

    /// 200,000 lines: a quadratic pass would not finish (no timing is asserted; the
    /// machine may be loaded). The similar-lines pass must still fold them.
    #[test]
    fn huge_inputs_finish_and_fold() {
        let mut text = String::new();
        for i in 0..200_000 {
            text.push_str(&format!("line {} of {}\n", i % 7, i % 3));
        }
        assert!(apply(&text).len() <= text.len());
        assert!(apply_similar(&text).len() < text.len());
    }

    #[test]
    fn counting_values_become_ranges() {
        let text: String = (1..=40)
            .map(|i| format!("[10:00:00] INFO worker={i} processed batch {i}/40 in 12ms\n"))
            .collect();
        let out = apply_similar(&text);
        assert_eq!(
            out,
            "[10:00:00] INFO worker=1 processed batch 1/40 in 12ms\n\
             [kompress: 38 similar lines; varying: worker={2..39} {2..39}/40]\n\
             [10:00:00] INFO worker=40 processed batch 40/40 in 12ms\n"
        );
        // Not consecutive: listed one by one.
        let text: String = (1..=6)
            .map(|i| format!("applying migration step {} of the schema upgrade: done\n", i * 2))
            .collect();
        assert!(apply_similar(&text).contains("varying: 4, 6, 8, 10]"));
        assert!(expand_ranges(&out).contains(" worker=2 worker=3 "));
        assert!(expand_ranges(&out).contains(" 38/40 39/40]"));
        assert_eq!(counting_range(["a07", "a08"].into_iter()), None);
        assert_eq!(counting_range(["v9", "v10", "v11"].into_iter()).as_deref(), Some("v{9..11}"));
    }
}
