//! The JSON API, shaped like Traefik's so existing tooling keeps working.

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

use crate::body::{self, Body};
use std::collections::BTreeMap;

use crate::provider::labels::{normalize, Severity};
use crate::router::info::{RuntimeInfo, Status};
use crate::server::State;

/// Routes an `/api...` path (already stripped of `/api`).
pub fn handle(rest: &str, query: Option<&str>, state: &State) -> Response<Body> {
    let table = state.table.load_full();
    let info = &table.info;
    let segments: Vec<&str> = rest.trim_start_matches('/').splitn(3, '/').collect();
    match segments.as_slice() {
        ["version"] => json_response(json!({
            "Version": env!("CARGO_PKG_VERSION"),
            "Codename": "wharf",
            "startDate": state.admin.start_date,
        })),
        ["overview"] => {
            let count = |statuses: Vec<Status>| {
                json!({
                    "total": statuses.len(),
                    "warnings": statuses.iter().filter(|s| **s == Status::Warning).count(),
                    "errors": statuses.iter().filter(|s| **s == Status::Disabled).count(),
                })
            };
            json_response(json!({
                "http": {
                    "routers": count(
                        routers_with_label_errors(info, state)
                            .iter()
                            .map(|r| if r["status"] == "disabled" { Status::Disabled } else { Status::Enabled })
                            .collect()
                    ),
                    "services": count(info.services.values().map(|s| s.status).collect()),
                    "middlewares": count(info.middlewares.values().map(|m| m.status).collect()),
                },
                "tcp": {"routers": count(vec![]), "services": count(vec![]), "middlewares": count(vec![])},
                "udp": {"routers": count(vec![]), "services": count(vec![])},
                "features": {"tracing": "", "metrics": "", "accessLog": false},
                "providers": state.admin.providers,
                "cluster": cluster(state),
            }))
        }
        ["entrypoints"] => list(state.admin.entrypoints.clone(), query),
        ["entrypoints", name] => one(state
            .admin
            .entrypoints
            .iter()
            .find(|e| e["name"] == *name)
            .cloned()),
        ["rawdata"] => json_response(json!({
            "routers": info.routers.iter().map(|(n, r)| (n.clone(), r.to_json(n))).collect::<serde_json::Map<_, _>>(),
            "services": info.services.iter().map(|(n, s)| (n.clone(), s.to_json(n))).collect::<serde_json::Map<_, _>>(),
            "middlewares": info.middlewares.iter().map(|(n, m)| (n.clone(), m.to_json(n))).collect::<serde_json::Map<_, _>>(),
        })),
        ["http", "routers"] => list(routers_with_label_errors(info, state), query),
        ["http", "routers", name] => one(routers_with_label_errors(info, state)
            .into_iter()
            .find(|r| r["name"] == *name)),
        ["http", "services"] => list(
            info.services.iter().map(|(n, s)| s.to_json(n)).collect(),
            query,
        ),
        ["http", "services", name] => one(info.services.get(*name).map(|s| s.to_json(name))),
        ["http", "middlewares"] => list(
            info.middlewares.iter().map(|(n, m)| m.to_json(n)).collect(),
            query,
        ),
        ["http", "middlewares", name] => one(info.middlewares.get(*name).map(|m| m.to_json(name))),
        ["cluster"] => match cluster(state) {
            Value::Null => not_found(),
            status => json_response(status),
        },
        ["certificates"] => list(certificates(state), query),
        ["providers"] => list(providers(state), query),
        ["certificates", name] => one(certificates(state).into_iter().find(|c| {
            c["main"] == *name
                || c["domains"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|n| n == *name))
        })),
        ["store"] => one(state
            .admin
            .store
            .as_ref()
            .and_then(|s| s.0.status())
            .and_then(|status| serde_json::to_value(status).ok())),
        ["tcp", "routers" | "services" | "middlewares"] | ["udp", "routers" | "services"] => {
            list(Vec::new(), query)
        }
        _ => not_found(),
    }
}

