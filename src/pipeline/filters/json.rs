//! `json`: parses a JSON string field (`source`) into the event root or `target`;
//! on invalid JSON tags the event `_jsonparsefailure` (`tag_on_failure`) unless
//! `skip_on_invalid_json`.

use serde_json::Value;

use super::{Filter, Outcome};
use crate::pipeline::event::{parse_field_ref, Event};
use crate::pipeline::settings::{PluginError, Settings};

pub struct Json {
    source: Vec<String>,
    target: Option<Vec<String>>,
    skip_on_invalid: bool,
    tag_on_failure: Vec<String>,
}

impl Json {
    pub fn build(s: &mut Settings) -> Result<Json, PluginError> {
        let source = s.string("source")?.unwrap_or_else(|| "message".into());
        let target = s.string("target")?;
        let skip_on_invalid = s.bool("skip_on_invalid_json")?.unwrap_or(false);
        let mut tag_on_failure = s.list("tag_on_failure")?;
        if tag_on_failure.is_empty() {
            tag_on_failure.push("_jsonparsefailure".into());
        }
        Ok(Json {
            source: parse_field_ref(&source),
            target: target.map(|t| parse_field_ref(&t)),
            skip_on_invalid,
            tag_on_failure,
        })
    }
}

impl Filter for Json {
    fn apply(&self, mut event: Event) -> Outcome {
        let Some(Value::String(text)) = event.get(&self.source).cloned() else {
            return Outcome::Done(event);
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(parsed) => {
                match (&self.target, parsed) {
                    (Some(t), v) => event.set(t, v),
                    (None, Value::Object(o)) => {
                        for (k, v) in o {
                            event.set(&[k], v);
                        }
                    }
                    (None, _) => {
                        for t in &self.tag_on_failure {
                            event.add_tag(t);
                        }
                        return Outcome::Failed(event);
                    }
                }
                Outcome::Done(event)
            }
            Err(_) if self.skip_on_invalid => Outcome::Done(event),
            Err(_) => {
                for t in &self.tag_on_failure {
                    event.add_tag(t);
                }
                Outcome::Failed(event)
            }
        }
    }
}
