//! Tests of loading from flags and the environment alone: bare flags, value and
//! address errors, environment names.
#![allow(clippy::unwrap_used)]

use super::tests::{addr, invalid, strings, vars, TempDir};
use super::*;

#[test]
fn bare_flags_turn_sections_on_and_false_turns_them_off() {
    let dir = TempDir::new("bare");
    let loaded = dir
        .loader()
        .args(strings(&[
            "--api",
            "--api.insecure",
            "--ping",
            "--accesslog",
            "--metrics.prometheus=false",
            "--providers.docker",
            "--entrypoints.web.address=:80",
            "--entrypoints.web.http.tls",
        ]))
        .load()
        .unwrap();
    let c = &loaded.config;
    assert!(c.api.as_ref().unwrap().insecure);
    assert_eq!(c.ping.as_ref().unwrap().entry_point, ADMIN_ENTRYPOINT);
    assert!(c.access_log.is_some());
    assert_eq!(c.metrics.as_ref().unwrap().prometheus, None);
    assert_eq!(c.providers.docker, Some(Default::default()));
    assert_eq!(
        c.entry_points["web"].http.tls,
        Some(EntryPointTls::default())
    );

    let off = dir
        .loader()
        .args(strings(&["--api=false", "--ping=false", "--metrics=false"]))
        .load()
        .unwrap();
    assert_eq!(
        (off.config.api, off.config.ping, off.config.metrics),
        (None, None, None)
    );
}

#[test]
fn bad_values_name_their_source() {
    let dir = TempDir::new("values");
    let err = dir
        .loader()
        .env(vars(&[("WHARF_PING_TERMINATINGSTATUSCODE", "teapot")]))
        .load()
        .unwrap_err();
    let (origin, error) = invalid(err);
    assert_eq!(
        origin,
        Origin::Env("WHARF_PING_TERMINATINGSTATUSCODE".into())
    );
    assert_eq!(error.path, "ping.terminatingStatusCode");

    let err = dir
        .loader()
        .args(strings(&[
            "--entrypoints.web.transport.lifecycle.gracetimeout=soon",
        ]))
        .load()
        .unwrap_err();
    let (_, error) = invalid(err);
    assert_eq!(
        error.path,
        "entryPoints.web.transport.lifeCycle.graceTimeOut"
    );

    let err = dir
        .loader()
        .args(strings(&["--entrypoints.web[0]=x"]))
        .load()
        .unwrap_err();
    assert!(matches!(invalid(err).0, Origin::Flag(_)));
}

#[test]
fn bad_addresses_name_the_entrypoint() {
    let dir = TempDir::new("address");
    for (arg, reason) in [
        ("--entrypoints.web.address=:http", "port"),
        ("--entrypoints.web.address=:53/udp", "UDP"),
        ("--entrypoints.web.address=::1:80", "brackets"),
        ("--entrypoints.web.asdefault", "no address"),
    ] {
        let err = dir.loader().args(strings(&[arg])).load().unwrap_err();
        let ConfigError::EntryPointAddress {
            entrypoint,
            reason: why,
            ..
        } = &err
        else {
            panic!("{arg}: {err:?}");
        };
        assert_eq!(entrypoint, "web");
        assert!(why.contains(reason), "{arg}: {why}");
        assert!(
            err.to_string()
                .starts_with("entrypoint `web`: invalid address"),
            "{err}"
        );
    }
}

#[test]
fn environment_names_follow_the_schema() {
    let dir = TempDir::new("env");
    let loaded = dir
        .loader()
        .env(vars(&[
            ("TRAEFIK_ENTRYPOINTS_WEB_SECURE_ADDRESS", ":8443"),
            (
                "TRAEFIK_ENTRYPOINTS_WEB_SECURE_HTTP_TLS_DOMAINS_0_MAIN",
                "example.net",
            ),
            (
                "TRAEFIK_ENTRYPOINTS_WEB_SECURE_HTTP_TLS_DOMAINS_0_SANS",
                "a.example.net,b.example.net",
            ),
            (
                "TRAEFIK_ENTRYPOINTS_WEB_SECURE_FORWARDEDHEADERS_TRUSTEDIPS",
                "10.0.0.1,10.0.0.2",
            ),
            (
                "TRAEFIK_CERTIFICATESRESOLVERS_LE_ACME_EMAIL",
                "ops@example.net",
            ),
            ("TRAEFIK_PROVIDERS_DOCKER_EXPOSEDBYDEFAULT", "false"),
        ]))
        .load()
        .unwrap();
    let c = &loaded.config;
    let ep = &c.entry_points["web_secure"];
    let domain = &ep.http.tls.as_ref().unwrap().domains[0];
    assert_eq!(domain.main, "example.net");
    assert_eq!(domain.sans, vec!["a.example.net", "b.example.net"]);
    assert_eq!(
        ep.forwarded_headers.trusted_ips,
        vec!["10.0.0.1", "10.0.0.2"]
    );
    assert_eq!(loaded.addresses["web_secure"], addr("0.0.0.0:8443"));
    let acme = c.certificates_resolvers["le"].acme.as_ref().unwrap();
    assert_eq!(acme.email, "ops@example.net");
    assert!(!c.providers.docker.as_ref().unwrap().exposed_by_default);
}

