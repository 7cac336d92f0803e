//! `/v1/session/*`: create, renew, destroy, info, list and node, as Consul's
//! `session_endpoint.go` answers them, including its lenient JSON decoding of the body.

use std::time::Duration;

use http::{Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::{blocking, json, ApiError, Body, Call, QueryMeta, ReadOptions};
use crate::state::{ServiceCheck, Session, SessionSpec, TtlBounds, SERF_HEALTH};

/// Consul's default lock-delay.
const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);
/// A numeric lock-delay below this many nanoseconds is taken as seconds.
const LOCK_DELAY_MIN_THRESHOLD: u64 = 1_000;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SessionJson<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    name: &'a str,
    node: &'a str,
    lock_delay: u64,
    behavior: &'static str,
    #[serde(rename = "TTL")]
    ttl: &'a str,
    node_checks: Option<&'a [String]>,
    service_checks: Option<Vec<ServiceCheckJson<'a>>>,
    create_index: u64,
    modify_index: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceCheckJson<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    namespace: &'a str,
}

impl<'a> From<&'a Session> for SessionJson<'a> {
    fn from(s: &'a Session) -> Self {
        SessionJson {
            id: &s.id,
            name: &s.name,
            node: &s.node,
            lock_delay: u64::try_from(s.lock_delay.as_nanos()).unwrap_or(u64::MAX),
            behavior: s.behavior.as_str(),
            ttl: &s.ttl,
            node_checks: (!s.node_checks.is_empty()).then_some(s.node_checks.as_slice()),
            service_checks: (!s.service_checks.is_empty()).then(|| {
                s.service_checks
                    .iter()
                    .map(|c| ServiceCheckJson {
                        id: &c.id,
                        namespace: &c.namespace,
                    })
                    .collect()
            }),
            create_index: s.create_index,
            modify_index: s.modify_index,
        }
    }
}

#[derive(Serialize)]
struct CreatedJson {
    #[serde(rename = "ID")]
    id: String,
}

fn sessions_json(sessions: &[Session]) -> Vec<SessionJson<'_>> {
    sessions.iter().map(SessionJson::from).collect()
}

fn missing_session() -> ApiError {
    ApiError::bad_request("Missing session")
}

/// `PUT /v1/session/create`.
pub async fn create(call: Call) -> Result<Response<Body>, ApiError> {
    let state = call.state.clone();
    let settings = call.settings.clone();
    let body = call.body().await?;
    let spec = decode_spec(&body, &settings.node_name)?;
    let bounds = TtlBounds {
        min: settings.session_ttl_min,
    };
    let id = state.with_store(|s, now| s.session_create(spec, &settings.node_name, bounds, now))?;
    Ok(json(StatusCode::OK, &CreatedJson { id }, None))
}

/// `PUT /v1/session/renew/<id>`: 404 once the session is gone.
pub fn renew(call: Call) -> Result<Response<Body>, ApiError> {
    if call.rest.is_empty() {
        return Err(missing_session());
    }
    match call
        .state
        .with_store(|s, now| s.session_renew(&call.rest, now))
    {
        Some(session) => Ok(json(StatusCode::OK, &[SessionJson::from(&session)], None)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Session id '{}' not found", call.rest),
        )),
    }
}

/// `PUT /v1/session/destroy/<id>`: `true`, also for an unknown session.
pub fn destroy(call: Call) -> Result<Response<Body>, ApiError> {
    if call.rest.is_empty() {
        return Err(missing_session());
    }
    call.state
        .with_store(|s, now| s.session_destroy(&call.rest, now));
    Ok(json(StatusCode::OK, &true, None))
}

/// `GET /v1/session/info/<id>`: a one-element array, or `[]` when unknown.
pub async fn info(call: Call) -> Result<Response<Body>, ApiError> {
    let opts = ReadOptions::parse(&call.query)?;
    if call.rest.is_empty() {
        return Err(missing_session());
    }
    let (index, session) = blocking(&call.state, opts, |s| s.session_get(&call.rest)).await;
    let sessions: Vec<Session> = session.into_iter().collect();
    let meta = QueryMeta {
        index,
        consistency: opts.consistency,
    };
    Ok(json(StatusCode::OK, &sessions_json(&sessions), Some(meta)))
}

/// `GET /v1/session/list` and `GET /v1/session/node/<node>`.
pub async fn list(call: Call) -> Result<Response<Body>, ApiError> {
    let opts = ReadOptions::parse(&call.query)?;
    let node = (!call.rest.is_empty()).then_some(call.rest.as_str());
    let (index, sessions) = blocking(&call.state, opts, |s| s.session_list(node)).await;
    let meta = QueryMeta {
        index,
        consistency: opts.consistency,
    };
    Ok(json(StatusCode::OK, &sessions_json(&sessions), Some(meta)))
}

