//! The pack format: originals appended to one file, each followed by a footer that names
//! it.
//!
//! A record is the original's bytes, then a footer of fixed size:
//!
//! ```text
//! <original bytes>\n\0kompress-original <64 hex id> <20-digit length> <20-digit unix secs>\n
//! ```
//!
//! Why a footer and not a header: readers want the newest record (session memory diffs a
//! command's output against its previous run, stored moments ago), and a footer of known
//! size lets them walk a pack from its end, one small read per record, without an index.
//!
//! Why append to one file at all: creating a file costs an inode, and on ext4 that was
//! about 1 ms of every compressing hook call (`__ext4_new_inode` in a profile), more than
//! the compression. An `O_APPEND` write of the whole record in one call is not interleaved
//! with another process's append, so concurrent hooks need no lock to store.
//!
//! A torn record (a full disk mid-write) is skipped: the walk searches backwards for the
//! previous footer's magic. Readers check a body against its id before using it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// What starts every footer.
const MAGIC: &[u8] = b"\n\0kompress-original ";

/// Hex characters of a content id.
const ID_LEN: usize = 64;

/// Decimal digits of the footer's numbers.
const NUM_LEN: usize = 20;

/// Bytes of a footer.
pub const FOOTER_LEN: usize = MAGIC.len() + ID_LEN + 1 + NUM_LEN + 1 + NUM_LEN + 1;

/// How much of a pack one read takes while looking for a footer after a torn record.
const SEARCH_CHUNK: u64 = 1 << 20;

/// `body` with its footer: what one append writes.
pub fn record(id: &str, body: &[u8], ts: u64) -> Vec<u8> {
    debug_assert_eq!(id.len(), ID_LEN);
    let mut out = Vec::with_capacity(body.len() + FOOTER_LEN);
    out.extend_from_slice(body);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(format!(" {:020} {:020}\n", body.len(), ts).as_bytes());
    debug_assert_eq!(out.len(), body.len() + FOOTER_LEN);
    out
}

/// One record of a pack, as its footer describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The content id (lowercase hex SHA-256) the footer names.
    pub id: String,
    /// Where the body starts in the pack.
    pub offset: u64,
    /// The body's length.
    pub len: u64,
    /// When it was stored (unix seconds).
    pub ts: u64,
}

impl Entry {
    /// The body, as the pack holds it (the caller checks it against the id).
    pub fn read(&self, file: &File) -> io::Result<Vec<u8>> {
        let mut body = vec![0; usize::try_from(self.len).map_err(io::Error::other)?];
        file.read_exact_at(&mut body, self.offset)?;
        Ok(body)
    }
}

