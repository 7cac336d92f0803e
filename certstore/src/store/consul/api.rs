//! The Consul HTTP calls the store makes, through `consulrs`, with every failure
//! turned into a [`ConsulError`] naming Consul's address and the operation.
//!
//! Two calls bypass `consulrs` and use its `reqwest` client directly: the blocking
//! list (`consulrs` drops the `X-Consul-Index` header of a 404, which an empty
//! prefix answers, and a blocking query needs it) and session creation in a
//! configured datacenter (`consulrs` has no `dc` parameter there).

use std::convert::TryInto;
use std::sync::Arc;
use std::time::Duration;

use consulrs::api::kv::common::KVPair;
use consulrs::api::kv::requests::{
    DeleteKeyRequest, ReadKeyRequest, ReadKeyRequestBuilder, SetKeyRequest,
};
use consulrs::api::session::requests::{
    CreateSessionRequest, DeleteSessionRequest, RenewSessionRequest,
};
use consulrs::client::{ConsulClient, ConsulClientSettings};
use consulrs::error::ClientError;
use reqwest_consul as reqwest;

use super::{ConsulError, ConsulStoreOptions};
use crate::store::status::HealthTracker;

/// Longest a connection attempt to Consul may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One key as Consul returns it.
#[derive(Debug, Clone)]
pub(super) struct Pair {
    /// The full Consul key (with the store's prefix).
    pub(super) key: String,
    pub(super) value: Vec<u8>,
    pub(super) modify_index: u64,
    pub(super) flags: u64,
    pub(super) session: Option<String>,
}

/// Parameters of a new lock session.
pub(super) struct SessionSpec<'a> {
    pub(super) name: &'a str,
    pub(super) ttl_secs: u64,
    pub(super) lock_delay_secs: u64,
}

/// The HTTP side of a [`ConsulStore`](super::ConsulStore).
pub(super) struct Api {
    /// Consul's address, as configured (no trailing `/`).
    pub(super) address: String,
    datacenter: Option<String>,
    token: Option<String>,
    /// For ordinary calls (bounded by the request timeout).
    client: ConsulClient,
    /// For blocking queries (bounded by their wait plus a margin).
    watch_http: reqwest::Client,
    pub(super) health: Arc<HealthTracker>,
}

impl Api {
    /// Builds the HTTP clients (TLS through rustls) from `options`.
    pub(super) fn new(
        options: &ConsulStoreOptions,
        health: Arc<HealthTracker>,
    ) -> Result<Self, ConsulError> {
        let address = options.address.trim().trim_end_matches('/').to_string();
        let http = http_client(options, &address, options.request_timeout)?;
        let watch_timeout = options.watch_wait + options.watch_wait / 16 + options.request_timeout;
        let watch_http = http_client(options, &address, watch_timeout)?;
        let settings = ConsulClientSettings {
            address: address.clone(),
            ca_certs: Vec::new(),
            client_cert: None,
            client_key: None,
            token: options.token.clone(),
            verify: !options.tls.insecure_skip_verify,
            version: 1,
        };
        let client = ConsulClient {
            http: rustify::clients::reqwest::Client::new(&address, http),
            settings,
        };
        Ok(Self {
            address,
            datacenter: options.datacenter.clone(),
            token: options.token.clone(),
            client,
            watch_http,
            health,
        })
    }

    fn error(&self, operation: &str, detail: String, status: Option<u16>) -> ConsulError {
        let reachable = status.is_some_and(|s| s < 500);
        let error = ConsulError::Request {
            address: self.address.clone(),
            operation: operation.to_string(),
            status,
            detail,
        };
        self.health.failure(&error.to_string(), reachable);
        error
    }

    /// Turns a `consulrs` failure into a [`ConsulError`] and records it.
    fn fail(&self, operation: &str, e: ClientError) -> ConsulError {
        match e {
            ClientError::APIError { code, message } => {
                let body = message.unwrap_or_default();
                self.error(
                    operation,
                    format!("HTTP {code}: {}", body.trim()),
                    Some(code),
                )
            }
            other => self.error(operation, chain(&other), None),
        }
    }

