use super::*;

fn vars() -> Variables {
    let mut v = Variables::new();
    v.set("DOMAIN", "example.com");
    v.set("EMPTY", "");
    v.set("STACK", "prod");
    v
}

fn value(input: &str) -> String {
    let out = interpolate(input, &vars());
    assert!(
        out.findings.iter().all(|f| !f.is_error()),
        "{input}: {:?}",
        out.findings
    );
    out.value
}

fn findings(input: &str) -> Vec<Finding> {
    interpolate(input, &vars()).findings
}

#[test]
fn plain_text_is_unchanged() {
    assert_eq!(value("Host(`a.example.com`)"), "Host(`a.example.com`)");
    assert_eq!(value(""), "");
    assert!(findings("no variables").is_empty());
}

#[test]
fn braced_and_unbraced() {
    assert_eq!(value("Host(`${DOMAIN}`)"), "Host(`example.com`)");
    assert_eq!(value("$DOMAIN/x"), "example.com/x");
    assert_eq!(value("a.$DOMAIN.b"), "a.example.com.b");
    assert_eq!(value("${STACK}_web"), "prod_web");
    // An unbraced name stops at the first character that cannot be in a name.
    assert_eq!(value("$STACK-web"), "prod-web");
}

#[test]
fn unset_is_empty_with_a_warning() {
    let out = interpolate("x${NOPE}y$NOPE2", &vars());
    assert_eq!(out.value, "xy");
    assert_eq!(
        out.findings,
        vec![
            Finding::Unset {
                name: "NOPE".into()
            },
            Finding::Unset {
                name: "NOPE2".into()
            }
        ]
    );
    assert!(!out.findings[0].is_error());
    assert_eq!(out.findings[0].variable(), Some("NOPE"));
}

#[test]
fn set_but_empty_is_not_a_warning() {
    let out = interpolate("[${EMPTY}]", &vars());
    assert_eq!(out.value, "[]");
    assert!(out.findings.is_empty());
}

#[test]
fn defaults() {
    assert_eq!(value("${NOPE:-d}"), "d");
    assert_eq!(value("${EMPTY:-d}"), "d");
    assert_eq!(value("${DOMAIN:-d}"), "example.com");
    assert_eq!(value("${NOPE-d}"), "d");
    assert_eq!(value("${EMPTY-d}"), "");
    assert_eq!(value("${DOMAIN-d}"), "example.com");
    // The default may contain `-`, `:` and `?`.
    assert_eq!(value("${NOPE:-a-b:c?d}"), "a-b:c?d");
    assert_eq!(value("${NOPE:-}"), "");
    assert!(findings("${NOPE:-d}").is_empty());
}

#[test]
fn required() {
    let out = interpolate("Host(`${NOPE?Variable not set}`)", &vars());
    assert_eq!(out.value, "Host(`NOPE`)");
    assert_eq!(
        out.findings,
        vec![Finding::Required {
            name: "NOPE".into(),
            message: "Variable not set".into()
        }]
    );
    assert!(out.findings[0].is_error());
    let shown = out.findings[0].to_string();
    assert!(
        shown.contains("required variable NOPE is missing a value: Variable not set"),
        "{shown}"
    );

    // `?` accepts an empty value, `:?` does not.
    assert_eq!(value("${EMPTY?err}"), "");
    let out = interpolate("${EMPTY:?must not be empty}", &vars());
    assert!(out.findings[0].is_error());
    assert_eq!(value("${DOMAIN:?err}"), "example.com");
    assert_eq!(value("${DOMAIN?err}"), "example.com");
    // An empty message is allowed.
    assert!(interpolate("${NOPE?}", &vars()).findings[0].is_error());
}

#[test]
fn alternatives_warn_about_stack_deploy() {
    let out = interpolate("${DOMAIN:+set}", &vars());
    assert_eq!(out.value, "set");
    assert!(matches!(out.findings[..], [Finding::NotPortable { .. }]));
    assert_eq!(interpolate("${EMPTY:+set}", &vars()).value, "");
    assert_eq!(interpolate("${NOPE:+set}", &vars()).value, "");
    assert_eq!(interpolate("${EMPTY+set}", &vars()).value, "set");
    assert_eq!(interpolate("${NOPE+set}", &vars()).value, "");
    assert!(interpolate("${NOPE+set}", &vars())
        .findings
        .iter()
        .all(|f| !f.is_error()));
}

