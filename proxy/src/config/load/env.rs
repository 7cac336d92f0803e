//! Settings from environment variables: `WHARF_ENTRYPOINTS_WEB_ADDRESS=:80`, and the
//! same names with Traefik's `TRAEFIK_` prefix.
//!
//! Names are mapped onto the configuration by its [`Shape`], not by a second list of
//! keys. After the prefix the name is split on `_`, and each part is read against
//! the shape at that point:
//!
//! * a struct: the part is one field, matched ignoring case (`FORWARDEDHEADERS` is
//!   `forwardedHeaders`); a field name may also span several parts
//!   (`FORWARDED_HEADERS`);
//! * a map (entrypoints, resolvers): the part is a name, lowercased as Traefik does;
//!   when the rest does not fit, the name takes more parts as long as a key still
//!   follows (`WEB_SECURE_ADDRESS` is `web_secure.address`);
//! * a list: the part is an index (`DOMAINS_0_MAIN`); a whole list is written as
//!   `a,b,c` on the list itself;
//! * an untyped section (`serde_json::Value`): every remaining part is one lowercased
//!   key.
//!
//! Variables whose first part is not close to any top-level key (`TRAEFIK_PORT`, set
//! by container platforms) are not wharf settings and are ignored; any other name that
//! does not fit is an error naming the nearest key. `*_CONFIGFILE` names the
//! configuration file. `WHARF_CLUSTER_KEY` is the certificate store's encryption key,
//! read by the store itself, never a setting.

use super::{ConfigError, Origin};
use crate::config::tree::{canonical_field, nearest, render_path, PathSeg, Shape, TreeError};

/// Prefixes, lowest precedence first.
pub(super) const PREFIXES: [&str; 2] = ["TRAEFIK_", "WHARF_"];

/// A variable with the prefix that is not a setting (the store's encryption key).
const NOT_SETTINGS: &str = "WHARF_CLUSTER_KEY";

/// Most parts one struct field name may span.
const MAX_FIELD_PARTS: usize = 4;

/// One setting given as an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EnvSetting {
    /// The variable's name.
    pub var: String,
    /// Where it goes in the configuration.
    pub path: Vec<PathSeg>,
    /// Its value.
    pub value: String,
}

/// The settings found in the environment.
#[derive(Debug, Default)]
pub(super) struct EnvSettings {
    /// The configuration file named by `WHARF_CONFIGFILE` or `TRAEFIK_CONFIGFILE`.
    pub config_file: Option<String>,
    /// Settings in precedence order (`TRAEFIK_` first, then `WHARF_`, each sorted).
    pub settings: Vec<EnvSetting>,
}

/// Why a name did not fit the shape.
struct Miss {
    /// Parts consumed before the one that did not fit.
    consumed: usize,
    at: Vec<PathSeg>,
    part: String,
    message: String,
    suggestion: Option<String>,
}

