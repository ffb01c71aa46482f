//! CloudWatch Logs' JSON filter patterns, the subset our templates use, so that a test can tell
//! which log lines a metric filter would count — without AWS.
//!
//! Why: the metric filters in `scripts/trigger/template.yaml` and `deploy/sync/template.yaml`
//! are the only thing between the binaries' log lines and the alarms; a pattern that names a
//! field wrongly or quotes a number matches nothing, silently. `deploy::` checks every pattern of
//! both templates against lines the binaries print, with this matcher, and checks the matcher
//! itself against the examples of AWS's documentation ("Filter and pattern syntax", Matching
//! terms in JSON log events: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html>,
//! source in github.com/awsdocs/amazon-cloudwatch-logs-user-guide, `doc_source/FilterAndPatternSyntax.md`).
//!
//! Supported: `{ … }` around conditions `SELECTOR = | != VALUE` (a quoted or bare string, `*`
//! wildcards at its start or end, or a number), `SELECTOR < > <= >= = != NUMBER`,
//! `SELECTOR IS TRUE | FALSE | NULL`, `SELECTOR NOT EXISTS`, joined by `&&` and `||` with
//! parentheses (precedence `()` > `&&` > `||`, as documented). Selectors: `$.a.b`, `$.a[0]`,
//! `$.a[0][1]`, `$.['dotted.key']`. As documented, a selector that points to an array or object
//! matches neither `=` nor `!=`; a missing member matches neither either. Not supported (not
//! used here): text and space-delimited patterns, regular expressions, `%…%`.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    LBrace,
    RBrace,
    LParen,
    RParen,
    And,
    Or,
    Op(&'static str),
    Selector(Vec<Step>),
    Quoted(String),
    Bare(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare {
        path: Vec<Step>,
        op: &'static str,
        value: Literal,
    },
    Is {
        path: Vec<Step>,
        what: &'static str,
    },
    NotExists(Vec<Step>),
}

#[derive(Clone, Debug)]
enum Literal {
    Number(f64),
    /// Bare or quoted text; `*` at either end is a wildcard unless quoted in the middle.
    Text(String),
}

/// A parsed JSON filter pattern.
#[derive(Clone, Debug)]
pub struct FilterPattern {
    expr: Expr,
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '{' => {
                out.push(Token::LBrace);
                i += 1
            }
            '}' => {
                out.push(Token::RBrace);
                i += 1
            }
            '(' => {
                out.push(Token::LParen);
                i += 1
            }
            ')' => {
                out.push(Token::RParen);
                i += 1
            }
            '&' if chars.get(i + 1) == Some(&'&') => {
                out.push(Token::And);
                i += 2
            }
            '|' if chars.get(i + 1) == Some(&'|') => {
                out.push(Token::Or);
                i += 2
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Token::Op("!="));
                i += 2
            }
            '<' | '>' => {
                if chars.get(i + 1) == Some(&'=') {
                    out.push(Token::Op(if c == '<' { "<=" } else { ">=" }));
                    i += 2
                } else {
                    out.push(Token::Op(if c == '<' { "<" } else { ">" }));
                    i += 1
                }
            }
            '=' => {
                out.push(Token::Op("="));
                i += 1
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated string in {pattern}")),
                        Some('\\') => {
                            s.push(*chars.get(i + 1).ok_or("dangling escape")?);
                            i += 2
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1
                        }
                    }
                }
                out.push(Token::Quoted(s));
            }
            '$' => {
                i += 1;
                let mut steps = Vec::new();
                loop {
                    match chars.get(i) {
                        Some('.') if chars.get(i + 1) == Some(&'[') => {
                            // $.['dotted.key']
                            let quote = *chars.get(i + 2).ok_or("bad selector")?;
                            if quote != '\'' && quote != '"' {
                                return Err(format!("bad selector in {pattern}"));
                            }
                            let start = i + 3;
                            let end = (start..chars.len())
                                .find(|&j| chars[j] == quote)
                                .ok_or("unterminated key")?;
                            if chars.get(end + 1) != Some(&']') {
                                return Err(format!("bad selector in {pattern}"));
                            }
                            steps.push(Step::Key(chars[start..end].iter().collect()));
                            i = end + 2;
                        }
                        Some('.') => {
                            let start = i + 1;
                            let mut j = start;
                            while j < chars.len()
                                && (chars[j].is_alphanumeric()
                                    || chars[j] == '_'
                                    || chars[j] == '-')
                            {
                                j += 1;
                            }
                            if j == start {
                                return Err(format!("empty member name in {pattern}"));
                            }
                            steps.push(Step::Key(chars[start..j].iter().collect()));
                            i = j;
                        }
                        Some('[') => {
                            let start = i + 1;
                            let end = (start..chars.len())
                                .find(|&j| chars[j] == ']')
                                .ok_or("unterminated index")?;
                            let n: String = chars[start..end].iter().collect();
                            steps.push(Step::Index(
                                n.parse().map_err(|_| format!("bad index {n:?}"))?,
                            ));
                            i = end + 1;
                        }
                        _ => break,
                    }
                }
                out.push(Token::Selector(steps));
            }
            _ => {
                let start = i;
                let ends_here = |i: usize| {
                    chars[i].is_whitespace()
                        || matches!(chars[i], '(' | ')' | '{' | '}' | '"')
                        || (chars[i] == '&' && chars.get(i + 1) == Some(&'&'))
                        || (chars[i] == '|' && chars.get(i + 1) == Some(&'|'))
                };
                while i < chars.len() && !ends_here(i) {
                    i += 1;
                }
                out.push(Token::Bare(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::LParen) => {
                let e = self.or()?;
                match self.next() {
                    Some(Token::RParen) => Ok(e),
                    t => Err(format!("expected ), found {t:?}")),
                }
            }
            Some(Token::Selector(path)) => match self.next() {
                Some(Token::Op(op)) => {
                    let value = match self.next() {
                        Some(Token::Quoted(s)) => Literal::Text(s),
                        Some(Token::Bare(s)) => match s.parse::<f64>() {
                            Ok(n) if !s.contains('*') => Literal::Number(n),
                            _ => Literal::Text(s),
                        },
                        t => return Err(format!("expected a value, found {t:?}")),
                    };
                    if !matches!(op, "=" | "!=") && !matches!(value, Literal::Number(_)) {
                        return Err(format!("{op} needs a number"));
                    }
                    Ok(Expr::Compare { path, op, value })
                }
                Some(Token::Bare(w)) if w == "IS" => match self.next() {
                    Some(Token::Bare(w)) if w == "TRUE" => Ok(Expr::Is { path, what: "TRUE" }),
                    Some(Token::Bare(w)) if w == "FALSE" => Ok(Expr::Is {
                        path,
                        what: "FALSE",
                    }),
                    Some(Token::Bare(w)) if w == "NULL" => Ok(Expr::Is { path, what: "NULL" }),
                    t => Err(format!("IS what? {t:?}")),
                },
                Some(Token::Bare(w)) if w == "NOT" => match self.next() {
                    Some(Token::Bare(w)) if w == "EXISTS" => Ok(Expr::NotExists(path)),
                    t => Err(format!("NOT what? {t:?}")),
                },
                t => Err(format!("expected an operator, found {t:?}")),
            },
            t => Err(format!("expected a condition, found {t:?}")),
        }
    }
}

