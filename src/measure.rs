//! A child process's own peak memory and wall time, measured through a small launcher.
//!
//! Why a launcher: on Linux `ru_maxrss` survives `exec`. When a process execs, the kernel
//! folds the old address space's high-water mark into the process's maximum, and a child
//! that the standard library spawns shares its parent's address space until that `exec`
//! (vfork style). So `wait4` on a hook spawned straight from `kompress eval` (which holds a
//! whole corpus) or from a test binary (which holds other tests' payloads) reports at
//! least the *parent's* peak, not the hook's.
//!
//! `kompress measure-child --report FILE -- CMD…` is a fresh process of a few MiB: the
//! command it spawns inherits only that small floor, which is below any hook's own peak,
//! so the `ru_maxrss` it reads with `wait4` is the command's. It passes stdin, stdout and
//! stderr through untouched, writes a [`Usage`] as JSON to FILE, and exits with the
//! command's exit code (`128 + signal` when a signal ended it).

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// How a measured command ended, and what it used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Peak resident set size in KiB (`ru_maxrss`).
    pub max_rss_kb: u64,
    /// Wall time from spawn to exit, in milliseconds.
    pub wall_ms: f64,
}

impl Usage {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `exit N` or `signal N`, for reports.
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "unknown status".to_string(),
        }
    }
}

/// `binary measure-child --report REPORT -- binary ARGS…`: run `binary ARGS…` under the
/// launcher. The caller sets stdio and environment (the command inherits both) and, after
/// waiting for the launcher, reads the command's [`Usage`] with [`read_report`].
pub fn command(binary: &Path, report: &Path, args: &[&str]) -> Command {
    command_of(binary, report, binary, args)
}

/// `binary measure-child --report REPORT -- PROGRAM ARGS…`: another program under the same
/// launcher, for baselines measured the way the hook is (`kompress eval`'s bare `cat`).
pub fn command_of(
    binary: &Path,
    report: &Path,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("measure-child")
        .arg("--report")
        .arg(report)
        .arg("--")
        .arg(program)
        .args(args);
    command
}

/// The [`Usage`] a launcher wrote.
pub fn read_report(path: &Path) -> Result<Usage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a usage report", path.display()))
}

/// Spawn `command`, wait for it, and measure it.
pub fn spawn_and_wait(command: &mut Command) -> Result<Usage> {
    let start = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    let mut usage = reap(child)?;
    usage.wall_ms = start.elapsed().as_secs_f64() * 1000.0;
    Ok(usage)
}

/// Wait for `child` with `wait4`, so that the peak RSS is this child's own and not the
/// largest of every child reaped so far (`RUSAGE_CHILDREN`). `wall_ms` is left at 0.
#[cfg(unix)]
pub fn reap(child: std::process::Child) -> Result<Usage> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of a plain C struct.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own unreaped child; the pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("cannot wait for the child");
        }
    }
    drop(child);
    // Linux reports kilobytes, macOS bytes.
    let rss = rusage.ru_maxrss.max(0) as u64;
    let max_rss_kb = if cfg!(target_os = "macos") {
        rss / 1024
    } else {
        rss
    };
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    Ok(Usage {
        code,
        signal,
        max_rss_kb,
        wall_ms: 0.0,
    })
}

/// Without `wait4` there is no per-child peak: report 0.
#[cfg(not(unix))]
pub fn reap(mut child: std::process::Child) -> Result<Usage> {
    let status = child.wait().context("cannot wait for the child")?;
    Ok(Usage {
        code: status.code(),
        signal: None,
        max_rss_kb: 0,
        wall_ms: 0.0,
    })
}

/// `kompress measure-child`: run `command`, write its [`Usage`] to `report`, and exit as
/// it did. A command that cannot start exits 127, like a shell, with no report.
pub fn main(report: &Path, command: &[OsString]) -> u8 {
    let run = || -> Result<Usage> {
        let (program, args) = command.split_first().context("no command given")?;
        let usage = spawn_and_wait(Command::new(program).args(args))?;
        let json = serde_json::to_vec(&usage)?;
        std::fs::write(report, json)
            .with_context(|| format!("cannot write {}", report.display()))?;
        Ok(usage)
    };
    match run() {
        Ok(usage) => exit_code(usage.code, usage.signal),
        Err(err) => {
            eprintln!("kompress measure-child: {err:#}");
            127
        }
    }
}

/// A child's exit code as ours; `128 + signal` when a signal ended it, as shells report it.
pub fn exit_code(code: Option<i32>, signal: Option<i32>) -> u8 {
    match (code, signal) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from((128 + signal) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}
