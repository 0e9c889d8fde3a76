//! The `_bulk` wire format, without I/O: NDJSON requests (one action line, then the
//! document for index/create, the update body of `update.rs` for update, nothing for
//! delete) cut at a
//! size limit, and the reading of a response item by item into what to do with each
//! document. Follows the Elasticsearch bulk API documentation and the Logstash
//! elasticsearch output's rules:
//!
//! - 2xx: indexed.
//! - 409: a version conflict — the document is already there (a replay of a `create`
//!   with a deterministic id, or an update race): done, counted apart.
//! - 400, 404 and the `dlq_custom_codes`: rejected — to the dead-letter topic.
//! - anything else (429, 5xx, …): retried, only those documents.

use serde_json::Value;

use super::update::UpdateBody;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Index,
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "index" => Some(Action::Index),
            "create" => Some(Action::Create),
            "update" => Some(Action::Update),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// One document to send, its action line already decided.
#[derive(Debug, Clone)]
pub struct Doc {
    pub action: Action,
    pub index: String,
    pub id: Option<String>,
    pub routing: Option<String>,
    pub pipeline: Option<String>,
    /// `version` (a number when it reads as one) and `version_type`.
    pub version: Option<String>,
    pub version_type: Option<String>,
    /// The event as JSON (without `@metadata`).
    pub source: Vec<u8>,
    /// For an update: what goes around the document; `None` is a plain `{"doc": …}`.
    pub update: Option<Box<UpdateBody>>,
}

impl Doc {
    /// Appends this document's lines to a bulk body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // The action line, written directly (no map built per document), keys in the
        // order serde_json's sorted maps would give.
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(self.action.name().as_bytes());
        out.extend_from_slice(b"\":{");
        if let Some(id) = &self.id {
            out.extend_from_slice(b"\"_id\":");
            write_str(id, out);
            out.push(b',');
        }
        out.extend_from_slice(b"\"_index\":");
        write_str(&self.index, out);
        if let Some(p) = &self.pipeline {
            out.extend_from_slice(b",\"pipeline\":");
            write_str(p, out);
        }
        if let (Action::Update, Some(u)) = (self.action, &self.update) {
            out.extend_from_slice(
                format!(",\"retry_on_conflict\":{}", u.retry_on_conflict).as_bytes(),
            );
        }
        if let Some(r) = &self.routing {
            out.extend_from_slice(b",\"routing\":");
            write_str(r, out);
        }
        if let Some(v) = &self.version {
            out.extend_from_slice(b",\"version\":");
            match v.parse::<i64>() {
                Ok(n) => out.extend_from_slice(n.to_string().as_bytes()),
                Err(_) => write_str(v, out),
            }
        }
        if let Some(t) = &self.version_type {
            out.extend_from_slice(b",\"version_type\":");
            write_str(t, out);
        }
        out.extend_from_slice(b"}}\n");
        match self.action {
            Action::Delete => {}
            Action::Update => {
                match &self.update {
                    Some(u) => u.encode(&self.source, out),
                    None => {
                        out.extend_from_slice(b"{\"doc\":");
                        out.extend_from_slice(&self.source);
                        out.push(b'}');
                    }
                }
                out.push(b'\n');
            }
            Action::Index | Action::Create => {
                out.extend_from_slice(&self.source);
                out.push(b'\n');
            }
        }
    }
}

