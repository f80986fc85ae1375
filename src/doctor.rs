//! `kompress doctor`: check the installation, one line per check.
//!
//! Owns: the checklist (binary, PATH, config, model, hook registration, Claude Code's version,
//! log file) and its exit status: an error only when a check fails outright.
//! Does not own: reading settings files or recognizing kompress's hook ([`crate::init`]).
//!
//! ```text
//! ok   binary  /home/u/.local/bin/kompress (kompress 0.1.0, built without CUDA)
//! ok   config  no file at /home/u/.config/kompress/config.toml; using the defaults
//! ok   model   ModernBERT token classifier (4 layers, hidden 256) from /home/u/.local/share/kompress/model/model.q8_0.gguf on cpu, found via the data directory
//! ok   hook    registered in /home/u/.claude/settings.json: PostToolUse, PreToolUse (Bash), SessionStart (compact): `/home/u/.local/bin/kompress hook`
//! warn claude  Claude Code 2.1.100 is older than 2.1.121: …
//! ```
//!
//! The `hook` lines: one per settings file and command, naming the events it is registered
//! for, `FAIL` when the command cannot run; then, when an event of [`init::EVENTS`] is
//! registered nowhere (an install by an older kompress has PostToolUse only), a warning naming
//! it and asking to run `kompress init` again:
//!
//! ```text
//! ok   hook    registered in /home/u/.claude/settings.json: PostToolUse: `/home/u/.local/bin/kompress hook`
//! warn hook    PreToolUse (Bash), SessionStart (compact) not registered (only PostToolUse is, …); run `kompress init` again to add PreToolUse and SessionStart
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::config::Config;
use crate::init;
use crate::paths::Dirs;
use crate::scorer::{LazyModel, Scorer};

/// The first Claude Code release whose PostToolUse hooks can replace built-in tools' output
/// (`updatedToolOutput` for all tools): the version kompress needs.
pub const MIN_CLAUDE_VERSION: (u32, u32, u32) = (2, 1, 121);

/// The first Claude Code release that takes a PreToolUse `updatedInput` together with the
/// `ask` decision, as kompress's rewrite of a command no allow rule matches sends it
/// (`updatedInput` itself came in 2.0.10). Older than [`MIN_CLAUDE_VERSION`], so a Claude Code
/// that passes the version check runs both.
pub const MIN_PRE_TOOL_USE_VERSION: (u32, u32, u32) = (2, 1, 0);

/// How long `claude --version` may take.
const CLAUDE_TIMEOUT: Duration = Duration::from_secs(5);

/// How the model line starts when the model pass cannot run.
const RULES_ONLY: &str = "rules-only (structural passes, no model pass)";

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// As it should be.
    Ok,
    /// Works, but something is missing or worth a look.
    Warn,
    /// kompress will not work as installed.
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The outcome.
    pub status: Status,
    /// What was checked, one word.
    pub name: &'static str,
    /// What was found, and what to do about a problem.
    pub detail: String,
}

impl Check {
    fn new(status: Status, name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            status,
            name,
            detail: detail.into(),
        }
    }
}

/// Run `kompress doctor`.
pub fn main() -> Result<()> {
    let dirs = Dirs::resolve();
    let mut checks = vec![binary()];
    checks.push(on_path());
    checks.push(config(dirs.as_ref()));
    let config = Config::load().unwrap_or_default();
    checks.push(model(
        config.model,
        crate::scorer::installed(&config, &Default::default()).as_ref(),
    ));
    checks.extend(hook());
    checks.push(claude());
    checks.push(state(dirs.as_ref()));
    for check in &checks {
        println!(
            "{:<4} {:<7} {}",
            check.status.label(),
            check.name,
            check.detail
        );
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        bail!("{failed} check(s) failed");
    }
    Ok(())
}

fn version() -> String {
    let cuda = if crate::model::device::COMPILED_WITH_CUDA {
        "with"
    } else {
        "without"
    };
    format!("kompress {}, built {cuda} CUDA", env!("CARGO_PKG_VERSION"))
}

