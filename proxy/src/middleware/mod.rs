//! HTTP middlewares as tower layers, built from Traefik's middleware configuration.
//! A middleware that fails to build disables only the routers that use it.

pub mod circuit_breaker;
pub mod compress;
pub mod errors;
pub mod forward_auth;
pub mod path;
pub mod retry;
mod shared;

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use tower::util::BoxCloneSyncService;

use crate::body::Body;
use crate::config::dynamic::Middleware;
use path::{PathRewrite, PathRewriteLayer};
pub use shared::{BuildContext, SharedLayer};

/// The type-erased service every router's chain is made of. Every service in a
/// chain is always ready (`poll_ready` returns `Ready` at once).
pub type HttpService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// A middleware ready to wrap a service.
#[derive(Debug, Clone)]
pub enum Built {
    /// A path rewrite.
    Path(PathRewriteLayer),
    /// A chain of other middlewares, by name, applied in order.
    Chain(Vec<String>),
    /// A middleware that makes a new service for each router it wraps.
    Layer(SharedLayer),
}

impl Built {
    /// Wraps `inner` with this middleware (chains are expanded by the caller).
    pub fn wrap(&self, inner: HttpService) -> HttpService {
        match self {
            Built::Path(layer) => HttpService::new(tower::Layer::layer(layer, inner)),
            Built::Chain(_) => inner,
            Built::Layer(layer) => layer.wrap(inner),
        }
    }
}

/// Why a middleware could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MiddlewareError {
    /// The middleware sets no type or several types.
    #[error("a middleware must set exactly one type, found {0}")]
    TypeCount(usize),
    /// The type is not one of Traefik's.
    #[error("unknown middleware type {0:?}")]
    Unknown(String),
    /// The type is Traefik's but wharf does not implement it yet.
    #[error("middleware type {0:?} is not supported yet")]
    Unsupported(String),
    /// The options do not parse.
    #[error("invalid {kind} options: {source}")]
    Options {
        /// Middleware type.
        kind: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A regular expression does not compile.
    #[error("invalid regexp {regex:?}: {source}")]
    Regex {
        /// The expression.
        regex: String,
        /// The compile error.
        #[source]
        source: regex::Error,
    },
    /// A required option is empty.
    #[error("{0}")]
    Invalid(String),
    /// The options do not parse (read through the lenient configuration tree).
    #[error("invalid {kind} options: {source}")]
    Tree {
        /// Middleware type.
        kind: &'static str,
        /// The parse error, naming the option.
        #[source]
        source: crate::config::tree::TreeError,
    },
    /// A service the middleware sends requests to cannot be used.
    #[error("{kind}: service {service:?}: {reason}")]
    Service {
        /// Middleware type.
        kind: &'static str,
        /// The service as configured.
        service: String,
        /// Why it cannot be used.
        reason: String,
    },
}

/// Traefik's middleware types that wharf does not implement yet.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "basicauth",
    "digestauth",
    "headers",
    "ipallowlist",
    "ipwhitelist",
    "ratelimit",
    "redirectregex",
    "redirectscheme",
    "inflightreq",
    "buffering",
    "contenttype",
    "grpcweb",
    "passtlsclientcert",
    "plugin",
];

/// Builds one middleware from its configuration.
pub fn build(cfg: &Middleware) -> Result<Built, MiddlewareError> {
    if cfg.0.len() != 1 {
        return Err(MiddlewareError::TypeCount(cfg.0.len()));
    }
    let Some((kind, opts)) = cfg.0.iter().next() else {
        return Err(MiddlewareError::TypeCount(0));
    };
    let rewrite = match kind.to_ascii_lowercase().as_str() {
        "stripprefix" => {
            let o: Prefixes = parse("stripPrefix", opts)?;
            PathRewrite::StripPrefix(o.prefixes.0)
        }
        "stripprefixregex" => {
            let o: Regexes = parse("stripPrefixRegex", opts)?;
            PathRewrite::StripPrefixRegex(
                o.regex
                    .0
                    .iter()
                    .map(|r| regex(r))
                    .collect::<Result<_, _>>()?,
            )
        }
        "addprefix" => {
            let o: AddPrefix = parse("addPrefix", opts)?;
            if o.prefix.is_empty() {
                return Err(MiddlewareError::Invalid("addPrefix.prefix is empty".into()));
            }
            PathRewrite::AddPrefix(o.prefix)
        }
        "replacepath" => {
            let o: ReplacePath = parse("replacePath", opts)?;
            PathRewrite::ReplacePath(o.path)
        }
        "replacepathregex" => {
            let o: ReplacePathRegex = parse("replacePathRegex", opts)?;
            PathRewrite::ReplacePathRegex(regex(&o.regex)?, o.replacement)
        }
        "chain" => {
            let o: Chain = parse("chain", opts)?;
            return Ok(Built::Chain(o.middlewares.0));
        }
        other if KNOWN_UNSUPPORTED.contains(&other) => {
            return Err(MiddlewareError::Unsupported(kind.clone()))
        }
        _ => return Err(MiddlewareError::Unknown(kind.clone())),
    };
    Ok(Built::Path(PathRewriteLayer(Arc::new(rewrite))))
}

