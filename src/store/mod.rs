//! The store of originals: every output the hook replaces is kept here, so that
//! `kompress show ID` can give it back and the agent never has to re-run a command.
//!
//! Layout, under the cache directory (`Dirs::store_dir`), every directory 0700 and every
//! file 0600:
//!
//! ```text
//! originals/
//!   pack                  the current pack: originals appended to it (see [`pack`])
//!   pack-<secs>-<nanos>-<n>  sealed packs, named by when they were sealed
//!   .lock                 flock(2) target: one sweep at a time
//! ```
//!
//! A put is one `O_APPEND` write of the original and its footer to `pack`, and one
//! `fstat` of it: no new file, no rename and no lock, so concurrent hooks all succeed and
//! a reader never sees half a record. When the pack has grown past a sixteenth of the
//! store's bound, or was created more than [`SWEEP_EVERY`] ago, the put seals it (a
//! rename) and sweeps, under a non-blocking exclusive flock: sealed packs past the
//! retention period go, then the oldest ones until the store fits its bound again. A
//! put that finds the lock taken leaves the work to the process holding it.
//!
//! The same content stored twice is two records; the newest counts. Storing it again is
//! what keeps it young: eviction goes by pack, oldest first.
//!
//! Older versions kept one file per original (`originals/3f/3f9a…`). Those are still
//! found by `kompress show`, and swept like packs.

mod pack;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::paths::{self, Dirs};

/// Hex characters of an id shown in markers; `kompress show` accepts any unique prefix.
pub const SHOWN_ID_LEN: usize = 10;

/// The shortest prefix `kompress show` accepts.
pub const MIN_PREFIX_LEN: usize = 4;

/// Seal the current pack and sweep at least this often (retention), whatever its size.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The current pack's file name.
const CURRENT: &str = "pack";

/// The prefix of a sealed pack's file name.
const SEALED: &str = "pack-";

/// Temporary files older than this are leftovers of a killed process (older versions).
const STALE_TMP: Duration = Duration::from_secs(3600);

/// The content id of `text`: the SHA-256 of its bytes, in lowercase hex.
pub fn id_of(text: &[u8]) -> String {
    hex(&Sha256::digest(text))
}

/// Whether `id` is a content id as [`id_of`] writes it: 64 lowercase hex digits.
fn is_id(id: &[u8]) -> bool {
    id.len() == 64 && id.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
    /// Files removed (packs, and originals older versions stored one per file).
    pub removed: usize,
    /// Bytes removed.
    pub removed_bytes: u64,
    /// Files kept, the current pack included.
    pub kept: usize,
    /// Bytes kept.
    pub kept_bytes: u64,
}

/// A file of the store, as a sweep and the readers see it.
struct Held {
    path: PathBuf,
    modified: SystemTime,
    len: u64,
    /// A pack (else an original of an older version, one per file).
    pack: bool,
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

    /// The size past which the current pack is sealed.
    fn pack_limit(&self) -> u64 {
        self.max_bytes / 16
    }

    /// Store `text` under its content id (computed by the caller with [`id_of`]).
    pub fn put(&self, id: &str, text: &[u8]) -> Result<()> {
        if !is_id(id.as_bytes()) {
            bail!("not a content id: {id:?}");
        }
        if self.max_bytes == 0 || text.len() as u64 > self.max_bytes / 2 {
            bail!(
                "{} bytes do not fit a store of {} bytes",
                text.len(),
                self.max_bytes
            );
        }
        let path = self.dir.join(CURRENT);
        let record = pack::record(id, text, now_secs());
        let file = paths::in_private_dir(&path, || {
            let mut file = paths::private_file_options()
                .append(true)
                .create(true)
                .open(&path)?;
            // One write: an append of the whole record is not interleaved with another's.
            file.write_all(&record)?;
            Ok(file)
        })
        .with_context(|| format!("cannot write {}", path.display()))?;
        let meta = file.metadata()?;
        drop(file);
        // Rust's metadata is statx(2) here, so the birth time comes with the size.
        let stale = stale(meta.created().ok(), || self.last_sweep());
        if meta.len() > self.pack_limit() || stale {
            if let Err(err) = self.seal_and_sweep(Some(&meta), false) {
                crate::log::write(&format!("store: {err:#}"));
            }
        }
        Ok(())
    }

