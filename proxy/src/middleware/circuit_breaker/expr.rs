//! The circuit breaker's trip condition: Traefik's small expression language,
//! `NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(50.0) > 100`, made of
//! metric functions and numbers compared with `> < >= <= == !=` and combined with
//! `&&`, `||`, `!` and parentheses.

use std::fmt;

/// A metric the condition reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// `NetworkErrorRatio()`: share of responses that are 502 or 504.
    NetworkErrorRatio,
    /// `ResponseCodeRatio(from, to, dividedByFrom, dividedByTo)`: responses with a
    /// code in `[from, to)` over those in `[dividedByFrom, dividedByTo)`.
    ResponseCodeRatio(u16, u16, u16, u16),
    /// `LatencyAtQuantileMS(q)`: the latency in milliseconds at quantile `q` (0-100).
    LatencyAtQuantileMs(f64),
}

/// Where the values of metrics come from.
pub trait Metrics {
    /// The current value of `m`.
    fn value(&self, m: &Metric) -> f64;
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A constant.
    Number(f64),
    /// A metric read when the condition is checked.
    Metric(Metric),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Both hold.
    And(Box<Expr>, Box<Expr>),
    /// Either holds.
    Or(Box<Expr>, Box<Expr>),
    /// Does not hold.
    Not(Box<Expr>),
    /// A comparison of two values.
    Compare(Value, Cmp, Value),
}

/// Why an expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid circuit breaker expression {expression:?} at column {column}: {message}")]
pub struct ExprError {
    /// The expression.
    pub expression: String,
    /// 1-based column of the problem.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl Expr {
    /// Parses a condition.
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let tokens = lex(src)?;
        let mut p = Parser {
            src,
            tokens,
            pos: 0,
        };
        let e = p.or()?;
        match p.tokens.get(p.pos) {
            None => Ok(e),
            Some((col, t)) => Err(p.error(*col, format!("unexpected {t}"))),
        }
    }

    /// Evaluates the condition against `m`.
    pub fn eval(&self, m: &dyn Metrics) -> bool {
        match self {
            Expr::And(a, b) => a.eval(m) && b.eval(m),
            Expr::Or(a, b) => a.eval(m) || b.eval(m),
            Expr::Not(a) => !a.eval(m),
            Expr::Compare(a, op, b) => {
                let (a, b) = (value(a, m), value(b, m));
                match op {
                    Cmp::Gt => a > b,
                    Cmp::Lt => a < b,
                    Cmp::Ge => a >= b,
                    Cmp::Le => a <= b,
                    Cmp::Eq => a == b,
                    Cmp::Ne => a != b,
                }
            }
        }
    }
}

fn value(v: &Value, m: &dyn Metrics) -> f64 {
    match v {
        Value::Number(n) => *n,
        Value::Metric(metric) => m.value(metric),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Ident(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Number(n) => write!(f, "number {n}"),
            Token::Ident(s) => write!(f, "{s:?}"),
            Token::Op(o) => write!(f, "{o:?}"),
            Token::Open => f.write_str("\"(\""),
            Token::Close => f.write_str("\")\""),
            Token::Comma => f.write_str("\",\""),
        }
    }
}

const OPERATORS: [&str; 9] = ["&&", "||", ">=", "<=", "==", "!=", ">", "<", "!"];

