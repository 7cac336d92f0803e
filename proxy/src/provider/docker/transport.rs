//! wharf's own connection to the engine, handed to bollard as a custom transport:
//! a Unix socket, plain TCP, or TCP with rustls (ring), one HTTP/1 connection per
//! request as bollard does itself. Owning the transport keeps a single TLS stack in
//! the binary and lets wharf make the one request bollard's models cannot express
//! (`/tasks` with `NetworksAttachments`, see [`super::swarm`]).

use std::path::PathBuf;
use std::sync::Arc;

use bollard::{BollardRequest, Docker};
use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

use super::config::DockerProviderConfig;
use super::error::{DockerError, TransportError};
use super::tls;

/// How to reach the engine.
enum Dial {
    Unix(PathBuf),
    Tcp(String),
    Tls {
        authority: String,
        server_name: ServerName<'static>,
        connector: TlsConnector,
    },
}

/// A connection factory for the engine's API; cheap to clone.
#[derive(Clone)]
pub struct Transport {
    dial: Arc<Dial>,
    /// The endpoint as configured, for messages.
    endpoint: Arc<str>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Transport {
    /// Parses `endpoint` and, for TLS, loads the certificates.
    pub fn new(cfg: &DockerProviderConfig) -> Result<Self, DockerError> {
        let endpoint = cfg.endpoint.trim();
        let bad = |reason: &str| DockerError::Endpoint {
            endpoint: endpoint.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = endpoint
            .split_once("://")
            .ok_or_else(|| bad("expected unix://, tcp://, http:// or https://"))?;
        let dial = match scheme {
            "unix" if !rest.is_empty() => Dial::Unix(PathBuf::from(rest)),
            "tcp" | "http" | "https" => {
                let authority = rest.trim_end_matches('/');
                let uri: Uri = format!("http://{authority}/")
                    .parse()
                    .map_err(|_| bad("invalid host:port"))?;
                let host = uri.host().ok_or_else(|| bad("missing host"))?;
                if uri.port().is_none() {
                    return Err(bad("missing port"));
                }
                let use_tls = scheme == "https" || (scheme == "tcp" && cfg.tls.is_some());
                if use_tls {
                    let tls_cfg = cfg.tls.clone().unwrap_or_default();
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    let server_name = ServerName::try_from(host.to_string())
                        .map_err(|_| bad("host is not a valid TLS server name"))?;
                    Dial::Tls {
                        authority: authority.to_string(),
                        server_name,
                        connector: TlsConnector::from(Arc::new(tls::client_config(&tls_cfg)?)),
                    }
                } else {
                    Dial::Tcp(authority.to_string())
                }
            }
            _ => return Err(bad("expected unix://, tcp://, http:// or https://")),
        };
        Ok(Self {
            dial: Arc::new(dial),
            endpoint: endpoint.into(),
        })
    }

    /// A bollard client that sends every request through this transport.
    pub fn client(&self, cfg: &DockerProviderConfig) -> Result<Docker, DockerError> {
        let transport = self.clone();
        let addr = match &*self.dial {
            Dial::Unix(_) => "http://localhost".to_string(),
            Dial::Tcp(a) | Dial::Tls { authority: a, .. } => format!("http://{a}"),
        };
        Docker::connect_with_custom_transport(
            move |req: BollardRequest| {
                let transport = transport.clone();
                async move { Ok(transport.send(req).await?) }
            },
            Some(addr),
            cfg.request_timeout().as_secs().max(1),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(DockerError::api("connect"))
    }

    /// Sends one request on a new connection. The response body streams until the
    /// engine ends it (the event stream never does).
    pub async fn send<B>(&self, req: Request<B>) -> Result<Response<Incoming>, TransportError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        let endpoint = self.endpoint.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%endpoint, error = %e, "docker API connection ended");
            }
        });
        sender
            .send_request(origin_form(req)?)
            .await
            .map_err(Into::into)
    }

    /// `GET path` (with its query), answered with the body when the status is 2xx.
    pub async fn get(
        &self,
        call: &'static str,
        path_and_query: &str,
    ) -> Result<Bytes, DockerError> {
        let transport_err = |source| DockerError::Transport { call, source };
        let req = Request::get(path_and_query)
            .body(Full::new(Bytes::new()))
            .map_err(|e| transport_err(e.into()))?;
        let resp = self.send(req).await.map_err(transport_err)?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| transport_err(e.into()))?
            .to_bytes();
        if !status.is_success() {
            return Err(DockerError::Status {
                call,
                status: status.as_u16(),
                message: String::from_utf8_lossy(&body).trim().to_string(),
            });
        }
        Ok(body)
    }

    async fn connect(&self) -> Result<Box<dyn Io>, TransportError> {
        let err = |source| TransportError::Connect {
            endpoint: self.endpoint.to_string(),
            source,
        };
        Ok(match &*self.dial {
            Dial::Unix(path) => Box::new(UnixStream::connect(path).await.map_err(err)?),
            Dial::Tcp(authority) => {
                let tcp = TcpStream::connect(authority.as_str()).await.map_err(err)?;
                let _ = tcp.set_nodelay(true);
                Box::new(tcp)
            }
            Dial::Tls {
                authority,
                server_name,
                connector,
            } => {
                let tcp = TcpStream::connect(authority.as_str()).await.map_err(err)?;
                let _ = tcp.set_nodelay(true);
                Box::new(
                    connector
                        .connect(server_name.clone(), tcp)
                        .await
                        .map_err(err)?,
                )
            }
        })
    }
}

