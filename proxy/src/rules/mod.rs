//! The routing rule engine: parses Traefik router rules (v1, v2 and v3 dialects)
//! into an immutable [`Rule`] that matches requests without allocating.
//!
//! Parsing follows Traefik's own parsers: `pkg/rules` (a Go expression of matcher
//! calls) for v2/v3, and the v1.7 `Matcher:a,b;Matcher2:c` grammar for v1.

mod goregex;
mod ip;
mod lexer;
mod matcher;
mod names;
mod parser;
mod query;
mod template;
#[cfg(test)]
mod testutil;
mod v1;
mod v2;
mod v3;

use std::net::IpAddr;

use crate::config::dynamic::RuleSyntax;
use matcher::{HostPattern, Matcher};

/// What a rule can look at; built once per request by the caller. `host` is already normalized:
/// lowercase ASCII, port removed, trailing dot removed.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Request host, normalized (lowercase, no port, no trailing dot).
    pub host: &'a str,
    /// Request path, as routed (starts with `/`).
    pub path: &'a str,
    /// Raw (still percent-encoded) query string, without the `?`.
    pub query: Option<&'a str>,
    /// Request method.
    pub method: &'a http::Method,
    /// Request headers.
    pub headers: &'a http::HeaderMap,
    /// Address of the directly connected client (never taken from headers).
    pub client_ip: IpAddr,
}

/// A compiled routing rule: immutable, cheap to evaluate, shareable across threads.
#[derive(Debug, Clone)]
pub struct Rule {
    expr: Expr,
}

/// The result of parsing a rule: the matcher and the path rewrites a v1 rule carries.
#[derive(Debug, Clone)]
pub struct ParsedRule {
    /// The compiled matcher.
    pub rule: Rule,
    /// Path rewrites requested by the rule (v1 only; always empty for v2/v3).
    pub modifiers: Vec<PathModifier>,
}

/// Path rewrites that Traefik v1 rules carry (PathPrefixStrip etc.); always empty for v2/v3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathModifier {
    /// Strip the first of these literal prefixes that the path starts with (longest first).
    StripPrefix(Vec<String>),
    /// Strip the prefix matched by the first of these regexps (each anchored with `^`).
    StripPrefixRegex(Vec<String>),
    /// Prepend this prefix to the path.
    AddPrefix(String),
    /// Replace the whole path with this one.
    ReplacePath(String),
    /// Replace the path using a regexp and a replacement with `$1`-style references.
    ReplacePathRegex {
        /// The regexp applied to the path.
        regex: String,
        /// The replacement (`$1`, `${name}` refer to capture groups).
        replacement: String,
    },
}

/// Why a rule was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {position}: {message}")]
pub struct RuleError {
    /// 1-based character column of the offending token in the rule.
    pub position: usize,
    /// What is wrong, and how to fix it when there is an obvious fix.
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

/// The boolean structure of a compiled rule.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    /// Matches every request (a v1 rule made only of modifiers).
    Always,
    /// A single matcher.
    Match(Matcher),
    /// Every sub-expression must match.
    And(Vec<Expr>),
    /// At least one sub-expression must match.
    Or(Vec<Expr>),
    /// The sub-expression must not match.
    Not(Box<Expr>),
}

impl Expr {
    /// Joins expressions with AND, flattening nested ANDs; one element stays as is.
    pub(crate) fn all(mut items: Vec<Expr>) -> Expr {
        match items.len() {
            0 => Expr::Always,
            1 => items.pop().unwrap_or(Expr::Always),
            _ => Expr::And(items.into_iter().flat_map(Expr::and_parts).collect()),
        }
    }

    /// Joins expressions with OR, flattening nested ORs; one element stays as is.
    pub(crate) fn any(mut items: Vec<Expr>) -> Expr {
        match items.len() {
            0 => Expr::Always,
            1 => items.pop().unwrap_or(Expr::Always),
            _ => Expr::Or(items.into_iter().flat_map(Expr::or_parts).collect()),
        }
    }

    fn and_parts(self) -> Vec<Expr> {
        match self {
            Expr::And(v) => v,
            e => vec![e],
        }
    }

    fn or_parts(self) -> Vec<Expr> {
        match self {
            Expr::Or(v) => v,
            e => vec![e],
        }
    }

    fn matches(&self, req: &RequestView<'_>) -> bool {
        match self {
            Expr::Always => true,
            Expr::Match(m) => m.matches(req),
            Expr::And(v) => v.iter().all(|e| e.matches(req)),
            Expr::Or(v) => v.iter().any(|e| e.matches(req)),
            Expr::Not(e) => !e.matches(req),
        }
    }

    fn exact_hosts(&self) -> Option<Vec<String>> {
        match self {
            Expr::Match(Matcher::Host(HostPattern::Exact(h))) => Some(vec![h.clone()]),
            Expr::Always | Expr::Match(_) | Expr::Not(_) => None,
            Expr::And(v) => v.iter().fold(None, |acc, e| match (acc, e.exact_hosts()) {
                (Some(a), Some(b)) => Some(a.into_iter().filter(|h| b.contains(h)).collect()),
                (Some(a), None) => Some(a),
                (None, b) => b,
            }),
            Expr::Or(v) => {
                let mut out: Vec<String> = Vec::new();
                for e in v {
                    for h in e.exact_hosts()? {
                        if !out.contains(&h) {
                            out.push(h);
                        }
                    }
                }
                Some(out)
            }
        }
    }
}

