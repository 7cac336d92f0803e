//! What `/api/cluster` shows: this node's role, the current publisher and when the
//! table was last received.

use serde::Serialize;

use super::election::Role;
use super::entry::Table;
use super::settings::Settings;

/// The cluster provider's state for the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// `cluster.mode`.
    pub mode: &'static str,
    /// This node's role now.
    pub role: Role,
    /// This node's name.
    pub node: String,
    /// This process's identifier.
    pub instance: String,
    /// The shared provider.
    pub provider: &'static str,
    /// The table's store key.
    pub key: String,
    /// Who published the table this node last read (or wrote).
    pub publisher: Option<PublisherStatus>,
    /// When this node last read a new table from the store (RFC 3339).
    pub last_received: Option<String>,
    /// When this node last wrote the table (RFC 3339).
    pub last_published: Option<String>,
    /// The latest problem (unreadable store, malformed table, failed write), if the
    /// last attempt failed.
    pub last_error: Option<String>,
}

/// The publisher of a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublisherStatus {
    /// Its node name.
    pub node: String,
    /// Its process identifier.
    pub instance: String,
    /// Its lock's fencing token.
    pub token: u64,
    /// When it wrote the table.
    pub published_at: String,
}

impl ClusterStatus {
    /// The state before anything happened.
    pub fn new(settings: &Settings, role: Role) -> Self {
        Self {
            mode: settings.mode.as_str(),
            role,
            node: settings.node.clone(),
            instance: settings.instance.clone(),
            provider: settings.provider,
            key: settings.key.clone(),
            publisher: None,
            last_received: None,
            last_published: None,
            last_error: None,
        }
    }

    /// Records the table now in force.
    pub fn set_table(&mut self, table: Option<&Table>) {
        self.publisher = table.map(|t| PublisherStatus {
            node: t.publisher.node.clone(),
            instance: t.publisher.instance.clone(),
            token: t.token,
            published_at: t.published_at.clone(),
        });
    }
}

/// Now, in RFC 3339 with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
