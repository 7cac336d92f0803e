//! HTTP middlewares as tower layers, built from Traefik's middleware configuration.
//! A middleware that fails to build disables only the routers that use it.

pub mod allow_list;
pub mod basic_auth;
pub mod buffering;
pub mod circuit_breaker;
pub mod compress;
pub mod errors;
pub mod forward_auth;
pub mod handler;
pub mod headers;
pub mod htpasswd;
pub mod in_flight;
pub mod path;
pub mod rate_limit;
pub mod redirect;
pub mod retry;
mod shared;
pub mod source;

use std::any::TypeId;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

use http::{Request, Response};
use regex::Regex;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use tower::util::BoxCloneSyncService;

use crate::body::Body;
use crate::config::dynamic::Middleware;
use crate::config::tree::{Shape, Tree, TreeError};
pub use handler::{ClientInfo, HttpLayer};
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
    /// Any other middleware, as a layer over the type-erased service.
    Http(HttpLayer),
    /// A middleware that makes a new service for each router it wraps.
    Layer(SharedLayer),
}

impl Built {
    /// Wraps `inner` with this middleware (chains are expanded by the caller).
    pub fn wrap(&self, inner: HttpService) -> HttpService {
        match self {
            Built::Path(layer) => HttpService::new(tower::Layer::layer(layer, inner)),
            Built::Chain(_) => inner,
            Built::Http(layer) => layer.wrap(inner),
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
        /// The parse error, naming the option.
        #[source]
        source: TreeError,
    },
    /// A regular expression does not compile.
    #[error("{kind}: invalid regexp {regex:?}: {source}")]
    Regex {
        /// Middleware type.
        kind: &'static str,
        /// The expression.
        regex: String,
        /// The compile error.
        #[source]
        source: regex::Error,
    },
    /// An option has a value the middleware cannot use.
    #[error("{kind}.{option}: {message}")]
    Invalid {
        /// Middleware type.
        kind: &'static str,
        /// The option.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A file an option names cannot be read.
    #[error("{kind}.{option}: cannot read {path:?}: {source}")]
    File {
        /// Middleware type.
        kind: &'static str,
        /// The option.
        option: &'static str,
        /// The file.
        path: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// An option is unusable; the message names the middleware type and the option.
    #[error("{0}")]
    Message(String),
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

impl MiddlewareError {
    /// An [`MiddlewareError::Invalid`] error.
    pub fn invalid(kind: &'static str, option: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            kind,
            option,
            message: message.into(),
        }
    }
}

/// Traefik's middleware types that wharf does not implement yet.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "digestauth",
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
            PathRewrite::StripPrefix(o.prefixes)
        }
        "stripprefixregex" => {
            let o: Regexes = parse("stripPrefixRegex", opts)?;
            PathRewrite::StripPrefixRegex(
                o.regex
                    .iter()
                    .map(|r| regex("stripPrefixRegex", r))
                    .collect::<Result<_, _>>()?,
            )
        }
        "addprefix" => {
            let o: AddPrefix = parse("addPrefix", opts)?;
            if o.prefix.is_empty() {
                return Err(MiddlewareError::invalid("addPrefix", "prefix", "is empty"));
            }
            PathRewrite::AddPrefix(o.prefix)
        }
        "replacepath" => {
            let o: ReplacePath = parse("replacePath", opts)?;
            PathRewrite::ReplacePath(o.path)
        }
        "replacepathregex" => {
            let o: ReplacePathRegex = parse("replacePathRegex", opts)?;
            PathRewrite::ReplacePathRegex(regex("replacePathRegex", &o.regex)?, o.replacement)
        }
        "chain" => {
            let o: Chain = parse("chain", opts)?;
            return Ok(Built::Chain(o.middlewares));
        }
        "redirectscheme" => return redirect::scheme(opts),
        "redirectregex" => return redirect::regex(opts),
        "basicauth" => return basic_auth::build(opts),
        "headers" => return headers::build(opts),
        "ipallowlist" => return allow_list::build("ipAllowList", opts),
        "ipwhitelist" => return allow_list::build("ipWhiteList", opts),
        "ratelimit" => return rate_limit::build(opts),
        "inflightreq" => return in_flight::build(opts),
        "buffering" => return buffering::build(opts),
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
        M::StripPrefixRegex(r) => PathRewrite::StripPrefixRegex(
            r.iter()
                .map(|r| regex("stripPrefixRegex", r))
                .collect::<Result<_, _>>()?,
        ),
        M::AddPrefix(p) => PathRewrite::AddPrefix(p.clone()),
        M::ReplacePath(p) => PathRewrite::ReplacePath(p.clone()),
        M::ReplacePathRegex {
            regex: r,
            replacement,
        } => PathRewrite::ReplacePathRegex(regex("replacePathRegex", r)?, replacement.clone()),
    };
    Ok(Built::Path(PathRewriteLayer(Arc::new(rewrite))))
}

