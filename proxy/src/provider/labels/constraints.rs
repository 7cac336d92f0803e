//! Traefik's provider constraints (`providers.swarm.constraints`): a boolean
//! expression over the workload's labels, written as a Go expression:
//! ``Label(`key`, `value`)`` (exact value; a missing label has the value ``""``),
//! ``LabelRegex(`key`, `re`)`` (unanchored Go regexp on the value), `!`, `&&`, `||`
//! and parentheses, with Go's precedence (`!` > `&&` > `||`). Keys are matched
//! exactly as written, case included.

use std::collections::BTreeMap;

use regex::Regex;

/// A parsed constraints expression.
#[derive(Debug, Clone)]
pub enum Constraint {
    /// ``Label(`key`, `value`)``: the label's value is exactly `value`.
    Label {
        /// Label key.
        key: String,
        /// Expected value.
        value: String,
    },
    /// ``LabelRegex(`key`, `re`)``: the label's value matches `re` somewhere.
    LabelRegex {
        /// Label key.
        key: String,
        /// The compiled expression.
        regex: Regex,
    },
    /// Negation.
    Not(Box<Constraint>),
    /// Both must match.
    And(Box<Constraint>, Box<Constraint>),
    /// Either must match.
    Or(Box<Constraint>, Box<Constraint>),
}

/// Why a constraints expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {position}: {message}")]
pub struct ConstraintError {
    /// 1-based character column.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl Constraint {
    /// Parses an expression.
    pub fn parse(src: &str) -> Result<Constraint, ConstraintError> {
        let tokens = tokenize(src)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            end: src.chars().count() + 1,
        };
        let c = p.or()?;
        match p.tokens.get(p.pos) {
            None => Ok(c),
            Some((col, t)) => Err(err(*col, format!("unexpected {}", t.describe()))),
        }
    }

    /// Whether the labels satisfy the expression.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = |key: &str| labels.get(key).map_or("", String::as_str);
        match self {
            Constraint::Label { key, value: v } => value(key) == v,
            Constraint::LabelRegex { key, regex } => regex.is_match(value(key)),
            Constraint::Not(c) => !c.matches(labels),
            Constraint::And(a, b) => a.matches(labels) && b.matches(labels),
            Constraint::Or(a, b) => a.matches(labels) || b.matches(labels),
        }
    }
}

fn err(position: usize, message: impl Into<String>) -> ConstraintError {
    ConstraintError {
        position,
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Open,
    Close,
    Comma,
    And,
    Or,
    Not,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Open => "`(`".into(),
            Tok::Close => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::And => "`&&`".into(),
            Tok::Or => "`||`".into(),
            Tok::Not => "`!`".into(),
        }
    }
}