impl Rule {
    /// Parses and compiles `src` written in the given dialect.
    pub fn parse(src: &str, syntax: RuleSyntax) -> Result<ParsedRule, RuleError> {
        match syntax {
            RuleSyntax::V1 => v1::parse(src),
            RuleSyntax::V2 => Ok(ParsedRule {
                rule: Rule {
                    expr: parser::parse(src, &v2::Builder)?,
                },
                modifiers: Vec::new(),
            }),
            RuleSyntax::V3 => Ok(ParsedRule {
                rule: Rule {
                    expr: parser::parse(src, &v3::Builder)?,
                },
                modifiers: Vec::new(),
            }),
        }
    }

    /// Whether the request matches this rule. Does not allocate (except to decode
    /// unusually long percent-encoded query values for a `QueryRegexp`).
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        self.expr.matches(req)
    }

    /// Hosts this rule can only ever match (for the route table's host hash map), lowercase, no trailing dot;
    /// None when the rule is not restricted to a finite set of exact hosts.
    pub fn exact_hosts(&self) -> Option<Vec<String>> {
        self.expr.exact_hosts()
    }

    pub(crate) fn from_expr(expr: Expr) -> Self {
        Self { expr }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::testutil::*;
    use super::*;

    fn hosts(rule: &str, syntax: RuleSyntax) -> Option<Vec<String>> {
        Rule::parse(rule, syntax).unwrap().rule.exact_hosts()
    }

    fn v(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn exact_hosts_single_and_normalized() {
        assert_eq!(
            hosts("Host(`A.Example.COM.`)", RuleSyntax::V3),
            v(&["a.example.com"])
        );
        assert_eq!(
            hosts("Host(`a.com`) && PathPrefix(`/x`)", RuleSyntax::V3),
            v(&["a.com"])
        );
        assert_eq!(
            hosts("PathPrefix(`/x`) && Host(`a.com`)", RuleSyntax::V3),
            v(&["a.com"])
        );
    }

    #[test]
    fn exact_hosts_union_and_intersection() {
        assert_eq!(
            hosts("Host(`a.com`) || Host(`b.com`)", RuleSyntax::V3),
            v(&["a.com", "b.com"])
        );
        assert_eq!(
            hosts("Host(`a.com`) || Host(`a.com`)", RuleSyntax::V3),
            v(&["a.com"])
        );
        assert_eq!(hosts("Host(`a.com`) || Path(`/x`)", RuleSyntax::V3), None);
        assert_eq!(
            hosts(
                "(Host(`a.com`) || Host(`b.com`)) && (Host(`b.com`) || Host(`c.com`))",
                RuleSyntax::V3
            ),
            v(&["b.com"])
        );
        assert_eq!(
            hosts("Host(`a.com`) && Host(`b.com`)", RuleSyntax::V3),
            v(&[])
        );
    }

    #[test]
    fn exact_hosts_none_cases() {
        assert_eq!(hosts("!Host(`a.com`)", RuleSyntax::V3), None);
        assert_eq!(hosts("PathPrefix(`/`)", RuleSyntax::V3), None);
        assert_eq!(hosts("HostRegexp(`^a\\.com$`)", RuleSyntax::V3), None);
        assert_eq!(hosts("Host(`*.a.com`)", RuleSyntax::V3), None);
        assert_eq!(
            hosts("HostRegexp(`{sub:[a-z]+}.a.com`)", RuleSyntax::V2),
            None
        );
        assert_eq!(hosts("AddPrefix:/x", RuleSyntax::V1), None);
    }

    #[test]
    fn exact_hosts_v2_and_v1_lists() {
        assert_eq!(
            hosts("Host(`a.com`, `B.com`)", RuleSyntax::V2),
            v(&["a.com", "b.com"])
        );
        assert_eq!(
            hosts("HostHeader(`a.com`) && Path(`/x`)", RuleSyntax::V2),
            v(&["a.com"])
        );
        assert_eq!(
            hosts("Host: a.com , b.com ;Path:/x", RuleSyntax::V1),
            v(&["a.com", "b.com"])
        );
    }

    #[test]
    fn error_display_has_column() {
        let e = err("Host(`a`) && Pth(`/x`)", RuleSyntax::V3);
        assert_eq!(e.position, 14);
        let shown = e.to_string();
        assert!(shown.starts_with("at column 14: "), "{shown}");
        assert!(shown.contains("Path"), "{shown}");
    }

    #[test]
    fn rule_is_send_sync() {
        fn check<T: Send + Sync + std::fmt::Debug>() {}
        check::<Rule>();
        check::<ParsedRule>();
    }

    #[test]
    fn v2_and_v3_never_carry_modifiers() {
        assert!(Rule::parse("PathPrefix(`/a`)", RuleSyntax::V3)
            .unwrap()
            .modifiers
            .is_empty());
        assert!(Rule::parse("PathPrefix(`/a`)", RuleSyntax::V2)
            .unwrap()
            .modifiers
            .is_empty());
    }

    #[test]
    fn v1_modifier_only_rule_matches_everything() {
        let r = req("any.host", "/whatever");
        assert!(m("AddPrefix:/x", RuleSyntax::V1, &r));
    }
}
