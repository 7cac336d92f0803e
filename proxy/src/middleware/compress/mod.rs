//! `compress`: compresses responses with zstd, brotli or gzip, chosen from the
//! request's `Accept-Encoding` (see [`negotiate`]) among `encodings`, when the
//! response is not encoded already, its `Content-Type` passes
//! `excludedContentTypes` / `includedContentTypes` (gRPC is never compressed) and
//! its body reaches `minResponseBodyBytes` (1024). Compression streams; only the
//! first `minResponseBodyBytes` of a body of unknown length are held back, to
//! decide. Responses to HEAD requests are left alone.

mod body;
mod media;
pub mod negotiate;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, Method, Request, Response};
use serde::Deserialize;
use serde_json::Value;

use super::shared::options;
use super::{HttpService, MiddlewareError, SharedLayer};
use crate::body::Body;
use media::MediaType;
use negotiate::{Encoding, DEFAULT_ENCODINGS};

/// Traefik's default `minResponseBodyBytes`.
const DEFAULT_MIN_SIZE: usize = 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    excluded_content_types: Vec<String>,
    #[serde(default)]
    included_content_types: Vec<String>,
    #[serde(default)]
    min_response_body_bytes: Option<i64>,
    #[serde(default)]
    encodings: Option<Vec<String>>,
    #[serde(default)]
    default_encoding: Option<String>,
}

/// The compress middleware's settings, shared by every router using it.
#[derive(Debug)]
struct Config {
    excluded: Vec<MediaType>,
    included: Vec<MediaType>,
    min_size: usize,
    encodings: Vec<Encoding>,
    default_encoding: Option<Encoding>,
}

fn media_types(list: &[String], option: &str) -> Result<Vec<MediaType>, MiddlewareError> {
    list.iter()
        .map(|s| {
            MediaType::parse(s)
                .map_err(|e| MiddlewareError::Message(format!("compress.{option}: {e}")))
        })
        .collect()
}

/// Builds the `compress` middleware from its options.
pub fn layer(opts: &Value) -> Result<SharedLayer, MiddlewareError> {
    let o: Options = options("compress", opts)?;
    if !o.excluded_content_types.is_empty() && !o.included_content_types.is_empty() {
        return Err(MiddlewareError::Message(
            "compress: excludedContentTypes and includedContentTypes are mutually exclusive".into(),
        ));
    }
    let mut excluded = media_types(&["application/grpc".into()], "excludedContentTypes")?;
    excluded.extend(media_types(
        &o.excluded_content_types,
        "excludedContentTypes",
    )?);
    let included = media_types(&o.included_content_types, "includedContentTypes")?;
    let min_size = match o.min_response_body_bytes {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => DEFAULT_MIN_SIZE,
    };
    let encodings = match &o.encodings {
        None => DEFAULT_ENCODINGS.to_vec(),
        Some(list) => list
            .iter()
            .map(|e| {
                Encoding::parse(e).ok_or_else(|| {
                    MiddlewareError::Message(format!(
                        "compress.encodings: unsupported encoding {e:?} (zstd, br and gzip are)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    if encodings.is_empty() {
        return Err(MiddlewareError::Message(
            "compress.encodings: at least one encoding must be given".into(),
        ));
    }
    let default_encoding = match o.default_encoding.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => match Encoding::parse(name) {
            Some(e) if encodings.contains(&e) => Some(e),
            _ => {
                return Err(MiddlewareError::Message(format!(
                    "compress.defaultEncoding: {name:?} is not one of the encodings"
                )))
            }
        },
    };
    let config = Arc::new(Config {
        excluded,
        included,
        min_size,
        encodings,
        default_encoding,
    });
    Ok(SharedLayer::new("compress", move |inner| {
        HttpService::new(Compress {
            config: config.clone(),
            inner,
        })
    }))
}

#[derive(Clone)]
struct Compress {
    config: Arc<Config>,
    inner: HttpService,
}

impl Compress {
    /// The encoding for `req`, or `None` to leave the response alone.
    fn encoding(&self, req: &Request<Body>) -> Option<Encoding> {
        if req.method() == Method::HEAD {
            return None;
        }
        let request_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| MediaType::parse(v).ok());
        if let Some(t) = request_type {
            if self
                .config
                .excluded
                .iter()
                .any(|m| m.essence() == t.essence())
            {
                return None;
            }
        }
        let values = req.headers().get_all(header::ACCEPT_ENCODING);
        if values.iter().next().is_none() {
            return self.config.default_encoding;
        }
        negotiate::choose(
            values.iter().filter_map(|v| v.to_str().ok()),
            &self.config.encodings,
            self.config.default_encoding,
        )
    }
}

impl tower::Service<Request<Body>> for Compress {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let encoding = self.encoding(&req);
        let mut inner = self.inner.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let resp = inner.call(req).await?;
            Ok(match encoding {
                Some(e) => body::compress(resp, e, &config).await,
                None => resp,
            })
        })
    }
}

#[cfg(test)]
mod tests;
