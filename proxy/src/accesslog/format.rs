//! Turning a [`Record`] into one line: Traefik's `common` format, the plain
//! Combined Log Format (`genericCLF`), or a JSON object with Traefik's field names.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::record::Record;
use super::settings::{Format, Mode, Settings};

/// Formats `r` as one line, newline included.
pub fn line(r: &Record, s: &Settings) -> String {
    match s.format {
        Format::Json => {
            let mut text = Value::Object(json(r, s)).to_string();
            text.push('\n');
            text
        }
        Format::Common | Format::GenericClf => common(r, s),
    }
}

/// `<ip> - <user> [<time>] "<method> <path> <proto>" <status> <size> "<referer>"
/// "<agent>"`, followed in `common` by `<count> "<router>" "<server>" <ms>ms`.
fn common(r: &Record, s: &Settings) -> String {
    let keep = |name: &str| s.field(name) != Mode::Drop;
    let dash = |keep: bool, v: Option<String>| v.filter(|_| keep).unwrap_or_else(|| "-".into());
    let quoted = |keep: bool, v: Option<&str>| match v.filter(|v| keep && !v.is_empty()) {
        Some(v) => format!("{v:?}"),
        None => "\"-\"".into(),
    };
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "{} - {} [{}] \"{} {} {}\" {} {} {} {}",
        dash(keep("ClientHost"), Some(r.client.ip().to_string())),
        dash(keep("ClientUsername"), None),
        dash(keep("StartUTC"), Some(clf_time(r.start))),
        dash(keep("RequestMethod"), Some(r.method.to_string())),
        dash(keep("RequestPath"), Some(r.path.clone())),
        dash(keep("RequestProtocol"), Some(r.protocol().to_string())),
        dash(keep("DownstreamStatus"), Some(r.status.to_string())),
        dash(
            keep("DownstreamContentSize"),
            Some(r.response_size.to_string())
        ),
        quoted(keep("request_Referer"), r.referer.as_deref()),
        quoted(keep("request_User-Agent"), r.user_agent.as_deref()),
    );
    if s.format == Format::Common {
        let upstream = r.upstream.as_ref().map(|u| u.to_string());
        let _ = write!(
            out,
            " {} {} {} {}ms",
            dash(keep("RequestCount"), Some(r.count.to_string())),
            quoted(keep("RouterName"), r.router.as_deref()),
            quoted(keep("ServiceURL"), upstream.as_deref()),
            r.duration.as_millis(),
        );
    }
    out.push('\n');
    out
}

/// `02/Jan/2006:15:04:05 +0000`, in UTC.
fn clf_time(t: SystemTime) -> String {
    // `YYYY-MM-DDTHH:MM:SSZ`
    let iso = humantime::format_rfc3339_seconds(t).to_string();
    let (date, time) = iso.split_once('T').unwrap_or((&iso, "00:00:00Z"));
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (
        parts.next().unwrap_or("0000"),
        parts.next().unwrap_or("01"),
        parts.next().unwrap_or("01"),
    );
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = m
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .unwrap_or(&"Jan");
    format!("{d}/{month}/{y}:{} +0000", time.trim_end_matches('Z'))
}

fn nanos(d: Duration) -> Value {
    Value::from(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn status_line(code: u16) -> String {
    let reason = StatusCode::from_u16(code)
        .ok()
        .and_then(|c| c.canonical_reason())
        .unwrap_or("");
    format!("{code} {reason}")
}

/// The JSON object of a record: Traefik's field names, dropped fields left out,
/// headers as `request_<Name>` and `downstream_<Name>`.
pub fn json(r: &Record, s: &Settings) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |name: &str, v: Value| {
        if s.field(name) != Mode::Drop {
            m.insert(name.to_string(), v);
        }
    };
    let start = humantime::format_rfc3339_nanos(r.start).to_string();
    put("StartUTC", start.clone().into());
    put("StartLocal", start.into());
    put("Duration", nanos(r.duration));
    put("entryPointName", r.entrypoint.as_ref().into());
    if let Some(router) = &r.router {
        put("RouterName", router.as_ref().into());
    }
    if let Some(service) = &r.service {
        put("ServiceName", service.as_ref().into());
    }
    if let Some(u) = &r.upstream {
        put("ServiceURL", u.to_string().into());
        if let Some(a) = u.authority() {
            put("ServiceAddr", a.as_str().into());
        }
    }
    put("ClientAddr", r.client.to_string().into());
    put("ClientHost", r.client.ip().to_string().into());
    put("ClientPort", r.client.port().to_string().into());
    put("ClientUsername", "-".into());
    put("RequestAddr", r.host.clone().into());
    let (host, port) = split_host(&r.host);
    put("RequestHost", host.into());
    put("RequestPort", port.unwrap_or("-").into());
    put("RequestMethod", r.method.as_str().into());
    put("RequestPath", r.path.clone().into());
    put("RequestProtocol", r.protocol().into());
    put(
        "RequestScheme",
        if r.tls.is_some() { "https" } else { "http" }.into(),
    );
    put(
        "RequestLine",
        format!("{} {} {}", r.method, r.path, r.protocol()).into(),
    );
    put("RequestContentSize", r.request_size.into());
    if let Some(origin) = r.origin_duration {
        put("OriginDuration", nanos(origin));
        put("OriginContentSize", r.response_size.into());
        put("OriginStatus", r.status.into());
        put("OriginStatusLine", status_line(r.status).into());
        put("Overhead", nanos(r.duration.saturating_sub(origin)));
    } else {
        put("Overhead", nanos(r.duration));
    }
    put("DownstreamStatus", r.status.into());
    put("DownstreamStatusLine", status_line(r.status).into());
    put("DownstreamContentSize", r.response_size.into());
    put("RequestCount", r.count.into());
    put("RetryAttempts", r.retries.into());
    if let Some(tls) = &r.tls {
        put("TLSVersion", tls.version.into());
        put("TLSCipher", tls.cipher.into());
    }
    m.insert("level".into(), "info".into());
    m.insert("msg".into(), "".into());
    m.insert(
        "time".into(),
        humantime::format_rfc3339_seconds(r.start)
            .to_string()
            .into(),
    );
    if let Some(h) = &r.request_headers {
        headers(&mut m, "request_", h, s);
    }
    if let Some(h) = &r.response_headers {
        headers(&mut m, "downstream_", h, s);
    }
    m
}

fn headers(m: &mut Map<String, Value>, prefix: &str, h: &HeaderMap, s: &Settings) {
    for name in h.keys() {
        let (shown, mode) = s.header(name.as_str());
        let value = match mode {
            Mode::Drop => continue,
            Mode::Redact => "REDACTED".to_string(),
            Mode::Keep => h
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(","),
        };
        m.insert(format!("{prefix}{shown}"), value.into());
    }
}

/// `host:port` -> (`host`, `port`); IPv6 literals keep their brackets off.
fn split_host(addr: &str) -> (&str, Option<&str>) {
    if let Some(rest) = addr.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => (addr, None),
        };
    }
    match addr.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => (h, Some(p)),
        _ => (addr, None),
    }
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