fn binary() -> Check {
    match std::env::current_exe() {
        Ok(exe) => Check::new(
            Status::Ok,
            "binary",
            format!("{} ({})", exe.display(), version()),
        ),
        Err(err) => Check::new(
            Status::Warn,
            "binary",
            format!("cannot tell where this binary is: {err} ({})", version()),
        ),
    }
}

/// Whether `kompress` on PATH is this binary (the plugin's hooks.json runs it by name).
fn on_path() -> Check {
    let Some(found) = which("kompress") else {
        return Check::new(
            Status::Warn,
            "path",
            "`kompress` is not on PATH; `kompress init` registers the absolute path, but the \
             plugin hook (hooks/hooks.json) and your shell need it on PATH",
        );
    };
    let same = match (std::env::current_exe(), found.canonicalize()) {
        (Ok(exe), Ok(found)) => exe.canonicalize().is_ok_and(|exe| exe == found),
        _ => false,
    };
    if same {
        Check::new(
            Status::Ok,
            "path",
            format!("`kompress` on PATH is {}", found.display()),
        )
    } else {
        Check::new(
            Status::Warn,
            "path",
            format!("`kompress` on PATH is {}, not this binary", found.display()),
        )
    }
}

fn config(dirs: Option<&Dirs>) -> Check {
    let path = std::env::var_os("KOMPRESS_CONFIG")
        .map(PathBuf::from)
        .or_else(|| dirs.map(Dirs::config_file));
    match Config::load() {
        Err(err) => Check::new(
            Status::Fail,
            "config",
            format!("{err:#}; the hook passes everything through until this is fixed"),
        ),
        Ok(config) => {
            let source = match &path {
                Some(path) if path.exists() => format!("{} parses", path.display()),
                Some(path) => format!("no file at {}; using the defaults", path.display()),
                None => "no config directory; using the defaults".to_string(),
            };
            if config.disable {
                Check::new(
                    Status::Warn,
                    "config",
                    format!(
                        "{source}, but kompress is disabled (disable = true or \
                             KOMPRESS_DISABLE): every output passes through unchanged"
                    ),
                )
            } else {
                Check::new(Status::Ok, "config", source)
            }
        }
    }
}

/// The model line: whether the hook will run the model pass, with which model, or why not.
/// The model is loaded here, as the hook would load it, so a broken file shows up now.
fn model(enabled: bool, found: Option<&LazyModel>) -> Check {
    if !enabled {
        return Check::new(
            Status::Ok,
            "model",
            format!("{RULES_ONLY}: turned off by `model = false` or KOMPRESS_NO_MODEL"),
        );
    }
    let Some(found) = found else {
        return Check::new(
            Status::Warn,
            "model",
            format!(
                "{RULES_ONLY}: no model found (KOMPRESS_MODEL, the data directory's model/); \
                 run ./install.sh from a checkout to install the shipped one"
            ),
        );
    };
    match found.get() {
        Ok(scorer) => Check::new(
            Status::Ok,
            "model",
            format!("{}, found via {}", scorer.describe(), found.source_name()),
        ),
        Err(err) => Check::new(
            Status::Warn,
            "model",
            format!(
                "{RULES_ONLY}: the model cannot be loaded, so the hook skips it: {err:#}; \
                 reinstall it (./install.sh) or point KOMPRESS_MODEL at a model directory"
            ),
        ),
    }
}