/// The footer's id, length and time; `None` when it is not a footer.
fn parse(footer: &[u8; FOOTER_LEN]) -> Option<(String, u64, u64)> {
    let rest = footer.strip_prefix(MAGIC)?;
    let (id, rest) = rest.split_at(ID_LEN);
    if !super::is_id(id) {
        return None;
    }
    let number = |digits: &[u8]| -> Option<u64> {
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let [b' ', rest @ ..] = rest else { return None };
    let (len, rest) = rest.split_at(NUM_LEN);
    let [b' ', rest @ ..] = rest else { return None };
    let (ts, rest) = rest.split_at(NUM_LEN);
    if rest != b"\n" {
        return None;
    }
    let id = String::from_utf8(id.to_vec()).ok()?;
    Some((id, number(len)?, number(ts)?))
}

/// Visit the records of `file`'s first `size` bytes from the newest to the oldest, until
/// `visit` returns false.
pub fn walk_back(file: &File, size: u64, mut visit: impl FnMut(&Entry) -> bool) -> io::Result<()> {
    let footer_len = FOOTER_LEN as u64;
    let mut end = size;
    let mut footer = [0u8; FOOTER_LEN];
    while end >= footer_len {
        file.read_exact_at(&mut footer, end - footer_len)?;
        match parse(&footer) {
            Some((id, len, ts)) if len <= end - footer_len => {
                let offset = end - footer_len - len;
                if !visit(&Entry { id, offset, len, ts }) {
                    return Ok(());
                }
                end = offset;
            }
            // A torn record or garbage: go on from the nearest footer before it.
            _ => match previous_footer_end(file, end)? {
                Some(previous) => end = previous,
                None => return Ok(()),
            },
        }
    }
    Ok(())
}

/// The end of the last complete footer that ends before `end` (by its magic), if any.
fn previous_footer_end(file: &File, end: u64) -> io::Result<Option<u64>> {
    let tail = (FOOTER_LEN - MAGIC.len()) as u64;
    // A footer ending at `end - 1` or earlier has its magic within [0, end - 1 - tail).
    let Some(mut hi) = end.checked_sub(1 + tail) else {
        return Ok(None);
    };
    let finder = memchr::memmem::FinderRev::new(MAGIC);
    let mut chunk = Vec::new();
    while hi >= MAGIC.len() as u64 {
        let lo = hi.saturating_sub(SEARCH_CHUNK);
        chunk.resize((hi - lo) as usize, 0);
        file.read_exact_at(&mut chunk, lo)?;
        if let Some(at) = finder.rfind(&chunk) {
            return Ok(Some(lo + at as u64 + FOOTER_LEN as u64));
        }
        if lo == 0 {
            break;
        }
        // Overlap the chunks so that a magic across their boundary is found.
        hi = lo + MAGIC.len() as u64 - 1;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn id(n: u8) -> String {
        format!("{:02x}", n).repeat(32)
    }

    fn entries(file: &File) -> Vec<(String, Vec<u8>)> {
        let size = file.metadata().unwrap().len();
        let mut out = Vec::new();
        walk_back(file, size, |e| {
            out.push((e.id.clone(), e.read(file).unwrap()));
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn records_walk_back_newest_first() {
        let mut file = tempfile::tempfile().unwrap();
        let bodies: [&[u8]; 4] = [b"one\n", b"", b"three\nwith \0 and a fake \n\0kompress-original ", b"4"];
        for (n, body) in bodies.iter().enumerate() {
            file.write_all(&record(&id(n as u8), body, 1_700_000_000 + n as u64))
                .unwrap();
        }
        let found = entries(&file);
        let expected: Vec<(String, Vec<u8>)> = bodies
            .iter()
            .enumerate()
            .rev()
            .map(|(n, b)| (id(n as u8), b.to_vec()))
            .collect();
        assert_eq!(found, expected);
        // Stopping early reads no further.
        let mut seen = 0;
        walk_back(&file, file.metadata().unwrap().len(), |_| {
            seen += 1;
            false
        })
        .unwrap();
        assert_eq!(seen, 1);
    }

    #[test]
    fn a_torn_record_hides_nothing_before_it() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&record(&id(1), b"first", 1)).unwrap();
        file.write_all(&record(&id(2), b"second", 2)).unwrap();
        // A record cut short in its footer, then one more complete record.
        let torn = record(&id(3), b"torn body", 3);
        file.write_all(&torn[..torn.len() - 7]).unwrap();
        file.write_all(&record(&id(4), b"fourth", 4)).unwrap();
        let ids: Vec<String> = entries(&file).into_iter().map(|e| e.0).collect();
        assert_eq!(ids, [id(4), id(2), id(1)]);
        // A torn tail (no footer at all) is skipped as well.
        file.write_all(b"partial body of a record whose footer never came").unwrap();
        let ids: Vec<String> = entries(&file).into_iter().map(|e| e.0).collect();
        assert_eq!(ids, [id(4), id(2), id(1)]);
    }

    #[test]
    fn footers_parse_only_when_whole() {
        let full = record(&id(7), b"x", 42);
        let footer: [u8; FOOTER_LEN] = full[1..].try_into().unwrap();
        assert_eq!(parse(&footer), Some((id(7), 1, 42)));
        let mut bad = footer;
        bad[MAGIC.len()] = b'G';
        assert_eq!(parse(&bad), None);
        let mut bad = footer;
        bad[FOOTER_LEN - 1] = b' ';
        assert_eq!(parse(&bad), None);
        let mut bad = footer;
        bad[FOOTER_LEN - 3] = b'x';
        assert_eq!(parse(&bad), None);
    }

    #[test]
    fn a_magic_across_search_chunks_is_found() {
        let mut file = tempfile::tempfile().unwrap();
        // The search after the garbage starts at 119 + garbage bytes (the last place a
        // footer's magic can end): its first chunk then starts at 110, inside the magic
        // at 100..120, which only the second, overlapping chunk holds whole.
        let garbage = vec![b'g'; SEARCH_CHUNK as usize - 9];
        let body = vec![b'b'; 100];
        file.write_all(&record(&id(9), &body, 9)).unwrap();
        file.write_all(&garbage).unwrap();
        let found = entries(&file);
        assert_eq!(found, [(id(9), body)]);
    }
}
