//! gorilla/mux route templates, used by v1 and v2 rules: literal text with
//! `{name}` or `{name:regexp}` variables. A template becomes an anchored regexp.

use regex::{Regex, RegexBuilder};

use super::goregex;

/// Where a template is used; decides the default variable pattern and anchoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A host: `{name}` is `[^.]+`, whole host anchored, case-insensitive.
    Host,
    /// A whole path: `{name}` is `[^/]+`, anchored at both ends.
    Path,
    /// A path prefix: `{name}` is `[^/]+`, anchored at the start only.
    PathPrefix,
    /// A query value: `{name}` is `.*`, anchored at both ends.
    QueryValue,
}

/// Whether `s` contains a template variable (gorilla only treats `{` specially).
pub(super) fn has_vars(s: &str) -> bool {
    s.contains('{')
}

/// Converts a template into the source of an anchored regexp, with the variables'
/// patterns in non-capturing groups.
pub(super) fn to_regex(tpl: &str, kind: Kind) -> Result<String, String> {
    let default = match kind {
        Kind::Host => "[^.]+",
        Kind::Path | Kind::PathPrefix => "[^/]+",
        Kind::QueryValue => ".*",
    };
    let mut out = String::from("^");
    let mut literal_start = 0;
    for (start, end) in brace_spans(tpl)? {
        out.push_str(&regex::escape(&tpl[literal_start..start]));
        let var = &tpl[start + 1..end - 1];
        let (name, pattern) = var.split_once(':').unwrap_or((var, default));
        if name.is_empty() || pattern.is_empty() {
            return Err(format!("missing name or pattern in `{}`", &tpl[start..end]));
        }
        let pattern = goregex::translate(pattern);
        let groups = Regex::new(&pattern)
            .map_err(|e| {
                format!(
                    "invalid pattern in `{}`: {}",
                    &tpl[start..end],
                    goregex::describe(e)
                )
            })?
            .captures_len();
        if groups > 1 {
            return Err(format!(
                "`{}` contains a capturing group; only non-capturing groups `(?:...)` are allowed in templates",
                &tpl[start..end]
            ));
        }
        out.push_str("(?:");
        out.push_str(&pattern);
        out.push(')');
        literal_start = end;
    }
    out.push_str(&regex::escape(&tpl[literal_start..]));
    if kind == Kind::QueryValue && tpl.is_empty() {
        out.push_str(default);
    }
    if kind != Kind::PathPrefix {
        out.push('$');
    }
    Ok(out)
}

/// Compiles a template into a regexp (case-insensitive for hosts).
pub(super) fn compile(tpl: &str, kind: Kind) -> Result<Regex, String> {
    RegexBuilder::new(&to_regex(tpl, kind)?)
        .case_insensitive(kind == Kind::Host)
        .build()
        .map_err(goregex::describe)
}

/// Compiles a template into a bytes regexp (for query values).
pub(super) fn compile_bytes(tpl: &str, kind: Kind) -> Result<regex::bytes::Regex, String> {
    regex::bytes::Regex::new(&to_regex(tpl, kind)?).map_err(goregex::describe)
}

/// Byte spans `[start, end)` of the top-level `{...}` groups (nested braces allowed).
fn brace_spans(s: &str) -> Result<Vec<(usize, usize)>, String> {
    let mut spans = Vec::new();
    let mut level = 0usize;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'{' => {
                if level == 0 {
                    start = i;
                }
                level += 1;
            }
            b'}' => {
                level = level
                    .checked_sub(1)
                    .ok_or_else(|| format!("unbalanced braces in `{s}`"))?;
                if level == 0 {
                    spans.push((start, i + 1));
                }
            }
            _ => {}
        }
    }
    if level != 0 {
        return Err(format!("unbalanced braces in `{s}`"));
    }
    Ok(spans)
}

