use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::{HeaderMap, Method};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::*;

/// What the authentication server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

/// An authentication server on 127.0.0.1: `Authorization: Bearer good` is
/// allowed (with identity headers and cookies), anything else gets 401.
async fn auth_server() -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    auth_server_with(None).await
}

/// [`auth_server`], over TLS when `tls` is given.
async fn auth_server_with(
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        log.lock().unwrap().push(Seen {
                            method: parts.method.clone(),
                            headers: parts.headers.clone(),
                            body,
                        });
                        let good = parts
                            .headers
                            .get("authorization")
                            .is_some_and(|v| v == "Bearer good");
                        let resp = if good {
                            Response::builder()
                                .header("x-user", "alice")
                                .header("x-auth-role", "admin")
                                .header("set-cookie", "sso=fresh; Path=/")
                                .header("set-cookie", "tracking=1")
                                .body(Full::new(Bytes::new()))
                        } else {
                            Response::builder()
                                .status(401)
                                .header("www-authenticate", "Bearer")
                                .header("location", "/login")
                                .body(Full::new(Bytes::from("denied")))
                        };
                        Ok::<_, Infallible>(resp.unwrap())
                    }
                });
                let http = hyper::server::conn::http1::Builder::new();
                let _ = match tls {
                    None => http.serve_connection(TokioIo::new(stream), svc).await,
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(s) => http.serve_connection(TokioIo::new(s), svc).await,
                        Err(_) => return,
                    },
                };
            });
        }
    });
    (addr, seen)
}

/// A TLS acceptor for `localhost` with a self-signed certificate, and that
/// certificate in PEM (to trust it as a CA).
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ck.cert.pem(),
    )
}

/// The upstream: echoes the identity headers it got and sets cookies.
fn upstream() -> HttpService {
    HttpService::new(tower::service_fn(|req: Request<Body>| async move {
        let text = {
            let h = |n: &str| {
                req.headers()
                    .get(n)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            format!("user={} role={}", h("x-user"), h("x-auth-role"))
        };
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let mut resp = Response::new(body::full(format!("{text} body={}", body.len())));
        resp.headers_mut()
            .append(header::SET_COOKIE, "sso=stale".parse().unwrap());
        resp.headers_mut()
            .append(header::SET_COOKIE, "app=1".parse().unwrap());
        Ok::<_, Infallible>(resp)
    }))
}

async fn call(svc: &HttpService, auth: &str, body: &'static str) -> Response<Body> {
    let req = Request::builder()
        .method("POST")
        .uri("/private?x=1")
        .header("host", "app.test")
        .header("authorization", auth)
        .header("x-user", "forged")
        .header("x-forwarded-for", "192.0.2.7")
        .header("x-forwarded-proto", "http")
        .body(body::full(body))
        .unwrap();
    svc.clone().oneshot(req).await.unwrap()
}

async fn text(resp: Response<Body>) -> String {
    String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn allowed_requests_pass_with_the_identity_headers() {
    let (addr, seen) = auth_server().await;
    let clients = Clients::new(Default::default());
    let l = layer(
        &json!({"address": format!("http://{addr}/verify"), "authResponseHeaders": "X-User",
                "authResponseHeadersRegex": "^X-Auth-", "addAuthCookiesToResponse": ["sso"]}),
        &clients,
    )
    .unwrap();
    let svc = l.wrap(upstream());
    let resp = call(&svc, "Bearer good", "hello").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cookies: Vec<_> = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(cookies, vec!["app=1", "sso=fresh; Path=/"]);
    assert_eq!(text(resp).await, "user=alice role=admin body=5");
    let seen = seen.lock().unwrap()[0].clone();
    assert_eq!(seen.method, Method::GET);
    assert!(seen.body.is_empty());
    assert_eq!(seen.headers["x-forwarded-method"], "POST");
    assert_eq!(seen.headers["x-forwarded-uri"], "/private?x=1");
    assert_eq!(seen.headers["x-forwarded-host"], "app.test");
    assert_eq!(seen.headers["x-forwarded-for"], "192.0.2.7");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["host"], addr.to_string().as_str());
}

#[tokio::test]
async fn refusals_are_returned_to_the_client() {
    let (addr, _) = auth_server().await;
    let clients = Clients::new(Default::default());
    let l = layer(
        &json!({"address": format!("http://{addr}/verify")}),
        &clients,
    )
    .unwrap();
    let svc = l.wrap(upstream());
    let resp = call(&svc, "Bearer bad", "").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        resp.headers()["location"],
        format!("http://{addr}/login").as_str()
    );
    assert_eq!(text(resp).await, "denied");
    let l = layer(
        &json!({"address": format!("http://{addr}/verify"), "preserveLocationHeader": "true"}),
        &clients,
    )
    .unwrap();
    let resp = call(&l.wrap(upstream()), "Bearer bad", "").await;
    assert_eq!(resp.headers()["location"], "/login");
}

