//! Fold long homogeneous path lists (find, fd, Glob, `grep -l`, `git ls-files`) by
//! directory.
//!
//! A run of at least 8 consecutive lines that are each one bare path (no whitespace, a
//! `/` in it, none of the characters a path list does not print such as `:`) is
//! rewritten as one line per directory, `dir/: a.py b.py c.py`, after one marker:
//! `[kompress: next 120 paths grouped by directory; "dir/: a b" = dir/a, dir/b]`.
//!
//! Exact recovery: a line that holds `/: ` is a group (the text before `: ` is the
//! directory, ending in `/`; each space-separated word after it is a name in it), any
//! other line in the run is one path as printed. Names never hold spaces, because a
//! line with a space is not a bare path and stays where it was, ending the run.
//! Directories appear in the order of their first path, and each directory's names in
//! their original order. A directory with one path keeps its path as printed. A run is
//! regrouped only when that saves a tenth of its bytes. Lines that are not bare paths
//! (ls -R `./dir:` headers, bare names) are left alone.

use std::borrow::Cow;
use std::collections::HashMap;

use super::lines::{self, Line, Out};

/// The fewest consecutive paths worth grouping.
const MIN_RUN: usize = 8;

/// The most names on one group line; a bigger directory takes several lines.
const MAX_NAMES: usize = 200;

/// Where a bare path's last component starts (after its parent directory), or `None`
/// when `body` is not a bare path.
fn split_point(body: &str) -> Option<usize> {
    if body.is_empty() || body.len() > 4096 || body.starts_with('-') || super::is_marker(body) {
        return None;
    }
    if !body.chars().all(|c| {
        !c.is_whitespace()
            && !c.is_control()
            && !matches!(
                c,
                ':' | '"' | '<' | '>' | '|' | '*' | '?' | ';' | '`' | '\'' | '\\'
            )
    }) {
        return None;
    }
    if !body.chars().any(char::is_alphabetic) {
        return None;
    }
    // The parent ends at the last `/` that is not the path's final character.
    let trimmed = body.strip_suffix('/').unwrap_or(body);
    let slash = trimmed.rfind('/')?;
    let name = &trimmed[slash + 1..];
    (!name.is_empty()).then_some(slash + 1)
}

pub fn apply(text: &str) -> Cow<'_, str> {
    let lines = lines::split(text);
    if lines.len() < MIN_RUN {
        return Cow::Borrowed(text);
    }
    let splits: Vec<Option<usize>> = lines.iter().map(|l| split_point(l.body)).collect();
    let mut out: Option<Out> = None;
    let mut i = 0;
    while i < lines.len() {
        let mut j = i;
        while j < lines.len() && splits[j].is_some() {
            j += 1;
        }
        if j - i >= MIN_RUN
            && let Some(grouped) = group(&lines[i..j], &splits[i..j])
        {
            let out = out.get_or_insert_with(|| {
                let mut out = Out::new(text);
                lines[..i].iter().for_each(|l| out.line(l));
                out
            });
            out.push(&grouped, "");
            i = j;
            continue;
        }
        let end = j.max(i + 1);
        if let Some(out) = out.as_mut() {
            lines[i..end].iter().for_each(|l| out.line(l));
        }
        i = end;
    }
    match out {
        Some(out) => Cow::Owned(out.finish()),
        None => Cow::Borrowed(text),
    }
}

