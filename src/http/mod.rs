//! The HTTP listener (axum): `GET /health` for readiness and liveness, `GET /topics`
//! with each partition's offsets and size, `GET /groups` and `GET /groups/{id}` with
//! consumer groups, their members, committed offsets and lag, `GET /pipelines` with
//! each pipeline's counters and lag, all as JSON; `GET /metrics` in Prometheus' text
//! format; and the
//! Elasticsearch-compatible ingest endpoints of `bulk.rs`. Every response carries
//! `X-Elastic-Product: Elasticsearch`, which Elasticsearch clients check.

pub mod bulk;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::broker::Broker;
use crate::group::consumer_protocol::parse_assignment;
use crate::storage::disk::DiskState;

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
        .route("/cluster", get(cluster))
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
        for p in t.local_replicas() {
            let end = p.offsets().log_end;
            out.push_str(&format!(
                "logbridge_log_end_offset{{topic=\"{}\",partition=\"{}\"}} {end}\n",
                t.name, p.index
            ));
        }
    }
    if let Some((space, state)) = broker.disk() {
        out.push_str(&format!(
            "# HELP logbridge_disk_free_bytes Free bytes on the data directory's file system\n# TYPE logbridge_disk_free_bytes gauge\nlogbridge_disk_free_bytes {}\n\
             # HELP logbridge_disk_total_bytes Size of the data directory's file system\n# TYPE logbridge_disk_total_bytes gauge\nlogbridge_disk_total_bytes {}\n\
             # HELP logbridge_disk_low 1 while free space is under disk_low_free_bytes (or the disk is full)\n# TYPE logbridge_disk_low gauge\nlogbridge_disk_low {}\n\
             # HELP logbridge_disk_full 1 while the disk is full and appends are refused\n# TYPE logbridge_disk_full gauge\nlogbridge_disk_full {}\n",
            space.free_bytes,
            space.total_bytes,
            u8::from(state != DiskState::Ok),
            u8::from(state == DiskState::Full),
        ));
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

/// 200 once the broker is serving (the router is only started after the Kafka listener
/// is bound and accepting) — also while the disk is low or full: the process is alive
/// and serves reads. The body says how the disk stands.
async fn health(State(broker): State<Arc<Broker>>) -> (StatusCode, Json<serde_json::Value>) {
    let disk = match broker.disk() {
        Some((space, state)) => json!({
            "state": state.name(),
            "free_bytes": space.free_bytes,
            "total_bytes": space.total_bytes,
            "low_below_bytes": broker.settings.disk_low_free_bytes,
        }),
        None => json!({"state": "unknown"}),
    };
    // In a cluster: 200 only once the node has found the metadata leader and is
    // registered, so a script waiting on every node's /health can then create topics.
    if !broker.ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "joining", "disk": disk, "cluster": broker.cluster_status()})),
        );
    }
    (StatusCode::OK, Json(json!({"status": "ok", "disk": disk})))
}

async fn cluster(State(broker): State<Arc<Broker>>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(broker.cluster_status()).unwrap_or_default())
}

async fn topics(State(broker): State<Arc<Broker>>) -> Json<serde_json::Value> {
    let topics: Vec<_> = broker
        .registry
        .list()
        .iter()
        .map(|t| {
            let partitions: Vec<_> = t
                .local_replicas()
                .iter()
                .map(|p| {
                    let s = p.stats();
                    json!({
                        "partition": p.index,
                        "log_start_offset": s.offsets.log_start,
                        "log_end_offset": s.offsets.log_end,
                        "size_bytes": s.size_bytes,
                        "segments": s.segments,
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
                .map(|part| part.offsets().log_end);
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

/// The bounds every HTTP connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body: usize,
}

impl HttpLimits {
    pub fn from_settings(s: &crate::config::Settings, max_connections: usize) -> HttpLimits {
        HttpLimits {
            max_connections,
            header_read_timeout: Duration::from_millis(s.http_header_read_timeout_ms),
            request_timeout: Duration::from_millis(s.http_request_timeout_ms),
            max_body: s.http_max_content_length,
        }
    }
}

/// Refuses a declared body over the limit before reading it (413), and answers 408
/// when a request — a slow body included — is not done within the request timeout.
async fn guard(
    limits: HttpLimits,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        let reason = format!(
            "request body of {} bytes exceeds http_max_content_length ({} bytes)",
            declared.unwrap_or_default(),
            limits.max_body
        );
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"error": {"type": "content_too_long_exception", "reason": reason}, "status": 413})),
        )
            .into_response();
    }
    match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            Json(json!({"error": {"type": "timeout_exception", "reason": format!("request not completed within {} ms", limits.request_timeout.as_millis())}, "status": 408})),
        )
            .into_response(),
    }
}

/// Serves the router on `listener` until `shutdown`: HTTP/1.1 and h2 through hyper,
/// in plain text or, with `tls`, over rustls. At most `max_connections` at once; a
/// request's headers must arrive within `header_read_timeout` (which also closes
/// keep-alive connections idle that long), and a whole request must finish within
/// `request_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: HttpLimits,
    shutdown: watch::Receiver<bool>,
) {
    let app = app.layer(axum::middleware::from_fn(move |req, next| {
        guard(limits, req, next)
    }));
    let stop = shutdown.clone();
    crate::net::accept_loop(listener, limits.max_connections, stop, "http", move |tcp, peer| {
        // ConnectInfo is read from request extensions, so each connection adds its own.
        let svc = app.clone().layer(axum::Extension(ConnectInfo(peer)));
        let tls = tls.clone();
        let stop = shutdown.clone();
        async move {
            match tls {
                None => serve_connection(tcp, false, svc, limits, stop, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => {
                            let h2 = s.get_ref().1.alpn_protocol() == Some(b"h2");
                            serve_connection(s, h2, svc, limits, stop, peer).await
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, error = %e, "closing https connection: TLS handshake failed")
                        }
                        Err(_) => tracing::warn!(%peer, "closing https connection: TLS handshake timed out"),
                    }
                }
            }
        }
    })
    .await
}

/// Serves one connection as HTTP/1.1, or as h2 when TLS negotiated it (ALPN). The
/// protocol is decided up front, never by waiting for the client's first bytes, so the
/// header read timeout covers a client that sends nothing at all.
async fn serve_connection<S>(
    stream: S,
    h2: bool,
    svc: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    let mut builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let conn = builder.serve_connection(
        hyper_util::rt::TokioIo::new(stream),
        hyper_util::service::TowerToHyperService::new(svc),
    );
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "http connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        }
    }
}
