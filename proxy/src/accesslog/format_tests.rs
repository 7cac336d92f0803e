//! Formatting, filters and field modes of the access log.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Method, Version};

use super::*;
use crate::accesslog::settings::AccessLogError;
use crate::config::static_config::{
    AccessLog, AccessLogFields, AccessLogFilters, AccessLogHeaders,
};
use crate::config::GoDuration;

fn record() -> Record {
    let mut req = HeaderMap::new();
    req.insert("user-agent", HeaderValue::from_static("curl/8"));
    req.insert("authorization", HeaderValue::from_static("Basic secret"));
    req.insert("x-trace", HeaderValue::from_static("abc"));
    let mut resp = HeaderMap::new();
    resp.insert("content-type", HeaderValue::from_static("text/plain"));
    Record {
        // 2024-03-05T06:07:08.5Z
        start: UNIX_EPOCH + Duration::from_millis(1_709_618_828_500),
        duration: Duration::from_micros(12_345),
        entrypoint: "web".into(),
        router: Some("app@file".into()),
        service: Some("app@file".into()),
        upstream: Some("http://10.0.0.2:8080".parse().unwrap()),
        origin_duration: Some(Duration::from_micros(10_000)),
        client: "192.0.2.7:51000".parse().unwrap(),
        host: "app.test:8000".into(),
        method: Method::GET,
        path: "/a?b=1".into(),
        version: Version::HTTP_11,
        tls: None,
        request_size: 0,
        status: 200,
        response_size: 42,
        retries: 1,
        request_headers: Some(req),
        response_headers: Some(resp),
        referer: None,
        user_agent: Some("curl/8".into()),
        count: 7,
    }
}

fn settings(cfg: AccessLog) -> Settings {
    Settings::new(&cfg).unwrap()
}

#[test]
fn common_format_matches_traefik() {
    let s = settings(AccessLog::default());
    assert_eq!(
        line(&record(), &s),
        "192.0.2.7 - - [05/Mar/2024:06:07:08 +0000] \"GET /a?b=1 HTTP/1.1\" 200 42 \"-\" \"curl/8\" 7 \"app@file\" \"http://10.0.0.2:8080/\" 12ms\n"
    );
    let generic = settings(AccessLog {
        format: Some("genericCLF".into()),
        ..AccessLog::default()
    });
    assert_eq!(
        line(&record(), &generic),
        "192.0.2.7 - - [05/Mar/2024:06:07:08 +0000] \"GET /a?b=1 HTTP/1.1\" 200 42 \"-\" \"curl/8\"\n"
    );
    let mut unrouted = record();
    unrouted.router = None;
    unrouted.upstream = None;
    unrouted.status = 404;
    assert!(line(&unrouted, &s).ends_with(" 404 42 \"-\" \"curl/8\" 7 \"-\" \"-\" 12ms\n"));
}

#[test]
fn json_uses_traefik_field_names() {
    let s = settings(AccessLog {
        format: Some("json".into()),
        ..AccessLog::default()
    });
    let text = line(&record(), &s);
    assert!(text.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["StartUTC"], "2024-03-05T06:07:08.500000000Z");
    assert_eq!(v["Duration"], 12_345_000);
    assert_eq!(v["OriginDuration"], 10_000_000);
    assert_eq!(v["Overhead"], 2_345_000);
    assert_eq!(v["RouterName"], "app@file");
    assert_eq!(v["ServiceName"], "app@file");
    assert_eq!(v["ServiceURL"], "http://10.0.0.2:8080/");
    assert_eq!(v["ServiceAddr"], "10.0.0.2:8080");
    assert_eq!(v["ClientHost"], "192.0.2.7");
    assert_eq!(v["ClientPort"], "51000");
    assert_eq!(v["RequestHost"], "app.test");
    assert_eq!(v["RequestPort"], "8000");
    assert_eq!(v["RequestMethod"], "GET");
    assert_eq!(v["RequestPath"], "/a?b=1");
    assert_eq!(v["RequestProtocol"], "HTTP/1.1");
    assert_eq!(v["RequestLine"], "GET /a?b=1 HTTP/1.1");
    assert_eq!(v["DownstreamStatus"], 200);
    assert_eq!(v["DownstreamContentSize"], 42);
    assert_eq!(v["RetryAttempts"], 1);
    assert_eq!(v["RequestCount"], 7);
    assert_eq!(v["entryPointName"], "web");
    assert!(
        v.get("request_User-Agent").is_none(),
        "headers are dropped by default"
    );
}

