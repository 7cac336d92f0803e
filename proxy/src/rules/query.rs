//! Query-string matching without allocation: pairs are percent-decoded on the fly
//! (`+` is a space), as Go's `url.ParseQuery` (v3) and gorilla/mux (v1/v2) do.

/// What the value of the query parameter must be.
#[derive(Debug, Clone)]
pub(crate) enum QueryValue {
    /// Exactly this (decoded) value; `""` matches `?key` and `?key=`.
    Exact(String),
    /// A value matching this regexp.
    Regex(regex::bytes::Regex),
    /// Any value, or none.
    Any,
}

/// A test on one query parameter.
#[derive(Debug, Clone)]
pub(crate) struct QueryMatcher {
    key: String,
    value: QueryValue,
    /// gorilla/mux semantics (v1/v2): only the first occurrence of the key counts,
    /// and `;` separates pairs too. Otherwise (v3) any occurrence may match and
    /// pairs containing `;` are ignored, as in Go's `url.ParseQuery`.
    first_only: bool,
}

impl QueryMatcher {
    /// v3 semantics: any occurrence of `key` whose value satisfies `value`.
    pub(crate) fn any_occurrence(key: &str, value: QueryValue) -> Self {
        Self {
            key: key.to_string(),
            value,
            first_only: false,
        }
    }

    /// gorilla/mux semantics (v1/v2): the first occurrence of `key` must satisfy `value`.
    pub(crate) fn first_occurrence(key: &str, value: QueryValue) -> Self {
        Self {
            key: key.to_string(),
            value,
            first_only: true,
        }
    }

    /// Whether the raw query string satisfies this matcher.
    pub(crate) fn matches(&self, query: Option<&str>) -> bool {
        let Some(query) = query else {
            return false;
        };
        let separators: &[char] = if self.first_only { &['&', ';'] } else { &['&'] };
        for pair in query.split(separators) {
            if pair.is_empty() || (!self.first_only && pair.contains(';')) {
                continue;
            }
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            if decoded_eq(raw_key, &self.key) != Some(true) {
                continue;
            }
            let ok = self.value_matches(raw_value);
            if ok || self.first_only {
                return ok;
            }
        }
        false
    }

    fn value_matches(&self, raw: &str) -> bool {
        match &self.value {
            QueryValue::Exact(v) => decoded_eq(raw, v) == Some(true),
            QueryValue::Any => decode(raw).is_some(),
            QueryValue::Regex(re) => decode(raw).is_some_and(|d| re.is_match(d.as_bytes())),
        }
    }
}

/// Iterates the bytes of a percent-decoded query component, `None` on a bad escape.
struct Unescape<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl Iterator for Unescape<'_> {
    type Item = Option<u8>;

    fn next(&mut self) -> Option<Option<u8>> {
        let b = *self.raw.get(self.pos)?;
        self.pos += 1;
        Some(match b {
            b'+' => Some(b' '),
            b'%' => {
                let hex = |i: usize| self.raw.get(i).and_then(|c| (*c as char).to_digit(16));
                let decoded = hex(self.pos)
                    .zip(hex(self.pos + 1))
                    .and_then(|(hi, lo)| u8::try_from(hi * 16 + lo).ok());
                self.pos += 2;
                decoded
            }
            b => Some(b),
        })
    }
}

/// Whether `raw` decodes to `expected`; `None` when `raw` has a malformed escape.
fn decoded_eq(raw: &str, expected: &str) -> Option<bool> {
    let mut want = expected.bytes();
    let mut equal = true;
    for b in (Unescape {
        raw: raw.as_bytes(),
        pos: 0,
    }) {
        let b = b?;
        if equal && want.next() != Some(b) {
            equal = false;
        }
    }
    Some(equal && want.next().is_none())
}

/// Size of the on-stack buffer used to decode values for regexp matching.
const INLINE: usize = 128;

/// A decoded query component: borrowed when nothing needed decoding, on the
/// stack when short, on the heap otherwise.
enum Decoded<'a> {
    Borrowed(&'a [u8]),
    Inline([u8; INLINE], usize),
    Heap(Vec<u8>),
}

