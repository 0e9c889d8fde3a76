//! The event as Logstash users know it: a JSON object with `@timestamp`, `@version`,
//! `tags`, `message`, nested fields addressed by field references (`[a][b]`, `[a][0]`,
//! or a bare top-level name), and `@metadata`, which filters can read and write but
//! outputs never see.
//!
//! Invariant: the event is always a JSON object; `@timestamp` is an ISO-8601 UTC string
//! with milliseconds once `Event::new` has run.

use serde_json::{Map, Value};

use super::time;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    fields: Map<String, Value>,
    /// Where the event was read from, when it came from a topic: what a
    /// deterministic document id is made of.
    origin: Option<Origin>,
}

/// A consumed event's place in the log: topic, partition, offset, and which event of
/// the record it is (a record of a line codec holds several).
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub topic: std::sync::Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub index: u32,
}

/// Parses a field reference: `[a][b]` → ["a", "b"]; `name` → ["name"].
pub fn parse_field_ref(s: &str) -> Vec<String> {
    let s = s.trim();
    if s.starts_with('[') && s.ends_with(']') {
        s[1..s.len() - 1].split("][").map(str::to_string).collect()
    } else {
        vec![s.to_string()]
    }
}

impl Event {
    /// Wraps a JSON object, adding `@timestamp` (now) and `@version` when missing.
    pub fn new(fields: Map<String, Value>, now_ms: i64) -> Event {
        let mut e = Event {
            fields,
            origin: None,
        };
        if !e.fields.contains_key("@timestamp") {
            e.fields.insert(
                "@timestamp".into(),
                Value::String(time::format_iso8601(now_ms)),
            );
        }
        e.fields
            .entry("@version")
            .or_insert_with(|| Value::String("1".into()));
        e
    }

    /// An event from one line of text (`plain` codec): the line is the `message`.
    pub fn from_message(line: &str, now_ms: i64) -> Event {
        let mut m = Map::new();
        m.insert("message".into(), Value::String(line.to_string()));
        Event::new(m, now_ms)
    }

    pub fn get(&self, path: &[String]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut cur = self.fields.get(first)?;
        for seg in rest {
            cur = match cur {
                Value::Object(o) => o.get(seg)?,
                Value::Array(a) => {
                    let i: i64 = seg.parse().ok()?;
                    let idx = if i < 0 { a.len() as i64 + i } else { i };
                    a.get(usize::try_from(idx).ok()?)?
                }
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Sets a field, creating intermediate objects (replacing non-objects on the way).
    pub fn set(&mut self, path: &[String], value: Value) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut cur = &mut self.fields;
        for seg in parents {
            // Look up before inserting: the common case (the parent exists) must not
            // allocate a key.
            if !cur.get(seg).is_some_and(Value::is_object) {
                cur.insert(seg.clone(), Value::Object(Map::new()));
            }
            cur = cur
                .get_mut(seg)
                .and_then(Value::as_object_mut)
                .expect("just made an object");
        }
        match cur.get_mut(last) {
            Some(slot) => *slot = value,
            None => {
                cur.insert(last.clone(), value);
            }
        }
    }

    pub fn remove(&mut self, path: &[String]) -> Option<Value> {
        let (last, parents) = path.split_last()?;
        let mut cur = &mut self.fields;
        for seg in parents {
            cur = cur.get_mut(seg)?.as_object_mut()?;
        }
        cur.remove(last)
    }

    pub fn tags(&self) -> Vec<String> {
        match self.fields.get("tags") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => vec![],
        }
    }

    pub fn add_tag(&mut self, tag: &str) {
        let mut tags = self.tags();
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
        self.fields.insert(
            "tags".into(),
            Value::Array(tags.into_iter().map(Value::String).collect()),
        );
    }

    pub fn remove_tag(&mut self, tag: &str) {
        let tags: Vec<Value> = self
            .tags()
            .into_iter()
            .filter(|t| t != tag)
            .map(Value::String)
            .collect();
        self.fields.insert("tags".into(), Value::Array(tags));
    }

    /// `@timestamp` in milliseconds since the epoch, if it parses.
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.fields
            .get("@timestamp")
            .and_then(Value::as_str)
            .and_then(time::parse_iso8601)
    }

    /// The event as outputs see it: without `@metadata`.
    pub fn to_output(&self) -> Value {
        let mut m = self.fields.clone();
        m.remove("@metadata");
        Value::Object(m)
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    pub fn origin(&self) -> Option<&Origin> {
        self.origin.as_ref()
    }

    pub fn set_origin(&mut self, origin: Origin) {
        self.origin = Some(origin);
    }

    /// Appends the event as outputs see it (without `@metadata`) as compact JSON,
    /// without copying its fields first.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        struct Visible<'a>(&'a Map<String, Value>);
        impl serde::Serialize for Visible<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                for (k, v) in self.0.iter().filter(|(k, _)| *k != "@metadata") {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
        // Writing a map of JSON values into a Vec cannot fail.
        let _ = serde_json::to_writer(out, &Visible(&self.fields));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ev(v: Value) -> Event {
        Event::new(v.as_object().unwrap().clone(), 0)
    }

    #[test]
    fn field_references_read_write_and_remove() {
        let mut e = ev(json!({"a": {"b": [10, 20, 30]}, "message": "m"}));
        assert_eq!(e.get(&parse_field_ref("[a][b][1]")), Some(&json!(20)));
        assert_eq!(e.get(&parse_field_ref("[a][b][-1]")), Some(&json!(30)));
        assert_eq!(e.get(&parse_field_ref("message")), Some(&json!("m")));
        assert_eq!(e.get(&parse_field_ref("[nope][x]")), None);
        e.set(&parse_field_ref("[x][y][z]"), json!(1));
        assert_eq!(e.get(&parse_field_ref("[x][y][z]")), Some(&json!(1)));
        assert_eq!(e.remove(&parse_field_ref("[x][y]")), Some(json!({"z": 1})));
        assert_eq!(e.get(&parse_field_ref("@version")), Some(&json!("1")));
        assert_eq!(
            e.get(&parse_field_ref("@timestamp")),
            Some(&json!("1970-01-01T00:00:00.000Z"))
        );
    }

    #[test]
    fn tags_and_metadata() {
        let mut e = ev(json!({"tags": "one", "@metadata": {"kafka": {"topic": "t"}}}));
        e.add_tag("two");
        e.add_tag("two");
        assert_eq!(e.tags(), vec!["one", "two"]);
        e.remove_tag("one");
        assert_eq!(e.tags(), vec!["two"]);
        assert_eq!(
            e.get(&parse_field_ref("[@metadata][kafka][topic]")),
            Some(&json!("t"))
        );
        assert!(e.to_output().get("@metadata").is_none());
    }
}