    fn decode(&self, operation: &str, pair: KVPair) -> Result<Pair, ConsulError> {
        let value = match pair.value {
            Some(v) => v.try_into().map_err(|e: ClientError| {
                self.error(
                    operation,
                    format!("value of {}: {}", pair.key, chain(&e)),
                    None,
                )
            })?,
            None => Vec::new(),
        };
        Ok(Pair {
            key: pair.key,
            value,
            modify_index: pair.modify_index,
            flags: pair.flags,
            session: pair.session.filter(|s| !s.is_empty()),
        })
    }

    fn read_builder(&self) -> ReadKeyRequestBuilder {
        let mut b = ReadKeyRequest::builder();
        if let Some(dc) = &self.datacenter {
            b.dc(dc.as_str());
        }
        b
    }

    /// The pair at `key`, if any.
    pub(super) async fn get(&self, key: &str) -> Result<Option<Pair>, ConsulError> {
        let op = format!("read {key}");
        let mut opts = self.read_builder();
        match consulrs::kv::read(&self.client, key, Some(&mut opts)).await {
            Ok(resp) => {
                self.health.success();
                let pair = resp.response.into_iter().find(|p| p.key == key);
                pair.map(|p| self.decode(&op, p)).transpose()
            }
            Err(ClientError::APIError { code: 404, .. }) => {
                self.health.success();
                Ok(None)
            }
            Err(e) => Err(self.fail(&op, e)),
        }
    }

    /// Every pair whose key starts with `path` (plain string prefix).
    pub(super) async fn list(&self, path: &str) -> Result<Vec<Pair>, ConsulError> {
        let op = format!("list {path}");
        let mut opts = self.read_builder();
        opts.recurse(true);
        match consulrs::kv::read(&self.client, path, Some(&mut opts)).await {
            Ok(resp) => {
                self.health.success();
                resp.response
                    .into_iter()
                    .map(|p| self.decode(&op, p))
                    .collect()
            }
            Err(ClientError::APIError { code: 404, .. }) => {
                self.health.success();
                Ok(Vec::new())
            }
            Err(e) => Err(self.fail(&op, e)),
        }
    }

    /// `PUT /v1/kv/<key>` with the given query options; Consul's `true`/`false`.
    async fn set(
        &self,
        op: &str,
        key: &str,
        value: Vec<u8>,
        configure: impl FnOnce(&mut consulrs::api::kv::requests::SetKeyRequestBuilder),
    ) -> Result<bool, ConsulError> {
        let mut b = SetKeyRequest::builder();
        b.key(key).value(value);
        if let Some(dc) = &self.datacenter {
            b.dc(dc.as_str());
        }
        configure(&mut b);
        let endpoint = b
            .build()
            .map_err(|e| self.error(op, format!("cannot build the request: {e}"), None))?;
        match consulrs::api::exec_with_result(&self.client, endpoint).await {
            Ok(resp) => {
                self.health.success();
                Ok(resp.response)
            }
            Err(e) => Err(self.fail(op, e)),
        }
    }

