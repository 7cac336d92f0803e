//! `basicAuth`: HTTP Basic authentication against htpasswd entries given inline
//! (`users`) or in a file (`usersFile`). bcrypt checks run on tokio's blocking
//! pool, at most one per CPU at a time per middleware (so a flood of wrong
//! passwords cannot take the whole pool), and a successful check is remembered
//! (as a salted SHA-256 of the password) so a returning client does not pay for
//! bcrypt again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use http::{header, HeaderName, HeaderValue, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::handler::{forward, Handler, HttpLayer, ResponseFuture};
use super::htpasswd::{parse_entries, Hash};
use super::{parse, Built, HttpService, MiddlewareError};
use crate::body::{self, Body};

const KIND: &str = "basicAuth";

/// `basicAuth` options.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Options {
    users: Vec<String>,
    #[serde(rename = "usersFile")]
    users_file: String,
    realm: String,
    #[serde(rename = "removeHeader")]
    remove_header: bool,
    #[serde(rename = "headerField")]
    header_field: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            users_file: String::new(),
            realm: "traefik".into(),
            remove_header: false,
            header_field: String::new(),
        }
    }
}

/// Builds a `basicAuth` middleware.
pub fn build(opts: &Value) -> Result<Built, MiddlewareError> {
    let o: Options = parse(KIND, opts)?;
    let mut users = HashMap::new();
    if !o.users_file.is_empty() {
        let text =
            std::fs::read_to_string(&o.users_file).map_err(|source| MiddlewareError::File {
                kind: KIND,
                option: "usersFile",
                path: o.users_file.clone(),
                source,
            })?;
        let entries = parse_entries(text.lines()).map_err(|e| {
            MiddlewareError::invalid(KIND, "usersFile", format!("{}: {e}", o.users_file))
        })?;
        users.extend(entries);
    }
    let inline = parse_entries(o.users.iter().map(String::as_str))
        .map_err(|e| MiddlewareError::invalid(KIND, "users", e.to_string()))?;
    users.extend(inline);
    if users.is_empty() {
        return Err(MiddlewareError::invalid(
            KIND,
            "users",
            "no users: set users or usersFile",
        ));
    }
    let challenge = HeaderValue::from_str(&format!("Basic realm=\"{}\"", o.realm.replace('"', "")))
        .map_err(|_| MiddlewareError::invalid(KIND, "realm", "not a valid header value"))?;
    let header_field = if o.header_field.is_empty() {
        None
    } else {
        Some(
            HeaderName::from_bytes(o.header_field.trim().as_bytes()).map_err(|_| {
                MiddlewareError::invalid(
                    KIND,
                    "headerField",
                    format!("{:?} is not a header name", o.header_field),
                )
            })?,
        )
    };
    Ok(Built::Http(HttpLayer::new(BasicAuth {
        shared: Arc::new(Shared {
            users,
            challenge,
            remove_header: o.remove_header,
            header_field,
            salt: rand::random(),
            verified: Mutex::new(HashMap::new()),
            slow_checks: Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            ),
        }),
    })))
}

struct Shared {
    users: HashMap<String, Hash>,
    challenge: HeaderValue,
    remove_header: bool,
    header_field: Option<HeaderName>,
    /// Salt of the remembered password digests.
    salt: [u8; 16],
    /// User → salted digest of the password last verified against a slow hash.
    /// The lock is held only to read or write one entry, never across an await.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    /// Bounds the bcrypt checks running at once.
    slow_checks: Semaphore,
}

struct BasicAuth {
    shared: Arc<Shared>,
}

impl Shared {
    fn digest(&self, password: &str) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.salt);
        ctx.update(password.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    fn remembered(&self, user: &str, digest: &[u8; 32]) -> bool {
        let verified = match self.verified.lock() {
            Ok(v) => v,
            Err(poisoned) => poisoned.into_inner(),
        };
        verified
            .get(user)
            .is_some_and(|d| bool::from(d.ct_eq(digest)))
    }

    fn remember(&self, user: &str, digest: [u8; 32]) {
        let mut verified = match self.verified.lock() {
            Ok(v) => v,
            Err(poisoned) => poisoned.into_inner(),
        };
        verified.insert(user.to_string(), digest);
    }

    fn unauthorized(&self) -> Response<Body> {
        let mut resp = Response::new(body::full("401 Unauthorized\n"));
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        let h = resp.headers_mut();
        h.insert(header::WWW_AUTHENTICATE, self.challenge.clone());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        resp
    }

    /// Applies `removeHeader` and `headerField` to an authenticated request.
    fn admit(&self, req: &mut Request<Body>, user: &str) {
        if self.remove_header {
            req.headers_mut().remove(header::AUTHORIZATION);
        }
        if let Some(name) = &self.header_field {
            if let Ok(v) = HeaderValue::from_str(user) {
                req.headers_mut().insert(name.clone(), v);
            }
        }
    }
}

