//! The HTTP listener (axum): `GET /health` for readiness and liveness, and
//! `GET /topics` with each partition's offsets and size as JSON. Ingest and admin
//! endpoints arrive with later issues.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::broker::Broker;

pub fn router(broker: Arc<Broker>) -> Router {
    Router::new().route("/health", get(health)).route("/topics", get(topics)).with_state(broker)
}

/// 200 once the broker is serving: the router is only started after the Kafka listener
/// is bound and accepting.
async fn health() -> (StatusCode, Json<serde_json::Value>) {
    (StatusCode::OK, Json(json!({"status": "ok"})))
}

async fn topics(State(broker): State<Arc<Broker>>) -> Json<serde_json::Value> {
    let topics: Vec<_> = broker
        .registry
        .list()
        .iter()
        .map(|t| {
            let partitions: Vec<_> = t
                .partitions
                .read()
                .iter()
                .map(|p| {
                    let log = p.log.lock();
                    json!({
                        "partition": p.index,
                        "log_start_offset": log.log_start_offset(),
                        "log_end_offset": log.log_end_offset(),
                        "size_bytes": log.size_bytes(),
                        "segments": log.segment_count(),
                    })
                })
                .collect();
            json!({"name": t.name, "id": t.id.to_string(), "partitions": partitions})
        })
        .collect();
    Json(json!({ "topics": topics }))
}
