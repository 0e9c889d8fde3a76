//! `dissect`: splits a field by the literal delimiters between `%{…}` keys, without
//! regular expressions, as Logstash's dissect filter does. Keys: `%{field}` (also
//! `%{[a][b]}`), `%{}` and `%{?name}` (skipped), `%{+field}` and `%{+field/N}`
//! (appended to `field` after the delimiter that precedes them, or
//! `append_separator`, ordered by N), `%{*name}` / `%{&name}`
//! (the value of `*name` becomes the field name for the value of `&name`), and a `->`
//! suffix (`%{ts->}`) that skips repeats of the following delimiter (padding).
//! `convert_datatype` turns fields into `int` or `float` afterwards; a line that does
//! not fit the mapping is tagged `tag_on_failure` (default `_dissectfailure`).

use serde_json::{Number, Value};

use super::{Filter, Outcome};
use crate::pipeline::event::{parse_field_ref, Event};
use crate::pipeline::settings::{PluginError, Settings};

#[derive(Debug, Clone, PartialEq)]
enum KeyKind {
    Normal,
    Skip,
    Append(u32),
    IndirectName,
    IndirectValue,
}

#[derive(Debug, Clone)]
struct Key {
    name: String,
    kind: KeyKind,
    pad: bool,
    /// The delimiter after this key; empty for the last key (which takes the rest).
    delimiter: String,
}

struct Dissection {
    source: Vec<String>,
    prefix: String,
    keys: Vec<Key>,
}

pub struct Dissect {
    dissections: Vec<Dissection>,
    append_separator: Option<String>,
    convert: Vec<(Vec<String>, bool)>,
    tag_on_failure: Vec<String>,
}

fn parse_mapping(pattern: &str) -> Result<(String, Vec<Key>), String> {
    let mut rest = pattern;
    let prefix_end = rest.find("%{").unwrap_or(rest.len());
    let prefix = rest[..prefix_end].to_string();
    rest = &rest[prefix_end..];
    let mut keys = Vec::new();
    while let Some(stripped) = rest.strip_prefix("%{") {
        let close = stripped
            .find('}')
            .ok_or_else(|| format!("unterminated %{{ in dissect mapping {pattern:?}"))?;
        let mut spec = &stripped[..close];
        rest = &stripped[close + 1..];
        let pad = spec.ends_with("->");
        if pad {
            spec = &spec[..spec.len() - 2];
        }
        let (kind, name) = match spec.chars().next() {
            None => (KeyKind::Skip, ""),
            Some('?') => (KeyKind::Skip, &spec[1..]),
            Some('*') => (KeyKind::IndirectName, &spec[1..]),
            Some('&') => (KeyKind::IndirectValue, &spec[1..]),
            Some('+') => match spec[1..].rsplit_once('/') {
                Some((n, ord)) if ord.parse::<u32>().is_ok() => {
                    (KeyKind::Append(ord.parse().unwrap_or(0)), n)
                }
                _ => (KeyKind::Append(u32::MAX), &spec[1..]),
            },
            Some(_) => (KeyKind::Normal, spec),
        };
        let next = rest.find("%{").unwrap_or(rest.len());
        let delimiter = rest[..next].to_string();
        rest = &rest[next..];
        if delimiter.is_empty() && !rest.is_empty() {
            return Err(format!(
                "dissect mapping {pattern:?}: two keys with no delimiter between them"
            ));
        }
        keys.push(Key {
            name: name.to_string(),
            kind,
            pad,
            delimiter,
        });
    }
    Ok((prefix, keys))
}

impl Dissect {
    pub fn build(s: &mut Settings) -> Result<Dissect, PluginError> {
        let mut dissections = Vec::new();
        for (field, pattern) in s.hash("mapping")? {
            let (prefix, keys) = parse_mapping(&pattern).map_err(|e| s.error(e))?;
            dissections.push(Dissection {
                source: parse_field_ref(&field),
                prefix,
                keys,
            });
        }
        let mut convert = Vec::new();
        for (field, ty) in s.hash("convert_datatype")? {
            let is_int = match ty.as_str() {
                "int" => true,
                "float" => false,
                other => {
                    return Err(s.error(format!(
                        "convert_datatype for \"{field}\" must be int or float, not \"{other}\""
                    )))
                }
            };
            convert.push((parse_field_ref(&field), is_int));
        }
        let tag_on_failure = if s.is_set("tag_on_failure") {
            s.list("tag_on_failure")?
        } else {
            vec!["_dissectfailure".into()]
        };
        Ok(Dissect {
            dissections,
            append_separator: s.string("append_separator")?,
            convert,
            tag_on_failure,
        })
    }

