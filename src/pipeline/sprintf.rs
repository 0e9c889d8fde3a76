//! Logstash's sprintf format: `%{field}`, `%{[a][b]}`, `%{+YYYY.MM.dd}` (the event's
//! `@timestamp` in UTC, Joda pattern) and `%{+%s}` (epoch seconds). A missing field is
//! left as written, as Logstash does; arrays render as comma-joined values and hashes
//! as JSON.

use serde_json::Value;

use super::event::{parse_field_ref, Event};
use super::time;

fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(render_value).collect::<Vec<_>>().join(","),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A field name from the configuration (`add_field`, `remove_field`…) that may hold
/// sprintf references; parsed once at load time when it holds none.
#[derive(Debug, Clone)]
pub enum FieldName {
    Fixed(Vec<String>),
    Template(String),
}

impl FieldName {
    pub fn new(name: &str) -> FieldName {
        if name.contains("%{") {
            FieldName::Template(name.to_string())
        } else {
            FieldName::Fixed(parse_field_ref(name))
        }
    }

    /// The field path for this event.
    pub fn path(&self, event: &Event) -> std::borrow::Cow<'_, [String]> {
        match self {
            FieldName::Fixed(p) => std::borrow::Cow::Borrowed(p),
            FieldName::Template(t) => std::borrow::Cow::Owned(parse_field_ref(&sprintf(t, event))),
        }
    }
}

/// Renders `template` against `event`.
pub fn sprintf(template: &str, event: &Event) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let whole = &rest[start..start + 2 + end + 1];
        if let Some(fmt) = inner.strip_prefix('+') {
            match event.timestamp_ms() {
                Some(ms) if fmt == "%s" => out.push_str(&(ms.div_euclid(1000)).to_string()),
                Some(ms) => out.push_str(&time::format_joda(ms, fmt)),
                None => out.push_str(whole),
            }
        } else {
            match event.get(&parse_field_ref(inner)) {
                Some(v) => out.push_str(&render_value(v)),
                None => out.push_str(whole),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_dates_and_missing_references() {
        let e = Event::new(
            json!({"@timestamp": "2026-11-22T10:00:00.000Z", "host": {"name": "web-1"}, "tags": ["a", "b"], "n": 3, "h": {"x": 1}})
                .as_object()
                .unwrap()
                .clone(),
            0,
        );
        assert_eq!(
            sprintf("nginx_access-%{+YYYY.MM.dd}", &e),
            "nginx_access-2026.11.22"
        );
        assert_eq!(
            sprintf("%{[host][name]}/%{n}/%{tags}/%{h}", &e),
            "web-1/3/a,b/{\"x\":1}"
        );
        assert_eq!(sprintf("%{+%s}", &e), "1795341600");
        assert_eq!(sprintf("x-%{missing}-y", &e), "x-%{missing}-y");
        assert_eq!(sprintf("unterminated %{oops", &e), "unterminated %{oops");
    }
}