    /// When the last sweep ended (the lock file's modification time).
    fn last_sweep(&self) -> Option<SystemTime> {
        std::fs::metadata(self.dir.join(".lock"))
            .and_then(|m| m.modified())
            .ok()
    }

    /// Delete expired originals, then the oldest until the store fits its bound.
    /// `wait`: wait for a running sweep instead of leaving the work to it. `None` when
    /// another process holds the sweep lock and `wait` is false.
    pub fn sweep(&self, wait: bool) -> Result<Option<Sweep>> {
        self.seal_and_sweep(None, wait)
    }

    /// Seal the current pack if it is still the one `written` describes (a put that
    /// found it full or old), then sweep.
    fn seal_and_sweep(
        &self,
        written: Option<&std::fs::Metadata>,
        wait: bool,
    ) -> Result<Option<Sweep>> {
        use std::os::unix::fs::MetadataExt;
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
        let current = self.dir.join(CURRENT);
        if let Some(written) = written {
            // Another put may have sealed it since, and a new pack taken its name.
            let same = std::fs::metadata(&current)
                .is_ok_and(|m| m.ino() == written.ino() && m.dev() == written.dev());
            if same {
                // Seals happen under the lock: a name found free stays free. A rename
                // onto an existing name would replace that pack.
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                let sealed = (0u32..)
                    .map(|n| {
                        self.dir.join(format!(
                            "{SEALED}{:020}-{:09}-{n}",
                            now.as_secs(),
                            now.subsec_nanos()
                        ))
                    })
                    .find(|path| !path.exists())
                    .expect("a free name");
                std::fs::rename(&current, &sealed)
                    .with_context(|| format!("cannot seal {}", current.display()))?;
            }
        }
        let mut sweep = Sweep::default();
        let mut held = Vec::new();
        for file in self.files(true) {
            if age(file.modified) > self.retention {
                if std::fs::remove_file(&file.path).is_ok() {
                    sweep.removed += 1;
                    sweep.removed_bytes += file.len;
                }
                continue;
            }
            held.push(file);
        }
        // Oldest first; the current pack last, as the one never evicted for size.
        held.sort_by_key(|f| (f.path == current, f.modified));
        let mut total: u64 = held.iter().map(|f| f.len).sum();
        // Room for the current pack to fill before the next sweep.
        let target = self.max_bytes - self.pack_limit();
        let mut kept = held.len();
        for file in &held {
            if total <= target || file.path == current {
                break;
            }
            if std::fs::remove_file(&file.path).is_ok() {
                total -= file.len;
                kept -= 1;
                sweep.removed += 1;
                sweep.removed_bytes += file.len;
            }
        }
        sweep.kept = kept;
        sweep.kept_bytes = total;
        // Older versions' size ledger.
        let _ = std::fs::remove_file(self.dir.join(".ledger"));
        let _ = lock.set_modified(SystemTime::now());
        drop(lock);
        Ok(Some(sweep))
    }

