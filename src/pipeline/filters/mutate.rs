//! `mutate`, applying its operations in Logstash's fixed order whatever order the
//! configuration lists them in: coerce, rename, update, replace, convert, gsub,
//! uppercase, capitalize, lowercase, strip, split, join, merge, copy.

use regex::Regex;
use serde_json::{Number, Value};

use super::{Filter, Outcome};
use crate::pipeline::event::{parse_field_ref, Event};
use crate::pipeline::settings::{PluginError, Settings};
use crate::pipeline::sprintf::sprintf;

type Path = Vec<String>;

pub struct Mutate {
    coerce: Vec<(Path, String)>,
    rename: Vec<(String, String)>,
    update: Vec<(Path, String)>,
    replace: Vec<(Path, String)>,
    convert: Vec<(Path, String)>,
    gsub: Vec<(Path, Regex, String)>,
    uppercase: Vec<Path>,
    capitalize: Vec<Path>,
    lowercase: Vec<Path>,
    strip: Vec<Path>,
    split: Vec<(Path, String)>,
    join: Vec<(Path, String)>,
    merge: Vec<(Path, Path)>,
    copy: Vec<(Path, String)>,
}

fn paths(v: Vec<String>) -> Vec<Path> {
    v.iter().map(|f| parse_field_ref(f)).collect()
}

fn keyed(v: Vec<(String, String)>) -> Vec<(Path, String)> {
    v.into_iter()
        .map(|(k, v)| (parse_field_ref(&k), v))
        .collect()
}

impl Mutate {
    pub fn build(s: &mut Settings) -> Result<Mutate, PluginError> {
        let convert = keyed(s.hash("convert")?);
        for (_, t) in &convert {
            if !matches!(
                t.as_str(),
                "integer" | "integer_eu" | "float" | "float_eu" | "string" | "boolean"
            ) {
                return Err(s.error(format!("convert type \"{t}\" is not one of integer, integer_eu, float, float_eu, string, boolean")));
            }
        }
        let raw_gsub = s.list("gsub")?;
        if raw_gsub.len() % 3 != 0 {
            return Err(s.error("gsub takes triples of field, pattern, replacement".into()));
        }
        let mut gsub = Vec::new();
        for t in raw_gsub.chunks(3) {
            let re = Regex::new(&t[1])
                .map_err(|e| s.error(format!("invalid gsub pattern \"{}\": {e}", t[1])))?;
            // Ruby's \1 back-references in the replacement become the regex crate's ${1}.
            let rep = Regex::new(r"\\(\d)")
                .expect("static regex")
                .replace_all(&t[2], "$${$1}")
                .into_owned();
            gsub.push((parse_field_ref(&t[0]), re, rep));
        }
        Ok(Mutate {
            coerce: keyed(s.hash("coerce")?),
            rename: s.hash("rename")?,
            update: keyed(s.hash("update")?),
            replace: keyed(s.hash("replace")?),
            convert,
            gsub,
            uppercase: paths(s.list("uppercase")?),
            capitalize: paths(s.list("capitalize")?),
            lowercase: paths(s.list("lowercase")?),
            strip: paths(s.list("strip")?),
            split: keyed(s.hash("split")?),
            join: keyed(s.hash("join")?),
            merge: s
                .hash("merge")?
                .into_iter()
                .map(|(d, src)| (parse_field_ref(&d), parse_field_ref(&src)))
                .collect(),
            copy: keyed(s.hash("copy")?),
        })
    }
}

/// Applies `f` to a string field, or to each string of an array field.
fn map_strings(e: &mut Event, path: &[String], f: impl Fn(&str) -> String) {
    let Some(v) = e.get(path).cloned() else {
        return;
    };
    let mapped = match v {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|x| {
                    if let Value::String(s) = x {
                        Value::String(f(&s))
                    } else {
                        x
                    }
                })
                .collect(),
        ),
        other => other,
    };
    e.set(path, mapped);
}

