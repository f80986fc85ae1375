//! Which Bash commands the PreToolUse hook runs under `kompress run --trailer`, and how.
//!
//! Only commands that print a lot and may fail are worth it: test runners, builds, package
//! managers, linters and type checkers ([`DEFAULT_COMMANDS`], replaceable in the config's
//! `[rewrite]` table). Of a command line, each top-level simple command that starts with
//! one of them is wrapped where it stands (`RUNNER` is `'/p/kompress' run --trailer` with
//! the call's transcript and id, [`super::pre`]), and nothing else moves:
//!
//! ```text
//! cd sub && FOO=1 pytest -x; echo done   →   cd sub && FOO=1 RUNNER -- pytest -x; echo done
//! ```
//!
//! So `cd`, `export` and everything else still run in Claude Code's own shell (a `cd`
//! still moves its working directory for the next call), `&&` and `||` see the command's
//! own exit status, and quoting is untouched: the words after the insertion point are
//! the ones the user wrote.
//!
//! Never rewritten: a line kompress cannot read, a heredoc, anything in the background, a
//! line that already runs kompress, a line the user excluded, a command in a pipeline
//! (its output goes to the next command, not to the agent), a command whose output is
//! redirected to a file, a command nested in a subshell, group, loop or condition, and
//! watch modes, debuggers and servers (see [`INTERACTIVE_WORDS`]).

use super::shell::{self, Simple};

/// Commands that print a lot and may fail, as word prefixes. A first word is compared by
/// file name (`./node_modules/.bin/jest` is `jest`), and `python3`, `python3.12`, `pip3`
/// count as `python` and `pip`.
pub const DEFAULT_COMMANDS: &[&str] = &[
    // Python
    "pytest",
    "py.test",
    "python -m pytest",
    "python -m unittest",
    "python -m mypy",
    "python -m pip install",
    "python setup.py test",
    "python setup.py build",
    "python manage.py test",
    "tox",
    "nox",
    "mypy",
    "pyright",
    "ruff check",
    "pylint",
    "flake8",
    "pip install",
    "uv sync",
    "uv pip install",
    "poetry install",
    // Rust
    "cargo test",
    "cargo build",
    "cargo check",
    "cargo clippy",
    "cargo nextest",
    "cargo bench",
    "cargo doc",
    "cargo install",
    // JavaScript and TypeScript
    "npm test",
    "npm t",
    "npm run test",
    "npm run build",
    "npm run lint",
    "npm run typecheck",
    "npm ci",
    "npm install",
    "npm i",
    "pnpm test",
    "pnpm install",
    "pnpm build",
    "pnpm run test",
    "pnpm run build",
    "pnpm run lint",
    "yarn test",
    "yarn install",
    "yarn build",
    "bun test",
    "bun install",
    "jest",
    "vitest run",
    "mocha",
    "tsc",
    "eslint",
    "playwright test",
    "next build",
    // Go
    "go test",
    "go build",
    "go vet",
    "golangci-lint run",
    // JVM, .NET
    "mvn",
    "mvnw",
    "gradle",
    "gradlew",
    "sbt test",
    "sbt compile",
    "dotnet test",
    "dotnet build",
    // C and C++
    "make",
    "cmake --build",
    "ninja",
    "ctest",
    "meson test",
    "meson compile",
    // Others
    "rspec",
    "bundle install",
    "rake test",
    "rails test",
    "phpunit",
    "composer install",
    "mix test",
    "mix compile",
    "swift build",
    "swift test",
    "bazel test",
    "bazel build",
    "docker build",
];

/// Words that run something first and then the command of interest: `time pytest`,
/// `uv run pytest`, `npx jest`. The wrapper is wrapped too; it is skipped only to find
/// what it runs.
const WRAPPERS: &[&[&str]] = &[
    &["time"],
    &["nice"],
    &["timeout"],
    &["env"],
    &["stdbuf"],
    &["xvfb-run"],
    &["uv", "run"],
    &["poetry", "run"],
    &["pipenv", "run"],
    &["pdm", "run"],
    &["hatch", "run"],
    &["rye", "run"],
    &["bundle", "exec"],
    &["npx"],
    &["bunx"],
    &["pnpm", "exec"],
    &["pnpm", "dlx"],
    &["yarn", "dlx"],
];

