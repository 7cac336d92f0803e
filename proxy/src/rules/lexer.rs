//! Tokenizer for v2/v3 rules, which Traefik parses as Go expressions: identifiers,
//! Go string literals (raw in backticks, or interpreted in double quotes), `(`, `)`,
//! `,`, `&&`, `||` and `!`.

use super::RuleError;

/// A token kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    /// A matcher name.
    Ident(String),
    /// A decoded string literal.
    Str(String),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Not,
}

impl Tok {
    /// How the token is shown in error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(_) => "a string".to_string(),
            Tok::LParen => "`(`".to_string(),
            Tok::RParen => "`)`".to_string(),
            Tok::Comma => "`,`".to_string(),
            Tok::And => "`&&`".to_string(),
            Tok::Or => "`||`".to_string(),
            Tok::Not => "`!`".to_string(),
        }
    }
}

/// A token and the 1-based character column where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub tok: Tok,
    pub col: usize,
}

/// Splits a rule into tokens.
pub(super) fn tokenize(src: &str) -> Result<Vec<Token>, RuleError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        let single = |tok| Token { tok, col };
        let punct = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '!' => Some(Tok::Not),
            _ => None,
        };
        if let Some(tok) = punct {
            out.push(single(tok));
            i += 1;
            continue;
        }
        match c {
            c if c.is_whitespace() => i += 1,
            '&' | '|' => {
                if chars.get(i + 1) != Some(&c) {
                    return Err(RuleError::new(
                        col,
                        format!("unexpected `{c}`; the operators are `&&`, `||` and `!`"),
                    ));
                }
                out.push(single(if c == '&' { Tok::And } else { Tok::Or }));
                i += 2;
            }
            '`' => {
                let (s, next) = raw_string(&chars, i)?;
                out.push(single(Tok::Str(s)));
                i = next;
            }
            '"' => {
                let (s, next) = interpreted_string(&chars, i)?;
                out.push(single(Tok::Str(s)));
                i = next;
            }
            '\'' => {
                return Err(RuleError::new(
                    col,
                    "single quotes are not allowed; quote values with backticks (`value`) or double quotes (\"value\")",
                ))
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if chars.get(i) == Some(&':') {
                    return Err(RuleError::new(
                        i + 1,
                        format!(
                            "unexpected `:` after `{name}`; this looks like Traefik v1 syntax (`{name}:value`): \
                             write {name}(`value`) or set `ruleSyntax: v1`"
                        ),
                    ));
                }
                out.push(single(Tok::Ident(name)));
            }
            c => {
                let hint = if c.is_ascii_digit() {
                    "; values must be quoted with backticks or double quotes"
                } else {
                    ""
                };
                return Err(RuleError::new(
                    col,
                    format!("unexpected character `{c}`{hint}"),
                ));
            }
        }
    }
    Ok(out)
}

/// A Go raw string literal starting at `start` (the backtick); carriage returns are dropped.
fn raw_string(chars: &[char], start: usize) -> Result<(String, usize), RuleError> {
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '`' => return Ok((s, i + 1)),
            '\r' => {}
            c => s.push(c),
        }
        i += 1;
    }
    Err(RuleError::new(
        start + 1,
        "unterminated string: missing closing backtick",
    ))
}

