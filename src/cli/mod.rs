//! The command line: argument parsing, I/O and exit codes around the library.
//!
//! Modes:
//! - `kompress` (no subcommand): pipe, text on stdin, compressed text on stdout;
//! - `kompress run -- CMD…`: run a command, compress its merged output, keep its exit code;
//!   both take the agent's intent as `--intent TEXT`, or `KOMPRESS_INTENT` without it
//!   (the hook reads it from the session transcript instead, see [`crate::intent`]);
//! - `kompress hook`: Claude Code's PostToolUse hook (see [`crate::hook`]);
//! - `kompress init`, `kompress doctor`: set-up and checks;
//! - `kompress show ID`, `kompress stats`, `kompress purge`: stored originals, savings,
//!   and deleting both (see [`crate::store`], [`crate::stats`]).
//!
//! Hook mode fails open: whatever happens (bad input, a panic, the deadline) it exits 0,
//! prints nothing but its JSON, and logs problems to the state directory.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::domain::{Domain, Hints};
use crate::paths::Dirs;
use crate::pipeline::{self, Request};
use crate::scorer::ModelArgs;
use crate::stats::{self, Event};
use crate::store::{self, Store};
use crate::{doctor, eval, hook, init, intent, log};

mod run;
pub mod start;
mod watchdog;

/// Shrinks tool output for coding agents, keeping the words that matter.
#[derive(Debug, Parser)]
#[command(name = "kompress", version, about, long_about = None)]
#[command(after_help = "Without a subcommand kompress is a pipe: `cmd 2>&1 | kompress`.")]
pub struct Cli {
    /// Compress as this domain instead of detecting it (pipe mode).
    #[arg(long, value_name = "NAME")]
    pub domain: Option<Domain>,

    /// What the agent wants from this output (pipe mode).
    #[arg(long, value_name = "TEXT", env = INTENT_ENV)]
    pub intent: Option<String>,