/// Arguments after the matched command that mean it waits for input, never ends or serves:
/// their output is not one result to shorten.
pub const INTERACTIVE_WORDS: &[&str] = &[
    "--watch",
    "--watchAll",
    "--pdb",
    "--trace",
    "--ui",
    "-i",
    "--interactive",
    "watch",
    "serve",
    "server",
    "dev",
    "start",
    "run",
    "shell",
    "repl",
];

/// What to rewrite: the command table and the user's exclusions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Rewrite at all.
    pub enabled: bool,
    /// Command prefixes worth running under kompress (default [`DEFAULT_COMMANDS`]).
    pub commands: Vec<String>,
    /// Command prefixes never rewritten, matched like `commands`.
    pub exclude: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            commands: DEFAULT_COMMANDS.iter().map(|c| c.to_string()).collect(),
            exclude: Vec::new(),
        }
    }
}

/// A rewritten command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    /// The new command line.
    pub command: String,
    /// The simple commands now run under kompress, as written.
    pub wrapped: Vec<String>,
}

/// `command` with each noisy top-level command run under `runner` (`kompress run
/// --trailer` and its options, the program shell quoted as needed), as `RUNNER -- CMD`;
/// `Err` says why it stays as it is.
pub fn plan(command: &str, settings: &Settings, runner: &str) -> Result<Rewrite, &'static str> {
    if !settings.enabled {
        return Err("rewrite off");
    }
    let line = shell::parse(command).ok_or("unreadable command")?;
    if line.heredoc {
        return Err("heredoc");
    }
    if line.background {
        return Err("background");
    }
    if line
        .commands
        .iter()
        .any(|c| c.words.first().is_some_and(|w| normalize(w) == "kompress"))
    {
        return Err("runs kompress");
    }
    let patterns = |list: &[String]| -> Vec<Vec<String>> {
        list.iter()
            .map(|p| p.split_whitespace().map(normalize).collect())
            .filter(|p: &Vec<String>| !p.is_empty())
            .collect()
    };
    let (wanted, excluded) = (patterns(&settings.commands), patterns(&settings.exclude));
    if line
        .commands
        .iter()
        .any(|c| excluded.iter().any(|p| matches(c, p).is_some()))
    {
        return Err("excluded");
    }
    let mut at: Vec<(usize, &Simple)> = Vec::new();
    for simple in &line.commands {
        let Some(program_at) = simple.program_at else {
            continue;
        };
        if simple.depth > 0 || simple.pipe.1 > 1 || redirects_output(simple) {
            continue;
        }
        let Some(rest) = wanted.iter().find_map(|p| matches(simple, p)) else {
            continue;
        };
        if simple.words[rest..]
            .iter()
            .any(|w| INTERACTIVE_WORDS.contains(&w.as_str()))
        {
            continue;
        }
        at.push((program_at, simple));
    }
    if at.is_empty() {
        return Err("no noisy command");
    }
    let mut new = command.to_string();
    for (offset, _) in at.iter().rev() {
        new.insert_str(*offset, &format!("{runner} -- "));
    }
    Ok(Rewrite {
        command: new,
        wrapped: at
            .iter()
            .map(|(_, s)| command[s.range.clone()].to_string())
            .collect(),
    })
}

/// A word as the table compares it: its file name, with `python3.12` as `python` and
/// `pip3` as `pip`.
fn normalize(word: &str) -> String {
    let name = word.rsplit('/').next().unwrap_or(word);
    for family in ["python", "pip"] {
        if let Some(version) = name.strip_prefix(family)
            && version.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            return family.to_string();
        }
    }
    name.to_string()
}

/// Where the words after `pattern` start in `simple`, past any wrappers; `None` when it
/// does not start with `pattern`.
fn matches(simple: &Simple, pattern: &[String]) -> Option<usize> {
    let words: Vec<String> = simple.words.iter().map(|w| normalize(w)).collect();
    let mut i = 0;
    // Skip wrappers and what belongs to them (options, a duration, assignments).
    'wrappers: loop {
        for wrapper in WRAPPERS {
            let end = i + wrapper.len();
            if end <= words.len() && words[i..end].iter().zip(*wrapper).all(|(w, p)| w == p) {
                i = end;
                while i < words.len()
                    && (words[i].starts_with('-')
                        || words[i].contains('=')
                        || (wrapper[0] == "timeout" && starts_with_digit(&words[i])))
                {
                    i += 1;
                }
                continue 'wrappers;
            }
        }
        break;
    }
    let end = i + pattern.len();
    (end <= words.len() && words[i..end] == *pattern).then_some(end)
}

