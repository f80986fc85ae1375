//! The store of originals: every output the hook replaces is kept here, so that
//! `kompress show ID` can give it back and the agent never has to re-run a command.
//!
//! Layout, under the cache directory (`Dirs::store_dir`), every directory 0700 and every
//! file 0600:
//!
//! ```text
//! originals/
//!   3f/3f9a2c1b0e…        one file per original, named by the SHA-256 of its content
//!   .ledger               bytes added since the last sweep (one line per new file)
//!   .lock                 flock(2) target: one sweep at a time
//! ```
//!
//! Writing is one private temporary file and a rename, so a reader never sees half a file
//! and two hooks storing the same content at once both succeed. The same content is stored
//! once; storing it again, or showing it, refreshes its modification time, which is what
//! "least recently used" means here.
//!
//! A put never scans the store. It appends its size to the ledger (one `O_APPEND` write)
//! and reads the ledger back (a few KB at most): when the ledger's estimate passes
//! `max_bytes`, the last sweep is older than [`SWEEP_EVERY`], or the ledger has grown long,
//! the put sweeps: under a non-blocking exclusive flock it deletes originals past the
//! retention period, then the least recently used ones until the store is under 90% of the
//! bound, and restarts the ledger with the measured total. A size appended while a sweep
//! rewrites the ledger can be missed; the next sweep measures again, so the estimate drifts
//! by at most the puts that raced a sweep.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::paths::{self, Dirs};

/// Hex characters of an id shown in markers; `kompress show` accepts any unique prefix.
pub const SHOWN_ID_LEN: usize = 10;

/// The shortest prefix `kompress show` accepts.
pub const MIN_PREFIX_LEN: usize = 4;

/// Sweep at least this often (retention), whatever the size estimate says.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Sweep when the ledger holds this many entries (keeps reading it cheap).
const LEDGER_MAX_ENTRIES: usize = 2000;

/// Temporary files older than this are leftovers of a killed process.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// The content id of `text`: the SHA-256 of its bytes, in lowercase hex.
pub fn id_of(text: &[u8]) -> String {
    hex(&Sha256::digest(text))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// The id as markers show it.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(SHOWN_ID_LEN)]
}

/// A handle on the store. Cheap: opening touches no file.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    max_bytes: u64,
    retention: Duration,
}

/// What a sweep found and removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Originals removed.
    pub removed: usize,
    /// Bytes removed.
    pub removed_bytes: u64,
    /// Originals kept.
    pub kept: usize,
    /// Bytes kept.
    pub kept_bytes: u64,
}

impl Store {
    /// The store in `dir`, bounded to `max_bytes` and `retention_days`.
    pub fn new(dir: PathBuf, max_bytes: u64, retention_days: u64) -> Store {
        Store {
            dir,
            max_bytes,
            retention: Duration::from_secs(retention_days.saturating_mul(86_400)),
        }
    }

    /// The user's store, as configured.
    pub fn open(dirs: &Dirs, config: &crate::config::Config) -> Store {
        Store::new(
            dirs.store_dir(),
            config.store_max_bytes,
            config.store_retention_days,
        )
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the original with full id `id` lives.
    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(&id[..2]).join(id)
    }