/// The compiled routers, plus one disabled entry per workload whose labels were
/// rejected (named like its default router, `normalize(service)@provider`), so a
/// label error shows up next to the routes that work.
fn routers_with_label_errors(info: &RuntimeInfo, state: &State) -> Vec<Value> {
    let mut out: Vec<Value> = info.routers.iter().map(|(n, r)| r.to_json(n)).collect();
    for (provider, issues) in &state.label_issues {
        let mut by_workload: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for issue in issues
            .borrow()
            .iter()
            .filter(|i| i.severity == Severity::Error)
        {
            by_workload
                .entry(issue.workload.clone())
                .or_default()
                .push(issue.to_string());
        }
        for (workload, errors) in by_workload {
            let name = format!("{}@{provider}", normalize(&workload));
            match out.iter_mut().find(|r| r["name"] == name.as_str()) {
                Some(existing) => {
                    if existing["status"] == "enabled" {
                        existing["status"] = "warning".into();
                    }
                    if let Some(list) = existing.get_mut("error").and_then(Value::as_array_mut) {
                        list.extend(errors.into_iter().map(Value::from));
                    } else {
                        existing["error"] = errors.into();
                    }
                }
                None => out.push(json!({
                    "name": name,
                    "provider": provider,
                    "service": format!("{}@{provider}", normalize(&workload)),
                    "status": "disabled",
                    "error": errors,
                })),
            }
        }
    }
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    out
}

/// wharf's `/api/cluster`: this node's role, the current publisher and when the
/// shared table was last received; `null` when `cluster` is not configured.
fn cluster(state: &State) -> Value {
    state
        .admin
        .cluster
        .as_ref()
        .map(|status| serde_json::to_value(&*status.borrow()).unwrap_or(Value::Null))
        .unwrap_or(Value::Null)
}

/// wharf's `/api/certificates`: every managed ACME certificate with its domains,
/// validity, issuer, renewal time and last error.
fn certificates(state: &State) -> Vec<Value> {
    state
        .admin
        .certificates
        .as_ref()
        .map(|board| {
            board
                .load()
                .iter()
                .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
                .collect()
        })
        .unwrap_or_default()
}

/// wharf's `/api/providers`: each running provider and when it last delivered a
/// configuration.
fn providers(state: &State) -> Vec<Value> {
    state
        .admin
        .provider_activity
        .snapshot(std::time::SystemTime::now())
        .iter()
        .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
        .collect()
}

/// Traefik's list parameters: `search`, `status`, `serviceName`, `page`, `per_page`.
#[derive(Debug, Default, PartialEq)]
struct ListQuery {
    search: Option<String>,
    status: Option<String>,
    service: Option<String>,
    page: usize,
    per_page: usize,
}

fn parse_query(query: Option<&str>) -> ListQuery {
    let mut q = ListQuery {
        page: 1,
        per_page: 100,
        ..Default::default()
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = v.replace('+', " ");
        match k {
            "search" => q.search = Some(v.to_lowercase()),
            "status" => q.status = Some(v),
            "serviceName" => q.service = Some(v),
            "page" => q.page = v.parse().unwrap_or(1).max(1),
            "per_page" => q.per_page = v.parse().unwrap_or(100).max(1),
            _ => {}
        }
    }
    q
}

fn list(items: Vec<Value>, query: Option<&str>) -> Response<Body> {
    let q = parse_query(query);
    let filtered: Vec<Value> = items
        .into_iter()
        .filter(|v| q.status.as_ref().is_none_or(|s| v["status"] == s.as_str()))
        .filter(|v| {
            q.service
                .as_ref()
                .is_none_or(|s| v["service"] == s.as_str())
        })
        .filter(|v| {
            q.search
                .as_ref()
                .is_none_or(|s| v.to_string().to_lowercase().contains(s.as_str()))
        })
        .collect();
    let start = (q.page - 1).saturating_mul(q.per_page);
    let page: Vec<Value> = filtered
        .iter()
        .skip(start)
        .take(q.per_page)
        .cloned()
        .collect();
    let next = if start + q.per_page < filtered.len() {
        q.page + 1
    } else {
        1
    };
    let mut resp = json_response(Value::Array(page));
    resp.headers_mut()
        .insert("x-next-page", HeaderValue::from(next));
    resp
}

fn one(v: Option<Value>) -> Response<Body> {
    match v {
        Some(v) => json_response(v),
        None => not_found(),
    }
}

