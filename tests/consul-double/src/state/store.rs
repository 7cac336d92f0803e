//! The replicated state of the double: KV entries, tombstones, sessions, lock delays and
//! the Raft-like index that orders every write, with Consul's per-table indexes.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::session::Session;

/// Consul's ceiling for a session's lock-delay; longer values are not honoured.
pub(crate) const MAX_LOCK_DELAY: Duration = Duration::from_secs(60);

/// One KV pair as Consul's state store keeps it (`structs.DirEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The full key.
    pub key: String,
    /// The value; empty values are reported as JSON `null`, as Consul does.
    pub value: Vec<u8>,
    /// Opaque client flags (`?flags=`).
    pub flags: u64,
    /// How many times a session has newly acquired this key.
    pub lock_index: u64,
    /// The session holding the lock, if any.
    pub session: Option<String>,
    /// Index of the write that created the key.
    pub create_index: u64,
    /// Index of the last write that changed the key.
    pub modify_index: u64,
}

impl DirEntry {
    /// Consul's `DirEntry.Equal`: what decides whether a set is a no-op.
    fn same_content(&self, other: &DirEntry) -> bool {
        self.lock_index == other.lock_index
            && self.key == other.key
            && self.flags == other.flags
            && self.value == other.value
            && self.session == other.session
    }
}

/// All state that survives a stop/start of the HTTP server, as Consul's Raft log would.
#[derive(Debug)]
pub struct Store {
    /// Last index handed to a write (Raft's commit index).
    pub(crate) raft_index: u64,
    /// KV pairs by key, in key order as Consul's radix tree returns them.
    pub(crate) kvs: BTreeMap<String, DirEntry>,
    /// Index of the delete that removed a key, kept so prefix reads see deletes.
    pub(crate) tombstones: BTreeMap<String, u64>,
    /// Highest index that changed the kvs or tombstones tables.
    pub(crate) kvs_index: u64,
    /// Live sessions by ID.
    pub(crate) sessions: BTreeMap<String, Session>,
    /// Highest index that changed the sessions table.
    pub(crate) sessions_index: u64,
    /// Keys whose lock may not be acquired before the given instant.
    pub(crate) lock_delays: HashMap<String, Instant>,
    /// Whether the node's `serfHealth` check is critical (test hook).
    pub(crate) serf_health_critical: bool,
    /// Whether the cluster has a leader (test hook); without one, nothing is written
    /// and session timers do not fire.
    pub(crate) leader: bool,
}

/// Raft index of a freshly bootstrapped server: Consul commits a few entries (its own
/// node, the `serfHealth` check, autopilot state) before any client write.
const BOOTSTRAP_INDEX: u64 = 5;

impl Default for Store {
    fn default() -> Self {
        Store {
            raft_index: BOOTSTRAP_INDEX,
            kvs: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            kvs_index: 0,
            sessions: BTreeMap::new(),
            sessions_index: 0,
            lock_delays: HashMap::new(),
            serf_health_critical: false,
            leader: true,
        }
    }
}

impl Store {
    /// Allocates the index of a write that goes through "Raft".
    pub(crate) fn next_index(&mut self) -> u64 {
        self.raft_index += 1;
        self.raft_index
    }

    /// Inserts or updates `entry` at `idx` (Consul's `kvsSetTxn`). Unless
    /// `update_session`, the existing holder is kept. Returns whether anything changed.
    pub(crate) fn kvs_set_entry(
        &mut self,
        idx: u64,
        mut entry: DirEntry,
        update_session: bool,
    ) -> bool {
        let existing = self.kvs.get(&entry.key);
        entry.create_index = existing.map_or(idx, |e| e.create_index);
        if !update_session {
            entry.session = existing.and_then(|e| e.session.clone());
        }
        if existing.is_some_and(|e| e.same_content(&entry)) {
            return false;
        }
        entry.modify_index = idx;
        self.kvs.insert(entry.key.clone(), entry);
        self.kvs_index = idx;
        true
    }

    /// Deletes `key` at `idx`, leaving a tombstone. Returns whether it existed.
    pub(crate) fn kvs_delete_entry(&mut self, idx: u64, key: &str) -> bool {
        if self.kvs.remove(key).is_none() {
            return false;
        }
        self.tombstones.insert(key.to_owned(), idx);
        self.kvs_index = idx;
        true
    }

    /// The index Consul reports for a read of a whole prefix: the highest
    /// `ModifyIndex` of its entries and tombstones, or the table index for the root.
    pub(crate) fn prefix_index(&self, prefix: &str) -> u64 {
        if prefix.is_empty() {
            return self.kvs_index;
        }
        let entries = self
            .kvs
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(_, e)| e.modify_index);
        let graves = self
            .tombstones
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(_, idx)| *idx);
        match entries.chain(graves).max() {
            Some(idx) if idx != 0 => idx,
            _ => self.kvs_index,
        }
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub(crate) fn entries_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a DirEntry> + 'a {
        self.kvs
            .range(prefix.to_owned()..)
            .take_while(move |(key, _)| key.starts_with(prefix))
            .map(|(_, e)| e)
    }

    /// When the lock-delay on `key` ends, if it is still running at `now`.
    pub(crate) fn lock_delay_until(&self, key: &str, now: Instant) -> Option<Instant> {
        self.lock_delays
            .get(key)
            .copied()
            .filter(|until| *until > now)
    }
}
