//! `kompress run -- CMD`: run a command, compress what it printed, exit as it exited.
//!
//! stdout and stderr share one pipe, so their lines keep the order the command wrote them
//! in; stdin and the environment are the command's own. The exit code is the command's,
//! or `128 + N` when signal N ended it, as a shell reports it. With `--trailer` the output
//! gets the hook's treatment ([`hook::command_output`]): this is what the PreToolUse
//! rewrite ([`crate::hook::pre`]) runs, so that a failing test run, which Claude Code never
//! shows to PostToolUse, is shortened too. The rewrite also names the session transcript
//! and the call (`--transcript`, `--call`), so that the line model gets the agent's intent
//! and what it knew there too.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use super::{compress_for_cli, write_stdout};
use crate::config::Config;
use crate::domain::Domain;
use crate::paths::Dirs;
use crate::scorer::ModelArgs;
use crate::stats::{self, Event};
use crate::{hook, log};

pub fn main(
    domain: Option<Domain>,
    intent: Option<&str>,
    model: &ModelArgs,
    trailer: bool,
    call: Option<(&Path, &str)>,
    command: &[OsString],
) -> Result<u8> {
    let (program, args) = command.split_first().context("no command given")?;
    let (mut reader, writer) = std::io::pipe().context("cannot create a pipe")?;
    // Ctrl-C and a terminating signal reach the command too (same process group): kompress
    // outlives it to print what it printed, then exits as it did.
    let interrupted = signals::defer_termination();
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
    let line: Vec<String> = command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let line = line.join(" ");
    let shown = if interrupted() {
        // No time to spend: whoever signalled wants the process gone.
        output
    } else if trailer {
        compress_with_trailer(output, &line, call, model)
    } else {
        compress_for_cli(output, domain, intent, model, Some(&line))
    };
    write_stdout(&shown)?;
    Ok(exit_code_of(status))
}

/// `kompress run --trailer`: the hook's treatment of a Bash output (see
/// [`hook::command_output`]), its original stored and its statistics recorded. The
/// original when anything goes wrong.
fn compress_with_trailer(
    bytes: Vec<u8>,
    command: &str,
    call: Option<(&Path, &str)>,
    model_args: &ModelArgs,
) -> Vec<u8> {
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => return err.into_bytes(),
    };
    let config = match Config::load() {
        Ok(config) if !config.disable => config,
        Ok(_) => return text.into_bytes(),
        Err(err) => {
            log::write(&format!("run: {err:#}"));
            return text.into_bytes();
        }
    };
    let deadline = Instant::now() + config.deadline;
    let model = crate::scorer::installed(&config, model_args);
    let scorer = model.as_ref().map(|m| m as &dyn crate::scorer::Scorer);
    let dirs = Dirs::resolve();
    let mut event = Event::new("passthrough").with_command(command);
    event.tool = "Bash".into();
    let local = dirs.as_ref().map(|dirs| hook::Local::open(dirs, &config));
    let call = call.and_then(|(path, id)| Some((path.to_str()?, id)));
    let output = hook::command_output(
        &text,
        command,
        call,
        &config,
        scorer,
        deadline,
        local.as_ref(),
    );
    let shown = match output {
        Ok((new, compressed, originals)) => {
            let stored = originals.iter().try_for_each(|original| {
                let local = local.as_ref().context("no home directory for the store")?;
                local
                    .store
                    .put(&original.id, original.text.as_bytes())
                    .map(|_| ())
            });
            match stored {
                Ok(()) => {
                    event.event = "compress".into();
                    event.kind = hook::Kind::Compressed.name().into();
                    if let Some(c) = compressed.first() {
                        event.domain = c.domain.to_string();
                        event.tokens_in = c.tokens_in as u64;
                        event.tokens_out = c.tokens_out as u64;
                    }
                    event.ids = originals.iter().map(|o| o.id.clone()).collect();
                    new
                }
                Err(err) => {
                    log::write(&format!("run: {err:#}"));
                    event.reason = "store error".into();
                    text
                }
            }
        }
        Err(reason) => {
            event.reason = reason;
            text
        }
    };
    if let Some(dirs) = &dirs
        && let Err(err) = stats::record(dirs, &event)
    {
        log::write(&format!("run: {err:#}"));
    }
    shown.into_bytes()
}

/// The command's exit code, or `128 + signal` (see [`crate::measure::exit_code`]).
fn exit_code_of(status: std::process::ExitStatus) -> u8 {
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal = None;
    crate::measure::exit_code(status.code(), signal)
}

/// Termination signals while the command runs (Unix).
mod signals {
    use std::sync::atomic::{AtomicBool, Ordering};

    static CAUGHT: AtomicBool = AtomicBool::new(false);

    #[cfg(unix)]
    extern "C" fn note(_: libc::c_int) {
        CAUGHT.store(true, Ordering::SeqCst);
    }

    /// From now on SIGINT, SIGTERM and SIGHUP only set a flag, so that kompress can
    /// print what the command printed once the command ends (the signal reaches the command
    /// too). The returned function tells whether one came.
    pub fn defer_termination() -> impl Fn() -> bool {
        #[cfg(unix)]
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: `note` only stores to an atomic, which is async-signal-safe; the
            // child gets default dispositions back on exec (caught signals are reset).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = note as *const () as usize;
                libc::sigemptyset(&mut action.sa_mask);
                action.sa_flags = libc::SA_RESTART;
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
        || CAUGHT.load(Ordering::SeqCst)
    }
}
