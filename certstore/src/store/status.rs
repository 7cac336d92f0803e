//! A backend's connection health, for the admin API.

use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

/// How a remote store backend is doing, as `/api/certificates/store` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    /// The backend (`consul`).
    pub backend: &'static str,
    /// Where it lives (Consul's address and key prefix).
    pub address: String,
    /// Whether the last request reached the backend.
    pub connected: bool,
    /// The last failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it happened (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<String>,
    /// When a request last succeeded (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<String>,
}

/// Records the outcome of each request a backend makes; cheap, never held across
/// an await.
#[derive(Debug)]
pub(crate) struct HealthTracker {
    backend: &'static str,
    address: String,
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    connected: bool,
    last_error: Option<(String, SystemTime)>,
    last_success: Option<SystemTime>,
}

impl HealthTracker {
    /// A tracker for `backend` at `address`, not yet connected.
    pub(crate) fn new(backend: &'static str, address: String) -> Self {
        Self {
            backend,
            address,
            state: Mutex::new(HealthState::default()),
        }
    }

    /// A request reached the backend.
    pub(crate) fn success(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.connected && state.last_error.is_some() {
            tracing::info!(backend = self.backend, address = %self.address, "store reachable again");
        }
        state.connected = true;
        state.last_success = Some(SystemTime::now());
    }

    /// A request failed: `reachable` when the backend answered (with an error),
    /// `false` when it could not be reached or failed itself.
    pub(crate) fn failure(&self, error: &str, reachable: bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.connected && !reachable {
            tracing::warn!(backend = self.backend, address = %self.address, %error, "store unreachable");
        }
        state.connected = reachable;
        state.last_error = Some((error.to_string(), SystemTime::now()));
    }

    /// The current status.
    pub(crate) fn status(&self) -> StoreStatus {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let time = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
        StoreStatus {
            backend: self.backend,
            address: self.address.clone(),
            connected: state.connected,
            last_error: state.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_at: state.last_error.as_ref().map(|(_, t)| time(*t)),
            last_success_at: state.last_success.map(time),
        }
    }
}
