//! The `kompress` binary: all behaviour lives in the library; this is glue.

fn main() -> std::process::ExitCode {
    kompress::cli::main()
}
