use super::*;
use crate::check::report::Severity;

fn vars() -> Variables {
    let mut v = Variables::new();
    v.set("DOMAIN", "example.com");
    v
}

fn keys(labels: &[Label]) -> Vec<(&str, &str)> {
    labels
        .iter()
        .map(|l| (l.key.as_str(), l.value.as_str()))
        .collect()
}

#[test]
fn reads_deploy_and_container_labels_with_lines() {
    let text = "\
version: '3.8'
services:
  web:
    image: nginx
    labels:
      - traefik.enable=true
    deploy:
      labels:
        - traefik.http.routers.web.rule=Host(`${DOMAIN}`)
        - \"traefik.http.services.web.loadbalancer.server.port=80\"
  db:
    image: postgres
";
    let loaded = load(text, &vars());
    assert_eq!(loaded.kind, FileKind::Stack);
    assert!(loaded.issues.is_empty(), "{:?}", loaded.issues);
    let web = &loaded.services[0];
    assert_eq!(web.name, "web");
    assert_eq!(web.line, Some(3));
    assert_eq!(
        keys(&web.deploy_labels),
        vec![
            ("traefik.http.routers.web.rule", "Host(`example.com`)"),
            ("traefik.http.services.web.loadbalancer.server.port", "80"),
        ]
    );
    assert_eq!(web.deploy_lines, vec![Some(9), Some(10)]);
    assert_eq!(
        keys(&web.container_labels),
        vec![("traefik.enable", "true")]
    );
    assert_eq!(web.container_lines, vec![Some(6)]);
    assert_eq!(loaded.services[1].name, "db");
    assert_eq!(loaded.services[1].line, Some(11));
}

#[test]
fn invalid_yaml_has_a_line() {
    let text = "services:\n  web:\n    deploy:\n      labels # oops\n        - a=b\n";
    let loaded = load(text, &vars());
    assert_eq!(loaded.kind, FileKind::Invalid);
    assert_eq!(loaded.issues.len(), 1);
    assert_eq!(loaded.issues[0].severity, Severity::Error);
    assert!(loaded.issues[0].line.is_some());
    assert!(loaded.issues[0].message.starts_with("invalid YAML"));
}

#[test]
fn merge_keys_are_applied() {
    let text = "\
x-labels: &labels
  traefik.enable: 'true'
services:
  web:
    deploy:
      labels:
        <<: *labels
        traefik.http.routers.web.rule: Host(`a`)
";
    let loaded = load(text, &vars());
    assert_eq!(
        keys(&loaded.services[0].deploy_labels),
        vec![
            ("traefik.http.routers.web.rule", "Host(`a`)"),
            ("traefik.enable", "true"),
        ]
    );
}

#[test]
fn fragments_and_other_yaml() {
    let fragment = "web:\n  image: nginx\n  deploy:\n    labels:\n      - traefik.enable=true\n";
    let loaded = load(fragment, &vars());
    assert_eq!(loaded.kind, FileKind::Fragment);
    assert_eq!(loaded.issues[0].severity, Severity::Warning);
    assert_eq!(loaded.services[0].name, "web");
    assert_eq!(loaded.services[0].deploy_labels.len(), 1);

    let prometheus = "global:\n  scrape_interval: 15s\nrule_files:\n  - a.yml\n";
    assert_eq!(load(prometheus, &vars()).kind, FileKind::Skipped);
    assert_eq!(load("", &vars()).kind, FileKind::Skipped);
    assert_eq!(load("# only a comment\n", &vars()).kind, FileKind::Skipped);
    assert_eq!(load("- a\n- b\n", &vars()).kind, FileKind::Skipped);
}

#[test]
fn interpolation_problems_name_service_label_and_variable() {
    let text = "\
services:
  web:
    command: --email=${EMAIL?Variable not set}
    deploy:
      labels:
        - traefik.http.routers.web.rule=Host(`${HOST?Variable not set}`)
        - traefik.http.routers.api.rule=Host(`${HOST?Variable not set}`)
        - traefik.http.middlewares.a.basicauth.users=u:$2y$05$abc
";
    let loaded = load(text, &vars());
    let web = &loaded.services[0];
    let errors: Vec<&Issue> = web
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].message.contains("EMAIL"));
    assert!(errors[0].message.contains("services.web.command"));
    assert!(errors[1].message.contains("required variable HOST"));
    assert!(
        errors[1].message.contains("2 values"),
        "{}",
        errors[1].message
    );
    assert_eq!(
        errors[1].label.as_deref(),
        Some("traefik.http.routers.web.rule")
    );
    assert_eq!(errors[1].line, Some(6));
    assert!(errors[2].message.contains("invalid interpolation"));
    assert_eq!(
        errors[2].label.as_deref(),
        Some("traefik.http.middlewares.a.basicauth.users")
    );
    assert_eq!(errors[2].line, Some(8));
    // Checking goes on with the variable's name in place of the value.
    assert_eq!(web.deploy_labels[0].value, "Host(`HOST`)");
}

#[test]
fn unset_variables_in_other_sections_are_file_issues() {
    let text = "\
services:
  web:
    image: nginx
volumes:
  data:
    driver: ${DRIVER}
x-ignored: ${NOT_INTERPOLATED?}
";
    let loaded = load(text, &vars());
    assert_eq!(loaded.issues.len(), 1, "{:?}", loaded.issues);
    assert_eq!(loaded.issues[0].severity, Severity::Warning);
    assert!(loaded.issues[0].message.contains("volumes.data.driver"));
}

#[test]
fn labels_in_map_form_keep_keys_as_written() {
    let text = "\
services:
  web:
    deploy:
      labels:
        traefik.http.routers.${NAME}.rule: Host(`${DOMAIN}`)
        traefik.http.services.web.loadbalancer.server.port: 8080
";
    let loaded = load(text, &vars());
    let web = &loaded.services[0];
    assert_eq!(
        keys(&web.deploy_labels),
        vec![
            ("traefik.http.routers.${NAME}.rule", "Host(`example.com`)"),
            ("traefik.http.services.web.loadbalancer.server.port", "8080"),
        ]
    );
    assert_eq!(web.deploy_lines, vec![Some(5), Some(6)]);
    assert_eq!(web.issues.len(), 1);
    assert_eq!(web.issues[0].line, Some(5));
}

#[test]
fn duplicate_keys_warn_and_keep_the_last_value() {
    let text = "\
services:
  web:
    image: a
    image: b
networks:
  a: {}
networks:
  b: {}
";
    let loaded = load(text, &vars());
    assert_eq!(loaded.kind, FileKind::Stack);
    assert_eq!(loaded.issues.len(), 1);
    assert_eq!(loaded.issues[0].severity, Severity::Warning);
    assert!(loaded.issues[0].message.contains("`networks`"));
    let web = &loaded.services[0];
    assert_eq!(web.issues.len(), 1);
    assert!(web.issues[0]
        .message
        .contains("key `image` is written twice in services.web"));
}

#[test]
fn unknown_deploy_keys_are_errors() {
    let text = "\
services:
  web:
    deploy:
      labels:
        - traefik.enable=true
      other-service:
        image: x
";
    let loaded = load(text, &vars());
    let web = &loaded.services[0];
    assert_eq!(web.issues.len(), 1);
    assert_eq!(web.issues[0].severity, Severity::Error);
    assert!(web.issues[0].message.contains("`other-service`"));
    assert_eq!(web.issues[0].line, Some(6));
}
