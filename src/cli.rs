//! The command line: argument parsing, I/O and exit codes around the library.
//!
//! Modes:
//! - `kompress` (no subcommand): pipe, text on stdin, compressed text on stdout;
//! - `kompress run -- CMD…`: run a command, compress its merged output, keep its exit code;
//! - `kompress hook`: Claude Code's PostToolUse hook (see [`crate::hook`]);
//! - `kompress init`, `kompress doctor`: set-up and checks.
//!
//! Hook mode fails open: whatever happens (bad input, a panic, the deadline) it exits 0,
//! prints nothing but its JSON, and logs problems to the state directory.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::domain::{Domain, Hints};
use crate::pipeline::{self, Request};
use crate::{doctor, eval, hook, init, log};

/// Shrinks tool output for coding agents, keeping the words that matter.
#[derive(Debug, Parser)]
#[command(name = "kompress", version, about, long_about = None)]
#[command(after_help = "Without a subcommand kompress is a pipe: `cmd 2>&1 | kompress`.")]
pub struct Cli {
    /// Compress as this domain instead of detecting it (pipe mode).
    #[arg(long, value_name = "NAME")]
    pub domain: Option<Domain>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Claude Code PostToolUse hook: payload on stdin, replacement JSON or nothing on stdout.
    Hook,
    /// Run a command, print its compressed output (stdout and stderr merged), keep its exit code.
    Run {
        /// Compress as this domain instead of detecting it.
        #[arg(long, value_name = "NAME")]
        domain: Option<Domain>,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
    /// Register the hook in Claude Code's settings.json (user scope by default).
    Init {
        /// Register in ./.claude/settings.json instead of ~/.claude/settings.json.
        #[arg(long)]
        project: bool,
        /// Remove exactly what `init` added.
        #[arg(long)]
        uninstall: bool,
        /// Settings file to edit (overrides --project).
        #[arg(long, value_name = "FILE")]
        settings: Option<std::path::PathBuf>,
    },
    /// Check the binary, the model, the hook registration and Claude Code's version.
    Doctor,
    /// Run a corpus through the real hook and report reduction, shapes and latency.
    Eval {
        /// A JSON Lines corpus in the dev-corpus format (`.jsonl` or `.jsonl.gz`).
        #[arg(long, value_name = "FILE")]
        corpus: std::path::PathBuf,
        /// Use only the first N records.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Print JSON instead of a markdown table.
        #[arg(long)]
        json: bool,
        /// Also write five before/after pairs per detected domain, as markdown, to FILE.
        #[arg(long, value_name = "FILE")]
        examples: Option<std::path::PathBuf>,
    },
}

/// Parse the arguments and run. The process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Hook) => hook_main(),
        None => report(pipe_main(cli.domain)),
        Some(Command::Run { domain, command }) => match run_main(domain, &command) {
            Ok(code) => code,
            Err(err) => {
                eprintln!("kompress: {err:#}");
                ExitCode::from(127)
            }
        },
        Some(Command::Init { project, uninstall, settings }) => {
            report(init::main(project, uninstall, settings.as_deref()))
        }
        Some(Command::Doctor) => report(doctor::main()),
        Some(Command::Eval { corpus, limit, json, examples }) => {
            report(eval::main(&corpus, limit, json, examples.as_deref()))
        }
    }
}

/// Print a CLI error the way a user can act on it.
fn report(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kompress: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// CLI modes wait for a result longer than the hook does: a user piping a 50 MB log
/// prefers a compressed answer in a few seconds to the raw log at once.
const CLI_MIN_DEADLINE: Duration = Duration::from_secs(10);

/// Compress `bytes` for a terminal or a pipe: the original when anything goes wrong.
fn compress_for_cli(bytes: Vec<u8>, domain: Option<Domain>, command: Option<&str>) -> Vec<u8> {
    // Undecodable output is not text for a model: pass it through byte for byte.
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => return err.into_bytes(),
    };
    let config = match Config::load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("kompress: {err:#} (passing output through)");
            return text.into_bytes();
        }
    };
    let deadline = Instant::now() + config.deadline.max(CLI_MIN_DEADLINE);
    let hints = Hints { command, ..Hints::default() };
    let request = Request { text: &text, hints, domain, ..Request::default() };
    match pipeline::compress(&request, &config, None, deadline) {
        Ok(compressed) => compressed.text.into_bytes(),
        Err(_) => text.into_bytes(),
    }
}

