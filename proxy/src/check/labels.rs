//! Labels as compose writes them: a list (`- "key=value"`, `- key=value`; the value
//! may contain `=`; `- key` alone is an empty value) or a map (`key: value`, where
//! numbers and booleans become strings and an empty value is an empty string).
//!
//! `docker stack deploy` validates labels against the compose file schema (v3):
//! list items must be strings and must not repeat, map values must be strings,
//! numbers or null. A boolean map value (`traefik.enable: true`) or a repeated list
//! item is therefore an error, although `docker compose` accepts booleans.

use serde_yaml_ng::Value;

/// One label as read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The key, as written (after interpolation in list form).
    pub key: String,
    /// The value, after interpolation.
    pub value: String,
    /// Position in the list, or `None` in map form.
    pub index: Option<usize>,
    /// Position in the list or map as written, counting entries that were skipped.
    pub pos: usize,
}

/// A problem with one label entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelProblem {
    /// The label concerned, when it could be read.
    pub label: Option<String>,
    /// What is wrong.
    pub message: String,
    /// Whether `docker stack deploy` would refuse the file.
    pub error: bool,
    /// Position of the entry in the list or map as written, when known.
    pub pos: Option<usize>,
}

/// Reads a `labels` value in list or map form; `None` (absent or empty) gives no labels.
pub fn read(value: Option<&Value>) -> (Vec<Label>, Vec<LabelProblem>) {
    let mut labels = Vec::new();
    let mut problems = Vec::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) => {
            for (index, item) in items.iter().enumerate() {
                let Value::String(text) = item else {
                    let shown = scalar(item)
                        .map(|s| format!(" (`{s}`)"))
                        .unwrap_or_default();
                    problems.push(LabelProblem {
                        label: None,
                        message: format!(
                            "label #{} is not a `key=value` string{shown}; quote it",
                            index + 1
                        ),
                        error: true,
                        pos: Some(index),
                    });
                    continue;
                };
                if items[..index].contains(item) {
                    problems.push(LabelProblem {
                        label: Some(text.split('=').next().unwrap_or_default().to_string()),
                        message: format!(
                            "`{text}` is listed twice: `docker stack deploy` rejects repeated \
                             list items (\"array items must be unique\"); remove one"
                        ),
                        error: true,
                        pos: Some(index),
                    });
                    continue;
                }
                let (key, value) = text.split_once('=').unwrap_or((text, ""));
                labels.push(Label {
                    key: key.to_string(),
                    value: value.to_string(),
                    index: Some(index),
                    pos: index,
                });
            }
        }
        Some(Value::Mapping(map)) => {
            for (pos, (k, v)) in map.iter().enumerate() {
                let Some(key) = scalar(k) else {
                    problems.push(LabelProblem {
                        label: None,
                        message: "a label key is not a string".into(),
                        error: true,
                        pos: Some(pos),
                    });
                    continue;
                };
                let value = match v {
                    Value::Null => Some(String::new()),
                    Value::Bool(b) => {
                        problems.push(LabelProblem {
                            label: Some(key.clone()),
                            message: format!(
                                "the value is the boolean {b}: `docker stack deploy` accepts \
                                 only strings, numbers or null here; quote it ('{b}')"
                            ),
                            error: true,
                            pos: Some(pos),
                        });
                        Some(b.to_string())
                    }
                    other => scalar(other),
                };
                let Some(value) = value else {
                    problems.push(LabelProblem {
                        label: Some(key),
                        message: "the value must be a string, a number or null".into(),
                        error: true,
                        pos: Some(pos),
                    });
                    continue;
                };
                if key.contains('$') {
                    problems.push(LabelProblem {
                        label: Some(key.clone()),
                        message: "compose does not interpolate map keys: `$` stays as written; \
                                  use the list form (`- key=value`) to put variables in keys"
                            .into(),
                        error: false,
                        pos: Some(pos),
                    });
                }
                labels.push(Label {
                    key,
                    value,
                    index: None,
                    pos,
                });
            }
        }
        Some(_) => problems.push(LabelProblem {
            label: None,
            message: "`labels` must be a list of `key=value` strings or a map".into(),
            error: true,
            pos: None,
        }),
    }
    problems.extend(duplicates(&labels));
    (labels, problems)
}

/// A scalar as compose turns it into a string.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Keys given twice with different values: the last one wins.
fn duplicates(labels: &[Label]) -> Vec<LabelProblem> {
    let mut out = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let later = labels[i + 1..].iter().find(|l| l.key == label.key);
        if let Some(later) = later {
            if later.value != label.value {
                out.push(LabelProblem {
                    label: Some(label.key.clone()),
                    message: format!(
                        "set twice (`{}`, then `{}`); the last value wins",
                        label.value, later.value
                    ),
                    error: false,
                    pos: Some(later.pos),
                });
            }
        }
    }
    out
}

