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
//! ok   hook    registered in /home/u/.claude/settings.json: `/home/u/.local/bin/kompress hook`
//! warn claude  Claude Code 2.1.100 is older than 2.1.121: …
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

/// The first Claude Code release whose PostToolUse hooks can replace built-in tools' output.
pub const MIN_CLAUDE_VERSION: (u32, u32, u32) = (2, 1, 121);

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

/// Where kompress's PostToolUse hook is registered, and whether its command can run.
fn hook() -> Vec<Check> {
    let mut files = Vec::new();
    files.extend(init::user_settings_path());
    if let Ok(project) = init::project_settings_path() {
        files.push(project.with_file_name("settings.local.json"));
        files.push(project);
    }
    files.dedup();
    let mut checks = Vec::new();
    let mut registered = false;
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
        for registration in init::registrations(&settings) {
            registered = true;
            checks.push(registration_check(path, &registration));
        }
    }
    if !registered {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        checks.push(Check::new(
            Status::Warn,
            "hook",
            format!(
                "not registered in {}; run `kompress init` (or `kompress init --project`)",
                names.join(" or ")
            ),
        ));
    }
    checks
}

fn registration_check(path: &Path, registration: &init::Registration) -> Check {
    let matcher = registration.matcher.as_deref().unwrap_or("*");
    let detail = format!(
        "registered in {}: `{}` (matcher {matcher})",
        path.display(),
        registration.command
    );
    match command_program(&registration.command) {
        Some(program) if !runs(&program) => Check::new(
            Status::Fail,
            "hook",
            format!("{detail}, but {program} cannot be run; run `kompress init` again"),
        ),
        _ => Check::new(Status::Ok, "hook", detail),
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
                     newer is needed (older versions ignore updatedToolOutput for built-in tools)"
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
        Some(found) => Check::new(
            Status::Warn,
            "claude",
            format!(
                "Claude Code {} is older than {need_text}: older versions ignore \
                 updatedToolOutput for built-in tools, so only MCP output is shortened; \
                 update with `claude update`",
                show(found)
            ),
        ),
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
        let check = registration_check(
            Path::new("/s.json"),
            &init::Registration {
                matcher: None,
                command: "/nonexistent/kompress hook".into(),
            },
        );
        assert_eq!(check.status, Status::Fail);
        assert!(check.detail.contains("cannot be run"), "{}", check.detail);
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
