//! Line diffs in the unified format, for session memory: what changed between two outputs
//! of the same command.
//!
//! [`unified`] finds a shortest edit script (Myers' O(ND) algorithm, after trimming the
//! common head and tail) and prints it as `@@ -a,b +c,d @@` hunks with `context` lines
//! around each change. It gives up past `max_edits` changed lines: a diff that long is not
//! worth showing instead of the output. [`apply`] is its inverse; the tests use it to check
//! that a diff rebuilds the new output byte for byte.

use std::fmt::Write as _;

/// Printed after a line that has no newline at the end of the text, as `diff` does.
pub const NO_NEWLINE: &str = "\\ No newline at end of file\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equal,
    Delete,
    Insert,
}

/// The unified diff from `old` to `new`; `None` when they differ in more than `max_edits`
/// lines. Empty when they are equal.
pub fn unified(old: &str, new: &str, context: usize, max_edits: usize) -> Option<String> {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let middle = myers(
        &a[head..a.len() - tail],
        &b[head..b.len() - tail],
        max_edits,
    )?;
    let mut ops = vec![Op::Equal; head];
    ops.extend(middle);
    ops.extend(std::iter::repeat_n(Op::Equal, tail));
    Some(hunks(&a, &b, &ops, context))
}

/// Shortest edit script from `a` to `b`, or `None` past `max_edits` edits.
fn myers(a: &[&str], b: &[&str], max_edits: usize) -> Option<Vec<Op>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let limit = max_edits.min(a.len() + b.len()) as isize;
    let offset = limit + 1;
    let mut v = vec![0isize; (2 * limit + 3) as usize];
    // trace[d] holds v[-d..=d] as it was before step d.
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let mut end = None;
    'outer: for d in 0..=limit {
        trace.push(v[(offset - d) as usize..=(offset + d) as usize].to_vec());
        for k in (-d..=d).step_by(2) {
            let at = |k: isize| v[(offset + k) as usize];
            let mut x = if k == -d || (k != d && at(k - 1) < at(k + 1)) {
                at(k + 1)
            } else {
                at(k - 1) + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[(offset + k) as usize] = x;
            if x >= n && y >= m {
                end = Some(d);
                break 'outer;
            }
        }
    }
    let end = end?;
    let mut ops = Vec::with_capacity((n + m) as usize);
    let (mut x, mut y) = (n, m);
    for d in (0..=end).rev() {
        let v = &trace[d as usize];
        let at = |k: isize| v[(k + d) as usize];
        let k = x - y;
        let prev_k = if k == -d || (k != d && at(k - 1) < at(k + 1)) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = if d == 0 { 0 } else { at(prev_k) };
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            ops.push(Op::Equal);
            x -= 1;
            y -= 1;
        }
        if d > 0 {
            ops.push(if x == prev_x { Op::Insert } else { Op::Delete });
            x = prev_x;
            y = prev_y;
        }
    }
    ops.reverse();
    Some(ops)
}

/// Print `ops` (over `a` and `b`) as unified hunks.
fn hunks(a: &[&str], b: &[&str], ops: &[Op], context: usize) -> String {
    // Positions (index into ops, old line, new line) of every op.
    let mut positions = Vec::with_capacity(ops.len());
    let (mut i, mut j) = (0, 0);
    for op in ops {
        positions.push((i, j));
        match op {
            Op::Equal => {
                i += 1;
                j += 1;
            }
            Op::Delete => i += 1,
            Op::Insert => j += 1,
        }
    }
    let mut out = String::new();
    let mut at = 0;
    while at < ops.len() {
        let Some(first) = ops[at..]
            .iter()
            .position(|o| *o != Op::Equal)
            .map(|p| p + at)
        else {
            break;
        };
        let start = first.saturating_sub(context);
        // Extend the hunk while the next change is within 2 × context equal lines.
        let mut end = first;
        let mut k = first;
        while k < ops.len() {
            if ops[k] != Op::Equal {
                end = k + 1;
                k += 1;
                continue;
            }
            let run = ops[k..].iter().take_while(|o| **o == Op::Equal).count();
            if k + run >= ops.len() || run > 2 * context {
                break;
            }
            k += run;
        }
        let stop = (end + context).min(ops.len());
        let (old_start, new_start) = positions[start];
        let old_len = ops[start..stop]
            .iter()
            .filter(|o| **o != Op::Insert)
            .count();
        let new_len = ops[start..stop]
            .iter()
            .filter(|o| **o != Op::Delete)
            .count();
        let show = |start: usize, len: usize| {
            if len == 0 {
                format!("{start},0")
            } else {
                format!("{},{len}", start + 1)
            }
        };
        let _ = writeln!(
            out,
            "@@ -{} +{} @@",
            show(old_start, old_len),
            show(new_start, new_len)
        );
        for (op, (i, j)) in ops[start..stop].iter().zip(&positions[start..stop]) {
            let (sign, line) = match op {
                Op::Equal => (' ', a[*i]),
                Op::Delete => ('-', a[*i]),
                Op::Insert => ('+', b[*j]),
            };
            out.push(sign);
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push('\n');
                out.push_str(NO_NEWLINE);
            }
        }
        at = stop;
    }
    out
}

