//! Metrics read from other parts of wharf when scraped: certificate expiry, server
//! health and the ACME loop's totals. Nothing here runs on the request path.

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use wharf_certstore::acme::AcmeCounters;
use wharf_certstore::CertResolver;

use crate::server::State;

/// `traefik_tls_certs_not_after{cn,serial,sans}`: expiry of every served certificate.
#[derive(Debug)]
pub struct CertsCollector(pub Arc<CertResolver>);

impl Collector for CertsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(
            "traefik_tls_certs_not_after",
            "Certificate expiration timestamp",
            None,
            MetricType::Gauge,
        )?;
        for key in self.0.served() {
            let Some(leaf) = key.cert.first() else {
                continue;
            };
            let Ok(facts) = wharf_certstore::pem::describe(leaf) else {
                continue;
            };
            let sans = facts.sans.join(",");
            let labels = [
                ("cn", facts.common_name.as_str()),
                ("serial", facts.serial.as_str()),
                ("sans", sans.as_str()),
            ];
            ConstGauge::new(facts.not_after as f64).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// `traefik_service_server_up{service,url}`: 1 for a server its health check
/// considers up, 0 otherwise.
#[derive(Debug)]
pub struct ServersCollector(pub Weak<State>);

impl Collector for ServersCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(state) = self.0.upgrade() else {
            return Ok(());
        };
        let table = state.table.load();
        let mut metric = encoder.encode_descriptor(
            "traefik_service_server_up",
            "service server is up, described by gauge value of 0 or 1",
            None,
            MetricType::Gauge,
        )?;
        for (name, service) in &table.info.services {
            let (Some(lb), Some(cfg)) = (&service.lb, &service.config.load_balancer) else {
                continue;
            };
            for (server, upstream) in cfg.servers.iter().zip(lb.balancer().upstreams()) {
                let up = i64::from(upstream.health.is_healthy());
                let labels = [("service", name.as_str()), ("url", server.url.as_str())];
                ConstGauge::new(up).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// wharf's certificate metrics: orders, issued certificates, renewals, failures and
/// store errors of this instance's ACME loop.
#[derive(Debug)]
pub struct AcmeCollector(pub Arc<AcmeCounters>);

impl Collector for AcmeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = self.0.snapshot();
        let counters = [
            (
                "wharf_certificate_orders",
                "Certificate orders placed by this instance (new certificates and renewals)",
                c.orders,
            ),
            (
                "wharf_certificates_issued",
                "Certificates this instance obtained and stored",
                c.issued,
            ),
            (
                "wharf_certificate_renewals",
                "Orders that replaced an existing certificate",
                c.renewals,
            ),
            (
                "wharf_certificate_failures",
                "Certificate orders that failed",
                c.failures,
            ),
            (
                "wharf_store_errors",
                "Reads, writes and watches of the certificate store that failed",
                c.store_errors,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}
