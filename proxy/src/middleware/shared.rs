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
        .map_err(|source| MiddlewareError::Options { kind, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dynamic::Middleware;
    use crate::middleware::{build_with, Built};
    use serde_json::json;

    struct Ctx(Clients);

    impl BuildContext for Ctx {
        fn service(&mut self, name: &str) -> Result<HttpService, String> {
            if name != "pages" {
                return Err(format!("unexpected service {name}"));
            }
            Ok(HttpService::new(tower::service_fn(
                |_req: http::Request<crate::body::Body>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(crate::body::empty()))
                },
            )))
        }

        fn clients(&self) -> &Clients {
            &self.0
        }
    }

    /// Docker labels give every option as a string, with keys in any case.
    #[test]
    fn label_strings_build_every_type() {
        let cases = [
            ("compress", json!({"compress": "true"})),
            (
                "compress",
                json!({"Compress": {"minresponsebodybytes": "2048", "encodings": "gzip,br",
                    "excludedcontenttypes": "text/event-stream"}}),
            ),
            (
                "retry",
                json!({"retry": {"attempts": "4", "initialinterval": "50ms"}}),
            ),
            (
                "circuitBreaker",
                json!({"circuitbreaker": {"expression": "ResponseCodeRatio(500, 600, 0, 600) > 0.25",
                    "checkperiod": "1s", "fallbackduration": "5s", "responsecode": "429"}}),
            ),
            (
                "forwardAuth",
                json!({"forwardauth": {"address": "http://auth:4181/", "trustforwardheader": "true",
                    "authresponseheaders": "X-User,X-Email", "forwardbody": "false",
                    "maxbodysize": "1024", "headerfield": "X-User"}}),
            ),
            (
                "errors",
                json!({"errors": {"status": "500,501,503,505-599", "service": "pages",
                    "query": "/{status}.html", "statusrewrites": {"418": "404"}}}),
            ),
        ];
        let mut ctx = Ctx(Clients::new(Default::default()));
        for (kind, cfg) in cases {
            let m: Middleware = serde_json::from_value(cfg.clone()).unwrap();
            match build_with(&m, &mut ctx) {
                Ok(Built::Layer(l)) => assert_eq!(l.kind(), kind, "{cfg}"),
                other => panic!("{cfg}: {other:?}"),
            }
        }
        let path: Middleware =
            serde_json::from_value(json!({"addPrefix": {"prefix": "/a"}})).unwrap();
        assert!(matches!(build_with(&path, &mut ctx), Ok(Built::Path(_))));
    }
}
