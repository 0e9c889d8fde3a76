//! Elasticsearch-compatible ingest, so that Filebeat's `output.elasticsearch` and ES
//! client libraries can ship into topics: `POST /_bulk` and `POST /{index}/_bulk` with
//! the NDJSON bulk format (`index` and `create` actions; gzip bodies), answered in
//! Elasticsearch's response shape with a status per item, and `POST /ingest/{topic}`
//! for plain NDJSON lines.
//!
//! Index `X` goes to topic `X`, or to `http_index_topic` with `%{index}` replaced. The record value is the document line as sent, the key
//! the document `_id` when one is given, headers `source=http`, `remote_addr` and
//! `index`. Items are answered only after their records are durable (see
//! `Broker::ingest`). `delete` and `update` actions get a per-item 400: they have no
//! meaning for a log.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use crate::broker::ingest::{IngestReport, Refusal};
use crate::broker::registry::{is_internal, validate_topic_name};
use crate::broker::Broker;
use crate::protocol::records::OutRecord;

/// The response: status, and a JSON body in Elasticsearch's shape.
pub type EsReply = (StatusCode, Json<Value>);

fn es_error(status: StatusCode, kind: &str, reason: String) -> EsReply {
    (
        status,
        Json(
            json!({"error": {"type": kind, "reason": reason, "root_cause": [{"type": kind, "reason": reason}]}, "status": status.as_u16()}),
        ),
    )
}

/// The request body, gunzipped when `Content-Encoding: gzip`, at most `max` bytes.
/// Public for the fuzz target.
pub fn body_bytes(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Bytes, EsReply> {
    let gzip = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(body);
    }
    let mut out = Vec::new();
    let mut d = flate2::read::GzDecoder::new(&body[..]).take(max as u64 + 1);
    d.read_to_end(&mut out).map_err(|e| {
        es_error(
            StatusCode::BAD_REQUEST,
            "parse_exception",
            format!("cannot gunzip the body: {e}"),
        )
    })?;
    if out.len() > max {
        return Err(es_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "content_too_long_exception",
            format!("body exceeds {max} bytes"),
        ));
    }
    Ok(Bytes::from(out))
}

/// One action of a bulk request, as its response item will report it.
pub struct Item {
    action: String,
    index: String,
    id: String,
    /// Where the record goes (None: the item already failed).
    error: Option<(u16, &'static str, String)>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..20].to_string()
}

/// Parses a bulk body into items and the records to append per topic; `topic_of` maps
/// an index name to its topic. Public for the fuzz target (it reads request bodies).
pub fn parse_bulk(
    body: &[u8],
    default_index: Option<&str>,
    peer: &str,
    topic_of: &dyn Fn(&str) -> String,
) -> Result<(Vec<Item>, BTreeMap<String, Vec<(usize, OutRecord)>>), EsReply> {
    let mut items = Vec::new();
    let mut by_topic: BTreeMap<String, Vec<(usize, OutRecord)>> = BTreeMap::new();
    let mut lines = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()));
    while let Some(action_line) = lines.next() {
        let action: Value = serde_json::from_slice(action_line).map_err(|e| {
            es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                format!("malformed action/metadata line: {e}"),
            )
        })?;
        let Some((name, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            return Err(es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                "empty action line".into(),
            ));
        };
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(default_index)
            .unwrap_or("")
            .to_string();
        let given_id = meta.get("_id").and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_i64().map(|n| n.to_string()))
        });
        let id = given_id.clone().unwrap_or_else(new_id);
        match name.as_str() {
            "index" | "create" => {
                let Some(doc) = lines.next() else {
                    return Err(es_error(
                        StatusCode::BAD_REQUEST,
                        "illegal_argument_exception",
                        "action without a document line".into(),
                    ));
                };
                let topic = topic_of(&index);
                let error = if index.is_empty() {
                    Some((
                        400,
                        "action_request_validation_exception",
                        "index is missing".to_string(),
                    ))
                } else if let Err(e) = validate_topic_name(&topic) {
                    Some((400, "invalid_index_name_exception", e.to_string()))
                } else if is_internal(&topic) {
                    Some((
                        400,
                        "invalid_index_name_exception",
                        format!("cannot append to internal topic {topic}"),
                    ))
                } else if serde_json::from_slice::<Value>(doc)
                    .map(|v| !v.is_object())
                    .unwrap_or(true)
                {
                    Some((
                        400,
                        "document_parsing_exception",
                        "the document is not a JSON object".to_string(),
                    ))
                } else {
                    None
                };
                if error.is_none() {
                    by_topic.entry(topic).or_default().push((
                        items.len(),
                        OutRecord {
                            key: given_id.map(Bytes::from),
                            value: Some(Bytes::copy_from_slice(doc)),
                            headers: vec![
                                ("source".into(), Bytes::from_static(b"http")),
                                ("remote_addr".into(), Bytes::from(peer.to_string())),
                                ("index".into(), Bytes::from(index.clone())),
                            ],
                        },
                    ));
                }
                items.push(Item {
                    action: name.clone(),
                    index,
                    id,
                    error,
                });
            }
            "update" | "delete" => {
                if name == "update" {
                    lines.next();
                }
                items.push(Item {
                    action: name.clone(),
                    index,
                    id,
                    error: Some((
                        400,
                        "illegal_argument_exception",
                        format!("'{name}' is not supported: logbridge appends to logs"),
                    )),
                });
            }
            other => {
                return Err(es_error(
                    StatusCode::BAD_REQUEST,
                    "illegal_argument_exception",
                    format!("Malformed action/metadata line, unknown action [{other}]"),
                ));
            }
        }
    }
    Ok((items, by_topic))
}

