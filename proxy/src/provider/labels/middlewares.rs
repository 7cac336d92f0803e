//! HTTP middlewares from labels (`traefik.http.middlewares.<name>.<type>.<option>`):
//! the type and its top-level options are checked against Traefik's catalogue and
//! spelled as Traefik spells them; values are kept as strings for the route table to
//! read, as with every other provider.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::dynamic::Middleware;
use crate::config::tree::{nearest, Tree};

use super::decode::{replace_segment, tree_error, unknown_key, Origins};
use super::{IssueKind, Issues};

/// Traefik v3's HTTP middleware types and their top-level options. `None`: any
/// option is accepted (plugins).
const CATALOGUE: &[(&str, Option<&[&str]>)] = &[
    ("addPrefix", Some(&["prefix"])),
    (
        "basicAuth",
        Some(&["users", "usersFile", "realm", "removeHeader", "headerField"]),
    ),
    (
        "buffering",
        Some(&[
            "maxRequestBodyBytes",
            "memRequestBodyBytes",
            "maxResponseBodyBytes",
            "memResponseBodyBytes",
            "retryExpression",
        ]),
    ),
    ("chain", Some(&["middlewares"])),
    (
        "circuitBreaker",
        Some(&[
            "expression",
            "checkPeriod",
            "fallbackDuration",
            "recoveryDuration",
            "responseCode",
        ]),
    ),
    (
        "compress",
        Some(&[
            "excludedContentTypes",
            "includedContentTypes",
            "minResponseBodyBytes",
            "defaultEncoding",
            "encodings",
        ]),
    ),
    ("contentType", Some(&["autoDetect"])),
    (
        "digestAuth",
        Some(&["users", "usersFile", "realm", "removeHeader", "headerField"]),
    ),
    (
        "errors",
        Some(&["status", "service", "query", "statusRewrites"]),
    ),
    (
        "forwardAuth",
        Some(&[
            "address",
            "tls",
            "trustForwardHeader",
            "authResponseHeaders",
            "authResponseHeadersRegex",
            "authRequestHeaders",
            "addAuthCookiesToResponse",
            "headerField",
            "forwardBody",
            "maxBodySize",
            "preserveLocationHeader",
            "preserveRequestMethod",
            "maxResponseBodySize",
        ]),
    ),
    ("grpcWeb", Some(&["allowOrigins"])),
    (
        "headers",
        Some(&[
            "customRequestHeaders",
            "customResponseHeaders",
            "accessControlAllowCredentials",
            "accessControlAllowHeaders",
            "accessControlAllowMethods",
            "accessControlAllowOriginList",
            "accessControlAllowOriginListRegex",
            "accessControlExposeHeaders",
            "accessControlMaxAge",
            "addVaryHeader",
            "allowedHosts",
            "hostsProxyHeaders",
            "sslRedirect",
            "sslTemporaryRedirect",
            "sslHost",
            "sslProxyHeaders",
            "sslForceHost",
            "stsSeconds",
            "stsIncludeSubdomains",
            "stsPreload",
            "forceSTSHeader",
            "frameDeny",
            "customFrameOptionsValue",
            "contentTypeNosniff",
            "browserXssFilter",
            "customBrowserXSSValue",
            "contentSecurityPolicy",
            "contentSecurityPolicyReportOnly",
            "publicKey",
            "referrerPolicy",
            "featurePolicy",
            "permissionsPolicy",
            "isDevelopment",
        ]),
    ),
    (
        "ipAllowList",
        Some(&["sourceRange", "ipStrategy", "rejectStatusCode"]),
    ),
    ("ipWhiteList", Some(&["sourceRange", "ipStrategy"])),
    ("inFlightReq", Some(&["amount", "sourceCriterion"])),
    ("passTLSClientCert", Some(&["pem", "info"])),
    ("plugin", None),
    (
        "rateLimit",
        Some(&["average", "period", "burst", "sourceCriterion", "redis"]),
    ),
    (
        "redirectRegex",
        Some(&["regex", "replacement", "permanent"]),
    ),
    ("redirectScheme", Some(&["scheme", "port", "permanent"])),
    ("replacePath", Some(&["path"])),
    ("replacePathRegex", Some(&["regex", "replacement"])),
    ("retry", Some(&["attempts", "initialInterval"])),
    ("stripPrefix", Some(&["prefixes", "forceSlash"])),
    ("stripPrefixRegex", Some(&["regex"])),
];