    /// Store `text` under its content id (computed by the caller with [`id_of`]).
    /// Returns whether a new file was written (false: it was there, and is refreshed).
    pub fn put(&self, id: &str, text: &[u8]) -> Result<bool> {
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("not a content id: {id:?}");
        }
        if self.max_bytes == 0 || text.len() as u64 > self.max_bytes / 2 {
            bail!(
                "{} bytes do not fit a store of {} bytes",
                text.len(),
                self.max_bytes
            );
        }
        let path = self.path_of(id);
        if touch(&path).is_ok() {
            return Ok(false);
        }
        paths::in_private_dir(&path, || paths::write_private_atomic(&path, text))
            .with_context(|| format!("cannot write {}", path.display()))?;
        if let Err(err) = self.account(text.len() as u64) {
            crate::log::write(&format!("store: {err:#}"));
        }
        Ok(true)
    }

    /// Append `bytes` to the ledger and sweep when it says so.
    fn account(&self, bytes: u64) -> Result<()> {
        let ledger = self.dir.join(".ledger");
        let mut file = paths::private_file_options()
            .read(true)
            .append(true)
            .create(true)
            .open(&ledger)
            .with_context(|| format!("cannot open {}", ledger.display()))?;
        file.write_all(format!("{bytes}\n").as_bytes())?;
        // Appending moved the offset to the end: read from the start.
        file.seek(SeekFrom::Start(0))?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        drop(file);
        let (mut base, mut swept_at, mut entries) = (0u64, 0u64, 0usize);
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("base ") {
                let mut parts = rest
                    .split_whitespace()
                    .map(|p| p.parse::<u64>().unwrap_or(0));
                base = parts.next().unwrap_or(0);
                swept_at = parts.next().unwrap_or(0);
            } else if let Ok(n) = line.trim().parse::<u64>() {
                base = base.saturating_add(n);
                entries += 1;
            }
        }
        let stale = now_secs().saturating_sub(swept_at) >= SWEEP_EVERY.as_secs();
        if base > self.max_bytes || stale || entries >= LEDGER_MAX_ENTRIES {
            self.sweep(false)?;
        }
        Ok(())
    }

    /// Delete expired and least recently used originals until the store is under 90% of
    /// its bound. `wait`: wait for a running sweep instead of leaving the work to it.
    /// `None` when another process holds the sweep lock and `wait` is false.
    pub fn sweep(&self, wait: bool) -> Result<Option<Sweep>> {
        paths::ensure_private_dir(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let lock_path = self.dir.join(".lock");
        let lock = paths::private_file_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        if !paths::lock_exclusive(&lock, wait) {
            return Ok(None);
        }
        let now = SystemTime::now();
        let mut files = Vec::new();
        let mut sweep = Sweep::default();
        for shard in std::fs::read_dir(&self.dir)?.flatten() {
            if !shard.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            for entry in std::fs::read_dir(shard.path())?.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                let modified = meta.modified().unwrap_or(now);
                let age = now.duration_since(modified).unwrap_or_default();
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(".tmp-") {
                    if age > STALE_TMP {
                        let _ = std::fs::remove_file(entry.path());
                    }
                    continue;
                }
                if age > self.retention {
                    if std::fs::remove_file(entry.path()).is_ok() {
                        sweep.removed += 1;
                        sweep.removed_bytes += meta.len();
                    }
                    continue;
                }
                files.push((modified, name.into_owned(), meta.len(), entry.path()));
            }
        }
        files.sort();
        let mut total: u64 = files.iter().map(|f| f.2).sum();
        let target = self.max_bytes / 10 * 9;
        let mut kept = files.len();
        for (_, _, len, path) in &files {
            if total <= target {
                break;
            }
            if std::fs::remove_file(path).is_ok() {
                total -= len;
                kept -= 1;
                sweep.removed += 1;
                sweep.removed_bytes += len;
            }
        }
        sweep.kept = kept;
        sweep.kept_bytes = total;
        let ledger = format!("base {total} {}\n", now_secs());
        paths::write_private_atomic(&self.dir.join(".ledger"), ledger.as_bytes())?;
        drop(lock);
        Ok(Some(sweep))
    }

    /// The full id of the only original whose id starts with `prefix`.
    pub fn resolve(&self, prefix: &str) -> Result<String> {
        let prefix = prefix.trim().to_ascii_lowercase();
        if prefix.len() < MIN_PREFIX_LEN
            || prefix.len() > 64
            || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            bail!("{prefix:?} is not an id: give at least {MIN_PREFIX_LEN} hex characters");
        }
        let shard = self.dir.join(&prefix[..2]);
        let mut found: Vec<String> = match std::fs::read_dir(&shard) {
            Ok(entries) => entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix) && n.len() == 64)
                .collect(),
            Err(_) => Vec::new(),
        };
        found.sort();
        match found.len() {
            0 => bail!(
                "no stored original {prefix} (unknown, purged, or evicted: originals are kept {} days)",
                self.retention.as_secs() / 86_400
            ),
            1 => Ok(found.pop().expect("one")),
            n => bail!("{n} originals start with {prefix}: {}", found.join(", ")),
        }
    }

    /// The original with full id `id`; refreshes it (least recently used).
    pub fn get(&self, id: &str) -> Result<Vec<u8>> {
        let path = self.path_of(id);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let _ = touch(&path);
        Ok(bytes)
    }

    /// Every stored original: (full id, path, bytes).
    pub fn list(&self) -> Vec<(String, PathBuf, u64)> {
        let mut out = Vec::new();
        let Ok(shards) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for shard in shards.flatten() {
            let Ok(entries) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.len() == 64 && !name.starts_with('.') {
                    let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    out.push((name, entry.path(), len));
                }
            }
        }
        out.sort();
        out
    }
}

