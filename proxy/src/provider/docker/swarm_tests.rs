#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use bollard::models::{
    NetworkAttachmentConfig, ServiceEndpoint, ServiceEndpointVirtualIps, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, ServiceUpdateStatus, TaskSpec, TaskStatus,
};

use super::*;

fn network(id: &str, name: &str, ingress: bool) -> Network {
    Network {
        id: Some(id.into()),
        name: Some(name.into()),
        ingress: Some(ingress),
        ..Default::default()
    }
}

fn service(id: &str, name: &str, replicas: i64, nets: &[&str]) -> Service {
    Service {
        id: Some(id.into()),
        spec: Some(ServiceSpec {
            name: Some(name.into()),
            labels: Some(HashMap::from([(
                "traefik.http.services.web.loadbalancer.server.port".to_string(),
                "80".to_string(),
            )])),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(replicas),
                }),
                ..Default::default()
            }),
            task_template: Some(TaskSpec {
                networks: Some(
                    nets.iter()
                        .map(|n| NetworkAttachmentConfig {
                            target: Some(n.to_string()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn task(
    id: &str,
    service: &str,
    desired: TaskState,
    state: TaskState,
    addrs: &[(&str, &str)],
) -> SwarmTask {
    SwarmTask {
        task: Task {
            id: Some(id.into()),
            service_id: Some(service.into()),
            desired_state: Some(desired),
            status: Some(TaskStatus {
                state: Some(state),
                ..Default::default()
            }),
            ..Default::default()
        },
        networks_attachments: Some(
            addrs
                .iter()
                .map(|(net, addr)| NetworkAttachment {
                    network: Some(AttachedNetwork {
                        id: Some(net.to_string()),
                        spec: None,
                    }),
                    addresses: Some(vec![addr.to_string()]),
                })
                .collect(),
        ),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn running_tasks_become_endpoints_with_network_names_and_bare_ips() {
    use TaskState::*;
    let state = SwarmState {
        services: vec![service("s1", "stack_web", 3, &["n1"])],
        networks: vec![
            network("n1", "stack_default", false),
            network("ing", "ingress", true),
        ],
        tasks: vec![
            task(
                "t1",
                "s1",
                RUNNING,
                RUNNING,
                &[("n1", "10.0.1.5/24"), ("ing", "10.0.0.9/24")],
            ),
            task("t2", "s1", RUNNING, STARTING, &[("n1", "10.0.1.6/24")]),
            task("t3", "s1", RUNNING, PREPARING, &[("n1", "10.0.1.7/24")]),
            task("t4", "s1", SHUTDOWN, RUNNING, &[("n1", "10.0.1.8/24")]),
            task("t5", "s1", RUNNING, RUNNING, &[("n1", "10.0.1.9/24")]),
            task("t6", "other", RUNNING, RUNNING, &[("n1", "10.0.1.10/24")]),
        ],
    };
    let w = state.workloads();
    assert_eq!(w.len(), 1);
    let w = &w[0];
    assert_eq!(w.name, "stack_web");
    assert_eq!(
        w.labels["traefik.http.services.web.loadbalancer.server.port"],
        "80"
    );
    assert_eq!(w.networks, ["stack_default"], "ingress is left out");
    let ids: Vec<_> = w.endpoints.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["t1", "t5"], "only running tasks that should run");
    assert_eq!(
        w.endpoints[0].addresses,
        BTreeMap::from([("stack_default".to_string(), ip("10.0.1.5"))])
    );
    assert_eq!(state.converging(), ["stack_web"], "2 of 3 replicas running");
}

#[test]
fn vips_and_attachment_spec_names() {
    let mut s = service("s1", "api", 1, &["n1", "n2"]);
    s.endpoint = Some(ServiceEndpoint {
        virtual_ips: Some(vec![
            ServiceEndpointVirtualIps {
                network_id: Some("n1".into()),
                addr: Some("10.0.1.2/24".into()),
            },
            ServiceEndpointVirtualIps {
                network_id: Some("ing".into()),
                addr: Some("10.0.0.2/24".into()),
            },
        ]),
        ..Default::default()
    });
    let mut t = task("t1", "s1", TaskState::RUNNING, TaskState::RUNNING, &[]);
    // A network missing from the list (created after it) is named by the task's copy.
    t.networks_attachments = Some(vec![NetworkAttachment {
        network: Some(AttachedNetwork {
            id: Some("n2".into()),
            spec: Some(AttachedNetworkSpec {
                name: Some("late".into()),
                ingress: None,
            }),
        }),
        addresses: Some(vec!["fd00::5/64".into()]),
    }]);
    let state = SwarmState {
        services: vec![s],
        networks: vec![
            network("n1", "public", false),
            network("ing", "ingress", true),
        ],
        tasks: vec![t],
    };
    let w = &state.workloads()[0];
    assert_eq!(
        w.vips,
        BTreeMap::from([("public".to_string(), ip("10.0.1.2"))])
    );
    assert_eq!(w.endpoints[0].addresses["late"], ip("fd00::5"));
    assert_eq!(w.networks, ["late", "public"]);
    assert!(state.converging().is_empty());
}

#[test]
fn strips_prefixes() {
    assert_eq!(strip_prefix("10.0.1.5/24"), Some(ip("10.0.1.5")));
    assert_eq!(strip_prefix("10.0.1.5"), Some(ip("10.0.1.5")));
    assert_eq!(strip_prefix("fd00::1/64"), Some(ip("fd00::1")));
    assert_eq!(strip_prefix(""), None);
    assert_eq!(strip_prefix("nope/24"), None);
}

#[test]
fn convergence() {
    use TaskState::*;
    let s = service("s1", "web", 2, &[]);
    let running = task("a", "s1", RUNNING, RUNNING, &[]);
    let running2 = task("b", "s1", RUNNING, RUNNING, &[]);
    let pending = task("c", "s1", RUNNING, PENDING, &[]);
    assert!(!converging(&s, &[&running, &running2]));
    assert!(converging(&s, &[&running]), "one replica missing");
    assert!(converging(&s, &[&running, &running2, &pending]));
    let mut updating = s.clone();
    updating.update_status = Some(ServiceUpdateStatus {
        state: Some(UpdateState::UPDATING),
        ..Default::default()
    });
    assert!(converging(&updating, &[&running, &running2]));
    updating.update_status = Some(ServiceUpdateStatus {
        state: Some(UpdateState::COMPLETED),
        ..Default::default()
    });
    assert!(!converging(&updating, &[&running, &running2]));
}

#[test]
fn decodes_the_engine_task_json() {
    let json = r#"[{"ID":"ohlkod7","ServiceID":"q5zz","Slot":1,"NodeID":"ew1f",
        "Status":{"Timestamp":"2026-11-25T08:26:18.279374652Z","State":"running","Message":"started",
          "ContainerStatus":{"ContainerID":"997d","PID":16302,"ExitCode":0},"PortStatus":{}},
        "DesiredState":"running",
        "NetworksAttachments":[{"Network":{"ID":"3ll8","Version":{"Index":12},
          "Spec":{"Name":"wharf-dock-test-net","Labels":{},"Attachable":true,"Scope":"swarm"}},
          "Addresses":["10.0.1.3/24"]}]},
        {"ID":"x","ServiceID":"q5zz","DesiredState":"shutdown","NetworksAttachments":null}]"#;
    let tasks: Vec<SwarmTask> = serde_json::from_str(json).unwrap();
    assert!(serving(&tasks[0].task));
    assert!(!serving(&tasks[1].task));
    let nets = Networks::default();
    let e = task_endpoint(&tasks[0], &nets).unwrap();
    assert_eq!(e.addresses["wharf-dock-test-net"], ip("10.0.1.3"));
}