async fn bulk(
    broker: Arc<Broker>,
    peer: SocketAddr,
    headers: HeaderMap,
    body: Bytes,
    default_index: Option<String>,
) -> EsReply {
    let started = Instant::now();
    let body = match body_bytes(&headers, body, broker.settings.http_max_content_length) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let pattern = broker.settings.http_index_topic.clone();
    let topic_of = move |index: &str| pattern.replace("%{index}", index);
    let (mut items, by_topic) = match parse_bulk(
        &body,
        default_index.as_deref(),
        &peer.to_string(),
        &topic_of,
    ) {
        Ok(x) => x,
        Err(e) => return e,
    };
    // Append per topic off the async runtime; a topic that fails fails its items (503,
    // which clients retry) and nothing else.
    let b = broker.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        by_topic
            .into_iter()
            .map(|(topic, recs)| {
                let positions: Vec<usize> = recs.iter().map(|(i, _)| *i).collect();
                let result = b
                    .ingest(&topic, recs.into_iter().map(|(_, r)| r).collect())
                    .map_err(|e| e.to_string());
                (positions, result)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            return es_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                e.to_string(),
            )
        }
    };
    for (positions, result) in outcome {
        match result {
            Ok(report) => {
                for (at, why) in report.refused {
                    items[positions[at]].error = Some(refusal_error(&why));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "bulk ingest append failed");
                for i in positions {
                    items[i].error = Some((503, "unavailable_shards_exception", e.clone()));
                }
            }
        }
    }
    let errors = items.iter().any(|i| i.error.is_some());
    let rendered: Vec<Value> = items
        .into_iter()
        .map(|i| {
            let body = match i.error {
                None => json!({
                    "_index": i.index, "_id": i.id, "_version": 1, "result": "created",
                    "_shards": {"total": 1, "successful": 1, "failed": 0},
                    "_seq_no": 0, "_primary_term": 1, "status": 201,
                }),
                Some((status, kind, reason)) => json!({
                    "_index": i.index, "_id": i.id, "status": status,
                    "error": {"type": kind, "reason": reason},
                }),
            };
            json!({ i.action: body })
        })
        .collect();
    (
        StatusCode::OK,
        Json(
            json!({"took": started.elapsed().as_millis() as u64, "errors": errors, "items": rendered}),
        ),
    )
}

