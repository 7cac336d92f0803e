//! The election state machine, without I/O: which configuration this node serves and
//! which it publishes, given its role and what it has seen.
//!
//! - A **publisher** holds the store lock: it serves its own provider's
//!   configuration and writes it to the store whenever it changes.
//! - A **candidate** may take the lock (it sees the whole cluster) but does not hold
//!   it; a **follower** never takes it. Both serve the table read from the store, so
//!   a manager that loses the lock keeps routing exactly as the others do. Until a
//!   table has been read, a candidate serves its own view (a lone manager does not
//!   start empty while the election settles).
//! - A table in the store with a larger fencing token than ours means a newer
//!   publisher exists: the publisher steps down at once.
//! - When the store cannot be read the last good table stays.

use serde::Serialize;

use super::entry::Table;
use crate::config::DynamicConfig;

/// The part a node plays right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Never publishes; serves the stored table.
    Follower,
    /// May publish, does not hold the lock; serves the stored table.
    Candidate,
    /// Holds the lock; serves and publishes its own provider's configuration.
    Publisher,
}

/// What the driver must do after an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Hand this configuration to the aggregator.
    Apply(DynamicConfig),
    /// Write this configuration to the store (publisher only).
    Publish(DynamicConfig),
    /// Release the lock: a newer publisher has written the table.
    StepDown,
}

/// One node's election state.
#[derive(Debug, Clone)]
pub struct Node {
    role: Role,
    /// Whether this node may contend (it can see the whole cluster).
    eligible: bool,
    /// The fencing token of the held lock (publisher only).
    token: Option<u64>,
    /// The latest configuration of this node's own provider.
    local: Option<DynamicConfig>,
    /// The last good table read from the store.
    remote: Option<Table>,
    /// What was last handed to the aggregator.
    applied: Option<DynamicConfig>,
    /// What this publisher last wrote successfully.
    written: Option<DynamicConfig>,
}

