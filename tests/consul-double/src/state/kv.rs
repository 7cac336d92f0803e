//! KV operations with the semantics of Consul's state store (`state/kvs.go`): check-and-set,
//! lock acquisition and release by sessions, lock-delay, deletes with tombstones.

use std::time::Instant;

use super::store::{DirEntry, Store};
use super::StoreError;

/// What a `PUT /v1/kv/<key>` asks for, decided by its query parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOp {
    /// Plain write; always succeeds.
    Set,
    /// `?cas=<index>`: write only if the key's `ModifyIndex` is `index` (0: only if absent).
    Cas(u64),
    /// `?acquire=<session>`: take the lock for the session and write.
    Acquire(String),
    /// `?release=<session>`: give up the session's lock and write.
    Release(String),
}

/// What a `DELETE /v1/kv/<key>` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOp {
    /// Delete one key.
    Key,
    /// `?cas=<index>`: delete only if the key's `ModifyIndex` is `index`.
    Cas(u64),
    /// `?recurse`: delete every key with the given prefix.
    Tree,
}

impl Store {
    /// Reads one key; the index is the key's `ModifyIndex`, or the table index when absent.
    pub(crate) fn kv_get(&self, key: &str) -> (u64, Option<DirEntry>) {
        match self.kvs.get(key) {
            Some(entry) => (entry.modify_index, Some(entry.clone())),
            None => (self.kvs_index, None),
        }
    }

    /// Reads every entry under `prefix`.
    pub(crate) fn kv_list(&self, prefix: &str) -> (u64, Vec<DirEntry>) {
        let entries = self.entries_with_prefix(prefix).cloned().collect();
        (self.prefix_index(prefix), entries)
    }

    /// Lists the keys under `prefix`; with a separator, keys are cut after the first
    /// separator following the prefix and de-duplicated (Consul's `KVS.ListKeys`).
    pub(crate) fn kv_keys(&self, prefix: &str, separator: &str) -> (u64, Vec<String>) {
        let mut keys: Vec<String> = Vec::new();
        for entry in self.entries_with_prefix(prefix) {
            let after = &entry.key[prefix.len()..];
            let key = match after.find(separator) {
                Some(at) if !separator.is_empty() => {
                    &entry.key[..prefix.len() + at + separator.len()]
                }
                _ => entry.key.as_str(),
            };
            if keys.last().map(String::as_str) != Some(key) {
                keys.push(key.to_owned());
            }
        }
        (self.prefix_index(prefix), keys)
    }

    /// Applies a KV write; `Ok(false)` is Consul's `false` answer (CAS mismatch, lock held
    /// elsewhere or in lock-delay, release by a non-holder).
    pub(crate) fn kv_put(
        &mut self,
        op: PutOp,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        now: Instant,
    ) -> Result<bool, StoreError> {
        let mut entry = DirEntry {
            key: key.to_owned(),
            value,
            flags,
            lock_index: 0,
            session: None,
            create_index: 0,
            modify_index: 0,
        };
        match op {
            PutOp::Set => {
                let idx = self.next_index();
                self.kvs_set_entry(idx, entry, false);
                Ok(true)
            }
            PutOp::Cas(cas) => {
                let idx = self.next_index();
                let matches = match self.kvs.get(key) {
                    Some(existing) => existing.modify_index == cas,
                    None => cas == 0,
                };
                if matches {
                    self.kvs_set_entry(idx, entry, false);
                }
                Ok(matches)
            }
            PutOp::Acquire(session) => {
                // Lock-delay is enforced by the leader before the write is committed.
                if self.lock_delay_until(key, now).is_some() {
                    return Ok(false);
                }
                let idx = self.next_index();
                if session.is_empty() {
                    return Err(StoreError::MissingSession);
                }
                if !self.sessions.contains_key(&session) {
                    return Err(StoreError::InvalidSession(session));
                }
                match self.kvs.get(key) {
                    Some(existing) if existing.session.as_deref() == Some(session.as_str()) => {
                        entry.lock_index = existing.lock_index;
                    }
                    Some(existing) if existing.session.is_some() => return Ok(false),
                    Some(existing) => entry.lock_index = existing.lock_index + 1,
                    None => entry.lock_index = 1,
                }
                entry.session = Some(session);
                self.kvs_set_entry(idx, entry, true);
                Ok(true)
            }
            PutOp::Release(session) => {
                let idx = self.next_index();
                if session.is_empty() {
                    return Err(StoreError::MissingSession);
                }
                let Some(existing) = self.kvs.get(key) else {
                    return Ok(false);
                };
                if existing.session.as_deref() != Some(session.as_str()) {
                    return Ok(false);
                }
                entry.lock_index = existing.lock_index;
                self.kvs_set_entry(idx, entry, true);
                Ok(true)
            }
        }
    }

    /// Applies a KV delete. A check-and-set delete of a missing key answers `true`,
    /// as Consul's does.
    pub(crate) fn kv_delete(&mut self, op: DeleteOp, key: &str) -> bool {
        let idx = self.next_index();
        match op {
            DeleteOp::Key => {
                self.kvs_delete_entry(idx, key);
                true
            }
            DeleteOp::Cas(cas) => match self.kvs.get(key) {
                None => true,
                Some(existing) if existing.modify_index != cas => false,
                Some(_) => {
                    self.kvs_delete_entry(idx, key);
                    true
                }
            },
            DeleteOp::Tree => {
                let doomed: Vec<String> = self
                    .entries_with_prefix(key)
                    .map(|e| e.key.clone())
                    .collect();
                for doomed_key in doomed {
                    self.kvs_delete_entry(idx, &doomed_key);
                }
                true
            }
        }
    }
}