#[tokio::test]
async fn the_body_and_method_can_be_forwarded() {
    let (addr, seen) = auth_server().await;
    let clients = Clients::new(Default::default());
    let l = layer(
        &json!({"address": format!("http://{addr}/"), "forwardBody": true, "maxBodySize": 8,
                "preserveRequestMethod": true}),
        &clients,
    )
    .unwrap();
    let svc = l.wrap(upstream());
    let resp = call(&svc, "Bearer good", "payload").await;
    assert_eq!(text(resp).await, "user=forged role= body=7");
    let s = seen.lock().unwrap()[0].clone();
    assert_eq!((s.method, &s.body[..]), (Method::POST, &b"payload"[..]));
    let resp = call(&svc, "Bearer good", "much too long").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.lock().unwrap().len(), 1, "not sent to the server");
}

#[tokio::test]
async fn https_servers_are_verified_with_the_configured_ca() {
    let (acceptor, ca_pem) = tls_acceptor();
    let (addr, seen) = auth_server_with(Some(acceptor)).await;
    let ca = std::env::temp_dir().join(format!("wharf-forwardauth-ca-{}.pem", addr.port()));
    std::fs::write(&ca, ca_pem).unwrap();
    let clients = Clients::new(Default::default());
    let address = format!("https://localhost:{}/verify", addr.port());
    let trusted = layer(
        &json!({"address": address, "tls": {"ca": ca.display().to_string()}}),
        &clients,
    );
    std::fs::remove_file(&ca).unwrap();
    let resp = call(&trusted.unwrap().wrap(upstream()), "Bearer good", "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let skip = layer(
        &json!({"address": address, "tls": {"insecureSkipVerify": "true"}}),
        &clients,
    )
    .unwrap();
    let resp = call(&skip.wrap(upstream()), "Bearer bad", "").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.lock().unwrap().len(), 2);
    // The system roots do not know this certificate: the handshake fails.
    let Ok(untrusted) = layer(&json!({"address": address}), &clients) else {
        return; // no system bundle on this machine
    };
    let resp = call(&untrusted.wrap(upstream()), "Bearer good", "").await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_unreachable_server_gives_500() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let clients = Clients::new(Default::default());
    let l = layer(&json!({"address": format!("http://{addr}/")}), &clients).unwrap();
    let resp = call(&l.wrap(upstream()), "Bearer good", "").await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn bad_options_are_reported() {
    let clients = Clients::new(Default::default());
    for bad in [
        json!({"address": ""}),
        json!({"address": "ftp://auth/"}),
        json!({"address": "http://auth/", "authResponseHeaders": ["bad header"]}),
        json!({"address": "http://auth/", "tls": {"ca": "/nonexistent/ca.pem"}}),
    ] {
        assert!(
            matches!(layer(&bad, &clients), Err(MiddlewareError::Message(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        layer(
            &json!({"address": "http://auth/", "authResponseHeadersRegex": "("}),
            &clients
        ),
        Err(MiddlewareError::Regex { .. })
    ));
    assert!(matches!(
        layer(
            &json!({"address": "http://auth/", "trustForwardHeaders": true}),
            &clients
        ),
        Err(MiddlewareError::Options { .. })
    ));
}
