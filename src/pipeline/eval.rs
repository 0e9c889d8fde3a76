//! Evaluating `if` conditions against an event, with Logstash's rules: a missing field
//! is nil (nil == nil, nil != anything else, ordering comparisons with nil are false);
//! numbers compare numerically and strings lexicographically; `in` tests membership in
//! an array or a substring of a string; `=~` matches a regular expression anywhere in
//! the string form of the value; a bare value is true unless missing, nil or false.
//!
//! Regular expressions are compiled once per condition (`CompiledCondition`), so an
//! invalid one is a load-time error.

use regex::Regex;
use serde_json::Value;

use super::ast::{BoolOp, CompareOp, Condition, RValue};
use super::event::Event;

/// A condition whose regular expressions are compiled.
#[derive(Debug)]
pub enum CompiledCondition {
    Bool(Box<CompiledCondition>, BoolOp, Box<CompiledCondition>),
    Not(Box<CompiledCondition>),
    Compare(RValue, CompareOp, RValue),
    Match(RValue, Regex, bool),
    In(RValue, RValue, bool),
    Truthy(RValue),
}

pub fn compile(c: &Condition) -> Result<CompiledCondition, regex::Error> {
    Ok(match c {
        Condition::Bool(l, op, r) => {
            CompiledCondition::Bool(Box::new(compile(l)?), *op, Box::new(compile(r)?))
        }
        Condition::Not(c) => CompiledCondition::Not(Box::new(compile(c)?)),
        Condition::Compare(l, op, r) => CompiledCondition::Compare(l.clone(), *op, r.clone()),
        Condition::Match(l, re, pos) => CompiledCondition::Match(l.clone(), Regex::new(re)?, *pos),
        Condition::In(l, r, pos) => CompiledCondition::In(l.clone(), r.clone(), *pos),
        Condition::Truthy(v) => CompiledCondition::Truthy(v.clone()),
    })
}

fn resolve(v: &RValue, e: &Event) -> Option<Value> {
    match v {
        RValue::String(s) => Some(Value::String(s.clone())),
        RValue::Number(n) => serde_json::Number::from_f64(*n).map(Value::Number),
        RValue::Field(path) => e.get(path).cloned().filter(|v| !v.is_null()),
        RValue::Array(items) => Some(Value::Array(
            items.iter().filter_map(|i| resolve(i, e)).collect(),
        )),
        RValue::Regex(r) => Some(Value::String(r.clone())),
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn compare(l: &Option<Value>, op: CompareOp, r: &Option<Value>) -> bool {
    use std::cmp::Ordering;
    let ord = match (l, r) {
        (None, None) => Some(Ordering::Equal),
        (None, _) | (_, None) => None,
        (Some(Value::Number(a)), Some(Value::Number(b))) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Some(Value::String(a)), Some(Value::String(b))) => Some(a.cmp(b)),
        (Some(a), Some(b)) => {
            if a == b {
                Some(Ordering::Equal)
            } else {
                None
            }
        }
    };
    match op {
        CompareOp::Eq => ord == Some(Ordering::Equal),
        CompareOp::Ne => ord != Some(Ordering::Equal),
        CompareOp::Lt => ord == Some(Ordering::Less),
        CompareOp::Gt => ord == Some(Ordering::Greater),
        CompareOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        CompareOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
    }
}

impl CompiledCondition {
    pub fn eval(&self, e: &Event) -> bool {
        match self {
            CompiledCondition::Bool(l, op, r) => {
                let a = l.eval(e);
                match op {
                    BoolOp::And => a && r.eval(e),
                    BoolOp::Or => a || r.eval(e),
                    BoolOp::Xor => a ^ r.eval(e),
                    BoolOp::Nand => !(a && r.eval(e)),
                }
            }
            CompiledCondition::Not(c) => !c.eval(e),
            CompiledCondition::Compare(l, op, r) => compare(&resolve(l, e), *op, &resolve(r, e)),
            CompiledCondition::Match(l, re, positive) => {
                let hit = resolve(l, e).is_some_and(|v| re.is_match(&as_text(&v)));
                hit == *positive
            }
            CompiledCondition::In(needle, haystack, positive) => {
                let found = match (resolve(needle, e), resolve(haystack, e)) {
                    (Some(n), Some(Value::Array(items))) => {
                        items.iter().any(|i| i == &n || as_text(i) == as_text(&n))
                    }
                    (Some(n), Some(Value::String(s))) => s.contains(&as_text(&n)),
                    (Some(n), Some(Value::Object(o))) => o.contains_key(&as_text(&n)),
                    _ => false,
                };
                found == *positive
            }
            CompiledCondition::Truthy(v) => {
                !matches!(resolve(v, e), None | Some(Value::Bool(false)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::pipeline::ast::Statement;
    use crate::pipeline::parser::parse;

    fn cond(src: &str) -> CompiledCondition {
        let cfg = parse("t.conf", &format!("filter {{ if {src} {{ }} }}")).unwrap();
        let Statement::If(chain) = &cfg.sections[0].body[0] else {
            panic!()
        };
        compile(&chain.branches[0].0).unwrap()
    }

    fn ev(v: serde_json::Value) -> Event {
        Event::new(v.as_object().unwrap().clone(), 0)
    }

    #[test]
    fn conditions_follow_logstash_semantics() {
        let e = ev(
            json!({"tags": ["access", "nginx"], "status": 503, "message": "upstream timeout", "type": "web", "f": false}),
        );
        assert!(cond(r#""access" in [tags]"#).eval(&e));
        assert!(!cond(r#""error" in [tags]"#).eval(&e));
        assert!(cond(r#""error" not in [tags]"#).eval(&e));
        assert!(cond("[status] >= 500 and [status] < 600").eval(&e));
        assert!(cond(r#"[type] == "web" xor [type] == "db""#).eval(&e));
        assert!(cond("[message] =~ /time(out)?$/").eval(&e));
        assert!(cond("[message] !~ /^GET/").eval(&e));
        assert!(cond(r#"[type] in ["web", "api"]"#).eval(&e));
        assert!(cond(r#""stream" in [message]"#).eval(&e));
        assert!(cond("![missing]").eval(&e));
        assert!(!cond("[f]").eval(&e), "false is falsy");
        assert!(cond("[missing] == [also_missing]").eval(&e), "nil == nil");
        assert!(!cond("[missing] > 1").eval(&e));
        assert!(cond("!([status] < 500) nand [type] == \"db\"").eval(&e));
        assert!(
            cond("[status] != \"503\"").eval(&e),
            "a number is not a string"
        );
    }

    #[test]
    fn invalid_regexes_fail_at_load_time() {
        let cfg = parse("t.conf", "filter { if [a] =~ /(unclosed/ { } }").unwrap();
        let Statement::If(chain) = &cfg.sections[0].body[0] else {
            panic!()
        };
        assert!(compile(&chain.branches[0].0).is_err());
    }
}
