//! What the integration tests share: a throwaway home and the real binary run inside it.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

/// A temporary `HOME` and `KOMPRESS_HOME`, and the environment every run gets.
pub struct Env {
    pub home: tempfile::TempDir,
    /// Extra variables for every command, after the defaults.
    pub vars: Vec<(&'static str, String)>,
}

impl Env {
    pub fn new() -> Env {
        Env {
            home: tempfile::tempdir().unwrap(),
            // Debug builds on a loaded machine can pass the 1 s default deadline: these tests
            // are about behaviour, not speed (the deadline has tests of its own). The model
            // runs some 50 times slower unoptimized: tests of the model pass opt in with
            // `with_model`.
            vars: vec![
                ("KOMPRESS_DEADLINE_MS", "60000".into()),
                ("KOMPRESS_NO_MODEL", "1".into()),
            ],
        }
    }

    /// The same environment with the model pass on (the repository's `model/`).
    pub fn with_model(mut self) -> Env {
        self.vars.retain(|(k, _)| *k != "KOMPRESS_NO_MODEL");
        self
    }

    /// Where kompress keeps everything in this environment.
    pub fn kompress_home(&self) -> PathBuf {
        self.home.path().join("kompress")
    }

    /// `kompress ARGS…` with a clean environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kompress"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("KOMPRESS_HOME", self.kompress_home())
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        command
    }

    /// `kompress ARGS…` under `kompress measure-child`, which writes the run's own peak RSS
    /// and wall time to `report` (read it with `kompress::measure::read_report`).
    pub fn measured(&self, report: &std::path::Path, args: &[&str]) -> Command {
        let report = report.to_str().expect("a UTF-8 temporary path");
        let mut all = vec![
            "measure-child",
            "--report",
            report,
            "--",
            env!("CARGO_BIN_EXE_kompress"),
        ];
        all.extend_from_slice(args);
        self.command(&all)
    }

    /// Start `command` with `stdin` fed from a thread (the child may stop reading early).
    pub fn spawn_with(&self, mut command: Command, stdin: &[u8]) -> Child {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        let input = stdin.to_vec();
        std::thread::spawn(move || {
            // A broken pipe is fine: bad input may be rejected before it is all read.
            let _ = pipe.write_all(&input);
        });
        child
    }

    pub fn spawn(&self, args: &[&str], stdin: &[u8]) -> Child {
        self.spawn_with(self.command(args), stdin)
    }

    pub fn run_with(&self, command: Command, stdin: &[u8]) -> Output {
        self.spawn_with(command, stdin).wait_with_output().unwrap()
    }

    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.run_with(self.command(args), stdin)
    }

    /// The hook's error log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.kompress_home().join("state/kompress.log")).unwrap_or_default()
    }
}