fn select<'v>(root: &'v Value, path: &[Step]) -> Option<&'v Value> {
    path.iter().try_fold(root, |v, step| match step {
        Step::Key(k) => v.as_object()?.get(k),
        Step::Index(i) => v.as_array()?.get(*i),
    })
}

fn text_matches(pattern: &str, actual: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), _) if rest.ends_with('*') && rest.len() > 1 => {
            actual.contains(&rest[..rest.len() - 1])
        }
        (Some(rest), _) => actual.ends_with(rest),
        (None, Some(rest)) => actual.starts_with(rest),
        (None, None) => actual == pattern,
    }
}

fn eval(expr: &Expr, root: &Value) -> bool {
    match expr {
        Expr::And(a, b) => eval(a, root) && eval(b, root),
        Expr::Or(a, b) => eval(a, root) || eval(b, root),
        Expr::NotExists(path) => select(root, path).is_none(),
        Expr::Is { path, what } => matches!(
            (select(root, path), *what),
            (Some(Value::Bool(true)), "TRUE")
                | (Some(Value::Bool(false)), "FALSE")
                | (Some(Value::Null), "NULL")
        ),
        Expr::Compare { path, op, value } => {
            let Some(actual) = select(root, path) else {
                return false;
            };
            match (actual, value) {
                // Arrays and objects match neither = nor != (documented).
                (Value::Array(_) | Value::Object(_), _) => false,
                (Value::Number(n), Literal::Number(want)) => {
                    let n = n.as_f64().unwrap_or(f64::NAN);
                    match *op {
                        "=" => n == *want,
                        "!=" => n != *want,
                        "<" => n < *want,
                        ">" => n > *want,
                        "<=" => n <= *want,
                        ">=" => n >= *want,
                        _ => false,
                    }
                }
                (actual, Literal::Text(want)) if matches!(*op, "=" | "!=") => {
                    let text = match actual {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return false,
                    };
                    text_matches(want, &text) == (*op == "=")
                }
                (Value::String(s), Literal::Number(want)) if matches!(*op, "=" | "!=") => {
                    (s.parse::<f64>().ok() == Some(*want)) == (*op == "=")
                }
                _ => false,
            }
        }
    }
}