/// A Go interpreted string literal starting at `start` (the double quote), with Go escapes.
fn interpreted_string(chars: &[char], start: usize) -> Result<(String, usize), RuleError> {
    let unterminated = || RuleError::new(start + 1, "unterminated string: missing closing `\"`");
    let mut bytes: Vec<u8> = Vec::new();
    let mut i = start + 1;
    loop {
        let c = *chars.get(i).ok_or_else(unterminated)?;
        match c {
            '"' => break,
            '\n' => return Err(unterminated()),
            '\\' => {
                let esc_col = i + 1;
                let e = *chars.get(i + 1).ok_or_else(unterminated)?;
                i += 2;
                let simple = match e {
                    'a' => Some(0x07),
                    'b' => Some(0x08),
                    'f' => Some(0x0c),
                    'n' => Some(b'\n'),
                    'r' => Some(b'\r'),
                    't' => Some(b'\t'),
                    'v' => Some(0x0b),
                    '\\' => Some(b'\\'),
                    '"' => Some(b'"'),
                    _ => None,
                };
                if let Some(b) = simple {
                    bytes.push(b);
                    continue;
                }
                let (digits, radix) = match e {
                    '0'..='7' => (3, 8),
                    'x' => (2, 16),
                    'u' => (4, 16),
                    'U' => (8, 16),
                    _ => {
                        return Err(RuleError::new(
                            esc_col,
                            format!("unknown escape sequence `\\{e}` in string"),
                        ))
                    }
                };
                let from = if radix == 8 { i - 1 } else { i };
                let text: String = chars
                    .get(from..from + digits)
                    .unwrap_or(&[])
                    .iter()
                    .collect();
                let well_formed =
                    text.chars().count() == digits && text.chars().all(|c| c.is_digit(radix));
                let value = well_formed
                    .then(|| u32::from_str_radix(&text, radix).ok())
                    .flatten()
                    .ok_or_else(|| {
                        RuleError::new(esc_col, format!("invalid escape sequence `\\{e}{text}`"))
                    })?;
                i = from + digits;
                if matches!(e, 'u' | 'U') {
                    let ch = char::from_u32(value).ok_or_else(|| {
                        RuleError::new(esc_col, "escape sequence is an invalid Unicode code point")
                    })?;
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                } else {
                    let b = u8::try_from(value).map_err(|_| {
                        RuleError::new(esc_col, "octal escape value is greater than 255")
                    })?;
                    bytes.push(b);
                }
                continue;
            }
            c => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        i += 1;
    }
    let s = String::from_utf8(bytes)
        .map_err(|_| RuleError::new(start + 1, "string is not valid UTF-8 after unescaping"))?;
    Ok((s, i + 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tokens_and_columns() {
        let t = tokenize("Host(`a`) && !Path(\"/b\")").unwrap();
        let cols: Vec<usize> = t.iter().map(|t| t.col).collect();
        assert_eq!(cols, vec![1, 5, 6, 9, 11, 14, 15, 19, 20, 24]);
        assert_eq!(t[0].tok, Tok::Ident("Host".into()));
        assert_eq!(t[2].tok, Tok::Str("a".into()));
        assert_eq!(t[4].tok, Tok::And);
        assert_eq!(t[5].tok, Tok::Not);
        assert_eq!(t[8].tok, Tok::Str("/b".into()));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let t = tokenize("Host(`é`) || X").unwrap();
        assert_eq!(t[4].col, 11);
        assert_eq!(t[5].col, 14);
    }

    #[test]
    fn raw_strings_keep_backslashes_and_drop_cr() {
        assert_eq!(toks("`a\\.b`"), vec![Tok::Str("a\\.b".into())]);
        assert_eq!(toks("`a\r\nb`"), vec![Tok::Str("a\nb".into())]);
    }

    #[test]
    fn go_escapes_in_double_quotes() {
        assert_eq!(toks(r#""a\\.b""#), vec![Tok::Str("a\\.b".into())]);
        assert_eq!(
            toks(r#""\t\"\x41\101\u00e9\U0001F600""#),
            vec![Tok::Str("\t\"AAé😀".into())]
        );
    }

    #[test]
    fn bad_escapes() {
        let e = tokenize(r#"Host("a\qb")"#).unwrap_err();
        assert_eq!(e.position, 8);
        assert!(e.message.contains("unknown escape"), "{}", e.message);
        assert!(tokenize(r#""\x4""#).is_err());
        assert!(tokenize(r#""\777""#).is_err());
        assert!(tokenize(r#""\xff""#).unwrap_err().message.contains("UTF-8"));
    }

    #[test]
    fn unterminated_strings_point_at_opening_quote() {
        let e = tokenize("Host(`a.com)").unwrap_err();
        assert_eq!(e.position, 6);
        assert!(e.message.contains("unterminated"));
        let e = tokenize("Path(\"/a)").unwrap_err();
        assert_eq!(e.position, 6);
        let e = tokenize("Path(\"/a\n\")").unwrap_err();
        assert!(e.message.contains("unterminated"));
    }

    #[test]
    fn single_quotes_and_single_operators_rejected() {
        let e = tokenize("Host('a')").unwrap_err();
        assert_eq!(e.position, 6);
        assert!(e.message.contains("single quotes"));
        let e = tokenize("Host(`a`) & Path(`/`)").unwrap_err();
        assert_eq!(e.position, 11);
        let e = tokenize("Host(`a`) | Path(`/`)").unwrap_err();
        assert!(e.message.contains("`||`"));
    }

    #[test]
    fn v1_looking_rule_gets_hint() {
        let e = tokenize("Host:example.com").unwrap_err();
        assert_eq!(e.position, 5);
        assert!(e.message.contains("v1"), "{}", e.message);
    }

    #[test]
    fn unquoted_number_rejected() {
        let e = tokenize("Host(1)").unwrap_err();
        assert_eq!(e.position, 6);
        assert!(e.message.contains("quoted"));
    }
}
