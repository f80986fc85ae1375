//! The hook's hard deadline, without a thread.
//!
//! The pipeline checks its own deadline between passes and inside the model; this is the
//! backstop for work that does not return in time. It was a worker thread that the main
//! thread waited for with a timeout, but starting a thread and waiting for it to be
//! scheduled cost 0.1 to 0.2 ms of every hook call on this machine, a tenth of a typical
//! call. Now the work runs on the main thread, and a one-shot timer raises `SIGALRM` at the
//! deadline. Unless the reply is already being delivered ([`claim`]), the signal handler
//! appends a prepared line to the log and one to the statistics (the same pass-through event
//! the thread's timeout recorded), and ends the process with status 0 and nothing on
//! stdout: Claude Code keeps the original.
//!
//! The handler only makes async-signal-safe calls (`mkdir`, `open`, `write`, `close`,
//! `_exit`) on buffers built before the timer is armed. It does not rotate the log or the
//! statistics; the next ordinary call does.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::time::Duration;

/// Set once by whoever ends the call: [`claim`] before delivering a reply, or the handler.
static CLAIMED: AtomicBool = AtomicBool::new(false);
/// What the handler writes, built by [`arm`]; null until then.
static PREPARED: AtomicPtr<Prepared> = AtomicPtr::new(std::ptr::null_mut());

/// Lines to append, each to its file, and the directories they live in with their
/// ancestors, outermost first (created if missing: the first call of a new home may be
/// the one).
struct Prepared {
    dirs: Vec<CString>,
    appends: Vec<(CString, Vec<u8>)>,
}

/// Arm the timer: after `after`, the process ends as described above, appending each
/// `(file, line)` of `appends`. Returns false when the timer could not be set (the call
/// then runs without a hard deadline).
pub fn arm(after: Duration, appends: &[(PathBuf, Vec<u8>)]) -> bool {
    let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).ok();
    let mut dirs: Vec<CString> = Vec::new();
    for (path, _) in appends {
        let mut ancestors: Vec<CString> = path.ancestors().skip(1).filter_map(c).collect();
        ancestors.reverse();
        for dir in ancestors {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    let appends = appends
        .iter()
        .filter_map(|(path, line)| Some((c(path)?, line.clone())))
        .collect();
    // Leaked: the handler may read it at any time until the process ends.
    PREPARED.store(
        Box::into_raw(Box::new(Prepared { dirs, appends })),
        Ordering::SeqCst,
    );
    imp::arm(after)
}

/// Take the right to end the call: true unless the deadline has fired, in which case the
/// handler is ending the process and the caller must not write anything. Disarms the timer.
pub fn claim() -> bool {
    let claimed = !CLAIMED.swap(true, Ordering::SeqCst);
    if claimed {
        imp::disarm();
    }
    claimed
}

#[cfg(unix)]
mod imp {
    use super::*;

    pub fn arm(after: Duration) -> bool {
        // SAFETY: `on_deadline` is an `extern "C"` handler that makes only async-signal-safe
        // calls; `sigaction` and `setitimer` get fully initialised structures.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_deadline as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()) != 0 {
                return false;
            }
            set(after)
        }
    }

    pub fn disarm() {
        set(Duration::ZERO);
    }

    fn set(after: Duration) -> bool {
        let micros = after.as_micros().max(u128::from(after > Duration::ZERO));
        let value = libc::timeval {
            tv_sec: (micros / 1_000_000).min(i32::MAX as u128) as libc::time_t,
            tv_usec: (micros % 1_000_000) as libc::suseconds_t,
        };
        let timer = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: value,
        };
        // SAFETY: a valid `itimerval`; the old value is not asked for.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) == 0 }
    }

    extern "C" fn on_deadline(_: libc::c_int) {
        if CLAIMED.swap(true, Ordering::SeqCst) {
            // The reply is being delivered: let it finish.
            return;
        }
        // SAFETY: `PREPARED` is null or a leaked `Prepared` that is never freed; only
        // async-signal-safe calls follow.
        unsafe {
            if let Some(prepared) = PREPARED.load(Ordering::SeqCst).as_ref() {
                for dir in &prepared.dirs {
                    libc::mkdir(dir.as_ptr(), 0o700);
                }
                for (path, line) in &prepared.appends {
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
                        0o600,
                    );
                    if fd >= 0 {
                        libc::write(fd, line.as_ptr().cast(), line.len());
                        libc::close(fd);
                    }
                }
            }
            libc::_exit(0);
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use super::*;

    /// No timer here: the pipeline's own deadline checks are all there is.
    pub fn arm(_: Duration) -> bool {
        false
    }

    pub fn disarm() {}
}