fn lex(src: &str) -> Result<Vec<(usize, Token)>, ExprError> {
    let err = |column: usize, message: String| ExprError {
        expression: src.to_string(),
        column,
        message,
    };
    let mut out = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let col = i + 1;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == b'.' || c == b'-' {
            let start = i;
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let text = &src[start..i];
            let n: f64 = text
                .parse()
                .map_err(|_| err(col, format!("invalid number {text:?}")))?;
            out.push((col, Token::Number(n)));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((col, Token::Ident(src[start..i].to_string())));
        } else if c == b'(' {
            out.push((col, Token::Open));
            i += 1;
        } else if c == b')' {
            out.push((col, Token::Close));
            i += 1;
        } else if c == b',' {
            out.push((col, Token::Comma));
            i += 1;
        } else if let Some(op) = OPERATORS.iter().find(|op| src[i..].starts_with(**op)) {
            out.push((col, Token::Op(op)));
            i += op.len();
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(err(col, format!("unexpected character {ch:?}")));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<(usize, Token)>,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, column: usize, message: String) -> ExprError {
        ExprError {
            expression: self.src.to_string(),
            column,
            message,
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn column(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map(|(c, _)| *c)
            .unwrap_or(self.src.len() + 1)
    }

    fn next(&mut self, what: &str) -> Result<(usize, Token), ExprError> {
        let col = self.column();
        let t = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or_else(|| self.error(col, format!("expected {what}, found the end")))?;
        self.pos += 1;
        Ok(t)
    }

    fn eat_op(&mut self, op: &'static str) -> bool {
        let found = self.peek() == Some(&Token::Op(op));
        if found {
            self.pos += 1;
        }
        found
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.and()?;
        while self.eat_op("||") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.unary()?;
        while self.eat_op("&&") {
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.eat_op("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let e = self.or()?;
            let (col, t) = self.next("\")\"")?;
            if t != Token::Close {
                return Err(self.error(col, format!("expected \")\", found {t}")));
            }
            return Ok(e);
        }
        let left = self.value()?;
        let (col, t) = self.next("a comparison")?;
        let op = match t {
            Token::Op(">") => Cmp::Gt,
            Token::Op("<") => Cmp::Lt,
            Token::Op(">=") => Cmp::Ge,
            Token::Op("<=") => Cmp::Le,
            Token::Op("==") => Cmp::Eq,
            Token::Op("!=") => Cmp::Ne,
            other => return Err(self.error(col, format!("expected a comparison, found {other}"))),
        };
        let right = self.value()?;
        Ok(Expr::Compare(left, op, right))
    }

    fn value(&mut self) -> Result<Value, ExprError> {
        let (col, t) = self.next("a number or a metric")?;
        match t {
            Token::Number(n) => Ok(Value::Number(n)),
            Token::Ident(name) => {
                let args = self.args(&name)?;
                let metric = metric(&name, &args).map_err(|message| self.error(col, message))?;
                Ok(Value::Metric(metric))
            }
            other => Err(self.error(col, format!("expected a number or a metric, found {other}"))),
        }
    }

    fn args(&mut self, name: &str) -> Result<Vec<f64>, ExprError> {
        let (col, t) = self.next("\"(\"")?;
        if t != Token::Open {
            return Err(self.error(col, format!("expected \"(\" after {name}, found {t}")));
        }
        let mut args = Vec::new();
        if self.peek() == Some(&Token::Close) {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            let (col, t) = self.next("an argument")?;
            match t {
                Token::Number(n) => args.push(n),
                other => return Err(self.error(col, format!("expected a number, found {other}"))),
            }
            let (col, t) = self.next("\",\" or \")\"")?;
            match t {
                Token::Comma => {}
                Token::Close => return Ok(args),
                other => {
                    return Err(self.error(col, format!("expected \",\" or \")\", found {other}")))
                }
            }
        }
    }
}

fn metric(name: &str, args: &[f64]) -> Result<Metric, String> {
    let code = |v: f64| -> Result<u16, String> {
        if v.fract() == 0.0 && (0.0..=1000.0).contains(&v) {
            Ok(v as u16)
        } else {
            Err(format!("{name}: {v} is not a status code"))
        }
    };
    match (name, args) {
        ("NetworkErrorRatio", []) => Ok(Metric::NetworkErrorRatio),
        ("ResponseCodeRatio", [a, b, c, d]) => Ok(Metric::ResponseCodeRatio(
            code(*a)?,
            code(*b)?,
            code(*c)?,
            code(*d)?,
        )),
        ("LatencyAtQuantileMS", [q]) if (0.0..=100.0).contains(q) => {
            Ok(Metric::LatencyAtQuantileMs(*q))
        }
        ("LatencyAtQuantileMS", [q]) => Err(format!(
            "LatencyAtQuantileMS: quantile {q} is not between 0 and 100"
        )),
        ("NetworkErrorRatio" | "ResponseCodeRatio" | "LatencyAtQuantileMS", _) => Err(format!(
            "{name} takes {} argument(s), got {}",
            match name {
                "NetworkErrorRatio" => 0,
                "ResponseCodeRatio" => 4,
                _ => 1,
            },
            args.len()
        )),
        _ => Err(format!(
            "unknown function {name:?} (NetworkErrorRatio, ResponseCodeRatio and \
             LatencyAtQuantileMS are known)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed {
        net: f64,
        codes: f64,
        latency: f64,
    }

    impl Metrics for Fixed {
        fn value(&self, m: &Metric) -> f64 {
            match m {
                Metric::NetworkErrorRatio => self.net,
                Metric::ResponseCodeRatio(..) => self.codes,
                Metric::LatencyAtQuantileMs(_) => self.latency,
            }
        }
    }

    const M: Fixed = Fixed {
        net: 0.4,
        codes: 0.1,
        latency: 120.0,
    };

    fn holds(s: &str) -> bool {
        Expr::parse(s).unwrap().eval(&M)
    }

    #[test]
    fn parses_traefik_examples() {
        assert!(holds("NetworkErrorRatio() > 0.30"));
        assert!(!holds("ResponseCodeRatio(500, 600, 0, 600) > 0.25"));
        assert!(holds("LatencyAtQuantileMS(50.0) > 100"));
        assert!(holds(
            "ResponseCodeRatio(500, 600, 0, 600) > 0.30 || NetworkErrorRatio() > 0.10"
        ));
        assert!(!holds(
            "ResponseCodeRatio(500, 600, 0, 600) > 0.30 && NetworkErrorRatio() > 0.10"
        ));
        assert!(holds(
            "(NetworkErrorRatio() >= 0.4) && !(LatencyAtQuantileMS(99) < 100)"
        ));
        assert!(holds(
            "NetworkErrorRatio() == 0.4 && 1 != 2 && 3 <= 3 && 0.1 < 0.2"
        ));
        assert_eq!(
            Expr::parse("ResponseCodeRatio(500, 600, 0, 600) > 0.25").unwrap(),
            Expr::Compare(
                Value::Metric(Metric::ResponseCodeRatio(500, 600, 0, 600)),
                Cmp::Gt,
                Value::Number(0.25)
            )
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // false && true || true  ==  (false && true) || true
        assert!(holds(
            "NetworkErrorRatio() > 1 && NetworkErrorRatio() > 0 || LatencyAtQuantileMS(50) > 1"
        ));
    }

    #[test]
    fn errors_name_the_problem_and_column() {
        let e = Expr::parse("NetworkErrorRatio() >").unwrap_err();
        assert!(e.message.contains("found the end"), "{e}");
        let e = Expr::parse("Latency(50) > 1").unwrap_err();
        assert_eq!(e.column, 1);
        assert!(e.message.contains("unknown function"), "{e}");
        let e = Expr::parse("NetworkErrorRatio(1) > 0").unwrap_err();
        assert!(e.message.contains("takes 0"), "{e}");
        let e = Expr::parse("LatencyAtQuantileMS(150) > 0").unwrap_err();
        assert!(e.message.contains("between 0 and 100"), "{e}");
        assert!(Expr::parse("NetworkErrorRatio() > 0.5 extra").is_err());
        assert!(Expr::parse("NetworkErrorRatio() ? 1").is_err());
        assert!(Expr::parse("").is_err());
        assert!(Expr::parse("NetworkErrorRatio()").is_err());
        assert!(Expr::parse("(NetworkErrorRatio() > 1").is_err());
    }
}
