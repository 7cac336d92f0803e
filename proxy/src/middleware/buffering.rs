//! `buffering`: reads the request body before forwarding it, refusing one over
//! `maxRequestBodyBytes` with 413, and with `maxResponseBodyBytes` reads the
//! response the same way (500 when over). Bodies are held in memory: with a
//! maximum, up to that maximum; without one, the first `memRequestBodyBytes` are
//! read ahead and the rest is streamed (Traefik spills to disk instead).
//! `retryExpression` is refused: retries are the `retry` middleware's job.

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyStream, StreamBody};
use serde::Deserialize;
use serde_json::Value;

use super::handler::{forward, status_response, Handler, HttpLayer, ResponseFuture};
use super::{parse, Built, HttpService, MiddlewareError};
use crate::body::{self, Body};

const KIND: &str = "buffering";
/// Traefik's default `memRequestBodyBytes`.
const DEFAULT_MEM: i64 = 1 << 20;

/// `buffering` options.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Options {
    #[serde(rename = "maxRequestBodyBytes")]
    max_request_body_bytes: i64,
    #[serde(rename = "memRequestBodyBytes")]
    mem_request_body_bytes: i64,
    #[serde(rename = "maxResponseBodyBytes")]
    max_response_body_bytes: i64,
    #[serde(rename = "memResponseBodyBytes")]
    mem_response_body_bytes: i64,
    #[serde(rename = "retryExpression")]
    retry_expression: String,
}

/// Builds a `buffering` middleware.
pub fn build(opts: &Value) -> Result<Built, MiddlewareError> {
    let o: Options = parse(KIND, opts)?;
    if !o.retry_expression.trim().is_empty() {
        return Err(MiddlewareError::invalid(
            KIND,
            "retryExpression",
            "is not supported; use the retry middleware",
        ));
    }
    let size = |v: i64, option: &'static str| {
        usize::try_from(v)
            .map_err(|_| MiddlewareError::invalid(KIND, option, "must not be negative"))
    };
    let max_request = size(o.max_request_body_bytes, "maxRequestBodyBytes")?;
    let mem_request = size(o.mem_request_body_bytes, "memRequestBodyBytes")?;
    let max_response = size(o.max_response_body_bytes, "maxResponseBodyBytes")?;
    size(o.mem_response_body_bytes, "memResponseBodyBytes")?;
    Ok(Built::Http(HttpLayer::new(Buffering {
        max_request,
        read_ahead: if mem_request == 0 {
            DEFAULT_MEM as usize
        } else {
            mem_request
        },
        max_response,
    })))
}

struct Buffering {
    /// 0: no limit.
    max_request: usize,
    /// Without a limit, how much of the request is read before forwarding.
    read_ahead: usize,
    /// 0: the response is streamed.
    max_response: usize,
}

impl Handler for Buffering {
    fn handle(&self, req: Request<Body>, next: &mut HttpService) -> ResponseFuture {
        let (max_request, read_ahead, max_response) =
            (self.max_request, self.read_ahead, self.max_response);
        if max_request > 0 && declared_length(req.headers()).is_some_and(|n| n > max_request as u64)
        {
            let resp = status_response(StatusCode::PAYLOAD_TOO_LARGE);
            return Box::pin(async move { resp });
        }
        let mut next = next.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let body = if max_request > 0 {
                match collect(body, max_request).await {
                    Ok(bytes) => {
                        set_length(&mut parts.headers, bytes.len());
                        body::full(bytes)
                    }
                    Err(Overflow::TooLarge) => {
                        return status_response(StatusCode::PAYLOAD_TOO_LARGE)
                    }
                    Err(Overflow::Failed) => return status_response(StatusCode::BAD_REQUEST),
                }
            } else {
                match read_ahead_body(body, read_ahead).await {
                    Some(b) => b,
                    None => return status_response(StatusCode::BAD_REQUEST),
                }
            };
            let resp = forward(Request::from_parts(parts, body), &mut next).await;
            if max_response == 0 {
                return resp;
            }
            let (mut parts, body) = resp.into_parts();
            match collect(body, max_response).await {
                Ok(bytes) => {
                    set_length(&mut parts.headers, bytes.len());
                    Response::from_parts(parts, body::full(bytes))
                }
                Err(Overflow::TooLarge) => {
                    tracing::debug!("buffering: response over maxResponseBodyBytes");
                    status_response(StatusCode::INTERNAL_SERVER_ERROR)
                }
                Err(Overflow::Failed) => status_response(StatusCode::BAD_GATEWAY),
            }
        })
    }
}

/// Why a body could not be read whole.
enum Overflow {
    /// It is longer than the limit.
    TooLarge,
    /// Reading it failed.
    Failed,
}

