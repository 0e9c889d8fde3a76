//! `elasticsearch`: indexes events with the `_bulk` API, with the Logstash output's
//! settings — `hosts` (several: round-robin, failing over on connection errors),
//! `index` (sprintf, default `logstash-%{+YYYY.MM.dd}`), `document_id`, `action`
//! (index, create, update, delete; sprintf), `pipeline`, `routing`, `version` and
//! `version_type`, the update settings of `update.rs` (`doc_as_upsert`, `upsert`,
//! `script*`, `retry_on_conflict`), `user`/`password`, `api_key` (`id:key`),
//! `ssl_enabled`, `ssl_certificate_authorities`/`cacert`, `ssl_verification_mode`,
//! `http_compression` (gzip bodies), `custom_headers`, `parameters` (bulk URL query),
//! `timeout`, `data_stream` (+ `_type`, `_dataset`, `_namespace`, `_auto_routing`,
//! `_sync_fields`), `flush_size` and `target_bulk_bytes` (bodies cut at 20 MiB by
//! default, as Logstash does), `retry_initial_interval`, `retry_max_interval`,
//! `dlq_custom_codes`, and index templates (`template.rs`). ILM rollover aliases are
//! refused at load (`ilm_enabled => true`, or a rollover alias with `auto`). With
//! `auto` and an `index` of one's own Logstash writes to that index, as this output
//! does; with no `index` at all Logstash would write through its `logstash` rollover
//! alias, where this output writes to the dated default index.
//!
//! What happens to each document is decided by `bulk::verdicts`: indexed, conflict
//! (409: already there), retried (429, 5xx, connection errors — only the failed
//! documents, with exponential back-off, for as long as it takes), or rejected (400,
//! 404, `dlq_custom_codes`) to the dead-letter topic `dlq.<pipeline>` with the event,
//! the error and the action. `write` returns only once every document is indexed or
//! dead-lettered, so the pipeline commits nothing before that and stops consuming
//! while Elasticsearch is away.
//!
//! Without `document_id`, the `_id` is `topic-partition-offset` of the record the
//! event came from (`-N` for the N-th event of a multi-line record), so a replay after
//! a crash overwrites instead of duplicating; `deterministic_ids => false` lets
//! Elasticsearch choose ids instead.
//!
//! With no `hosts` at all (an empty `${ELASTICSEARCH_HOSTS:}`), the output writes each
//! index as a NDJSON file, `<data_dir>/indices/<index>.ndjson`: the embedded default
//! that lets the appliance run its example end to end without Elasticsearch.

pub mod bulk;
mod embedded;
mod template;
mod update;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use super::{Output, OutputFuture};
use crate::client::access::TopicAccess;
use crate::pipeline::context::Context;
use crate::pipeline::event::Event;
use crate::pipeline::settings::{PluginError, Settings};
use crate::pipeline::sprintf::sprintf;
use crate::protocol::records::OutRecord;
use bulk::{Action, Doc, Verdict};

/// Settings of Logstash's elasticsearch output that tune its connection pool, health
/// checks and logging; accepted so existing files load, with no effect on what is
/// indexed (reqwest keeps its own pool; every failure is logged).
const ACCEPTED: &[&str] = &[
    "sniffing_delay",
    "sniffing_path",
    "pool_max",
    "pool_max_per_route",
    "validate_after_inactivity",
    "resurrect_delay",
    "healthcheck_path",
    "failure_type_logging_whitelist",
    "silence_errors_in_log",
    "ecs_compatibility",
];

#[derive(Default)]
struct Stats {
    indexed: AtomicU64,
    conflicts: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    bulk_requests: AtomicU64,
    bulk_failures: AtomicU64,
}

struct DataStream {
    kind: String,
    dataset: String,
    namespace: String,
    auto_routing: bool,
    sync_fields: bool,
}

