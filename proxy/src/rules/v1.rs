//! Traefik v1.7 rules: `Matcher:a,b;Matcher2:c`. `;` is AND, `,` is OR within a
//! matcher; `PathStrip`-style matchers and `AddPrefix`/`ReplacePath*` also yield
//! path rewrites ([`PathModifier`]).

use super::names::{self, Dialect};
use super::template::{self, Kind};
use super::v2::{self, path_template};
use super::{goregex, Expr, ParsedRule, PathModifier, Rule, RuleError};

/// Parses a v1 rule.
pub(super) fn parse(src: &str) -> Result<ParsedRule, RuleError> {
    if src.split(';').all(|s| s.trim().is_empty()) {
        return Err(RuleError::new(1, "empty rule"));
    }
    let mut exprs = Vec::new();
    let mut modifiers = Vec::new();
    let mut start = 0;
    for segment in src.split(';') {
        let seg_start = start;
        start += segment.len() + 1;
        if segment.trim().is_empty() {
            continue;
        }
        let name_col = col(src, seg_start + segment.len() - segment.trim_start().len());
        let looks_v2 = |s: &str| s.contains('(') || s.contains('`');
        let v2_hint = || {
            RuleError::new(
                name_col,
                "this looks like v2/v3 syntax (Host(`a`)); v1 rules are written \
                 `Host:example.com;PathPrefix:/api`, or set the router's `ruleSyntax` to v3",
            )
        };
        let Some(colon) = segment.find(':') else {
            if looks_v2(segment) {
                return Err(v2_hint());
            }
            return Err(RuleError::new(
                name_col,
                format!(
                    "expected `Matcher:value` (like `Host:example.com`), found `{}`",
                    segment.trim()
                ),
            ));
        };
        let written = segment[..colon].trim();
        if looks_v2(written) {
            return Err(v2_hint());
        }
        let name = names::resolve(written, name_col, Dialect::V1)?;
        let owned = split_args(src, seg_start + colon + 1, &segment[colon + 1..]);
        let mut args: Vec<(&str, usize)> = owned.iter().map(|(v, c)| (v.as_str(), *c)).collect();
        let Some(&(last, last_col)) = args.last() else {
            return Err(RuleError::new(
                name_col,
                format!("`{name}` needs at least one value, like `{name}:/path`"),
            ));
        };
        match name {
            "AddPrefix" => modifiers.push(PathModifier::AddPrefix(last.to_string())),
            "ReplacePath" => modifiers.push(PathModifier::ReplacePath(last.to_string())),
            "ReplacePathRegex" => modifiers.push(replace_path_regex(last, last_col)?),
            "PathStrip" | "PathStripRegex" | "PathPrefixStrip" | "PathPrefixStripRegex" => {
                // Traefik tries the longest prefixes first.
                args.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
                let prefix = name.starts_with("PathPrefix");
                let matchers = args
                    .iter()
                    .map(|(v, c)| path_template(v, *c, prefix).map(Expr::Match))
                    .collect::<Result<Vec<_>, _>>()?;
                exprs.push(Expr::any(matchers));
                let values = args.iter().map(|(v, c)| {
                    if name.ends_with("Regex") {
                        template::to_regex(v, Kind::PathPrefix).map_err(|e| {
                            RuleError::new(*c, format!("invalid path template `{v}`: {e}"))
                        })
                    } else {
                        Ok(v.to_string())
                    }
                });
                let values = values.collect::<Result<Vec<_>, _>>()?;
                modifiers.push(if name.ends_with("Regex") {
                    PathModifier::StripPrefixRegex(values)
                } else {
                    PathModifier::StripPrefix(values)
                });
            }
            other => exprs.push(v2::build(other, &args)?),
        }
    }
    Ok(ParsedRule {
        rule: Rule::from_expr(Expr::all(exprs)),
        modifiers,
    })
}

/// `ReplacePathRegex: ^/a/(.*) /b/$1`: a regexp and its replacement, separated by a space.
fn replace_path_regex(value: &str, col: usize) -> Result<PathModifier, RuleError> {
    let parts = value
        .split_once(char::is_whitespace)
        .map(|(re, rep)| (re, rep.trim()))
        .filter(|(_, rep)| !rep.is_empty() && !rep.contains(char::is_whitespace));
    let Some((regex, replacement)) = parts else {
        return Err(RuleError::new(
            col,
            format!("ReplacePathRegex expects `regexp replacement` separated by one space, found `{value}`"),
        ));
    };
    goregex::compile(regex, false).map_err(|e| {
        RuleError::new(
            col,
            format!("invalid regexp `{regex}` in ReplacePathRegex: {e}"),
        )
    })?;
    Ok(PathModifier::ReplacePathRegex {
        regex: regex.to_string(),
        replacement: replacement.to_string(),
    })
}

/// 1-based character column of byte offset `byte` in `src`.
fn col(src: &str, byte: usize) -> usize {
    src.get(..byte).map_or(1, |s| s.chars().count() + 1)
}

