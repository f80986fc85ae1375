//! Permission rules over the settings files in `tests/fixtures/permissions/` (see its
//! README): every command of every `.cases` file gets the expected verdict.

use std::path::Path;

use kompress::hook::permissions::{Permissions, Scope, Verdict};
use serde_json::Value;

const DIR: &str = "tests/fixtures/permissions";

/// The settings files of one fixture, lowest precedence first.
fn settings(dir: &Path, name: &str) -> Vec<(Scope, Value)> {
    let mut found = Vec::new();
    for (suffix, scope) in [
        ("", Scope::User),
        (".user", Scope::User),
        (".project", Scope::Project),
        (".local", Scope::Local),
        (".managed", Scope::Managed),
    ] {
        let path = dir.join(format!("{name}{suffix}.json"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            let value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            found.push((scope, value));
        }
    }
    assert!(!found.is_empty(), "no settings for {name}");
    found
}

fn expected(verdict: &str, rule: &str) -> Verdict {
    match verdict {
        "deny" => Verdict::Deny(rule.into()),
        "ask" => Verdict::Ask(rule.into()),
        "allow" => Verdict::Allow(rule.into()),
        "none" => Verdict::NoMatch,
        other => panic!("unknown verdict {other}"),
    }
}

#[test]
fn fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".cases").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 15, "only {} fixtures", names.len());
    let (mut checked, mut failures) = (0, Vec::new());
    for name in &names {
        let permissions = Permissions::from_scoped(&settings(&dir, name));
        let cases = std::fs::read_to_string(dir.join(format!("{name}.cases"))).unwrap();
        for line in cases
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let mut fields = line.splitn(3, '\t');
            let (verdict, rule, command) = (
                fields.next().unwrap(),
                fields.next().expect("a rule column"),
                fields.next().expect("a command column"),
            );
            let command: String = serde_json::from_str(command)
                .unwrap_or_else(|e| panic!("{name}: bad command {command}: {e}"));
            let want = expected(verdict, rule);
            let got = permissions.verdict(&command);
            if got != want {
                failures.push(format!("{name}: {command:?}: want {want:?}, got {got:?}"));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 100, "only {checked} cases");
}
