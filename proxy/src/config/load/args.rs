//! Command-line flags in Traefik's form: `--entrypoints.web.address=:80`,
//! `--entrypoints.web.address :80`, and bare `--api` or `--api.insecure` (= `true`).
//! `--config FILE` / `--configFile=FILE` choose the configuration file.

use super::ConfigError;

/// One setting given as a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Flag {
    /// The flag as written (`--api.insecure=true`, or `--key value`).
    pub arg: String,
    /// The dotted key (`api.insecure`).
    pub key: String,
    /// The value; `true` for a bare flag.
    pub value: String,
}

/// The parsed command line.
#[derive(Debug, Default)]
pub(super) struct Args {
    /// The configuration file named by `--config` or `--configFile`.
    pub config_file: Option<String>,
    /// The settings, in order.
    pub flags: Vec<Flag>,
}

fn is_config_file_key(key: &str) -> bool {
    key.eq_ignore_ascii_case("config") || key.eq_ignore_ascii_case("configfile")
}

/// Splits the arguments into settings and the configuration file name.
pub(super) fn parse(args: &[String]) -> Result<Args, ConfigError> {
    let mut out = Args::default();
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        let bad = |reason: &str| ConfigError::Argument {
            arg: arg.clone(),
            reason: reason.to_string(),
        };
        let Some(body) = arg.strip_prefix("--") else {
            return Err(bad("expected a flag such as --entrypoints.web.address=:80"));
        };
        let (key, inline) = match body.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.to_string())),
            None => (body.trim(), None),
        };
        if key.is_empty() || key.starts_with('-') {
            return Err(bad("expected a flag such as --entrypoints.web.address=:80"));
        }
        // `--key value`: the next argument is the value unless it is a flag itself.
        let (value, written) = match inline {
            Some(value) => (Some(value), arg.clone()),
            None => match iter.next_if(|next| !next.starts_with("--")) {
                Some(next) => (Some(next.clone()), format!("{arg} {next}")),
                None => (None, arg.clone()),
            },
        };
        if is_config_file_key(key) {
            match value {
                Some(file) if !file.trim().is_empty() => out.config_file = Some(file),
                _ => return Err(bad("needs a file name, as in --configFile=traefik.yml")),
            }
            continue;
        }
        out.flags.push(Flag {
            arg: written,
            key: key.to_string(),
            value: value.unwrap_or_else(|| "true".to_string()),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn pairs(parsed: &Args) -> Vec<(&str, &str)> {
        parsed
            .flags
            .iter()
            .map(|f| (f.key.as_str(), f.value.as_str()))
            .collect()
    }

    #[test]
    fn parses_the_traefik_flag_forms() {
        let parsed = parse(&args(&[
            "--entrypoints.web.address=:80",
            "--api",
            "--api.insecure",
            "--ping",
            "--providers.file.filename",
            "dyn.yml",
            "--configFile=/etc/traefik/traefik.yml",
            "--log.level=DEBUG=x",
        ]))
        .unwrap();
        assert_eq!(
            pairs(&parsed),
            vec![
                ("entrypoints.web.address", ":80"),
                ("api", "true"),
                ("api.insecure", "true"),
                ("ping", "true"),
                ("providers.file.filename", "dyn.yml"),
                ("log.level", "DEBUG=x"),
            ]
        );
        assert_eq!(parsed.flags[4].arg, "--providers.file.filename dyn.yml");
        assert_eq!(
            parsed.config_file.as_deref(),
            Some("/etc/traefik/traefik.yml")
        );

        let parsed = parse(&args(&["--config", "wharf.yml", "--api.insecure", "false"])).unwrap();
        assert_eq!(parsed.config_file.as_deref(), Some("wharf.yml"));
        assert_eq!(pairs(&parsed), vec![("api.insecure", "false")]);
    }

    #[test]
    fn refuses_what_is_not_a_flag() {
        for bad in [
            &["web"][..],
            &["-c"],
            &["--"],
            &["--=x"],
            &["--config"],
            &["--configfile="],
        ] {
            let err = parse(&args(bad)).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Argument { arg, .. } if arg == bad[0]),
                "{err:?}"
            );
        }
    }
}