    /// The store's packs, the current one first, then the sealed ones from the newest;
    /// with `singles`, then older versions' one-per-original files (leftover temporaries
    /// of those are removed on the way). Readers leave those out: an old store can hold
    /// thousands, and a reader knows where the one it wants would be.
    fn files(&self, singles: bool) -> Vec<Held> {
        let mut packs = Vec::new();
        let mut legacy = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return packs;
        };
        let held = |path: PathBuf, pack: bool| -> Option<Held> {
            let meta = std::fs::metadata(&path).ok()?;
            meta.is_file().then(|| Held {
                modified: meta.modified().unwrap_or_else(|_| SystemTime::now()),
                len: meta.len(),
                path,
                pack,
            })
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == CURRENT || name.starts_with(SEALED) {
                packs.extend(held(entry.path(), true));
            } else if singles && name.len() == 2 && entry.file_type().is_ok_and(|t| t.is_dir())
            {
                for file in std::fs::read_dir(entry.path()).into_iter().flatten().flatten() {
                    let single = file.file_name();
                    let single = single.to_string_lossy();
                    let Some(found) = held(file.path(), false) else {
                        continue;
                    };
                    if single.starts_with(".tmp-") {
                        if age(found.modified) > STALE_TMP {
                            let _ = std::fs::remove_file(&found.path);
                        }
                    } else if single.len() == 64 {
                        legacy.push(found);
                    }
                }
            }
        }
        // The current pack first, then the sealed ones from the newest (their names grow
        // with time).
        packs.sort_by_key(|f| {
            let name = f.path.file_name().map(|n| n.to_os_string());
            (!f.path.ends_with(CURRENT), std::cmp::Reverse(name))
        });
        packs.extend(legacy);
        packs
    }

    /// Where an older version kept the original `id`, one file per original.
    fn single_path(&self, id: &str) -> Option<PathBuf> {
        is_id(id.as_bytes()).then(|| self.dir.join(&id[..2]).join(id))
    }

    /// Visit the records of the packs, the newest first, until `visit` returns false: its
    /// id, and a reader of its body.
    fn walk(&self, mut visit: impl FnMut(&str, &dyn Fn() -> Option<Vec<u8>>) -> bool) {
        for file in self.files(false) {
            let Ok(handle) = File::open(&file.path) else {
                continue;
            };
            let mut more = true;
            let _ = pack::walk_back(&handle, file.len, |entry| {
                more = visit(&entry.id, &|| entry.read(&handle).ok());
                more
            });
            if !more {
                return;
            }
        }
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
        let mut found: Vec<String> = Vec::new();
        self.walk(|id, _| {
            if id.starts_with(&prefix) && !found.iter().any(|f| f == id) {
                found.push(id.to_owned());
            }
            true
        });
        let shard = std::fs::read_dir(self.dir.join(&prefix[..2]));
        for entry in shard.into_iter().flatten().flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.len() == 64 && name.starts_with(&prefix) && !found.contains(&name) {
                found.push(name);
            }
        }
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

    /// The original with full id `id` (its newest record whose content matches the id).
    pub fn get(&self, id: &str) -> Result<Vec<u8>> {
        let mut found = None;
        self.walk(|candidate, read| {
            if candidate == id {
                found = read().filter(|body| id_of(body) == id);
            }
            found.is_none()
        });
        let found = found.or_else(|| {
            let body = std::fs::read(self.single_path(id)?).ok()?;
            (id_of(&body) == id).then_some(body)
        });
        found.with_context(|| format!("no stored original {id} in {}", self.dir.display()))
    }

    /// Every stored record, the packs' from the newest, then older versions' files: (the
    /// id it is stored under, its bytes). The same content stored twice is listed twice.
    pub fn list(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        self.walk(|id, read| {
            out.push((id.to_owned(), read().unwrap_or_default()));
            true
        });
        for file in self.files(true).into_iter().filter(|f| !f.pack) {
            let name = file.path.file_name().map(|n| n.to_string_lossy().into_owned());
            out.push((name.unwrap_or_default(), std::fs::read(&file.path).unwrap_or_default()));
        }
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

/// Whether the current pack is due for sealing by age: born [`SWEEP_EVERY`] ago, or,
/// where the file system keeps no birth times, the last sweep was (or none is known).
fn stale(born: Option<SystemTime>, last_sweep: impl FnOnce() -> Option<SystemTime>) -> bool {
    match born {
        Some(born) => age(born) >= SWEEP_EVERY,
        None => last_sweep().is_none_or(|at| age(at) >= SWEEP_EVERY),
    }
}

/// How long ago `then` was (zero when it is in the future).
fn age(then: SystemTime) -> Duration {
    SystemTime::now().duration_since(then).unwrap_or_default()
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

    fn stored_bytes(store: &Store) -> u64 {
        store.files(true).iter().map(|f| f.len).sum()
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
        store.put(&id, text).unwrap();
        store.put(&id, text).unwrap();
        assert_eq!(store.get(&store.resolve(&id[..6]).unwrap()).unwrap(), text);
        assert_eq!(store.resolve(&id.to_uppercase()[..8]).unwrap(), id);
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&home.path().join("cache")), 0o700);
        assert_eq!(mode(&store.dir().join(CURRENT)), 0o600);
        // One file for both puts: no inode per original.
        assert_eq!(store.files(true).len(), 1);
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
        assert!(store.put(&id.to_uppercase(), text).is_err());
        assert!(store.get(&id_of(b"never stored")).is_err());
    }

    #[test]
    fn a_record_that_does_not_match_its_id_is_never_given() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path().to_path_buf(), 1 << 20, 7);
        let id = id_of(b"right");
        store.put(&id, b"wrong").unwrap();
        assert!(store.get(&id).is_err());
        store.put(&id, b"right").unwrap();
        assert_eq!(store.get(&id).unwrap(), b"right");
        // The newest record is found first, even behind a newer mismatching one.
        store.put(&id, b"wrong again").unwrap();
        assert_eq!(store.get(&id).unwrap(), b"right");
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
        store.put(&a, b"a").unwrap();
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
            let total = stored_bytes(&store);
            assert!(total <= 10_000, "after {i}: {total}");
        }
        let kept: Vec<String> = store.list().into_iter().map(|f| f.0).collect();
        assert_eq!(&kept[0], ids.last().unwrap(), "newest first");
        assert!(!kept.contains(&ids[0]));
        assert!(store.put(&id_of(&[b'x'; 6000]), &[b'x'; 6000]).is_err(), "over half the bound");
    }

    #[test]
    fn small_puts_share_a_pack_until_it_is_full() {
        let home = tempfile::tempdir().unwrap();
        // A pack is sealed past 1,000 bytes.
        let store = Store::new(home.path().to_path_buf(), 16_000, 7);
        for i in 0..20 {
            let text = format!("output {i}\n").repeat(10);
            store.put(&id_of(text.as_bytes()), text.as_bytes()).unwrap();
        }
        let files = store.files(true);
        assert!((3..=6).contains(&files.len()), "{}", files.len());
        assert!(files.iter().all(|f| f.pack));
        assert_eq!(store.list().len(), 20);
        for i in 0..20 {
            let text = format!("output {i}\n").repeat(10);
            assert_eq!(store.get(&id_of(text.as_bytes())).unwrap(), text.as_bytes());
        }
    }

    #[test]
    fn retention_and_older_versions_files() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path().to_path_buf(), 1 << 20, 1);
        let old = SystemTime::now() - Duration::from_secs(2 * 86_400);
        let age_file = |path: &Path| {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(old)
                .unwrap()
        };
        // A sealed pack, past the retention.
        store.put(&id_of(b"old"), b"old").unwrap();
        store.sweep(true).unwrap();
        let sealed = store.dir().join(format!("{SEALED}00000000000000000001-000000000-0"));
        std::fs::rename(store.dir().join(CURRENT), &sealed).unwrap();
        age_file(&sealed);
        // An original as older versions stored it, one young and one expired, and a
        // leftover temporary.
        let legacy = |text: &[u8]| {
            let id = id_of(text);
            let path = store.dir().join(&id[..2]).join(&id);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            (id, path)
        };
        let (young_id, _) = legacy(b"young, one file");
        let (_, expired) = legacy(b"expired, one file");
        age_file(&expired);
        let (_, tmp) = legacy(b"partial");
        let tmp2 = tmp.with_file_name(".tmp-x");
        std::fs::rename(&tmp, &tmp2).unwrap();
        age_file(&tmp2);
        // Found by show before the sweep.
        assert_eq!(store.get(&young_id).unwrap(), b"young, one file");
        assert_eq!(store.resolve(&young_id[..8]).unwrap(), young_id);
        assert_eq!(store.list().len(), 3, "the sealed pack's record and two files");
        store.put(&id_of(b"new"), b"new").unwrap();
        let sweep = store.sweep(true).unwrap().unwrap();
        assert_eq!((sweep.removed, sweep.kept), (2, 2), "{sweep:?}");
        assert!(!tmp2.exists() && !sealed.exists() && !expired.exists());
        assert_eq!(store.get(&young_id).unwrap(), b"young, one file");
        assert_eq!(store.get(&id_of(b"new")).unwrap(), b"new");
        assert!(store.resolve(&id_of(b"old")).is_err());
    }

    #[test]
    fn packs_are_sealed_by_age() {
        let now = SystemTime::now();
        let hour_ago = now - SWEEP_EVERY;
        assert!(!stale(Some(now), || unreachable!("born is enough")));
        assert!(stale(Some(hour_ago), || unreachable!("born is enough")));
        assert!(stale(None, || None));
        assert!(!stale(None, || Some(now)));
        assert!(stale(None, || Some(hour_ago)));
        // Through a put: a pack born now stays current; where birth times are kept, that
        // is what the put reads.
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path().to_path_buf(), 1 << 20, 7);
        store.put(&id_of(b"a"), b"a").unwrap();
        store.sweep(true).unwrap();
        store.put(&id_of(b"b"), b"b").unwrap();
        assert_eq!(store.files(true).len(), 1);
    }
}
