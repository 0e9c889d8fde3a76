//! `truncate`: cuts string fields (`fields`, default every top-level string field) to
//! at most `length_bytes` bytes, never splitting a UTF-8 character.

use serde_json::Value;

use super::{Filter, Outcome};
use crate::pipeline::event::{parse_field_ref, Event};
use crate::pipeline::settings::{PluginError, Settings};

pub struct Truncate {
    fields: Vec<Vec<String>>,
    length: usize,
}

impl Truncate {
    pub fn build(s: &mut Settings) -> Result<Truncate, PluginError> {
        let length = s
            .string("length_bytes")?
            .ok_or_else(|| s.error("\"length_bytes\" is required".into()))?
            .parse::<usize>()
            .map_err(|_| s.error("\"length_bytes\" must be a whole number".into()))?;
        Ok(Truncate {
            fields: s
                .list("fields")?
                .iter()
                .map(|f| parse_field_ref(f))
                .collect(),
            length,
        })
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl Filter for Truncate {
    fn apply(&self, mut event: Event) -> Outcome {
        let fields: Vec<Vec<String>> = if self.fields.is_empty() {
            event
                .fields()
                .iter()
                .filter(|(_, v)| v.is_string())
                .map(|(k, _)| vec![k.clone()])
                .collect()
        } else {
            self.fields.clone()
        };
        for f in fields {
            match event.get(&f).cloned() {
                Some(Value::String(s)) => event.set(&f, Value::String(cut(&s, self.length))),
                Some(Value::Array(a)) => {
                    let cut_all = a
                        .into_iter()
                        .map(|v| {
                            if let Value::String(s) = v {
                                Value::String(cut(&s, self.length))
                            } else {
                                v
                            }
                        })
                        .collect();
                    event.set(&f, Value::Array(cut_all));
                }
                _ => {}
            }
        }
        Outcome::Done(event)
    }
}