/// Splits arguments on `,` outside `{...}` templates, trimmed, empty ones dropped,
/// each with its column. `offset` is the byte offset of `text` within `src`.
fn split_args(src: &str, offset: usize, text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut piece_start = 0;
    let mut push = |from: usize, to: usize| {
        let piece = &text[from..to];
        let trimmed = piece.trim();
        if !trimmed.is_empty() {
            let lead = piece.len() - piece.trim_start().len();
            out.push((trimmed.to_string(), col(src, offset + from + lead)));
        }
    };
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                push(piece_start, i);
                piece_start = i + 1;
            }
            _ => {}
        }
    }
    push(piece_start, text.len());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::dynamic::RuleSyntax::V1;
    use crate::rules::testutil::*;
    use crate::rules::{PathModifier, Rule};

    fn mods(rule: &str) -> Vec<PathModifier> {
        Rule::parse(rule, V1).unwrap().modifiers
    }

    #[test]
    fn and_or_and_whitespace() {
        let rule = "Host: a.com , b.com ; PathPrefix:/api";
        assert!(m(rule, V1, &req("b.com", "/api/x")));
        assert!(!m(rule, V1, &req("c.com", "/api/x")));
        assert!(!m(rule, V1, &req("a.com", "/other")));
        assert!(m("Host:a.com;", V1, &req("a.com", "/")));
    }

    #[test]
    fn all_matchers() {
        let r = req("api.x.com", "/users/42?a=1&b=2")
            .method("POST")
            .header("X-A", "v1");
        assert!(m("HostRegexp:{s:[a-z]+}.x.com", V1, &r));
        assert!(m("HostRegexp:{s}.x.com,{a:[0-9]{1,3}}.y.com", V1, &r));
        assert!(m("Path:/users/{id:[0-9]+}", V1, &r));
        assert!(!m("Path:/users", V1, &r));
        assert!(m("PathPrefix:/users", V1, &r));
        assert!(m("PathPrefix:/other,/users/{id}", V1, &r));
        assert!(m("Method:GET,POST", V1, &r));
        assert!(!m("Method:GET", V1, &r));
        assert!(m("Headers:X-A,v1", V1, &r));
        assert!(!m("Headers:X-A,v2", V1, &r));
        assert!(m("HeadersRegexp:X-A,^v[0-9]$", V1, &r));
        assert!(m("Query:a=1,b=2", V1, &r));
        assert!(!m("Query:a=1,b=3", V1, &r));
        assert!(m("Query:b", V1, &r));
    }

    #[test]
    fn strip_matchers_and_their_modifiers() {
        let r = req("h", "/a/x");
        assert!(m("PathPrefixStrip:/a,/b", V1, &r));
        assert!(!m("PathStrip:/a", V1, &r));
        assert!(m("PathStrip:/a/x", V1, &r));
        assert_eq!(
            mods("PathStrip:/a"),
            vec![PathModifier::StripPrefix(vec!["/a".into()])]
        );
        assert_eq!(
            mods("PathPrefixStrip:/a, /bcd"),
            vec![PathModifier::StripPrefix(vec!["/bcd".into(), "/a".into()])]
        );
        assert!(m("PathPrefixStripRegex:/{p:[a-z]}/", V1, &r));
        assert_eq!(
            mods("PathPrefixStripRegex:/api/{v:v[0-9]+}"),
            vec![PathModifier::StripPrefixRegex(vec![
                "^/api/(?:v[0-9]+)".into()
            ])]
        );
        assert_eq!(
            mods("PathStripRegex:/{id}"),
            vec![PathModifier::StripPrefixRegex(vec!["^/(?:[^/]+)".into()])]
        );
        assert!(m("PathStripRegex:/a/{id}", V1, &r));
        assert!(!m("PathStripRegex:/a/{id}", V1, &req("h", "/a/x/y")));
    }

    #[test]
    fn modifiers_only_and_mixed() {
        assert_eq!(
            mods("AddPrefix:/x"),
            vec![PathModifier::AddPrefix("/x".into())]
        );
        assert!(m("AddPrefix:/x", V1, &req("h", "/anything")));
        assert_eq!(
            mods("ReplacePath:/new"),
            vec![PathModifier::ReplacePath("/new".into())]
        );
        assert_eq!(
            mods("Host:a.com;ReplacePathRegex: ^/a/(.*) /b/$1"),
            vec![PathModifier::ReplacePathRegex {
                regex: "^/a/(.*)".into(),
                replacement: "/b/$1".into()
            }]
        );
        let p = Rule::parse("PathPrefixStrip:/api;AddPrefix:/v2;Host:a.com", V1).unwrap();
        assert_eq!(p.modifiers.len(), 2);
        assert!(p.rule.matches(&req("a.com", "/api/x").view()));
        assert!(!p.rule.matches(&req("b.com", "/api/x").view()));
    }

    #[test]
    fn errors_with_positions() {
        assert_eq!(err("", V1).message, "empty rule");
        assert_eq!(err(" ; ", V1).position, 1);
        let e = err("Host:a.com;Pth:/x", V1);
        assert_eq!(e.position, 12);
        assert!(e.message.contains("did you mean `Path`?"), "{}", e.message);
        let e = err("Host:a.com; host:b.com", V1);
        assert_eq!(e.position, 13);
        assert!(e.message.contains("case-sensitive"));
        let e = err("Host:a.com;Path:", V1);
        assert_eq!(e.position, 12);
        assert!(e.message.contains("at least one value"));
        let e = err("Host", V1);
        assert!(e.message.contains("Matcher:value"));
        let e = err("Host(`a.com`)", V1);
        assert!(e.message.contains("v2/v3 syntax"), "{}", e.message);
        let e = err("Host:a.com;Path:x", V1);
        assert_eq!(e.position, 17);
        let e = err("Headers:X-A,1,X-B", V1);
        assert_eq!(e.position, 15);
        let e = err("Path:/a, /{id", V1);
        assert_eq!(e.position, 10);
        assert!(e.message.contains("unbalanced"));
        assert!(err("ReplacePathRegex:^/a/(.*)", V1)
            .message
            .contains("separated by one space"));
        assert!(err("ReplacePathRegex:^/a/(.* /b", V1)
            .message
            .contains("unclosed group"));
    }
}
