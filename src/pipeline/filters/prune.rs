//! `prune`: removes top-level fields by regular expressions on their names
//! (`whitelist_names` keeps only matching names; `blacklist_names` removes matching
//! names, by default names that look like an unresolved `%{field}`) or on their values
//! (`whitelist_values` / `blacklist_values`: field → regex; for arrays, only the
//! offending items go, or the field when all of them do). With `interpolate => true`
//! names and patterns are sprintf'd against each event first. As in Logstash, only
//! top-level fields are looked at; `@timestamp` and `@metadata` are never removed.

use regex::Regex;
use serde_json::Value;

use super::{Filter, Outcome};
use crate::pipeline::event::Event;
use crate::pipeline::settings::{PluginError, Settings};
use crate::pipeline::sprintf::sprintf;

pub struct Prune {
    whitelist_names: Vec<String>,
    blacklist_names: Vec<String>,
    whitelist_values: Vec<(String, String)>,
    blacklist_values: Vec<(String, String)>,
    interpolate: bool,
    /// The patterns compiled once, when `interpolate` is off.
    compiled: Option<Compiled>,
}

struct Compiled {
    whitelist_names: Vec<Regex>,
    blacklist_names: Vec<Regex>,
    whitelist_values: Vec<(String, Regex)>,
    blacklist_values: Vec<(String, Regex)>,
}

fn compile_all(
    w: &[String],
    b: &[String],
    wv: &[(String, String)],
    bv: &[(String, String)],
) -> Result<Compiled, String> {
    let one = |p: &str| Regex::new(p).map_err(|e| format!("invalid pattern \"{p}\": {e}"));
    Ok(Compiled {
        whitelist_names: w.iter().map(|p| one(p)).collect::<Result<_, _>>()?,
        blacklist_names: b.iter().map(|p| one(p)).collect::<Result<_, _>>()?,
        whitelist_values: wv
            .iter()
            .map(|(k, p)| Ok((k.clone(), one(p)?)))
            .collect::<Result<_, String>>()?,
        blacklist_values: bv
            .iter()
            .map(|(k, p)| Ok((k.clone(), one(p)?)))
            .collect::<Result<_, String>>()?,
    })
}

impl Prune {
    pub fn build(s: &mut Settings) -> Result<Prune, PluginError> {
        let whitelist_names = s.list("whitelist_names")?;
        let blacklist_names = if s.is_set("blacklist_names") {
            s.list("blacklist_names")?
        } else {
            vec![r"%\{[^}]+\}".to_string()]
        };
        let whitelist_values = s.hash("whitelist_values")?;
        let blacklist_values = s.hash("blacklist_values")?;
        let interpolate = s.bool("interpolate")?.unwrap_or(false);
        // Compiled now even with `interpolate`, so that a bad pattern is a load error
        // whenever it has no references.
        let compiled = compile_all(
            &whitelist_names,
            &blacklist_names,
            &whitelist_values,
            &blacklist_values,
        );
        let compiled = match (compiled, interpolate) {
            (Ok(c), false) => Some(c),
            (Err(e), false) => return Err(s.error(e)),
            (_, true) => None,
        };
        Ok(Prune {
            whitelist_names,
            blacklist_names,
            whitelist_values,
            blacklist_values,
            interpolate,
            compiled,
        })
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What to remove: whole fields, or some items of array fields.
enum Removal {
    Field(String),
    Items(String, Vec<Value>),
}

fn by_value(event: &Event, rules: &[(String, Regex)], keep_matching: bool, out: &mut Vec<Removal>) {
    for (key, re) in rules {
        match event.fields().get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                let bad: Vec<Value> = items
                    .iter()
                    .filter(|x| re.is_match(&text(x)) != keep_matching)
                    .cloned()
                    .collect();
                if bad.len() == items.len() {
                    out.push(Removal::Field(key.clone()));
                } else if !bad.is_empty() {
                    out.push(Removal::Items(key.clone(), bad));
                }
            }
            Some(v) => {
                if re.is_match(&text(v)) != keep_matching {
                    out.push(Removal::Field(key.clone()));
                }
            }
        }
    }
}

impl Filter for Prune {
    fn apply(&self, mut event: Event) -> Outcome {
        let interpolated;
        let c = match &self.compiled {
            Some(c) => c,
            None => {
                let f = |v: &[String]| v.iter().map(|p| sprintf(p, &event)).collect::<Vec<_>>();
                let g = |v: &[(String, String)]| {
                    v.iter()
                        .map(|(k, p)| (sprintf(k, &event), sprintf(p, &event)))
                        .collect::<Vec<_>>()
                };
                match compile_all(
                    &f(&self.whitelist_names),
                    &f(&self.blacklist_names),
                    &g(&self.whitelist_values),
                    &g(&self.blacklist_values),
                ) {
                    Ok(c) => {
                        interpolated = c;
                        &interpolated
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "prune: interpolated pattern is invalid; event left as is");
                        return Outcome::Done(event);
                    }
                }
            }
        };
        debug_assert!(self.interpolate || self.compiled.is_some());
        let mut removals = Vec::new();
        for name in event.fields().keys() {
            let keep =
                c.whitelist_names.is_empty() || c.whitelist_names.iter().any(|r| r.is_match(name));
            let banned = c.blacklist_names.iter().any(|r| r.is_match(name));
            if !keep || banned {
                removals.push(Removal::Field(name.clone()));
            }
        }
        by_value(&event, &c.whitelist_values, true, &mut removals);
        by_value(&event, &c.blacklist_values, false, &mut removals);
        for r in removals {
            match r {
                Removal::Field(name) => {
                    if name != "@timestamp" && name != "@metadata" {
                        event.remove(&[name]);
                    }
                }
                Removal::Items(name, bad) => {
                    if let Some(Value::Array(items)) = event.fields().get(&name).cloned() {
                        let kept: Vec<Value> =
                            items.into_iter().filter(|x| !bad.contains(x)).collect();
                        event.set(&[name], Value::Array(kept));
                    }
                }
            }
        }
        Outcome::Done(event)
    }
}