/// Reads a whole body of at most `max` bytes.
async fn collect(body: Body, max: usize) -> Result<Bytes, Overflow> {
    let mut stream = BodyStream::new(body);
    let mut out = Vec::new();
    while let Some(frame) = stream.next().await {
        let frame = frame.map_err(|_| Overflow::Failed)?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > max {
                return Err(Overflow::TooLarge);
            }
            out.extend_from_slice(data);
        }
    }
    Ok(Bytes::from(out))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn set_length(headers: &mut HeaderMap, len: usize) {
    headers.remove(header::TRANSFER_ENCODING);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
}

/// Reads up to `limit` bytes of `body`; returns a body with what was read
/// followed by the rest, still streamed. `None` when reading fails.
async fn read_ahead_body(body: Body, limit: usize) -> Option<Body> {
    let mut stream = BodyStream::new(body);
    let mut read = Vec::new();
    let mut size = 0;
    while size <= limit {
        match stream.next().await {
            None => {
                let all: Vec<Bytes> = read
                    .into_iter()
                    .filter_map(|f: http_body::Frame<Bytes>| f.into_data().ok())
                    .collect();
                return Some(body::full(all.concat()));
            }
            Some(Ok(frame)) => {
                size += frame.data_ref().map_or(0, Bytes::len);
                read.push(frame);
            }
            Some(Err(_)) => return None,
        }
    }
    let head = futures_util::stream::iter(read.into_iter().map(Ok));
    Some(body::boxed(StreamBody::new(head.chain(stream))))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use serde_json::json;
    use tower::Service;

    use super::super::handler::testing::{backend, request, run, text};
    use super::*;

    fn layer(v: Value) -> HttpLayer {
        match build(&v) {
            Ok(Built::Http(l)) => l,
            other => panic!("{other:?}"),
        }
    }

    /// A request whose body comes in chunks, without Content-Length.
    fn chunked(chunks: &[&'static str]) -> Request<Body> {
        let mut req = request("POST", "/", "192.0.2.1");
        let frames: Vec<Result<http_body::Frame<Bytes>, crate::body::BoxError>> = chunks
            .iter()
            .map(|c| Ok(http_body::Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect();
        *req.body_mut() = body::boxed(StreamBody::new(futures_util::stream::iter(frames)));
        req
    }

    #[tokio::test]
    async fn request_bodies_over_the_limit_get_413() {
        let l = layer(json!({"maxRequestBodyBytes": "10"}));
        let (inner, seen) = backend(&[]);
        let resp = run(&l, inner.clone(), chunked(&["12345", "678"])).await;
        assert_eq!(resp.status(), 200);
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen[0].body, "12345678");
            assert_eq!(seen[0].headers[header::CONTENT_LENGTH], "8");
        }
        let resp = run(&l, inner.clone(), chunked(&["123456", "789012"])).await;
        assert_eq!(resp.status(), 413);
        let mut req = request("POST", "/", "192.0.2.1");
        req.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(11));
        assert_eq!(run(&l, inner, req).await.status(), 413);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn without_a_limit_large_bodies_stream_through() {
        let l = layer(json!({"memRequestBodyBytes": 4}));
        let (inner, seen) = backend(&[]);
        let resp = run(&l, inner.clone(), chunked(&["abc", "def", "ghi"])).await;
        assert_eq!(resp.status(), 200);
        let resp = run(&l, inner, chunked(&["ab"])).await;
        assert_eq!(resp.status(), 200);
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].body, "abcdefghi");
        assert_eq!(seen[1].body, "ab");
    }

    #[tokio::test]
    async fn response_bodies_over_the_limit_get_500() {
        let big = HttpService::new(tower::service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(body::full("0123456789abcdef")))
        }));
        let l = layer(json!({"maxResponseBodyBytes": 8}));
        let resp = run(&l, big.clone(), request("GET", "/", "192.0.2.1")).await;
        assert_eq!(resp.status(), 500);
        let l = layer(json!({"maxResponseBodyBytes": 16}));
        let mut svc = l.wrap(big);
        let resp = svc.call(request("GET", "/", "192.0.2.1")).await.unwrap();
        assert_eq!(resp.headers()[header::CONTENT_LENGTH], "16");
        assert_eq!(text(resp).await, "0123456789abcdef");
    }

    #[test]
    fn retry_expression_and_negative_sizes_are_refused() {
        let e =
            build(&json!({"retryExpression": "IsNetworkError() && Attempts() < 2"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "buffering.retryExpression: is not supported; use the retry middleware"
        );
        let e = build(&json!({"maxRequestBodyBytes": -1})).unwrap_err();
        assert!(
            e.to_string().starts_with("buffering.maxRequestBodyBytes"),
            "{e}"
        );
    }
}
