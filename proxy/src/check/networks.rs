//! The networks a service is attached to, named as Swarm names them, and the label
//! engine's network choice (stage 2, [`resolve`]) tried offline with a stand-in
//! task, so that a labelled network the service is not on is found before deploying.
//!
//! Swarm names: a network declared `external` keeps its name (or `external.name`),
//! one with `name:` is called that, any other is `<stack>_<key>`; a service without
//! `networks` is on `<stack>_default`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_yaml_ng::{Mapping, Value};

use super::compose::ServiceDef;
use super::report::Issue;
use super::tree::key_text;
use crate::provider::labels::{
    parse_bool, resolve, Endpoint, LabelIssue, LabelSettings, Labeled, Workload,
    STACK_NAMESPACE_LABEL,
};

/// The Swarm names of the networks `def` is attached to, and an error for each
/// network it uses that the file does not declare (`docker stack deploy` refuses it).
pub fn attached(def: &ServiceDef, declared: &Mapping, stack: &str) -> (Vec<String>, Vec<Issue>) {
    let keys: Vec<String> = match &def.networks {
        None | Some(Value::Null) => vec!["default".into()],
        Some(Value::Sequence(items)) => items.iter().map(key_text).collect(),
        Some(Value::Mapping(map)) => map.keys().map(key_text).collect(),
        Some(_) => {
            return (
                Vec::new(),
                vec![Issue::error("`networks` must be a list or a map").at_line(def.line)],
            )
        }
    };
    let mut names = Vec::new();
    let mut issues = Vec::new();
    for key in keys {
        match declared.get(key.as_str()) {
            Some(decl) => names.push(swarm_name(&key, decl, stack)),
            None if key == "default" => names.push(format!("{stack}_default")),
            None => issues.push(
                Issue::error(format!(
                    "network `{key}` is not declared in the top-level `networks:`; \
                     `docker stack deploy` refuses the file"
                ))
                .at_line(def.line),
            ),
        }
    }
    (names, issues)
}

fn swarm_name(key: &str, decl: &Value, stack: &str) -> String {
    let name = decl.get("name").and_then(Value::as_str);
    let external = decl.get("external");
    let external_name = external.and_then(|e| e.get("name")).and_then(Value::as_str);
    let is_external = match external {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => parse_bool(s).unwrap_or(false),
        Some(Value::Mapping(_)) => true,
        _ => false,
    };
    match (external_name, name) {
        (Some(n), _) => n.to_string(),
        (None, Some(n)) => n.to_string(),
        (None, None) if is_external => key.to_string(),
        (None, None) => format!("{stack}_{key}"),
    }
}

/// Whether the proxy can pick a network to reach the service: runs the label
/// engine's stage 2 on a stand-in task with an address on each attached network.
/// Being on several networks without naming one is a warning (Traefik picks one at
/// random; the provider's own `network` setting, unknown here, may settle it).
pub fn reachable(
    labeled: &Labeled,
    def: &ServiceDef,
    networks: &[String],
    stack: &str,
    settings: &LabelSettings,
) -> Result<(), Vec<LabelIssue>> {
    let named = labeled.network.is_some() || settings.network.is_some();
    if !named && networks.len() > 1 {
        return Err(Vec::new());
    }
    let mut labels: BTreeMap<String, String> = def
        .deploy_labels
        .iter()
        .map(|l| (l.key.clone(), l.value.clone()))
        .collect();
    labels.insert(STACK_NAMESPACE_LABEL.into(), stack.into());
    let address = |i: usize, host: u8| IpAddr::from([10, u8::try_from(i).unwrap_or(255), 0, host]);
    let dnsrr = def.endpoint_mode.as_deref() == Some("dnsrr");
    let workload = Workload {
        name: format!("{stack}_{}", def.name),
        labels,
        networks: networks.to_vec(),
        endpoints: vec![Endpoint {
            id: "offline".into(),
            addresses: networks
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), address(i, 2)))
                .collect(),
        }],
        vips: if dnsrr {
            BTreeMap::new()
        } else {
            networks
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), address(i, 1)))
                .collect()
        },
        exposed_ports: Vec::new(),
    };
    resolve(labeled, &workload, settings).map(|_| ())
}

