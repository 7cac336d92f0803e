//! Traefik v1 frontend and backend features, as the v2 middlewares Traefik's
//! migration guide maps them to. Each is named `<router>-<feature>` and applied in
//! this order: `ipallowlist`, `redirect`, `headers`, `auth`, `digestauth`,
//! `forwardauth`, `passtlscert`, `errors-<name>`, `ratelimit`, `maxconn`,
//! `circuitbreaker`, `buffering`. Option values are typed (booleans, numbers, lists).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::config::dynamic::Middleware;

use super::keys::V1Entry;
use super::v1::Props;
use super::{normalize, IssueKind, Issues};

/// How a v1 header option is written.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Str,
    List,
    /// `Name:value||Name2:value2`.
    Map,
}

/// v1 `traefik.frontend.headers.*` (lowercase) → v2 `headers` option.
const HEADERS: &[(&str, &str, Kind)] = &[
    ("allowedhosts", "allowedHosts", Kind::List),
    ("hostsproxyheaders", "hostsProxyHeaders", Kind::List),
    ("customrequestheaders", "customRequestHeaders", Kind::Map),
    ("customresponseheaders", "customResponseHeaders", Kind::Map),
    ("sslredirect", "sslRedirect", Kind::Bool),
    ("ssltemporaryredirect", "sslTemporaryRedirect", Kind::Bool),
    ("sslhost", "sslHost", Kind::Str),
    ("sslforcehost", "sslForceHost", Kind::Bool),
    ("sslproxyheaders", "sslProxyHeaders", Kind::Map),
    ("stsseconds", "stsSeconds", Kind::Int),
    ("stsincludesubdomains", "stsIncludeSubdomains", Kind::Bool),
    ("stspreload", "stsPreload", Kind::Bool),
    ("forcestsheader", "forceSTSHeader", Kind::Bool),
    ("framedeny", "frameDeny", Kind::Bool),
    (
        "customframeoptionsvalue",
        "customFrameOptionsValue",
        Kind::Str,
    ),
    ("contenttypenosniff", "contentTypeNosniff", Kind::Bool),
    ("browserxssfilter", "browserXssFilter", Kind::Bool),
    ("custombrowserxssvalue", "customBrowserXSSValue", Kind::Str),
    ("contentsecuritypolicy", "contentSecurityPolicy", Kind::Str),
    ("publickey", "publicKey", Kind::Str),
    ("referrerpolicy", "referrerPolicy", Kind::Str),
    ("isdevelopment", "isDevelopment", Kind::Bool),
];

