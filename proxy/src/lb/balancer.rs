//! The per-service balancer: sticky cookie first, then smooth weighted round robin
//! over the available servers.

use std::time::Instant;

use http::{HeaderMap, HeaderValue};

use super::server_health::LazyNow;
use super::sticky::StickyCookies;
use super::wrr::Wrr;
use super::Upstream;
use crate::config::dynamic::StickyCookie;

/// Chooses the server of one service for each request. Built with the route table;
/// [`Balancer::pick`] takes no lock and does not allocate unless it has to set a
/// sticky cookie.
#[derive(Debug)]
pub struct Balancer {
    service: Box<str>,
    upstreams: Vec<Upstream>,
    wrr: Wrr,
    sticky: Option<StickyCookies>,
}

/// The server chosen for a request.
#[derive(Debug, Clone)]
pub struct Pick<'a> {
    /// The server's index in [`Balancer::upstreams`], to report the outcome and to
    /// exclude it from retries.
    pub index: usize,
    /// The server.
    pub upstream: &'a Upstream,
    /// A `Set-Cookie` value to add to the response, when sticky sessions are on and
    /// the request was not already pinned to this server.
    pub set_cookie: Option<HeaderValue>,
}

impl Balancer {
    /// A balancer for `service` over `upstreams`, with sticky sessions when `sticky`
    /// is given.
    pub fn new(service: &str, upstreams: Vec<Upstream>, sticky: Option<&StickyCookie>) -> Self {
        let weights: Vec<u32> = upstreams.iter().map(|u| u.weight).collect();
        let sticky =
            sticky.map(|cfg| StickyCookies::new(service, cfg, upstreams.iter().map(|u| &u.url)));
        Self {
            service: service.into(),
            wrr: Wrr::new(&weights),
            upstreams,
            sticky,
        }
    }

