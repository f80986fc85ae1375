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

pub mod cli;
pub mod config;
pub mod doctor;
pub mod domain;
pub mod eval;
pub mod hook;
pub mod init;
pub mod log;
pub mod model;
pub mod passes;
pub mod paths;
pub mod pipeline;
pub mod protect;
pub mod scorer;
pub mod tokens;
