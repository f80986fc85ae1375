//! kompress: a tool-output compressor for coding agents.
//!
//! The pipeline, in order (see [`pipeline::compress`]):
//!
//! ```text
//! text ─► domain::detect ─► passes (structural, per domain) ─► scorer (model, optional)
//!      ─► protect (must-keep words) ─► safety checks (tokens, shape, deadline) ─► output
//! ```
//!
//! Layering: `hook` is the only module that knows Claude Code's JSON; `pipeline` is pure
//! (no files, no environment, no stdout); `cli` wires configuration, I/O and exit codes.
//! Around the hook: `store` keeps every replaced output's original (`kompress show`),
//! `stats` records what each call did (`kompress stats`), `session` remembers outputs
//! within a Claude Code session.

pub mod charclass;
pub mod cli;
pub mod clock;
pub mod config;
pub mod doctor;
pub mod domain;
pub mod eval;
pub mod heretic;
pub mod hook;
pub mod init;
pub mod intent;
pub mod known;
pub mod linediff;
pub mod log;
pub mod measure;
pub mod metrics;
pub mod model;
pub mod passes;
pub mod paths;
pub mod pipeline;
pub mod protect;
pub mod report;
pub mod scorer;
pub mod select;
pub mod session;
pub mod stats;
pub mod store;
pub mod tokens;
pub mod usage;