pub async fn bulk_any(
    State(broker): State<Arc<Broker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> EsReply {
    bulk(broker, peer, headers, body, None).await
}

pub async fn bulk_index(
    State(broker): State<Arc<Broker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> EsReply {
    bulk(broker, peer, headers, body, Some(index)).await
}

/// The status, error type and reason an item refused by the topic's limits gets.
fn refusal_error(why: &Refusal) -> (u16, &'static str, String) {
    match why {
        Refusal::TooLarge { .. } => (413, "content_too_long_exception", why.to_string()),
        Refusal::NoKey => (400, "illegal_argument_exception", why.to_string()),
    }
}

/// `POST /ingest/{topic}`: every non-empty line is one record. Lines refused by the
/// topic's limits are listed under `errors` (line number from 1, status, type,
/// reason); the others are stored.
pub async fn ingest_lines(
    State(broker): State<Arc<Broker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> EsReply {
    if let Err(e) = validate_topic_name(&topic) {
        return es_error(StatusCode::BAD_REQUEST, "invalid_topic", e.to_string());
    }
    if is_internal(&topic) {
        return es_error(
            StatusCode::BAD_REQUEST,
            "invalid_topic",
            format!("cannot append to internal topic {topic}"),
        );
    }
    let body = match body_bytes(&headers, body, broker.settings.http_max_content_length) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let (line_numbers, records) = ingest_records(&body, &peer.to_string());
    let b = broker.clone();
    let t = topic.clone();
    match tokio::task::spawn_blocking(move || b.ingest(&t, records)).await {
        Ok(Ok(IngestReport { appended, refused })) => {
            let errors: Vec<Value> = refused
                .iter()
                .map(|(at, why)| {
                    let (status, kind, reason) = refusal_error(why);
                    json!({"line": line_numbers[*at], "status": status, "type": kind, "reason": reason})
                })
                .collect();
            (
                StatusCode::OK,
                Json(json!({"topic": topic, "records": appended, "errors": errors})),
            )
        }
        Ok(Err(e)) => es_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ingest_failed",
            e.to_string(),
        ),
        Err(e) => es_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            e.to_string(),
        ),
    }
}

/// The records of an `/ingest` body: every line that is not blank (a trailing `\r`
/// cut), with its line number counted from 1. Public for the fuzz target.
pub fn ingest_records(body: &[u8], peer: &str) -> (Vec<usize>, Vec<OutRecord>) {
    let remote = Bytes::from(peer.to_string());
    body.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(|b| b.is_ascii_whitespace()))
        .map(|(n, l)| {
            (
                n + 1,
                OutRecord {
                    key: None,
                    value: Some(Bytes::copy_from_slice(l.strip_suffix(b"\r").unwrap_or(l))),
                    headers: vec![
                        ("source".into(), Bytes::from_static(b"http")),
                        ("remote_addr".into(), remote.clone()),
                    ],
                },
            )
        })
        .unzip()
}

/// `GET /`: enough of an Elasticsearch node's identity for clients to accept us.
pub async fn root(State(broker): State<Arc<Broker>>) -> Json<Value> {
    Json(json!({
        "name": format!("logbridge-{}", broker.node_id()),
        "cluster_name": broker.settings.cluster_id,
        "cluster_uuid": "logbridge",
        "version": {
            "number": "8.17.0",
            "build_flavor": "default",
            "build_type": "logbridge",
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_bodies_become_items_and_records() {
        let body = br#"{"index":{"_index":"logs","_id":"a1"}}
{"message":"one"}
{"create":{}}
{"message":"two"}
{"delete":{"_index":"logs","_id":"a1"}}
{"index":{"_index":"Bad Name"}}
{"message":"three"}
{"index":{"_index":"logs"}}
[1,2]
"#;
        let same = |i: &str| i.to_string();
        let (items, by_topic) = parse_bulk(body, Some("dflt"), "1.2.3.4:5", &same).unwrap();
        assert_eq!(items.len(), 5);
        assert!(items[0].error.is_none() && items[0].id == "a1");
        assert_eq!(items[1].index, "dflt");
        assert_eq!(items[2].error.as_ref().unwrap().0, 400);
        assert_eq!(
            items[3].error.as_ref().unwrap().1,
            "invalid_index_name_exception"
        );
        assert_eq!(
            items[4].error.as_ref().unwrap().1,
            "document_parsing_exception"
        );
        assert_eq!(by_topic["logs"].len(), 1);
        assert_eq!(by_topic["logs"][0].1.key.as_deref(), Some(&b"a1"[..]));
        assert_eq!(
            by_topic["dflt"][0].1.value.as_deref(),
            Some(&br#"{"message":"two"}"#[..])
        );
        assert!(parse_bulk(b"not json\n{}\n", None, "x", &same).is_err());
        assert!(
            parse_bulk(b"{\"index\":{\"_index\":\"x\"}}\n", None, "x", &same).is_err(),
            "a missing document line"
        );
        let prefixed = |i: &str| format!("es-{i}");
        let (_, by_topic) = parse_bulk(
            b"{\"index\":{\"_index\":\"logs\"}}\n{}\n",
            None,
            "x",
            &prefixed,
        )
        .unwrap();
        assert!(by_topic.contains_key("es-logs"));
    }
}