/// The middlewares a segment's properties describe, in application order.
pub(crate) fn build(p: &Props<'_>, router: &str, issues: &mut Issues) -> Vec<(String, Middleware)> {
    let mut out = Vec::new();
    let mut add = |suffix: &str, kind: &str, options: Map<String, Value>| {
        let mut mw = Middleware::default();
        mw.0.insert(kind.to_string(), Value::Object(options));
        out.push((format!("{router}-{suffix}"), mw));
    };
    if let Some(o) = allow_list(p, issues) {
        add("ipallowlist", "ipAllowList", o);
    }
    if let Some((kind, o)) = redirect(p, issues) {
        add("redirect", kind, o);
    }
    if let Some(o) = headers(p, issues) {
        add("headers", "headers", o);
    }
    let header_field = p.str("frontend.auth.headerfield");
    for (suffix, kind, prefix) in [
        ("auth", "basicAuth", "frontend.auth.basic."),
        ("digestauth", "digestAuth", "frontend.auth.digest."),
    ] {
        let mut users = p.list(&format!("{prefix}users"));
        if kind == "basicAuth" && users.is_empty() {
            users = p.list("frontend.auth.basic");
        }
        let file = p.str(&format!("{prefix}usersfile"));
        let remove = p.bool(&format!("{prefix}removeheader"), issues);
        if users.is_empty() && file.is_none() {
            continue;
        }
        let mut o = Map::new();
        o.insert("users".into(), json!(users));
        put(&mut o, "usersFile", file.map(|f| json!(f)));
        put(&mut o, "removeHeader", remove.map(|b| json!(b)));
        put(&mut o, "headerField", header_field.map(|f| json!(f)));
        add(suffix, kind, o);
    }
    if let Some(address) = p.str("frontend.auth.forward.address") {
        let mut o = Map::new();
        o.insert("address".into(), json!(address));
        put(
            &mut o,
            "trustForwardHeader",
            p.bool("frontend.auth.forward.trustforwardheader", issues)
                .map(|b| json!(b)),
        );
        let headers = p.list("frontend.auth.forward.authresponseheaders");
        put(
            &mut o,
            "authResponseHeaders",
            (!headers.is_empty()).then(|| json!(headers)),
        );
        let mut tls = Map::new();
        for (rest, e) in p.under("frontend.auth.forward.tls.") {
            let value = match rest.to_ascii_lowercase().as_str() {
                "ca" => ("ca", json!(e.value.trim())),
                "cert" => ("cert", json!(e.value.trim())),
                "key" => ("key", json!(e.value.trim())),
                "caoptional" => ("caOptional", json!(p.bool(&e.prop, issues))),
                "insecureskipverify" => ("insecureSkipVerify", json!(p.bool(&e.prop, issues))),
                _ => {
                    issues.warn(
                        Some(&e.key),
                        IssueKind::UnknownKey { suggestion: None },
                        "unknown forward-auth TLS option, ignored",
                    );
                    continue;
                }
            };
            tls.insert(value.0.into(), value.1);
        }
        put(
            &mut o,
            "tls",
            (!tls.is_empty()).then_some(Value::Object(tls)),
        );
        put(&mut o, "headerField", header_field.map(|f| json!(f)));
        add("forwardauth", "forwardAuth", o);
    }
    if p.bool("frontend.passtlscert", issues) == Some(true) {
        add(
            "passtlscert",
            "passTLSClientCert",
            json_map(json!({"pem": true})),
        );
    }
    for (name, o) in errors(p) {
        add(&format!("errors-{}", normalize(&name)), "errors", o);
    }
    if let Some(o) = rate_limit(p, issues) {
        add("ratelimit", "rateLimit", o);
    }
    if let Some(amount) = p.num::<i64>("backend.maxconn.amount", issues) {
        let mut o = json_map(json!({ "amount": amount }));
        put(
            &mut o,
            "sourceCriterion",
            p.str("backend.maxconn.extractorfunc").map(criterion),
        );
        add("maxconn", "inFlightReq", o);
    }
    if let Some(expression) = p.str("backend.circuitbreaker.expression") {
        add(
            "circuitbreaker",
            "circuitBreaker",
            json_map(json!({ "expression": expression })),
        );
    }
    let buffering = p.under("backend.buffering.");
    if !buffering.is_empty() {
        let mut o = Map::new();
        for (rest, e) in buffering {
            let value = e.value.trim();
            let v = value
                .parse::<i64>()
                .map_or_else(|_| json!(value), |n| json!(n));
            o.insert(rest.to_string(), v);
        }
        add("buffering", "buffering", o);
    }
    for (_, e) in p.under("frontend.passtlsclientcert.") {
        issues.warn(Some(&e.key), IssueKind::Unsupported, "passTLSClientCert details are not converted; use the v2 `passtlsclientcert` middleware");
    }
    out
}

fn put(o: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        o.insert(key.to_string(), v);
    }
}

fn json_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn allow_list(p: &Props<'_>, issues: &mut Issues) -> Option<Map<String, Value>> {
    let mut ranges = p.list("frontend.whitelist.sourcerange");
    if ranges.is_empty() {
        ranges = p.list("frontend.whitelistsourcerange");
    }
    let xff = p.bool("frontend.whitelist.usexforwardedfor", issues);
    if ranges.is_empty() {
        return None;
    }
    let mut o = json_map(json!({ "sourceRange": ranges }));
    if xff == Some(true) {
        if let Some(e) = p.entry("frontend.whitelist.usexforwardedfor") {
            issues.warn(
                Some(&e.key),
                IssueKind::Unsupported,
                "v1 accepted any address of X-Forwarded-For; approximated with `ipStrategy.depth=1` (the address added by the nearest proxy)",
            );
        }
        o.insert("ipStrategy".into(), json!({ "depth": 1 }));
    }
    Some(o)
}

fn redirect(p: &Props<'_>, issues: &mut Issues) -> Option<(&'static str, Map<String, Value>)> {
    let permanent = p
        .bool("frontend.redirect.permanent", issues)
        .unwrap_or(false);
    let regex = p.str("frontend.redirect.regex");
    let replacement = p.str("frontend.redirect.replacement");
    if let Some(ep) = p.str("frontend.redirect.entrypoint") {
        let scheme = if ep.eq_ignore_ascii_case("http") {
            "http"
        } else {
            "https"
        };
        return Some((
            "redirectScheme",
            json_map(json!({ "scheme": scheme, "permanent": permanent })),
        ));
    }
    match (regex, replacement) {
        (Some(regex), Some(replacement)) => Some((
            "redirectRegex",
            json_map(json!({ "regex": regex, "replacement": replacement, "permanent": permanent })),
        )),
        (None, None) => None,
        _ => {
            let e = p
                .entry("frontend.redirect.regex")
                .or_else(|| p.entry("frontend.redirect.replacement"));
            issues.error(
                e.map(|e| e.key.as_str()),
                IssueKind::InvalidValue,
                "`frontend.redirect.regex` and `frontend.redirect.replacement` go together",
            );
            None
        }
    }
}

