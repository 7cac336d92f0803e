//! Recursive-descent parser for v2/v3 rules: matcher calls combined with `!`, `&&`,
//! `||` and parentheses, with Go's precedence (`!` > `&&` > `||`).

use super::lexer::{tokenize, Tok, Token};
use super::{Expr, RuleError};

/// One matcher call as written in the rule.
#[derive(Debug)]
pub(super) struct Call<'a> {
    /// The matcher name as written (any accepted case).
    pub name: &'a str,
    /// Column of the name.
    pub name_col: usize,
    /// The decoded string arguments.
    pub args: Vec<Arg>,
}

/// A decoded string argument and the column of its opening quote.
#[derive(Debug)]
pub(super) struct Arg {
    pub value: String,
    pub col: usize,
}

/// Turns matcher calls into compiled expressions for one dialect.
pub(super) trait Builder {
    /// Compiles one matcher call, or explains why it is invalid.
    fn build(&self, call: &Call<'_>) -> Result<Expr, RuleError>;
}

/// Parses a v2/v3 rule, compiling each matcher call with `builder`.
pub(super) fn parse(src: &str, builder: &dyn Builder) -> Result<Expr, RuleError> {
    let tokens = tokenize(src)?;
    if tokens.is_empty() {
        return Err(RuleError::new(1, "empty rule"));
    }
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
        end_col: src.chars().count() + 1,
        builder,
    };
    let expr = p.or_expr()?;
    if let Some(t) = p.peek() {
        let message = match t.tok {
            Tok::RParen => "unmatched `)`: there is no `(` to close".to_string(),
            ref other => format!(
                "unexpected {} after a complete expression; join matchers with `&&` or `||`",
                other.describe()
            ),
        };
        return Err(RuleError::new(t.col, message));
    }
    Ok(expr)
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    end_col: usize,
    builder: &'t dyn Builder,
}