    /// The model and its device (pipe mode).
    #[command(flatten)]
    pub model: ModelArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Claude Code PostToolUse hook: payload on stdin, replacement JSON or nothing on stdout.
    Hook {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Run a command, print its compressed output (stdout and stderr merged), keep its exit code.
    Run {
        /// Compress as this domain instead of detecting it.
        #[arg(long, value_name = "NAME")]
        domain: Option<Domain>,
        /// What the agent wants from this output.
        #[arg(long, value_name = "TEXT", env = INTENT_ENV)]
        intent: Option<String>,
        #[command(flatten)]
        model: ModelArgs,
        /// Shorten the output as the hook does for Claude Code: a trailer with the sizes
        /// and `kompress show ID`, the original stored, under Claude Code's size limit.
        /// The hook's PreToolUse rewrite runs commands this way.
        #[arg(long)]
        trailer: bool,
        /// With --trailer: the Claude Code session transcript to read the agent's intent and
        /// what it knew from (the PreToolUse rewrite passes it).
        #[arg(long, value_name = "FILE", requires = "call")]
        transcript: Option<PathBuf>,
        /// With --transcript: the call's `tool_use_id`.
        #[arg(long, value_name = "ID", requires = "transcript")]
        call: Option<String>,
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
    /// Print the original of a compressed output (never compressed again).
    Show {
        /// The id from the output's `kompress show ID` trailer (any unique prefix).
        id: String,
        /// Only lines A to B (1-based, inclusive; `A:` or `:B` for open ends).
        #[arg(long, value_name = "A:B")]
        lines: Option<String>,
        /// Only lines matching this regular expression, prefixed with their line numbers.
        #[arg(long, value_name = "PATTERN")]
        grep: Option<String>,
    },
    /// Tokens saved per tool, domain, day, session and command, and how often originals
    /// were fetched back.
    Stats {
        /// Print JSON instead of markdown tables.
        #[arg(long)]
        json: bool,
        /// Only the last period: `7d`, `24h`, `30m`, or `all`.
        #[arg(long, value_name = "PERIOD")]
        since: Option<String>,
    },
    /// Delete every stored original, the session memory and the statistics.
    Purge,
    /// Run a corpus through the real hook and report reduction, shapes and latency; or
    /// whole agent trajectories, and report what is kept of what the agent used later.
    Eval {
        /// A JSON Lines corpus in the dev-corpus format (`.jsonl` or `.jsonl.gz`).
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "trajectories",
            conflicts_with = "trajectories"
        )]
        corpus: Option<std::path::PathBuf>,
        /// Whole agent trajectories (`trajectories-*.jsonl.gz`): reduction and recall of
        /// used items, rules vs model without and with the agent's intent, vs head+tail.
        #[arg(long, value_name = "FILE")]
        trajectories: Option<std::path::PathBuf>,
        /// With --trajectories: also the repositories the line model was trained or
        /// calibrated on.
        #[arg(long, requires = "trajectories")]
        all_repos: bool,
        /// With --trajectories: also write every output of the model + intent run, with
        /// its used items and those it lost, as JSON Lines to FILE (to read what it keeps).
        #[arg(long, value_name = "FILE", requires = "trajectories")]
        dump: Option<std::path::PathBuf>,
        /// Use only the first N records.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Print JSON instead of a markdown table.
        #[arg(long)]
        json: bool,
        /// Also write five before/after pairs per detected domain, as markdown, to FILE.
        #[arg(long, value_name = "FILE")]
        examples: Option<std::path::PathBuf>,
        /// Also write DIR/report.md and its charts (reduction_vs_retention.svg, latency.svg).
        #[arg(long = "report", value_name = "DIR")]
        report_dir: Option<std::path::PathBuf>,
        /// Pairs of the seeded heretic set to score with the seed's metrics (0: skip).
        #[arg(long, value_name = "N", default_value_t = 1000)]
        heretic: usize,
        /// The model and its device (the hook processes get them as KOMPRESS_MODEL and
        /// KOMPRESS_DEVICE).
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Convert a Hugging Face checkpoint into a model directory, or describe one.
    Model {
        #[command(subcommand)]
        command: crate::model::convert::ModelCommand,
    },
    /// Benchmark the model runtime: load time, tokens/s, cold start and memory.
    Bench(crate::model::bench::BenchArgs),
    /// Run a command and write its own peak RSS and wall time to FILE (used by `eval` and
    /// the tests; see the `measure` module for why a launcher is needed).
    #[command(name = "measure-child", hide = true)]
    MeasureChild {
        /// Where to write the usage, as JSON.
        #[arg(long, value_name = "FILE")]
        report: PathBuf,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
}

/// The environment variable that gives pipe and wrapper modes the agent's intent when
/// `--intent` does not. The hook ignores it: its intent comes from the transcript.
pub const INTENT_ENV: &str = "KOMPRESS_INTENT";

/// Parse the arguments and run. The process's exit code.
pub fn main() -> u8 {
    // The hook runs on every tool call, and its command line is always `kompress hook`:
    // that skips building clap's parser for every subcommand (0.1-0.2 ms of each call).
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == "hook") && args.next().is_none() {
        return hook_main(ModelArgs::default());
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Hook { model }) => hook_main(model),
        None => report(pipe_main(cli.domain, cli.intent.as_deref(), &cli.model)),
        Some(Command::Run {
            domain,
            intent,
            model,
            trailer,
            transcript,
            call,
            command,
        }) => match run::main(
            domain,
            intent.as_deref(),
            &model,
            trailer,
            transcript.as_deref().zip(call.as_deref()),
            &command,
        ) {
            Ok(code) => code,
            Err(err) => {
                eprintln!("kompress: {err:#}");
                127
            }
        },
        Some(Command::Init {
            project,
            uninstall,
            settings,
        }) => report(init::main(project, uninstall, settings.as_deref())),
        Some(Command::Doctor) => report(doctor::main()),
        Some(Command::Show { id, lines, grep }) => {
            report(store::show_main(&id, lines.as_deref(), grep.as_deref()))
        }
        Some(Command::Stats { json, since }) => report(stats::main(json, since.as_deref())),
        Some(Command::Purge) => report(store::purge_main()),
        Some(Command::Eval {
            corpus: None,
            trajectories: Some(file),
            all_repos,
            dump,
            limit,
            json,
            report_dir,
            model,
            ..
        }) => report(eval::trajectories::main(&eval::trajectories::Options {
            file,
            all_repos,
            dump,
            limit,
            json,
            report: report_dir,
            model,
        })),
        Some(Command::Eval {
            corpus: Some(corpus),
            limit,
            json,
            examples,
            report_dir,
            heretic,
            model,
            ..
        }) => {
            let options = eval::Options {
                corpus,
                limit,
                json,
                examples,
                report: report_dir,
                heretic,
                model,
            };
            report(eval::main(&options))
        }
        Some(Command::Eval { .. }) => report(Err(anyhow::anyhow!(
            "give --corpus FILE or --trajectories FILE"
        ))),
        Some(Command::Model { command }) => report(crate::model::convert::main(command)),
        Some(Command::Bench(args)) => report(crate::model::bench::cli_main(args)),
        Some(Command::MeasureChild { report, command }) => crate::measure::main(&report, &command),
    }
}

