//! Filesystem primitives of the file backend: private directories, atomic
//! replacement of files, the entry file format and per-key `flock` locks.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

/// Name of the file holding a key's entry, inside the key's directory.
pub(super) const ENTRY_FILE: &str = ".entry";
/// Name of the `flock` target of a key or lock, inside its directory.
pub(super) const LOCK_FILE: &str = ".lock";
/// Name of the file remembering the version of a deleted entry.
pub(super) const TOMB_FILE: &str = ".tomb";
/// Name of a lock's lease file, inside the lock's directory.
pub(super) const LEASE_FILE: &str = ".lease";
/// Prefix of temporary files, written then renamed over their target.
const TEMP_PREFIX: &str = ".tmp-";

const ENTRY_MAGIC: &str = "wharf-entry 1";
const TOMB_MAGIC: &str = "wharf-tomb 1";

/// Creates `base/segments...` as needed (mode 0700), syncing each parent that got a
/// new directory so the new name survives a crash. Returns the deepest directory.
pub(super) fn ensure_dirs<'a>(
    base: &Path,
    segments: impl IntoIterator<Item = &'a str>,
) -> io::Result<PathBuf> {
    let mut dir = base.to_path_buf();
    for segment in segments {
        let parent = dir.clone();
        dir.push(segment);
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => sync_dir(&parent)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// Flushes a directory's entries (new or renamed names) to stable storage.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `dir/name` with `bytes` atomically: a reader sees the old content or the
/// new one, never a mix, and after return the new content is durable. Must be called
/// under the directory's lock, which also makes any leftover temporary file stale.
pub(super) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    remove_stale_temps(dir);
    let tmp = dir.join(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes `dir/name` if present and makes the removal durable.
pub(super) fn remove_durable(dir: &Path, name: &str) -> io::Result<bool> {
    match fs::remove_file(dir.join(name)) {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Temporary files left by a writer that crashed. Only called with the directory's
/// lock held, when no other writer can be using one.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The whole content of `path`, or `None` if it does not exist.
pub(super) fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// At most the first `limit` bytes of `path`, or `None` if it does not exist.
pub(super) fn read_head(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut head = Vec::new();
    file.take(limit).read_to_end(&mut head)?;
    Ok(Some(head))
}

/// An entry file: the header line `wharf-entry 1 <version> <length>\n`, then the
/// value's bytes.
pub(super) fn encode_entry(version: u64, value: &[u8]) -> Vec<u8> {
    let mut out = format!("{ENTRY_MAGIC} {version} {}\n", value.len()).into_bytes();
    out.extend_from_slice(value);
    out
}

/// The longest entry header.
pub(super) const ENTRY_HEADER_MAX: u64 = 64;

/// Parses an entry file's header: the version, the value's length and where the
/// value starts.
pub(super) fn decode_entry_header(bytes: &[u8]) -> Result<(u64, usize, usize), String> {
    let end = bytes
        .iter()
        .take(ENTRY_HEADER_MAX as usize)
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header = std::str::from_utf8(&bytes[..end]).map_err(|_| "header is not text")?;
    let rest = header.strip_prefix(ENTRY_MAGIC).ok_or("unknown header")?;
    let mut fields = rest.split_ascii_whitespace();
    let (Some(version), Some(len), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(format!("malformed header {header:?}"));
    };
    let version: u64 = version
        .parse()
        .map_err(|_| format!("bad version {version:?}"))?;
    let len: usize = len.parse().map_err(|_| format!("bad length {len:?}"))?;
    if version == 0 {
        return Err("version 0".into());
    }
    Ok((version, len, end + 1))
}

/// Parses a whole entry file into its version and value.
pub(super) fn decode_entry(bytes: &[u8]) -> Result<(u64, Vec<u8>), String> {
    let (version, len, start) = decode_entry_header(bytes)?;
    let value = &bytes[start..];
    if value.len() != len {
        return Err(format!("value is {} bytes, header says {len}", value.len()));
    }
    Ok((version, value.to_vec()))
}

/// A tombstone file: the version of the entry last deleted.
pub(super) fn encode_tomb(version: u64) -> Vec<u8> {
    format!("{TOMB_MAGIC} {version}\n").into_bytes()
}

/// Parses a tombstone file.
pub(super) fn decode_tomb(bytes: &[u8]) -> Result<u64, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "tombstone is not text")?;
    text.strip_prefix(TOMB_MAGIC)
        .and_then(|rest| rest.trim().parse().ok())
        .ok_or_else(|| format!("malformed tombstone {text:?}"))
}

/// An exclusive lock on a directory, released when dropped: a claim in this
/// process, then an `flock` on the directory's lock file for other processes and
/// nodes. `flock` locks belong to the open file, so even alone they would exclude two
/// handles of one process; the in-process claim keeps that true where a filesystem
/// emulates `flock` with per-process `fcntl` locks (NFS).
#[derive(Debug)]
pub(super) struct DirLock {
    file: Option<File>,
    dir: PathBuf,
}

/// Why a [`DirLock`] could not be taken.
#[derive(Debug)]
pub(super) enum DirLockError {
    /// Still held by someone else after the whole timeout.
    Timeout(Duration),
    /// Opening or locking the file failed.
    Io(PathBuf, io::Error),
}

/// Directories locked by this process, and a signal when one is unlocked.
static CLAIMS: LazyLock<(Mutex<HashSet<PathBuf>>, Condvar)> =
    LazyLock::new(|| (Mutex::new(HashSet::new()), Condvar::new()));

/// Claims `dir` within this process, waiting until `deadline`.
fn claim(dir: &Path, deadline: Instant) -> bool {
    let (held, freed) = &*CLAIMS;
    let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
    while held.contains(dir) {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        held = freed
            .wait_timeout(held, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    held.insert(dir.to_path_buf());
    true
}

fn unclaim(dir: &Path) {
    let (held, freed) = &*CLAIMS;
    held.lock().unwrap_or_else(|e| e.into_inner()).remove(dir);
    freed.notify_all();
}

impl DirLock {
    /// Locks `dir` through `dir/.lock`, creating it (mode 0600) if needed, trying for
    /// at most `timeout`. Critical sections under this lock are a few file
    /// operations long.
    pub(super) fn acquire(dir: &Path, timeout: Duration) -> Result<Self, DirLockError> {
        let started = Instant::now();
        let deadline = started + timeout;
        if !claim(dir, deadline) {
            return Err(DirLockError::Timeout(started.elapsed()));
        }
        // From here on, dropping `lock` gives the claim back.
        let mut lock = Self {
            file: None,
            dir: dir.to_path_buf(),
        };
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| DirLockError::Io(path.clone(), e))?;
        let mut backoff = Duration::from_micros(500);
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    lock.file = Some(file);
                    return Ok(lock);
                }
                Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {}
                Err(e) => return Err(DirLockError::Io(path, e.into())),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(DirLockError::Timeout(now - started));
            }
            let jitter = Duration::from_micros(rand::random_range(0..=backoff.as_micros() as u64));
            std::thread::sleep((backoff + jitter).min(deadline - now));
            backoff = (backoff * 2).min(Duration::from_millis(20));
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the file releases the flock; then other threads may claim.
        drop(self.file.take());
        unclaim(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_and_corruption() {
        let bytes = encode_entry(42, b"hello\nworld");
        assert_eq!(
            decode_entry(&bytes).unwrap(),
            (42, b"hello\nworld".to_vec())
        );
        assert_eq!(decode_entry(&encode_entry(1, b"")).unwrap(), (1, vec![]));
        assert!(decode_entry(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_entry(b"wharf-entry 1 0 0\n").is_err());
        assert!(decode_entry(b"wharf-entry 2 1 0\n").is_err());
        assert!(decode_entry(b"wharf-entry 1 x 0\n").is_err());
        assert!(decode_entry(b"garbage").is_err());
        assert!(decode_entry(b"").is_err());
        assert_eq!(decode_tomb(&encode_tomb(7)).unwrap(), 7);
        assert!(decode_tomb(b"wharf-tomb 1 x").is_err());
    }
}
