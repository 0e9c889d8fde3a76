//! Which topic (and record key) an ingested event goes to: a fixed name or a sprintf
//! pattern over event fields, as Filebeat's `topic: '%{[fields.log_topic]}'` and
//! Logstash's `%{[fields][service]}` write them, with a fallback topic when a field is
//! missing or the result is not a valid topic name.
//!
//! Field references: `%{name}`, `%{[a][b]}` (Logstash) and `%{[a.b]}` (Beats, where a
//! dot separates nested keys unless a key with the dot in its name exists).

use serde_json::Value;

use crate::broker::registry::{is_internal, validate_topic_name};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Vec<String>),
}

/// A parsed topic pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    parts: Vec<Part>,
}

fn parse_ref(inner: &str) -> Vec<String> {
    let inner = inner.trim();
    if inner.starts_with('[') {
        inner
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split("][")
            .map(str::to_string)
            .collect()
    } else {
        vec![inner.to_string()]
    }
}

impl TopicPattern {
    pub fn parse(pattern: &str) -> TopicPattern {
        let mut parts = Vec::new();
        let mut rest = pattern;
        while let Some(start) = rest.find("%{") {
            match rest[start + 2..].find('}') {
                Some(end) => {
                    if start > 0 {
                        parts.push(Part::Literal(rest[..start].to_string()));
                    }
                    parts.push(Part::Field(parse_ref(&rest[start + 2..start + 2 + end])));
                    rest = &rest[start + 2 + end + 1..];
                }
                None => break,
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        TopicPattern { parts }
    }

    /// The topic for `event`, or None when a field is missing, the name is invalid or
    /// it names an internal topic.
    pub fn render(&self, event: &Value) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Field(path) => out.push_str(&scalar(lookup(event, path)?)?),
            }
        }
        validate_topic_name(&out).ok()?;
        if is_internal(&out) {
            return None;
        }
        Some(out)
    }
}

/// Follows a field path; a segment that is not a key as written is tried as a
/// dot-separated path (Beats' `fields.log_topic`).
pub fn lookup<'a>(event: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = event;
    for seg in path {
        cur = match cur.get(seg) {
            Some(v) => v,
            None => seg.split('.').try_fold(cur, |v, k| v.get(k))?,
        };
    }
    Some(cur)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Routes events: the pattern, its fallback topic, and an optional key field.
#[derive(Debug, Clone)]
pub struct Router {
    pattern: TopicPattern,
    fallback: String,
    key_field: Option<Vec<String>>,
}

impl Router {
    pub fn new(pattern: &str, fallback: &str, key_field: Option<&str>) -> Router {
        Router {
            pattern: TopicPattern::parse(pattern),
            fallback: fallback.to_string(),
            key_field: key_field.map(parse_ref),
        }
    }

    pub fn topic(&self, event: &Value) -> String {
        self.pattern
            .render(event)
            .unwrap_or_else(|| self.fallback.clone())
    }

    pub fn key(&self, event: &Value) -> Option<String> {
        self.key_field
            .as_ref()
            .and_then(|p| lookup(event, p))
            .and_then(scalar)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn logstash_and_beats_field_references() {
        let e = json!({"fields": {"log_topic": "nginx", "service": "api"}, "host": {"name": "h1"}, "n": 7});
        assert_eq!(
            TopicPattern::parse("%{[fields][log_topic]}")
                .render(&e)
                .as_deref(),
            Some("nginx")
        );
        assert_eq!(
            TopicPattern::parse("%{[fields.log_topic]}")
                .render(&e)
                .as_deref(),
            Some("nginx")
        );
        assert_eq!(
            TopicPattern::parse("filebeat-%{[fields][service]}-%{n}")
                .render(&e)
                .as_deref(),
            Some("filebeat-api-7")
        );
        assert_eq!(
            TopicPattern::parse("static").render(&e).as_deref(),
            Some("static")
        );
        assert_eq!(TopicPattern::parse("%{[fields][missing]}").render(&e), None);
        assert_eq!(
            TopicPattern::parse("%{host}").render(&e),
            None,
            "an object is not a valid topic name"
        );
    }

    #[test]
    fn router_falls_back_and_extracts_keys() {
        let r = Router::new("%{[fields][log_topic]}", "beats", Some("[host][name]"));
        assert_eq!(r.topic(&json!({"fields": {"log_topic": "web"}})), "web");
        assert_eq!(r.topic(&json!({"message": "x"})), "beats");
        assert_eq!(
            r.topic(&json!({"fields": {"log_topic": "bad topic!"}})),
            "beats"
        );
        assert_eq!(
            r.topic(&json!({"fields": {"log_topic": "__consumer_offsets"}})),
            "beats",
            "events never route to an internal topic"
        );
        assert_eq!(
            r.key(&json!({"host": {"name": "h1"}})).as_deref(),
            Some("h1")
        );
        assert_eq!(r.key(&json!({})), None);
    }
}
