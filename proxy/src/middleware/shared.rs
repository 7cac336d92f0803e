//! What the middlewares built with [`super::build_with`] share: a layer that makes a
//! fresh service (with fresh state) for every router it wraps, the context that
//! resolves services and clients while the route table is compiled, and option parsing.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{HttpService, MiddlewareError};
use crate::config::tree::Tree;
use crate::forward::client::Clients;

/// A middleware ready to wrap any number of routers. Each [`SharedLayer::wrap`]
/// makes a new service, so state such as circuit-breaker statistics belongs to one
/// router (as in Traefik) and starts afresh when the route table is rebuilt.
#[derive(Clone)]
pub struct SharedLayer {
    kind: &'static str,
    make: Arc<dyn Fn(HttpService) -> HttpService + Send + Sync>,
}

impl SharedLayer {
    /// A layer of middleware type `kind` that wraps a service with `make`.
    pub fn new(
        kind: &'static str,
        make: impl Fn(HttpService) -> HttpService + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            make: Arc::new(make),
        }
    }

    /// The middleware type (`compress`, `retry`, ...).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Wraps `inner`.
    pub fn wrap(&self, inner: HttpService) -> HttpService {
        (self.make)(inner)
    }
}

impl fmt::Debug for SharedLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedLayer").field(&self.kind).finish()
    }
}

/// What building a middleware may need from the route table being compiled.
pub trait BuildContext {
    /// The handler of service `name`, built once per route table. An unqualified
    /// name belongs to the middleware's own provider; `name@provider` names another.
    fn service(&mut self, name: &str) -> Result<HttpService, String>;

    /// The upstream HTTP clients.
    fn clients(&self) -> &Clients;
}

/// Parses the options of middleware type `kind` leniently: keys in any case, and
/// strings (every Docker label value is one) coerced to numbers, booleans and lists.
pub(crate) fn options<T: DeserializeOwned>(
    kind: &'static str,
    value: &Value,
) -> Result<T, MiddlewareError> {
    Tree::from_json(value)
        .deserialize_into()
        .map_err(|source| MiddlewareError::Tree { kind, source })
}
