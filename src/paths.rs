//! Where kompress keeps its files, following the platform's conventions (XDG on Linux).
//!
//! `KOMPRESS_HOME` puts every directory under one folder (tests, portable installs).

use std::path::{Path, PathBuf};

use directories::ProjectDirs;

/// The directories kompress uses.
#[derive(Clone, Debug)]
pub struct Dirs {
    /// `config.toml` lives here.
    pub config: PathBuf,
    /// The installed model directory lives here (`model/`).
    pub data: PathBuf,
    /// Stored originals (recoverable outputs).
    pub cache: PathBuf,
    /// Logs and other state that is not worth backing up.
    pub state: PathBuf,
}

impl Dirs {
    /// Resolve the directories for this user. `None` when no home directory is known.
    pub fn resolve() -> Option<Dirs> {
        if let Some(home) = std::env::var_os("KOMPRESS_HOME").filter(|h| !h.is_empty()) {
            let home = PathBuf::from(home);
            return Some(Dirs {
                config: home.join("config"),
                data: home.join("data"),
                cache: home.join("cache"),
                state: home.join("state"),
            });
        }
        let project = ProjectDirs::from("", "", "kompress")?;
        let state = project
            .state_dir()
            .unwrap_or_else(|| project.data_local_dir())
            .to_path_buf();
        Some(Dirs {
            config: project.config_dir().to_path_buf(),
            data: project.data_dir().to_path_buf(),
            cache: project.cache_dir().to_path_buf(),
            state,
        })
    }

    /// The user's configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.config.join("config.toml")
    }

    /// The log file hook mode writes its errors to.
    pub fn log_file(&self) -> PathBuf {
        self.state.join("kompress.log")
    }

    /// The installed default model directory.
    pub fn model_dir(&self) -> PathBuf {
        self.data.join("model")
    }

    /// The store of originals (`kompress show`), see [`crate::store`].
    pub fn store_dir(&self) -> PathBuf {
        self.cache.join("originals")
    }

    /// The statistics events (JSON Lines), see [`crate::stats`].
    pub fn events_file(&self) -> PathBuf {
        self.state.join("events.jsonl")
    }

    /// Session memory, see [`crate::session`].
    pub fn sessions_dir(&self) -> PathBuf {
        self.state.join("sessions")
    }
}

/// Create `dir` (and its parents) readable by the user only, and make an existing one so.
///
/// Tool outputs can hold secrets: every directory kompress keeps them in is 0700.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        let meta = std::fs::metadata(dir)?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// Run `op`, which creates or opens a file at `path`; when it fails because the file's
/// directory is missing, create that directory ([`ensure_private_dir`]) and run it again.
///
/// On the hook's path the directory nearly always exists: checking it before every write
/// was three system calls per file.
pub fn in_private_dir<T>(path: &Path, op: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
    match (op(), path.parent()) {
        (Err(err), Some(dir)) if err.kind() == std::io::ErrorKind::NotFound => {
            ensure_private_dir(dir)?;
            op()
        }
        (result, _) => result,
    }
}

/// Options that create a file readable and writable by the user only (0600).
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Write `bytes` to `path` atomically (a private temporary file, then a rename), so that
/// a concurrent reader sees the old content or the new one, never a mix.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{name}-{}-{nanos}-{n}", std::process::id()));
    let result = (|| {
        let mut file = private_file_options().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Take an exclusive flock(2) on `file`; false when `wait` is false and another process
/// holds it. The lock is released when the file is closed.
#[cfg(unix)]
pub fn lock_exclusive(file: &std::fs::File, wait: bool) -> bool {
    use std::os::fd::AsRawFd;
    let flags = if wait { libc::LOCK_EX } else { libc::LOCK_EX | libc::LOCK_NB };
    loop {
        // SAFETY: flock(2) on a file descriptor borrowed for the call; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), flags) };
        if rc == 0 {
            return true;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}
