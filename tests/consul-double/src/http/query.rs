//! Query-string handling as Go's `url.Values` does it: flags count by presence
//! (`?recurse`, `?recurse=false` alike), `get` returns the first value.

use std::time::Duration;

use http::StatusCode;

use super::ApiError;
use crate::duration;

/// Consul's default wait for a blocking query without `?wait=`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5 * 60);
/// Consul's ceiling on `?wait=`.
pub const MAX_WAIT: Duration = Duration::from_secs(10 * 60);
/// Consul adds up to wait/16 of random jitter to every blocking query.
pub const JITTER_FRACTION: u32 = 16;

/// The decoded query parameters of one request, in order.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes `a=1&b&c=%2F` (form encoding, `+` as space).
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Query { pairs }
    }

    /// Whether the parameter is present, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// The first value of the parameter, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value, or "" when absent (Go's `Values.Get`).
    pub fn value(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Parses an unsigned integer parameter; a bad value fails like Go's
    /// `strconv.ParseUint` error surfacing as a 500.
    pub fn uint(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        raw.parse::<u64>().map(Some).map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("strconv.ParseUint: parsing {raw:?}: invalid syntax"),
            )
        })
    }

    /// Go's `Values.Encode`: keys sorted, values in order, form-encoded.
    pub fn encode_sorted(&self) -> String {
        let mut pairs: Vec<&(String, String)> = self.pairs.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            out.append_pair(k, v);
        }
        out.finish()
    }

    /// Fails with Consul's 400 when more than one of `flags` is present.
    pub fn reject_conflicts(&self, flags: &[&str]) -> Result<(), ApiError> {
        if flags.iter().filter(|f| self.has(f)).count() > 1 {
            return Err(ApiError::bad_request(format!(
                "Conflicting flags: {}",
                self.encode_sorted()
            )));
        }
        Ok(())
    }
}

/// The read options of a GET: blocking (`index`, `wait`) and consistency mode.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// `?index=`: block until the result's index exceeds this (0: do not block).
    pub min_index: u64,
    /// How long to block at most, jitter included.
    pub timeout: Duration,
    /// `leader`, `consistent` or `stale`, echoed in `X-Consul-Effective-Consistency`.
    pub consistency: &'static str,
}

impl ReadOptions {
    /// Parses `wait`, `index`, `stale` and `consistent` with Consul's errors.
    pub fn parse(query: &Query) -> Result<ReadOptions, ApiError> {
        let mut wait = Duration::ZERO;
        if let Some(raw) = query.get("wait").filter(|w| !w.is_empty()) {
            let nanos = duration::parse_nanos(raw)
                .map_err(|_| ApiError::bad_request("Invalid wait time"))?;
            wait = u64::try_from(nanos)
                .map(Duration::from_nanos)
                .unwrap_or(Duration::ZERO);
        }
        let mut min_index = 0;
        if let Some(raw) = query.get("index").filter(|i| !i.is_empty()) {
            min_index = raw
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request("Invalid index"))?;
        }
        let consistency = match (query.has("stale"), query.has("consistent")) {
            (true, true) => {
                return Err(ApiError::bad_request(
                    "Cannot specify ?stale with ?consistent, conflicting semantics.",
                ))
            }
            (true, false) => "stale",
            (false, true) => "consistent",
            (false, false) => "leader",
        };
        let base = if wait > MAX_WAIT {
            MAX_WAIT
        } else if wait.is_zero() {
            DEFAULT_WAIT
        } else {
            wait
        };
        Ok(ReadOptions {
            min_index,
            timeout: base + jitter(base / JITTER_FRACTION),
            consistency,
        })
    }
}

/// A random duration in `[0, max)`.
fn jitter(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::random_range(0..nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_count_by_presence_and_values_are_decoded() {
        let q = Query::parse(Some("recurse&raw=false&key=a%2Fb&sep=+"));
        assert!(q.has("recurse"));
        assert!(q.has("raw"));
        assert!(!q.has("keys"));
        assert_eq!(q.get("key"), Some("a/b"));
        assert_eq!(q.get("sep"), Some(" "));
        assert_eq!(q.value("missing"), "");
    }

    #[test]
    fn conflicting_flags_are_listed_sorted() {
        let q = Query::parse(Some("release=b&cas=0"));
        let err = q
            .reject_conflicts(&["cas", "acquire", "release"])
            .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.message, "Conflicting flags: cas=0&release=b");
    }

    #[test]
    fn wait_is_capped_defaulted_and_jittered() {
        let opts = ReadOptions::parse(&Query::parse(Some("index=7&wait=1s"))).unwrap();
        assert_eq!(opts.min_index, 7);
        assert!(opts.timeout >= Duration::from_secs(1));
        assert!(opts.timeout < Duration::from_millis(1_000 + 1_000 / 16));
        let opts = ReadOptions::parse(&Query::parse(Some("index=7&wait=1h"))).unwrap();
        assert!(opts.timeout >= MAX_WAIT && opts.timeout < MAX_WAIT + MAX_WAIT / 16);
        let opts = ReadOptions::parse(&Query::parse(Some("index=7"))).unwrap();
        assert!(opts.timeout >= DEFAULT_WAIT && opts.timeout < DEFAULT_WAIT + DEFAULT_WAIT / 16);
        let err = ReadOptions::parse(&Query::parse(Some("wait=10"))).unwrap_err();
        assert_eq!(err.message, "Invalid wait time");
        let err = ReadOptions::parse(&Query::parse(Some("index=x"))).unwrap_err();
        assert_eq!(err.message, "Invalid index");
    }
}
