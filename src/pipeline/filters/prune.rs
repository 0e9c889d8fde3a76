//! `prune`: keeps or drops top-level fields by regular expressions on their names
//! (`whitelist_names`, `blacklist_names`); unless `keep_empty => true` (Logstash's
//! default is false), fields with empty values go too. `@timestamp`, `@version` and
//! `@metadata` are never pruned.

use regex::Regex;
use serde_json::Value;

use super::{Filter, Outcome};
use crate::pipeline::event::Event;
use crate::pipeline::settings::{PluginError, Settings};

pub struct Prune {
    whitelist: Vec<Regex>,
    blacklist: Vec<Regex>,
    keep_empty: bool,
}

impl Prune {
    pub fn build(s: &mut Settings) -> Result<Prune, PluginError> {
        let compile = |s: &Settings, pats: Vec<String>| -> Result<Vec<Regex>, PluginError> {
            pats.iter()
                .map(|p| {
                    Regex::new(p).map_err(|e| s.error(format!("invalid pattern \"{p}\": {e}")))
                })
                .collect()
        };
        let w = s.list("whitelist_names")?;
        let b = s.list("blacklist_names")?;
        let keep_empty = s.bool("keep_empty")?.unwrap_or(false);
        Ok(Prune {
            whitelist: compile(s, w)?,
            blacklist: compile(s, b)?,
            keep_empty,
        })
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

impl Filter for Prune {
    fn apply(&self, mut event: Event) -> Outcome {
        let names: Vec<(String, bool)> = event
            .fields()
            .iter()
            .map(|(k, v)| (k.clone(), is_empty(v)))
            .collect();
        for (name, empty) in names {
            if matches!(name.as_str(), "@timestamp" | "@version" | "@metadata") {
                continue;
            }
            let drop = (!self.whitelist.is_empty()
                && !self.whitelist.iter().any(|r| r.is_match(&name)))
                || self.blacklist.iter().any(|r| r.is_match(&name))
                || (!self.keep_empty && empty);
            if drop {
                event.remove(&[name]);
            }
        }
        Outcome::Done(vec![event])
    }
}