/// Rewrites an absolute request URI to origin form with a `Host` header, as HTTP/1
/// servers expect.
fn origin_form<B>(req: Request<B>) -> Result<Request<B>, TransportError> {
    let (mut parts, body) = req.into_parts();
    if !parts.headers.contains_key(http::header::HOST) {
        let host = parts
            .uri
            .authority()
            .map(|a| a.as_str())
            .unwrap_or("localhost");
        let value = http::HeaderValue::from_str(host)
            .unwrap_or_else(|_| http::HeaderValue::from_static("localhost"));
        parts.headers.insert(http::header::HOST, value);
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = Uri::try_from(path).map_err(http::Error::from)?;
    Ok(Request::from_parts(parts, body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn transport(endpoint: &str) -> Result<Transport, DockerError> {
        Transport::new(&DockerProviderConfig {
            endpoint: endpoint.into(),
            ..Default::default()
        })
    }

    #[test]
    fn parses_endpoints() {
        assert!(matches!(
            &*transport("unix:///var/run/docker.sock").unwrap().dial,
            Dial::Unix(p) if p == std::path::Path::new("/var/run/docker.sock")
        ));
        assert!(matches!(
            &*transport("tcp://127.0.0.1:2375").unwrap().dial,
            Dial::Tcp(a) if a == "127.0.0.1:2375"
        ));
        assert!(matches!(
            &*transport("http://[::1]:2375/").unwrap().dial,
            Dial::Tcp(a) if a == "[::1]:2375"
        ));
        for bad in [
            "",
            "/var/run/docker.sock",
            "unix://",
            "tcp://host",
            "ssh://h:22",
        ] {
            assert!(
                matches!(transport(bad), Err(DockerError::Endpoint { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn tls_endpoint_with_insecure_skip_verify() {
        let t = Transport::new(&DockerProviderConfig {
            endpoint: "tcp://docker.example:2376".into(),
            tls: Some(crate::provider::docker::config::ClientTls {
                insecure_skip_verify: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        assert!(
            matches!(&*t.dial, Dial::Tls { authority, .. } if authority == "docker.example:2376")
        );
    }

    #[test]
    fn requests_go_out_in_origin_form() {
        let req = Request::get("http://localhost/v1.41/tasks?filters=%7B%7D")
            .body(())
            .unwrap();
        let req = origin_form(req).unwrap();
        assert_eq!(req.uri().to_string(), "/v1.41/tasks?filters=%7B%7D");
        assert_eq!(req.headers()[http::header::HOST], "localhost");
    }
}