/// Where kompress's hook is registered, for which events of [`init::EVENTS`], and whether its
/// command can run. Claude Code merges the settings files, so an event registered in any of
/// them counts.
fn hook() -> Vec<Check> {
    let mut files = Vec::new();
    files.extend(init::user_settings_path());
    if let Ok(project) = init::project_settings_path() {
        files.push(project.with_file_name("settings.local.json"));
        files.push(project);
    }
    files.dedup();
    let mut checks = Vec::new();
    let mut found = Vec::new();
    for path in &files {
        let settings = match init::read_settings(path) {
            Ok(file) if file.original.is_none() => continue,
            Ok(file) => file.value,
            Err(err) => {
                checks.push(Check::new(
                    Status::Warn,
                    "hook",
                    format!("cannot check: {err:#}"),
                ));
                continue;
            }
        };
        let registrations = init::registrations(&settings);
        checks.extend(registration_checks(path, &registrations));
        found.extend(registrations);
    }
    if found.is_empty() {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        checks.push(Check::new(
            Status::Warn,
            "hook",
            format!(
                "not registered in {}; run `kompress init` (or `kompress init --project`) to \
                 register {}",
                names.join(" or "),
                init::labels(&init::EVENTS)
            ),
        ));
    } else {
        checks.extend(coverage(&found));
    }
    checks
}

/// One line per command registered in the settings file at `path`, naming its events: `ok`, or
/// `FAIL` when the command cannot run.
fn registration_checks(path: &Path, registrations: &[init::Registration]) -> Vec<Check> {
    let mut commands: Vec<(&str, Vec<String>)> = Vec::new();
    for registration in registrations {
        let shown = shown_event(registration);
        match commands
            .iter_mut()
            .find(|(command, _)| *command == registration.command)
        {
            Some((_, events)) => events.push(shown),
            None => commands.push((&registration.command, vec![shown])),
        }
    }
    commands
        .into_iter()
        .map(|(command, events)| {
            let detail = format!(
                "registered in {}: {}: `{command}`",
                path.display(),
                events.join(", ")
            );
            match command_program(command) {
                Some(program) if !runs(&program) => Check::new(
                    Status::Fail,
                    "hook",
                    format!("{detail}, but {program} cannot be run; run `kompress init` again"),
                ),
                _ => Check::new(Status::Ok, "hook", detail),
            }
        })
        .collect()
}

/// A registration's event as the report shows it: the table's label when the matcher is the
/// table's, the matcher spelled out when the user changed it, a note for an event outside
/// the table.
fn shown_event(registration: &init::Registration) -> String {
    let matcher = registration.matcher.as_deref().unwrap_or("*");
    match init::event(&registration.event) {
        Some(event) if event.matcher == matcher => event.label(),
        Some(event) => format!("{} (matcher {matcher})", event.name),
        None => format!(
            "{} (not an event `kompress init` registers)",
            registration.event
        ),
    }
}

/// A warning naming the events of [`init::EVENTS`] that no registration covers; `None` when
/// every one is registered.
fn coverage(found: &[init::Registration]) -> Option<Check> {
    let (present, missing): (Vec<&init::Event>, Vec<&init::Event>) = init::EVENTS
        .iter()
        .partition(|event| found.iter().any(|r| r.event == event.name));
    if missing.is_empty() {
        return None;
    }
    let names: Vec<&str> = missing.iter().map(|e| e.name).collect();
    let names = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    };
    let only = if present.is_empty() {
        String::new()
    } else if present.len() == 1 && present[0].name == "PostToolUse" {
        " (only PostToolUse is, as an older kompress registered it)".to_string()
    } else {
        format!(" (only {} is)", init::labels(present.iter().copied()))
    };
    let losses: Vec<&str> = missing.iter().map(|e| loss(e.name)).collect();
    Some(Check::new(
        Status::Warn,
        "hook",
        format!(
            "{} not registered{only}: {}; run `kompress init` again to add {names}",
            init::labels(missing.iter().copied()),
            losses.join(", and ")
        ),
    ))
}

/// What kompress cannot do without its hook for `event`.
fn loss(event: &str) -> &'static str {
    match event {
        "PostToolUse" => "no tool output is shortened",
        "PreToolUse" => "the output of failing commands reaches the agent whole",
        "SessionStart" => {
            "after a compaction kompress may still call an output unchanged since a call the \
             agent no longer sees"
        }
        _ => "that event is not handled",
    }
}

