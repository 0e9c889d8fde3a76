//! The HTTP listener (axum): `GET /health` for readiness and liveness, `GET /topics`
//! with each partition's offsets and size, `GET /groups` and `GET /groups/{id}` with
//! consumer groups, their members, committed offsets and lag, `GET /pipelines` with
//! each pipeline's counters and lag, all as JSON; `GET /metrics` in Prometheus' text
//! format; and the
//! Elasticsearch-compatible ingest endpoints of `bulk.rs`. Every response carries
//! `X-Elastic-Product: Elasticsearch`, which Elasticsearch clients check.

pub mod bulk;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::broker::Broker;
use crate::group::consumer_protocol::parse_assignment;

/// The running pipelines, shared with the HTTP views.
pub type SharedPipelines = Arc<tokio::sync::Mutex<crate::pipeline::service::PipelineSet>>;

pub fn router(broker: Arc<Broker>, pipelines: SharedPipelines) -> Router {
    let max_body = broker.settings.http_max_content_length;
    Router::new()
        .route("/", get(bulk::root))
        .route("/_bulk", post(bulk::bulk_any).put(bulk::bulk_any))
        .route(
            "/:index/_bulk",
            post(bulk::bulk_index).put(bulk::bulk_index),
        )
        .route("/ingest/:topic", post(bulk::ingest_lines))
        .route("/health", get(health))
        .route("/topics", get(topics))
        .route("/groups", get(groups))
        .route("/groups/:id", get(group))
        .route("/pipelines", get(pipelines_view))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::Extension(pipelines))
        .layer(axum::middleware::map_response(elastic_product_header))
        .with_state(broker)
}

/// Every pipeline with its event counts, per-plugin counts and consumer lag.
async fn pipelines_view(
    axum::Extension(pipelines): axum::Extension<SharedPipelines>,
) -> Json<serde_json::Value> {
    Json(pipelines.lock().await.snapshot().await)
}

/// Prometheus text: per-partition log offsets and the pipelines' counters and lag.
async fn metrics(
    State(broker): State<Arc<Broker>>,
    axum::Extension(pipelines): axum::Extension<SharedPipelines>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    let mut out = String::from(
        "# HELP logbridge_log_end_offset The next offset of a partition\n# TYPE logbridge_log_end_offset gauge\n",
    );
    for t in broker.registry.list() {
        for p in t.partitions.read().iter() {
            let end = p.log.lock().log_end_offset();
            out.push_str(&format!(
                "logbridge_log_end_offset{{topic=\"{}\",partition=\"{}\"}} {end}\n",
                t.name, p.index
            ));
        }
    }
    let snapshot = pipelines.lock().await.snapshot().await;
    out.push_str(&crate::pipeline::service::prometheus(&snapshot));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
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

async fn groups(State(broker): State<Arc<Broker>>) -> Json<serde_json::Value> {
    let groups: Vec<_> = broker
        .groups
        .list()
        .into_iter()
        .map(|g| json!({"group": g.id, "state": g.state, "protocol_type": g.protocol_type, "members": g.members.len()}))
        .collect();
    Json(json!({ "groups": groups }))
}

/// The same view as `logbridge groups describe`: members with their assignments, and
/// per partition the committed offset, log end offset and lag.
async fn group(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
) -> (StatusCode, Json<serde_json::Value>) {
    let Some(view) = broker.groups.describe(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("consumer group '{id}' does not exist")})),
        );
    };
    let consumer = view.protocol_type == "consumer";
    let members: Vec<_> = view
        .members
        .iter()
        .map(|m| {
            let assigned: Vec<_> = if consumer {
                parse_assignment(&m.assignment)
            } else {
                vec![]
            }
            .into_iter()
            .map(|(t, ps)| json!({"topic": t, "partitions": ps}))
            .collect();
            json!({
                "member_id": m.member_id,
                "group_instance_id": m.instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "assignment": assigned,
            })
        })
        .collect();
    let offsets: Vec<_> = broker
        .groups
        .offsets
        .all(&id)
        .into_iter()
        .map(|((t, p), c)| {
            let end = broker
                .registry
                .get(&t)
                .and_then(|tp| tp.partition(p))
                .map(|part| part.log.lock().log_end_offset());
            json!({
                "topic": t,
                "partition": p,
                "committed_offset": c.offset,
                "metadata": c.metadata,
                "log_end_offset": end,
                "lag": end.map(|e| (e - c.offset).max(0)),
            })
        })
        .collect();
    (
        StatusCode::OK,
        Json(json!({
            "group": view.id,
            "state": view.state,
            "protocol_type": view.protocol_type,
            "protocol": view.protocol,
            "generation": view.generation,
            "members": members,
            "offsets": offsets,
        })),
    )
}

async fn elastic_product_header(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-elastic-product",
        axum::http::HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// Serves the router on `listener` until `shutdown`: plain HTTP through axum, or with
/// `tls`, HTTPS (HTTP/1.1 and h2) through hyper on top of rustls.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(acceptor) = tls else {
        let result = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "http listener failed");
        }
        return;
    };
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "https accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        // ConnectInfo is read from request extensions, so each connection adds its own.
        let svc = app.clone().layer(axum::Extension(ConnectInfo(peer)));
        let mut stop = shutdown.clone();
        tasks.spawn(async move {
            let stream = match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "closing https connection: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%peer, "closing https connection: TLS handshake timed out");
                    return;
                }
            };
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(svc),
            );
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "https connection ended with an error");
                    }
                }
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}