    /// Writes `value` tagged with `flags`, if `cas` (a ModifyIndex, 0 = absent)
    /// holds.
    pub(super) async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        cas: Option<u64>,
        flags: u64,
    ) -> Result<bool, ConsulError> {
        let op = format!("write {key}");
        self.set(&op, key, value, |b| {
            b.flags(flags);
            if let Some(cas) = cas {
                b.cas(cas);
            }
        })
        .await
    }

    /// Takes `key` for `session`, writing `value`.
    pub(super) async fn acquire(
        &self,
        key: &str,
        value: Vec<u8>,
        session: &str,
    ) -> Result<bool, ConsulError> {
        let op = format!("acquire {key}");
        self.set(&op, key, value, |b| {
            b.acquire(session);
        })
        .await
    }

    /// Releases `key` if `session` holds it.
    pub(super) async fn release(&self, key: &str, session: &str) -> Result<bool, ConsulError> {
        let op = format!("release {key}");
        self.set(&op, key, Vec::new(), |b| {
            b.release(session);
        })
        .await
    }

    /// Deletes `key` if `cas` holds (Consul answers `true` for a missing key).
    pub(super) async fn delete(&self, key: &str, cas: Option<u64>) -> Result<bool, ConsulError> {
        let op = format!("delete {key}");
        let mut b = DeleteKeyRequest::builder();
        if let Some(dc) = &self.datacenter {
            b.dc(dc.as_str());
        }
        if let Some(cas) = cas {
            b.cas(cas);
        }
        match consulrs::kv::delete(&self.client, key, Some(&mut b)).await {
            Ok(resp) => {
                self.health.success();
                Ok(resp.response)
            }
            Err(e) => Err(self.fail(&op, e)),
        }
    }

    /// Creates a lock session (behaviour `release`) and returns its ID.
    pub(super) async fn create_session(
        &self,
        spec: &SessionSpec<'_>,
    ) -> Result<String, ConsulError> {
        let op = format!("create session for {}", spec.name);
        let ttl = format!("{}s", spec.ttl_secs);
        let lock_delay = format!("{}s", spec.lock_delay_secs);
        if let Some(dc) = &self.datacenter {
            let body = serde_json::json!({
                "Name": spec.name, "TTL": ttl, "LockDelay": lock_delay, "Behavior": "release",
            });
            let url = format!("{}/v1/session/create", self.address);
            let req = self
                .watch_http
                .put(url)
                .query(&[("dc", dc)])
                .body(body.to_string());
            let (status, bytes, _) = self.raw(&op, req).await?;
            if status != 200 {
                return Err(self.error(&op, body_text(status, &bytes), Some(status)));
            }
            #[derive(serde::Deserialize)]
            struct Created {
                #[serde(rename = "ID")]
                id: String,
            }
            let created: Created = serde_json::from_slice(&bytes)
                .map_err(|e| self.error(&op, format!("bad response: {e}"), Some(status)))?;
            return Ok(created.id);
        }
        let mut b = CreateSessionRequest::builder();
        b.name(spec.name)
            .ttl(ttl)
            .lock_delay(lock_delay)
            .behavior("release");
        match consulrs::session::create(&self.client, Some(&mut b)).await {
            Ok(resp) => {
                self.health.success();
                Ok(resp.response.id)
            }
            Err(e) => Err(self.fail(&op, e)),
        }
    }

    /// Renews `session`; `false` when Consul no longer knows it (404).
    pub(super) async fn renew_session(&self, session: &str) -> Result<bool, ConsulError> {
        let op = format!("renew session {session}");
        let mut b = RenewSessionRequest::builder();
        if let Some(dc) = &self.datacenter {
            b.dc(dc.as_str());
        }
        match consulrs::session::renew(&self.client, session, Some(&mut b)).await {
            Ok(resp) => {
                self.health.success();
                Ok(!resp.response.is_empty())
            }
            Err(ClientError::APIError { code: 404, .. }) => {
                self.health.success();
                Ok(false)
            }
            Err(e) => Err(self.fail(&op, e)),
        }
    }

    /// Destroys `session` (releasing what it holds, after lock-delay); a session
    /// already gone is fine.
    pub(super) async fn destroy_session(&self, session: &str) -> Result<(), ConsulError> {
        let op = format!("destroy session {session}");
        let mut b = DeleteSessionRequest::builder();
        if let Some(dc) = &self.datacenter {
            b.dc(dc.as_str());
        }
        match consulrs::session::delete(&self.client, session, Some(&mut b)).await {
            Ok(_) | Err(ClientError::APIError { code: 404, .. }) => {
                self.health.success();
                Ok(())
            }
            Err(e) => Err(self.fail(&op, e)),
        }
    }

    /// A blocking list of `path`: returns once Consul's index for it passes `index`
    /// or `wait` runs out, with the pairs and the new index.
    pub(super) async fn blocking_list(
        &self,
        path: &str,
        index: u64,
        wait: Duration,
    ) -> Result<(Vec<Pair>, u64), ConsulError> {
        let op = format!("watch {path}");
        let url = format!("{}/v1/kv/{path}", self.address);
        let mut query = vec![
            ("recurse", String::new()),
            ("index", index.to_string()),
            ("wait", format!("{}s", wait.as_secs().max(1))),
        ];
        if let Some(dc) = &self.datacenter {
            query.push(("dc", dc.clone()));
        }
        let req = self.watch_http.get(url).query(&query);
        let (status, bytes, new_index) = self.raw(&op, req).await?;
        let new_index = match (status, new_index) {
            (200 | 404, Some(i)) => i,
            (200 | 404, None) => {
                return Err(self.error(&op, "no X-Consul-Index in the answer".into(), Some(status)))
            }
            _ => return Err(self.error(&op, body_text(status, &bytes), Some(status))),
        };
        if status == 404 {
            return Ok((Vec::new(), new_index));
        }
        let pairs: Vec<KVPair> = serde_json::from_slice(&bytes)
            .map_err(|e| self.error(&op, format!("bad response: {e}"), Some(status)))?;
        let pairs = pairs
            .into_iter()
            .map(|p| self.decode(&op, p))
            .collect::<Result<_, _>>()?;
        Ok((pairs, new_index))
    }

    /// Sends a request built on the direct client: status, body, `X-Consul-Index`.
    async fn raw(
        &self,
        op: &str,
        mut req: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>, Option<u64>), ConsulError> {
        if let Some(token) = &self.token {
            req = req.header("X-Consul-Token", token.as_str());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.error(op, chain(&e), None))?;
        let status = resp.status().as_u16();
        let index = resp
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.error(op, chain(&e), Some(status)))?;
        if status < 500 {
            self.health.success();
        }
        Ok((status, bytes.to_vec(), index))
    }
}