/// Whether a key belongs to the proxy (`traefik.` or `wharf.`, any case).
pub fn is_proxy_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower == "traefik"
        || lower == "wharf"
        || lower.starts_with("traefik.")
        || lower.starts_with("wharf.")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    fn pairs(labels: &[Label]) -> Vec<(&str, &str)> {
        labels
            .iter()
            .map(|l| (l.key.as_str(), l.value.as_str()))
            .collect()
    }

    #[test]
    fn list_form() {
        let v = yaml(
            r#"
- "traefik.enable=true"
- traefik.http.routers.a.rule=Host(`a`) && Query(`x=1`)
- 'traefik.http.middlewares.m.basicauth.users=u:$$apr1$$x'
- bare
- empty=
"#,
        );
        let (labels, problems) = read(Some(&v));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            pairs(&labels),
            vec![
                ("traefik.enable", "true"),
                ("traefik.http.routers.a.rule", "Host(`a`) && Query(`x=1`)"),
                ("traefik.http.middlewares.m.basicauth.users", "u:$$apr1$$x"),
                ("bare", ""),
                ("empty", ""),
            ]
        );
        assert_eq!(labels[1].index, Some(1));
    }

    #[test]
    fn map_form_turns_scalars_into_strings() {
        let v = yaml(
            r#"
traefik.enable: 'true'
traefik.http.services.s.loadbalancer.server.port: 5601
traefik.http.services.s.loadbalancer.server.weight: 1.5
traefik.http.routers.r.rule: Host(`a`)
empty:
"#,
        );
        let (labels, problems) = read(Some(&v));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            pairs(&labels),
            vec![
                ("traefik.enable", "true"),
                ("traefik.http.services.s.loadbalancer.server.port", "5601"),
                ("traefik.http.services.s.loadbalancer.server.weight", "1.5"),
                ("traefik.http.routers.r.rule", "Host(`a`)"),
                ("empty", ""),
            ]
        );
        assert_eq!(labels[0].index, None);
    }

    #[test]
    fn booleans_in_map_form_are_read_but_docker_stack_deploy_rejects_them() {
        let (labels, problems) = read(Some(&yaml("traefik.enable: true\n")));
        assert_eq!(pairs(&labels), vec![("traefik.enable", "true")]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].error);
        assert_eq!(problems[0].label.as_deref(), Some("traefik.enable"));
        assert!(problems[0].message.contains("quote it ('true')"));
    }

    #[test]
    fn repeated_list_items_are_errors() {
        let text = "- traefik.enable=true\n- a=b\n- \"traefik.enable=true\"\n";
        let (labels, problems) = read(Some(&yaml(text)));
        assert_eq!(labels.len(), 2);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].error);
        assert_eq!(problems[0].label.as_deref(), Some("traefik.enable"));
        assert!(problems[0].message.contains("listed twice"));
    }

    #[test]
    fn variables_in_map_keys_are_not_interpolated() {
        let v = yaml("traefik.http.routers.${STACK}.rule: Host(`a`)\n");
        let (labels, problems) = read(Some(&v));
        assert_eq!(labels[0].key, "traefik.http.routers.${STACK}.rule");
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].error);
        assert!(problems[0].message.contains("list form"));
    }

    #[test]
    fn bad_shapes_are_errors() {
        let (_, problems) = read(Some(&yaml("- a=b\n- {x: 1}\n- 42\n")));
        assert!(problems[0].error && problems[0].message.contains("#2"));
        assert!(problems[1]
            .message
            .contains("#3 is not a `key=value` string (`42`)"));
        let (_, problems) = read(Some(&yaml("a: [1, 2]\n")));
        assert!(problems[0].error && problems[0].label.as_deref() == Some("a"));
        let (_, problems) = read(Some(&yaml("just a string\n")));
        assert!(problems[0].error);
        let (labels, problems) = read(None);
        assert!(labels.is_empty() && problems.is_empty());
        let (labels, problems) = read(Some(&Value::Null));
        assert!(labels.is_empty() && problems.is_empty());
    }

    #[test]
    fn duplicates_with_different_values_warn() {
        let (labels, problems) = read(Some(&yaml("- a=1\n- b=2\n- b=3\n")));
        assert_eq!(labels.len(), 3);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].label.as_deref(), Some("b"));
        assert!(!problems[0].error);
    }

    #[test]
    fn proxy_keys() {
        assert!(is_proxy_key("traefik.enable"));
        assert!(is_proxy_key("Traefik.HTTP.routers.a.rule"));
        assert!(is_proxy_key("wharf.http.routers.a.rule"));
        assert!(!is_proxy_key("traefikee.x"));
        assert!(!is_proxy_key("com.example.traefik"));
    }
}
