//! The file backend: the embedded default store, for one node or for several nodes
//! sharing a POSIX filesystem (CephFS, NFS with working locks).
//!
//! # Layout under the root directory
//!
//! ```text
//! kv/<key segments>/.entry    the entry: header line with the version, then the value
//! kv/<key segments>/.lock     flock target serializing writes of the key
//! kv/<key segments>/.tomb     version of the entry last deleted (keeps versions unique)
//! locks/<name segments>/.lock flock target serializing lease changes
//! locks/<name segments>/.lease JSON lease: owner, fencing token, expiry
//! ```
//!
//! Every key is a directory, so `a/b` and `a/b/c` can both hold entries; key
//! segments never start with `.`, so these names never clash with keys. Files are
//! created 0600 and directories 0700.
//!
//! # Why this is safe on a shared filesystem
//!
//! * **Atomic content.** Files are never modified in place: a new version is written
//!   to a temporary file in the same directory, fsynced, renamed over the old one,
//!   and the directory is fsynced. Readers (`get`, `list`, watches) take no lock and
//!   see either the old or the new file.
//! * **Compare-and-swap.** `put` and `delete` hold an exclusive `flock` on the key's
//!   `.lock` file while they read the current version, check the expectation and
//!   write. `flock` locks are granted by the filesystem, so on CephFS (kernel client
//!   or ceph-fuse, whose MDS arbitrates them) they exclude writers on every node.
//!   Unlike `fcntl` record locks they belong to the open file, not the process, so
//!   closing some other descriptor of the file does not silently drop them; and the
//!   process also keeps its own claim on the directory, so its threads exclude each
//!   other even where `flock` is emulated with per-process `fcntl` locks (NFS). A
//!   FUSE filesystem without lock support would only lock locally: do not share
//!   such a mount between nodes. Lock files are never deleted, which avoids the
//!   classic race of locking a file another process has just unlinked.
//! * **Versions** grow by one per write, starting above the version remembered in
//!   `.tomb`, so a deleted and re-created key never repeats a version.
//! * **Leases** are checked and changed only under the lock directory's `flock`. A
//!   lease expires by the wall clock of the node reading it, so node clocks must
//!   agree to well within `ttl / 3` (the margin [`Lock`] keeps).
//!
//! Watches poll (every [`FileStoreOptions::poll_interval`], 1 s by default): inotify
//! does not see writes made by other nodes on a network filesystem.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    key_in_prefix, normalize_prefix, validate_key, Entry, Expect, Lock, LockError, Store,
    StoreError, WatchStream, MAX_VALUE_LEN,
};

mod fsio;
mod lease;
#[cfg(test)]
mod tests;
mod walk;
mod watch;

use fsio::{DirLock, DirLockError, ENTRY_FILE, TOMB_FILE};

/// Settings of a [`FileStore`].
#[derive(Debug, Clone)]
pub struct FileStoreOptions {
    /// How often watches look for changes (their latency). Default 1 s; at least
    /// 10 ms.
    pub poll_interval: Duration,
    /// How long an operation waits for another writer's critical section on the same
    /// key (a few file operations) before failing with
    /// [`StoreError::Contended`]. Default 10 s.
    pub key_lock_timeout: Duration,
    /// Names this node in lease owners, for humans reading lock files. Default: the
    /// host name.
    pub node_name: String,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            key_lock_timeout: Duration::from_secs(10),
            node_name: host_name(),
        }
    }
}

/// This machine's host name, for naming lease owners.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "node".to_string())
}

/// A [`Store`] keeping one file per entry under a root directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    kv: PathBuf,
    locks: PathBuf,
    options: FileStoreOptions,
    /// Distinguishes this handle's leases from every other handle's.
    instance: String,
}

impl FileStore {
    /// Opens (creating if needed) the store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>, options: FileStoreOptions) -> Result<Self, StoreError> {
        let root = root.into();
        let io_err = |path: &Path, source| StoreError::Io {
            key: "(store root)".to_string(),
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(&root).map_err(|e| io_err(&root, e))?;
        // One spelling per directory, for the in-process half of key locks.
        let root = std::fs::canonicalize(&root).map_err(|e| io_err(&root, e))?;
        warn_if_open(&root);
        let kv = fsio::ensure_dirs(&root, ["kv"]).map_err(|e| io_err(&root, e))?;
        let locks = fsio::ensure_dirs(&root, ["locks"]).map_err(|e| io_err(&root, e))?;
        let instance = format!(
            "{}/{}/{:08x}",
            options.node_name,
            std::process::id(),
            rand::random::<u32>()
        );
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                kv,
                locks,
                options,
                instance,
            }),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }
}

fn warn_if_open(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(root) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(root = %root.display(), mode = format!("{mode:o}"), "store directory is readable by others; private keys live there (use 700)");
        }
    }
}

impl Inner {
    fn key_dir(&self, key: &str) -> PathBuf {
        let mut dir = self.kv.clone();
        dir.extend(key.split('/'));
        dir
    }

    fn io(&self, key: &str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
        let (key, path) = (key.to_string(), path.to_path_buf());
        move |source| StoreError::Io { key, path, source }
    }

