//! Traefik v2 matchers: several arguments OR'ed (pairs AND'ed for `Headers*`
//! and `Query`), gorilla/mux templates in `HostRegexp`, `Path` and `PathPrefix`.

use super::matcher::{self, Matcher};
use super::names::{self, Dialect};
use super::parser::{self, Call};
use super::query::{QueryMatcher, QueryValue};
use super::template::{self, Kind};
use super::{Expr, RuleError};

/// Compiles v2 matcher calls.
pub(super) struct Builder;

impl parser::Builder for Builder {
    fn build(&self, call: &Call<'_>) -> Result<Expr, RuleError> {
        let name = names::resolve(call.name, call.name_col, Dialect::V2)?;
        if call.args.is_empty() {
            return Err(RuleError::new(
                call.name_col,
                format!("`{name}` needs at least one argument"),
            ));
        }
        if let Some(empty) = call.args.iter().find(|a| a.value.is_empty()) {
            return Err(RuleError::new(
                empty.col,
                format!("empty argument to `{name}`"),
            ));
        }
        let args: Vec<(&str, usize)> = call
            .args
            .iter()
            .map(|a| (a.value.as_str(), a.col))
            .collect();
        build(name, &args)
    }
}

/// Builds a v1/v2 matcher from its canonical name and its (value, column) arguments.
/// Shared with the v1 dialect, whose matchers have the same gorilla/mux semantics.
pub(super) fn build(name: &str, args: &[(&str, usize)]) -> Result<Expr, RuleError> {
    let each = |f: &dyn Fn(&str, usize) -> Result<Matcher, RuleError>| {
        args.iter()
            .map(|(v, c)| f(v, *c).map(Expr::Match))
            .collect::<Result<Vec<_>, _>>()
            .map(Expr::any)
    };
    match name {
        "Host" | "HostHeader" => each(&|v, c| matcher::host(v, c, false)),
        "HostRegexp" => each(&|v, c| {
            if !v.is_ascii() {
                return Err(RuleError::new(
                    c,
                    "non-ASCII characters are not allowed in HostRegexp; use the punycode form (xn--...)",
                ));
            }
            template::compile(v, Kind::Host)
                .map(Matcher::HostRegex)
                .map_err(|e| RuleError::new(c, format!("invalid HostRegexp template: {e}")))
        }),
        "Path" => each(&|v, c| path_template(v, c, false)),
        "PathPrefix" => each(&|v, c| path_template(v, c, true)),
        "Method" => each(&|v, _| Ok(matcher::method(v))),
        "ClientIP" => each(&|v, c| matcher::client_ip(v, c)),
        "Headers" | "HeadersRegexp" => {
            let chunks = args.chunks_exact(2);
            if let [(_, col)] = chunks.remainder() {
                return Err(RuleError::new(
                    *col,
                    format!("`{name}` takes name/value pairs; this name has no value"),
                ));
            }
            let pairs = chunks
                .map(|p| {
                    let ((k, kc), (v, vc)) = (p[0], p[1]);
                    if name == "Headers" {
                        matcher::header(k, kc, v)
                    } else {
                        matcher::header_regex(k, kc, v, vc)
                    }
                    .map(Expr::Match)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Expr::all(pairs))
        }
        _ => {
            // Query: `key=value` pairs (all must match), `key` alone for presence.
            let pairs = args
                .iter()
                .map(|(arg, col)| {
                    let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
                    let value = if value.is_empty() {
                        QueryValue::Any
                    } else if template::has_vars(value) {
                        QueryValue::Regex(
                            template::compile_bytes(value, Kind::QueryValue).map_err(|e| {
                                RuleError::new(*col, format!("invalid Query template: {e}"))
                            })?,
                        )
                    } else {
                        QueryValue::Exact(value.to_string())
                    };
                    Ok(Expr::Match(Matcher::Query(QueryMatcher::first_occurrence(
                        key, value,
                    ))))
                })
                .collect::<Result<Vec<_>, RuleError>>()?;
            Ok(Expr::all(pairs))
        }
    }
}

/// A gorilla `Path`/`PathPrefix` template; literal when it has no `{`.
pub(super) fn path_template(value: &str, col: usize, prefix: bool) -> Result<Matcher, RuleError> {
    let m = matcher::path(value, col, prefix)?;
    if !template::has_vars(value) {
        return Ok(m);
    }
    let kind = if prefix { Kind::PathPrefix } else { Kind::Path };
    template::compile(value, kind)
        .map(Matcher::PathRegex)
        .map_err(|e| RuleError::new(col, format!("invalid path template `{value}`: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::dynamic::RuleSyntax::V2;
    use crate::rules::testutil::*;

    #[test]
    fn hosts_multi_argument_and_host_header() {
        let r = req("b.com", "/");
        assert!(m("Host(`a.com`, `B.com`)", V2, &r));
        assert!(m("HostHeader(`b.com.`)", V2, &r));
        assert!(m("hostheader(`b.com`)", V2, &r));
        assert!(!m("Host(`a.com`, `c.com`)", V2, &r));
        assert!(err("Host(`*.b.com`)", V2).message.contains("v3"));
    }

    #[test]
    fn host_regexp_templates_anchored() {
        let rule = "HostRegexp(`{sub:[a-z]+}.example.com`, `example.org`)";
        assert!(m(rule, V2, &req("api.example.com", "/")));
        assert!(m(rule, V2, &req("example.org", "/")));
        assert!(!m(rule, V2, &req("a.b.example.com", "/")));
        assert!(!m(rule, V2, &req("xexample.org", "/")));
        assert!(m("HostRegexp(`{catchall:.+}`)", V2, &req("any.thing", "/")));
        assert!(m(
            "HostRegexp(`{sub}.Example.com`)",
            V2,
            &req("x.example.com", "/")
        ));
        assert!(!m(
            "HostRegexp(`{sub}.example.com`)",
            V2,
            &req("x.y.example.com", "/")
        ));
        assert!(err("HostRegexp(`{sub.example.com`)", V2)
            .message
            .contains("unbalanced"));
    }

    #[test]
    fn path_templates() {
        assert!(m("Path(`/users/{id:[0-9]+}`)", V2, &req("h", "/users/42")));
        assert!(!m(
            "Path(`/users/{id:[0-9]+}`)",
            V2,
            &req("h", "/users/42/x")
        ));
        assert!(m("Path(`/a`, `/users/{id}`)", V2, &req("h", "/users/bob")));
        assert!(m(
            "PathPrefix(`/api/{v:v[0-9]}/`)",
            V2,
            &req("h", "/api/v2/things")
        ));
        assert!(!m(
            "PathPrefix(`/api/{v:v[0-9]}/`)",
            V2,
            &req("h", "/x/api/v2/")
        ));
        assert!(m("PathPrefix(`/api`)", V2, &req("h", "/apiv2")));
        assert!(m("Path(`/a.b`)", V2, &req("h", "/a.b")));
        assert!(!m("Path(`/a.b`)", V2, &req("h", "/axb")));
        assert!(err("Path(`x`)", V2).message.contains("start with `/`"));
        assert!(err("Path(`/{id:(a|b)}`)", V2).message.contains("capturing"));
    }

    #[test]
    fn methods_headers_clientip() {
        let r = req("h", "/")
            .method("PUT")
            .header("X-A", "1")
            .header("X-B", "two")
            .ip("10.0.0.9");
        assert!(m("Method(`get`, `put`)", V2, &r));
        assert!(!m("Method(`GET`, `POST`)", V2, &r));
        assert!(m("Headers(`X-A`, `1`)", V2, &r));
        assert!(m("Headers(`X-A`, `1`, `X-B`, `two`)", V2, &r));
        assert!(!m("Headers(`X-A`, `1`, `X-B`, `three`)", V2, &r));
        assert!(m("HeadersRegexp(`X-B`, `^t`)", V2, &r));
        assert!(!m("HeadersRegexp(`X-B`, `^T`)", V2, &r));
        assert!(m("ClientIP(`192.168.0.0/16`, `10.0.0.0/8`)", V2, &r));
        assert!(!m("ClientIP(`192.168.0.0/16`)", V2, &r));
        let e = err("Headers(`X-A`, `1`, `X-B`)", V2);
        assert_eq!(e.position, 21);
        assert!(e.message.contains("pairs"));
    }

    #[test]
    fn query_pairs_templates_and_presence() {
        let r = req("h", "/?a=1&b=xyz&c");
        assert!(m("Query(`a=1`)", V2, &r));
        assert!(m("Query(`a=1`, `b=xyz`)", V2, &r));
        assert!(!m("Query(`a=1`, `b=no`)", V2, &r));
        assert!(m("Query(`c`)", V2, &r));
        assert!(m("Query(`b=`)", V2, &r));
        assert!(!m("Query(`d`)", V2, &r));
        assert!(m("Query(`a={n:[0-9]+}`)", V2, &r));
        assert!(!m("Query(`b={n:[0-9]+}`)", V2, &r));
        assert!(!m("Query(`a=1`)", V2, &req("h", "/?a=2&a=1")));
    }

    #[test]
    fn argument_errors() {
        let e = err("Host()", V2);
        assert_eq!(e.position, 1);
        assert!(e.message.contains("at least one"));
        assert_eq!(err("Host(`a.com`, ``)", V2).position, 15);
    }

    #[test]
    fn v3_only_names_rejected() {
        let e = err("PathPrefix(`/a`) || PathRegexp(`^/b`)", V2);
        assert_eq!(e.position, 21);
        assert!(e.message.contains("only exists in Traefik v3"));
        assert!(err("Header(`a`, `b`)", V2).message.contains("Headers"));
        assert!(err("QueryRegexp(`a`, `b`)", V2).message.contains("v3"));
    }

    #[test]
    fn operators_work_as_in_v3() {
        let r = req("a.com", "/x");
        assert!(m(
            "Host(`a.com`) && (Path(`/y`) || PathPrefix(`/x`))",
            V2,
            &r
        ));
        assert!(!m("Host(`a.com`) && !PathPrefix(`/x`)", V2, &r));
    }
}