/// Parse `A:B`, `A:`, `:B` or `N` (1-based, inclusive) into a line range.
pub fn parse_lines(text: &str) -> Result<(usize, usize)> {
    let bad = || anyhow::anyhow!("--lines {text:?}: expected A:B, A:, :B or N (1-based)");
    let number = |s: &str| -> Result<usize> { s.trim().parse::<usize>().map_err(|_| bad()) };
    let (first, last) = match text.split_once(':') {
        Some((a, b)) => (
            if a.trim().is_empty() { 1 } else { number(a)? },
            if b.trim().is_empty() {
                usize::MAX
            } else {
                number(b)?
            },
        ),
        None => (number(text)?, number(text)?),
    };
    if first == 0 || last < first {
        return Err(bad());
    }
    Ok((first, last))
}

/// What `kompress show` prints of `original`: all of it, the lines in `lines`, and of
/// those, with `grep`, the matching ones as `N:line`.
pub fn select(
    original: &[u8],
    lines: Option<(usize, usize)>,
    grep: Option<&regex::Regex>,
) -> Vec<u8> {
    if lines.is_none() && grep.is_none() {
        return original.to_vec();
    }
    let (first, last) = lines.unwrap_or((1, usize::MAX));
    let mut out = Vec::new();
    for (i, line) in original.split_inclusive(|b| *b == b'\n').enumerate() {
        let number = i + 1;
        if number < first {
            continue;
        }
        if number > last {
            break;
        }
        match grep {
            Some(re) => {
                if re.is_match(&String::from_utf8_lossy(line)) {
                    out.extend_from_slice(format!("{number}:").as_bytes());
                    out.extend_from_slice(line);
                    if !line.ends_with(b"\n") {
                        out.push(b'\n');
                    }
                }
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// `kompress show ID [--lines A:B] [--grep PATTERN]`.
pub fn show_main(id: &str, lines: Option<&str>, grep: Option<&str>) -> Result<()> {
    let lines = lines.map(parse_lines).transpose()?;
    let grep = grep
        .map(|p| {
            regex::Regex::new(p)
                .with_context(|| format!("--grep {p:?} is not a valid regular expression"))
        })
        .transpose()?;
    let dirs = Dirs::resolve().context("no home directory: cannot find the store")?;
    let config = crate::config::Config::load()?;
    let store = Store::open(&dirs, &config);
    let id = store.resolve(id)?;
    let original = store.get(&id)?;
    let mut event = crate::stats::Event::new("show");
    event.ids = vec![id];
    if let Err(err) = crate::stats::record(&dirs, &event) {
        crate::log::write(&format!("show: {err:#}"));
    }
    let out = select(&original, lines, grep.as_ref());
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write stdout")
        }
        _ => Ok(()),
    }
}

/// Remove `path` (a file or a directory) and say what it held; `None` if it was not there.
fn remove(path: &Path) -> Result<Option<(usize, u64)>> {
    fn measure(path: &Path) -> (usize, u64) {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => std::fs::read_dir(path)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| measure(&e.path()))
                        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
                })
                .unwrap_or((0, 0)),
            Ok(meta) => (1, meta.len()),
            Err(_) => (0, 0),
        }
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let held = measure(path);
    let removed = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(Some(held))
}

/// Delete the store, session memory and statistics under `dirs`; one line per thing, as
/// `kompress purge` prints them.
pub fn purge(dirs: &Dirs) -> Result<Vec<String>> {
    let events = dirs.events_file();
    let targets = [
        ("stored originals", dirs.store_dir()),
        ("session memory", dirs.sessions_dir()),
        ("statistics", events.clone()),
        ("statistics (older)", crate::stats::rotated(&events)),
        ("statistics lock", events.with_extension("lock")),
    ];
    let mut lines = Vec::new();
    for (what, path) in targets {
        match remove(&path)? {
            Some((files, bytes)) => lines.push(format!(
                "removed {what}: {} ({files} file{}, {bytes} bytes)",
                path.display(),
                if files == 1 { "" } else { "s" }
            )),
            None if what.contains('(') || what.ends_with("lock") => {}
            None => lines.push(format!("no {what} at {}", path.display())),
        }
    }
    Ok(lines)
}