/// The user and password of a `Basic` Authorization header.
fn credentials<B>(req: &Request<B>) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl Handler for BasicAuth {
    fn handle(&self, mut req: Request<Body>, next: &mut HttpService) -> ResponseFuture {
        let shared = &self.shared;
        let Some((user, password)) = credentials(&req) else {
            let resp = shared.unauthorized();
            return Box::pin(async move { resp });
        };
        let Some(hash) = shared.users.get(&user) else {
            tracing::debug!(user = %user, "basicAuth: unknown user");
            let resp = shared.unauthorized();
            return Box::pin(async move { resp });
        };
        if !hash.is_slow() {
            if hash.verify(&password) {
                shared.admit(&mut req, &user);
                return forward(req, next);
            }
            let resp = shared.unauthorized();
            return Box::pin(async move { resp });
        }
        let digest = shared.digest(&password);
        if shared.remembered(&user, &digest) {
            shared.admit(&mut req, &user);
            return forward(req, next);
        }
        let shared = self.shared.clone();
        let hash = hash.clone();
        let mut next = next.clone();
        Box::pin(async move {
            let ok = match shared.slow_checks.acquire().await {
                Ok(_permit) => tokio::task::spawn_blocking(move || hash.verify(&password))
                    .await
                    .unwrap_or(false),
                Err(_) => false,
            };
            if !ok {
                tracing::debug!(user = %user, "basicAuth: wrong password");
                return shared.unauthorized();
            }
            shared.remember(&user, digest);
            shared.admit(&mut req, &user);
            forward(req, &mut next).await
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::handler::testing::{backend, request, run, text};
    use super::*;

    /// `test:test` from Traefik's documentation, `{SHA}` of "secret".
    const APR1: &str = "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/";
    const SHA: &str = "sha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=";

    fn layer(v: Value) -> HttpLayer {
        match build(&v) {
            Ok(Built::Http(l)) => l,
            other => panic!("{other:?}"),
        }
    }

    fn basic(user: &str, pw: &str) -> HeaderValue {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        HeaderValue::from_str(&format!("Basic {b}")).unwrap()
    }

    async fn call(
        l: &HttpLayer,
        auth: Option<HeaderValue>,
    ) -> (StatusCode, Response<Body>, Vec<http::HeaderMap>) {
        let (inner, seen) = backend(&[]);
        let mut req = request("GET", "/", "192.0.2.1");
        if let Some(a) = auth {
            req.headers_mut().insert(header::AUTHORIZATION, a);
        }
        let resp = run(l, inner, req).await;
        let seen = seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.headers.clone())
            .collect();
        (resp.status(), resp, seen)
    }

    #[tokio::test]
    async fn challenges_and_admits() {
        let l = layer(json!({"users": format!("{APR1},{SHA}")}));
        let (status, resp, seen) = call(&l, None).await;
        assert_eq!(status, 401);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"traefik\""
        );
        assert_eq!(text(resp).await, "401 Unauthorized\n");
        assert!(seen.is_empty());
        let (status, _, seen) = call(&l, Some(basic("test", "test"))).await;
        assert_eq!(status, 200);
        assert!(
            seen[0].contains_key(header::AUTHORIZATION),
            "kept by default"
        );
        assert_eq!(call(&l, Some(basic("sha", "secret"))).await.0, 200);
        assert_eq!(call(&l, Some(basic("test", "nope"))).await.0, 401);
        assert_eq!(call(&l, Some(basic("nobody", "test"))).await.0, 401);
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(call(&l, Some(bearer)).await.0, 401);
    }

    #[tokio::test]
    async fn realm_remove_header_and_header_field() {
        let l = layer(json!({
            "users": [APR1],
            "realm": "ops",
            "removeHeader": "true",
            "headerField": "X-WebAuth-User",
        }));
        let (_, resp, _) = call(&l, None).await;
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"ops\""
        );
        let (status, _, seen) = call(&l, Some(basic("test", "test"))).await;
        assert_eq!(status, 200);
        assert!(!seen[0].contains_key(header::AUTHORIZATION));
        assert_eq!(seen[0]["x-webauth-user"], "test");
    }

    #[tokio::test]
    async fn bcrypt_users_from_a_file_and_remembered_success() {
        let hash = bcrypt::hash("s3cret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let dir = std::env::temp_dir().join(format!("wharf-basicauth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("users");
        std::fs::write(&file, format!("# team\nalice:{hash}\n\n")).unwrap();
        let l = layer(json!({"usersFile": file.to_str().unwrap(), "users": SHA}));
        assert_eq!(call(&l, Some(basic("alice", "wrong"))).await.0, 401);
        assert_eq!(call(&l, Some(basic("alice", "s3cret"))).await.0, 200);
        assert_eq!(call(&l, Some(basic("alice", "s3cret"))).await.0, 200);
        assert_eq!(call(&l, Some(basic("alice", "wrong"))).await.0, 401);
        assert_eq!(call(&l, Some(basic("sha", "secret"))).await.0, 200);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_options_are_named() {
        let e = build(&json!({"users": "bob:plaintext"})).unwrap_err();
        assert!(
            e.to_string().starts_with("basicAuth.users: user \"bob\""),
            "{e}"
        );
        let e = build(&json!({"usersFile": "/nonexistent/wharf-users"})).unwrap_err();
        assert!(e.to_string().starts_with("basicAuth.usersFile"), "{e}");
        let e = build(&json!({})).unwrap_err();
        assert!(e.to_string().contains("no users"), "{e}");
        let e = build(&json!({"users": [APR1], "headerField": "bad header"})).unwrap_err();
        assert!(e.to_string().starts_with("basicAuth.headerField"), "{e}");
    }
}