/// The warning for a service on several networks, none of them named.
pub fn ambiguous(networks: &[String], settings: &LabelSettings) -> Issue {
    let label = if settings.swarm_mode {
        "traefik.swarm.network"
    } else {
        "traefik.docker.network"
    };
    Issue::warning(format!(
        "the service is on several networks ({}) and no label names the one to use: \
         Traefik picks one at random (wharf refuses) unless the provider's `network` is \
         set; set `{label}` (or check with --provider-network)",
        networks.join(", ")
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::check::compose;
    use crate::check::interpolate::Variables;
    use crate::check::report::Severity;
    use crate::provider::labels::parse_workload;

    const STACK: &str = "\
services:
  plain:
    image: a
  listed:
    networks: [public, named, back, default]
  mapped:
    networks:
      back:
        aliases: [x]
  lost:
    networks: [nowhere]
networks:
  public:
    external: true
  named:
    name: shared-net
  back: {}
  legacy:
    external:
      name: old-net
";

    fn names(service: usize) -> (Vec<String>, Vec<Issue>) {
        let loaded = compose::load(STACK, &Variables::new());
        let declared = loaded.networks.unwrap();
        attached(&loaded.services[service], &declared, "st")
    }

    #[test]
    fn swarm_names_of_attached_networks() {
        assert_eq!(names(0).0, vec!["st_default"]);
        assert_eq!(
            names(1).0,
            vec!["public", "shared-net", "st_back", "st_default"]
        );
        assert_eq!(names(2).0, vec!["st_back"]);
        let (found, issues) = names(3);
        assert!(found.is_empty());
        assert_eq!(issues[0].severity, Severity::Error);
        assert!(issues[0].message.contains("`nowhere` is not declared"));
        let legacy = serde_yaml_ng::from_str::<Value>("external: {name: old-net}").unwrap();
        assert_eq!(swarm_name("legacy", &legacy, "st"), "old-net");
        let text = serde_yaml_ng::from_str::<Value>("external: 'true'").unwrap();
        assert_eq!(swarm_name("pub", &text, "st"), "pub");
    }

    fn reach(
        labels: &[(&str, &str)],
        networks: &[&str],
        s: &LabelSettings,
    ) -> Result<(), Vec<LabelIssue>> {
        let def = ServiceDef {
            name: "web".into(),
            deploy_labels: labels
                .iter()
                .map(|(k, v)| crate::check::labels::Label {
                    key: k.to_string(),
                    value: v.to_string(),
                    index: None,
                    pos: 0,
                })
                .collect(),
            ..ServiceDef::default()
        };
        let map: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let labeled = parse_workload("st_web", &map, s).unwrap().unwrap();
        let networks: Vec<String> = networks.iter().map(|n| n.to_string()).collect();
        reachable(&labeled, &def, &networks, "st", s)
    }

    #[test]
    fn network_choice() {
        const PORT: (&str, &str) = ("traefik.http.services.web.loadbalancer.server.port", "80");
        let s = LabelSettings::swarm();
        assert!(reach(&[PORT], &["st_default"], &s).is_ok());
        // Several networks, none named: a warning (empty error list).
        assert_eq!(
            reach(&[PORT], &["public", "st_default"], &s),
            Err(Vec::new())
        );
        // Named, with or without the stack prefix.
        let named = [PORT, ("traefik.docker.network", "back")];
        assert!(reach(&named, &["public", "st_back"], &s).is_ok());
        // Named but not attached: an error naming the label.
        let e = reach(&named, &["public", "st_default"], &s).unwrap_err();
        assert_eq!(e[0].label.as_deref(), Some("traefik.docker.network"));
        // The provider's network.
        let with_default = LabelSettings {
            network: Some("public".into()),
            ..LabelSettings::swarm()
        };
        assert!(reach(&[PORT], &["public", "st_default"], &with_default).is_ok());
        assert!(reach(&[PORT], &["st_default", "other"], &with_default).is_err());
    }
}