/// The program a registered command runs, when it can be told without a shell. `None` for
/// commands using shell variables (`${CLAUDE_PLUGIN_ROOT}`).
fn command_program(command: &str) -> Option<String> {
    if command.contains('$') {
        return None;
    }
    init::kompress_program(command)
}

/// Whether `program` (a path, or a name looked up on PATH) is an executable file.
fn runs(program: &str) -> bool {
    if program.contains('/') {
        is_executable(Path::new(program))
    } else {
        which(program).is_some()
    }
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    path.is_file()
}

/// The first executable called `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Claude Code's version, from `claude --version`.
fn claude() -> Check {
    let need = format!(
        "{}.{}.{}",
        MIN_CLAUDE_VERSION.0, MIN_CLAUDE_VERSION.1, MIN_CLAUDE_VERSION.2
    );
    let Some(program) = which("claude") else {
        return Check::new(
            Status::Warn,
            "claude",
            format!(
                "`claude` is not on PATH, so its version is unknown; Claude Code {need} or \
                 newer is needed (older versions ignore updatedToolOutput for built-in tools; \
                 the PreToolUse rewrite needs {})",
                show(MIN_PRE_TOOL_USE_VERSION)
            ),
        );
    };
    match run_with_timeout(&program, &["--version"], CLAUDE_TIMEOUT) {
        Ok(output) => claude_check(&program, &output),
        Err(err) => Check::new(
            Status::Warn,
            "claude",
            format!(
                "`{} --version` {err}; Claude Code {need} or newer is needed",
                program.display()
            ),
        ),
    }
}

/// Judge `claude --version`'s output.
fn claude_check(program: &Path, output: &str) -> Check {
    let need = MIN_CLAUDE_VERSION;
    let need_text = format!("{}.{}.{}", need.0, need.1, need.2);
    match parse_version(output) {
        Some(found) if found >= need => Check::new(
            Status::Ok,
            "claude",
            format!(
                "Claude Code {} at {} (>= {need_text})",
                show(found),
                program.display()
            ),
        ),
        Some(found) => {
            let pre = MIN_PRE_TOOL_USE_VERSION;
            let pre_tool_use = if found >= pre {
                format!(
                    " (the PreToolUse rewrite of failing commands works from {})",
                    show(pre)
                )
            } else {
                format!(
                    ", and failing commands are not shortened either: the PreToolUse rewrite \
                     needs {} (updatedInput with `ask`)",
                    show(pre)
                )
            };
            Check::new(
                Status::Warn,
                "claude",
                format!(
                    "Claude Code {} is older than {need_text}: older versions ignore \
                     updatedToolOutput for built-in tools, so only MCP output is \
                     shortened{pre_tool_use}; update with `claude update`",
                    show(found)
                ),
            )
        }
        None => Check::new(
            Status::Warn,
            "claude",
            format!(
                "cannot read a version in `{}` from `{} --version`; {need_text} or newer is needed",
                output.trim(),
                program.display()
            ),
        ),
    }
}

fn show((major, minor, patch): (u32, u32, u32)) -> String {
    format!("{major}.{minor}.{patch}")
}

/// The first `X.Y.Z` in `text`.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find_map(|word| {
            let mut parts = word.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            let patch = parts.next()?.parse().ok()?;
            Some((major, minor, patch))
        })
}

/// Run `program args`, its stdout as text; gives up (and kills it) after `timeout`.
fn run_with_timeout(program: &Path, args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot run: {err}"))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not answer within {} s", timeout.as_secs()));
            }
            Err(err) => return Err(format!("cannot wait: {err}")),
        }
    };
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut output);
    }
    if status.success() {
        Ok(output)
    } else {
        Err(format!("failed ({status})"))
    }
}

