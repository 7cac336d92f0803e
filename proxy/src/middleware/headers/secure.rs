//! The security part of the `headers` middleware, as unrolled/secure does it for
//! Traefik: allowed hosts, SSL redirect, and the security response headers.

use std::sync::Arc;

use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};

use super::{header_name, header_value, plain, Options};
use crate::body::Body;
use crate::middleware::handler::ClientInfo;
use crate::middleware::MiddlewareError;

/// Security settings; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(super) struct Secure(Arc<Settings>);

#[derive(Debug, Default)]
struct Settings {
    allowed_hosts: Vec<String>,
    hosts_proxy_headers: Vec<HeaderName>,
    ssl_redirect: bool,
    ssl_temporary_redirect: bool,
    ssl_host: String,
    ssl_force_host: bool,
    ssl_proxy_headers: Vec<(HeaderName, String)>,
    sts: Option<HeaderValue>,
    force_sts: bool,
    /// Response headers always set.
    fixed: Vec<(HeaderName, HeaderValue)>,
}

impl Secure {
    pub(super) fn new(o: &Options) -> Result<Secure, MiddlewareError> {
        let mut fixed = Vec::new();
        let mut add = |name: &'static str, option: &'static str, value: &str| {
            if value.is_empty() {
                return Ok(());
            }
            fixed.push((HeaderName::from_static(name), header_value(option, value)?));
            Ok::<_, MiddlewareError>(())
        };
        let frame = if !o.custom_frame_options_value.is_empty() {
            o.custom_frame_options_value.as_str()
        } else if o.frame_deny {
            "DENY"
        } else {
            ""
        };
        add("x-frame-options", "customFrameOptionsValue", frame)?;
        let nosniff = if o.content_type_nosniff {
            "nosniff"
        } else {
            ""
        };
        add("x-content-type-options", "contentTypeNosniff", nosniff)?;
        let xss = if !o.custom_browser_xss_value.is_empty() {
            o.custom_browser_xss_value.as_str()
        } else if o.browser_xss_filter {
            "1; mode=block"
        } else {
            ""
        };
        add("x-xss-protection", "customBrowserXSSValue", xss)?;
        add(
            "content-security-policy",
            "contentSecurityPolicy",
            &o.content_security_policy,
        )?;
        add(
            "content-security-policy-report-only",
            "contentSecurityPolicyReportOnly",
            &o.content_security_policy_report_only,
        )?;
        add("public-key-pins", "publicKey", &o.public_key)?;
        add("referrer-policy", "referrerPolicy", &o.referrer_policy)?;
        add("feature-policy", "featurePolicy", &o.feature_policy)?;
        add(
            "permissions-policy",
            "permissionsPolicy",
            &o.permissions_policy,
        )?;
        let sts = if o.sts_seconds > 0 {
            let mut v = format!("max-age={}", o.sts_seconds);
            if o.sts_include_subdomains {
                v.push_str("; includeSubDomains");
            }
            if o.sts_preload {
                v.push_str("; preload");
            }
            Some(header_value("stsSeconds", &v)?)
        } else {
            None
        };
        Ok(Secure(Arc::new(Settings {
            allowed_hosts: o.allowed_hosts.clone(),
            hosts_proxy_headers: o
                .hosts_proxy_headers
                .iter()
                .map(|h| header_name("hostsProxyHeaders", h))
                .collect::<Result<_, _>>()?,
            ssl_redirect: o.ssl_redirect,
            ssl_temporary_redirect: o.ssl_temporary_redirect,
            ssl_host: o.ssl_host.clone(),
            ssl_force_host: o.ssl_force_host,
            ssl_proxy_headers: o
                .ssl_proxy_headers
                .iter()
                .map(|(k, v)| Ok((header_name("sslProxyHeaders", k)?, v.clone())))
                .collect::<Result<_, MiddlewareError>>()?,
            sts,
            force_sts: o.force_sts_header,
            fixed,
        })))
    }

    /// Whether the client reached the proxy over TLS, directly or as a
    /// `sslProxyHeaders` header says.
    pub(super) fn is_ssl<B>(&self, req: &Request<B>) -> bool {
        let tls = req.extensions().get::<ClientInfo>().is_some_and(|c| c.tls);
        tls || self.0.ssl_proxy_headers.iter().any(|(k, v)| {
            req.headers()
                .get(k)
                .is_some_and(|h| h.as_bytes() == v.as_bytes())
        })
    }

    /// The Host the client asked for, or a `hostsProxyHeaders` header's value.
    fn host<'r, B>(&self, req: &'r Request<B>) -> &'r str {
        self.0
            .hosts_proxy_headers
            .iter()
            .filter_map(|h| req.headers().get(h)?.to_str().ok())
            .find(|v| !v.is_empty())
            .or_else(|| req.headers().get(header::HOST)?.to_str().ok())
            .unwrap_or("")
    }

    /// A response that ends the request here: 500 "Bad Host" for a host not in
    /// `allowedHosts`, or the SSL redirect.
    pub(super) fn check_request<B>(&self, req: &Request<B>, ssl: bool) -> Option<Response<Body>> {
        let s = &self.0;
        let host = self.host(req);
        if !s.allowed_hosts.is_empty()
            && !s.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
        {
            let mut resp = plain(StatusCode::INTERNAL_SERVER_ERROR);
            *resp.body_mut() = crate::body::full("Bad Host\n");
            return Some(resp);
        }
        let wrong_host =
            s.ssl_force_host && !s.ssl_host.is_empty() && !host.eq_ignore_ascii_case(&s.ssl_host);
        let insecure = s.ssl_redirect && !ssl;
        if !insecure && !wrong_host {
            return None;
        }
        let target = if s.ssl_host.is_empty() {
            host
        } else {
            &s.ssl_host
        };
        let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let status = if s.ssl_temporary_redirect {
            StatusCode::TEMPORARY_REDIRECT
        } else {
            StatusCode::MOVED_PERMANENTLY
        };
        let mut resp = plain(status);
        match HeaderValue::from_str(&format!("https://{target}{pq}")) {
            Ok(v) => {
                resp.headers_mut().insert(header::LOCATION, v);
                Some(resp)
            }
            Err(_) => Some(plain(StatusCode::BAD_REQUEST)),
        }
    }

    /// Adds the security response headers.
    pub(super) fn add_response_headers(&self, out: &mut HeaderMap, ssl: bool) {
        let s = &self.0;
        if let Some(sts) = &s.sts {
            if ssl || s.force_sts {
                out.insert(header::STRICT_TRANSPORT_SECURITY, sts.clone());
            }
        }
        for (k, v) in &s.fixed {
            out.insert(k.clone(), v.clone());
        }
    }
}