#[test]
fn dollar_dollar_is_a_literal_dollar() {
    assert_eq!(value("$$1"), "$1");
    assert_eq!(value("https://$${DOMAIN}/$${3}"), "https://${DOMAIN}/${3}");
    assert_eq!(
        value("test:$$apr1$$H6uskkkW$$IgXLP6ewTrSuBkTrqE8wj/"),
        "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"
    );
    assert_eq!(value("($$|/)"), "($|/)");
    assert_eq!(value("$$$DOMAIN"), "$example.com");
}

#[test]
fn invalid_templates_are_errors_and_keep_the_value() {
    for bad in [
        "$2y$05$abc",
        "cost $",
        "$(date)",
        "${}",
        "${1A}",
        "${DOMAIN",
        "${DOMAIN.x}",
        "${DOMAIN:=x}",
        "a $ b",
    ] {
        let out = interpolate(bad, &vars());
        assert_eq!(out.value, bad);
        assert!(
            matches!(out.findings.last(), Some(Finding::Invalid { .. })),
            "{bad}: {:?}",
            out.findings
        );
        assert!(out.findings.last().is_some_and(Finding::is_error));
        assert!(out
            .findings
            .last()
            .is_some_and(|f| f.to_string().contains("$$")));
    }
}

#[test]
fn nested_defaults_follow_compose() {
    assert_eq!(
        interpolate("${NOPE:-${DOMAIN}}", &vars()).value,
        "example.com"
    );
    assert_eq!(interpolate("${NOPE:-${NOPE2:-x}}/y", &vars()).value, "x/y");
    // docker stack deploy would read these literally: a warning says so.
    assert!(matches!(
        interpolate("${NOPE:-${DOMAIN}}", &vars()).findings[..],
        [Finding::NotPortable { .. }]
    ));
    // A default that is not used does not warn.
    assert!(interpolate("${DOMAIN:-${NOPE}}", &vars())
        .findings
        .is_empty());
}

#[test]
fn a_default_compose_rejects_is_kept_as_docker_stack_deploy_does() {
    let hash = "${PASS:-$2y$05$oZcj4FgdSFEYNCH0EH/3Vu7Hp72gkvEadHzMsDhGFkbvS/ZrKMKfK}";
    let out = interpolate(&format!("admin:{hash}"), &vars());
    assert_eq!(
        out.value,
        "admin:$2y$05$oZcj4FgdSFEYNCH0EH/3Vu7Hp72gkvEadHzMsDhGFkbvS/ZrKMKfK"
    );
    assert!(matches!(out.findings[..], [Finding::NotPortable { .. }]));
    assert!(out.findings.iter().all(|f| !f.is_error()));
}

#[test]
fn several_references_in_one_value() {
    assert_eq!(
        value("traefik.http.routers.${STACK}-web.rule=Host(`www.${DOMAIN}`) || Host(`$DOMAIN`)"),
        "traefik.http.routers.prod-web.rule=Host(`www.example.com`) || Host(`example.com`)"
    );
}

#[test]
fn names_are_case_sensitive_and_ascii() {
    assert!(matches!(findings("${domain}")[..], [Finding::Unset { .. }]));
    assert_eq!(value("${_under_1}x"), "x");
    assert!(interpolate("$é", &vars()).findings[0].is_error());
}

#[test]
fn env_file_wins_over_process_environment() {
    let v = Variables::from_sources(
        [("A".to_string(), "file".to_string())],
        [
            ("A".to_string(), "env".to_string()),
            ("B".to_string(), "env".to_string()),
        ],
    );
    assert_eq!(v.get("A"), Some("file"));
    assert_eq!(v.get("B"), Some("env"));
    assert_eq!(v.get("C"), None);
}
