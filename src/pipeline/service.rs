//! The pipelines `serve` runs: every pipeline of a directory (each `*.conf` file
//! directly in it is one pipeline named after the file; each sub-folder is one
//! pipeline named after the folder, made of its `*.conf` files in name order), built
//! at start (any configuration error stops `serve` with the file, line and column) and
//! stopped at shutdown. Also the views `/pipelines` and `/metrics` show.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::context::Context;
use super::runner::{self, Running};
use super::LoadError;
use std::sync::atomic::Ordering;

/// Pipelines found in a directory: (name, path).
pub fn discover(dir: &Path) -> Result<Vec<(String, PathBuf)>, LoadError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Read {
        path: dir.into(),
        source,
    })?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if !super::config_files(&path)?.is_empty() {
                found.push((name, path));
            }
        } else if let Some(stem) = name.strip_suffix(".conf") {
            found.push((stem.to_string(), path));
        }
    }
    found.sort();
    Ok(found)
}

pub struct PipelineSet {
    running: Vec<Running>,
}

impl PipelineSet {
    /// Builds every pipeline of `dir` (all or nothing), then starts them.
    pub fn start(
        dir: &Path,
        ctx: &Context,
        workers: usize,
        batch_size: usize,
    ) -> Result<PipelineSet, LoadError> {
        let mut built = Vec::new();
        for (name, path) in discover(dir)? {
            built.push(super::build(&name, &path, ctx)?);
        }
        Ok(PipelineSet {
            running: built
                .into_iter()
                .map(|b| runner::start(b, workers, batch_size))
                .collect(),
        })
    }