/// Reads the settings for `shape` out of `vars`.
pub(super) fn collect(
    vars: &[(String, String)],
    shape: &Shape,
) -> Result<EnvSettings, ConfigError> {
    let mut out = EnvSettings::default();
    for prefix in PREFIXES {
        let mut mine: Vec<&(String, String)> =
            vars.iter().filter(|(k, _)| k.starts_with(prefix)).collect();
        mine.sort();
        for (var, value) in mine {
            let rest = &var[prefix.len()..];
            if rest.eq_ignore_ascii_case("CONFIGFILE") {
                out.config_file = Some(value.clone());
                continue;
            }
            if var == NOT_SETTINGS {
                continue;
            }
            let parts: Vec<&str> = rest.split('_').collect();
            let mut path = Vec::new();
            match resolve(&parts, shape, 0, &mut path) {
                Ok(()) => out.settings.push(EnvSetting {
                    var: var.clone(),
                    path,
                    value: value.clone(),
                }),
                Err(miss) if miss.consumed == 0 && miss.suggestion.is_none() => {}
                Err(miss) => {
                    let mut at = miss.at;
                    at.push(PathSeg::Key(miss.part));
                    return Err(ConfigError::Invalid {
                        origin: Origin::Env(var.clone()),
                        error: TreeError {
                            path: render_path(&at),
                            message: miss.message,
                            suggestion: miss.suggestion,
                        },
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Maps `parts` onto `shape`, appending to `at`; `consumed` parts came before.
fn resolve(
    parts: &[&str],
    shape: &Shape,
    consumed: usize,
    at: &mut Vec<PathSeg>,
) -> Result<(), Miss> {
    let Some(first) = parts.first() else {
        return Ok(());
    };
    let miss = |at: &Vec<PathSeg>, message: String, suggestion: Option<String>| Miss {
        consumed,
        at: at.clone(),
        part: first.to_ascii_lowercase(),
        message,
        suggestion,
    };
    match shape {
        Shape::Option(inner) => resolve(parts, inner, consumed, at),
        Shape::Struct { fields, .. } => {
            let mut best: Option<Miss> = None;
            for take in 1..=parts.len().min(MAX_FIELD_PARTS) {
                let Some(field) = canonical_field(&parts[..take].concat(), fields) else {
                    continue;
                };
                at.push(PathSeg::Key(field.to_string()));
                match resolve(&parts[take..], shape.field(field), consumed + take, at) {
                    Ok(()) => return Ok(()),
                    Err(m) => best = Some(further(best, m)),
                }
                at.pop();
            }
            Err(best.unwrap_or_else(|| {
                let suggestion = nearest(first, fields.iter().copied()).map(str::to_string);
                miss(
                    at,
                    format!("unknown key `{}`", first.to_ascii_lowercase()),
                    suggestion,
                )
            }))
        }
        Shape::Map(inner) => {
            // On failure, report the reading that got furthest past the name, then
            // one that has a suggestion, then the one with the shortest name.
            let mut best: Option<((usize, bool), Miss)> = None;
            for take in 1..=parts.len() {
                // A name of several parts must be followed by a key: `WEB_ADRESS` is a
                // typo under `web`, not an entrypoint called `web_adress`.
                if take > 1 && take == parts.len() {
                    break;
                }
                at.push(PathSeg::Key(parts[..take].join("_").to_ascii_lowercase()));
                match resolve(&parts[take..], inner, consumed + take, at) {
                    Ok(()) => return Ok(()),
                    Err(m) => {
                        let score = (m.consumed - consumed - take, m.suggestion.is_some());
                        if best.as_ref().is_none_or(|(s, _)| score > *s) {
                            best = Some((score, m));
                        }
                    }
                }
                at.pop();
            }
            Err(best.map_or_else(|| miss(at, "expected a name".into(), None), |(_, m)| m))
        }
        Shape::Seq(inner) => match first.parse::<usize>() {
            Ok(index) if index <= 10_000 => {
                at.push(PathSeg::Index(index));
                resolve(&parts[1..], inner, consumed + 1, at)
            }
            _ => Err(miss(
                at,
                format!("expected a list index, found `{first}` (write a list as a,b,c)"),
                None,
            )),
        },
        Shape::Any | Shape::Unknown => {
            at.extend(parts.iter().map(|p| PathSeg::Key(p.to_ascii_lowercase())));
            Ok(())
        }
        Shape::Scalar | Shape::Enum(_) => Err(miss(
            at,
            format!(
                "`{}` is a single value and has no key `{}`",
                render_path(at),
                first.to_ascii_lowercase()
            ),
            None,
        )),
    }
}

/// The miss that got further into the name (the first one on a tie).
fn further(best: Option<Miss>, new: Miss) -> Miss {
    match best {
        Some(best) if best.consumed >= new.consumed => best,
        _ => new,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::static_config::StaticConfig;

    fn map(vars: &[(&str, &str)]) -> Result<EnvSettings, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        collect(&vars, &Shape::of::<StaticConfig>())
    }

    fn paths(settings: &EnvSettings) -> Vec<(String, String)> {
        settings
            .settings
            .iter()
            .map(|s| (render_path(&s.path), s.value.clone()))
            .collect()
    }

    #[test]
    fn maps_names_through_the_shape() {
        let settings = map(&[
            ("WHARF_ENTRYPOINTS_WEB_ADDRESS", ":8080"),
            (
                "TRAEFIK_ENTRYPOINTS_WEB_FORWARDEDHEADERS_TRUSTEDIPS",
                "10.0.0.0/8,127.0.0.1",
            ),
            (
                "TRAEFIK_ENTRYPOINTS_WEB_SECURE_HTTP_TLS_DOMAINS_0_MAIN",
                "example.com",
            ),
            (
                "TRAEFIK_ENTRYPOINTS_WEB_TRANSPORT_RESPONDING_TIMEOUTS_READTIMEOUT",
                "5s",
            ),
            (
                "TRAEFIK_CERTIFICATESRESOLVERS_MyResolver_ACME_HTTPCHALLENGE_ENTRYPOINT",
                "web",
            ),
            ("TRAEFIK_API", "true"),
            ("TRAEFIK_CONFIGFILE", "/etc/traefik/traefik.toml"),
            ("TRAEFIK_PORT", "tcp://10.0.0.3:80"),
            ("TRAEFIK_SERVICE_HOST", "10.0.0.3"),
            ("PATH", "/usr/bin"),
        ])
        .unwrap();
        assert_eq!(
            settings.config_file.as_deref(),
            Some("/etc/traefik/traefik.toml")
        );
        assert_eq!(
            paths(&settings),
            vec![
                ("api".into(), "true".into()),
                (
                    "certificatesResolvers.myresolver.acme.httpChallenge.entryPoint".into(),
                    "web".into()
                ),
                (
                    "entryPoints.web.forwardedHeaders.trustedIPs".into(),
                    "10.0.0.0/8,127.0.0.1".into()
                ),
                (
                    "entryPoints.web_secure.http.tls.domains[0].main".into(),
                    "example.com".into()
                ),
                (
                    "entryPoints.web.transport.respondingTimeouts.readTimeout".into(),
                    "5s".into()
                ),
                ("entryPoints.web.address".into(), ":8080".into()),
            ]
        );
    }

    #[test]
    fn the_cluster_key_variable_is_not_a_setting() {
        let settings =
            map(&[("WHARF_CLUSTER_KEY", "a2V5"), ("WHARF_CLUSTER_MODE", "off")]).unwrap();
        assert_eq!(
            paths(&settings),
            vec![("cluster.mode".to_string(), "off".to_string())]
        );
    }

    #[test]
    fn unknown_names_under_the_prefix_are_errors() {
        let err = map(&[("WHARF_ENTRYPOINTS_WEB_ADRESS", ":80")]).unwrap_err();
        let ConfigError::Invalid { origin, error } = err else {
            panic!("{err:?}")
        };
        assert_eq!(origin, Origin::Env("WHARF_ENTRYPOINTS_WEB_ADRESS".into()));
        assert_eq!(error.path, "entryPoints.web.adress");
        assert_eq!(error.suggestion.as_deref(), Some("address"));

        let err = map(&[("TRAEFIK_ENTRYPOINT_WEB_ADDRESS", ":80")]).unwrap_err();
        let ConfigError::Invalid { error, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(error.path, "entrypoint");
        assert_eq!(error.suggestion.as_deref(), Some("entryPoints"));

        let err = map(&[("TRAEFIK_LOG_LEVEL_X", "debug")]).unwrap_err();
        let ConfigError::Invalid { error, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(error.path, "log.level.x");
        assert!(error.message.contains("single value"), "{error}");

        let err = map(&[("WHARF_ENTRYPOINTS_WEB_SECURE_ADRES", ":80")]).unwrap_err();
        let ConfigError::Invalid { error, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(error.path, "entryPoints.web_secure.adres");
        assert_eq!(error.suggestion.as_deref(), Some("address"));

        let err = map(&[("WHARF_ENTRYPOINTS_WEB_HTTP_TLS_DOMAINS_FIRST_MAIN", "a")]).unwrap_err();
        let ConfigError::Invalid { error, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(error.path, "entryPoints.web.http.tls.domains.first");
    }
}