impl Node {
    /// A node that may contend for the lock (`eligible`) or not.
    pub fn new(eligible: bool) -> Self {
        Self {
            role: if eligible {
                Role::Candidate
            } else {
                Role::Follower
            },
            eligible,
            token: None,
            local: None,
            remote: None,
            applied: None,
            written: None,
        }
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The fencing token of the held lock, when publishing.
    pub fn token(&self) -> Option<u64> {
        self.token
    }

    /// The last good table read from the store.
    pub fn remote(&self) -> Option<&Table> {
        self.remote.as_ref()
    }

    /// Records whether the node may contend (re-checked before each attempt in
    /// `auto` mode). A publisher keeps its lock until it loses it.
    pub fn set_eligible(&mut self, eligible: bool) {
        self.eligible = eligible;
        if self.role != Role::Publisher {
            self.role = if eligible {
                Role::Candidate
            } else {
                Role::Follower
            };
        }
    }

    /// This node's own provider produced a configuration.
    pub fn on_local(&mut self, config: DynamicConfig) -> Vec<Action> {
        self.local = Some(config);
        self.actions()
    }

    /// A table was read from the store.
    pub fn on_remote(&mut self, table: Table) -> Vec<Action> {
        let newer = matches!(self.token, Some(ours) if table.token > ours);
        self.remote = Some(table);
        if self.role == Role::Publisher && newer {
            let mut actions = vec![Action::StepDown];
            self.step_down();
            actions.extend(self.actions());
            return actions;
        }
        self.actions()
    }

    /// The lock was acquired with fencing token `token`.
    pub fn on_acquired(&mut self, token: u64) -> Vec<Action> {
        self.role = Role::Publisher;
        self.token = Some(token);
        self.written = None;
        self.actions()
    }

    /// The lock was lost (or released): back to serving the stored table.
    pub fn on_lost(&mut self) -> Vec<Action> {
        self.step_down();
        self.actions()
    }

    /// `config` was written to the store.
    pub fn on_written(&mut self, config: DynamicConfig) {
        if self.role == Role::Publisher {
            self.written = Some(config);
        }
    }

    /// The configuration a publisher still has to write, if any (for retries).
    pub fn pending(&self) -> Option<&DynamicConfig> {
        match (&self.role, &self.local) {
            (Role::Publisher, Some(local)) if self.written.as_ref() != Some(local) => Some(local),
            _ => None,
        }
    }

    fn step_down(&mut self) {
        self.token = None;
        self.written = None;
        self.role = if self.eligible {
            Role::Candidate
        } else {
            Role::Follower
        };
    }

    /// What this node should serve now.
    fn serving(&self) -> Option<&DynamicConfig> {
        match self.role {
            Role::Publisher => self.local.as_ref(),
            Role::Candidate => self
                .remote
                .as_ref()
                .map(|t| &t.config)
                .or(self.local.as_ref()),
            Role::Follower => self.remote.as_ref().map(|t| &t.config),
        }
    }

    /// The actions that bring the aggregator and the store in line with the state.
    fn actions(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(serving) = self.serving() {
            if self.applied.as_ref() != Some(serving) {
                let serving = serving.clone();
                self.applied = Some(serving.clone());
                actions.push(Action::Apply(serving));
            }
        }
        if let Some(pending) = self.pending() {
            actions.push(Action::Publish(pending.clone()));
        }
        actions
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::provider::cluster::entry::{Publisher, FORMAT};

    fn config(host: &str) -> DynamicConfig {
        serde_yaml_ng::from_str(&format!(
            "http:\n  routers:\n    r:\n      rule: Host(`{host}`)\n      service: s\n"
        ))
        .unwrap()
    }

    fn table(host: &str, token: u64) -> Table {
        Table {
            format: FORMAT,
            provider: "swarm".into(),
            publisher: Publisher {
                node: format!("node-{token}"),
                instance: "x".into(),
            },
            token,
            published_at: String::new(),
            config: config(host),
        }
    }

    #[test]
    fn a_follower_serves_the_store_and_never_its_own_view() {
        let mut n = Node::new(false);
        assert_eq!(n.role(), Role::Follower);
        assert_eq!(n.on_local(config("local")), vec![]);
        assert_eq!(n.on_remote(table("a", 1)), vec![Action::Apply(config("a"))]);
        assert_eq!(
            n.on_remote(table("a", 1)),
            vec![],
            "unchanged: nothing to do"
        );
        assert_eq!(n.on_remote(table("b", 2)), vec![Action::Apply(config("b"))]);
    }

    #[test]
    fn a_candidate_serves_its_own_view_until_a_table_arrives() {
        let mut n = Node::new(true);
        assert_eq!(n.role(), Role::Candidate);
        assert_eq!(
            n.on_local(config("local")),
            vec![Action::Apply(config("local"))]
        );
        assert_eq!(n.on_remote(table("a", 1)), vec![Action::Apply(config("a"))]);
        assert_eq!(n.on_local(config("local2")), vec![], "the store wins");
    }

    #[test]
    fn a_publisher_serves_and_writes_its_own_view() {
        let mut n = Node::new(true);
        n.on_remote(table("old", 3));
        n.on_local(config("mine"));
        assert_eq!(
            n.on_acquired(4),
            vec![
                Action::Apply(config("mine")),
                Action::Publish(config("mine"))
            ]
        );
        assert_eq!(n.role(), Role::Publisher);
        assert_eq!(n.token(), Some(4));
        assert_eq!(n.pending(), Some(&config("mine")));
        n.on_written(config("mine"));
        assert_eq!(n.pending(), None);
        // Its own write comes back through the watch: nothing to do.
        assert_eq!(n.on_remote(table("mine", 4)), vec![]);
        assert_eq!(
            n.on_local(config("new")),
            vec![Action::Apply(config("new")), Action::Publish(config("new"))]
        );
        // A failed write stays pending for the retry.
        assert_eq!(n.pending(), Some(&config("new")));
    }

    #[test]
    fn a_publisher_without_its_own_view_yet_keeps_serving_and_writes_nothing() {
        let mut n = Node::new(true);
        n.on_remote(table("a", 1));
        assert_eq!(n.on_acquired(2), vec![]);
        assert_eq!(n.pending(), None);
        assert_eq!(
            n.on_local(config("b")),
            vec![Action::Apply(config("b")), Action::Publish(config("b"))]
        );
    }

    #[test]
    fn losing_the_lock_goes_back_to_the_stored_table() {
        let mut n = Node::new(true);
        n.on_local(config("mine"));
        n.on_acquired(1);
        n.on_written(config("mine"));
        n.on_remote(table("mine", 1));
        assert_eq!(n.on_lost(), vec![], "the stored table is what it served");
        assert_eq!(n.role(), Role::Candidate);
        assert_eq!(n.token(), None);
        assert_eq!(n.pending(), None, "no writes after losing the lock");
        // Later local changes are not served or written: the next publisher's are.
        assert_eq!(n.on_local(config("mine2")), vec![]);
        assert_eq!(
            n.on_remote(table("theirs", 2)),
            vec![Action::Apply(config("theirs"))]
        );
    }

    #[test]
    fn a_newer_publisher_in_the_store_makes_this_one_step_down() {
        let mut n = Node::new(true);
        n.on_local(config("mine"));
        n.on_acquired(5);
        assert_eq!(
            n.on_remote(table("theirs", 6)),
            vec![Action::StepDown, Action::Apply(config("theirs"))]
        );
        assert_eq!(n.role(), Role::Candidate);
        assert_eq!(n.pending(), None);
    }

    #[test]
    fn eligibility_changes_the_role_but_not_a_held_lock() {
        let mut n = Node::new(false);
        n.set_eligible(true);
        assert_eq!(n.role(), Role::Candidate);
        n.on_acquired(1);
        n.set_eligible(false);
        assert_eq!(n.role(), Role::Publisher);
        n.on_lost();
        assert_eq!(n.role(), Role::Follower);
    }
}