/// The grouped form of a run of paths (marker included, every line ended), or `None`
/// when it would not save a tenth of the run's bytes.
fn group(run: &[Line<'_>], splits: &[Option<usize>]) -> Option<String> {
    let eol = lines::eol_of(run);
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<&str>> = HashMap::new();
    for (line, split) in run.iter().zip(splits) {
        let split = (*split)?;
        let (dir, name) = line.body.split_at(split);
        groups
            .entry(dir)
            .or_insert_with(|| {
                order.push(dir);
                Vec::new()
            })
            .push(name);
    }
    if order.len() == run.len() {
        return None;
    }
    let mut body = String::new();
    for dir in &order {
        let names = &groups[dir];
        if names.len() == 1 {
            body.push_str(dir);
            body.push_str(names[0]);
            body.push_str(eol);
            continue;
        }
        for chunk in names.chunks(MAX_NAMES) {
            body.push_str(dir);
            body.push(':');
            for name in chunk {
                body.push(' ');
                body.push_str(name);
            }
            body.push_str(eol);
        }
    }
    let msg = format!(
        "next {} paths grouped by directory; \"dir/: a b\" = dir/a, dir/b",
        run.len()
    );
    let mut grouped = super::marker(&msg);
    grouped.push_str(eol);
    grouped.push_str(&body);
    // Regrouping is worth its marker only when it saves a tenth of the run.
    let before: usize = run.iter().map(|l| l.body.len() + eol.len()).sum();
    (grouped.len() * 10 <= before * 9).then_some(grouped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recover the path list from a grouped output, as the module docs describe.
    fn recover(out: &str) -> Vec<String> {
        let mut paths = Vec::new();
        for line in out.lines() {
            if super::super::is_marker(line) {
                continue;
            }
            match line.split_once("/: ") {
                Some((dir, names)) => {
                    for name in names.split(' ') {
                        paths.push(format!("{dir}/{name}"));
                    }
                }
                None => paths.push(line.to_string()),
            }
        }
        paths
    }

    /// `paths` grouped by directory, in the pass's documented order.
    fn stable_grouping(paths: &[&str]) -> Vec<String> {
        let mut order: Vec<&str> = Vec::new();
        let mut groups: HashMap<&str, Vec<&str>> = HashMap::new();
        for path in paths {
            let dir = &path[..split_point(path).unwrap()];
            groups.entry(dir).or_insert_with(|| {
                order.push(dir);
                Vec::new()
            });
            groups.get_mut(dir).unwrap().push(path);
        }
        order
            .iter()
            .flat_map(|d| groups[d].iter().map(|p| p.to_string()))
            .collect()
    }

    // dev-000293: `find django -path "*/migrations/*" -name "*.py" ... | head -30`.
    const MIGRATIONS: &str = "django/contrib/flatpages/migrations/__init__.py
django/contrib/flatpages/migrations/0001_initial.py
django/contrib/admin/migrations/__init__.py
django/contrib/admin/migrations/0003_logentry_add_action_flag_choices.py
django/contrib/admin/migrations/0002_logentry_remove_auto_add.py
django/contrib/admin/migrations/0001_initial.py
django/contrib/sessions/migrations/__init__.py
django/contrib/sessions/migrations/0001_initial.py
django/contrib/redirects/migrations/__init__.py
django/contrib/redirects/migrations/0001_initial.py
django/contrib/auth/migrations/0010_alter_group_name_max_length.py
django/contrib/auth/migrations/0004_alter_user_username_opts.py
django/contrib/auth/migrations/0005_alter_user_last_login_null.py
django/contrib/auth/migrations/0002_alter_permission_name_max_length.py
django/contrib/auth/migrations/__init__.py
django/contrib/sites/migrations/0002_alter_domain_unique.py
django/contrib/sites/migrations/__init__.py
";

    #[test]
    fn find_output_groups_by_directory() {
        let out = apply(MIGRATIONS);
        assert_eq!(
            out,
            "[kompress: next 17 paths grouped by directory; \"dir/: a b\" = dir/a, dir/b]
django/contrib/flatpages/migrations/: __init__.py 0001_initial.py
django/contrib/admin/migrations/: __init__.py 0003_logentry_add_action_flag_choices.py 0002_logentry_remove_auto_add.py 0001_initial.py
django/contrib/sessions/migrations/: __init__.py 0001_initial.py
django/contrib/redirects/migrations/: __init__.py 0001_initial.py
django/contrib/auth/migrations/: 0010_alter_group_name_max_length.py 0004_alter_user_username_opts.py 0005_alter_user_last_login_null.py 0002_alter_permission_name_max_length.py __init__.py
django/contrib/sites/migrations/: 0002_alter_domain_unique.py __init__.py
"
        );
        let paths: Vec<&str> = MIGRATIONS.lines().collect();
        assert_eq!(recover(&out), stable_grouping(&paths));
    }

    #[test]
    fn interleaved_sorted_list_recovers_exactly() {
        // dev-000874-like: `find requests -name "*.py" | sort`, plus odd names.
        let text = "requests/__init__.py
requests/adapters.py
requests/api.py
requests/packages/__init__.py
requests/packages/charade/__init__.py
requests/packages/charade/big5freq.py
requests/packages/charade/big5prober.py
requests/packages/charade/chardistribution.py
requests/packages/charade/charsetgroupprober.py
requests/packages/charade/charsetprober.py
requests/packages/charade/codingstatemachine.py
requests/packages/urllib3/__init__.py
requests/packages/urllib3/_collections.py
requests/sessions.py
requests/status_codes.py
./a/ünïcode-ñame.py
/abs/dir/
/abs/dir/file+1,2=3@x.txt
/abs/dir/.hidden";
        let out = apply(text);
        assert!(!out.ends_with('\n'));
        let paths: Vec<&str> = text.lines().collect();
        let recovered = recover(&out);
        assert_eq!(recovered, stable_grouping(&paths));
        let mut sorted_in: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let mut sorted_out = recovered.clone();
        sorted_in.sort();
        sorted_out.sort();
        assert_eq!(sorted_in, sorted_out);
        assert!(
            out.contains("requests/: __init__.py adapters.py api.py sessions.py status_codes.py\n")
        );
        // `/abs/dir/` is a path in `/abs/`, alone there: kept as printed.
        assert!(out.contains("\n/abs/dir/\n"));
    }

    #[test]
    fn paths_with_spaces_and_other_lines_stay_in_place() {
        let mut text = String::from("Found these:\n");
        for i in 0..10 {
            text.push_str(&format!("tests/unit/test_{i}.py\n"));
        }
        text.push_str("tests/unit/my file.py\n");
        for i in 0..3 {
            text.push_str(&format!("tests/unit/test_more_{i}.py\n"));
        }
        text.push_str("tests/a.py:12: match\n");
        let out = apply(&text);
        assert!(
            out.starts_with("Found these:\n[kompress: next 10 paths"),
            "{out}"
        );
        assert!(out.contains("\ntests/unit/: test_0.py test_1.py test_2.py"));
        // The spaced name ends the run; the short run after it is not grouped.
        assert!(out.contains("\ntests/unit/my file.py\ntests/unit/test_more_0.py\n"));
        assert!(out.ends_with("tests/a.py:12: match\n"));
    }

    #[test]
    fn ls_recursive_and_short_or_scattered_lists_stay() {
        let ls = "./django/db:\n__init__.py\nbackends\nmigrations\nmodels\nrouter.py\ntransaction.py\nutils.py\n\n./django/db/backends:\n__init__.py\nbase\n";
        assert!(matches!(apply(ls), Cow::Borrowed(_)));
        // dev-000922: every file in its own directory: grouping saves nothing.
        let scattered = "/testbed/tests/queryset_pickle/tests.py
/testbed/tests/swappable_models/tests.py
/testbed/tests/admin_views/tests.py
/testbed/tests/generic_views/test_dates.py
/testbed/tests/sites_tests/tests.py
/testbed/tests/schema/tests.py
/testbed/tests/m2m_regress/tests.py
/testbed/tests/proxy_model_inheritance/tests.py
/testbed/tests/save_delete_hooks/tests.py
";
        assert!(matches!(apply(scattered), Cow::Borrowed(_)));
        assert!(matches!(apply("a/b\na/c\n"), Cow::Borrowed(_)));
        assert!(matches!(apply(""), Cow::Borrowed(_)));
        let fractions = "1/2\n3/4\n5/6\n7/8\n1/3\n2/3\n1/5\n2/5\n";
        assert!(matches!(apply(fractions), Cow::Borrowed(_)));
    }

    #[test]
    fn crlf_lists() {
        let text: String = (0..12)
            .map(|i| format!("src/module/file_{i}.rs\r\n"))
            .collect();
        let out = apply(&text);
        assert!(out.ends_with("src/module/: file_0.rs file_1.rs file_2.rs file_3.rs file_4.rs file_5.rs file_6.rs file_7.rs file_8.rs file_9.rs file_10.rs file_11.rs\r\n"), "{out}");
        assert!(out.len() < text.len());
    }
}