/// Print a CLI error the way a user can act on it.
fn report(result: Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("kompress: {err:#}");
            1
        }
    }
}

/// CLI modes wait for a result longer than the hook does: a user piping a 50 MB log
/// prefers a compressed answer in a few seconds to the raw log at once.
const CLI_MIN_DEADLINE: Duration = Duration::from_secs(10);

/// Compress `bytes` for a terminal or a pipe: the original when anything goes wrong.
pub(crate) fn compress_for_cli(
    bytes: Vec<u8>,
    domain: Option<Domain>,
    intent: Option<&str>,
    model_args: &ModelArgs,
    command: Option<&str>,
) -> Vec<u8> {
    // An empty or blank intent says nothing.
    let intent = intent.map(str::trim).filter(|i| !i.is_empty());
    intent::debug_record(intent);
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
    let hints = Hints {
        command,
        ..Hints::default()
    };
    let request = Request {
        text: &text,
        hints,
        domain,
        intent,
        ..Request::default()
    };
    let mut model = crate::scorer::installed(&config, model_args);
    // A model or device asked for by name that cannot load is worth a word on the terminal.
    if let Some(m) = &model
        && (model_args.model.is_some() || model_args.device.is_some())
        && let Err(err) = m.get()
    {
        eprintln!(
            "kompress: {err:#}; compressing without the model (check the path with `kompress model info --model DIR`, or the device)"
        );
        model = None;
    }
    let scorer = model.as_ref().map(|m| m as &dyn crate::scorer::Scorer);
    match pipeline::compress(&request, &config, scorer, deadline) {
        Ok(compressed) => {
            // Line markers send the reader to `kompress show ID --lines A:B`: keep the
            // original where that finds it, or give the original itself.
            if crate::select::names_the_store(&compressed.text) && !store_original(&config, &text) {
                return text.into_bytes();
            }
            compressed.text.into_bytes()
        }
        Err(_) => text.into_bytes(),
    }
}

/// Put `text` in the store of originals under its content id; false when it cannot be.
fn store_original(config: &Config, text: &str) -> bool {
    if config.store_max_bytes == 0 {
        return false;
    }
    let Some(dirs) = Dirs::resolve() else {
        return false;
    };
    match Store::open(&dirs, config).put(&store::id_of(text.as_bytes()), text.as_bytes()) {
        Ok(_) => true,
        Err(err) => {
            eprintln!("kompress: cannot keep the original ({err:#}); passing the output through");
            false
        }
    }
}

fn pipe_main(domain: Option<Domain>, intent: Option<&str>, model: &ModelArgs) -> Result<()> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("cannot read stdin")?;
    write_stdout(&compress_for_cli(bytes, domain, intent, model, None))
}

/// Write to stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write stdout")
        }
        _ => Ok(()),
    }
}

/// Extra time past the deadline before the hook gives up on its work ([`watchdog`]).
const HOOK_GRACE: Duration = Duration::from_millis(150);

