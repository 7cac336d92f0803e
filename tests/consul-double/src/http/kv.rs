//! `/v1/kv/<key>`: GET (single, `?recurse`, `?keys`, `?raw`, blocking), PUT (`?flags`,
//! `?cas`, `?acquire`, `?release`) and DELETE (`?recurse`, `?cas`), as Consul's
//! `kvs_endpoint.go` answers them.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use super::{blocking, empty, json, set_meta, ApiError, Body, Call, QueryMeta, ReadOptions};
use crate::state::{DeleteOp, DirEntry, PutOp};

/// Where Consul's 413 message points for the value size limit.
const KV_MAX_VALUE_SIZE_DOCS: &str =
    "https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size";

/// One entry as Consul's JSON has it (field order of `structs.DirEntry`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EntryJson<'a> {
    lock_index: u64,
    key: &'a str,
    flags: u64,
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    create_index: u64,
    modify_index: u64,
}

impl<'a> From<&'a DirEntry> for EntryJson<'a> {
    fn from(entry: &'a DirEntry) -> Self {
        EntryJson {
            lock_index: entry.lock_index,
            key: &entry.key,
            flags: entry.flags,
            value: (!entry.value.is_empty())
                .then(|| base64::engine::general_purpose::STANDARD.encode(&entry.value)),
            session: entry.session.as_deref(),
            create_index: entry.create_index,
            modify_index: entry.modify_index,
        }
    }
}

/// Dispatches on the method (the router already allowed only GET, PUT and DELETE).
pub async fn handle(call: Call) -> Result<Response<Body>, ApiError> {
    match call.method {
        Method::GET if call.query.has("keys") => keys(call).await,
        Method::GET => get(call).await,
        Method::PUT => put(call).await,
        _ => delete(call),
    }
}

fn missing_key() -> ApiError {
    ApiError::bad_request("Missing key name")
}

async fn get(call: Call) -> Result<Response<Body>, ApiError> {
    let opts = ReadOptions::parse(&call.query)?;
    let key = call.rest.as_str();
    if call.query.has("recurse") {
        let (index, entries) = blocking(&call.state, opts, |s| s.kv_list(key)).await;
        let meta = QueryMeta {
            index,
            consistency: opts.consistency,
        };
        if entries.is_empty() {
            return Ok(empty(StatusCode::NOT_FOUND, meta));
        }
        let body: Vec<EntryJson<'_>> = entries.iter().map(EntryJson::from).collect();
        return Ok(json(StatusCode::OK, &body, Some(meta)));
    }
    if key.is_empty() {
        return Err(missing_key());
    }
    let (index, entry) = blocking(&call.state, opts, |s| s.kv_get(key)).await;
    let meta = QueryMeta {
        index,
        consistency: opts.consistency,
    };
    let Some(entry) = entry else {
        return Ok(empty(StatusCode::NOT_FOUND, meta));
    };
    if call.query.has("raw") {
        return Ok(raw(entry.value, meta));
    }
    Ok(json(StatusCode::OK, &[EntryJson::from(&entry)], Some(meta)))
}

/// The bare value, typed the way Go's `http.DetectContentType` would for plain bytes.
fn raw(value: Vec<u8>, meta: QueryMeta) -> Response<Body> {
    let binary = value
        .iter()
        .take(512)
        .any(|b| matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F));
    let content_type = if binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    };
    let length = value.len();
    let mut response = Response::new(Full::new(Bytes::from(value)));
    set_meta(&mut response, meta);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}

async fn keys(call: Call) -> Result<Response<Body>, ApiError> {
    let opts = ReadOptions::parse(&call.query)?;
    let prefix = call.rest.as_str();
    // Consul still honours its historical misspelling; the right one wins.
    let separator = call
        .query
        .get("separator")
        .or_else(|| call.query.get("seperator"))
        .unwrap_or("");
    let (index, keys) = blocking(&call.state, opts, |s| s.kv_keys(prefix, separator)).await;
    let meta = QueryMeta {
        index,
        consistency: opts.consistency,
    };
    if keys.is_empty() && !prefix.is_empty() {
        return Ok(empty(StatusCode::NOT_FOUND, meta));
    }
    Ok(json(StatusCode::OK, &keys, Some(meta)))
}

async fn put(call: Call) -> Result<Response<Body>, ApiError> {
    if call.rest.is_empty() {
        return Err(missing_key());
    }
    call.query
        .reject_conflicts(&["cas", "acquire", "release"])?;
    let flags = call.query.uint("flags")?.unwrap_or(0);
    let mut op = PutOp::Set;
    if let Some(cas) = call.query.uint("cas")? {
        op = PutOp::Cas(cas);
    }
    if call.query.has("acquire") {
        op = PutOp::Acquire(call.query.value("acquire").to_owned());
    }
    if call.query.has("release") {
        op = PutOp::Release(call.query.value("release").to_owned());
    }
    let max = call.settings.kv_max_value_size;
    let too_large = |length: u64| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Request body({length} bytes) too large, max size: {max} bytes. See {KV_MAX_VALUE_SIZE_DOCS}."
            ),
        )
    };
    if let Some(length) = call.content_length.filter(|l| *l > max as u64) {
        return Err(too_large(length));
    }
    let state = call.state.clone();
    let key = call.rest.clone();
    let value = call.body().await?;
    if value.len() > max {
        return Err(too_large(value.len() as u64));
    }
    let done = state.with_store(|s, now| s.kv_put(op, &key, value.to_vec(), flags, now))?;
    Ok(json(StatusCode::OK, &done, None))
}

fn delete(call: Call) -> Result<Response<Body>, ApiError> {
    call.query.reject_conflicts(&["recurse", "cas"])?;
    let mut op = if call.query.has("recurse") {
        DeleteOp::Tree
    } else if call.rest.is_empty() {
        return Err(missing_key());
    } else {
        DeleteOp::Key
    };
    if let Some(cas) = call.query.uint("cas")? {
        op = DeleteOp::Cas(cas);
    }
    let done = call.state.with_store(|s, _| s.kv_delete(op, &call.rest));
    Ok(json(StatusCode::OK, &done, None))
}