/// Builds one middleware, resolving through `ctx` what some types need beyond their
/// options (the service of `errors`, the upstream clients of `forwardAuth`). Types
/// that need nothing more are built by [`build`].
pub fn build_with(cfg: &Middleware, ctx: &mut dyn BuildContext) -> Result<Built, MiddlewareError> {
    let Some((kind, opts)) = cfg.0.iter().next().filter(|_| cfg.0.len() == 1) else {
        return build(cfg);
    };
    let layer = match kind.to_ascii_lowercase().as_str() {
        "compress" => compress::layer(opts)?,
        "retry" => retry::layer(opts)?,
        "circuitbreaker" => circuit_breaker::layer(opts)?,
        "forwardauth" => forward_auth::layer(opts, ctx.clients())?,
        "errors" => errors::layer(opts, ctx)?,
        _ => return build(cfg),
    };
    Ok(Built::Layer(layer))
}

/// Builds the middleware for a path modifier carried by a Traefik v1 rule.
pub fn from_v1_modifier(m: &crate::rules::PathModifier) -> Result<Built, MiddlewareError> {
    use crate::rules::PathModifier as M;
    let rewrite = match m {
        M::StripPrefix(p) => PathRewrite::StripPrefix(p.clone()),
        M::StripPrefixRegex(r) => {
            PathRewrite::StripPrefixRegex(r.iter().map(|r| regex(r)).collect::<Result<_, _>>()?)
        }
        M::AddPrefix(p) => PathRewrite::AddPrefix(p.clone()),
        M::ReplacePath(p) => PathRewrite::ReplacePath(p.clone()),
        M::ReplacePathRegex {
            regex: r,
            replacement,
        } => PathRewrite::ReplacePathRegex(regex(r)?, replacement.clone()),
    };
    Ok(Built::Path(PathRewriteLayer(Arc::new(rewrite))))
}

fn regex(r: &str) -> Result<Regex, MiddlewareError> {
    Regex::new(r).map_err(|source| MiddlewareError::Regex {
        regex: r.to_string(),
        source,
    })
}

fn parse<T: for<'de> Deserialize<'de>>(
    kind: &'static str,
    v: &Value,
) -> Result<T, MiddlewareError> {
    serde_json::from_value(lowercase_keys(v))
        .map_err(|source| MiddlewareError::Options { kind, source })
}

/// Option keys are case-insensitive, as in Traefik.
fn lowercase_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), lowercase_keys(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A list written as a YAML/TOML list or as a comma-separated string (labels).
#[derive(Debug, Default)]
struct List(Vec<String>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(List(match Raw::deserialize(d)? {
            Raw::One(s) => s
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            Raw::Many(v) => v,
        }))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Prefixes {
    prefixes: List,
    #[serde(default, rename = "forceslash")]
    _force_slash: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Regexes {
    regex: List,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddPrefix {
    prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplacePath {
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplacePathRegex {
    regex: String,
    replacement: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Chain {
    middlewares: List,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mw(v: Value) -> Middleware {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn builds_path_middlewares_with_any_key_case() {
        assert!(matches!(
            build(&mw(json!({"stripPrefix": {"prefixes": ["/a"]}}))),
            Ok(Built::Path(_))
        ));
        assert!(matches!(
            build(&mw(json!({"stripprefix": {"prefixes": "/a,/b"}}))),
            Ok(Built::Path(_))
        ));
        assert!(matches!(
            build(&mw(
                json!({"ReplacePathRegex": {"Regex": "^/a", "replacement": "/b"}})
            )),
            Ok(Built::Path(_))
        ));
        match build(&mw(json!({"chain": {"middlewares": "a,b@file"}}))) {
            Ok(Built::Chain(names)) => assert_eq!(names, vec!["a", "b@file"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reports_bad_middlewares() {
        assert!(matches!(
            build(&mw(json!({}))),
            Err(MiddlewareError::TypeCount(0))
        ));
        assert!(matches!(
            build(&mw(json!({"nope": {}}))),
            Err(MiddlewareError::Unknown(_))
        ));
        assert!(matches!(
            build(&mw(json!({"basicAuth": {"users": []}}))),
            Err(MiddlewareError::Unsupported(_))
        ));
        assert!(matches!(
            build(&mw(json!({"stripPrefixRegex": {"regex": ["("]}}))),
            Err(MiddlewareError::Regex { .. })
        ));
        assert!(matches!(
            build(&mw(json!({"addPrefix": {"prefix": ""}}))),
            Err(MiddlewareError::Invalid(_))
        ));
        assert!(matches!(
            build(&mw(json!({"addPrefix": {"prefx": "/a"}}))),
            Err(MiddlewareError::Options { .. })
        ));
    }
}
