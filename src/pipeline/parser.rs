//! A parser for Logstash's configuration language (the grammar of `lscl_grammar.treetop`
//! in the Logstash repository): `input`/`filter`/`output` sections, plugins with
//! `name => value` settings (strings, numbers, barewords, arrays, hashes, nested codec
//! plugins), comments, and `if`/`else if`/`else` with `and or xor nand !`, comparisons,
//! `=~`/`!~` against regular expressions, `in`/`not in` and field references.
//!
//! Errors name the file, line and column, show the line with a caret under the spot,
//! and say in words what was expected there. Hand-written: the grammar is small, and
//! owning the cursor is what makes those messages possible.

use std::fmt;

use super::ast::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub source_line: String,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        writeln!(f, "    {}", self.source_line)?;
        write!(f, "    {}^", " ".repeat(self.column.saturating_sub(1)))
    }
}

impl std::error::Error for ParseError {}

struct Cursor<'a> {
    file: &'a str,
    src: &'a str,
    pos: usize,
}

type PResult<T> = Result<T, ParseError>;

impl<'a> Cursor<'a> {
    fn position(&self, at: usize) -> Pos {
        let before = &self.src[..at];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        Pos { line, column }
    }

    fn error_at(&self, at: usize, message: String) -> ParseError {
        let p = self.position(at);
        ParseError {
            file: self.file.to_string(),
            line: p.line,
            column: p.column,
            source_line: self.src.lines().nth(p.line - 1).unwrap_or("").to_string(),
            message,
        }
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.pos, message.into())
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Skips white space and `#` comments.
    fn skip(&mut self) {
        loop {
            let r = self.rest();
            let trimmed = r.trim_start();
            self.pos += r.len() - trimmed.len();
            if self.rest().starts_with('#') {
                self.pos += self.rest().find('\n').unwrap_or(self.rest().len());
            } else {
                return;
            }
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str, what: &str) -> PResult<()> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(format!("expected {what}, found {}", self.describe_here())))
        }
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "the end of the file".into(),
            Some(c) => {
                let word: String = self
                    .rest()
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .take(20)
                    .collect();
                if word.is_empty() {
                    format!("{c:?}")
                } else if word.starts_with(['"', '\'']) {
                    word
                } else {
                    format!("\"{word}\"")
                }
            }
        }
    }

    /// A bareword: letters, digits, `_`, `-` and `.` (plugin names, setting names, values).
    fn bareword(&mut self) -> Option<String> {
        self.skip();
        let len: usize = self
            .rest()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
            .map(char::len_utf8)
            .sum();
        if len == 0
            || self
                .rest()
                .starts_with(|c: char| c.is_ascii_digit() || c == '-')
                && self.rest()[..len].parse::<f64>().is_ok()
        {
            return None;
        }
        let w = self.rest()[..len].to_string();
        self.pos += len;
        Some(w)
    }

    fn keyword(&mut self, kw: &str) -> bool {
        self.skip();
        let r = self.rest();
        if r.starts_with(kw)
            && !r[kw.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> PResult<Option<String>> {
        self.skip();
        let Some(q) = self.peek().filter(|c| *c == '"' || *c == '\'') else {
            return Ok(None);
        };
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error_at(
                    start,
                    format!("string starting here is never closed with {q}"),
                ));
            };
            self.pos += c.len_utf8();
            match c {
                '\\' => {
                    if let Some(n) = self.peek() {
                        self.pos += n.len_utf8();
                        // Logstash keeps escapes as written unless config.support_escapes.
                        if n != q {
                            out.push('\\');
                        }
                        out.push(n);
                    }
                }
                c if c == q => return Ok(Some(out)),
                c => out.push(c),
            }
        }
    }

    fn number(&mut self) -> Option<f64> {
        self.skip();
        let len: usize = self
            .rest()
            .char_indices()
            .take_while(|(i, c)| c.is_ascii_digit() || *c == '.' || (*i == 0 && *c == '-'))
            .map(|(_, c)| c.len_utf8())
            .sum();
        let n = self.rest()[..len].parse::<f64>().ok()?;
        if self.rest()[len..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        self.pos += len;
        Some(n)
    }

    fn name(&mut self, what: &str) -> PResult<String> {
        if let Some(s) = self.string()? {
            return Ok(s);
        }
        self.bareword()
            .ok_or_else(|| self.error(format!("expected {what}, found {}", self.describe_here())))
    }

    fn value(&mut self) -> PResult<Value> {
        self.skip();
        if let Some(s) = self.string()? {
            return Ok(Value::String(s));
        }
        if let Some(n) = self.number() {
            return Ok(Value::Number(n));
        }
        if self.eat("[") {
            let mut items = Vec::new();
            if !self.eat("]") {
                loop {
                    items.push(self.value()?);
                    if self.eat("]") {
                        break;
                    }
                    self.expect(",", "\",\" or \"]\" in the array")?;
                }
            }
            return Ok(Value::Array(items));
        }
        if self.eat("{") {
            let mut entries = Vec::new();
            while !self.eat("}") {
                if self.peek().is_none() {
                    return Err(
                        self.error("expected \"}\" to close the hash, found the end of the file")
                    );
                }
                let k = self.name("a hash key")?;
                self.expect("=>", &format!("\"=>\" after hash key \"{k}\""))?;
                entries.push((k, self.value()?));
                self.eat(",");
            }
            return Ok(Value::Hash(entries));
        }
        let start = self.pos;
        match self.bareword() {
            Some(w) => {
                let save = self.pos;
                if self.eat("{") {
                    self.pos = save;
                    let plugin = self.plugin_body(w, start)?;
                    return Ok(Value::Plugin(plugin));
                }
                Ok(Value::Bareword(w))
            }
            None => Err(self.error(format!(
                "expected a value (string, number, bareword, array or hash), found {}",
                self.describe_here()
            ))),
        }
    }

    fn plugin_body(&mut self, name: String, start: usize) -> PResult<Plugin> {
        self.expect("{", &format!("\"{{\" after plugin name \"{name}\""))?;
        let mut settings = Vec::new();
        loop {
            self.skip();
            if self.eat("}") {
                break;
            }
            if self.peek().is_none() {
                return Err(self.error_at(
                    start,
                    format!("plugin \"{name}\" starting here is never closed with \"}}\""),
                ));
            }
            let at = self.pos;
            let key = self.name("a setting name or \"}\"")?;
            self.expect("=>", &format!("\"=>\" after setting name \"{key}\""))?;
            let value = self.value()?;
            settings.push(Setting {
                name: key,
                value,
                pos: self.position(at),
            });
        }
        Ok(Plugin {
            name,
            settings,
            pos: self.position(start),
        })
    }

    fn statements(&mut self, closing: &str) -> PResult<Vec<Statement>> {
        let mut out = Vec::new();
        loop {
            self.skip();
            if self.eat("}") {
                return Ok(out);
            }
            if self.peek().is_none() {
                return Err(self.error(format!("expected a plugin, \"if\" or \"}}\" to close {closing}, found the end of the file")));
            }
            let at = self.pos;
            if self.keyword("if") {
                out.push(Statement::If(self.if_chain(at)?));
                continue;
            }
            let name = self.name("a plugin name, \"if\" or \"}\"")?;
            out.push(Statement::Plugin(self.plugin_body(name, at)?));
        }
    }

    fn if_chain(&mut self, at: usize) -> PResult<IfChain> {
        let mut branches = Vec::new();
        let cond = self.condition()?;
        self.expect("{", "\"{\" after the condition")?;
        branches.push((cond, self.statements("the if block")?));
        let mut otherwise = None;
        while self.keyword("else") {
            if self.keyword("if") {
                let cond = self.condition()?;
                self.expect("{", "\"{\" after the condition")?;
                branches.push((cond, self.statements("the else if block")?));
            } else {
                self.expect("{", "\"{\" or \"if\" after \"else\"")?;
                otherwise = Some(self.statements("the else block")?);
                break;
            }
        }
        Ok(IfChain {
            branches,
            otherwise,
            pos: self.position(at),
        })
    }

    fn condition(&mut self) -> PResult<Condition> {
        let mut left = self.expression()?;
        loop {
            let op = if self.keyword("and") {
                BoolOp::And
            } else if self.keyword("or") {
                BoolOp::Or
            } else if self.keyword("xor") {
                BoolOp::Xor
            } else if self.keyword("nand") {
                BoolOp::Nand
            } else {
                return Ok(left);
            };
            let right = self.expression()?;
            left = Condition::Bool(Box::new(left), op, Box::new(right));
        }
    }

    fn expression(&mut self) -> PResult<Condition> {
        self.skip();
        if self.eat("(") {
            let c = self.condition()?;
            self.expect(")", "\")\" to close the parenthesis")?;
            return Ok(c);
        }
        if self.rest().starts_with('!')
            && !self.rest().starts_with("!=")
            && !self.rest().starts_with("!~")
        {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.expression()?)));
        }
        let left = self.rvalue()?;
        self.skip();
        for (tok, op) in [
            ("==", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            ("<=", CompareOp::Le),
            (">=", CompareOp::Ge),
            ("<", CompareOp::Lt),
            (">", CompareOp::Gt),
        ] {
            if self.eat(tok) {
                return Ok(Condition::Compare(left, op, self.rvalue()?));
            }
        }
        for (tok, positive) in [("=~", true), ("!~", false)] {
            if self.eat(tok) {
                self.skip();
                return match self.rvalue()? {
                    RValue::Regex(r) => Ok(Condition::Match(left, r, positive)),
                    RValue::String(s) => Ok(Condition::Match(left, s, positive)),
                    _ => {
                        Err(self.error(format!("expected a /regular expression/ after \"{tok}\"")))
                    }
                };
            }
        }
        if self.keyword("not") {
            if !self.keyword("in") {
                return Err(self.error("expected \"in\" after \"not\""));
            }
            return Ok(Condition::In(left, self.rvalue()?, false));
        }
        if self.keyword("in") {
            return Ok(Condition::In(left, self.rvalue()?, true));
        }
        Ok(Condition::Truthy(left))
    }

    fn rvalue(&mut self) -> PResult<RValue> {
        self.skip();
        if let Some(s) = self.string()? {
            return Ok(RValue::String(s));
        }
        if self.rest().starts_with('/') {
            let start = self.pos;
            self.pos += 1;
            let mut out = String::new();
            loop {
                let Some(c) = self.peek() else {
                    return Err(self.error_at(
                        start,
                        "regular expression starting here is never closed with \"/\"".into(),
                    ));
                };
                self.pos += c.len_utf8();
                match c {
                    '\\' => {
                        if let Some(n) = self.peek() {
                            self.pos += n.len_utf8();
                            if n != '/' {
                                out.push('\\');
                            }
                            out.push(n);
                        }
                    }
                    '/' => return Ok(RValue::Regex(out)),
                    c => out.push(c),
                }
            }
        }
        if self.rest().starts_with('[') {
            // A field reference `[a][b]`, or an array literal `["a", "b"]`.
            let save = self.pos;
            let mut path = Vec::new();
            while self.rest().starts_with('[') {
                let inner_end = self.rest().find(']');
                match inner_end {
                    Some(end) if !self.rest()[1..end].contains(['"', '\'', ',', '[']) => {
                        path.push(self.rest()[1..end].trim().to_string());
                        self.pos += end + 1;
                    }
                    _ => break,
                }
            }
            if !path.is_empty() {
                return Ok(RValue::Field(path));
            }
            self.pos = save;
            self.pos += 1;
            let mut items = Vec::new();
            if !self.eat("]") {
                loop {
                    items.push(self.rvalue()?);
                    if self.eat("]") {
                        break;
                    }
                    self.expect(",", "\",\" or \"]\" in the array")?;
                }
            }
            return Ok(RValue::Array(items));
        }
        if let Some(n) = self.number() {
            return Ok(RValue::Number(n));
        }
        Err(self.error(format!("expected a field reference like [field], a string, a number, a /regex/ or an array, found {}", self.describe_here())))
    }
}

