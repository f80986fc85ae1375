//! How the process starts and ends: the work of the standard library's `main` wrapper
//! that kompress needs, without the rest of it.
//!
//! Every tool call starts a `kompress hook` process, so what a process pays before its
//! first line of work counts on every call. The standard library's wrapper (`lang_start`)
//! installs a stack-overflow handler, and to place it, glibc's `pthread_getattr_np` reads
//! and parses `/proc/self/maps` (the kernel formats it line by line, the C library
//! `sscanf`s it back): about 0.1 ms of each start, for a message printed when the stack
//! overflows. The binary (`src/main.rs`) therefore exports a C `main` and calls [`run`],
//! which does what the wrapper did that kompress relies on:
//!
//! - file descriptors 0, 1 and 2 are open (on `/dev/null` if they were not), so that a
//!   file kompress opens never becomes its standard output;
//! - `SIGPIPE` is ignored: a closed pipe is an `EPIPE` error that the CLI handles, not a
//!   silent death;
//! - a panic that escapes exits 101, with the standard panic message;
//! - standard output is flushed before the process ends (the wrapper's clean-up did it).
//!
//! A stack overflow ends the process with `SIGSEGV` and no message.

use std::io::Write;

/// Run `main` as the process's body; the exit status for the C `main` to return.
pub fn run(main: fn() -> u8) -> i32 {
    standard_fds_open();
    #[cfg(unix)]
    // SAFETY: signal(2) with a constant disposition, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let code = std::panic::catch_unwind(main).unwrap_or(101);
    let _ = std::io::stdout().lock().flush();
    i32::from(code)
}

/// Open `/dev/null` on any of file descriptors 0, 1 and 2 that is closed.
fn standard_fds_open() {
    #[cfg(unix)]
    for fd in 0..=2 {
        // SAFETY: fcntl(2) and open(2) on integers and a constant C string; no memory is
        // shared. An open that lands on a lower free descriptor fills it, which is the point.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
            {
                let flags = if fd == 0 { libc::O_RDONLY } else { libc::O_WRONLY };
                libc::open(c"/dev/null".as_ptr(), flags);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_an_escaping_panic() {
        assert_eq!(run(|| 0), 0);
        assert_eq!(run(|| 7), 7);
        // The panic unwinds (through the unwinder `build.rs` links statically) to exit 101.
        assert_eq!(run(|| panic!("a bug")), 101);
    }
}