fn body_text(status: u16, body: &[u8]) -> String {
    format!("HTTP {status}: {}", String::from_utf8_lossy(body).trim())
}

/// An error and its sources, joined by `: ` (consulrs's own messages are vague;
/// the cause is in the chain).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// A `reqwest` client for Consul: rustls, the configured CA and client
/// certificate, bounded connect and request times.
fn http_client(
    options: &ConsulStoreOptions,
    address: &str,
    timeout: Duration,
) -> Result<reqwest::Client, ConsulError> {
    let config = |setting: &str, detail: String| ConsulError::Config {
        address: address.to_string(),
        setting: setting.to_string(),
        detail,
    };
    let tls = &options.tls;
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .danger_accept_invalid_certs(tls.insecure_skip_verify);
    if let Some(ca) = &tls.ca {
        let pem = std::fs::read(ca)
            .map_err(|e| config("tls.ca", format!("cannot read {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            config(
                "tls.ca",
                format!("{} is not PEM certificates: {}", ca.display(), chain(&e)),
            )
        })?;
        if certs.is_empty() {
            return Err(config(
                "tls.ca",
                format!("no certificate in {}", ca.display()),
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let mut pem = std::fs::read(cert)
                .map_err(|e| config("tls.cert", format!("cannot read {}: {e}", cert.display())))?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(key).map_err(|e| {
                    config("tls.key", format!("cannot read {}: {e}", key.display()))
                })?,
            );
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                config(
                    "tls.cert",
                    format!("{} and {}: {}", cert.display(), key.display(), chain(&e)),
                )
            })?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => {
            return Err(config(
                "tls",
                "cert and key must be set together".to_string(),
            ))
        }
    }
    builder.build().map_err(|e| config("tls", chain(&e)))
}
