//! Compose variable interpolation of one string, as `docker compose` does it:
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
//! `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, and `$$` for a literal `$`.
//!
//! Where `docker stack deploy` (docker/cli) reads a value differently, the value
//! `docker stack deploy` would deploy wins when `docker compose` would reject the
//! file, and a [`Finding::NotPortable`] warning says what differs:
//! - docker/cli takes the text after `:-`, `-`, `:?` and `?` literally (up to the
//!   first `}`), while `docker compose` interpolates it again (`${A:-${B}}`).
//! - docker/cli does not know `:+` and `+`, and rejects them as invalid templates.

use std::collections::BTreeMap;
use std::fmt;

/// Variables available to interpolation, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

impl Variables {
    /// No variables at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// Variables from an env file and from the process environment; a variable set
    /// in the env file wins over the same name in the environment.
    pub fn from_sources(
        env_file: impl IntoIterator<Item = (String, String)>,
        process: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut values: BTreeMap<String, String> = process.into_iter().collect();
        values.extend(env_file);
        Self { values }
    }

    /// Sets one variable.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    /// The value of a variable, when it is set (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// Something interpolation noticed in one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// `$VAR` or `${VAR}` with `VAR` unset: it became an empty string (a warning).
    Unset {
        /// The variable.
        name: String,
    },
    /// `${VAR?msg}` with `VAR` unset, or `${VAR:?msg}` with `VAR` unset or empty:
    /// `docker stack deploy` refuses the file (an error). Checking goes on with the
    /// variable's name in place of its value.
    Required {
        /// The variable.
        name: String,
        /// The message written after `?`.
        message: String,
    },
    /// Not a valid template, such as a lone `$`: an error; the value is kept as written.
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// `docker compose` and `docker stack deploy` read this differently (a warning).
    NotPortable {
        /// What differs.
        detail: String,
    },
}

impl Finding {
    /// Whether this finding makes the file fail to deploy.
    pub fn is_error(&self) -> bool {
        matches!(self, Finding::Required { .. } | Finding::Invalid { .. })
    }

    /// The variable this finding is about, if any.
    pub fn variable(&self) -> Option<&str> {
        match self {
            Finding::Unset { name } | Finding::Required { name, .. } => Some(name),
            Finding::Invalid { .. } | Finding::NotPortable { .. } => None,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Unset { name } => {
                write!(
                    f,
                    "variable {name} is not set; it is replaced by an empty string"
                )
            }
            Finding::Required { name, message } => write!(
                f,
                "required variable {name} is missing a value: {message} \
                 (checked with `{name}` as its value)"
            ),
            Finding::Invalid { reason } => write!(
                f,
                "invalid interpolation: {reason}; write a literal `$` as `$$`"
            ),
            Finding::NotPortable { detail } => f.write_str(detail),
        }
    }
}

/// The interpolated value and what was noticed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    /// The value after interpolation (the input itself when it is invalid).
    pub value: String,
    /// Warnings and errors, in order of appearance.
    pub findings: Vec<Finding>,
}

/// Interpolates `input` with `vars`.
pub fn interpolate(input: &str, vars: &Variables) -> Interpolated {
    let mut findings = Vec::new();
    match expand(input, vars, &mut findings) {
        Ok(value) => Interpolated { value, findings },
        Err(reason) => {
            findings.push(Finding::Invalid { reason });
            Interpolated {
                value: input.to_string(),
                findings,
            }
        }
    }
}

fn expand(input: &str, vars: &Variables, findings: &mut Vec<Finding>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('{') => {
                let (value, used) = braced(&after[1..], vars, findings)?;
                out.push_str(&value);
                rest = &after[1 + used..];
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let n = name_len(after);
                out.push_str(&plain(&after[..n], vars, findings));
                rest = &after[n..];
            }
            Some(c) => return Err(format!("`${c}` is not a variable reference")),
            None => return Err("the value ends with a lone `$`".into()),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Length of the variable name at the start of `s` (`[_A-Za-z][_A-Za-z0-9]*`).
fn name_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    chars
        .find(|&(_, c)| !(c == '_' || c.is_ascii_alphanumeric()))
        .map_or(s.len(), |(i, _)| i)
}