fn state(dirs: Option<&Dirs>) -> Check {
    let Some(dirs) = dirs else {
        return Check::new(
            Status::Warn,
            "state",
            "no home directory known: the hook cannot log",
        );
    };
    let log = dirs.log_file();
    match log.metadata() {
        Ok(meta) => Check::new(
            Status::Ok,
            "state",
            format!("log file {} ({} bytes)", log.display(), meta.len()),
        ),
        Err(_) => Check::new(
            Status::Ok,
            "state",
            format!("log file {} (none yet: nothing logged)", log.display()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("2.1.240 (Claude Code)\n"), Some((2, 1, 240)));
        assert_eq!(parse_version("claude v2.1.121"), Some((2, 1, 121)));
        assert_eq!(parse_version("1.0.38"), Some((1, 0, 38)));
        assert_eq!(parse_version("version 2.1"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn judges_claude_versions() {
        let program = Path::new("/usr/bin/claude");
        assert_eq!(
            claude_check(program, "2.1.121 (Claude Code)").status,
            Status::Ok
        );
        assert_eq!(
            claude_check(program, "2.2.0 (Claude Code)").status,
            Status::Ok
        );
        assert_eq!(claude_check(program, "10.0.0").status, Status::Ok);
        let old = claude_check(program, "2.1.120 (Claude Code)");
        assert_eq!(old.status, Status::Warn);
        assert!(
            old.detail
                .contains("older versions ignore updatedToolOutput"),
            "{}",
            old.detail
        );
        assert!(
            old.detail
                .contains("PreToolUse rewrite of failing commands works from 2.1.0"),
            "{}",
            old.detail
        );
        let older = claude_check(program, "2.0.76 (Claude Code)");
        assert_eq!(older.status, Status::Warn);
        assert!(
            older.detail.contains(
                "failing commands are not shortened either: the PreToolUse rewrite needs 2.1.0"
            ),
            "{}",
            older.detail
        );
        assert_eq!(claude_check(program, "garbage").status, Status::Warn);
    }

    #[test]
    fn model_line_says_what_the_hook_will_do() {
        let off = model(false, None);
        assert_eq!(off.status, Status::Ok);
        assert!(off.detail.starts_with(RULES_ONLY) && off.detail.contains("model = false"));

        let none = model(true, None);
        assert_eq!(none.status, Status::Warn);
        assert!(none.detail.contains("no model found"), "{}", none.detail);

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let broken = LazyModel::new(
            dir.path().to_path_buf(),
            crate::model::ModelSource::Env,
            Default::default(),
        );
        let check = model(true, Some(&broken));
        assert_eq!(check.status, Status::Warn);
        assert!(
            check.detail.contains("cannot be loaded"),
            "{}",
            check.detail
        );

        let (shipped, source) =
            crate::model::resolve_model_dir(None).expect("model/ ships a model");
        let check = model(
            true,
            Some(&LazyModel::new(shipped, source, Default::default())),
        );
        assert_eq!(check.status, Status::Ok, "{}", check.detail);
        assert!(check.detail.contains("ModernBERT"), "{}", check.detail);
    }

    #[test]
    fn finds_the_registered_program() {
        assert_eq!(
            command_program("'/a b/kompress' hook"),
            Some("/a b/kompress".to_string())
        );
        assert_eq!(
            command_program("X=1 kompress hook"),
            Some("kompress".to_string())
        );
        assert_eq!(command_program("${CLAUDE_PLUGIN_ROOT}/kompress hook"), None);
        let registration = |event: &str, matcher: Option<&str>, command: &str| init::Registration {
            event: event.into(),
            matcher: matcher.map(str::to_string),
            command: command.into(),
        };
        let checks = registration_checks(
            Path::new("/s.json"),
            &[
                registration("PostToolUse", None, "/nonexistent/kompress hook"),
                registration("PreToolUse", Some("Bash"), "/nonexistent/kompress hook"),
                registration("SessionStart", Some("compact"), "/bin/sh"),
            ],
        );
        assert_eq!(checks.len(), 2, "{checks:?}");
        assert_eq!(checks[0].status, Status::Fail);
        assert_eq!(
            checks[0].detail,
            "registered in /s.json: PostToolUse (matcher *), PreToolUse (Bash): \
             `/nonexistent/kompress hook`, but /nonexistent/kompress cannot be run; run \
             `kompress init` again"
        );
        // A command whose program cannot be told (not `kompress hook`) is not judged.
        assert_eq!(checks[1].status, Status::Ok, "{checks:?}");
    }

    fn registered(events: &[(&str, &str)]) -> Vec<init::Registration> {
        events
            .iter()
            .map(|&(event, matcher)| init::Registration {
                event: event.into(),
                matcher: Some(matcher.into()),
                command: "/usr/bin/kompress hook".into(),
            })
            .collect()
    }

    #[test]
    fn every_event_registered_is_ok() {
        let all: Vec<(&str, &str)> = init::EVENTS.iter().map(|e| (e.name, e.matcher)).collect();
        assert_eq!(coverage(&registered(&all)), None);
        // A kompress that runs.
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("kompress");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let command = init::hook_command(&exe).unwrap();
        let mut registrations = registered(&all);
        for registration in &mut registrations {
            registration.command.clone_from(&command);
        }
        let checks = registration_checks(Path::new("/s.json"), &registrations);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].status, Status::Ok);
        assert_eq!(
            checks[0].detail,
            format!(
                "registered in /s.json: PostToolUse, PreToolUse (Bash), SessionStart (compact): \
                 `{command}`"
            )
        );
    }

    #[test]
    fn an_older_install_is_told_to_run_init_again() {
        let check = coverage(&registered(&[("PostToolUse", init::MATCHER)])).unwrap();
        assert_eq!(check.status, Status::Warn);
        assert!(
            check.detail.starts_with(
                "PreToolUse (Bash), SessionStart (compact) not registered (only PostToolUse is, \
                 as an older kompress registered it): the output of failing commands"
            ),
            "{}",
            check.detail
        );
        assert!(
            check
                .detail
                .ends_with("; run `kompress init` again to add PreToolUse and SessionStart"),
            "{}",
            check.detail
        );

        let check = coverage(&registered(&[("PreToolUse", "Bash")])).unwrap();
        assert!(
            check.detail.starts_with(
                "PostToolUse, SessionStart (compact) not registered (only PreToolUse (Bash) is)"
            ) && check
                .detail
                .ends_with("run `kompress init` again to add PostToolUse and SessionStart"),
            "{}",
            check.detail
        );

        // An event outside the table covers nothing.
        let check = coverage(&registered(&[("PreCompact", "")])).unwrap();
        assert!(
            check.detail.ends_with(
                "run `kompress init` again to add PostToolUse, PreToolUse and SessionStart"
            ),
            "{}",
            check.detail
        );
    }

    #[test]
    fn shows_matchers_the_user_changed() {
        let shown = |event: &str, matcher: Option<&str>| {
            shown_event(&init::Registration {
                event: event.into(),
                matcher: matcher.map(str::to_string),
                command: "kompress hook".into(),
            })
        };
        assert_eq!(shown("PostToolUse", Some(init::MATCHER)), "PostToolUse");
        assert_eq!(
            shown("PostToolUse", Some("Bash")),
            "PostToolUse (matcher Bash)"
        );
        assert_eq!(shown("SessionStart", None), "SessionStart (matcher *)");
        assert_eq!(
            shown("PreCompact", None),
            "PreCompact (not an event `kompress init` registers)"
        );
    }

    #[test]
    fn times_out_slow_commands() {
        let start = Instant::now();
        let result = run_with_timeout(
            Path::new("/bin/sh"),
            &["-c", "sleep 5"],
            Duration::from_millis(200),
        );
        assert!(result.unwrap_err().contains("did not answer"));
        assert!(start.elapsed() < Duration::from_secs(3));
        let echo = run_with_timeout(
            Path::new("/bin/sh"),
            &["-c", "echo 2.1.300"],
            Duration::from_secs(5),
        );
        assert_eq!(echo.unwrap().trim(), "2.1.300");
    }
}
