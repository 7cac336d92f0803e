//! Matcher names per dialect, the case variants Traefik accepts, and helpful
//! errors for unknown names (nearest known name, or the dialect it belongs to).

use super::RuleError;

/// A rule dialect, for name lookup and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    V1,
    V2,
    V3,
}

/// HTTP matchers of Traefik v3 (`pkg/muxer/http/matcher.go`).
pub(super) const V3: &[&str] = &[
    "ClientIP",
    "Method",
    "Host",
    "HostRegexp",
    "Path",
    "PathRegexp",
    "PathPrefix",
    "Header",
    "HeaderRegexp",
    "Query",
    "QueryRegexp",
];

/// HTTP matchers of Traefik v2 (`matcher_v2.go`).
pub(super) const V2: &[&str] = &[
    "Host",
    "HostHeader",
    "HostRegexp",
    "ClientIP",
    "Path",
    "PathPrefix",
    "Method",
    "Headers",
    "HeadersRegexp",
    "Query",
];

/// Matchers and modifiers of Traefik v1.7 (`rules/rules.go`).
pub(super) const V1: &[&str] = &[
    "Host",
    "HostRegexp",
    "Path",
    "PathStrip",
    "PathStripRegex",
    "PathPrefix",
    "PathPrefixStrip",
    "PathPrefixStripRegex",
    "Method",
    "Headers",
    "HeadersRegexp",
    "AddPrefix",
    "ReplacePath",
    "ReplacePathRegex",
    "Query",
];

/// TCP router matchers, which people sometimes put in HTTP rules.
const TCP: &[&str] = &["HostSNI", "HostSNIRegexp", "ALPN"];

fn known(d: Dialect) -> &'static [&'static str] {
    match d {
        Dialect::V1 => V1,
        Dialect::V2 => V2,
        Dialect::V3 => V3,
    }
}

/// The spellings Traefik's v2/v3 parser registers for a name: exact, lower, UPPER, Title.
fn case_forms(canonical: &str, written: &str) -> bool {
    let lower = canonical.to_ascii_lowercase();
    let mut title = lower.clone();
    if let Some(first) = title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    written == canonical
        || written == lower
        || written == canonical.to_ascii_uppercase()
        || written == title
}

/// Finds the canonical matcher `written` refers to (v1: exact case only).
fn lookup(written: &str, d: Dialect) -> Option<&'static str> {
    known(d).iter().copied().find(|c| {
        if d == Dialect::V1 {
            *c == written
        } else {
            case_forms(c, written)
        }
    })
}

/// Resolves a matcher name, or explains why it is not one.
pub(super) fn resolve(written: &str, col: usize, d: Dialect) -> Result<&'static str, RuleError> {
    lookup(written, d).ok_or_else(|| RuleError::new(col, unknown_message(written, d)))
}