fn hook_main(model_args: ModelArgs) -> u8 {
    let start = Instant::now();
    // A panic message on stderr would reach the user's transcript: log it instead.
    std::panic::set_hook(Box::new(|info| log::write(&format!("hook panic: {info}"))));
    let mut payload = Vec::new();
    if let Err(err) = std::io::stdin().read_to_end(&mut payload) {
        log::write(&format!("hook: cannot read stdin: {err}"));
        return 0;
    }
    let config = match Config::load() {
        Ok(config) => config,
        Err(err) => {
            log::write(&format!("hook: {err:#}"));
            return 0;
        }
    };
    if config.disable {
        return 0;
    }
    let dirs = Dirs::resolve();
    let local = dirs.as_ref().map(|dirs| hook::Local::open(dirs, &config));
    let deadline = start + config.deadline;
    // The hard deadline: past it (and a grace), the process ends as a pass-through and says
    // so in the log and the statistics, as a call that ran out of time always has.
    let limit = deadline.saturating_duration_since(Instant::now()) + HOOK_GRACE;
    let message = format!("hook: deadline of {:?} passed", start.elapsed() + limit);
    let appends: Vec<(PathBuf, Vec<u8>)> = dirs
        .iter()
        .flat_map(|dirs| {
            let mut event = Event::new("passthrough");
            event.reason = "deadline".into();
            let mut event_line = serde_json::to_vec(&event).unwrap_or_default();
            event_line.push(b'\n');
            [
                (dirs.log_file(), log::line(&message).into_bytes()),
                (dirs.events_file(), event_line),
            ]
        })
        .collect();
    if !watchdog::arm(limit, &appends) {
        log::write("hook: cannot set the deadline timer; this call has no hard deadline");
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let model = crate::scorer::installed(&config, &model_args);
        let scorer = model.as_ref().map(|m| m as &dyn crate::scorer::Scorer);
        hook::handle_with(&payload, &config, scorer, deadline, local.as_ref())
    }));
    if !watchdog::claim() {
        // The deadline fired on another thread (the model's), whose handler is ending the
        // process: nothing more may be written.
        loop {
            std::thread::park();
        }
    }
    let outcome = match result {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(err)) => {
            log::write(&format!("hook: {err:#}"));
            hook::Outcome {
                reason: Some("error".into()),
                ..hook::Outcome::default()
            }
        }
        // The panic hook has logged it.
        Err(_) => hook::Outcome {
            reason: Some("panic".into()),
            ..hook::Outcome::default()
        },
    };
    hook_deliver(outcome, &config, dirs.as_ref(), local.as_ref());
    0
}

/// Store the originals, print the reply, then record session memory and statistics.
///
/// An original that cannot be stored means no reply: the trailer would promise an
/// original that `kompress show` cannot give back.
fn hook_deliver(
    mut outcome: hook::Outcome,
    config: &Config,
    dirs: Option<&Dirs>,
    local: Option<&hook::Local>,
) {
    if outcome.intent_read {
        intent::debug_record(outcome.intent.as_deref());
    }
    let mut event =
        Event::new(outcome.event.unwrap_or("passthrough")).with_command(&outcome.command);
    event.session = std::mem::take(&mut outcome.session);
    event.tool = std::mem::take(&mut outcome.tool);
    if outcome.forget_session
        && let Some(local) = local
        && let Err(err) = local.memory.forget(
            &event.session,
            Some(Path::new(&outcome.transcript)).filter(|p| !p.as_os_str().is_empty()),
        )
    {
        log::write(&format!("hook: {err:#}"));
    }
    if outcome.event == Some("rewrite") {
        // A PreToolUse rewrite: nothing to store.
        if let Some(reply) = outcome.reply.take()
            && let Err(err) = write_stdout(reply.json.as_bytes())
        {
            log::write(&format!("hook: {err:#}"));
        }
    } else if let Some(reply) = outcome.reply.take() {
        let stored = reply.originals.iter().try_for_each(|original| {
            if config.store_max_bytes == 0 {
                return Ok(());
            }
            let store = &local.context("no home directory for the store")?.store;
            store
                .put(&original.id, original.text.as_bytes())
                .map(|_| ())
        });
        match stored.and_then(|()| write_stdout(reply.json.as_bytes())) {
            Ok(()) => {
                event.event = "compress".into();
                event.kind = reply
                    .originals
                    .first()
                    .map_or("compressed", |o| o.kind.name())
                    .to_string();
                event.domain = reply
                    .compressed
                    .first()
                    .map(|c| c.domain.to_string())
                    .unwrap_or_default();
                event.tokens_in = reply.compressed.iter().map(|c| c.tokens_in as u64).sum();
                event.tokens_out = reply.compressed.iter().map(|c| c.tokens_out as u64).sum();
                event.ids = reply.originals.iter().map(|o| o.id.clone()).collect();
            }
            Err(err) => {
                log::write(&format!("hook: {err:#}"));
                event.reason = "store error".into();
                outcome.remember = None;
            }
        }
    } else {
        event.reason = outcome.reason.take().unwrap_or_default();
    }
    if let (Some((key, id)), Some(local)) = (&outcome.remember, local)
        && let Err(err) = local.memory.remember(key, id)
    {
        log::write(&format!("hook: {err:#}"));
    }
    if let Some(dirs) = dirs
        && let Err(err) = stats::record(dirs, &event)
    {
        log::write(&format!("hook: {err:#}"));
    }
}