impl<'t> Parser<'t> {
    fn peek(&self) -> Option<&'t Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&'t Token> {
        let t = self.tokens.get(self.pos);
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn at(&self, tok: &Tok) -> bool {
        self.peek().is_some_and(|t| &t.tok == tok)
    }

    fn or_expr(&mut self) -> Result<Expr, RuleError> {
        let mut items = vec![self.and_expr()?];
        while self.at(&Tok::Or) {
            self.pos += 1;
            items.push(self.and_expr()?);
        }
        Ok(Expr::any(items))
    }

    fn and_expr(&mut self) -> Result<Expr, RuleError> {
        let mut items = vec![self.unary()?];
        while self.at(&Tok::And) {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(Expr::all(items))
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        if self.at(&Tok::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, RuleError> {
        let Some(t) = self.next() else {
            return Err(RuleError::new(
                self.end_col,
                "unexpected end of rule: expected a matcher such as Host(`example.com`)",
            ));
        };
        match &t.tok {
            Tok::LParen => {
                let inner = self.or_expr()?;
                self.close(t.col)?;
                Ok(inner)
            }
            Tok::Ident(name) => self.call(name, t.col),
            Tok::RParen => Err(RuleError::new(
                t.col,
                "unexpected `)`: expected a matcher such as Host(`example.com`)",
            )),
            Tok::Str(_) => Err(RuleError::new(
                t.col,
                "a string must be the argument of a matcher, like Host(`example.com`)",
            )),
            other => Err(RuleError::new(
                t.col,
                format!("expected a matcher before {}", other.describe()),
            )),
        }
    }

    /// Expects the `)` closing the `(` at `open_col`.
    fn close(&mut self, open_col: usize) -> Result<(), RuleError> {
        match self.next() {
            Some(Token {
                tok: Tok::RParen, ..
            }) => Ok(()),
            None => Err(RuleError::new(
                open_col,
                "unbalanced parenthesis: this `(` is never closed",
            )),
            Some(t) => Err(RuleError::new(
                t.col,
                format!(
                    "expected `&&`, `||` or `)` (closing the `(` at column {open_col}), found {}",
                    t.tok.describe()
                ),
            )),
        }
    }

    fn call(&mut self, name: &'t str, name_col: usize) -> Result<Expr, RuleError> {
        let open_col = match self.next() {
            Some(Token {
                tok: Tok::LParen,
                col,
            }) => *col,
            _ => {
                return Err(RuleError::new(
                    name_col,
                    format!("`{name}` must be followed by its arguments in parentheses, like {name}(`value`)"),
                ))
            }
        };
        let mut args = Vec::new();
        loop {
            let Some(t) = self.next() else {
                return Err(RuleError::new(
                    open_col,
                    "unbalanced parenthesis: this `(` is never closed",
                ));
            };
            match &t.tok {
                Tok::RParen => break,
                Tok::Str(s) => args.push(Arg {
                    value: s.clone(),
                    col: t.col,
                }),
                other => {
                    return Err(RuleError::new(
                        t.col,
                        format!(
                            "expected a string in backticks or double quotes as argument of `{name}`, found {}",
                            other.describe()
                        ),
                    ))
                }
            }
            match self.next() {
                Some(Token {
                    tok: Tok::RParen, ..
                }) => break,
                Some(Token {
                    tok: Tok::Comma, ..
                }) => {}
                None => {
                    return Err(RuleError::new(
                        open_col,
                        "unbalanced parenthesis: this `(` is never closed",
                    ))
                }
                Some(t) => {
                    return Err(RuleError::new(
                        t.col,
                        format!(
                            "expected `,` or `)` in the arguments of `{name}`, found {}",
                            t.tok.describe()
                        ),
                    ))
                }
            }
        }
        self.builder.build(&Call {
            name,
            name_col,
            args,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rules::matcher::Matcher;

    /// Builds `Method(name)` leaves so the tree shape can be inspected.
    struct Probe;
    impl Builder for Probe {
        fn build(&self, call: &Call<'_>) -> Result<Expr, RuleError> {
            let args: Vec<&str> = call.args.iter().map(|a| a.value.as_str()).collect();
            Ok(Expr::Match(Matcher::Method(format!(
                "{}:{}",
                call.name,
                args.join("|")
            ))))
        }
    }

    fn shape(e: &Expr) -> String {
        match e {
            Expr::Always => "*".into(),
            Expr::Match(Matcher::Method(s)) => s.clone(),
            Expr::Match(_) => "?".into(),
            Expr::And(v) => format!("({})", v.iter().map(shape).collect::<Vec<_>>().join(" & ")),
            Expr::Or(v) => format!("({})", v.iter().map(shape).collect::<Vec<_>>().join(" | ")),
            Expr::Not(e) => format!("!{}", shape(e)),
        }
    }

    fn p(src: &str) -> String {
        shape(&parse(src, &Probe).unwrap())
    }

    fn e(src: &str) -> RuleError {
        parse(src, &Probe).unwrap_err()
    }

    #[test]
    fn precedence_not_and_or() {
        assert_eq!(p("A(`1`) || B(`2`) && C(`3`)"), "(A:1 | (B:2 & C:3))");
        assert_eq!(p("A(`1`) && B(`2`) || C(`3`)"), "((A:1 & B:2) | C:3)");
        assert_eq!(p("!A(`1`) && B(`2`)"), "(!A:1 & B:2)");
        assert_eq!(p("!(A(`1`) || B(`2`))"), "!(A:1 | B:2)");
        assert_eq!(p("(A(`1`) || B(`2`)) && C(`3`)"), "((A:1 | B:2) & C:3)");
        assert_eq!(p("!!A(`1`)"), "!!A:1");
    }

    #[test]
    fn flattens_chains_and_keeps_arguments() {
        assert_eq!(p("A(`1`) && B(`2`) && C(`3`)"), "(A:1 & B:2 & C:3)");
        assert_eq!(p("((A(`x`, \"y\",)))"), "A:x|y");
        assert_eq!(p("A()"), "A:");
        assert_eq!(p("  A(`1`)\n\t||\nB(`2`)  "), "(A:1 | B:2)");
    }

    #[test]
    fn empty_rule() {
        let err = e("   ");
        assert_eq!((err.position, err.message.as_str()), (1, "empty rule"));
    }

    #[test]
    fn unbalanced_parentheses_point_at_the_open_one() {
        let err = e("(A(`1`) || B(`2`)");
        assert_eq!(err.position, 1);
        assert!(err.message.contains("never closed"));
        let err = e("A(`1`) && (B(`2`) || (C(`3`))");
        assert_eq!(err.position, 11);
        let err = e("A(`1`");
        assert_eq!(err.position, 2);
        let err = e("A(`1`) && B(`2`))");
        assert_eq!(err.position, 17);
        assert!(err.message.contains("unmatched"));
    }

    #[test]
    fn trailing_input_and_missing_operator() {
        let err = e("A(`1`) B(`2`)");
        assert_eq!(err.position, 8);
        assert!(err.message.contains("`&&` or `||`"), "{}", err.message);
        let err = e("(A(`1`) B(`2`))");
        assert_eq!(err.position, 9);
    }

    #[test]
    fn dangling_operators_and_bad_arguments() {
        let err = e("A(`1`) &&");
        assert_eq!(err.position, 10);
        assert!(err.message.contains("end of rule"));
        let err = e("&& A(`1`)");
        assert_eq!(err.position, 1);
        let err = e("A");
        assert_eq!(err.position, 1);
        assert!(err.message.contains("parentheses"));
        let err = e("A(B(`1`))");
        assert_eq!(err.position, 3);
        assert!(err.message.contains("backticks"));
        let err = e("A(`1` `2`)");
        assert_eq!(err.position, 7);
        let err = e("`x`");
        assert!(err.message.contains("argument of a matcher"));
    }
}
