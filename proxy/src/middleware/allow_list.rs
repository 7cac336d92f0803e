//! `ipAllowList` (and its former name `ipWhiteList`): only clients whose IP, as
//! the `ipStrategy` finds it, is in `sourceRange` get through; the others get
//! `rejectStatusCode` (403 by default).

use http::{Request, StatusCode};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::handler::{forward, status_response, Handler, HttpLayer, ResponseFuture};
use super::source::{parse_ranges, IpStrategy, IpStrategyOptions};
use super::{parse, Built, HttpService, MiddlewareError};
use crate::body::Body;

/// `ipAllowList` options.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Options {
    #[serde(rename = "sourceRange")]
    source_range: Vec<String>,
    #[serde(rename = "ipStrategy")]
    ip_strategy: Option<IpStrategyOptions>,
    #[serde(rename = "rejectStatusCode")]
    reject_status_code: u16,
}

/// Builds the middleware; `kind` is the type name it was configured with.
pub fn build(kind: &'static str, opts: &Value) -> Result<Built, MiddlewareError> {
    let o: Options = parse(kind, opts)?;
    if o.source_range.is_empty() {
        return Err(MiddlewareError::invalid(kind, "sourceRange", "is empty"));
    }
    let ranges = parse_ranges(kind, "sourceRange", &o.source_range)?;
    let strategy = match &o.ip_strategy {
        Some(s) => IpStrategy::new(kind, s)?,
        None => IpStrategy::default(),
    };
    let reject = match o.reject_status_code {
        0 => StatusCode::FORBIDDEN,
        code => StatusCode::from_u16(code)
            .ok()
            .filter(|s| s.canonical_reason().is_some())
            .ok_or_else(|| {
                MiddlewareError::invalid(
                    kind,
                    "rejectStatusCode",
                    format!("{code} is not an HTTP status"),
                )
            })?,
    };
    Ok(Built::Http(HttpLayer::new(AllowList {
        ranges,
        strategy,
        reject,
    })))
}

struct AllowList {
    ranges: Vec<IpNet>,
    strategy: IpStrategy,
    reject: StatusCode,
}

impl Handler for AllowList {
    fn handle(&self, req: Request<Body>, next: &mut HttpService) -> ResponseFuture {
        let ip = self.strategy.client_ip(&req);
        if ip.is_some_and(|ip| self.ranges.iter().any(|n| n.contains(&ip))) {
            return forward(req, next);
        }
        tracing::debug!(client = ?ip, "ipAllowList: rejected");
        let resp = status_response(self.reject);
        Box::pin(async move { resp })
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde_json::json;

    use super::super::handler::testing::{backend, request, run, text};
    use super::super::ClientInfo;
    use super::*;

    fn layer(v: Value) -> HttpLayer {
        match build("ipAllowList", &v) {
            Ok(Built::Http(l)) => l,
            other => panic!("{other:?}"),
        }
    }

    async fn status(l: &HttpLayer, peer: &str, xff: Option<&'static str>) -> (u16, String) {
        let (inner, _) = backend(&[]);
        let mut req = request("GET", "/", peer);
        if let Some(info) = req.extensions_mut().get_mut::<ClientInfo>() {
            info.forwarded_for = xff.map(HeaderValue::from_static);
        }
        let resp = run(l, inner, req).await;
        (resp.status().as_u16(), text(resp).await)
    }

    #[tokio::test]
    async fn peer_address_by_default() {
        let l = layer(json!({"sourceRange": "10.0.0.0/8, 192.168.1.7"}));
        assert_eq!(status(&l, "10.1.2.3", None).await.0, 200);
        assert_eq!(status(&l, "192.168.1.7", None).await.0, 200);
        assert_eq!(status(&l, "::ffff:10.0.0.1", None).await.0, 200);
        assert_eq!(
            status(&l, "192.168.1.8", None).await,
            (403, "Forbidden".into())
        );
        assert_eq!(
            status(&l, "192.168.1.8", Some("10.0.0.1")).await.0,
            403,
            "XFF ignored without ipStrategy"
        );
    }

    #[tokio::test]
    async fn ip_strategy_and_reject_status() {
        let l = layer(json!({
            "sourceRange": ["10.0.0.0/8"],
            "ipStrategy": {"depth": "2"},
            "rejectStatusCode": "404",
        }));
        assert_eq!(
            status(&l, "192.0.2.1", Some("1.1.1.1, 10.0.0.5, 2.2.2.2"))
                .await
                .0,
            200
        );
        assert_eq!(
            status(&l, "10.0.0.1", Some("10.0.0.5")).await.0,
            404,
            "too few entries"
        );
        let l = layer(json!({
            "sourceRange": ["10.0.0.0/8"],
            "ipStrategy": {"excludedIPs": "2.2.2.0/24"},
        }));
        assert_eq!(
            status(&l, "192.0.2.1", Some("10.0.0.5, 2.2.2.2")).await.0,
            200
        );
        assert_eq!(
            status(&l, "192.0.2.1", Some("10.0.0.5, 3.3.3.3")).await.0,
            403
        );
    }

    #[test]
    fn bad_options_are_named() {
        let e = build("ipWhiteList", &json!({})).unwrap_err();
        assert_eq!(e.to_string(), "ipWhiteList.sourceRange: is empty");
        let e = build("ipAllowList", &json!({"sourceRange": "10.0.0.0/8,nope"})).unwrap_err();
        assert!(
            e.to_string().contains("\"nope\" is not an IP or a CIDR"),
            "{e}"
        );
        let e = build(
            "ipAllowList",
            &json!({"sourceRange": "10.0.0.1", "rejectStatusCode": 999}),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("ipAllowList.rejectStatusCode"),
            "{e}"
        );
    }
}
