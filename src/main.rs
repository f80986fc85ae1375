//! The `kompress` binary: all behaviour lives in the library; this is glue.
//!
//! It exports the C `main` itself instead of using Rust's `fn main`: the standard
//! library's start-up work costs ~0.1 ms of every hook call, see [`kompress::cli::start`].

#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    kompress::cli::start::run(kompress::cli::main)
}
