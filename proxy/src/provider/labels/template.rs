//! Traefik's `defaultRule` is a Go template evaluated per workload. This is the part
//! of Go's `text/template` that default rules use: actions `{{ ... }}` (with `{{-`
//! and `-}}` trimming), fields `.Name`, `.ContainerName`, `.Labels` and
//! `.Labels.key`, string literals, parentheses, pipes, and the functions `normalize`,
//! `index`, and Sprig's `lower`, `upper`, `trimPrefix`, `trimSuffix`, `replace`,
//! `default`. Anything else is an error that names the template.

use std::collections::BTreeMap;

use super::normalize;

/// Why a default rule template cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// The functions a template may call.
const FUNCTIONS: &[&str] = &[
    "normalize",
    "index",
    "lower",
    "upper",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "default",
];

/// Renders a default rule template. `name` is the workload's normalized name
/// (`.Name`), `container_name` its Docker name (`.ContainerName`).
pub fn render_default_rule(
    template: &str,
    name: &str,
    container_name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    let model = Model {
        name,
        container_name,
        labels,
    };
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        let mut action = &rest[start + 2..];
        if let Some(a) = action.strip_prefix('-') {
            text = text.trim_end();
            action = a;
        }
        out.push_str(text);
        let end = find_close(action)
            .ok_or_else(|| TemplateError("unclosed action: missing `}}`".into()))?;
        let mut body = &action[..end];
        rest = &action[end + 2..];
        if let Some(b) = body.strip_suffix('-') {
            body = b;
            rest = rest.trim_start();
        }
        let body = body.trim();
        if body.starts_with("/*") && body.ends_with("*/") {
            continue;
        }
        let tokens = tokenize(body)?;
        let (value, used) = pipeline(&tokens, &model)?;
        if used != tokens.len() {
            return Err(TemplateError(format!("unexpected `)` in {body:?}")));
        }
        match value {
            Value::Str(s) => out.push_str(&s),
            Value::Labels => return Err(TemplateError("cannot print `.Labels`".into())),
        }
    }
    out.push_str(rest);
    Ok(out)
}

struct Model<'a> {
    name: &'a str,
    container_name: &'a str,
    labels: &'a BTreeMap<String, String>,
}

/// The end of an action (`}}` outside string literals).
fn find_close(action: &str) -> Option<usize> {
    let bytes = action.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == b'\\' && q == b'"' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'`' => quote = Some(b),
            None if b == b'}' && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Field(String),
    Str(String),
    Ident(String),
    Open,
    Close,
    Pipe,
}

fn tokenize(body: &str) -> Result<Vec<Token>, TemplateError> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            '|' => {
                out.push(Token::Pipe);
                i += 1;
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or_else(|| TemplateError("unterminated raw string".into()))?;
                out.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(TemplateError("unterminated string".into())),
                        Some('"') => break,
                        Some('\\') => {
                            let e = chars.get(i + 1).copied().unwrap_or('\\');
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                            i += 2;
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Str(s));
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"()|\"`".contains(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if word.starts_with('.') {
                    out.push(Token::Field(word));
                } else if word.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    out.push(Token::Ident(word));
                } else {
                    return Err(TemplateError(format!("unexpected {word:?}")));
                }
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Labels,
}

/// Evaluates a pipeline up to a `)` or the end; returns the value and tokens used.
fn pipeline(tokens: &[Token], m: &Model<'_>) -> Result<(Value, usize), TemplateError> {
    let mut i = 0;
    let mut value: Option<Value> = None;
    loop {
        let (v, used) = command(&tokens[i..], value.take(), m)?;
        value = Some(v);
        i += used;
        match tokens.get(i) {
            Some(Token::Pipe) => i += 1,
            _ => break,
        }
    }
    value
        .map(|v| (v, i))
        .ok_or_else(|| TemplateError("empty action".into()))
}

/// One command: a function call or a single operand; `piped` is the value of the
/// previous command, passed as the last argument.
fn command(
    tokens: &[Token],
    piped: Option<Value>,
    m: &Model<'_>,
) -> Result<(Value, usize), TemplateError> {
    let mut i = 0;
    let mut args = Vec::new();
    let func = match tokens.first() {
        Some(Token::Ident(f)) => {
            i = 1;
            Some(f.clone())
        }
        _ => None,
    };
    while let Some(token) = tokens.get(i) {
        let arg = match token {
            Token::Pipe | Token::Close => break,
            Token::Field(f) => field(f, m)?,
            Token::Str(s) => Value::Str(s.clone()),
            Token::Ident(f) => return Err(TemplateError(format!("unexpected function `{f}`"))),
            Token::Open => {
                let (v, used) = pipeline(&tokens[i + 1..], m)?;
                if tokens.get(i + 1 + used) != Some(&Token::Close) {
                    return Err(TemplateError("missing `)`".into()));
                }
                i += used + 1;
                v
            }
        };
        args.push(arg);
        i += 1;
    }
    args.extend(piped);
    let value = match func {
        Some(f) => call(&f, args, m)?,
        None if args.len() == 1 => args.remove(0),
        None if args.is_empty() => return Err(TemplateError("empty command".into())),
        None => return Err(TemplateError("several values without a function".into())),
    };
    Ok((value, i))
}

