//! Setting up metrics and the access log from the static configuration.

use std::sync::Arc;

use super::RunError;
use crate::accesslog::AccessLogger;
use crate::config::static_config::{StaticConfig, ADMIN_ENTRYPOINT};
use crate::metrics::Metrics;
use crate::server::observe::EntryObserver;

/// Metrics and access log of the process; either may be off.
#[derive(Default)]
pub(super) struct Observability {
    pub metrics: Option<Arc<Metrics>>,
    pub log: Option<AccessLogger>,
}

impl Observability {
    /// Creates the registry when `metrics.prometheus` is set and starts the access
    /// log when `accessLog` is set; checks that the metrics entrypoint exists.
    pub fn start(cfg: &StaticConfig) -> Result<Self, RunError> {
        if let Some(m) = &cfg.metrics {
            let others = [
                ("datadog", m.datadog.is_some()),
                ("statsd", m.statsd.is_some()),
                ("influxDB2", m.influx_db2.is_some()),
                ("otlp", m.otlp.is_some()),
            ];
            for (name, set) in others {
                if set {
                    tracing::warn!(
                        "metrics.{name} is not supported; only metrics.prometheus is exported"
                    );
                }
            }
            if m.prometheus
                .as_ref()
                .is_some_and(|p| !p.header_labels.is_empty())
            {
                tracing::warn!("metrics.prometheus.headerLabels is not supported and is ignored");
            }
        }
        let add_internals = cfg.metrics.as_ref().is_some_and(|m| m.add_internals);
        let metrics = cfg
            .metrics
            .as_ref()
            .and_then(|m| m.prometheus.as_ref())
            .map(|p| Arc::new(Metrics::new(p, add_internals)));
        if let Some(m) = &metrics {
            if m.automatic_routing() && !cfg.entry_points.contains_key(m.entry_point()) {
                return Err(RunError::Observability(format!(
                    "metrics.prometheus.entryPoint {:?} is not an entrypoint",
                    m.entry_point()
                )));
            }
        }
        let log = match &cfg.access_log {
            Some(a) => {
                Some(AccessLogger::start(a).map_err(|e| RunError::Observability(e.to_string()))?)
            }
            None => None,
        };
        if let (Some(m), Some(l)) = (&metrics, &log) {
            m.register_counter(
                "wharf_accesslog_dropped_lines",
                "Access log lines dropped because the writer fell behind",
                l.dropped(),
            );
        }
        Ok(Self { metrics, log })
    }

    /// What the traffic entrypoint `name` records; `None` when nothing is on.
    pub fn entrypoint(&self, name: &str) -> Option<Arc<EntryObserver>> {
        if name == ADMIN_ENTRYPOINT || (self.metrics.is_none() && self.log.is_none()) {
            return None;
        }
        let m = self.metrics.as_ref();
        Some(Arc::new(EntryObserver {
            metrics: self.metrics.clone(),
            scope: m.and_then(|m| m.entrypoint(name)),
            open_connections: m.map(|m| m.open_connections(name)),
            serve_metrics: m.is_some_and(|m| m.automatic_routing() && m.entry_point() == name),
            log: self.log.clone(),
        }))
    }

    /// Whether `/metrics` is served on the admin entrypoint.
    pub fn metrics_on_admin(&self) -> Option<Arc<Metrics>> {
        self.metrics
            .clone()
            .filter(|m| m.automatic_routing() && m.entry_point() == ADMIN_ENTRYPOINT)
    }
}