/// Decodes a create body the way Go's `encoding/json` fills `structs.Session`: field
/// names match case-insensitively, `null` leaves a string at its default and empties a
/// list, unknown fields are ignored.
fn decode_spec(body: &[u8], agent_node: &str) -> Result<SessionSpec, ApiError> {
    let mut spec = SessionSpec {
        name: String::new(),
        node: agent_node.to_owned(),
        lock_delay: DEFAULT_LOCK_DELAY,
        behavior: String::new(),
        ttl: String::new(),
        node_checks: vec![SERF_HEALTH.to_owned()],
        service_checks: Vec::new(),
    };
    let mut checks = vec![SERF_HEALTH.to_owned()];
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(spec);
    }
    let decode_failed =
        |reason: String| ApiError::bad_request(format!("Request decode failed: {reason}"));
    let value: Value = serde_json::from_slice(body).map_err(|e| decode_failed(e.to_string()))?;
    let Value::Object(fields) = value else {
        return Err(decode_failed(format!(
            "json: cannot unmarshal {} into Go value of type structs.Session",
            kind(&value)
        )));
    };
    for (name, value) in &fields {
        let field = Field { name, value };
        match name.to_ascii_lowercase().as_str() {
            "name" => field.string(&mut spec.name).map_err(decode_failed)?,
            "node" => field.string(&mut spec.node).map_err(decode_failed)?,
            "behavior" => field.string(&mut spec.behavior).map_err(decode_failed)?,
            "ttl" => field.string(&mut spec.ttl).map_err(decode_failed)?,
            "lockdelay" => {
                if let Some(delay) = lock_delay(value).map_err(decode_failed)? {
                    spec.lock_delay = delay;
                }
            }
            "checks" => field.strings(&mut checks).map_err(decode_failed)?,
            "nodechecks" => field
                .strings(&mut spec.node_checks)
                .map_err(decode_failed)?,
            "servicechecks" => {
                spec.service_checks = service_checks(value).map_err(decode_failed)?
            }
            _ => {}
        }
    }
    // Consul's fixupEmptySessionChecks, then the legacy Checks join the node checks.
    if checks.is_empty() {
        spec.node_checks.clear();
    } else if checks == [SERF_HEALTH] || spec.node_checks.is_empty() {
        checks.clear();
    }
    for check in checks {
        if !spec.node_checks.contains(&check) {
            spec.node_checks.push(check);
        }
    }
    Ok(spec)
}

struct Field<'a> {
    name: &'a str,
    value: &'a Value,
}

impl Field<'_> {
    fn mismatch(&self, go_type: &str) -> String {
        format!(
            "json: cannot unmarshal {} into Go struct field Session.{} of type {go_type}",
            kind(self.value),
            self.name
        )
    }

    fn string(&self, into: &mut String) -> Result<(), String> {
        match self.value {
            Value::Null => Ok(()),
            Value::String(s) => {
                s.clone_into(into);
                Ok(())
            }
            _ => Err(self.mismatch("string")),
        }
    }

    fn strings(&self, into: &mut Vec<String>) -> Result<(), String> {
        match self.value {
            Value::Null => {
                into.clear();
                Ok(())
            }
            Value::Array(items) => {
                *into = items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| self.mismatch("string"))?;
                Ok(())
            }
            _ => Err(self.mismatch("[]string")),
        }
    }
}

/// Consul's fixupLockDelay: a string is a Go duration, a number is nanoseconds, and
/// either below 1000ns is read as seconds ("LockDelay": 5 means five seconds).
fn lock_delay(value: &Value) -> Result<Option<Duration>, String> {
    let nanos = match value {
        Value::Null => return Ok(None),
        Value::String(s) => crate::duration::parse_nanos(s).map_err(|e| e.to_string())?,
        Value::Number(n) => n.as_f64().map_or(0, |f| f as i64),
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go struct field Session.LockDelay of type time.Duration",
                kind(other)
            ))
        }
    };
    let nanos = u64::try_from(nanos).unwrap_or(0);
    Ok(Some(if nanos < LOCK_DELAY_MIN_THRESHOLD {
        Duration::from_secs(nanos)
    } else {
        Duration::from_nanos(nanos)
    }))
}

fn service_checks(value: &Value) -> Result<Vec<ServiceCheck>, String> {
    let mismatch = || {
        format!(
            "json: cannot unmarshal {} into Go struct field Session.ServiceChecks of type []structs.ServiceCheck",
            kind(value)
        )
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let Value::Object(check) = item else {
                    return Err(mismatch());
                };
                let text = |name: &str| {
                    check
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .and_then(|(_, v)| v.as_str())
                        .unwrap_or("")
                        .to_owned()
                };
                Ok(ServiceCheck {
                    id: text("ID"),
                    namespace: text("Namespace"),
                })
            })
            .collect(),
        _ => Err(mismatch()),
    }
}

/// Go's name for a JSON value's kind in unmarshal errors.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