pub struct Elasticsearch {
    hosts: Vec<String>,
    next_host: AtomicUsize,
    client: reqwest::Client,
    auth: Option<String>,
    /// `custom_headers`, on every request.
    headers: Vec<(String, String)>,
    /// `parameters`, as the bulk URL's query string (`?a=b&c=d` or empty).
    query: String,
    gzip: bool,
    template: Option<template::Template>,
    template_done: AtomicBool,
    index: String,
    action: String,
    document_id: Option<String>,
    deterministic_ids: bool,
    routing: Option<String>,
    pipeline: Option<String>,
    version: Option<String>,
    version_type: Option<String>,
    update: update::UpdateSettings,
    data_stream: Option<DataStream>,
    max_bytes: usize,
    max_docs: usize,
    retry_initial: Duration,
    retry_max: Duration,
    dlq_codes: Vec<u16>,
    dlq_topic: String,
    id: String,
    local: Option<Arc<dyn TopicAccess>>,
    stopping: crate::pipeline::stop::StopFlag,
    embedded_dir: PathBuf,
    stats: Stats,
}

fn number(s: &mut Settings, name: &'static str) -> Result<Option<f64>, PluginError> {
    match s.string(name)? {
        None => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .map(Some)
            .map_err(|_| s.error(format!("{name} must be a number"))),
    }
}

/// `http://h:9200`, `https://h`, `h:9200` or `h` → a base URL without a trailing `/`.
fn host_url(h: &str, tls: bool, path: &str) -> String {
    let h = h.trim().trim_end_matches('/');
    let with_scheme = if h.contains("://") {
        h.to_string()
    } else {
        format!("{}://{h}", if tls { "https" } else { "http" })
    };
    let (scheme, rest) = with_scheme.split_once("://").unwrap_or(("http", h));
    let (authority, own_path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        || authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:9200")
    };
    let prefix = if own_path.is_empty() {
        path.trim_end_matches('/')
    } else {
        own_path
    };
    format!("{scheme}://{authority}{prefix}")
}

