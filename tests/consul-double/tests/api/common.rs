//! A small HTTP client for the double, built on hyper's legacy client.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use consul_double::{ConsulDouble, Settings, SharedState};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("a socket address")
}

/// A double with default settings on a free port.
pub async fn start() -> ConsulDouble {
    ConsulDouble::start(any_port())
        .await
        .expect("starting the double")
}

/// A double accepting session TTLs from 1s, so TTL tests take seconds.
pub async fn start_short_ttl() -> ConsulDouble {
    let state = SharedState::new(Settings {
        session_ttl_min: Duration::from_secs(1),
        ..Settings::default()
    });
    ConsulDouble::start_with(state, any_port())
        .await
        .expect("starting the double")
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn index(&self) -> u64 {
        self.headers["x-consul-index"]
            .to_str()
            .expect("X-Consul-Index is ASCII")
            .parse()
            .expect("X-Consul-Index is a number")
    }
}

#[derive(Clone)]
pub struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    pub token_header: Option<String>,
}

impl Api {
    pub fn new(double: &ConsulDouble) -> Api {
        Api {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: double.url(),
            token_header: None,
        }
    }

    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Reply, hyper_util::client::legacy::Error> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token_header {
            request = request.header("X-Consul-Token", token);
        }
        let request = request.body(Full::new(body)).expect("a valid request");
        let response = self.client.request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("reading the body").to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.try_send(Method::GET, path, Bytes::new())
            .await
            .expect("GET")
    }

    pub async fn put(&self, path: &str, body: impl Into<Bytes>) -> Reply {
        self.try_send(Method::PUT, path, body.into())
            .await
            .expect("PUT")
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.try_send(Method::DELETE, path, Bytes::new())
            .await
            .expect("DELETE")
    }

    /// PUT that must answer 200 with a JSON boolean.
    pub async fn put_ok(&self, path: &str, body: impl Into<Bytes>) -> bool {
        let reply = self.put(path, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
        reply.json().as_bool().expect("a JSON boolean")
    }

    /// The single entry of `GET /v1/kv/<key>`.
    pub async fn entry(&self, key: &str) -> Value {
        let reply = self.get(&format!("/v1/kv/{key}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{key}: {}", reply.text());
        let entries = reply.json();
        assert_eq!(entries.as_array().expect("a JSON array").len(), 1);
        entries[0].clone()
    }

    /// Creates a session from a JSON body and returns its ID.
    pub async fn session(&self, body: &str) -> String {
        let reply = self.put("/v1/session/create", body.to_owned()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["ID"]
            .as_str()
            .expect("an ID string")
            .to_owned()
    }
}

pub fn decode(value: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().expect("a base64 string"))
        .expect("valid base64")
}
