//! `kv`: splits `source` (default `message`) into `key=value` pairs separated by
//! `field_split` characters (default space) with `value_split` characters (default
//! `=`), trimming `trim_value`/`trim_key` characters and quotes around values; stores
//! them at the root or under `target`, optionally with `prefix`, keeping only
//! `include_keys` / dropping `exclude_keys`. Repeated keys collect into arrays.

use serde_json::Value;

use super::{Filter, Outcome};
use crate::pipeline::event::{parse_field_ref, Event};
use crate::pipeline::settings::{PluginError, Settings};

pub struct Kv {
    source: Vec<String>,
    target: Option<Vec<String>>,
    field_split: String,
    value_split: String,
    trim_key: String,
    trim_value: String,
    prefix: String,
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Kv {
    pub fn build(s: &mut Settings) -> Result<Kv, PluginError> {
        Ok(Kv {
            source: parse_field_ref(&s.string("source")?.unwrap_or_else(|| "message".into())),
            target: s.string("target")?.map(|t| parse_field_ref(&t)),
            field_split: s.string("field_split")?.unwrap_or_else(|| " ".into()),
            value_split: s.string("value_split")?.unwrap_or_else(|| "=".into()),
            trim_key: s.string("trim_key")?.unwrap_or_default(),
            trim_value: s.string("trim_value")?.unwrap_or_default(),
            prefix: s.string("prefix")?.unwrap_or_default(),
            include: s.list("include_keys")?,
            exclude: s.list("exclude_keys")?,
        })
    }
}

fn trim<'a>(s: &'a str, chars: &str) -> &'a str {
    s.trim_matches(|c| chars.contains(c))
}

impl Filter for Kv {
    fn apply(&self, mut event: Event) -> Outcome {
        let Some(Value::String(text)) = event.get(&self.source).cloned() else {
            return Outcome::Done(event);
        };
        let mut pairs: Vec<(String, Value)> = Vec::new();
        for part in text
            .split(|c| self.field_split.contains(c))
            .filter(|p| !p.is_empty())
        {
            let Some(at) = part.find(|c| self.value_split.contains(c)) else {
                continue;
            };
            let key = trim(&part[..at], &self.trim_key);
            let sep_len = part[at..].chars().next().map(char::len_utf8).unwrap_or(1);
            let raw = &part[at + sep_len..];
            let value = trim(trim(raw, "\"'"), &self.trim_value);
            if key.is_empty()
                || (!self.include.is_empty() && !self.include.iter().any(|k| k == key))
                || self.exclude.iter().any(|k| k == key)
            {
                continue;
            }
            let key = format!("{}{key}", self.prefix);
            match pairs.iter_mut().find(|(k, _)| *k == key) {
                Some((_, Value::Array(a))) => a.push(Value::String(value.to_string())),
                Some((_, existing)) => {
                    *existing =
                        Value::Array(vec![existing.clone(), Value::String(value.to_string())])
                }
                None => pairs.push((key, Value::String(value.to_string()))),
            }
        }
        for (k, v) in pairs {
            let mut path = self.target.clone().unwrap_or_default();
            path.push(k);
            event.set(&path, v);
        }
        Outcome::Done(event)
    }
}