impl Elasticsearch {
    pub fn build(s: &mut Settings, ctx: &Context, id: &str) -> Result<Elasticsearch, PluginError> {
        for a in ACCEPTED {
            s.accept(a);
        }
        let ssl = s.bool("ssl_enabled")?.or(s.bool("ssl")?).unwrap_or(false);
        let path = s.string("path")?.unwrap_or_default();
        let hosts: Vec<String> = s
            .list("hosts")?
            .iter()
            .flat_map(|h| {
                h.split(',')
                    .map(str::trim)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|h| !h.is_empty())
            .map(|h| host_url(&h, ssl, &path))
            .collect();
        let mut cas = s.list("ssl_certificate_authorities")?;
        cas.extend(s.string("cacert")?);
        let verify = match s.string("ssl_verification_mode")?.as_deref() {
            None | Some("full") => true,
            Some("none") => false,
            Some(other) => {
                return Err(s.error(format!(
                    "ssl_verification_mode must be full or none, not \"{other}\""
                )))
            }
        };
        let timeout = number(s, "timeout")?.unwrap_or(60.0).max(0.001);
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(timeout))
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(8);
        for ca in &cas {
            let pem =
                std::fs::read(ca).map_err(|e| s.error(format!("cannot read CA {ca}: {e}")))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| s.error(format!("CA {ca} is not PEM: {e}")))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if !verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder
            .build()
            .map_err(|e| s.error(format!("cannot build the HTTP client: {e}")))?;
        let user = s.string("user")?;
        let password = s.string("password")?;
        let api_key = s.string("api_key")?;
        let auth = match (user, password, api_key) {
            (_, _, Some(k)) => Some(format!(
                "ApiKey {}",
                base64::engine::general_purpose::STANDARD.encode(k)
            )),
            (Some(u), p, None) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{u}:{}", p.unwrap_or_default()))
            )),
            (None, Some(_), None) => return Err(s.error("password needs user".into())),
            (None, None, None) => None,
        };
        let data_stream = match s.string("data_stream")?.as_deref() {
            Some("true") => Some(DataStream {
                kind: s
                    .string("data_stream_type")?
                    .unwrap_or_else(|| "logs".into()),
                dataset: s
                    .string("data_stream_dataset")?
                    .unwrap_or_else(|| "generic".into()),
                namespace: s
                    .string("data_stream_namespace")?
                    .unwrap_or_else(|| "default".into()),
                auto_routing: s.bool("data_stream_auto_routing")?.unwrap_or(true),
                sync_fields: s.bool("data_stream_sync_fields")?.unwrap_or(true),
            }),
            None | Some("false") | Some("auto") => {
                for k in [
                    "data_stream_type",
                    "data_stream_dataset",
                    "data_stream_namespace",
                ] {
                    s.string(k)?;
                }
                s.bool("data_stream_auto_routing")?;
                s.bool("data_stream_sync_fields")?;
                None
            }
            Some(other) => {
                return Err(s.error(format!(
                    "data_stream must be true, false or auto, not \"{other}\""
                )))
            }
        };
        let ilm = s.string("ilm_enabled")?;
        let ilm_named = ["ilm_rollover_alias", "ilm_pattern", "ilm_policy"]
            .into_iter()
            .find(|k| s.is_set(k));
        for k in ["ilm_rollover_alias", "ilm_pattern", "ilm_policy"] {
            s.string(k)?;
        }
        // In Logstash `ilm_enabled => true`, or `auto` with a rollover alias of one's
        // own, writes through an ILM rollover alias; silently writing to `index`
        // instead would put the data somewhere else than the configuration says.
        match (ilm.as_deref(), ilm_named) {
            (Some("true"), _) | (None | Some("auto"), Some(_)) => {
                return Err(s.error(
                    "ILM rollover aliases are not supported by this output: use \
                     data_stream => true, or dated indices with ilm_enabled => false"
                        .into(),
                ))
            }
            (None | Some("auto") | Some("false"), _) => {}
            (Some(other), _) => {
                return Err(s.error(format!(
                    "ilm_enabled must be true, false or auto, not \"{other}\""
                )))
            }
        }
        if s.bool("sniffing")?.unwrap_or(false) {
            tracing::warn!(
                "elasticsearch output: sniffing is not implemented; requests go to the listed hosts only"
            );
        }
        let headers = s.hash("custom_headers")?;
        let parameters = s.hash("parameters")?;
        let query = if parameters.is_empty() {
            String::new()
        } else {
            let mut url = reqwest::Url::parse("http://h/_bulk").expect("a valid URL");
            url.query_pairs_mut().extend_pairs(&parameters);
            format!("?{}", url.query().unwrap_or_default())
        };
        let action = s.string("action")?.unwrap_or_else(|| "index".into());
        if !action.contains("%{") && Action::parse(&action).is_none() {
            return Err(s.error(format!(
                "action must be index, create, update or delete, not \"{action}\""
            )));
        }
        if data_stream.is_some() && action != "create" && s.is_set("action") {
            return Err(s.error("data streams only accept action => create".into()));
        }
        let document_id = s.string("document_id")?;
        if matches!(action.as_str(), "update" | "delete") && document_id.is_none() {
            return Err(s.error(format!("action {action} needs document_id")));
        }
        let dlq_codes = s
            .list("dlq_custom_codes")?
            .iter()
            .map(|c| c.trim_end_matches(".0").parse::<u16>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| s.error("dlq_custom_codes must be HTTP status codes".into()))?;
        if let Some(bad) = dlq_codes
            .iter()
            .find(|c| matches!(c, 200..=299 | 409 | 400 | 404))
        {
            return Err(s.error(format!(
                "dlq_custom_codes cannot contain {bad} (Logstash refuses it too)"
            )));
        }
        let max_docs = number(s, "flush_size")?.map_or(usize::MAX, |n| n.max(1.0) as usize);
        let max_bytes =
            number(s, "target_bulk_bytes")?.map_or(20 * 1024 * 1024, |n| n.max(1.0) as usize);
        let secs = |v: Option<f64>, d: f64| Duration::from_secs_f64(v.unwrap_or(d).max(0.01));
        let retry_initial = secs(number(s, "retry_initial_interval")?, 2.0);
        let retry_max = secs(number(s, "retry_max_interval")?, 64.0);
        Ok(Elasticsearch {
            hosts,
            next_host: AtomicUsize::new(0),
            client,
            auth,
            headers,
            query,
            gzip: s.bool("http_compression")?.unwrap_or(false),
            template: template::read(s)?,
            template_done: AtomicBool::new(false),
            index: s
                .string("index")?
                .unwrap_or_else(|| "logstash-%{+YYYY.MM.dd}".into()),
            action: if data_stream.is_some() {
                "create".into()
            } else {
                action
            },
            document_id,
            deterministic_ids: s.bool("deterministic_ids")?.unwrap_or(true),
            routing: s.string("routing")?,
            pipeline: s.string("pipeline")?,
            version: s.string("version")?,
            version_type: s.string("version_type")?,
            update: update::UpdateSettings::read(s)?,
            data_stream,
            max_bytes,
            max_docs,
            retry_initial,
            retry_max,
            dlq_codes,
            dlq_topic: format!("dlq.{}", ctx.pipeline),
            // The id /pipelines shows for this output (named in dead letters).
            id: id.to_string(),
            local: ctx.local.clone(),
            stopping: ctx.stopping.clone(),
            embedded_dir: ctx.data_dir.join("indices"),
            stats: Stats::default(),
        })
    }

    /// The bulk document for an event; an action that renders to nothing valid is a
    /// rejection of that event.
    fn doc(&self, e: &Event) -> Result<Doc, String> {
        let rendered = sprintf(&self.action, e);
        let action =
            Action::parse(&rendered).ok_or_else(|| format!("invalid action \"{rendered}\""))?;
        let mut source = Vec::with_capacity(512);
        let index = match &self.data_stream {
            Some(ds) => {
                let field = |f: &str| {
                    e.get(&["data_stream".to_string(), f.to_string()])
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                let (kind, dataset, namespace) = if ds.auto_routing {
                    (
                        field("type").unwrap_or_else(|| ds.kind.clone()),
                        field("dataset").unwrap_or_else(|| ds.dataset.clone()),
                        field("namespace").unwrap_or_else(|| ds.namespace.clone()),
                    )
                } else {
                    (ds.kind.clone(), ds.dataset.clone(), ds.namespace.clone())
                };
                if ds.sync_fields {
                    let mut synced = e.clone();
                    synced.set(
                        &["data_stream".into(), "type".into()],
                        Value::String(kind.clone()),
                    );
                    synced.set(
                        &["data_stream".into(), "dataset".into()],
                        Value::String(dataset.clone()),
                    );
                    synced.set(
                        &["data_stream".into(), "namespace".into()],
                        Value::String(namespace.clone()),
                    );
                    synced.write_json(&mut source);
                } else {
                    e.write_json(&mut source);
                }
                format!("{kind}-{dataset}-{namespace}")
            }
            None => {
                e.write_json(&mut source);
                sprintf(&self.index, e)
            }
        };
        let id = match &self.document_id {
            Some(t) => Some(sprintf(t, e)),
            None if self.deterministic_ids && matches!(action, Action::Index | Action::Create) => {
                e.origin().map(|o| {
                    if o.index == 0 {
                        format!("{}-{}-{}", o.topic, o.partition, o.offset)
                    } else {
                        format!("{}-{}-{}-{}", o.topic, o.partition, o.offset, o.index)
                    }
                })
            }
            None => None,
        };
        let nonempty =
            |t: &Option<String>| t.as_ref().map(|t| sprintf(t, e)).filter(|s| !s.is_empty());
        let update = match action {
            Action::Update => Some(Box::new(self.update.render(e)?)),
            _ => None,
        };
        Ok(Doc {
            action,
            index: index.to_lowercase(),
            id,
            routing: nonempty(&self.routing),
            pipeline: nonempty(&self.pipeline),
            version: nonempty(&self.version),
            version_type: nonempty(&self.version_type),
            source,
            update,
        })
    }

    /// A request to `host` with the credentials and `custom_headers`.
    fn request(&self, method: reqwest::Method, host: &str, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.client.request(method, format!("{host}/{path}"));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        req
    }

    /// One bulk request to the next host (round-robin); Ok(body) for a 200 answer.
    async fn send(&self, body: Vec<u8>) -> Result<Vec<u8>, String> {
        let n = self.hosts.len();
        let first = self.next_host.fetch_add(1, Ordering::Relaxed);
        let body = if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&body)
                .and_then(|_| gz.finish())
                .map_err(|e| e.to_string())?
        } else {
            body
        };
        let body = Bytes::from(body);
        let mut last = String::new();
        // Connection errors fail over to the next host at once; anything else is the
        // answer of this request.
        for k in 0..n {
            let host = &self.hosts[(first + k) % n];
            self.stats.bulk_requests.fetch_add(1, Ordering::Relaxed);
            let mut req = self
                .request(reqwest::Method::POST, host, &format!("_bulk{}", self.query))
                .header("Content-Type", "application/x-ndjson")
                .body(body.clone());
            if self.gzip {
                req = req.header("Content-Encoding", "gzip");
            }
            let sent_at = std::time::Instant::now();
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let bytes = resp.bytes().await.map_err(|e| format!("{host}: {e}"))?;
                    tracing::debug!(host = %host, status = status.as_u16(), micros = sent_at.elapsed().as_micros() as u64, "bulk request");
                    if status.as_u16() == 200 {
                        return Ok(bytes.to_vec());
                    }
                    self.stats.bulk_failures.fetch_add(1, Ordering::Relaxed);
                    return Err(format!(
                        "{host}: HTTP {status}: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                    ));
                }
                Err(e) => {
                    self.stats.bulk_failures.fetch_add(1, Ordering::Relaxed);
                    last = format!("{host}: {e}");
                }
            }
        }
        Err(last)
    }

    /// Writes rejected documents to the dead-letter topic: the event, the error, the
    /// action, the index and the id.
    async fn dead_letter(
        &self,
        rejected: &[(usize, u16, Value)],
        docs: &[Doc],
    ) -> Result<(), String> {
        let Some(local) = &self.local else {
            return Err("no dead-letter topic outside `serve`".into());
        };
        let now = crate::pipeline::time::format_iso8601(crate::storage::segment::now_ms());
        let records = rejected
            .iter()
            .map(|(i, status, error)| {
                let d = &docs[*i];
                let event: Value = serde_json::from_slice(&d.source).unwrap_or(Value::Null);
                let value = json!({
                    "@timestamp": now,
                    "pipeline": self.dlq_topic.trim_start_matches("dlq."),
                    "output": self.id,
                    "action": d.action.name(),
                    "index": d.index,
                    "document_id": d.id,
                    "status": status,
                    "error": error,
                    "event": event,
                });
                OutRecord {
                    key: d.id.clone().map(Bytes::from),
                    value: Some(Bytes::from(value.to_string())),
                    headers: Vec::new(),
                }
            })
            .collect();
        local
            .produce(&self.dlq_topic, records)
            .await
            .map_err(|e| format!("dead-letter topic {}: {e}", self.dlq_topic))
    }
}