/// Finds a v2-style `{name}` or `{name:...}` placeholder in a v3 regexp, returning it.
pub(super) fn v2_placeholder(s: &str) -> Option<&str> {
    let spans = brace_spans(s).ok()?;
    spans.into_iter().map(|(a, b)| &s[a..b]).find(|var| {
        let inner = &var[1..var.len() - 1];
        let name = inner.split_once(':').map_or(inner, |(n, _)| n);
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A plain-regexp rewrite of a v2 template, offered in the v3 trap's error message.
pub(super) fn plain_regex_hint(tpl: &str, kind: Kind) -> Option<String> {
    let default = if kind == Kind::Host { "[^.]+" } else { "[^/]+" };
    let mut out = String::from("^");
    let mut literal_start = 0;
    for (start, end) in brace_spans(tpl).ok()? {
        out.push_str(&regex::escape(&tpl[literal_start..start]));
        let var = &tpl[start + 1..end - 1];
        let pattern = var.split_once(':').map_or(default, |(_, p)| p);
        if pattern.contains('|') {
            out.push_str(&format!("(?:{pattern})"));
        } else {
            out.push_str(pattern);
        }
        literal_start = end;
    }
    out.push_str(&regex::escape(&tpl[literal_start..]));
    out.push('$');
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn host_templates() {
        assert_eq!(
            to_regex("{sub}.example.com", Kind::Host).unwrap(),
            "^(?:[^.]+)\\.example\\.com$"
        );
        let re = compile("{sub:[a-z]+}.Example.com", Kind::Host).unwrap();
        assert!(re.is_match("api.example.com"));
        assert!(re.is_match("API.example.com"));
        assert!(!re.is_match("a.b.example.com"));
        assert!(!re.is_match("api.example.com.evil"));
        let re = compile("{host:.+}", Kind::Host).unwrap();
        assert!(re.is_match("anything.at.all"));
    }

    #[test]
    fn path_and_prefix_templates() {
        let re = compile("/users/{id:[0-9]+}", Kind::Path).unwrap();
        assert!(re.is_match("/users/42"));
        assert!(!re.is_match("/users/42/x"));
        assert!(!re.is_match("/users/x"));
        let re = compile("/users/{id}", Kind::PathPrefix).unwrap();
        assert!(re.is_match("/users/42/x"));
        assert!(!re.is_match("/x/users/42"));
        let re = compile("/a/{n:[0-9]{1,3}}", Kind::Path).unwrap();
        assert!(re.is_match("/a/123"));
        assert!(!re.is_match("/a/1234"));
        let re = compile("/{p:css|js}/x", Kind::Path).unwrap();
        assert!(re.is_match("/js/x"));
        assert!(!re.is_match("/css"));
    }

    #[test]
    fn query_value_templates() {
        assert_eq!(to_regex("", Kind::QueryValue).unwrap(), "^.*$");
        let re = compile_bytes("{v:[0-9]+}", Kind::QueryValue).unwrap();
        assert!(re.is_match(b"123"));
        assert!(!re.is_match(b"12a"));
    }

    #[test]
    fn template_errors() {
        assert!(compile("/{id", Kind::Path)
            .unwrap_err()
            .contains("unbalanced"));
        assert!(compile("/id}", Kind::Path)
            .unwrap_err()
            .contains("unbalanced"));
        assert!(compile("/{:[0-9]+}", Kind::Path)
            .unwrap_err()
            .contains("missing name"));
        assert!(compile("/{id:}", Kind::Path)
            .unwrap_err()
            .contains("missing name"));
        assert!(compile("/{id:(a|b)}", Kind::Path)
            .unwrap_err()
            .contains("capturing"));
        assert!(compile("/{id:[a-}", Kind::Path)
            .unwrap_err()
            .contains("invalid pattern"));
        assert!(compile("/{id:(?:a|b)}", Kind::Path).is_ok());
    }

    #[test]
    fn detects_v2_placeholders() {
        assert_eq!(v2_placeholder("{host:.+}"), Some("{host:.+}"));
        assert_eq!(v2_placeholder("{sub}.example.com"), Some("{sub}"));
        assert_eq!(v2_placeholder("^a{2,3}b$"), None);
        assert_eq!(v2_placeholder("^[a-z]+\\.com$"), None);
        assert_eq!(v2_placeholder("/{id:[0-9]{2}}"), Some("{id:[0-9]{2}}"));
    }

    #[test]
    fn hints() {
        assert_eq!(plain_regex_hint("{host:.+}", Kind::Host).unwrap(), "^.+$");
        assert_eq!(
            plain_regex_hint("{sub:[a-z]+}.example.com", Kind::Host).unwrap(),
            "^[a-z]+\\.example\\.com$"
        );
        assert_eq!(
            plain_regex_hint("/{p:css|js}", Kind::Path).unwrap(),
            "^/(?:css|js)$"
        );
        assert_eq!(plain_regex_hint("/{id}", Kind::Path).unwrap(), "^/[^/]+$");
    }
}
