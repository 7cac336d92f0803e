//! Choosing the response encoding from `Accept-Encoding`, as Traefik does.
//!
//! Without quality values the first of the configured `encodings` (default
//! `zstd, br, gzip`) that the client lists wins, and `*` means the default
//! encoding. With quality values the listed encodings are taken by decreasing
//! quality (an entry without one after those with one), and the first usable one
//! wins; `identity;q=0` or `*;q=0` before it means nothing is acceptable.

use std::fmt;

/// A content coding the compress middleware produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Zstandard.
    Zstd,
    /// Brotli.
    Br,
    /// Gzip.
    Gzip,
}

impl Encoding {
    /// Parses a coding name (`zstd`, `br`, `gzip`).
    pub fn parse(s: &str) -> Option<Encoding> {
        match s.trim() {
            "zstd" => Some(Encoding::Zstd),
            "br" => Some(Encoding::Br),
            "gzip" => Some(Encoding::Gzip),
            _ => None,
        }
    }

    /// The `Content-Encoding` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Br => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Traefik's default `encodings`, in order of preference.
pub const DEFAULT_ENCODINGS: [Encoding; 3] = [Encoding::Zstd, Encoding::Br, Encoding::Gzip];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Coding {
    Known(Encoding),
    Identity,
    Any,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    coding: Coding,
    quality: Option<f64>,
}

/// The encoding for a request whose `Accept-Encoding` values are `values`, or
/// `None` to send the response as it is. `default` is the `defaultEncoding`
/// option; without it, `br` when allowed, else the first allowed encoding.
pub fn choose<'a>(
    values: impl IntoIterator<Item = &'a str>,
    allowed: &[Encoding],
    default: Option<Encoding>,
) -> Option<Encoding> {
    let default = default.or_else(|| {
        if allowed.contains(&Encoding::Br) {
            Some(Encoding::Br)
        } else {
            allowed.first().copied()
        }
    });
    let (mut entries, weighted) = parse(values);
    if weighted {
        // Stable: equal qualities keep the client's order.
        entries.sort_by(|a, b| rank(b).total_cmp(&rank(a)));
        for e in &entries {
            match (e.coding, e.quality) {
                (Coding::Identity | Coding::Any, Some(0.0)) => return None,
                (Coding::Any, _) => return default,
                (Coding::Known(enc), q) if q != Some(0.0) && allowed.contains(&enc) => {
                    return Some(enc)
                }
                _ => {}
            }
        }
        return None;
    }
    if let Some(enc) = allowed
        .iter()
        .find(|a| entries.iter().any(|e| e.coding == Coding::Known(**a)))
    {
        return Some(*enc);
    }
    if entries.iter().any(|e| e.coding == Coding::Any) {
        return default;
    }
    None
}

/// Sort key: entries with a quality by that quality; entries without one after
/// every non-zero quality but before zero ones.
fn rank(e: &Entry) -> f64 {
    match e.quality {
        Some(0.0) => -1.0,
        Some(q) => q + 1.0,
        None => 0.5,
    }
}

fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> (Vec<Entry>, bool) {
    let mut entries = Vec::new();
    let mut weighted = false;
    for value in values {
        for item in value.split(',') {
            let mut parts = item.splitn(2, ';');
            let name = parts.next().unwrap_or("").trim();
            let coding = match name {
                "*" => Coding::Any,
                "identity" => Coding::Identity,
                other => match Encoding::parse(other) {
                    Some(e) => Coding::Known(e),
                    None => continue,
                },
            };
            let quality = parts.next().and_then(|p| {
                let p = p.trim();
                p.strip_prefix("q=")
                    .map(|q| q.trim().parse().unwrap_or(0.0))
            });
            weighted |= quality.is_some();
            entries.push(Entry { coding, quality });
        }
    }
    (entries, weighted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    fn pick(ae: &str) -> Option<Encoding> {
        choose([ae], &DEFAULT_ENCODINGS, None)
    }

    #[test]
    fn without_qualities_the_configured_order_wins() {
        assert_eq!(pick("gzip, deflate, br"), Some(Br));
        assert_eq!(pick("gzip, zstd, br"), Some(Zstd));
        assert_eq!(pick("gzip"), Some(Gzip));
        assert_eq!(pick("deflate"), None);
        assert_eq!(pick(""), None);
        assert_eq!(pick("*"), Some(Br));
        assert_eq!(choose(["gzip, br"], &[Gzip, Br], None), Some(Gzip));
        assert_eq!(choose(["*"], &[Gzip, Zstd], None), Some(Gzip));
        assert_eq!(choose(["*"], &DEFAULT_ENCODINGS, Some(Gzip)), Some(Gzip));
        assert_eq!(
            choose(["deflate", "gzip"], &DEFAULT_ENCODINGS, None),
            Some(Gzip)
        );
    }

    #[test]
    fn qualities_order_the_client_preferences() {
        assert_eq!(pick("br;q=0.5, gzip;q=0.9"), Some(Gzip));
        assert_eq!(pick("br;q=0.5, gzip;q=0.5"), Some(Br));
        assert_eq!(pick("gzip;q=0.1, br"), Some(Gzip));
        assert_eq!(pick("gzip;q=0, br;q=0.2"), Some(Br));
        assert_eq!(pick("identity;q=0, gzip;q=0.5"), Some(Gzip));
        assert_eq!(pick("*;q=0"), None);
        assert_eq!(pick("identity;q=1, gzip;q=0.5"), Some(Gzip));
        assert_eq!(pick("*;q=0.8, gzip;q=0.1"), Some(Br));
        assert_eq!(pick("deflate;q=1"), None);
        assert_eq!(pick("gzip;q=0"), None);
        assert_eq!(choose(["zstd;q=1"], &[Gzip], None), None);
    }
}