/// `kompress purge`.
pub fn purge_main() -> Result<()> {
    let dirs = Dirs::resolve().context("no home directory: nothing to purge")?;
    for line in purge(&dirs)? {
        println!("{line}");
    }
    Ok(())
}

/// Set `path`'s modification time to now; an error when it does not exist.
fn touch(path: &Path) -> std::io::Result<()> {
    let file = File::options().write(true).open(path)?;
    file.set_modified(SystemTime::now())
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn ids_are_sha256() {
        assert_eq!(
            id_of(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(short(&id_of(b"abc")), "ba7816bf8f");
    }

    #[test]
    fn put_get_resolve_and_private_modes() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path().join("cache/originals"), 1 << 20, 7);
        let text = b"hello\nworld\n";
        let id = id_of(text);
        assert!(store.put(&id, text).unwrap());
        assert!(
            !store.put(&id, text).unwrap(),
            "same content is stored once"
        );
        assert_eq!(store.get(&store.resolve(&id[..6]).unwrap()).unwrap(), text);
        assert_eq!(store.resolve(&id.to_uppercase()[..8]).unwrap(), id);
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&home.path().join("cache")), 0o700);
        assert_eq!(mode(&store.dir().join(&id[..2])), 0o700);
        assert_eq!(mode(&store.path_of(&id)), 0o600);
        assert!(store.resolve("zz12").is_err());
        assert!(store.resolve("ab").is_err());
        assert!(
            store
                .resolve("0000")
                .unwrap_err()
                .to_string()
                .contains("no stored original")
        );
        assert!(store.put("../x", b"x").is_err());
    }

    #[test]
    fn ambiguous_prefixes_are_errors() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path().to_path_buf(), 1 << 20, 7);
        // Two fake ids with a common 4-character prefix.
        let a = format!("abcd{}", "0".repeat(60));
        let b = format!("abcd{}", "1".repeat(60));
        store.put(&a, b"a").unwrap();
        store.put(&b, b"b").unwrap();
        assert!(
            store
                .resolve("abcd")
                .unwrap_err()
                .to_string()
                .contains("2 originals")
        );
        assert_eq!(store.resolve("abcd0").unwrap(), a);
    }

    #[test]
    fn eviction_keeps_the_bound_and_the_newest() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path().to_path_buf(), 10_000, 7);
        let mut ids = Vec::new();
        for i in 0..40 {
            let text = format!("{i}\n").repeat(700 + i);
            let id = id_of(text.as_bytes());
            store.put(&id, text.as_bytes()).unwrap();
            ids.push(id);
            let total: u64 = store.list().iter().map(|f| f.2).sum();
            assert!(total <= 10_000, "after {i}: {total}");
        }
        let kept: Vec<String> = store.list().into_iter().map(|f| f.0).collect();
        assert!(kept.contains(ids.last().unwrap()));
        assert!(!kept.contains(&ids[0]));
        assert!(
            store.put(&id_of(&[b'x'; 6000]), &[b'x'; 6000]).is_err(),
            "over half the bound"
        );
    }

    #[test]
    fn retention_and_stale_temporaries() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path().to_path_buf(), 1 << 20, 1);
        let id = id_of(b"old");
        store.put(&id, b"old").unwrap();
        let old = SystemTime::now() - Duration::from_secs(2 * 86_400);
        File::options()
            .write(true)
            .open(store.path_of(&id))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let tmp = store.dir().join("ab/.tmp-x");
        std::fs::create_dir_all(tmp.parent().unwrap()).unwrap();
        std::fs::write(&tmp, b"partial").unwrap();
        File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let sweep = store.sweep(true).unwrap().unwrap();
        assert_eq!((sweep.removed, sweep.kept), (1, 0));
        assert!(!tmp.exists());
    }
}
