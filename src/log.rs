//! A small append-only log in the state directory.
//!
//! Hook mode must never print anything but its JSON, so every problem it meets is written
//! here instead. The file is capped: past [`MAX_LOG_BYTES`] it is rotated to `.1`.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::paths::Dirs;

/// Size at which the log is rotated.
pub const MAX_LOG_BYTES: u64 = 1 << 20;

/// Append one line to the log. Never fails: logging problems are dropped.
pub fn write(message: &str) {
    let Some(dirs) = Dirs::resolve() else { return };
    let path = dirs.log_file();
    if std::fs::create_dir_all(&dirs.state).is_err() {
        return;
    }
    if let Ok(meta) = std::fs::metadata(&path) {
        if meta.len() > MAX_LOG_BYTES {
            let _ = std::fs::rename(&path, path.with_extension("log.1"));
        }
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    if let Ok(mut file) = options.open(&path) {
        let _ = file.write_all(line(message).as_bytes());
    }
}

/// `message` as the log writes it: one line, after the time and the process id.
pub fn line(message: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let one_line = message.replace('\n', " | ");
    format!("{secs} pid={} {one_line}\n", std::process::id())
}