fn plain(name: &str, vars: &Variables, findings: &mut Vec<Finding>) -> String {
    match vars.get(name) {
        Some(v) => v.to_string(),
        None => {
            findings.push(Finding::Unset { name: name.into() });
            String::new()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Default { colon: bool },
    Required { colon: bool },
    Alternate { colon: bool },
}

/// Reads `NAME}` or `NAME<op>arg}` (the text after `${`); returns the value and
/// how many bytes were used.
fn braced(
    body: &str,
    vars: &Variables,
    findings: &mut Vec<Finding>,
) -> Result<(String, usize), String> {
    let n = name_len(body);
    if n == 0 {
        return Err(match body.chars().next() {
            Some('}') => "`${}` names no variable".to_string(),
            _ => "`${` must be followed by a variable name".to_string(),
        });
    }
    let name = &body[..n];
    let rest = &body[n..];
    if rest.starts_with('}') {
        return Ok((plain(name, vars, findings), n + 1));
    }
    let (colon, op_char) = match rest.as_bytes() {
        [b':', c, ..] => (true, *c),
        [c, ..] => (false, *c),
        [] => return Err(format!("`${{{name}` is never closed")),
    };
    let op = match op_char {
        b'-' => Op::Default { colon },
        b'?' => Op::Required { colon },
        b'+' => Op::Alternate { colon },
        _ => {
            let shown: String = rest.chars().take(if colon { 2 } else { 1 }).collect();
            return Err(format!(
                "`${{{name}{shown}`: expected `}}`, `:-`, `-`, `:?`, `?`, `:+` or `+` after the name"
            ));
        }
    };
    let op_len = if colon { 2 } else { 1 };
    let arg_area = &rest[op_len..];
    let close = closing_brace(arg_area).ok_or_else(|| format!("`${{{name}` is never closed"))?;
    let raw = &arg_area[..close];
    let used = n + op_len + close + 1;
    let value = apply(name, op, raw, vars, findings);
    Ok((value, used))
}

/// Index of the `}` closing a `${`, counting nested `${ … }`.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            depth += 1;
            i += 2;
            continue;
        }
        if bytes[i] == b'}' {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}

fn apply(name: &str, op: Op, raw: &str, vars: &Variables, findings: &mut Vec<Finding>) -> String {
    let value = vars.get(name);
    let missing = |colon: bool| value.is_none() || (colon && value == Some(""));
    match op {
        Op::Default { colon } => {
            if missing(colon) {
                argument(name, op, raw, vars, findings)
            } else {
                value.unwrap_or_default().to_string()
            }
        }
        Op::Required { colon } => {
            if missing(colon) {
                let message = argument(name, op, raw, vars, findings);
                findings.push(Finding::Required {
                    name: name.into(),
                    message,
                });
                name.to_string()
            } else {
                value.unwrap_or_default().to_string()
            }
        }
        Op::Alternate { colon } => {
            let sign = if colon { ":+" } else { "+" };
            findings.push(Finding::NotPortable {
                detail: format!(
                    "`${{{name}{sign}…}}` needs docker compose: `docker stack deploy` rejects it \
                     as an invalid template (deploy the output of `docker compose config`)"
                ),
            });
            if missing(colon) {
                value.unwrap_or_default().to_string()
            } else {
                argument(name, op, raw, vars, findings)
            }
        }
    }
}

/// The value of a default, alternative or error message: interpolated again, as
/// `docker compose` does; kept literally, as `docker stack deploy` does, when
/// `docker compose` would reject it.
fn argument(
    name: &str,
    op: Op,
    raw: &str,
    vars: &Variables,
    findings: &mut Vec<Finding>,
) -> String {
    if !raw.contains('$') {
        return raw.to_string();
    }
    let what = match op {
        Op::Default { .. } => "default",
        Op::Required { .. } => "error message",
        Op::Alternate { .. } => "alternative",
    };
    let mut inner = Vec::new();
    match expand(raw, vars, &mut inner) {
        Ok(value) => {
            findings.extend(inner);
            if !matches!(op, Op::Alternate { .. }) && value != raw {
                findings.push(Finding::NotPortable {
                    detail: format!(
                        "the {what} of {name} is `{value}` for docker compose but `{raw}` for \
                         `docker stack deploy`, which does not interpolate inside `${{…}}`"
                    ),
                });
            }
            value
        }
        Err(reason) => {
            findings.push(Finding::NotPortable {
                detail: format!(
                    "the {what} of {name} is used as written by `docker stack deploy`, but \
                     `docker compose` rejects it ({reason}; escape `$` as `$$` for compose)"
                ),
            });
            raw.to_string()
        }
    }
}

#[cfg(test)]
#[path = "interpolate_tests.rs"]
mod tests;
