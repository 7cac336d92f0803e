use super::*;
use crate::check::compose;
use crate::check::interpolate::Variables;
use crate::check::report::Severity;

fn lint(text: &str) -> Vec<ServiceReport> {
    lint_with(text, &LabelSettings::swarm())
}

fn lint_with(text: &str, settings: &LabelSettings) -> Vec<ServiceReport> {
    let loaded = compose::load(text, &Variables::new());
    let mut reports = Vec::new();
    let mut configs = Vec::new();
    let stack = Stack {
        name: "st",
        networks: loaded.networks.as_ref(),
    };
    for def in &loaded.services {
        let (report, config) = service(def, stack, settings);
        if let Some(config) = config {
            configs.push((report.swarm_name.clone(), config));
        }
        reports.push(report);
    }
    merge_conflicts(&mut reports, configs);
    reports
}

fn messages(r: &ServiceReport, severity: Severity) -> Vec<String> {
    r.issues
        .iter()
        .filter(|i| i.severity == severity)
        .map(|i| format!("{}: {}", i.label.as_deref().unwrap_or("-"), i.message))
        .collect()
}

#[test]
fn container_labels_with_traefik_keys_warn_with_label_and_line() {
    let reports = lint(
        "\
services:
  web:
    image: nginx
    labels:
      - traefik.enable=true
      - com.example.team=web
      - traefik.http.routers.web.rule=Host(`a`)
",
    );
    let web = &reports[0];
    assert_eq!(web.status, Status::NotExposed);
    assert_eq!(
        web.reason.as_deref(),
        Some("no traefik labels under `deploy.labels`")
    );
    let warnings: Vec<&Issue> = web.issues.iter().collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(warnings[0].label.as_deref(), Some("traefik.enable"));
    assert_eq!(warnings[0].line, Some(5));
    assert_eq!(warnings[0].severity, Severity::Warning);
    assert!(warnings[0].message.contains("ignored in Swarm mode"));
    assert_eq!(
        warnings[1].label.as_deref(),
        Some("traefik.http.routers.web.rule")
    );
    assert_eq!(warnings[1].line, Some(7));
}

#[test]
fn exposed_service_summary() {
    let reports = lint(
        "\
services:
  web:
    deploy:
      labels:
        - traefik.http.routers.web.rule=Host(`a.example.com`)
        - traefik.http.routers.web.entrypoints=websecure
        - traefik.http.routers.web.tls.certresolver=le
        - traefik.http.routers.web.middlewares=auth
        - traefik.http.middlewares.auth.basicauth.users=u:p
        - traefik.http.services.web.loadbalancer.server.port=8080
",
    );
    let web = &reports[0];
    assert_eq!(web.status, Status::Exposed, "{:?}", web.issues);
    assert_eq!(web.swarm_name, "st_web");
    let r = &web.routers[0];
    assert_eq!(r.name, "web");
    assert_eq!(r.rule.as_deref(), Some("Host(`a.example.com`)"));
    assert_eq!(r.priority, 21);
    assert_eq!(r.priority_source, "rule length");
    assert_eq!(r.entrypoints, vec!["websecure"]);
    assert_eq!(
        r.tls.as_ref().and_then(|t| t.cert_resolver.as_deref()),
        Some("le")
    );
    assert_eq!(r.middlewares, vec!["auth"]);
    assert_eq!(r.service.as_deref(), Some("web"));
    assert_eq!(r.port.as_deref(), Some("8080"));
    assert!(!r.default_rule);
    assert_eq!(web.middlewares[0].kind, "basicauth");
}

#[test]
fn not_exposed_reasons() {
    let text = "\
services:
  off:
    deploy:
      labels: [traefik.enable=false]
  quiet:
    deploy:
      labels: [traefik.http.services.q.loadbalancer.server.port=80]
";
    let reports = lint(text);
    assert_eq!(
        reports[0].reason.as_deref(),
        Some("`traefik.enable` is false")
    );
    assert_eq!(reports[1].status, Status::Exposed);
    let settings = LabelSettings {
        exposed_by_default: false,
        ..LabelSettings::swarm()
    };
    let reports = lint_with(text, &settings);
    assert_eq!(reports[1].status, Status::NotExposed);
    assert!(reports[1]
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("exposedByDefault")));
}

#[test]
fn label_engine_errors_carry_label_and_line() {
    let reports = lint(
        "\
services:
  web:
    deploy:
      labels:
        - traefik.http.routers.web.rule=Host(`a`))
        - traefik.http.services.web.loadbalancer.server.port=80
  api:
    deploy:
      labels:
        - traefik.http.routers.api.rule=Host(`b`)
",
    );
    let errors = messages(&reports[0], Severity::Error);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("traefik.http.routers.web.rule: "));
    assert_eq!(reports[0].issues[0].line, Some(5));
    // A missing port rejects the service in Swarm mode.
    assert_eq!(reports[1].status, Status::Invalid);
    assert!(messages(&reports[1], Severity::Error)[0].contains("port"));
}

#[test]
fn routers_without_rule_labels_get_the_default_rule() {
    let reports = lint(
        "\
services:
  web:
    deploy:
      labels:
        - traefik.http.routers.typo.entrypoints=websecure
        - traefik.http.services.web.loadbalancer.server.port=80
  auto:
    deploy:
      labels:
        - traefik.http.services.auto.loadbalancer.server.port=80
",
    );
    let typo = &reports[0].routers[0];
    assert!(typo.default_rule);
    assert_eq!(typo.rule.as_deref(), Some("Host(`st-web`)"));
    assert!(messages(&reports[0], Severity::Warning)[0].contains("no `rule`"));
    // A router made by default is not a mistake: no warning.
    assert!(reports[1].routers[0].default_rule);
    assert!(reports[1].issues.is_empty(), "{:?}", reports[1].issues);
}

#[test]
fn services_shared_across_the_stack() {
    let reports = lint(
        "\
services:
  a:
    deploy:
      labels:
        - traefik.http.routers.r.rule=Host(`a`)
        - traefik.http.services.s.loadbalancer.server.port=80
  b:
    deploy:
      labels:
        - traefik.http.routers.r.rule=Host(`b`)
        - traefik.http.services.s.loadbalancer.server.port=80
",
    );
    for r in &reports {
        let errors = messages(r, Severity::Error);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let warnings = messages(r, Severity::Warning);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("HTTP service `s` is also defined")),
            "{warnings:?}"
        );
    }
}

#[test]
fn unset_required_variables_do_not_cascade() {
    let reports = lint(
        "\
services:
  web:
    networks: [\"${NET?network}\"]
    deploy:
      labels:
        - traefik.docker.network=${NET?network}
        - traefik.http.services.web.loadbalancer.server.port=${PORT?port}
networks:
  public:
    external: true
",
    );
    let errors = messages(&reports[0], Severity::Error);
    // Only the variables themselves are errors.
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e.contains("required variable")));
    let warnings = messages(&reports[0], Severity::Warning);
    assert!(!warnings.is_empty());
    assert!(
        warnings.iter().all(|w| w.contains("unset variable's name")),
        "{warnings:?}"
    );
}
