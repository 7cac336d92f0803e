//! The cluster provider's task: follows the stored table, contends for the publisher
//! lock, writes the table while holding it, and feeds the aggregator. All store I/O
//! happens here; decisions are [`Node`]'s.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use wharf_certstore::store::{Expect, Lock, LockError, Store, WatchStream};

use super::election::{Action, Node};
use super::entry::{self, Publisher, Table, FORMAT};
use super::error::ClusterError;
use super::settings::Settings;
use super::status::{now, ClusterStatus};
use crate::config::DynamicConfig;
use crate::provider::ProviderUpdate;

/// Delay before reading the store again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// Writes attempted when other writers keep changing the entry in between.
const WRITE_ATTEMPTS: usize = 3;

/// One attempt at the publisher lock.
enum Attempt {
    Acquired(Lock),
    Ineligible,
    Busy,
    Failed(ClusterError),
}

type Contention = Pin<Box<dyn Future<Output = Attempt> + Send>>;
type Lost = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Everything the task owns.
pub(super) struct Driver {
    pub(super) store: Arc<dyn Store>,
    pub(super) settings: Arc<Settings>,
    pub(super) node: Node,
    pub(super) tx: mpsc::Sender<ProviderUpdate>,
    pub(super) first: Option<oneshot::Sender<DynamicConfig>>,
    pub(super) status: watch::Sender<ClusterStatus>,
    pub(super) stop: CancellationToken,
    lock: Option<Lock>,
    lost: Option<Lost>,
    contention: Option<Contention>,
    watch: Option<WatchStream>,
    /// The version of the entry last read or written, so it is decoded once.
    seen: Option<u64>,
    /// When to reopen the watch or read the store again after a failure.
    reload_at: Option<Instant>,
    /// When to retry a failed write.
    publish_at: Option<Instant>,
    /// When a publisher next checks that it is still eligible (a demoted manager
    /// cannot list services any more and must hand over).
    recheck_at: Option<Instant>,
}

impl Driver {
    /// A driver for a node that starts as `node`.
    pub(super) fn new(
        store: Arc<dyn Store>,
        settings: Arc<Settings>,
        node: Node,
        tx: mpsc::Sender<ProviderUpdate>,
        first: oneshot::Sender<DynamicConfig>,
        status: watch::Sender<ClusterStatus>,
        stop: CancellationToken,
    ) -> Self {
        Self {
            store,
            settings,
            node,
            tx,
            first: Some(first),
            status,
            stop,
            lock: None,
            lost: None,
            contention: None,
            watch: None,
            seen: None,
            reload_at: None,
            publish_at: None,
            recheck_at: None,
        }
    }

    /// Runs until the aggregator goes away or `stop` is cancelled; releases the lock
    /// on the way out so another candidate takes over at once.
    pub(super) async fn run(
        mut self,
        mut local: Option<mpsc::Receiver<ProviderUpdate>>,
        initial_local: Option<DynamicConfig>,
    ) {
        let actions = self.start_up(initial_local).await;
        self.execute(actions).await;
        // Nothing to serve yet: let start-up go on without waiting.
        self.first = None;
        self.publish_status();
        loop {
            let timer = [self.reload_at, self.publish_at, self.recheck_at]
                .into_iter()
                .flatten()
                .min();
            let actions = tokio::select! {
                () = self.stop.cancelled() => break,
                () = self.tx.closed() => break,
                update = recv(&mut local) => match update {
                    Some(update) => self.node.on_local(update.config),
                    None => {
                        local = None;
                        Vec::new()
                    }
                },
                event = next_event(&mut self.watch) => match event {
                    Some(()) => self.reload().await,
                    None => {
                        warn!(key = %self.settings.key, "cluster: store watch ended; reopening");
                        self.watch = None;
                        self.reload_at = Some(Instant::now() + RETRY);
                        Vec::new()
                    }
                },
                attempt = poll(&mut self.contention) => {
                    self.contention = None;
                    self.on_attempt(attempt).await
                }
                () = poll(&mut self.lost) => {
                    self.lost = None;
                    self.recheck_at = None;
                    self.lock = None;
                    warn!(lock = %self.settings.lock, "cluster: publisher lock lost; stopped publishing");
                    self.contention = Some(self.contend(Duration::ZERO, self.settings.ttl));
                    self.node.on_lost()
                }
                () = sleep_until(timer) => self.on_timer().await,
            };
            self.execute(actions).await;
            self.publish_status();
        }
        if let Some(lock) = self.lock.take() {
            if let Err(e) = lock.release().await {
                warn!(lock = %self.settings.lock, error = %e, "cluster: cannot release the publisher lock; it expires after its TTL");
            }
        }
    }