impl FilterPattern {
    /// Parses a JSON filter pattern (`{ … }`).
    pub fn parse(pattern: &str) -> Result<FilterPattern, String> {
        let tokens = tokenize(pattern)?;
        if tokens.first() != Some(&Token::LBrace) || tokens.last() != Some(&Token::RBrace) {
            return Err(format!("not a JSON pattern (no braces): {pattern}"));
        }
        let mut p = Parser {
            tokens: tokens[1..tokens.len() - 1].to_vec(),
            at: 0,
        };
        let expr = p.or()?;
        if p.at != p.tokens.len() {
            return Err(format!(
                "trailing tokens in {pattern}: {:?}",
                &p.tokens[p.at..]
            ));
        }
        Ok(FilterPattern { expr })
    }

    /// Whether the log event `message` matches: only a message that is one JSON object can.
    pub fn matches(&self, message: &str) -> bool {
        match serde_json::from_str::<Value>(message.trim()) {
            Ok(v @ Value::Object(_)) => eval(&self.expr, &v),
            _ => false,
        }
    }
}

/// A metric filter's `MetricValue` for `message`: a number, or `$.field` read from the message
/// (a JSON number; CloudWatch publishes nothing for anything else).
pub fn metric_value(spec: &str, message: &str) -> Option<f64> {
    if let Ok(n) = spec.parse::<f64>() {
        return Some(n);
    }
    let tokens = tokenize(spec).ok()?;
    let [Token::Selector(path)] = tokens.as_slice() else {
        return None;
    };
    let v: Value = serde_json::from_str(message.trim()).ok()?;
    select(&v, path)?.as_f64()
}

/// A dimension's value (`$.field`) in `message`, as text.
pub fn dimension_value(spec: &str, message: &str) -> Option<String> {
    let tokens = tokenize(spec).ok()?;
    let [Token::Selector(path)] = tokens.as_slice() else {
        return None;
    };
    let v: Value = serde_json::from_str(message.trim()).ok()?;
    match select(&v, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