    fn dir_lock(&self, key: &str, dir: &Path) -> Result<DirLock, StoreError> {
        DirLock::acquire(dir, self.options.key_lock_timeout).map_err(|e| match e {
            DirLockError::Timeout(waited) => StoreError::Contended {
                key: key.to_string(),
                waited,
            },
            DirLockError::Io(path, source) => StoreError::Io {
                key: key.to_string(),
                path,
                source,
            },
        })
    }

    /// The entry in `dir` (the directory of `key`).
    fn read_entry(&self, key: &str, dir: &Path) -> Result<Option<Entry>, StoreError> {
        let path = dir.join(ENTRY_FILE);
        let Some(bytes) = fsio::read_optional(&path).map_err(self.io(key, &path))? else {
            return Ok(None);
        };
        let (version, value) =
            fsio::decode_entry(&bytes).map_err(|reason| StoreError::Corrupt {
                key: key.to_string(),
                path,
                reason,
            })?;
        Ok(Some(Entry { value, version }))
    }

    fn read_tomb(&self, key: &str, dir: &Path) -> Result<u64, StoreError> {
        let path = dir.join(TOMB_FILE);
        match fsio::read_optional(&path).map_err(self.io(key, &path))? {
            None => Ok(0),
            Some(bytes) => fsio::decode_tomb(&bytes).map_err(|reason| StoreError::Corrupt {
                key: key.to_string(),
                path,
                reason,
            }),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.read_entry(key, &self.key_dir(key))
    }

    fn put(&self, key: &str, value: &[u8], expect: Expect) -> Result<u64, StoreError> {
        let dir = fsio::ensure_dirs(&self.kv, key.split('/')).map_err(self.io(key, &self.kv))?;
        let _guard = self.dir_lock(key, &dir)?;
        let current = self.read_entry(key, &dir)?.map(|e| e.version);
        if !expect.holds(current) {
            return Err(StoreError::Conflict {
                key: key.to_string(),
                expected: expect,
                found: current,
            });
        }
        let base = match current {
            Some(v) => v,
            None => self.read_tomb(key, &dir)?,
        };
        let version = base + 1;
        fsio::write_atomic(&dir, ENTRY_FILE, &fsio::encode_entry(version, value))
            .map_err(self.io(key, &dir.join(ENTRY_FILE)))?;
        Ok(version)
    }

    fn delete(&self, key: &str, expect: Expect) -> Result<(), StoreError> {
        let dir = self.key_dir(key);
        if !dir.is_dir() {
            return match expect {
                Expect::Version(_) => Err(StoreError::Conflict {
                    key: key.to_string(),
                    expected: expect,
                    found: None,
                }),
                Expect::Any | Expect::Absent => Ok(()),
            };
        }
        let _guard = self.dir_lock(key, &dir)?;
        let current = self.read_entry(key, &dir)?.map(|e| e.version);
        if !expect.holds(current) {
            return Err(StoreError::Conflict {
                key: key.to_string(),
                expected: expect,
                found: current,
            });
        }
        let Some(version) = current else {
            return Ok(());
        };
        // The tombstone first: a crash between the two steps leaves both files,
        // which is harmless (the next version is still above both).
        fsio::write_atomic(&dir, TOMB_FILE, &fsio::encode_tomb(version))
            .map_err(self.io(key, &dir.join(TOMB_FILE)))?;
        fsio::remove_durable(&dir, ENTRY_FILE).map_err(self.io(key, &dir.join(ENTRY_FILE)))?;
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        let mut out = Vec::new();
        walk::walk(&self.kv, prefix, |key, dir| {
            match self.read_entry(&key, dir) {
                Ok(Some(entry)) => out.push((key, entry)),
                Ok(None) => {}
                // One damaged file must not hide every other entry.
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::error!(error = %e, "skipping corrupt store entry");
                }
                Err(e) => return Err(e),
            }
            Ok(())
        })?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        debug_assert!(out.iter().all(|(k, _)| key_in_prefix(k, prefix)));
        Ok(out)
    }
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(
    key: &str,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend {
            key: key.to_string(),
            source: Box::new(e),
        })?
}

#[async_trait]
impl Store for FileStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        validate_key(key)?;
        let (inner, k) = (self.inner.clone(), key.to_string());
        blocking(key, move || inner.get(&k)).await
    }

    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64, StoreError> {
        validate_key(key)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(StoreError::ValueTooLarge {
                key: key.to_string(),
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        let (inner, k) = (self.inner.clone(), key.to_string());
        blocking(key, move || inner.put(&k, &value, expect)).await
    }

    async fn delete(&self, key: &str, expect: Expect) -> Result<(), StoreError> {
        validate_key(key)?;
        let (inner, k) = (self.inner.clone(), key.to_string());
        blocking(key, move || inner.delete(&k, expect)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        let p = normalize_prefix(prefix)?.to_string();
        let inner = self.inner.clone();
        blocking(prefix, move || inner.list(&p)).await
    }

    async fn watch(&self, prefix: &str) -> Result<WatchStream, StoreError> {
        let p = normalize_prefix(prefix)?.to_string();
        watch::watch(self.inner.clone(), p).await
    }

    async fn lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<Lock, LockError> {
        lease::lock(self.inner.clone(), name, ttl, wait).await
    }

    async fn break_lock(&self, name: &str) -> Result<bool, StoreError> {
        validate_key(name)?;
        let (inner, n) = (self.inner.clone(), name.to_string());
        blocking(name, move || lease::break_lock(&inner, &n)).await
    }
}
