//! What the compiled configuration looks like to an operator: every router, service
//! and middleware with its status and errors, in Traefik's API shape.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::dynamic::{Middleware, Router, Service};
use crate::forward::LbService;

/// Status of a router, service or middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Working.
    Enabled,
    /// Working, with something worth a look.
    Warning,
    /// Not serving because of an error.
    Disabled,
}

/// A router as the API shows it.
#[derive(Debug, Clone)]
pub struct RouterInfo {
    /// The provider it came from.
    pub provider: String,
    /// Its configuration, with references qualified.
    pub config: Router,
    /// Effective priority.
    pub priority: i64,
    /// Entrypoints it is attached to.
    pub using: Vec<String>,
    /// Status.
    pub status: Status,
    /// Errors, each naming the router and what is wrong.
    pub errors: Vec<String>,
}

/// A service as the API shows it.
#[derive(Clone)]
pub struct ServiceInfo {
    /// The provider it came from.
    pub provider: String,
    /// Its configuration.
    pub config: Service,
    /// Status.
    pub status: Status,
    /// Errors.
    pub errors: Vec<String>,
    /// Routers using it.
    pub used_by: Vec<String>,
    /// Its forwarder, for live server status.
    pub lb: Option<LbService>,
}

/// A middleware as the API shows it.
#[derive(Debug, Clone)]
pub struct MiddlewareInfo {
    /// The provider it came from.
    pub provider: String,
    /// Its configuration.
    pub config: Middleware,
    /// Status.
    pub status: Status,
    /// Errors.
    pub errors: Vec<String>,
    /// Routers using it.
    pub used_by: Vec<String>,
}

/// The runtime view of one compiled configuration.
#[derive(Clone, Default)]
pub struct RuntimeInfo {
    /// Routers by qualified name.
    pub routers: BTreeMap<String, RouterInfo>,
    /// Services by qualified name.
    pub services: BTreeMap<String, ServiceInfo>,
    /// Middlewares by qualified name.
    pub middlewares: BTreeMap<String, MiddlewareInfo>,
}

fn object(v: impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn prune(m: &mut Map<String, Value>) {
    m.retain(|_, v| {
        !(v.is_null()
            || v.as_array().is_some_and(Vec::is_empty)
            || v.as_object().is_some_and(Map::is_empty))
    });
}

fn finish(
    mut m: Map<String, Value>,
    name: &str,
    provider: &str,
    status: Status,
    errors: &[String],
) -> Value {
    prune(&mut m);
    m.insert("name".into(), name.into());
    m.insert("provider".into(), provider.into());
    m.insert(
        "status".into(),
        serde_json::to_value(status).unwrap_or(Value::Null),
    );
    if !errors.is_empty() {
        m.insert("error".into(), errors.into());
    }
    Value::Object(m)
}

impl RouterInfo {
    /// Traefik's JSON for this router.
    pub fn to_json(&self, name: &str) -> Value {
        let mut m = object(&self.config);
        m.insert("priority".into(), self.priority.into());
        m.insert("using".into(), self.using.clone().into());
        finish(m, name, &self.provider, self.status, &self.errors)
    }
}

impl ServiceInfo {
    /// Traefik's JSON for this service, with live server status.
    pub fn to_json(&self, name: &str) -> Value {
        let mut m = object(&self.config);
        let kind = if self.config.load_balancer.is_some() {
            "loadbalancer"
        } else if self.config.weighted.is_some() {
            "weighted"
        } else {
            "internal"
        };
        m.insert("type".into(), kind.into());
        m.insert("usedBy".into(), self.used_by.clone().into());
        if let Some(lb) = &self.lb {
            let status: Map<String, Value> = lb
                .balancer()
                .upstreams()
                .iter()
                .map(|u| {
                    (
                        u.url.to_string().trim_end_matches('/').to_string(),
                        u.health.status().into(),
                    )
                })
                .collect();
            m.insert("serverStatus".into(), Value::Object(status));
        }
        finish(m, name, &self.provider, self.status, &self.errors)
    }
}

impl MiddlewareInfo {
    /// Traefik's JSON for this middleware.
    pub fn to_json(&self, name: &str) -> Value {
        let mut m = object(&self.config);
        if let Some(kind) = self.config.0.keys().next() {
            m.insert("type".into(), kind.to_ascii_lowercase().into());
        }
        m.insert("usedBy".into(), self.used_by.clone().into());
        finish(m, name, &self.provider, self.status, &self.errors)
    }
}