impl Decoded<'_> {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Decoded::Borrowed(b) => b,
            Decoded::Inline(buf, n) => &buf[..*n],
            Decoded::Heap(v) => v,
        }
    }
}

/// Percent-decodes `raw`, `None` on a malformed escape.
fn decode(raw: &str) -> Option<Decoded<'_>> {
    let bytes = raw.as_bytes();
    let iter = Unescape { raw: bytes, pos: 0 };
    if !bytes.iter().any(|b| matches!(b, b'%' | b'+')) {
        return Some(Decoded::Borrowed(bytes));
    }
    if bytes.len() <= INLINE {
        let mut buf = [0u8; INLINE];
        let mut n = 0;
        for b in iter {
            buf[n] = b?;
            n += 1;
        }
        return Some(Decoded::Inline(buf, n));
    }
    iter.collect::<Option<Vec<u8>>>().map(Decoded::Heap)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn exact(k: &str, v: &str) -> QueryMatcher {
        QueryMatcher::any_occurrence(k, QueryValue::Exact(v.into()))
    }

    fn re(r: &str) -> QueryValue {
        QueryValue::Regex(regex::bytes::Regex::new(r).unwrap())
    }

    #[test]
    fn exact_value_any_occurrence() {
        let q = exact("q", "traefik");
        assert!(q.matches(Some("q=traefik")));
        assert!(q.matches(Some("rel=ddg&q=traefik")));
        assert!(q.matches(Some("q=awesome&q=traefik")));
        assert!(!q.matches(Some("q=TRAEFIK")));
        assert!(!q.matches(Some("Q=traefik")));
        assert!(!q.matches(Some("q=traefikx")));
        assert!(!q.matches(None));
    }

    #[test]
    fn values_and_keys_are_percent_decoded() {
        assert!(exact("q", "a b/c").matches(Some("q=a+b%2Fc")));
        assert!(exact("q", "a b/c").matches(Some("q=a%20b%2fc")));
        assert!(exact("my key", "v").matches(Some("my%20key=v")));
        assert!(!exact("q", "a%zz").matches(Some("q=a%zz")));
        assert!(!exact("q", "a").matches(Some("q=a%")));
    }

    #[test]
    fn empty_value_matches_bare_key_only() {
        let q = exact("mobile", "");
        assert!(q.matches(Some("mobile")));
        assert!(q.matches(Some("mobile=")));
        assert!(!q.matches(Some("mobile=true")));
        assert!(!q.matches(Some("")));
    }

    #[test]
    fn semicolons() {
        // v3: a pair holding `;` is dropped, as Go's ParseQuery does.
        assert!(!exact("a", "1").matches(Some("a=1;b=2")));
        assert!(exact("a", "1").matches(Some("x=1;y=2&a=1")));
        // v1/v2 (gorilla): `;` separates pairs.
        let g = QueryMatcher::first_occurrence("b", QueryValue::Exact("2".into()));
        assert!(g.matches(Some("a=1;b=2")));
    }

    #[test]
    fn first_occurrence_only_for_gorilla() {
        let g = QueryMatcher::first_occurrence("q", QueryValue::Exact("b".into()));
        assert!(g.matches(Some("x=1&q=b&q=c")));
        assert!(!g.matches(Some("q=a&q=b")));
        let any = QueryMatcher::first_occurrence("q", QueryValue::Any);
        assert!(any.matches(Some("q")));
        assert!(any.matches(Some("a=1&q=zz")));
        assert!(!any.matches(Some("qq=1")));
        assert!(!any.matches(Some("q=%zz")));
    }

    #[test]
    fn regex_values_short_and_long() {
        let q = QueryMatcher::any_occurrence("q", re("^(traefik|nginx)$"));
        assert!(q.matches(Some("q=nginx")));
        assert!(q.matches(Some("q=awesome&q=traefik")));
        assert!(!q.matches(Some("q=haproxy")));
        let q = QueryMatcher::any_occurrence("q", re("^a b+$"));
        assert!(q.matches(Some("q=a+b%62b")));
        let long = format!("q=a+{}", "b".repeat(300));
        assert!(q.matches(Some(&long)));
        let long_enc = format!("q=a%20{}", "%62".repeat(200));
        assert!(q.matches(Some(&long_enc)));
    }
}