fn pipe_main(domain: Option<Domain>) -> Result<()> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).context("cannot read stdin")?;
    write_stdout(&compress_for_cli(bytes, domain, None))
}

/// Write to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write stdout")
        }
        _ => Ok(()),
    }
}

fn run_main(domain: Option<Domain>, command: &[OsString]) -> Result<ExitCode> {
    let (program, args) = command.split_first().context("no command given")?;
    let (mut reader, writer) = std::io::pipe().context("cannot create a pipe")?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdout(writer.try_clone().context("cannot duplicate the pipe")?)
        .stderr(writer)
        .spawn()
        .with_context(|| format!("cannot run `{}`", program.to_string_lossy()))?;
    let mut output = Vec::new();
    // Read before waiting: a child that fills the pipe would block forever otherwise.
    // The Command holds the only other copies of the write end; they are closed by now.
    let read = reader.read_to_end(&mut output);
    let status = child.wait().context("cannot wait for the command")?;
    read.context("cannot read the command's output")?;
    let line: Vec<String> = command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    write_stdout(&compress_for_cli(output, domain, Some(&line.join(" "))))?;
    Ok(exit_code_of(status))
}

/// The command's exit code; `128 + signal` when a signal killed it, as shells report it.
fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return ExitCode::from(u8::try_from((128 + signal) & 0xff).unwrap_or(1));
        }
    }
    ExitCode::FAILURE
}

/// Extra time past the deadline before the hook gives up on its worker thread.
const HOOK_GRACE: Duration = Duration::from_millis(150);

fn hook_main() -> ExitCode {
    let start = Instant::now();
    // A panic message on stderr would reach the user's transcript: log it instead.
    std::panic::set_hook(Box::new(|info| log::write(&format!("hook panic: {info}"))));
    let mut payload = Vec::new();
    if let Err(err) = std::io::stdin().read_to_end(&mut payload) {
        log::write(&format!("hook: cannot read stdin: {err}"));
        return ExitCode::SUCCESS;
    }
    let config = match Config::load() {
        Ok(config) => config,
        Err(err) => {
            log::write(&format!("hook: {err:#}"));
            return ExitCode::SUCCESS;
        }
    };
    if config.disable {
        return ExitCode::SUCCESS;
    }
    let deadline = start + config.deadline;
    let (sender, receiver) = mpsc::channel();
    // The work runs on its own thread so the deadline holds even inside a slow pass.
    let worker = std::thread::Builder::new().name("kompress-hook".into()).spawn(move || {
        let result = std::panic::catch_unwind(|| hook::handle(&payload, &config, None, deadline));
        let _ = sender.send(result);
    });
    if let Err(err) = worker {
        log::write(&format!("hook: cannot start worker: {err}"));
        return ExitCode::SUCCESS;
    }
    let wait = deadline.saturating_duration_since(Instant::now()) + HOOK_GRACE;
    match receiver.recv_timeout(wait) {
        Ok(Ok(Ok(Some(reply)))) => {
            if let Err(err) = write_stdout(reply.json.as_bytes()) {
                log::write(&format!("hook: {err:#}"));
            }
        }
        Ok(Ok(Ok(None))) => {}
        Ok(Ok(Err(err))) => log::write(&format!("hook: {err:#}")),
        Ok(Err(_)) => {} // The panic hook has logged it.
        Err(_) => log::write(&format!("hook: deadline of {:?} passed", start.elapsed())),
    }
    ExitCode::SUCCESS
}
