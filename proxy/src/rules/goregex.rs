//! Go (RE2) regexps compiled with the `regex` crate. The two syntaxes are nearly
//! the same; the differences that matter in rules are smoothed over here:
//! - Go reads a `{` that does not start a repetition (`{2}`, `{2,}`, `{2,5}`) as a
//!   literal brace; `regex` rejects it, so such braces are escaped;
//! - inside a character class Go reads `[`, `&&` and `~~` literally, `regex` sees
//!   nested classes and set operators, so they are escaped;
//! - Go's `\Q...\E` literal quoting is expanded.
//!
//! Remaining difference: `\d`, `\w`, `\s` and `\b` are Unicode-aware here, ASCII in Go.

use regex::{bytes, Regex, RegexBuilder};

/// Rewrites a Go regexp into the equivalent `regex` crate syntax.
pub(super) fn translate(go: &str) -> String {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if !in_class && chars.get(i + 1) == Some(&'Q') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '\\' && chars.get(i + 1) == Some(&'E')) {
                    out.push_str(&regex::escape(chars[i].encode_utf8(&mut [0; 4])));
                    i += 1;
                }
                i += 2;
                continue;
            }
            '\\' => {
                out.push(c);
                if let Some(n) = chars.get(i + 1) {
                    out.push(*n);
                }
                i += 2;
                continue;
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                continue;
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                // A POSIX class such as [:alpha:], copied through its closing `:]`.
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == ':' && chars[j + 1] == ']');
                match end {
                    Some(j) => {
                        out.extend(&chars[i..j + 2]);
                        i = j + 2;
                    }
                    None => {
                        out.push_str("\\[");
                        i += 1;
                    }
                }
                continue;
            }
            '[' | '&' | '~' if in_class => out.push('\\'),
            ']' if in_class => in_class = false,
            '{' if !in_class => {
                if let Some(len) = repetition_len(&chars[i..]) {
                    out.extend(&chars[i..i + len]);
                    i += len;
                    continue;
                }
                out.push('\\');
            }
            '}' if !in_class => out.push('\\'),
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Length of a Go repetition `{n}`, `{n,}` or `{n,m}` at the start of `s`, if any.
fn repetition_len(s: &[char]) -> Option<usize> {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while s.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if s.get(i) == Some(&',') {
        i += 1;
        digits(&mut i);
    }
    (s.get(i) == Some(&'}')).then_some(i + 1)
}

/// Compiles a Go regexp for matching `&str` (hosts, paths).
pub(super) fn compile(go: &str, case_insensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(&translate(go))
        .case_insensitive(case_insensitive)
        .build()
        .map_err(describe)
}

/// Compiles a Go regexp for matching raw bytes (header and query values).
pub(super) fn compile_bytes(go: &str) -> Result<bytes::Regex, String> {
    bytes::Regex::new(&translate(go)).map_err(describe)
}

/// The one-line reason from a `regex` error (its Display spans several lines).
pub(super) fn describe(e: regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s
            .lines()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .map(str::to_string)
            .unwrap_or_else(|| s.trim().to_string()),
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled regexp exceeds the size limit of {limit} bytes")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn translation_of_go_only_forms() {
        assert_eq!(translate("a{2}b{1,}c{1,3}"), "a{2}b{1,}c{1,3}");
        assert_eq!(translate("http{secure:s?}"), "http\\{secure:s?\\}");
        assert_eq!(translate("a{x"), "a\\{x");
        assert_eq!(translate("[[]"), "[\\[]");
        assert_eq!(translate("[]a]"), "[\\]a]");
        assert_eq!(translate("[^]a]"), "[^\\]a]");
        assert_eq!(translate("[a&&b~~]"), "[a\\&\\&b\\~\\~]");
        assert_eq!(translate("[[:alpha:]]+"), "[[:alpha:]]+");
        assert_eq!(translate(r"\Qa.b\E+"), r"a\.b+");
        assert_eq!(translate(r"\{\d+\}"), r"\{\d+\}");
        assert_eq!(translate(r"[\]]"), r"[\]]");
    }

    #[test]
    fn go_literal_braces_compile_and_match_literally() {
        let re = compile_bytes("http{secure:s?}").unwrap();
        assert!(re.is_match(b"http{secure:}"));
        assert!(!re.is_match(b"https"));
    }

    #[test]
    fn case_insensitivity_is_optional() {
        assert!(compile("^[a-z]+\\.com$", true)
            .unwrap()
            .is_match("EXAMPLE.com"));
        assert!(!compile("^[a-z]+\\.com$", false)
            .unwrap()
            .is_match("EXAMPLE.com"));
    }

    #[test]
    fn errors_are_one_line() {
        let e = compile("(example.com", false).unwrap_err();
        assert_eq!(e, "unclosed group");
        let e = compile("*x", false).unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("repetition"), "{e}");
    }
}