/// `s` as a JSON string.
fn write_str(s: &str, out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Cuts documents into bulk bodies of at most `max_bytes` (a single larger document
/// goes alone) and `max_docs` documents; returns (start, end) ranges and bodies.
pub fn split(
    docs: &[&Doc],
    max_bytes: usize,
    max_docs: usize,
) -> Vec<(std::ops::Range<usize>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut body = Vec::new();
    let mut one = Vec::new();
    let mut start = 0;
    for (i, d) in docs.iter().enumerate() {
        one.clear();
        d.encode(&mut one);
        if !body.is_empty() && (body.len() + one.len() > max_bytes || i - start >= max_docs) {
            out.push((start..i, std::mem::take(&mut body)));
            start = i;
        }
        body.extend_from_slice(&one);
    }
    if !body.is_empty() {
        out.push((start..docs.len(), body));
    }
    out
}

/// What to do with one document after a bulk response.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Indexed,
    /// 409: already there.
    Conflict,
    /// Retry later (429, 5xx, …), with the reason.
    Retry(u16, Value),
    /// To the dead-letter topic, with the status and Elasticsearch's error.
    Reject(u16, Value),
}

/// Reads a bulk response body: one verdict per document sent, in order.
pub fn verdicts(response: &[u8], sent: usize, dlq_codes: &[u16]) -> Result<Vec<Verdict>, String> {
    let v: Value =
        serde_json::from_slice(response).map_err(|e| format!("bulk response is not JSON: {e}"))?;
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .ok_or("bulk response has no items")?;
    if items.len() != sent {
        return Err(format!(
            "bulk response has {} items for {sent} documents",
            items.len()
        ));
    }
    Ok(items
        .iter()
        .map(|item| {
            let result = item
                .as_object()
                .and_then(|o| o.values().next())
                .cloned()
                .unwrap_or(Value::Null);
            let status = result.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
            let error = result.get("error").cloned().unwrap_or(Value::Null);
            match status {
                200..=299 => Verdict::Indexed,
                409 => Verdict::Conflict,
                400 | 404 => Verdict::Reject(status, error),
                s if dlq_codes.contains(&s) => Verdict::Reject(status, error),
                s => Verdict::Retry(s, error),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(action: Action, id: Option<&str>) -> Doc {
        Doc {
            action,
            index: "logs-2026.11.22".into(),
            id: id.map(str::to_string),
            routing: None,
            pipeline: None,
            version: None,
            version_type: None,
            source: br#"{"message":"m"}"#.to_vec(),
            update: None,
        }
    }

    #[test]
    fn encodes_the_documented_ndjson_lines() {
        let mut out = Vec::new();
        doc(Action::Index, Some("a")).encode(&mut out);
        doc(Action::Create, None).encode(&mut out);
        doc(Action::Update, Some("b")).encode(&mut out);
        doc(Action::Delete, Some("c")).encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"index":{"_id":"a","_index":"logs-2026.11.22"}}"#,
                "\n",
                r#"{"message":"m"}"#,
                "\n",
                r#"{"create":{"_index":"logs-2026.11.22"}}"#,
                "\n",
                r#"{"message":"m"}"#,
                "\n",
                r#"{"update":{"_id":"b","_index":"logs-2026.11.22"}}"#,
                "\n",
                r#"{"doc":{"message":"m"}}"#,
                "\n",
                r#"{"delete":{"_id":"c","_index":"logs-2026.11.22"}}"#,
                "\n",
            )
        );
    }

    #[test]
    fn action_lines_carry_every_metadata_field() {
        let mut d = doc(Action::Update, Some("id \"1\""));
        d.routing = Some("r".into());
        d.pipeline = Some("p".into());
        d.version = Some("7".into());
        d.version_type = Some("external".into());
        d.update = Some(Box::new(super::super::update::UpdateBody {
            doc_as_upsert: true,
            upsert: None,
            script: None,
            retry_on_conflict: 3,
        }));
        let mut out = Vec::new();
        d.encode(&mut out);
        let line = out.split(|b| *b == b'\n').next().unwrap();
        let meta: Value = serde_json::from_slice(line).unwrap();
        assert_eq!(
            meta,
            serde_json::json!({"update": {"_id": "id \"1\"", "_index": "logs-2026.11.22",
                "pipeline": "p", "retry_on_conflict": 3, "routing": "r", "version": 7,
                "version_type": "external"}})
        );
        d.version = Some("v1".into());
        out.clear();
        d.encode(&mut out);
        let meta: Value =
            serde_json::from_slice(out.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(meta["update"]["version"], "v1");
    }

    #[test]
    fn splits_by_bytes_and_count() {
        let docs: Vec<Doc> = (0..10).map(|_| doc(Action::Index, None)).collect();
        let one = {
            let mut b = Vec::new();
            docs[0].encode(&mut b);
            b.len()
        };
        let docs: Vec<&Doc> = docs.iter().collect();
        let parts = split(&docs, one * 3, 1000);
        assert_eq!(
            parts.iter().map(|(r, _)| r.len()).collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        let parts = split(&docs, usize::MAX, 4);
        assert_eq!(
            parts.iter().map(|(r, _)| r.len()).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        assert_eq!(
            split(&docs, 1, 1000).len(),
            10,
            "an oversized document goes alone"
        );
    }

    #[test]
    fn reads_item_statuses() {
        let resp = br#"{"took":3,"errors":true,"items":[
            {"index":{"_index":"i","_id":"1","status":201,"result":"created"}},
            {"create":{"_index":"i","_id":"2","status":409,"error":{"type":"version_conflict_engine_exception"}}},
            {"index":{"_index":"i","_id":"3","status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}},
            {"index":{"_index":"i","_id":"4","status":429,"error":{"type":"es_rejected_execution_exception"}}},
            {"index":{"_index":"i","_id":"5","status":503,"error":{"type":"unavailable_shards_exception"}}},
            {"index":{"_index":"i","_id":"6","status":403,"error":{"type":"security_exception"}}}
        ]}"#;
        let v = verdicts(resp, 6, &[403]).unwrap();
        assert_eq!(v[0], Verdict::Indexed);
        assert_eq!(v[1], Verdict::Conflict);
        assert!(
            matches!(&v[2], Verdict::Reject(400, e) if e["type"] == "mapper_parsing_exception")
        );
        assert!(matches!(v[3], Verdict::Retry(429, _)));
        assert!(matches!(v[4], Verdict::Retry(503, _)));
        assert!(matches!(v[5], Verdict::Reject(403, _)), "dlq_custom_codes");
        assert!(verdicts(resp, 5, &[]).is_err(), "item count must match");
        assert!(verdicts(b"<html>", 1, &[]).is_err());
    }
}