    /// Reads the table, takes the local provider's first configuration and makes one
    /// attempt at the lock; only the last configuration chosen is served. When the
    /// lock is free (the previous publisher released it), a candidate so starts with
    /// its own view rather than with a table that may be stale.
    async fn start_up(&mut self, initial_local: Option<DynamicConfig>) -> Vec<Action> {
        let mut actions = self.open_watch().await;
        if let Some(config) = initial_local {
            actions.extend(self.node.on_local(config));
        }
        if self.settings.eligibility.possible() {
            let attempt = self.contend(Duration::ZERO, Duration::ZERO).await;
            actions.extend(self.on_attempt(attempt).await);
        }
        let last = actions.iter().rposition(|a| matches!(a, Action::Apply(_)));
        actions
            .into_iter()
            .enumerate()
            .filter(|(i, a)| !matches!(a, Action::Apply(_)) || Some(*i) == last)
            .map(|(_, a)| a)
            .collect()
    }

    /// A contention attempt after `delay`: checks eligibility, then waits up to
    /// `wait` for the lock.
    fn contend(&self, delay: Duration, wait: Duration) -> Contention {
        let store = self.store.clone();
        let settings = self.settings.clone();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            if !settings.eligibility.check().await {
                return Attempt::Ineligible;
            }
            match store.lock(&settings.lock, settings.ttl, wait).await {
                Ok(lock) => Attempt::Acquired(lock),
                Err(LockError::Busy { .. }) => Attempt::Busy,
                Err(e) => Attempt::Failed(e.into()),
            }
        })
    }

    async fn on_attempt(&mut self, attempt: Attempt) -> Vec<Action> {
        match attempt {
            Attempt::Acquired(lock) => {
                info!(lock = %self.settings.lock, token = lock.token(), node = %self.settings.node, "cluster: publisher lock acquired; publishing the routing table");
                self.lost = Some(Box::pin(lock.lost()));
                let token = lock.token();
                self.lock = Some(lock);
                self.node.set_eligible(true);
                self.recheck_at = Some(Instant::now() + self.settings.ttl);
                // Re-check the store first: a newer table may be there already.
                let mut actions = self.reload().await;
                actions.extend(self.node.on_acquired(token));
                actions
            }
            Attempt::Ineligible => {
                self.node.set_eligible(false);
                self.contention = Some(self.contend(self.settings.ttl, self.settings.ttl));
                Vec::new()
            }
            Attempt::Busy => {
                self.node.set_eligible(true);
                self.contention = Some(self.contend(Duration::ZERO, self.settings.ttl));
                Vec::new()
            }
            Attempt::Failed(e) => {
                warn!(lock = %self.settings.lock, error = %e, "cluster: cannot contend for the publisher lock");
                self.set_error(&e);
                self.contention = Some(self.contend(self.settings.ttl / 3, self.settings.ttl));
                Vec::new()
            }
        }
    }

    async fn on_timer(&mut self) -> Vec<Action> {
        let now = Instant::now();
        let mut actions = Vec::new();
        if self.reload_at.is_some_and(|t| t <= now) {
            self.reload_at = None;
            if self.watch.is_none() {
                actions = self.open_watch().await;
            } else {
                actions = self.reload().await;
            }
        }
        if self.recheck_at.is_some_and(|t| t <= now) {
            self.recheck_at = None;
            if self.lock.is_some() {
                if self.settings.eligibility.check().await {
                    self.recheck_at = Some(Instant::now() + self.settings.ttl);
                } else {
                    warn!(lock = %self.settings.lock, "cluster: this node can no longer see the whole cluster; handing the publisher lock over");
                    self.step_down().await;
                    self.node.set_eligible(false);
                    actions.extend(self.node.on_lost());
                }
            }
        }
        if self.publish_at.is_some_and(|t| t <= now) {
            self.publish_at = None;
            if let Some(pending) = self.node.pending() {
                actions.push(Action::Publish(pending.clone()));
            }
        }
        actions
    }

    /// Starts watching the table's key, then reads it (the watch only reports later
    /// changes). On failure both are retried later; the current routes stay.
    async fn open_watch(&mut self) -> Vec<Action> {
        match self.store.watch(&self.settings.key).await {
            Ok(w) => self.watch = Some(w),
            Err(e) => {
                warn!(key = %self.settings.key, error = %e, "cluster: cannot watch the store; keeping the current routes");
                self.set_error(&e);
                self.reload_at = Some(Instant::now() + RETRY);
                return Vec::new();
            }
        }
        self.reload().await
    }

    /// Reads the table; a missing, unreadable or malformed one changes nothing.
    async fn reload(&mut self) -> Vec<Action> {
        let key = &self.settings.key;
        let entry = match self.store.get(key).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return Vec::new(),
            Err(e) => {
                warn!(key = %key, error = %e, "cluster: cannot read the routing table; keeping the last one");
                self.set_error(&e);
                self.reload_at = Some(Instant::now() + RETRY);
                return Vec::new();
            }
        };
        if self.seen == Some(entry.version) {
            return Vec::new();
        }
        self.seen = Some(entry.version);
        match self.decode(&entry.value) {
            Ok(table) => {
                self.status.send_modify(|s| {
                    s.last_received = Some(now());
                    s.last_error = None;
                });
                self.node.on_remote(table)
            }
            Err(e) => {
                warn!(key = %key, version = entry.version, error = %e, "cluster: ignoring the stored routing table; keeping the current routes");
                self.set_error(&e);
                Vec::new()
            }
        }
    }

    fn decode(&self, value: &[u8]) -> Result<Table, ClusterError> {
        let table = entry::decode(&self.settings.key, value)?;
        if table.provider != self.settings.provider {
            return Err(ClusterError::ProviderMismatch {
                key: self.settings.key.clone(),
                expected: self.settings.provider.to_string(),
                found: table.provider,
            });
        }
        Ok(table)
    }

    async fn execute(&mut self, actions: Vec<Action>) {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Apply(config) => self.deliver(config).await,
                Action::Publish(config) => match self.publish(config.clone()).await {
                    Ok(Some(table)) => {
                        self.node.on_written(config);
                        queue.extend(self.node.on_remote(table));
                        self.status.send_modify(|s| {
                            s.last_published = Some(now());
                            s.last_error = None;
                        });
                    }
                    Ok(None) => {}
                    Err(e @ ClusterError::Superseded { .. }) => {
                        warn!(error = %e, "cluster: stepping down");
                        self.step_down().await;
                        queue.extend(self.node.on_lost());
                    }
                    Err(e) => {
                        warn!(key = %self.settings.key, error = %e, "cluster: cannot publish the routing table; the previous one stays, retrying");
                        self.set_error(&e);
                        self.publish_at = Some(Instant::now() + RETRY);
                    }
                },
                Action::StepDown => self.step_down().await,
            }
        }
    }

    /// Releases the lock and contends again.
    async fn step_down(&mut self) {
        self.lost = None;
        self.recheck_at = None;
        if let Some(lock) = self.lock.take() {
            if let Err(e) = lock.release().await {
                warn!(lock = %self.settings.lock, error = %e, "cluster: cannot release the publisher lock");
            }
        }
        self.contention = Some(self.contend(self.settings.ttl, self.settings.ttl));
    }

    /// Hands `config` to the start-up wait if it is still there, else to the
    /// aggregator.
    async fn deliver(&mut self, config: DynamicConfig) {
        let config = match self.first.take() {
            Some(first) => match first.send(config) {
                Ok(()) => return,
                Err(config) => config,
            },
            None => config,
        };
        let update = ProviderUpdate {
            provider: self.settings.provider,
            config,
        };
        // An error means the aggregator is gone; the loop ends on `tx.closed()`.
        let _ = self.tx.send(update).await;
    }

    /// Writes `config` as the table, with compare-and-swap against the entry just
    /// read, while the lock is held. `Ok(None)`: not written because the lock is
    /// gone (the loss is handled when `lost` fires).
    async fn publish(&mut self, config: DynamicConfig) -> Result<Option<Table>, ClusterError> {
        let (Some(token), Some(lock)) = (self.node.token(), &self.lock) else {
            return Ok(None);
        };
        if lock.is_lost() {
            return Ok(None);
        }
        let key = &self.settings.key;
        let table = Table {
            format: FORMAT,
            provider: self.settings.provider.to_string(),
            publisher: Publisher {
                node: self.settings.node.clone(),
                instance: self.settings.instance.clone(),
            },
            token,
            published_at: now(),
            config,
        };
        let bytes = entry::encode(key, &table)?;
        let mut last = None;
        for _ in 0..WRITE_ATTEMPTS {
            let expect = match self.store.get(key).await? {
                None => Expect::Absent,
                Some(current) => {
                    if let Ok(stored) = entry::decode(key, &current.value) {
                        if stored.token > token {
                            return Err(ClusterError::Superseded {
                                key: key.clone(),
                                ours: token,
                                found: stored.token,
                            });
                        }
                    }
                    Expect::Version(current.version)
                }
            };
            match self.store.put(key, bytes.clone(), expect).await {
                Ok(version) => {
                    self.seen = Some(version);
                    info!(key = %key, version, routers = table.config.http.routers.len(), "cluster: routing table published");
                    return Ok(Some(table));
                }
                Err(e) if e.is_conflict() => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last
            .map(ClusterError::from)
            .unwrap_or_else(|| ClusterError::Encode {
                key: key.clone(),
                reason: "no write attempted".into(),
            }))
    }

    fn set_error(&self, e: &dyn std::fmt::Display) {
        let text = e.to_string();
        self.status.send_modify(|s| s.last_error = Some(text));
    }

    fn publish_status(&self) {
        let role = self.node.role();
        let table = self.node.remote().cloned();
        self.status.send_if_modified(|s| {
            let before = s.clone();
            s.role = role;
            s.set_table(table.as_ref());
            *s != before
        });
    }
}

/// The next update from the local provider; pending forever without one.
async fn recv(rx: &mut Option<mpsc::Receiver<ProviderUpdate>>) -> Option<ProviderUpdate> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next change of the table: `Some(())`, or `None` when the watch ended;
/// pending forever without a watch.
async fn next_event(watch: &mut Option<WatchStream>) -> Option<()> {
    match watch {
        Some(w) => w.recv().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

/// Polls an optional future; pending forever without one.
async fn poll<T>(fut: &mut Option<Pin<Box<dyn Future<Output = T> + Send>>>) -> T {
    match fut {
        Some(f) => f.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