fn not_found() -> Response<Body> {
    let mut resp = json_response(json!({"message": "not found"}));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

fn json_response(v: Value) -> Response<Body> {
    let mut resp = Response::new(body::full(v.to_string()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_parses_traefik_parameters() {
        let q = parse_query(Some(
            "search=Foo&status=enabled&page=2&per_page=5&serviceName=s@file",
        ));
        assert_eq!(q.search.as_deref(), Some("foo"));
        assert_eq!(q.status.as_deref(), Some("enabled"));
        assert_eq!(q.service.as_deref(), Some("s@file"));
        assert_eq!((q.page, q.per_page), (2, 5));
        assert_eq!(parse_query(None).per_page, 100);
    }

    #[test]
    fn providers_list_when_they_last_delivered() {
        let activity = crate::provider::activity::ProviderActivity::new(&["file", "swarm"]);
        activity.record("file", std::time::SystemTime::now());
        let state = State {
            table: arc_swap::ArcSwap::from_pointee(crate::router::RouteTable::default()),
            terminating: Default::default(),
            terminating_status: 503,
            admin: crate::server::AdminInfo {
                provider_activity: activity,
                ..Default::default()
            },
            challenges: None,
            label_issues: Vec::new(),
        };
        let listed = providers(&state);
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert_eq!(listed[0]["name"], "file");
        assert_eq!(listed[0]["configurations"], 1);
        assert!(listed[0]["lastConfiguration"].is_string(), "{listed:?}");
        assert!(listed[0]["secondsSince"].as_u64().is_some(), "{listed:?}");
        assert_eq!(listed[1]["name"], "swarm");
        assert!(listed[1]["lastConfiguration"].is_null(), "{listed:?}");
    }

    #[test]
    fn label_errors_show_as_disabled_routers() {
        use crate::provider::labels::{IssueKind, LabelIssue};
        let issue = LabelIssue {
            workload: "shop_web".into(),
            label: Some("traefik.http.routers.web.rule".into()),
            severity: Severity::Error,
            kind: IssueKind::InvalidRule,
            message: "bad rule".into(),
        };
        let warning = LabelIssue {
            severity: Severity::Warning,
            ..issue.clone()
        };
        let (_tx, rx) = tokio::sync::watch::channel(vec![issue, warning]);
        let state = State {
            table: arc_swap::ArcSwap::from_pointee(crate::router::RouteTable::default()),
            terminating: Default::default(),
            terminating_status: 503,
            admin: Default::default(),
            challenges: None,
            label_issues: vec![("swarm", rx)],
        };
        let routers = routers_with_label_errors(&RuntimeInfo::default(), &state);
        assert_eq!(routers.len(), 1);
        assert_eq!(routers[0]["name"], "shop-web@swarm");
        assert_eq!(routers[0]["status"], "disabled");
        let errors = routers[0]["error"].as_array().unwrap();
        assert_eq!(errors.len(), 1);
        assert!(errors[0]
            .as_str()
            .unwrap()
            .contains("traefik.http.routers.web.rule"));
    }

    #[test]
    fn cluster_state_is_served_only_when_configured() {
        use crate::provider::cluster::{ClusterStatus, Role};
        let state = |cluster| State {
            table: arc_swap::ArcSwap::from_pointee(crate::router::RouteTable::default()),
            terminating: Default::default(),
            terminating_status: 503,
            admin: crate::server::AdminInfo {
                cluster,
                ..Default::default()
            },
            challenges: None,
            label_issues: Vec::new(),
        };
        assert_eq!(
            handle("/cluster", None, &state(None)).status(),
            StatusCode::NOT_FOUND
        );
        let (_tx, rx) = tokio::sync::watch::channel(ClusterStatus {
            mode: "auto",
            role: Role::Follower,
            node: "worker-1".into(),
            instance: "abc".into(),
            provider: "swarm",
            key: "routes/table".into(),
            publisher: None,
            last_received: None,
            last_published: None,
            last_error: None,
        });
        let state = state(Some(rx));
        assert_eq!(handle("/cluster", None, &state).status(), StatusCode::OK);
        assert_eq!(cluster(&state)["role"], "follower");
        assert_eq!(cluster(&state)["node"], "worker-1");
    }
}