fn field(f: &str, m: &Model<'_>) -> Result<Value, TemplateError> {
    let parts: Vec<&str> = f[1..].split('.').collect();
    match parts.as_slice() {
        ["Name"] => Ok(Value::Str(m.name.to_string())),
        ["ContainerName"] => Ok(Value::Str(m.container_name.to_string())),
        ["Labels"] => Ok(Value::Labels),
        ["Labels", key] => Ok(Value::Str(m.labels.get(*key).cloned().unwrap_or_default())),
        _ => Err(TemplateError(format!(
            "unknown field `{f}` (known: .Name, .ContainerName, .Labels)"
        ))),
    }
}

fn call(f: &str, args: Vec<Value>, m: &Model<'_>) -> Result<Value, TemplateError> {
    let strings = |n: usize| -> Result<Vec<String>, TemplateError> {
        if args.len() != n {
            return Err(TemplateError(format!(
                "`{f}` takes {n} argument(s), got {}",
                args.len()
            )));
        }
        args.iter()
            .map(|a| match a {
                Value::Str(s) => Ok(s.clone()),
                Value::Labels => Err(TemplateError(format!(
                    "`{f}` expects a string, got .Labels"
                ))),
            })
            .collect()
    };
    let s = match f {
        "normalize" => normalize(&strings(1)?[0]),
        "lower" => strings(1)?[0].to_lowercase(),
        "upper" => strings(1)?[0].to_uppercase(),
        "trimPrefix" => {
            let a = strings(2)?;
            a[1].strip_prefix(a[0].as_str())
                .unwrap_or(&a[1])
                .to_string()
        }
        "trimSuffix" => {
            let a = strings(2)?;
            a[1].strip_suffix(a[0].as_str())
                .unwrap_or(&a[1])
                .to_string()
        }
        "replace" => {
            let a = strings(3)?;
            a[2].replace(a[0].as_str(), &a[1])
        }
        "default" => {
            let a = strings(2)?;
            if a[1].is_empty() {
                a[0].clone()
            } else {
                a[1].clone()
            }
        }
        "index" => match args.as_slice() {
            [Value::Labels, Value::Str(key)] => m.labels.get(key).cloned().unwrap_or_default(),
            _ => return Err(TemplateError("`index` expects .Labels and a key".into())),
        },
        _ => {
            return Err(TemplateError(format!(
                "function `{f}` is not supported (supported: {})",
                FUNCTIONS.join(", ")
            )))
        }
    };
    Ok(Value::Str(s))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn render(tpl: &str) -> Result<String, TemplateError> {
        let labels: BTreeMap<String, String> = [
            ("app.domain".to_string(), "example.org".to_string()),
            ("sub".to_string(), "Shop".to_string()),
        ]
        .into();
        render_default_rule(tpl, "stack-web", "stack_web", &labels)
    }

    #[test]
    fn renders_traefik_default_rules() {
        assert_eq!(
            render("Host(`{{ normalize .Name }}`)").unwrap(),
            "Host(`stack-web`)"
        );
        assert_eq!(
            render("Host(`{{ .Name }}.{{ index .Labels \"app.domain\" }}`)").unwrap(),
            "Host(`stack-web.example.org`)"
        );
        assert_eq!(
            render("Host(`{{ .ContainerName }}`)").unwrap(),
            "Host(`stack_web`)"
        );
        assert_eq!(
            render("Host(`{{ .Labels.sub | lower }}.{{- \"x.io\" -}}`)").unwrap(),
            "Host(`shop.x.io`)"
        );
        assert_eq!(
            render("Host(`{{ normalize (index .Labels `missing`) | default \"d\" }}`)").unwrap(),
            "Host(`d`)"
        );
        assert_eq!(render("PathPrefix(`/`)").unwrap(), "PathPrefix(`/`)");
    }

    #[test]
    fn unsupported_templates_are_errors() {
        assert!(render("Host(`{{ .Name `)").is_err());
        assert!(render("{{ sha256sum .Name }}")
            .unwrap_err()
            .0
            .contains("not supported"));
        assert!(render("{{ .Image }}")
            .unwrap_err()
            .0
            .contains("unknown field"));
        assert!(render("{{ .Labels }}").is_err());
        assert!(render("{{ index .Name \"a\" }}").is_err());
    }
}