fn headers(p: &Props<'_>, issues: &mut Issues) -> Option<Map<String, Value>> {
    let mut o = Map::new();
    for (rest, e) in p.under("frontend.headers.") {
        let lower = rest.to_ascii_lowercase();
        let Some((_, name, kind)) = HEADERS.iter().find(|(v1, _, _)| *v1 == lower) else {
            let near = crate::config::tree::nearest(&lower, HEADERS.iter().map(|(v1, _, _)| *v1));
            let base = e
                .key
                .get(..e.key.len().saturating_sub(rest.len()))
                .unwrap_or_default();
            let suggestion = near.map(|n| format!("{base}{n}"));
            let hint = suggestion
                .as_ref()
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            issues.warn(
                Some(&e.key),
                IssueKind::UnknownKey { suggestion },
                format!("unknown v1 header option, ignored{hint}"),
            );
            continue;
        };
        let value = e.value.trim();
        let v = match kind {
            Kind::Str => json!(value),
            Kind::List => json!(value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()),
            Kind::Map => json!(header_map(e, issues)),
            Kind::Bool => json!(p.bool(&e.prop, issues)),
            Kind::Int => json!(p.num::<i64>(&e.prop, issues)),
        };
        o.insert(name.to_string(), v);
    }
    (!o.is_empty()).then_some(o)
}

/// `Name:value||Name2:value2` as a map; an element without `:` is an error.
pub(crate) fn header_map(e: &V1Entry, issues: &mut Issues) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for part in e.value.split("||").map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once(':') {
            Some((k, v)) => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            None => issues.error(
                Some(&e.key),
                IssueKind::InvalidValue,
                format!("expected `Name:value||Name2:value2`, found {part:?}"),
            ),
        }
    }
    out
}

/// `frontend.errors.<name>.{status,backend,query}` → `errors` options by name.
fn errors(p: &Props<'_>) -> BTreeMap<String, Map<String, Value>> {
    let mut out: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (rest, e) in p.under("frontend.errors.") {
        let Some((name, opt)) = rest.rsplit_once('.') else {
            continue;
        };
        let o = out.entry(name.to_string()).or_default();
        let value = e.value.trim();
        match opt.to_ascii_lowercase().as_str() {
            "status" => o.insert(
                "status".into(),
                json!(value.split(',').map(str::trim).collect::<Vec<_>>()),
            ),
            "backend" => o.insert("service".into(), json!(value)),
            "query" => o.insert("query".into(), json!(value)),
            _ => None,
        };
    }
    out
}

/// `client.ip`, `request.host`, `request.header.<name>` → `sourceCriterion`.
fn criterion(extractor: &str) -> Value {
    match extractor.strip_prefix("request.header.") {
        Some(h) => json!({ "requestHeaderName": h }),
        None if extractor == "request.host" => json!({ "requestHost": true }),
        None => json!({ "ipStrategy": {} }),
    }
}

fn rate_limit(p: &Props<'_>, issues: &mut Issues) -> Option<Map<String, Value>> {
    let extractor = p.str("frontend.ratelimit.extractorfunc");
    let mut sets: BTreeMap<String, Vec<(String, &V1Entry)>> = BTreeMap::new();
    for (rest, e) in p.under("frontend.ratelimit.rateset.") {
        if let Some((name, opt)) = rest.rsplit_once('.') {
            sets.entry(name.to_string())
                .or_default()
                .push((opt.to_ascii_lowercase(), e));
        }
    }
    let (first, opts) = sets.iter().next()?;
    if sets.len() > 1 {
        issues.warn(
            opts.first().map(|(_, e)| e.key.as_str()),
            IssueKind::Unsupported,
            format!("several rate sets: only `{first}` is kept (a v2 rate limit has one rate)"),
        );
    }
    let mut o = Map::new();
    for (opt, e) in opts {
        let value = e.value.trim();
        match opt.as_str() {
            "period" => o.insert("period".into(), json!(value)),
            "average" | "burst" => o.insert(opt.clone(), json!(p.num::<i64>(&e.prop, issues))),
            _ => None,
        };
    }
    put(&mut o, "sourceCriterion", extractor.map(criterion));
    Some(o)
}