#[test]
fn parses_traefik_addresses() {
    for (input, expected) in [
        (":80", "0.0.0.0:80"),
        ("0.0.0.0:80", "0.0.0.0:80"),
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("[::]:443", "[::]:443"),
        ("[::1]:8443/tcp", "[::1]:8443"),
        (":443/TCP", "0.0.0.0:443"),
        ("localhost:9000", "127.0.0.1:9000"),
        (" 10.1.2.3:25 ", "10.1.2.3:25"),
    ] {
        assert_eq!(parse_address(input).unwrap(), addr(expected), "{input}");
    }
    for input in [
        "", "80", ":", ":99999", ":80/udp", ":80/sctp", "[::1:80", "::1:80",
    ] {
        let err = parse_address(input).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Address { address, .. } if address == input),
            "{input}: {err:?}"
        );
    }
}

#[test]
fn loads_a_typical_compose_command_line() {
    let loaded = Loader::new()
        .working_dir("/nonexistent/wharf-test")
        .args(strings(&[
            "--api.insecure=true",
            "--providers.docker=true",
            "--providers.docker.exposedbydefault=false",
            "--entrypoints.web.address=:80",
            "--entrypoints.websecure.address=:443",
            "--entrypoints.web.http.redirections.entrypoint.to=websecure",
            "--entrypoints.web.http.redirections.entrypoint.scheme=https",
            "--entrypoints.websecure.http.tls.certresolver=myresolver",
            "--certificatesresolvers.myresolver.acme.httpchallenge=true",
            "--certificatesresolvers.myresolver.acme.httpchallenge.entrypoint=web",
            "--certificatesresolvers.myresolver.acme.email=user@example.com",
            "--certificatesresolvers.myresolver.acme.storage=/letsencrypt/acme.json",
            "--log.level=DEBUG",
            "--accesslog=true",
        ]))
        .load()
        .unwrap();
    let c = &loaded.config;
    assert!(c.api.as_ref().unwrap().insecure);
    assert!(!c.providers.docker.as_ref().unwrap().exposed_by_default);
    let redirect = c.entry_points["web"].http.redirections.as_ref().unwrap();
    let to = redirect.entry_point.as_ref().unwrap();
    assert_eq!(
        (to.to.as_str(), to.scheme.as_str(), to.permanent),
        ("websecure", "https", true)
    );
    let tls = c.entry_points["websecure"].http.tls.as_ref().unwrap();
    assert_eq!(tls.cert_resolver.as_deref(), Some("myresolver"));
    let acme = c.certificates_resolvers["myresolver"]
        .acme
        .as_ref()
        .unwrap();
    assert_eq!(acme.http_challenge.as_ref().unwrap().entry_point, "web");
    assert_eq!(acme.email, "user@example.com");
    assert_eq!(acme.storage.as_deref(), Some("/letsencrypt/acme.json"));
    assert_eq!(
        acme.ca_server,
        crate::config::static_config::LETS_ENCRYPT_PRODUCTION
    );
    assert_eq!(acme.key_type, crate::config::static_config::KeyType::Ec256);
    assert_eq!(c.log.level, "DEBUG");
    assert!(c.access_log.is_some());
    assert_eq!(loaded.config_file, None);
    assert_eq!(loaded.addresses.len(), 3);
}

#[test]
fn metrics_and_access_log_options_from_flags() {
    let dir = TempDir::new("observability");
    let loaded = dir
        .loader()
        .args(strings(&[
            "--metrics.prometheus.buckets=0.5,1,2.5",
            "--metrics.prometheus.addrouterslabels=true",
            "--metrics.prometheus.entryPoint=traefik",
            "--accesslog.format=json",
            "--accesslog.bufferingsize=50",
            "--accesslog.filters.statuscodes=400-499,503",
            "--accesslog.filters.minduration=10ms",
            "--accesslog.fields.names.ClientHost=drop",
            "--accesslog.fields.headers.defaultmode=keep",
            "--accesslog.fields.headers.names.Authorization=redact",
        ]))
        .load()
        .unwrap();
    let c = &loaded.config;
    let prometheus = c.metrics.as_ref().unwrap().prometheus.as_ref().unwrap();
    assert_eq!(prometheus.buckets, vec![0.5, 1.0, 2.5]);
    assert!(prometheus.add_routers_labels && prometheus.add_services_labels);
    let access = c.access_log.as_ref().unwrap();
    assert_eq!(access.buffering_size, Some(50));
    let filters = access.filters.as_ref().unwrap();
    assert_eq!(filters.status_codes, vec!["400-499", "503"]);
    assert_eq!(
        filters.min_duration.map(|d| d.0),
        Some(std::time::Duration::from_millis(10))
    );
    let fields = access.fields.as_ref().unwrap();
    assert_eq!(fields.names["ClientHost"], "drop");
    let headers = fields.headers.as_ref().unwrap();
    assert_eq!(headers.default_mode.as_deref(), Some("keep"));
    assert_eq!(headers.names["Authorization"], "redact");
}