/// Parses one configuration file.
pub fn parse(file: &str, src: &str) -> Result<Config, ParseError> {
    let mut c = Cursor { file, src, pos: 0 };
    let mut sections = Vec::new();
    loop {
        c.skip();
        if c.peek().is_none() {
            return Ok(Config { sections });
        }
        let at = c.pos;
        let kind = if c.keyword("input") {
            SectionKind::Input
        } else if c.keyword("filter") {
            SectionKind::Filter
        } else if c.keyword("output") {
            SectionKind::Output
        } else {
            return Err(c.error(format!(
                "expected \"input\", \"filter\" or \"output\", found {}",
                c.describe_here()
            )));
        };
        let name = match kind {
            SectionKind::Input => "input",
            SectionKind::Filter => "filter",
            SectionKind::Output => "output",
        };
        c.expect("{", &format!("\"{{\" after \"{name}\""))?;
        let body = c.statements(&format!("the {name} section"))?;
        sections.push(Section {
            kind,
            body,
            pos: c.position(at),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX: &str = r#"
# The classic EFLFK pipeline.
input {
  kafka {
    bootstrap_servers => "127.0.0.1:9092"
    topics => ["nginx"]
    codec => json { charset => "UTF-8" }
    consumer_threads => 2
    decorate_events => true
  }
}
filter {
  if "access" in [tags] {
    grok { match => { "message" => "%{COMBINEDAPACHELOG}" } }
    date { match => [ "timestamp", "dd/MMM/yyyy:HH:mm:ss Z" ] }
  } else if [fields][type] == 'error' and ![skip] {
    mutate { add_tag => "nginx_error" remove_field => ["agent", "ecs"] }
  } else {
    drop {}
  }
  if [status] >= 500 or [message] =~ /timeout\/slow/ { mutate { add_tag => ["bad"] } }
}
output {
  if "access" in [tags] {
    elasticsearch { hosts => ["http://es:9200"] index => "nginx_access-%{+YYYY.MM.dd}" }
  }
  stdout { codec => rubydebug }
}
"#;

    #[test]
    fn parses_the_classic_nginx_pipeline() {
        let c = parse("nginx.conf", NGINX).unwrap();
        assert_eq!(c.sections.len(), 3);
        let Statement::Plugin(kafka) = &c.sections[0].body[0] else {
            panic!()
        };
        assert_eq!(kafka.name, "kafka");
        assert_eq!(
            kafka.settings[1].value,
            Value::Array(vec![Value::String("nginx".into())])
        );
        assert!(matches!(&kafka.settings[2].value, Value::Plugin(p) if p.name == "json"));
        assert_eq!(kafka.settings[3].value, Value::Number(2.0));
        assert_eq!(kafka.settings[4].value, Value::Bareword("true".into()));
        let Statement::If(chain) = &c.sections[1].body[0] else {
            panic!()
        };
        assert_eq!(chain.branches.len(), 2);
        assert!(chain.otherwise.is_some());
        assert!(
            matches!(&chain.branches[0].0, Condition::In(RValue::String(s), RValue::Field(f), true) if s == "access" && f == &vec!["tags".to_string()])
        );
        let Statement::If(second) = &c.sections[1].body[1] else {
            panic!()
        };
        assert!(
            matches!(&second.branches[0].0, Condition::Bool(_, BoolOp::Or, r) if matches!(&**r, Condition::Match(_, re, true) if re == "timeout/slow"))
        );
        assert_eq!(kafka.pos, Pos { line: 4, column: 3 });
    }

    #[test]
    fn every_prefix_of_a_pipeline_parses_or_fails_without_panicking() {
        for (cut, _) in NGINX.char_indices() {
            let _ = parse("cut.conf", &NGINX[..cut]);
        }
    }

    #[test]
    fn errors_point_at_the_spot_and_say_what_was_expected() {
        let e = parse("bad.conf", "filter {\n  mutate { add_tag \"x\" }\n}\n").unwrap_err();
        assert_eq!(
            (e.line, e.column),
            (2, 20),
            "at the string where \"=>\" should be"
        );
        assert!(
            e.message
                .contains("expected \"=>\" after setting name \"add_tag\""),
            "{e}"
        );
        let shown = e.to_string();
        assert!(shown.starts_with("bad.conf:2:20: "));
        let caret_line = shown.lines().last().unwrap();
        assert_eq!(caret_line, format!("    {}^", " ".repeat(19)), "{shown}");
        assert_eq!(shown.lines().nth(1).unwrap().chars().nth(4 + 19), Some('"'));
        let e = parse("x.conf", "inptu { }").unwrap_err();
        assert!(e
            .message
            .contains("expected \"input\", \"filter\" or \"output\""));
        let e = parse("x.conf", "input { stdin {\n").unwrap_err();
        assert!(e.message.contains("never closed"), "{e}");
        let e = parse("x.conf", "filter { if [a] =~ \"x\" { } }")
            .map(|_| ())
            .map_err(|e| e.message);
        assert!(e.is_ok(), "a string works as a pattern too");
        let e = parse("x.conf", "output { if [a] == { } }").unwrap_err();
        assert!(e.message.contains("expected a field reference"), "{e}");
    }
}