/// Decodes one middleware at `base` (`http.middlewares.<name>`).
pub(crate) fn decode(
    node: &Tree,
    base: &str,
    origins: &Origins,
    issues: &mut Issues,
) -> Option<Middleware> {
    let types: Vec<&str> = CATALOGUE.iter().map(|(t, _)| *t).collect();
    let Tree::Map(written) = node else {
        issues.error(
            origins.find(base),
            IssueKind::InvalidValue,
            "a middleware needs a type: `<name>.<type>.<option>=value`",
        );
        return None;
    };
    // `redirectRegex.permanent` and `redirectregex.regex` are the same type.
    let mut map: BTreeMap<String, Tree> = BTreeMap::new();
    for (key, value) in written {
        match map.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned() {
            Some(k) => map.entry(k).or_default().merge(value.clone()),
            None => {
                map.insert(key.clone(), value.clone());
            }
        }
    }
    if map.len() != 1 {
        let written: Vec<&str> = map.keys().map(String::as_str).collect();
        issues.error(
            origins.find(base),
            IssueKind::Conflict,
            format!(
                "a middleware has exactly one type, found {}",
                written.join(", ")
            ),
        );
        return None;
    }
    let (kind, options) = map.iter().next()?;
    let path = format!("{base}.{kind}");
    let Some((canonical, known)) = CATALOGUE.iter().find(|(t, _)| t.eq_ignore_ascii_case(kind))
    else {
        unknown_key(&path, kind, &types, origins, issues);
        return None;
    };
    let value = match options {
        // `compress=true`: the type with its defaults.
        node if node.is_enable() => Value::Object(Map::new()),
        Tree::Map(opts) => {
            let mut out = Map::new();
            let mut ok = true;
            for (opt, node) in opts {
                let name = match known {
                    None => opt.clone(),
                    Some(known) => match known.iter().find(|k| k.eq_ignore_ascii_case(opt)) {
                        Some(k) => k.to_string(),
                        None => {
                            let label = origins.find(&format!("{path}.{opt}"));
                            let near = nearest(opt, known.iter().copied());
                            let suggestion =
                                near.zip(label).map(|(n, l)| replace_segment(l, opt, n));
                            let hint = suggestion
                                .as_ref()
                                .map(|s| format!(" (did you mean `{s}`?)"))
                                .unwrap_or_default();
                            issues.error(
                                label,
                                IssueKind::UnknownKey { suggestion },
                                format!("unknown {canonical} option `{opt}`{hint}"),
                            );
                            ok = false;
                            continue;
                        }
                    },
                };
                match node.deserialize_into::<Value>() {
                    Ok(v) => {
                        out.insert(name, v);
                    }
                    Err(e) => {
                        tree_error(&format!("{path}.{opt}"), &e, origins, issues);
                        ok = false;
                    }
                }
            }
            if !ok {
                return None;
            }
            Value::Object(out)
        }
        other => {
            issues.error(
                origins.find(&path),
                IssueKind::InvalidValue,
                format!(
                    "expected `{canonical}.<option>`, found the value {:?}",
                    other.deserialize_into::<Value>().unwrap_or_default()
                ),
            );
            return None;
        }
    };
    let mut mw = Middleware::default();
    mw.0.insert(canonical.to_string(), value);
    Some(mw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_labels(pairs: &[(&str, &str)]) -> (Option<Middleware>, Issues) {
        let mut origins = Origins::default();
        for (k, _) in pairs {
            origins.add(
                &format!("http.middlewares.m.{k}"),
                &format!("traefik.http.middlewares.m.{k}"),
            );
        }
        let tree =
            Tree::from_flat(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        let mut issues = Issues::new("w");
        let mw = decode(&tree, "http.middlewares.m", &origins, &mut issues);
        (mw, issues)
    }

    #[test]
    fn canonical_type_and_option_names() {
        let (mw, _) = decode_labels(&[
            ("redirectscheme.scheme", "https"),
            ("redirectscheme.PERMANENT", "true"),
        ]);
        assert_eq!(
            serde_json::to_value(mw.unwrap()).unwrap(),
            json!({"redirectScheme": {"scheme": "https", "permanent": "true"}})
        );
        let (mw, _) = decode_labels(&[("headers.customrequestheaders.X-Script-Name", "/app")]);
        assert_eq!(
            serde_json::to_value(mw.unwrap()).unwrap(),
            json!({"headers": {"customRequestHeaders": {"X-Script-Name": "/app"}}})
        );
        let (mw, _) = decode_labels(&[("compress", "true")]);
        assert_eq!(
            serde_json::to_value(mw.unwrap()).unwrap(),
            json!({"compress": {}})
        );
    }

    #[test]
    fn unknown_types_and_options_suggest() {
        let (mw, mut issues) = decode_labels(&[("redirectschema.scheme", "https")]);
        assert!(mw.is_none());
        let e = issues.check().unwrap_err().remove(0);
        assert_eq!(
            e.kind,
            IssueKind::UnknownKey {
                suggestion: Some("traefik.http.middlewares.m.redirectScheme.scheme".into())
            }
        );
        let (mw, _) = decode_labels(&[
            ("redirectRegex.permanent", "true"),
            ("redirectregex.regex", "^a"),
            ("redirectregex.replacement", "b"),
        ]);
        assert_eq!(
            serde_json::to_value(mw.unwrap()).unwrap(),
            json!({"redirectRegex": {"permanent": "true", "regex": "^a", "replacement": "b"}})
        );
        let (_, mut issues) = decode_labels(&[("basicauth.user", "a:b")]);
        let e = issues.check().unwrap_err().remove(0);
        assert_eq!(
            e.label.as_deref(),
            Some("traefik.http.middlewares.m.basicauth.user")
        );
        assert!(
            e.message
                .contains("traefik.http.middlewares.m.basicauth.users"),
            "{e}"
        );
        let (_, mut issues) =
            decode_labels(&[("basicauth.users", "a"), ("stripprefix.prefixes", "/a")]);
        assert_eq!(issues.check().unwrap_err()[0].kind, IssueKind::Conflict);
    }
}