fn starts_with_digit(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// Whether `simple` sends its output somewhere else than to the agent: any output
/// redirection but `2>&1` (which `kompress run` does anyway).
fn redirects_output(simple: &Simple) -> bool {
    simple
        .redirections
        .iter()
        .any(|r| r.op.contains('>') && !(r.op == ">&" && r.fd == Some(2) && r.target == "1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "/k/kompress run --trailer";

    fn rewrite(command: &str) -> Result<String, &'static str> {
        plan(command, &Settings::default(), K).map(|r| r.command)
    }

    #[test]
    fn wraps_noisy_commands_where_they_stand() {
        assert_eq!(
            rewrite("pytest -x tests/").unwrap(),
            "/k/kompress run --trailer -- pytest -x tests/"
        );
        assert_eq!(
            rewrite("cd sub && python3 -m pytest -v").unwrap(),
            "cd sub && /k/kompress run --trailer -- python3 -m pytest -v"
        );
        assert_eq!(
            rewrite("FOO=1 BAR='a b' cargo test --all; echo done").unwrap(),
            "FOO=1 BAR='a b' /k/kompress run --trailer -- cargo test --all; echo done"
        );
        assert_eq!(
            rewrite("cargo build 2>&1 && cargo test -q").unwrap(),
            "/k/kompress run --trailer -- cargo build 2>&1 && /k/kompress run --trailer -- cargo test -q"
        );
        assert_eq!(
            rewrite("timeout 300 uv run pytest \"tests/a b.py\"").unwrap(),
            "/k/kompress run --trailer -- timeout 300 uv run pytest \"tests/a b.py\""
        );
        assert_eq!(
            rewrite("./node_modules/.bin/jest --ci").unwrap(),
            "/k/kompress run --trailer -- ./node_modules/.bin/jest --ci"
        );
        assert_eq!(
            rewrite("/usr/bin/python3.12 -m pytest # run them\n").unwrap(),
            "/k/kompress run --trailer -- /usr/bin/python3.12 -m pytest # run them\n"
        );
        assert_eq!(
            rewrite("git status\nmake -j4 check").unwrap(),
            "git status\n/k/kompress run --trailer -- make -j4 check"
        );
    }

    #[test]
    fn leaves_what_it_must_not_touch() {
        for (command, why) in [
            ("ls -la", "no noisy command"),
            ("echo 'pytest'", "no noisy command"),
            ("pytest | tail -5", "no noisy command"),
            ("cargo test > log.txt", "no noisy command"),
            ("cargo test &>/dev/null", "no noisy command"),
            ("(cd sub && pytest)", "no noisy command"),
            ("for t in a b; do pytest $t; done", "no noisy command"),
            ("if pytest; then echo ok; fi", "no noisy command"),
            ("npm test -- --watch", "no noisy command"),
            ("make serve", "no noisy command"),
            ("pytest --pdb", "no noisy command"),
            ("pytest &", "background"),
            ("cat <<EOF | python3 -m pytest\nx\nEOF", "heredoc"),
            ("kompress run -- pytest", "runs kompress"),
            ("'/k/kompress' run --trailer -- pytest", "runs kompress"),
            ("pytest 'unbalanced", "unreadable command"),
        ] {
            assert_eq!(rewrite(command), Err(why), "{command}");
        }
    }

    #[test]
    fn settings_replace_the_table_and_exclude() {
        let mut settings = Settings {
            exclude: vec!["make deploy".into()],
            ..Settings::default()
        };
        assert_eq!(
            plan("make deploy", &settings, K).map(|r| r.command),
            Err("excluded")
        );
        assert!(plan("make check", &settings, K).is_ok());
        settings.commands = vec!["./run-tests.sh".into()];
        assert!(plan("make check", &settings, K).is_err());
        assert!(plan("./run-tests.sh --all", &settings, K).is_ok());
        settings.enabled = false;
        assert_eq!(plan("./run-tests.sh", &settings, K), Err("rewrite off"));
    }

    #[test]
    fn reports_what_it_wrapped() {
        let r = plan("cd a && pytest -q && cargo test", &Settings::default(), K).unwrap();
        assert_eq!(r.wrapped, vec!["pytest -q", "cargo test"]);
    }
}