fn tokenize(src: &str) -> Result<Vec<(usize, Tok)>, ConstraintError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let col = i + 1;
        let c = chars[i];
        let two = |a: char, b: char| c == a && chars.get(i + 1) == Some(&b);
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => Tok::Open,
            ')' => Tok::Close,
            ',' => Tok::Comma,
            '!' => Tok::Not,
            _ if two('&', '&') => {
                i += 1;
                Tok::And
            }
            _ if two('|', '|') => {
                i += 1;
                Tok::Or
            }
            '`' => {
                let len = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or_else(|| err(col, "unterminated string"))?;
                let s = chars[i + 1..i + 1 + len].iter().collect();
                i += len + 1;
                Tok::Str(s)
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(col, "unterminated string")),
                        Some('"') => break,
                        Some('\\') => {
                            s.push(match chars.get(i + 1) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some(&other) => other,
                                None => return Err(err(col, "unterminated string")),
                            });
                            i += 2;
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                Tok::Str(s)
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i + 1)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
                Tok::Ident(chars[start..=i].iter().collect())
            }
            '\'' => {
                return Err(err(
                    col,
                    "single quotes are not allowed: use backticks or double quotes",
                ))
            }
            other => return Err(err(col, format!("unexpected character {other:?}"))),
        };
        out.push((col, tok));
        i += 1;
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn col(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(c, _)| *c)
    }

    fn expect(&mut self, want: Tok) -> Result<(), ConstraintError> {
        if self.peek() == Some(&want) {
            self.pos += 1;
            return Ok(());
        }
        let found = self.peek().map_or("the end".to_string(), Tok::describe);
        Err(err(
            self.col(),
            format!("expected {}, found {found}", want.describe()),
        ))
    }

    fn or(&mut self) -> Result<Constraint, ConstraintError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = Constraint::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Constraint, ConstraintError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            left = Constraint::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Constraint, ConstraintError> {
        let col = self.col();
        match self.peek().cloned() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Constraint::Not(Box::new(self.unary()?)))
            }
            Some(Tok::Open) => {
                self.pos += 1;
                let c = self.or()?;
                self.expect(Tok::Close)?;
                Ok(c)
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                self.expect(Tok::Open)?;
                let key = self.string()?;
                self.expect(Tok::Comma)?;
                let value = self.string()?;
                self.expect(Tok::Close)?;
                match name.as_str() {
                    "Label" => Ok(Constraint::Label { key, value }),
                    "LabelRegex" => Regex::new(&value)
                        .map(|regex| Constraint::LabelRegex { key, regex })
                        .map_err(|e| err(col, format!("invalid regexp {value:?}: {e}"))),
                    _ => {
                        let hint = ["Label", "LabelRegex"]
                            .into_iter()
                            .find(|f| f.eq_ignore_ascii_case(&name))
                            .map(|f| format!(" (did you mean `{f}`?)"))
                            .unwrap_or_default();
                        Err(err(
                            col,
                            format!("unknown function `{name}`: use `Label` or `LabelRegex`{hint}"),
                        ))
                    }
                }
            }
            other => {
                let found = other.map_or("the end".to_string(), |t| t.describe());
                Err(err(
                    col,
                    format!("expected `Label(...)`, `LabelRegex(...)`, `!` or `(`, found {found}"),
                ))
            }
        }
    }

    fn string(&mut self) -> Result<String, ConstraintError> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(s)
            }
            other => {
                let found = other.map_or("the end".to_string(), |t| t.describe());
                Err(err(
                    self.col(),
                    format!("expected a string in backticks or double quotes, found {found}"),
                ))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn check(expr: &str, pairs: &[(&str, &str)]) -> bool {
        Constraint::parse(expr).unwrap().matches(&labels(pairs))
    }

    #[test]
    fn label_is_exact_on_key_and_value() {
        let public = [("traefik.constraint-label", "traefik-public")];
        assert!(check(
            "Label(`traefik.constraint-label`, `traefik-public`)",
            &public
        ));
        assert!(!check(
            "Label(`traefik.constraint-label`, `traefik`)",
            &public
        ));
        assert!(!check(
            "Label(`Traefik.constraint-label`, `traefik-public`)",
            &public
        ));
        assert!(
            check("Label(\"missing\", \"\")", &public),
            "a missing label is empty"
        );
    }

    #[test]
    fn label_regex_is_unanchored() {
        let l = [("zone", "eu-west-1")];
        assert!(check("LabelRegex(`zone`, `west`)", &l));
        assert!(!check("LabelRegex(`zone`, `^west`)", &l));
        assert!(check("LabelRegex(`other`, `^$`)", &l));
    }

    #[test]
    fn operators_and_precedence() {
        let l = [("a", "1"), ("b", "2")];
        assert!(check("Label(`a`,`1`) && Label(`b`,`2`)", &l));
        assert!(!check("Label(`a`,`1`) && !Label(`b`,`2`)", &l));
        assert!(check("Label(`a`,`x`) || Label(`b`,`2`)", &l));
        // `&&` binds tighter than `||`.
        assert!(check(
            "Label(`a`,`1`) || Label(`a`,`x`) && Label(`b`,`x`)",
            &l
        ));
        assert!(!check(
            "(Label(`a`,`1`) || Label(`a`,`x`)) && Label(`b`,`x`)",
            &l
        ));
        assert!(check("!(Label(`a`,`x`))", &l));
    }

    #[test]
    fn errors_have_columns() {
        let e = Constraint::parse("Label(`a`, `b`) && lable(`c`, `d`)").unwrap_err();
        assert_eq!(e.position, 20);
        let e = Constraint::parse("label(`a`,`b`)").unwrap_err();
        assert!(e.message.contains("did you mean `Label`"), "{e}");
        assert!(Constraint::parse("Label(`a`)").is_err());
        assert!(Constraint::parse("Label('a','b')").is_err());
        assert!(Constraint::parse("LabelRegex(`a`, `(`)").is_err());
        assert!(Constraint::parse("Label(`a`,`b`) &&").is_err());
        assert!(Constraint::parse("Label(`a`,`b`) Label(`a`,`b`)").is_err());
    }
}
