//! `metrics` and `accessLog`: Traefik's observability settings, with Traefik's key
//! names and defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::duration::GoDuration;

/// Traefik's default latency buckets, in seconds.
pub const DEFAULT_BUCKETS: [f64; 4] = [0.1, 0.3, 1.2, 5.0];

/// `metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Metrics {
    /// Prometheus exporter settings; absent means off.
    pub prometheus: Option<Prometheus>,
    /// Also count requests to wharf's own services (`api@internal`, `ping@internal`).
    pub add_internals: bool,
    /// Datadog exporter (accepted for compatibility, not exported).
    pub datadog: Option<serde_json::Value>,
    /// StatsD exporter (accepted for compatibility, not exported).
    pub statsd: Option<serde_json::Value>,
    /// InfluxDB 2 exporter (accepted for compatibility, not exported).
    #[serde(rename = "influxDB2")]
    pub influx_db2: Option<serde_json::Value>,
    /// OpenTelemetry exporter (accepted for compatibility, not exported).
    pub otlp: Option<serde_json::Value>,
}

/// `metrics.prometheus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Prometheus {
    /// Upper bounds of the request duration histograms, in seconds.
    pub buckets: Vec<f64>,
    /// Per-entrypoint request metrics (default true).
    pub add_entry_points_labels: bool,
    /// Per-router request metrics (default false, as in Traefik).
    pub add_routers_labels: bool,
    /// Per-service request metrics (default true).
    pub add_services_labels: bool,
    /// Entrypoint serving `/metrics` (default `traefik`).
    pub entry_point: String,
    /// Do not serve `/metrics` on `entryPoint`; a router targets `prometheus@internal`.
    pub manual_routing: bool,
    /// Extra labels from request headers (accepted for compatibility, not exported).
    pub header_labels: BTreeMap<String, String>,
}

impl Default for Prometheus {
    fn default() -> Self {
        Self {
            buckets: DEFAULT_BUCKETS.to_vec(),
            add_entry_points_labels: true,
            add_routers_labels: false,
            add_services_labels: true,
            entry_point: super::ADMIN_ENTRYPOINT.into(),
            manual_routing: false,
            header_labels: BTreeMap::new(),
        }
    }
}

/// `accessLog`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLog {
    /// File path; stdout when absent or empty. Reopened on SIGUSR1.
    pub file_path: Option<String>,
    /// `common` (default), `genericCLF` or `json`.
    pub format: Option<String>,
    /// Which requests are logged.
    pub filters: Option<AccessLogFilters>,
    /// Which fields and headers are logged.
    pub fields: Option<AccessLogFields>,
    /// Lines held in memory on their way to the file; beyond that, lines are dropped
    /// (and counted) rather than slowing requests down.
    pub buffering_size: Option<u64>,
    /// Also log requests to wharf's own services (accepted; wharf logs them all).
    pub add_internals: bool,
}

/// `accessLog.filters`: a request is logged when it passes any filter that is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogFilters {
    /// Status codes and ranges (`"404"`, `"500-599"`).
    pub status_codes: Vec<String>,
    /// Requests that were retried.
    pub retry_attempts: bool,
    /// Requests that took longer than this.
    pub min_duration: Option<GoDuration>,
}

/// `accessLog.fields`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogFields {
    /// `keep` (default) or `drop`: what happens to fields not listed in `names`.
    pub default_mode: Option<String>,
    /// Per-field mode (`ClientHost: drop`).
    pub names: BTreeMap<String, String>,
    /// Which request and response headers are logged.
    pub headers: Option<AccessLogHeaders>,
}

/// `accessLog.fields.headers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogHeaders {
    /// `drop` (default), `keep` or `redact`: headers not listed in `names`.
    pub default_mode: Option<String>,
    /// Per-header mode (`User-Agent: keep`, `Authorization: redact`).
    pub names: BTreeMap<String, String>,
}
