//! Traefik v3 matchers: one argument each (two for `Header*`, one or two for
//! `Query*`), literal paths, unanchored Go regexps.

use super::matcher::{self, Matcher};
use super::names::{self, Dialect};
use super::parser::{self, Arg, Call};
use super::query::{QueryMatcher, QueryValue};
use super::template::{self, Kind};
use super::{Expr, RuleError};

/// Compiles v3 matcher calls.
pub(super) struct Builder;

impl parser::Builder for Builder {
    fn build(&self, call: &Call<'_>) -> Result<Expr, RuleError> {
        let name = names::resolve(call.name, call.name_col, Dialect::V3)?;
        let arity: &[usize] = match name {
            "Header" | "HeaderRegexp" => &[2],
            "Query" | "QueryRegexp" => &[1, 2],
            _ => &[1],
        };
        check_arity(name, call, arity)?;
        if let Some(empty) = call.args.iter().find(|a| a.value.is_empty()) {
            return Err(RuleError::new(
                empty.col,
                format!("empty argument to `{name}`"),
            ));
        }
        let a = &call.args[0];
        let b = call.args.get(1);
        let m = match name {
            "Host" => matcher::host(&a.value, a.col, true)?,
            "HostRegexp" => {
                reject_v2_template(name, a, Kind::Host)?;
                if !a.value.is_ascii() {
                    return Err(RuleError::new(
                        a.col,
                        "non-ASCII characters are not allowed in HostRegexp; use the punycode form (xn--...)",
                    ));
                }
                Matcher::HostRegex(matcher::regex(name, &a.value, a.col, true)?)
            }
            "Path" => matcher::path(&a.value, a.col, false)?,
            "PathPrefix" => matcher::path(&a.value, a.col, true)?,
            "PathRegexp" => {
                reject_v2_template(name, a, Kind::Path)?;
                Matcher::PathRegex(matcher::regex(name, &a.value, a.col, false)?)
            }
            "Method" => matcher::method(&a.value),
            "Header" => matcher::header(&a.value, a.col, &second(b)?.value)?,
            "HeaderRegexp" => {
                let re = second(b)?;
                matcher::header_regex(&a.value, a.col, &re.value, re.col)?
            }
            "Query" => Matcher::Query(QueryMatcher::any_occurrence(
                &a.value,
                QueryValue::Exact(b.map(|v| v.value.clone()).unwrap_or_default()),
            )),
            "QueryRegexp" => {
                let value = match b {
                    None => QueryValue::Exact(String::new()),
                    Some(re) => QueryValue::Regex(
                        super::goregex::compile_bytes(&re.value).map_err(|e| {
                            RuleError::new(re.col, format!("invalid regexp `{}`: {e}", re.value))
                        })?,
                    ),
                };
                Matcher::Query(QueryMatcher::any_occurrence(&a.value, value))
            }
            _ => matcher::client_ip(&a.value, a.col)?,
        };
        Ok(Expr::Match(m))
    }
}

fn second(b: Option<&Arg>) -> Result<&Arg, RuleError> {
    // Arity was checked before; this only guards against a logic error.
    b.ok_or_else(|| RuleError::new(1, "missing second argument"))
}

/// Checks the number of arguments against what Traefik v3 accepts.
fn check_arity(name: &str, call: &Call<'_>, allowed: &[usize]) -> Result<(), RuleError> {
    let n = call.args.len();
    if allowed.contains(&n) {
        return Ok(());
    }
    let expected = match allowed {
        [1] => "exactly one argument".to_string(),
        [2] => "exactly two arguments (name and value)".to_string(),
        _ => "one or two arguments (key, and optionally value)".to_string(),
    };
    let max = allowed.iter().copied().max().unwrap_or(1);
    let col = call.args.get(max).map_or(call.name_col, |a| a.col);
    let hint = if n > max && max == 1 {
        format!(
            "; v3 matchers take a single value, combine several with `||`: {name}(`a`) || {name}(`b`) \
             (or set `ruleSyntax: v2`)"
        )
    } else {
        String::new()
    };
    Err(RuleError::new(
        col,
        format!("`{name}` takes {expected}, got {n}{hint}"),
    ))
}