#[test]
fn field_and_header_modes() {
    let s = settings(AccessLog {
        format: Some("json".into()),
        fields: Some(AccessLogFields {
            default_mode: Some("drop".into()),
            names: BTreeMap::from([("ClientHost".into(), "keep".into())]),
            headers: Some(AccessLogHeaders {
                default_mode: Some("keep".into()),
                names: BTreeMap::from([
                    ("Authorization".into(), "redact".into()),
                    ("X-Trace".into(), "drop".into()),
                ]),
            }),
        }),
        ..AccessLog::default()
    });
    let v = json(&record(), &s);
    assert_eq!(v["ClientHost"], "192.0.2.7");
    assert!(v.get("RouterName").is_none());
    assert!(v.get("Duration").is_none());
    assert_eq!(v["request_User-Agent"], "curl/8");
    assert_eq!(v["request_Authorization"], "REDACTED");
    assert!(v.get("request_X-Trace").is_none());
    assert_eq!(v["downstream_Content-Type"], "text/plain");

    // In the common format, a dropped field is a dash.
    let common = settings(AccessLog {
        fields: Some(AccessLogFields {
            names: BTreeMap::from([("ClientHost".into(), "drop".into())]),
            ..AccessLogFields::default()
        }),
        ..AccessLog::default()
    });
    assert!(line(&record(), &common).starts_with("- - - ["));
}

#[test]
fn filters_keep_a_request_that_passes_any_of_them() {
    let all = settings(AccessLog::default());
    assert!(all.keep(200, 0, Duration::ZERO));
    let s = settings(AccessLog {
        filters: Some(AccessLogFilters {
            status_codes: vec!["404".into(), "500-599".into()],
            retry_attempts: true,
            min_duration: Some(GoDuration(Duration::from_millis(100))),
        }),
        ..AccessLog::default()
    });
    assert!(s.keep(404, 0, Duration::ZERO));
    assert!(s.keep(503, 0, Duration::ZERO));
    assert!(!s.keep(200, 0, Duration::ZERO));
    assert!(!s.keep(403, 0, Duration::from_millis(100)));
    assert!(s.keep(200, 1, Duration::ZERO));
    assert!(s.keep(200, 0, Duration::from_millis(101)));
}

#[test]
fn bad_settings_name_the_setting() {
    let err = |cfg: AccessLog| match Settings::new(&cfg) {
        Err(e @ AccessLogError::Invalid { .. }) => e.to_string(),
        other => panic!("expected an error, got {other:?}"),
    };
    let e = err(AccessLog {
        format: Some("xml".into()),
        ..AccessLog::default()
    });
    assert!(e.contains("accessLog.format") && e.contains("xml"), "{e}");
    let e = err(AccessLog {
        filters: Some(AccessLogFilters {
            status_codes: vec!["500-400".into()],
            ..AccessLogFilters::default()
        }),
        ..AccessLog::default()
    });
    assert!(
        e.contains("accessLog.filters.statusCodes") && e.contains("500-400"),
        "{e}"
    );
    let e = err(AccessLog {
        fields: Some(AccessLogFields {
            names: BTreeMap::from([("ClientHost".into(), "redact".into())]),
            ..AccessLogFields::default()
        }),
        ..AccessLog::default()
    });
    assert!(e.contains("accessLog.fields.names.ClientHost"), "{e}");
}

#[test]
fn header_names_are_written_as_go_writes_them() {
    assert_eq!(
        crate::accesslog::settings::canonical_header("x-forwarded-for"),
        "X-Forwarded-For"
    );
    assert_eq!(split_host("[::1]:80"), ("::1", Some("80")));
    assert_eq!(split_host("a.test"), ("a.test", None));
}