impl Output for Elasticsearch {
    fn write<'a>(&'a self, events: &'a [&'a Event]) -> OutputFuture<'a> {
        Box::pin(async move {
            let mut docs = Vec::with_capacity(events.len());
            let mut invalid = Vec::new();
            for e in events {
                match self.doc(e) {
                    Ok(d) => docs.push(d),
                    Err(why) => {
                        // Still dead-lettered, with the event as it was.
                        let mut source = Vec::new();
                        e.write_json(&mut source);
                        invalid.push((docs.len(), why));
                        docs.push(Doc {
                            action: Action::Index,
                            index: sprintf(&self.index, e),
                            id: None,
                            routing: None,
                            pipeline: None,
                            version: None,
                            version_type: None,
                            source,
                            update: None,
                        });
                    }
                }
            }
            if self.hosts.is_empty() {
                return self.write_embedded(&docs);
            }
            self.install_template().await;
            let mut rejected: Vec<(usize, u16, Value)> = invalid
                .into_iter()
                .map(|(i, why)| {
                    (
                        i,
                        400,
                        json!({"type": "logbridge_invalid_action", "reason": why}),
                    )
                })
                .collect();
            let skip: Vec<usize> = rejected.iter().map(|r| r.0).collect();
            let mut pending: Vec<usize> = (0..docs.len()).filter(|i| !skip.contains(i)).collect();
            let mut backoff = self.retry_initial;
            loop {
                let batch: Vec<&Doc> = pending.iter().map(|i| &docs[*i]).collect();
                let mut retry = Vec::new();
                let mut last_error = String::new();
                for (range, body) in bulk::split(&batch, self.max_bytes, self.max_docs) {
                    match self.send(body).await {
                        Err(e) => {
                            last_error = e;
                            retry.extend(range.map(|k| pending[k]));
                        }
                        Ok(resp) => match bulk::verdicts(&resp, range.len(), &self.dlq_codes) {
                            Err(e) => {
                                last_error = e;
                                retry.extend(range.map(|k| pending[k]));
                            }
                            Ok(verdicts) => {
                                for (k, v) in range.zip(verdicts) {
                                    let i = pending[k];
                                    match v {
                                        Verdict::Indexed => {
                                            self.stats.indexed.fetch_add(1, Ordering::Relaxed);
                                        }
                                        Verdict::Conflict => {
                                            self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                                        }
                                        Verdict::Reject(status, error) => {
                                            rejected.push((i, status, error))
                                        }
                                        Verdict::Retry(status, error) => {
                                            last_error = format!("HTTP {status}: {error}");
                                            retry.push(i);
                                        }
                                    }
                                }
                            }
                        },
                    }
                }
                if !rejected.is_empty() {
                    match self.dead_letter(&rejected, &docs).await {
                        Ok(()) => {
                            self.stats
                                .dead_lettered
                                .fetch_add(rejected.len() as u64, Ordering::Relaxed);
                            tracing::warn!(output = %self.id, count = rejected.len(), topic = %self.dlq_topic, "documents rejected by Elasticsearch went to the dead-letter topic");
                            rejected.clear();
                        }
                        Err(e) => last_error = e,
                    }
                }
                if retry.is_empty() && rejected.is_empty() {
                    return Ok(());
                }
                self.stats
                    .retried
                    .fetch_add(retry.len() as u64, Ordering::Relaxed);
                tracing::warn!(output = %self.id, documents = retry.len(), error = %last_error, retry_in_ms = backoff.as_millis() as u64, "elasticsearch: retrying");
                if !self.stopping.pause(backoff).await {
                    return Err(format!("stopped while retrying: {last_error}"));
                }
                backoff = (backoff * 2).min(self.retry_max);
                pending = retry;
            }
        })
    }

    fn stats(&self) -> Option<Value> {
        let s = &self.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Some(json!({
            "indexed": g(&s.indexed),
            "conflicts": g(&s.conflicts),
            "retried": g(&s.retried),
            "dead_lettered": g(&s.dead_lettered),
            "bulk_requests": g(&s.bulk_requests),
            "bulk_failures": g(&s.bulk_failures),
            "hosts": if self.hosts.is_empty() { json!(format!("embedded: {}", self.embedded_dir.display())) } else { json!(self.hosts) },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_spellings() {
        assert_eq!(host_url("es:9200", false, ""), "http://es:9200");
        assert_eq!(host_url("es", true, ""), "https://es:9200");
        assert_eq!(host_url("http://es:9201/", false, ""), "http://es:9201");
        assert_eq!(
            host_url("https://es/prefix", false, ""),
            "https://es:9200/prefix"
        );
        assert_eq!(
            host_url("es:9200", false, "/proxy/"),
            "http://es:9200/proxy"
        );
        assert_eq!(host_url("[::1]:9200", false, ""), "http://[::1]:9200");
    }

    /// The load-time verdict on one elasticsearch output's settings.
    fn check(settings: &str) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.conf");
        std::fs::write(
            &path,
            format!("input {{ generator {{ count => 1 }} }}\noutput {{ elasticsearch {{ hosts => [\"es:9200\"] {settings} }} }}\n"),
        )
        .unwrap();
        crate::pipeline::check(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn settings_that_would_write_elsewhere_are_refused_at_load() {
        assert!(check("").is_ok());
        assert!(check(r#"index => "app-%{+YYYY.MM.dd}" ilm_enabled => "auto""#).is_ok());
        assert!(check(r#"ilm_enabled => false ilm_rollover_alias => "app""#).is_ok());
        for (bad, why) in [
            ("ilm_enabled => true", "ILM rollover"),
            (r#"ilm_rollover_alias => "app""#, "ILM rollover"),
            (r#"ilm_policy => "hot-warm""#, "ILM rollover"),
            (
                r#"action => "update" document_id => "x" script => "s" script_type => "file""#,
                "no file scripts",
            ),
            (
                r#"template => "/nonexistent/t.json""#,
                "cannot read template",
            ),
            (r#"template_api => "v9""#, "template_api must be"),
            (r#"retry_on_conflict => "many""#, "whole number"),
        ] {
            let err = check(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        // A template that is not JSON stops the pipeline at load, not at the first write.
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t.json");
        std::fs::write(&t, "{not json").unwrap();
        let err = check(&format!("template => \"{}\"", t.display())).unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
        // manage_template => false: the file is not even read.
        assert!(check(r#"manage_template => false template => "/nonexistent/t.json""#).is_ok());
    }
}