    /// Chooses a server: the one named by the sticky cookie if it is available,
    /// otherwise the next one by smooth weighted round robin among the available
    /// servers. Indexes in `exclude` (servers already tried for this request) and
    /// weight-0 servers are never chosen.
    ///
    /// Returns `None` when no server is available (the caller answers 503), except
    /// that when every remaining server is up but passively ejected, the one whose
    /// ejection ends first is tried anyway: a single connection failure should not
    /// turn a one-server service into 503s for the whole ejection.
    pub fn pick(&self, request_headers: &HeaderMap, exclude: &[usize]) -> Option<Pick<'_>> {
        self.pick_with(request_headers, exclude, &LazyNow::new())
    }

    /// Passive health: reports that connecting to server `index` failed, which takes
    /// it out of rotation for 10 s, doubling on consecutive failures up to 60 s (see
    /// [`super::PASSIVE_EJECTION_BASE`]). Unknown indexes are ignored.
    pub fn report_connect_failure(&self, index: usize) {
        self.report_connect_failure_at(index, Instant::now());
    }

    /// Reports a successful exchange with server `index`: ends its ejection, if any.
    pub fn report_success(&self, index: usize) {
        if let Some(upstream) = self.upstreams.get(index) {
            upstream.health.record_success();
        }
    }

    /// The servers, in configuration order; [`Pick::index`] indexes this slice.
    pub fn upstreams(&self) -> &[Upstream] {
        &self.upstreams
    }

    /// The service this balancer belongs to.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The sticky cookie's name, when sticky sessions are on.
    pub fn cookie_name(&self) -> Option<&str> {
        self.sticky.as_ref().map(StickyCookies::name)
    }

    fn report_connect_failure_at(&self, index: usize, now: Instant) {
        let Some(upstream) = self.upstreams.get(index) else {
            return;
        };
        if let Some(ejected_for) = upstream.health.record_connect_failure(now) {
            tracing::warn!(
                service = %self.service,
                url = %upstream.url,
                ejected_for = ?ejected_for,
                "connection to server failed, taking it out of rotation"
            );
        }
    }

    fn pick_with(&self, headers: &HeaderMap, exclude: &[usize], now: &LazyNow) -> Option<Pick<'_>> {
        if let Some(sticky) = &self.sticky {
            if let Some(index) = sticky.lookup(headers) {
                if self.usable(index, exclude, now) {
                    return self.make_pick(index, None);
                }
            }
        }
        let index = self
            .wrr
            .pick(|i| self.usable(i, exclude, now))
            .or_else(|| self.soonest_back(exclude))?;
        let set_cookie = self.sticky.as_ref().and_then(|s| s.set_cookie(index));
        self.make_pick(index, set_cookie)
    }

    fn make_pick(&self, index: usize, set_cookie: Option<HeaderValue>) -> Option<Pick<'_>> {
        Some(Pick {
            index,
            upstream: self.upstreams.get(index)?,
            set_cookie,
        })
    }

    /// A server may take this request.
    fn usable(&self, index: usize, exclude: &[usize], now: &LazyNow) -> bool {
        self.upstreams.get(index).is_some_and(|u| {
            u.weight > 0
                && !exclude.contains(&index)
                && u.health.is_healthy()
                && !u.health.is_ejected_at(now)
        })
    }

    /// Among the healthy, non-excluded servers (all of them passively ejected, or
    /// the round robin would have found one), the one whose ejection ends first.
    fn soonest_back(&self, exclude: &[usize]) -> Option<usize> {
        self.upstreams
            .iter()
            .enumerate()
            .filter(|&(i, u)| u.weight > 0 && !exclude.contains(&i) && u.health.is_healthy())
            .min_by_key(|&(_, u)| u.health.ejected_until())
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use http::header::COOKIE;

    use super::*;
    use crate::lb::ServerHealth;

    const SEC: Duration = Duration::from_secs(1);

    fn upstreams(weights: &[u32]) -> Vec<Upstream> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Upstream {
                url: format!("http://10.0.0.{i}:80").parse().expect("valid URI"),
                weight,
                health: Arc::new(ServerHealth::new()),
            })
            .collect()
    }

    fn sticky() -> StickyCookie {
        StickyCookie {
            name: Some("lb".into()),
            http_only: true,
            ..StickyCookie::default()
        }
    }

    fn counts(lb: &Balancer, picks: usize, exclude: &[usize], now: &LazyNow) -> Vec<usize> {
        let mut counts = vec![0; lb.upstreams().len()];
        for _ in 0..picks {
            let pick = lb
                .pick_with(&HeaderMap::new(), exclude, now)
                .expect("a server");
            counts[pick.index] += 1;
        }
        counts
    }

    /// A request carrying the cookie part (`name=value`) of a `Set-Cookie` value.
    fn with_cookie(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("pair");
        let mut headers = HeaderMap::new();
        let cookie = format!("theme=dark; {pair}");
        headers.insert(COOKIE, HeaderValue::from_str(&cookie).expect("valid"));
        headers
    }

    #[test]
    fn weighted_round_robin_is_exact() {
        let lb = Balancer::new("web", upstreams(&[3, 1]), None);
        assert_eq!(counts(&lb, 400, &[], &LazyNow::new()), [300, 100]);
        let pick = lb.pick(&HeaderMap::new(), &[]).expect("a server");
        assert!(pick.set_cookie.is_none());
        assert_eq!(pick.upstream.url, lb.upstreams()[pick.index].url);
    }

    #[test]
    fn exclude_list_and_weight_zero_are_respected() {
        let lb = Balancer::new("web", upstreams(&[1, 0, 1]), None);
        assert_eq!(counts(&lb, 100, &[], &LazyNow::new()), [50, 0, 50]);
        assert_eq!(counts(&lb, 10, &[0], &LazyNow::new()), [0, 0, 10]);
        assert!(lb.pick(&HeaderMap::new(), &[0, 2]).is_none());
        let zero = Balancer::new("web", upstreams(&[0, 0]), None);
        assert!(zero.pick(&HeaderMap::new(), &[]).is_none());
        assert!(Balancer::new("web", Vec::new(), None)
            .pick(&HeaderMap::new(), &[])
            .is_none());
    }

    #[test]
    fn servers_down_are_skipped_and_all_down_gives_none() {
        let lb = Balancer::new("web", upstreams(&[1, 1, 1]), None);
        lb.upstreams()[1].health.set_healthy(false);
        let c = counts(&lb, 300, &[], &LazyNow::new());
        assert_eq!(c[1], 0);
        assert_eq!(c[0] + c[2], 300);
        for u in lb.upstreams() {
            u.health.set_healthy(false);
        }
        assert!(lb.pick(&HeaderMap::new(), &[]).is_none());
    }

    #[test]
    fn connect_failure_ejects_then_the_server_returns() {
        let lb = Balancer::new("web", upstreams(&[1, 1]), None);
        let t0 = Instant::now();
        lb.report_connect_failure_at(0, t0);
        assert_eq!(counts(&lb, 20, &[], &LazyNow::at(t0 + SEC)), [0, 20]);
        assert_eq!(counts(&lb, 20, &[], &LazyNow::at(t0 + 9 * SEC)), [0, 20]);
        assert_eq!(counts(&lb, 20, &[], &LazyNow::at(t0 + 10 * SEC)), [10, 10]);
        // Failing again right away doubles the ejection.
        lb.report_connect_failure_at(0, t0 + 10 * SEC);
        assert_eq!(counts(&lb, 20, &[], &LazyNow::at(t0 + 29 * SEC)), [0, 20]);
        assert_eq!(counts(&lb, 20, &[], &LazyNow::at(t0 + 30 * SEC)), [10, 10]);
    }

    #[test]
    fn success_ends_an_ejection_early() {
        let lb = Balancer::new("web", upstreams(&[1, 1]), None);
        let t0 = Instant::now();
        lb.report_connect_failure_at(1, t0);
        lb.report_success(1);
        assert_eq!(counts(&lb, 20, &[], &LazyNow::at(t0 + SEC)), [10, 10]);
        lb.report_connect_failure(7);
        lb.report_success(7);
    }

    #[test]
    fn when_all_are_ejected_the_soonest_back_is_tried() {
        let lb = Balancer::new("web", upstreams(&[1, 1, 1]), None);
        let t0 = Instant::now();
        lb.report_connect_failure_at(0, t0 + 2 * SEC);
        lb.report_connect_failure_at(1, t0);
        lb.report_connect_failure_at(2, t0 + SEC);
        let now = LazyNow::at(t0 + 3 * SEC);
        assert_eq!(counts(&lb, 5, &[], &now), [0, 5, 0]);
        assert_eq!(counts(&lb, 5, &[1], &now), [0, 0, 5]);
        lb.upstreams()[2].health.set_healthy(false);
        assert_eq!(counts(&lb, 5, &[1], &now), [5, 0, 0]);
        assert!(lb.pick_with(&HeaderMap::new(), &[0, 1], &now).is_none());
    }

    #[test]
    fn sticky_cookie_is_set_then_honoured() {
        let lb = Balancer::new("web", upstreams(&[1, 1, 1]), Some(&sticky()));
        assert_eq!(lb.cookie_name(), Some("lb"));
        for _ in 0..3 {
            let first = lb.pick(&HeaderMap::new(), &[]).expect("a server");
            let set_cookie = first.set_cookie.expect("a new session gets a cookie");
            let s = set_cookie.to_str().expect("ascii");
            assert!(
                s.starts_with("lb=") && s.ends_with("; Path=/; HttpOnly"),
                "{s}"
            );
            let request = with_cookie(&set_cookie);
            for _ in 0..10 {
                let again = lb.pick(&request, &[]).expect("a server");
                assert_eq!(again.index, first.index);
                assert!(again.set_cookie.is_none());
            }
        }
    }

    #[test]
    fn unknown_or_malformed_cookie_gets_a_new_pick_and_cookie() {
        let lb = Balancer::new("web", upstreams(&[1, 1]), Some(&sticky()));
        for cookie in ["lb=0000000000000000", "lb", "lb=;;", "other=1", "lb=\"x"] {
            let mut headers = HeaderMap::new();
            headers.insert(COOKIE, HeaderValue::from_str(cookie).expect("valid"));
            let pick = lb.pick(&headers, &[]).expect("a server");
            let expected = lb.sticky.as_ref().and_then(|s| s.set_cookie(pick.index));
            assert_eq!(pick.set_cookie, expected, "{cookie}");
            assert!(pick.set_cookie.is_some());
        }
    }

    #[test]
    fn cookie_for_an_unavailable_server_is_replaced() {
        let lb = Balancer::new("web", upstreams(&[1, 1]), Some(&sticky()));
        let to_zero = with_cookie(
            &lb.sticky
                .as_ref()
                .and_then(|s| s.set_cookie(0))
                .expect("cookie"),
        );
        assert_eq!(lb.pick(&to_zero, &[]).expect("a server").index, 0);

        // Down: re-pick, and the new cookie names the new server.
        lb.upstreams()[0].health.set_healthy(false);
        let pick = lb.pick(&to_zero, &[]).expect("a server");
        assert_eq!(pick.index, 1);
        let to_one = with_cookie(&pick.set_cookie.expect("new cookie"));
        assert_eq!(lb.pick(&to_one, &[]).expect("a server").index, 1);
        lb.upstreams()[0].health.set_healthy(true);

        // Already tried by this request (a retry): the other one, with a cookie.
        let retry = lb.pick(&to_zero, &[0]).expect("a server");
        assert_eq!(retry.index, 1);
        assert!(retry.set_cookie.is_some());

        // Ejected, or drained with weight 0: same.
        lb.report_connect_failure(0);
        assert_eq!(lb.pick(&to_zero, &[]).expect("a server").index, 1);
        let drained = Balancer::new("web", upstreams(&[0, 1]), Some(&sticky()));
        assert_eq!(drained.pick(&to_zero, &[]).expect("a server").index, 1);
    }
}