    /// Splits `text`; `None` when a delimiter is missing or the prefix differs.
    fn split<'t>(&self, d: &Dissection, text: &'t str) -> Option<Vec<&'t str>> {
        let mut pos = text
            .strip_prefix(d.prefix.as_str())
            .map(|_| d.prefix.len())?;
        let mut values = Vec::with_capacity(d.keys.len());
        for key in &d.keys {
            if key.delimiter.is_empty() {
                values.push(&text[pos..]);
                pos = text.len();
                continue;
            }
            let found = pos + text[pos..].find(key.delimiter.as_str())?;
            values.push(&text[pos..found]);
            pos = found + key.delimiter.len();
            if key.pad {
                while text[pos..].starts_with(key.delimiter.as_str()) {
                    pos += key.delimiter.len();
                }
            }
        }
        Some(values)
    }

    /// What goes before an appended value: `append_separator` when set, else the
    /// delimiter in front of the key in the mapping (a space when there is none), as
    /// the dissect documentation describes.
    fn separator_before<'d>(&'d self, d: &'d Dissection, key_index: usize) -> &'d str {
        if let Some(sep) = &self.append_separator {
            return sep;
        }
        let before = match key_index {
            0 => d.prefix.as_str(),
            i => d.keys[i - 1].delimiter.as_str(),
        };
        if before.is_empty() {
            " "
        } else {
            before
        }
    }

    fn store(&self, d: &Dissection, values: &[&str], e: &mut Event) {
        // (name, order, position, value); joined with the delimiter before each value.
        let mut appends: Vec<(&str, u32, usize, &str)> = Vec::new();
        let mut indirect_names: Vec<(&str, &str)> = Vec::new();
        for (i, (key, value)) in d.keys.iter().zip(values).enumerate() {
            match &key.kind {
                KeyKind::Normal => {
                    // A normal key that is also appended to starts the appended value.
                    if d.keys
                        .iter()
                        .any(|k| k.name == key.name && matches!(k.kind, KeyKind::Append(_)))
                    {
                        appends.push((&key.name, 0, i, value));
                    } else {
                        e.set(
                            &parse_field_ref(&key.name),
                            Value::String(value.to_string()),
                        );
                    }
                }
                KeyKind::Skip => {
                    if !key.name.is_empty() {
                        indirect_names.push((&key.name, value));
                    }
                }
                KeyKind::Append(ord) => appends.push((&key.name, *ord, i, value)),
                KeyKind::IndirectName => indirect_names.push((&key.name, value)),
                KeyKind::IndirectValue => {
                    if let Some((_, field)) = indirect_names.iter().find(|(n, _)| *n == key.name) {
                        if !field.is_empty() {
                            e.set(&parse_field_ref(field), Value::String(value.to_string()));
                        }
                    }
                }
            }
        }
        appends.sort_by_key(|(name, ord, idx, _)| (*name, *ord, *idx));
        let mut i = 0;
        while i < appends.len() {
            let name = appends[i].0;
            let mut joined = String::new();
            let mut first = true;
            while i < appends.len() && appends[i].0 == name {
                if !first {
                    joined.push_str(self.separator_before(d, appends[i].2));
                }
                first = false;
                joined.push_str(appends[i].3);
                i += 1;
            }
            e.set(&parse_field_ref(name), Value::String(joined));
        }
    }
}

impl Filter for Dissect {
    fn apply(&self, mut e: Event) -> Outcome {
        let mut failed = false;
        for d in &self.dissections {
            let text = match e.get(&d.source) {
                Some(Value::String(s)) => s.clone(),
                _ => {
                    failed = true;
                    continue;
                }
            };
            match self.split(d, &text) {
                Some(values) => self.store(d, &values, &mut e),
                None => failed = true,
            }
        }
        if failed {
            for t in &self.tag_on_failure {
                e.add_tag(t);
            }
            return Outcome::Failed(e);
        }
        for (path, is_int) in &self.convert {
            let Some(Value::String(s)) = e.get(path) else {
                continue;
            };
            let converted = if *is_int {
                s.trim()
                    .parse::<i64>()
                    .ok()
                    .map(|n| Value::Number(n.into()))
            } else {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            };
            if let Some(v) = converted {
                e.set(path, v);
            }
        }
        Outcome::Done(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_parses_prefix_kinds_and_delimiters() {
        let (prefix, keys) = parse_mapping("[%{ts->}] %{+ts/2} %{?skip}=%{&skip}").unwrap();
        assert_eq!(prefix, "[");
        assert_eq!(keys[0].delimiter, "] ");
        assert!(keys[0].pad);
        assert_eq!(keys[1].kind, KeyKind::Append(2));
        assert_eq!(keys[2].kind, KeyKind::Skip);
        assert_eq!(keys[3].kind, KeyKind::IndirectValue);
        assert_eq!(keys[3].delimiter, "");
        assert!(parse_mapping("%{a}%{b}").is_err());
        assert!(parse_mapping("%{a").is_err());
    }
}