/// Compiles a regular expression of middleware `kind`.
pub fn regex(kind: &'static str, r: &str) -> Result<Regex, MiddlewareError> {
    Regex::new(r).map_err(|source| MiddlewareError::Regex {
        kind,
        regex: r.to_string(),
        source,
    })
}

/// Parses a middleware's options through the lenient configuration tree: keys
/// match case-insensitively, strings (from labels) coerce to numbers, booleans and
/// comma-separated lists, and unknown keys are refused with the nearest known name.
/// Each options type's shape is probed once per process.
pub fn parse<T: DeserializeOwned + 'static>(
    kind: &'static str,
    v: &Value,
) -> Result<T, MiddlewareError> {
    static SHAPES: OnceLock<Mutex<HashMap<TypeId, Arc<Shape>>>> = OnceLock::new();
    let shape = {
        let mut shapes = match SHAPES.get_or_init(Default::default).lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        shapes
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(Shape::of::<T>()))
            .clone()
    };
    Tree::from_json(v)
        .deserialize_with(&shape)
        .map_err(|source| MiddlewareError::Options { kind, source })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Prefixes {
    prefixes: Vec<String>,
    #[serde(default, rename = "forceSlash")]
    _force_slash: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Regexes {
    regex: Vec<String>,
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
    middlewares: Vec<String>,
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
            build(&mw(json!({"digestAuth": {"users": []}}))),
            Err(MiddlewareError::Unsupported(_))
        ));
        assert!(matches!(
            build(&mw(json!({"stripPrefixRegex": {"regex": ["("]}}))),
            Err(MiddlewareError::Regex { .. })
        ));
        assert!(matches!(
            build(&mw(json!({"addPrefix": {"prefix": ""}}))),
            Err(MiddlewareError::Invalid { .. })
        ));
        let e = build(&mw(json!({"addPrefix": {"prefx": "/a"}}))).unwrap_err();
        assert!(matches!(e, MiddlewareError::Options { .. }));
        assert_eq!(
            e.to_string(),
            "invalid addPrefix options: `prefx`: unknown key `prefx` (did you mean `prefix`?)"
        );
    }

    #[test]
    fn label_strings_coerce_and_errors_name_the_option() {
        let built = build(&mw(json!({"rateLimit": {"average": "100", "burst": "50"}})));
        assert!(matches!(built, Ok(Built::Http(_))), "{built:?}");
        let built = build(&mw(
            json!({"redirectScheme": {"scheme": "https", "permanent": "true"}}),
        ));
        assert!(matches!(built, Ok(Built::Http(_))), "{built:?}");
        let built = build(&mw(
            json!({"ipAllowList": {"sourceRange": "10.0.0.0/8,192.168.0.0/16"}}),
        ));
        assert!(matches!(built, Ok(Built::Http(_))), "{built:?}");
        let e = build(&mw(json!({"rateLimit": {"average": "lots"}}))).unwrap_err();
        assert!(e.to_string().contains("rateLimit"), "{e}");
        assert!(e.to_string().contains("`average`"), "{e}");
        let e = build(&mw(json!({"redirectScheme": {"permanent": "maybe"}}))).unwrap_err();
        assert!(e.to_string().contains("redirectScheme"), "{e}");
        assert!(e.to_string().contains("`permanent`"), "{e}");
    }
}