fn unknown_message(written: &str, d: Dialect) -> String {
    let in_v1 = lookup(written, Dialect::V1)
        .or_else(|| V1.iter().copied().find(|c| case_forms(c, written)));
    let in_v2 = lookup(written, Dialect::V2);
    let in_v3 = lookup(written, Dialect::V3);
    match (d, in_v1, in_v2, in_v3) {
        (Dialect::V3, _, Some(v2), None) => {
            let instead = match v2 {
                "Headers" => "Header(`name`, `value`)",
                "HeadersRegexp" => "HeaderRegexp(`name`, `regexp`)",
                _ => "Host(`example.com`)",
            };
            return format!(
                "`{written}` is Traefik v2 syntax; in v3 use {instead}, or set `ruleSyntax: v2` on the router"
            );
        }
        (Dialect::V2, _, _, Some(v3)) => {
            let instead = match v3 {
                "PathRegexp" => "a Path or PathPrefix template such as PathPrefix(`/{p:regexp}`)",
                "Header" => "Headers(`name`, `value`)",
                "HeaderRegexp" => "HeadersRegexp(`name`, `regexp`)",
                _ => "Query(`key={v:regexp}`)",
            };
            return format!(
                "`{written}` only exists in Traefik v3 rule syntax; with `ruleSyntax: v2` use {instead}"
            );
        }
        (Dialect::V2 | Dialect::V3, Some(v1), None, None) => {
            let instead = match v1 {
                "AddPrefix" => "an addPrefix middleware",
                "ReplacePath" => "a replacePath middleware",
                "ReplacePathRegex" => "a replacePathRegex middleware",
                "PathStripRegex" | "PathPrefixStripRegex" => {
                    "PathRegexp/PathPrefix with a stripPrefixRegex middleware"
                }
                _ => "Path/PathPrefix with a stripPrefix middleware",
            };
            return format!(
                "`{written}` is a Traefik v1 matcher; use {instead}, or set `ruleSyntax: v1`"
            );
        }
        _ => {}
    }
    if let Some(tcp) = TCP.iter().find(|t| t.eq_ignore_ascii_case(written)) {
        return format!(
            "`{tcp}` is a TCP router matcher; HTTP routers match hosts with Host(`example.com`)"
        );
    }
    let names = known(d);
    if let Some(right) = names.iter().find(|c| c.eq_ignore_ascii_case(written)) {
        return if d == Dialect::V1 {
            format!(
                "unknown matcher `{written}`: v1 matcher names are case-sensitive, write `{right}`"
            )
        } else {
            let lower = right.to_ascii_lowercase();
            format!(
                "unknown matcher `{written}`: write `{right}` (`{lower}` and `{}` are accepted too)",
                right.to_ascii_uppercase()
            )
        };
    }
    let lower = written.to_ascii_lowercase();
    let nearest = names
        .iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_ascii_lowercase()), *c))
        .min();
    match nearest {
        Some((dist, c)) if dist <= (c.len() / 3).max(2) => {
            format!("unknown matcher `{written}`; did you mean `{c}`?")
        }
        _ => format!(
            "unknown matcher `{written}`; known matchers: {}",
            names.join(", ")
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msg(w: &str, d: Dialect) -> String {
        resolve(w, 3, d).unwrap_err().message
    }

    #[test]
    fn accepted_case_variants() {
        for w in ["HostRegexp", "hostregexp", "HOSTREGEXP", "Hostregexp"] {
            assert_eq!(resolve(w, 1, Dialect::V3).unwrap(), "HostRegexp", "{w}");
            assert_eq!(resolve(w, 1, Dialect::V2).unwrap(), "HostRegexp", "{w}");
        }
        for w in ["ClientIP", "clientip", "CLIENTIP", "Clientip"] {
            assert_eq!(resolve(w, 1, Dialect::V3).unwrap(), "ClientIP", "{w}");
        }
        assert!(msg("hostRegexp", Dialect::V3).contains("write `HostRegexp`"));
        assert!(msg("HOSTregexp", Dialect::V2).contains("write `HostRegexp`"));
    }

    #[test]
    fn v1_names_are_exact_case() {
        assert_eq!(
            resolve("PathPrefixStrip", 1, Dialect::V1).unwrap(),
            "PathPrefixStrip"
        );
        let m = msg("pathprefixstrip", Dialect::V1);
        assert!(
            m.contains("case-sensitive") && m.contains("PathPrefixStrip"),
            "{m}"
        );
    }

    #[test]
    fn dialect_hints() {
        let m = msg("Headers", Dialect::V3);
        assert!(
            m.contains("v2") && m.contains("Header(`name`, `value`)"),
            "{m}"
        );
        assert!(msg("HostHeader", Dialect::V3).contains("Host(`example.com`)"));
        assert!(msg("headersregexp", Dialect::V3).contains("HeaderRegexp"));
        let m = msg("PathRegexp", Dialect::V2);
        assert!(m.contains("only exists in Traefik v3"), "{m}");
        assert!(msg("Header", Dialect::V2).contains("Headers(`name`, `value`)"));
        assert!(msg("QueryRegexp", Dialect::V2).contains("Query(`key={v:regexp}`)"));
        let m = msg("PathPrefixStrip", Dialect::V3);
        assert!(m.contains("v1 matcher") && m.contains("stripPrefix"), "{m}");
        assert!(msg("AddPrefix", Dialect::V2).contains("addPrefix middleware"));
        assert!(msg("HostSNI", Dialect::V3).contains("TCP"));
    }

    #[test]
    fn nearest_name_or_list() {
        assert!(msg("Hots", Dialect::V3).contains("did you mean `Host`?"));
        assert!(msg("PathPrefx", Dialect::V3).contains("did you mean `PathPrefix`?"));
        assert!(msg("Methods", Dialect::V2).contains("did you mean `Method`?"));
        let m = msg("Frobnicate", Dialect::V3);
        assert!(m.contains("known matchers: ClientIP, Method"), "{m}");
        assert_eq!(resolve("Nope", 7, Dialect::V3).unwrap_err().position, 7);
    }
}
