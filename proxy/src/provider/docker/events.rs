//! What an engine event means for the provider.
//!
//! | event | action |
//! |---|---|
//! | service `create`, `update`, `remove` | refresh, then follow the service until it converges |
//! | container `kill` (terminating signal), `stop`, `die` | withdraw the endpoint **at once**, then refresh |
//! | container `health_status: unhealthy` | withdraw the endpoint at once, then refresh |
//! | container `start`, `health_status: healthy/starting`, `destroy` | refresh (a `start` readmits a withdrawn container) |
//! | network `connect`, `disconnect` | refresh |
//! | anything else (`exec_*`, `attach`, `create`, ...) | nothing |
//!
//! Swarm sends events for services, not tasks, and container events only from the
//! local node; so after any relevant event the provider polls while services converge.

use bollard::models::{EventMessage, EventMessageTypeEnum as Type};

/// Label on swarm task containers naming their task.
const TASK_ID: &str = "com.docker.swarm.task.id";

/// What to do about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Irrelevant.
    Ignore,
    /// List again (after the burst settles) and follow convergence.
    Refresh,
    /// The container is going away: withdraw the endpoints with these IDs now
    /// (container ID, and task ID for a swarm task), then refresh.
    Withdraw(Vec<String>),
    /// The container (re)started: readmit these IDs if withdrawn, then refresh.
    Readmit(Vec<String>),
}

/// Classifies an event.
pub fn classify(event: &EventMessage) -> Action {
    let action = event.action.as_deref().unwrap_or("");
    match event.typ {
        Some(Type::SERVICE) => match action {
            "create" | "update" | "remove" => Action::Refresh,
            _ => Action::Ignore,
        },
        Some(Type::NETWORK) => match action {
            "connect" | "disconnect" => Action::Refresh,
            _ => Action::Ignore,
        },
        Some(Type::CONTAINER) => container(event, action),
        _ => Action::Ignore,
    }
}

fn container(event: &EventMessage, action: &str) -> Action {
    let actor = event.actor.as_ref();
    let attr = |k: &str| actor.and_then(|a| a.attributes.as_ref()?.get(k).cloned());
    let ids = || {
        actor
            .and_then(|a| a.id.clone())
            .into_iter()
            .chain(attr(TASK_ID).filter(|t| !t.is_empty()))
            .collect::<Vec<_>>()
    };
    match action {
        "stop" | "die" => Action::Withdraw(ids()),
        "kill" if attr("signal").as_deref().is_some_and(is_reload_signal) => Action::Refresh,
        "kill" => Action::Withdraw(ids()),
        "start" => Action::Readmit(ids()),
        "destroy" => Action::Refresh,
        a if a.starts_with("health_status") => {
            if a.ends_with("unhealthy") {
                Action::Withdraw(ids())
            } else {
                Action::Refresh
            }
        }
        _ => Action::Ignore,
    }
}

/// Signals that ask a process to reload or reopen its logs, not to exit:
/// `docker kill -s HUP` must not take a container out of service.
fn is_reload_signal(signal: &str) -> bool {
    let s = signal.trim().trim_start_matches("SIG");
    matches!(s, "1" | "10" | "12" | "HUP" | "USR1" | "USR2")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::EventActor;

    use super::*;

    fn event(typ: Type, action: &str, attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("c1".into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<HashMap<_, _>>(),
                ),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn service_and_network_events_refresh() {
        for a in ["create", "update", "remove"] {
            assert_eq!(classify(&event(Type::SERVICE, a, &[])), Action::Refresh);
        }
        assert_eq!(
            classify(&event(Type::NETWORK, "connect", &[])),
            Action::Refresh
        );
        assert_eq!(
            classify(&event(Type::NETWORK, "disconnect", &[])),
            Action::Refresh
        );
        assert_eq!(
            classify(&event(Type::NETWORK, "create", &[])),
            Action::Ignore
        );
        assert_eq!(classify(&event(Type::IMAGE, "tag", &[])), Action::Ignore);
    }

    #[test]
    fn stopping_containers_are_withdrawn_with_their_task() {
        let task = [(TASK_ID, "t9"), ("signal", "15")];
        for a in ["kill", "stop", "die", "health_status: unhealthy"] {
            assert_eq!(
                classify(&event(Type::CONTAINER, a, &task)),
                Action::Withdraw(vec!["c1".into(), "t9".into()]),
                "{a}"
            );
        }
        assert_eq!(
            classify(&event(Type::CONTAINER, "kill", &[("signal", "9")])),
            Action::Withdraw(vec!["c1".into()])
        );
    }

    #[test]
    fn reload_signals_do_not_withdraw() {
        for s in ["1", "HUP", "SIGUSR1", "12"] {
            let e = event(Type::CONTAINER, "kill", &[("signal", s)]);
            assert_eq!(classify(&e), Action::Refresh, "{s}");
        }
    }

    #[test]
    fn other_container_events() {
        assert_eq!(
            classify(&event(Type::CONTAINER, "start", &[(TASK_ID, "t1")])),
            Action::Readmit(vec!["c1".into(), "t1".into()])
        );
        for a in [
            "health_status: healthy",
            "health_status: starting",
            "destroy",
        ] {
            assert_eq!(
                classify(&event(Type::CONTAINER, a, &[])),
                Action::Refresh,
                "{a}"
            );
        }
        for a in [
            "exec_create: /bin/sh -c true",
            "exec_die",
            "attach",
            "create",
            "top",
        ] {
            assert_eq!(
                classify(&event(Type::CONTAINER, a, &[])),
                Action::Ignore,
                "{a}"
            );
        }
    }
}