/// Apply a diff made by [`unified`] to `old`; `None` when it does not fit.
pub fn apply(old: &str, diff: &str) -> Option<String> {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let mut out = String::with_capacity(old.len());
    let mut next = 0; // the next line of `a` to copy
    let mut lines = diff.split_inclusive('\n').peekable();
    while let Some(header) = lines.next() {
        let ranges = header.strip_prefix("@@ -")?.strip_suffix(" @@\n")?;
        let (old_range, _) = ranges.split_once(" +")?;
        let (start, len) = old_range.split_once(',')?;
        let (start, len): (usize, usize) = (start.parse().ok()?, len.parse().ok()?);
        let first = if len == 0 {
            start
        } else {
            start.checked_sub(1)?
        };
        if first < next || first > a.len() {
            return None;
        }
        for line in &a[next..first] {
            out.push_str(line);
        }
        next = first;
        while let Some(line) = lines.peek() {
            if line.starts_with("@@ ") {
                break;
            }
            let line = lines.next()?;
            let (sign, mut body) = (line.chars().next()?, &line[1..]);
            let mut trimmed = String::new();
            if lines.peek() == Some(&NO_NEWLINE) {
                lines.next();
                trimmed.push_str(body.strip_suffix('\n')?);
                body = &trimmed;
            }
            match sign {
                ' ' | '-' => {
                    if a.get(next) != Some(&body) {
                        return None;
                    }
                    next += 1;
                    if sign == ' ' {
                        out.push_str(body);
                    }
                }
                '+' => out.push_str(body),
                _ => return None,
            }
        }
    }
    for line in &a[next..] {
        out.push_str(line);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn small_change_in_a_long_output() {
        let old: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let new = old
            .replace("line 50\n", "line fifty\n")
            .replace("line 90\n", "");
        let diff = unified(&old, &new, 1, 100).unwrap();
        assert_eq!(
            diff,
            "@@ -50,3 +50,3 @@\n line 49\n-line 50\n+line fifty\n line 51\n@@ -90,3 +90,2 @@\n line 89\n-line 90\n line 91\n"
        );
        assert_eq!(apply(&old, &diff).unwrap(), new);
        assert_eq!(unified(&old, &old, 1, 100).unwrap(), "");
    }

    #[test]
    fn missing_final_newline_and_limits() {
        let diff = unified("a\nb", "a\nc", 1, 10).unwrap();
        assert_eq!(
            diff,
            format!("@@ -1,2 +1,2 @@\n a\n-b\n{NO_NEWLINE}+c\n{NO_NEWLINE}")
        );
        assert_eq!(apply("a\nb", &diff).unwrap(), "a\nc");
        let old: String = (0..50).map(|i| format!("{i}\n")).collect();
        let new: String = (0..50).map(|i| format!("x{i}\n")).collect();
        assert!(unified(&old, &new, 1, 10).is_none());
        assert!(apply("other\n", "@@ -1,1 +1,1 @@\n-line\n+x\n").is_none());
    }

    proptest! {
        #[test]
        fn apply_inverts_unified(
            old in prop::collection::vec("[abc]{0,2}\n?", 0..30),
            new in prop::collection::vec("[abc]{0,2}\n?", 0..30),
            context in 0usize..3,
        ) {
            let (old, new) = (old.concat(), new.concat());
            let diff = unified(&old, &new, context, 1000).unwrap();
            prop_assert_eq!(apply(&old, &diff), Some(new.clone()));
            // A shortest script: never more edits than replacing everything.
            let edits = diff.lines().filter(|l| l.starts_with('+') || l.starts_with('-')).count();
            prop_assert!(edits <= old.split_inclusive('\n').count() + new.split_inclusive('\n').count());
        }
    }
}
