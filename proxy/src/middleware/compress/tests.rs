use std::convert::Infallible;

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
use bytes::Bytes;
use futures_util::stream;
use http::{header, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tower::ServiceExt;

use super::*;
use crate::body::{self as bodies, BoxError};

fn text(n: usize) -> String {
    "wharf compresses text. ".repeat(n / 23 + 1)[..n].to_string()
}

/// An upstream whose response depends on the path.
fn upstream() -> HttpService {
    HttpService::new(tower::service_fn(|req: Request<Body>| async move {
        let mut resp = match req.uri().path() {
            "/small" => Response::new(bodies::full(text(100))),
            "/stream" | "/stream-small" => {
                let chunks = if req.uri().path() == "/stream" { 10 } else { 2 };
                let frames = stream::iter(
                    (0..chunks).map(|_| Ok::<_, BoxError>(Frame::data(Bytes::from(text(300))))),
                );
                Response::new(bodies::boxed(StreamBody::new(frames)))
            }
            _ => Response::new(bodies::full(text(4000))),
        };
        let ct = match req.uri().path() {
            "/image" => "image/png",
            "/grpc" => "application/grpc",
            "/json" => "application/json; charset=utf-8",
            _ => "text/html; charset=utf-8",
        };
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, ct.parse().unwrap());
        if req.uri().path() == "/encoded" {
            resp.headers_mut()
                .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        }
        if req.uri().path() == "/nocontent" {
            *resp.status_mut() = StatusCode::NO_CONTENT;
        }
        Ok::<_, Infallible>(resp)
    }))
}

struct Got {
    encoding: Option<String>,
    vary: Option<String>,
    length: Option<String>,
    body: Vec<u8>,
}

async fn send(opts: Value, method: Method, path: &str, ae: Option<&str>) -> Got {
    let svc = layer(&opts).unwrap().wrap(upstream());
    let mut req = Request::builder().method(method).uri(path);
    if let Some(ae) = ae {
        req = req.header(header::ACCEPT_ENCODING, ae);
    }
    let resp = svc
        .oneshot(req.body(bodies::empty()).unwrap())
        .await
        .unwrap();
    let h = |n: header::HeaderName| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (encoding, vary, length) = (
        h(header::CONTENT_ENCODING),
        h(header::VARY),
        h(header::CONTENT_LENGTH),
    );
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Got {
        encoding,
        vary,
        length,
        body,
    }
}

async fn get(path: &str, ae: Option<&str>) -> Got {
    send(json!({}), Method::GET, path, ae).await
}

async fn decode(encoding: &str, data: &[u8]) -> String {
    let mut out = String::new();
    match encoding {
        "gzip" => GzipDecoder::new(data).read_to_string(&mut out).await,
        "br" => BrotliDecoder::new(data).read_to_string(&mut out).await,
        "zstd" => ZstdDecoder::new(data).read_to_string(&mut out).await,
        other => panic!("unexpected encoding {other}"),
    }
    .unwrap();
    out
}

#[tokio::test]
async fn each_encoding_round_trips() {
    for (ae, want) in [("gzip", "gzip"), ("gzip, br", "br"), ("br, zstd", "zstd")] {
        let got = get("/big", Some(ae)).await;
        assert_eq!(got.encoding.as_deref(), Some(want), "{ae}");
        assert_eq!(got.vary.as_deref(), Some("Accept-Encoding"));
        assert_eq!(got.length, None);
        assert!(got.body.len() < 4000);
        assert_eq!(decode(want, &got.body).await, text(4000));
    }
}

#[tokio::test]
async fn small_bodies_are_sent_as_they_are() {
    let got = get("/small", Some("gzip")).await;
    assert_eq!(got.encoding, None);
    assert_eq!(got.vary.as_deref(), Some("Accept-Encoding"));
    assert_eq!(got.body, text(100).as_bytes());
    let got = get("/stream-small", Some("gzip")).await;
    assert_eq!(got.encoding, None);
    assert_eq!(got.body, text(300).repeat(2).as_bytes());
    let got = send(
        json!({"minResponseBodyBytes": "50"}),
        Method::GET,
        "/small",
        Some("gzip"),
    )
    .await;
    assert_eq!(got.encoding.as_deref(), Some("gzip"));
}

#[tokio::test]
async fn streamed_bodies_of_unknown_length_are_compressed() {
    let got = get("/stream", Some("gzip")).await;
    assert_eq!(got.encoding.as_deref(), Some("gzip"));
    assert_eq!(decode("gzip", &got.body).await, text(300).repeat(10));
}

#[tokio::test]
async fn encoded_excluded_and_bodiless_responses_are_left_alone() {
    assert_eq!(
        get("/encoded", Some("gzip")).await.encoding.as_deref(),
        Some("gzip")
    );
    assert_eq!(
        get("/encoded", Some("gzip")).await.body,
        text(4000).as_bytes()
    );
    assert_eq!(get("/grpc", Some("gzip")).await.encoding, None);
    assert_eq!(get("/nocontent", Some("gzip")).await.encoding, None);
    let excluded = json!({"excludedContentTypes": "image/png,application/json"});
    assert_eq!(
        send(excluded.clone(), Method::GET, "/image", Some("gzip"))
            .await
            .encoding,
        None
    );
    assert_eq!(
        send(excluded.clone(), Method::GET, "/json", Some("gzip"))
            .await
            .encoding,
        None
    );
    assert!(send(excluded, Method::GET, "/big", Some("gzip"))
        .await
        .encoding
        .is_some());
    let included = json!({"includedContentTypes": ["application/json"]});
    assert_eq!(
        send(included.clone(), Method::GET, "/big", Some("gzip"))
            .await
            .encoding,
        None
    );
    assert!(send(included, Method::GET, "/json", Some("gzip"))
        .await
        .encoding
        .is_some());
    assert_eq!(
        send(json!({}), Method::HEAD, "/big", Some("gzip"))
            .await
            .encoding,
        None
    );
}

#[tokio::test]
async fn without_accept_encoding_only_a_default_encoding_compresses() {
    let got = get("/big", None).await;
    assert_eq!((got.encoding, got.vary), (None, None));
    let got = send(
        json!({"defaultEncoding": "gzip"}),
        Method::GET,
        "/big",
        None,
    )
    .await;
    assert_eq!(got.encoding.as_deref(), Some("gzip"));
    let got = send(
        json!({"encodings": "gzip"}),
        Method::GET,
        "/big",
        Some("br, zstd"),
    )
    .await;
    assert_eq!(got.encoding, None);
    let got = send(
        json!({"encodings": ["gzip", "br"]}),
        Method::GET,
        "/big",
        Some("*"),
    )
    .await;
    assert_eq!(got.encoding.as_deref(), Some("br"));
}

#[test]
fn bad_options_are_reported() {
    for bad in [
        json!({"excludedContentTypes": ["text/html"], "includedContentTypes": ["text/css"]}),
        json!({"encodings": ["deflate"]}),
        json!({"encodings": []}),
        json!({"encodings": ["gzip"], "defaultEncoding": "br"}),
        json!({"excludedContentTypes": ["html"]}),
    ] {
        assert!(
            matches!(layer(&bad), Err(MiddlewareError::Message(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        layer(&json!({"minResponseBodyBytes": "lots"})),
        Err(MiddlewareError::Options { .. })
    ));
    assert!(layer(&json!("true")).is_ok(), "compress=true from a label");
}