    pub fn empty() -> PipelineSet {
        PipelineSet {
            running: Vec::new(),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.running.iter().map(|r| r.shared.name.clone()).collect()
    }

    pub async fn stop(self) {
        for r in self.running {
            r.stop().await;
        }
    }

    /// Per pipeline: events in/filtered/out, per filter and output counts, and per
    /// consumed partition the position, committed offset, log end and lag.
    pub async fn snapshot(&self) -> Value {
        let mut pipelines = Vec::new();
        for r in &self.running {
            let s = &r.shared;
            let mut filters = Vec::new();
            super::runtime::for_each_filter(&s.filters, &mut |f| {
                let (events_in, events_out, failures) = f.counts();
                filters.push(json!({
                    "id": f.id,
                    "name": f.name,
                    "events_in": events_in,
                    "events_out": events_out,
                    "failures": failures,
                }))
            });
            let outputs: Vec<Value> = s
                .outputs
                .instances
                .iter()
                .map(|o| {
                    let mut v = json!({
                        "id": o.id,
                        "name": o.name,
                        "events_out": o.events_out.load(Ordering::Relaxed),
                        "failures": o.failures.load(Ordering::Relaxed),
                    });
                    if let Some(stats) = o.output.stats() {
                        v[o.name.as_str()] = stats;
                    }
                    v
                })
                .collect();
            let mut partitions = Vec::new();
            let mut total_lag = 0i64;
            let progress = s.progress.partitions();
            for p in progress {
                let (position, committed) = p.positions();
                let end = p
                    .access
                    .offset_bounds(&p.topic, p.partition)
                    .await
                    .ok()
                    .map(|b| b.1);
                // Records in the log the group has not committed yet.
                let lag = end.map(|e| (e - p.delivered_floor()).max(0));
                total_lag += lag.unwrap_or(0);
                partitions.push(json!({
                    "group": p.session.group,
                    "topic": p.topic,
                    "partition": p.partition,
                    "position": position,
                    "committed": committed,
                    "log_end_offset": end,
                    "lag": lag,
                }));
            }
            pipelines.push(json!({
                "name": s.name,
                "workers": s.workers,
                "inputs": s.inputs.iter().zip(&s.input_events).map(|((name, id), n)| json!({
                    "id": id,
                    "name": name,
                    "events_out": n.load(Ordering::Relaxed),
                })).collect::<Vec<_>>(),
                "events": {
                    "in": s.events_in.load(Ordering::Relaxed),
                    "filtered": s.events_filtered.load(Ordering::Relaxed),
                    "out": s.events_out.load(Ordering::Relaxed),
                },
                "filters": filters,
                "outputs": outputs,
                "consumer": {"lag": total_lag, "partitions": partitions},
            }));
        }
        json!({ "pipelines": pipelines })
    }
}

/// The snapshot in Prometheus' text format.
pub fn prometheus(snapshot: &Value) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, rows: Vec<(String, i64)>| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {}\n",
            if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            }
        ));
        for (labels, v) in rows {
            out.push_str(&format!("{name}{{{labels}}} {v}\n"));
        }
    };
    let empty = Vec::new();
    let pipelines = snapshot["pipelines"].as_array().unwrap_or(&empty);
    let esc = |s: &Value| {
        s.as_str()
            .unwrap_or_default()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    for (stage, help) in [
        ("in", "events taken from inputs"),
        ("filtered", "events out of the filters"),
        ("out", "events held by every output"),
    ] {
        metric(
            &format!("logbridge_pipeline_events_{stage}_total"),
            help,
            pipelines
                .iter()
                .map(|p| {
                    (
                        format!("pipeline=\"{}\"", esc(&p["name"])),
                        p["events"][stage].as_i64().unwrap_or(0),
                    )
                })
                .collect(),
        );
    }
    // One row per filter or output of every pipeline that has a value for `value`.
    let plugin_rows = |kind: &str, value: &dyn Fn(&Value) -> Option<i64>| -> Vec<(String, i64)> {
        pipelines
            .iter()
            .flat_map(|p| {
                p[kind]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|f| {
                        let v = value(&f)?;
                        Some((
                            format!(
                                "pipeline=\"{}\",plugin=\"{}\",id=\"{}\"",
                                esc(&p["name"]),
                                esc(&f["name"]),
                                esc(&f["id"])
                            ),
                            v,
                        ))
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let field = |name: &'static str| move |f: &Value| Some(f[name].as_i64().unwrap_or(0));
    metric(
        "logbridge_pipeline_filter_events_in_total",
        "events into a filter",
        plugin_rows("filters", &field("events_in")),
    );
    metric(
        "logbridge_pipeline_filter_events_out_total",
        "events out of a filter",
        plugin_rows("filters", &field("events_out")),
    );
    metric(
        "logbridge_pipeline_output_events_total",
        "events an output acknowledged",
        plugin_rows("outputs", &field("events_out")),
    );
    metric(
        "logbridge_pipeline_output_failures_total",
        "failed output writes (retried)",
        plugin_rows("outputs", &field("failures")),
    );
    // The elasticsearch output's outcome counters (its `stats`), one metric each, by
    // their full names so that each can be found as it is served.
    for (name, stat, help) in [
        (
            "logbridge_elasticsearch_indexed_total",
            "indexed",
            "documents Elasticsearch indexed",
        ),
        (
            "logbridge_elasticsearch_conflicts_total",
            "conflicts",
            "documents already there (409, a replay)",
        ),
        (
            "logbridge_elasticsearch_retried_total",
            "retried",
            "documents retried after 429, 5xx or connection errors",
        ),
        (
            "logbridge_elasticsearch_dead_lettered_total",
            "dead_lettered",
            "documents sent to the dead-letter topic",
        ),
        (
            "logbridge_elasticsearch_bulk_requests_total",
            "bulk_requests",
            "bulk requests sent",
        ),
        (
            "logbridge_elasticsearch_bulk_failures_total",
            "bulk_failures",
            "bulk requests that failed as a whole",
        ),
    ] {
        let rows = plugin_rows("outputs", &|o: &Value| o["elasticsearch"][stat].as_i64());
        metric(name, help, rows);
    }
    metric(
        "logbridge_pipeline_consumer_lag",
        "records in the log not yet committed by the pipeline",
        pipelines
            .iter()
            .flat_map(|p| {
                p["consumer"]["partitions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |c| {
                        (
                            format!(
                                "pipeline=\"{}\",topic=\"{}\",partition=\"{}\"",
                                esc(&p["name"]),
                                esc(&c["topic"]),
                                c["partition"]
                            ),
                            c["lag"].as_i64().unwrap_or(0),
                        )
                    })
            })
            .collect(),
    );
    out
}
