//! Deciding whether a response is compressed, and compressing it as a stream.

use std::io;
use std::pin::Pin;

use async_compression::tokio::bufread::{BrotliEncoder, GzipEncoder, ZstdEncoder};
use async_compression::Level;
use bytes::{Bytes, BytesMut};
use futures_util::{stream, StreamExt, TryStreamExt};
use http::{header, HeaderValue, Response, StatusCode};
use http_body::{Body as _, Frame};
use http_body_util::{BodyExt, StreamBody};
use tokio::io::AsyncRead;
use tokio_util::io::{ReaderStream, StreamReader};

use super::media::MediaType;
use super::negotiate::Encoding;
use super::Config;
use crate::body::{self, Body, BoxError};

/// Brotli's quality: the library's default (11) is far too slow for a proxy;
/// 6 is what Traefik's brotli writer uses by default.
const BROTLI_QUALITY: i32 = 6;

/// Compresses `resp` with `encoding` when Traefik would: the response is not
/// encoded already, its type is allowed and its body reaches `minResponseBodyBytes`.
/// A body of unknown length is read until that size (or its end) before deciding.
pub(super) async fn compress(
    mut resp: Response<Body>,
    encoding: Encoding,
    config: &Config,
) -> Response<Body> {
    add_vary(resp.headers_mut());
    if !eligible(&resp, config) {
        return resp;
    }
    let known = resp.body().size_hint().exact().or_else(|| {
        resp.headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    });
    let (parts, mut body) = resp.into_parts();
    let prefix = match known {
        Some(n) if n < config.min_size as u64 => return Response::from_parts(parts, body),
        Some(_) => Bytes::new(),
        None => {
            let mut buf = BytesMut::new();
            while buf.len() < config.min_size {
                match body.frame().await {
                    None => {
                        return Response::from_parts(parts, body::full(buf.freeze()));
                    }
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => buf.extend_from_slice(&data),
                        Err(trailers) => {
                            // Trailers cannot follow a compressed body: pass as is.
                            let frames = stream::iter([
                                Ok::<_, BoxError>(Frame::data(buf.freeze())),
                                Ok(trailers),
                            ]);
                            return Response::from_parts(
                                parts,
                                body::boxed(StreamBody::new(frames)),
                            );
                        }
                    },
                    Some(Err(e)) => {
                        let frames =
                            stream::iter([Ok(Frame::data(buf.freeze())), Err::<_, BoxError>(e)]);
                        return Response::from_parts(parts, body::boxed(StreamBody::new(frames)));
                    }
                }
            }
            buf.freeze()
        }
    };
    let mut resp = Response::from_parts(parts, encode(encoding, prefix, body));
    let headers = resp.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(encoding.as_str()),
    );
    resp
}

/// Adds `Vary: Accept-Encoding` unless a Vary value names it already.
fn add_vary(headers: &mut http::HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding") || v.trim() == "*");
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// Everything but the size: status, existing encoding, content type.
fn eligible(resp: &Response<Body>, config: &Config) -> bool {
    let status = resp.status();
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status == StatusCode::PARTIAL_CONTENT
    {
        return false;
    }
    if resp
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().is_empty())
    {
        return false;
    }
    let Some(ct) = resp.headers().get(header::CONTENT_TYPE) else {
        return true;
    };
    let Some(ct) = ct.to_str().ok().and_then(|v| MediaType::parse(v).ok()) else {
        return false;
    };
    if !config.included.is_empty() {
        return config.included.iter().any(|m| m.matches(&ct));
    }
    !config.excluded.iter().any(|m| m.matches(&ct))
}

/// The compressed stream of `prefix` followed by the rest of `body`.
fn encode(encoding: Encoding, prefix: Bytes, body: Body) -> Body {
    let data = stream::iter((!prefix.is_empty()).then_some(Ok(prefix)))
        .chain(body.into_data_stream().map_err(io::Error::other));
    let reader = StreamReader::new(data);
    let encoder: Pin<Box<dyn AsyncRead + Send>> = match encoding {
        Encoding::Gzip => Box::pin(GzipEncoder::new(reader)),
        Encoding::Br => Box::pin(BrotliEncoder::with_quality(
            reader,
            Level::Precise(BROTLI_QUALITY),
        )),
        Encoding::Zstd => Box::pin(ZstdEncoder::new(reader)),
    };
    let frames = ReaderStream::new(encoder)
        .map_ok(Frame::data)
        .map_err(BoxError::from);
    body::boxed(StreamBody::new(frames))
}
