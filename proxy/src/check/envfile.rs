//! Env files in compose's `.env` syntax:
//!
//! ```text
//! # a comment
//! DOMAIN=example.com          # an inline comment after a space
//! export STACK=prod           # `export` is allowed and ignored
//! GREETING="hello\nworld"     # double quotes: escapes and ${VAR} interpolation
//! HASH='$2y$05$abc'           # single quotes: taken literally
//! URL=https://${DOMAIN}/      # unquoted: interpolated, trailing spaces trimmed
//! HOME                        # no `=`: the process environment's value, if any
//! ```
//!
//! Values may refer to variables defined earlier in the file and to the process
//! environment.

use std::path::{Path, PathBuf};

use super::interpolate::{interpolate, Variables};

/// Why an env file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    /// The file could not be read.
    #[error("cannot read env file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A line is not valid.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads an env file; `process` supplies the environment for `${VAR}` references
/// and for bare names. Returns the variables in file order.
pub fn read(path: &Path, process: &Variables) -> Result<Vec<(String, String)>, EnvFileError> {
    let text = std::fs::read_to_string(path).map_err(|error| EnvFileError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(&text, process).map_err(|(line, message)| EnvFileError::Syntax {
        path: path.to_path_buf(),
        line,
        message,
    })
}

/// Parses env-file text; errors carry the 1-based line number.
pub fn parse(text: &str, process: &Variables) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut scope = process.clone();
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else {
            if is_key(line) {
                if let Some(v) = process.get(line) {
                    scope.set(line, v);
                    out.push((line.to_string(), v.to_string()));
                }
                continue;
            }
            return Err((line_no, format!("expected KEY=VALUE, found `{line}`")));
        };
        let key = key.trim();
        if !is_key(key) {
            return Err((line_no, format!("invalid variable name `{key}`")));
        }
        let value = value(rest.trim_start(), &scope).map_err(|m| (line_no, m))?;
        scope.set(key, value.clone());
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c == '_' || c == '.' || c == '-' || c.is_ascii_alphanumeric())
}

fn value(rest: &str, scope: &Variables) -> Result<String, String> {
    if let Some(body) = rest.strip_prefix('\'') {
        let end = body.find('\'').ok_or("unterminated single-quoted value")?;
        trailing(&body[end + 1..])?;
        return Ok(body[..end].to_string());
    }
    if let Some(body) = rest.strip_prefix('"') {
        let mut raw = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => raw.push('\n'),
                    Some((_, 't')) => raw.push('\t'),
                    Some((_, 'r')) => raw.push('\r'),
                    Some((_, '$')) => raw.push_str("$$"),
                    Some((_, other)) => raw.push(other),
                    None => break,
                },
                other => raw.push(other),
            }
        }
        let end = end.ok_or("unterminated double-quoted value")?;
        trailing(&body[end + 1..])?;
        return interpolated(&raw, scope);
    }
    let unquoted = match rest.find(" #").or_else(|| rest.find("\t#")) {
        Some(i) => &rest[..i],
        None if rest.starts_with('#') => "",
        None => rest,
    };
    interpolated(unquoted.trim_end(), scope)
}

fn trailing(after: &str) -> Result<(), String> {
    let after = after.trim();
    if after.is_empty() || after.starts_with('#') {
        Ok(())
    } else {
        Err(format!("unexpected `{after}` after the closing quote"))
    }
}

fn interpolated(raw: &str, scope: &Variables) -> Result<String, String> {
    let out = interpolate(raw, scope);
    match out.findings.iter().find(|f| f.is_error()) {
        Some(f) => Err(f.to_string()),
        None => Ok(out.value),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(String, String)> {
        let mut env = Variables::new();
        env.set("HOME", "/home/me");
        parse(text, &env).unwrap()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn compose_env_syntax() {
        let text = "\
# comment
DOMAIN=example.com   # inline
export STACK=prod

EMPTY=
QUOTED=\"a b\\n${DOMAIN}\"
LITERAL='$2y$05$x # not a comment'
URL=https://${DOMAIN}/x#frag
HOME
UNKNOWN_BARE
WITH_EQ=a=b
";
        assert_eq!(
            parsed(text),
            pairs(&[
                ("DOMAIN", "example.com"),
                ("STACK", "prod"),
                ("EMPTY", ""),
                ("QUOTED", "a b\nexample.com"),
                ("LITERAL", "$2y$05$x # not a comment"),
                ("URL", "https://example.com/x#frag"),
                ("HOME", "/home/me"),
                ("WITH_EQ", "a=b"),
            ])
        );
    }

    #[test]
    fn errors_have_line_numbers() {
        let env = Variables::new();
        assert_eq!(parse("A=1\nnot valid\n", &env).unwrap_err().0, 2);
        assert_eq!(parse("A='open\n", &env).unwrap_err().0, 1);
        assert_eq!(parse("\n\nA=\"x\" y\n", &env).unwrap_err().0, 3);
        assert_eq!(parse("A=${B?needed}\n", &env).unwrap_err().0, 1);
        assert!(parse("A=$\n", &env).unwrap_err().1.contains('$'));
    }

    #[test]
    fn escaped_dollar_in_double_quotes() {
        assert_eq!(parsed("P=\"\\$1\"\n"), pairs(&[("P", "$1")]));
    }
}