/// The v2 -> v3 trap: a `{name:regexp}` placeholder is a literal in a v3 regexp
/// and would silently never match, so it is refused with a rewrite suggestion.
fn reject_v2_template(name: &str, arg: &Arg, kind: Kind) -> Result<(), RuleError> {
    let Some(placeholder) = template::v2_placeholder(&arg.value) else {
        return Ok(());
    };
    let suggestion = template::plain_regex_hint(&arg.value, kind)
        .map(|re| format!(" (e.g. {name}(`{re}`))"))
        .unwrap_or_default();
    Err(RuleError::new(
        arg.col,
        format!(
            "{name}(`{}`) uses the Traefik v2 placeholder `{placeholder}`, which v3 reads as a literal \
             regexp that never matches; write a plain Go regexp{suggestion} or set `ruleSyntax: v2` on the router",
            arg.value
        ),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::dynamic::RuleSyntax::V3;
    use crate::rules::testutil::*;

    #[test]
    fn host_and_case_variants() {
        let r = req("example.com", "/");
        for rule in [
            "Host(`example.com`)",
            "host(`EXAMPLE.COM`)",
            "HOST(\"example.com.\")",
            "Host(`*`)",
        ] {
            assert!(m(rule, V3, &r), "{rule}");
        }
        assert!(!m("Host(`example.org`)", V3, &r));
        assert!(m("Host(`*.example.com`)", V3, &req("a.example.com", "/")));
        assert!(!m(
            "Host(`*.example.com`)",
            V3,
            &req("a.b.example.com", "/")
        ));
    }

    #[test]
    fn host_regexp_unanchored_case_insensitive() {
        assert!(m(
            "HostRegexp(`^[a-z]+\\.example\\.com$`)",
            V3,
            &req("api.example.com", "/")
        ));
        assert!(m("HostRegexp(`example`)", V3, &req("www.example.com", "/")));
        assert!(m("HostRegexp(`^API\\.`)", V3, &req("api.example.com", "/")));
        assert!(!m(
            "HostRegexp(`^[a-z]+\\.com$`)",
            V3,
            &req("a.example.com", "/")
        ));
        assert!(m("Hostregexp(`.+`)", V3, &req("x", "/")));
    }

    #[test]
    fn paths_literal_prefix_and_regexp() {
        let r = req("h", "/css");
        assert!(m("Path(`/css`)", V3, &r));
        assert!(!m("Path(`/css`)", V3, &req("h", "/css/")));
        assert!(m("PathPrefix(`/api`)", V3, &req("h", "/apiv2")));
        assert!(!m("PathPrefix(`/api`)", V3, &req("h", "/ap")));
        assert!(!m("Path(`/{id}`)", V3, &req("h", "/42")));
        assert!(m("PathRegexp(`^/(css|js)`)", V3, &req("h", "/js/main.js")));
        assert!(m(
            "PathRegexp(`\\.(jpe?g|png)$`)",
            V3,
            &req("h", "/a/b.png")
        ));
        assert!(!m("PathRegexp(`^/(css|js)`)", V3, &req("h", "/CSS")));
    }

    #[test]
    fn method_header_query_client_ip() {
        assert!(m("Method(`get`)", V3, &req("h", "/")));
        assert!(!m("Method(`POST`)", V3, &req("h", "/")));
        let r = req("h", "/?q=traefik&mobile").header("X-Forwarded-Proto", "https");
        assert!(m("Header(`x-forwarded-proto`, `https`)", V3, &r));
        assert!(!m("Header(`X-Forwarded-Proto`, `http`)", V3, &r));
        assert!(m("HeaderRegexp(`X-Forwarded-Proto`, `^https?$`)", V3, &r));
        assert!(m("Query(`q`, `traefik`)", V3, &r));
        assert!(!m("Query(`q`, `nginx`)", V3, &r));
        assert!(m("Query(`mobile`)", V3, &r));
        assert!(!m("Query(`q`)", V3, &r));
        assert!(m("QueryRegexp(`q`, `^tr`)", V3, &r));
        assert!(m("QueryRegexp(`mobile`)", V3, &r));
        let r = req("h", "/").ip("10.1.2.3");
        assert!(m("ClientIP(`10.0.0.0/8`)", V3, &r));
        assert!(m("ClientIP(`10.1.2.3`)", V3, &r));
        assert!(!m("ClientIP(`192.168.0.0/16`)", V3, &r));
    }

    #[test]
    fn operators_and_precedence() {
        let r = req("a.com", "/x");
        assert!(m("Host(`b.com`) || Host(`a.com`) && Path(`/x`)", V3, &r));
        assert!(!m("(Host(`b.com`) || Host(`a.com`)) && Path(`/y`)", V3, &r));
        assert!(m("Host(`a.com`) && !Path(`/y`)", V3, &r));
        assert!(!m("!Host(`a.com`) || Path(`/y`)", V3, &r));
        assert!(m("!(Host(`b.com`) || Path(`/y`))", V3, &r));
        assert!(m("Host(`a.com`) && Path(`/y`) || Method(`GET`)", V3, &r));
    }

    #[test]
    fn arity_errors() {
        let e = err("Host(`a.com`, `b.com`)", V3);
        assert_eq!(e.position, 15);
        assert!(
            e.message.contains("exactly one") && e.message.contains("||"),
            "{}",
            e.message
        );
        let e = err("Host()", V3);
        assert_eq!(e.position, 1);
        assert!(e.message.contains("got 0"));
        let e = err("Header(`X-A`)", V3);
        assert!(e.message.contains("exactly two"), "{}", e.message);
        let e = err("Query(`a`, `b`, `c`)", V3);
        assert_eq!(e.position, 17);
        assert!(e.message.contains("one or two"));
    }

    #[test]
    fn invalid_values() {
        assert_eq!(err("Host(``)", V3).message, "empty argument to `Host`");
        assert_eq!(err("Query(`q`, ``)", V3).position, 12);
        assert!(err("Path(`css`)", V3)
            .message
            .contains("must start with `/`"));
        let e = err("PathRegexp(`/(css`)", V3);
        assert_eq!(e.position, 12);
        assert!(e.message.contains("invalid regexp") && e.message.contains("unclosed group"));
        assert!(err("HostRegexp(`🦭.com`)", V3)
            .message
            .contains("non-ASCII"));
        assert!(err("ClientIP(`1`)", V3)
            .message
            .contains("invalid ClientIP"));
        assert!(err("ClientIP(`10.0.0.0/40`)", V3)
            .message
            .contains("prefix length"));
        assert!(err("Header(`a b`, `x`)", V3)
            .message
            .contains("invalid header name"));
        assert!(err("QueryRegexp(`q`, `(`)", V3)
            .message
            .contains("invalid regexp"));
    }

    #[test]
    fn v2_placeholders_are_refused_with_a_rewrite() {
        let e = err("HostRegexp(`{host:.+}`)", V3);
        assert_eq!(e.position, 12);
        assert!(
            e.message.contains("v2 placeholder `{host:.+}`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("ruleSyntax: v2"), "{}", e.message);
        assert!(e.message.contains("HostRegexp(`^.+$`)"), "{}", e.message);
        let e = err(
            "Host(`a.com`) && HostRegexp(`{sub:[a-z]+}.example.com`)",
            V3,
        );
        assert_eq!(e.position, 29);
        assert!(
            e.message.contains("^[a-z]+\\.example\\.com$"),
            "{}",
            e.message
        );
        let e = err("PathRegexp(\"/{path:(css|js)}\")", V3);
        assert!(e.message.contains("v2 placeholder"), "{}", e.message);
        // A Go repetition is not a placeholder.
        assert!(m("HostRegexp(`^a{2}\\.com$`)", V3, &req("aa.com", "/")));
    }

    #[test]
    fn double_quoted_go_strings_and_name_variants() {
        let r = req("api.example.com", "/v1/x").header("X-Env", "a\"b");
        assert!(m(r#"HostRegexp("^[a-z]+\\.example\\.com$")"#, V3, &r));
        assert!(m(r#"PATHPREFIX("/v1") && Pathprefix("/v\x31")"#, V3, &r));
        assert!(m(r#"header("X-Env", "a\"b") && METHOD(`GET`)"#, V3, &r));
        assert!(err("pathPrefix(`/v1`)", V3)
            .message
            .contains("write `PathPrefix`"));
    }

    #[test]
    fn v2_only_names_rejected() {
        let e = err("Host(`a.com`) && Headers(`X`, `y`)", V3);
        assert_eq!(e.position, 18);
        assert!(e.message.contains("v2 syntax"));
        assert!(err("HostHeader(`a.com`)", V3).message.contains("v2 syntax"));
    }
}