fn convert_one(v: &Value, to: &str) -> Value {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match to {
        "string" => Value::String(text),
        "integer" | "integer_eu" => {
            let cleaned = if to == "integer_eu" {
                text.replace('.', "").replace(',', ".")
            } else {
                text.replace(',', "")
            };
            cleaned
                .trim()
                .parse::<f64>()
                .map(|f| Value::Number(Number::from(f.trunc() as i64)))
                .unwrap_or(v.clone())
        }
        "float" | "float_eu" => {
            let cleaned = if to == "float_eu" {
                text.replace('.', "").replace(',', ".")
            } else {
                text.replace(',', "")
            };
            cleaned
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .unwrap_or(v.clone())
        }
        "boolean" => match text.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => Value::Bool(true),
            "false" | "f" | "no" | "n" | "0" | "0.0" => Value::Bool(false),
            _ => v.clone(),
        },
        _ => v.clone(),
    }
}

impl Filter for Mutate {
    fn apply(&self, mut e: Event) -> Outcome {
        for (p, default) in &self.coerce {
            if matches!(e.get(p), Some(Value::Null)) {
                let v = sprintf(default, &e);
                e.set(p, Value::String(v));
            }
        }
        for (from, to) in &self.rename {
            let from_p = parse_field_ref(&sprintf(from, &e));
            if let Some(v) = e.remove(&from_p) {
                let to_p = parse_field_ref(&sprintf(to, &e));
                e.set(&to_p, v);
            }
        }
        for (p, v) in &self.update {
            if e.get(p).is_some() {
                let v = sprintf(v, &e);
                e.set(p, Value::String(v));
            }
        }
        for (p, v) in &self.replace {
            let v = sprintf(v, &e);
            e.set(p, Value::String(v));
        }
        for (p, to) in &self.convert {
            if let Some(v) = e.get(p).cloned() {
                let converted = match v {
                    Value::Array(a) => Value::Array(a.iter().map(|x| convert_one(x, to)).collect()),
                    other => convert_one(&other, to),
                };
                e.set(p, converted);
            }
        }
        for (p, re, rep) in &self.gsub {
            map_strings(&mut e, p, |s| re.replace_all(s, rep.as_str()).into_owned());
        }
        for p in &self.uppercase {
            map_strings(&mut e, p, |s| s.to_uppercase());
        }
        for p in &self.capitalize {
            map_strings(&mut e, p, |s| {
                let mut c = s.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase(),
                    None => String::new(),
                }
            });
        }
        for p in &self.lowercase {
            map_strings(&mut e, p, |s| s.to_lowercase());
        }
        for p in &self.strip {
            map_strings(&mut e, p, |s| s.trim().to_string());
        }
        for (p, sep) in &self.split {
            if let Some(Value::String(s)) = e.get(p).cloned() {
                let parts = s
                    .split(sep.as_str())
                    .map(|x| Value::String(x.to_string()))
                    .collect();
                e.set(p, Value::Array(parts));
            }
        }
        for (p, sep) in &self.join {
            if let Some(Value::Array(a)) = e.get(p).cloned() {
                let joined = a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(sep);
                e.set(p, Value::String(joined));
            }
        }
        for (dest, src) in &self.merge {
            let Some(add) = e.get(src).cloned() else {
                continue;
            };
            let merged = match (e.get(dest).cloned(), add) {
                (None, a) => a,
                (Some(Value::Object(mut d)), Value::Object(a)) => {
                    d.extend(a);
                    Value::Object(d)
                }
                (Some(Value::Array(mut d)), Value::Array(a)) => {
                    d.extend(a);
                    Value::Array(d)
                }
                (Some(Value::Array(mut d)), a) => {
                    d.push(a);
                    Value::Array(d)
                }
                (Some(d), Value::Array(a)) => Value::Array(std::iter::once(d).chain(a).collect()),
                (Some(d), a) => Value::Array(vec![d, a]),
            };
            e.set(dest, merged);
        }
        for (src, dest) in &self.copy {
            if let Some(v) = e.get(src).cloned() {
                let dest_p = parse_field_ref(&sprintf(dest, &e));
                e.set(&dest_p, v);
            }
        }
        Outcome::Done(e)
    }
}
