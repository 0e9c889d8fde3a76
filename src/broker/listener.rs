//! The Kafka TCP listener: accepts connections (bounded by `max_connections`), reads
//! size-prefixed frames (bounded by `socket.request.max.bytes`), hands decoded requests
//! to `Broker::handle` one at a time per connection — so responses leave in request
//! order, as Kafka guarantees — and writes the responses back.
//!
//! Peers are bounded: connections by `max_connections`, frames by
//! `socket_request_max_bytes`, a started frame must complete within 30 s, and an idle
//! connection is closed after `connections_max_idle_ms` (Kafka's default, 10 minutes).
//! Bad input closes only the offending connection, with one log line; a request whose
//! API or version we do not implement is answered where Kafka defines an answer
//! (ApiVersions with UNSUPPORTED_VERSION) and otherwise closes the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::errors::code;
use super::Broker;
use crate::protocol::{decode_request, encode_response, DecodeError};

/// How long a client may take to send the rest of a frame once its size has arrived
/// (or `connections_max_idle_ms`, if shorter).
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves connections until `shutdown` becomes true; returns when every connection
/// has finished the request it was handling.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    let max = broker.settings.max_connections;
    let stop = shutdown.clone();
    crate::net::accept_loop(listener, max, stop, "kafka", move |stream, peer| {
        let (broker, shutdown) = (broker.clone(), shutdown.clone());
        async move {
            if let Err(e) = connection(broker, stream, peer, shutdown).await {
                tracing::debug!(%peer, error = %e, "connection ended with an i/o error");
            }
        }
    })
    .await
}

async fn connection(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    let max = broker.settings.socket_request_max_bytes;
    let idle = Duration::from_millis(broker.settings.connections_max_idle_ms);
    loop {
        let size = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            _ = tokio::time::sleep(idle) => {
                tracing::debug!(%peer, "closing idle connection (connections_max_idle_ms)");
                return Ok(());
            }
            s = rd.read_i32() => match s {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            },
        };
        if size < 0 || size as usize > max {
            tracing::warn!(%peer, size, max, "closing connection: request size outside socket.request.max.bytes");
            return Ok(());
        }
        let mut frame = BytesMut::zeroed(size as usize);
        match tokio::time::timeout(FRAME_TIMEOUT.min(idle), rd.read_exact(&mut frame)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(%peer, size, error = %e, "closing connection: truncated request frame");
                return Ok(());
            }
            Err(_) => {
                tracing::warn!(%peer, size, "closing connection: request frame not completed in time");
                return Ok(());
            }
        }
        let request = match decode_request(frame.freeze()) {
            Ok(r) => r,
            Err(DecodeError::UnsupportedVersion {
                api: ApiKey::ApiVersions,
                version,
                correlation_id,
            }) => {
                // KIP-511: answer with UNSUPPORTED_VERSION and our table, encoded as v0.
                tracing::info!(%peer, version, "ApiVersions at an unsupported version: answering with v0");
                let body = ResponseKind::ApiVersions(
                    ApiVersionsResponse::default()
                        .with_error_code(code(
                            kafka_protocol::error::ResponseError::UnsupportedVersion,
                        ))
                        .with_api_keys(super::api_versions::advertised()),
                );
                let bytes = encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
                    .map_err(std::io::Error::other)?;
                wr.write_all(&bytes).await?;
                wr.flush().await?;
                continue;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: cannot decode request");
                return Ok(());
            }
        };
        let api = request.api_key;
        let version = request.wire_version;
        let correlation_id = request.header.correlation_id;
        tracing::trace!(%peer, ?api, version, correlation_id, "request");
        if may_wait(api) {
            // Earlier (pipelined) responses must not wait behind a request that parks.
            wr.flush().await?;
        }
        if let Some(body) = broker.handle(request, peer).await {
            match encode_response(api, version, correlation_id, &body) {
                Ok(bytes) => wr.write_all(&bytes).await?,
                Err(e) => {
                    tracing::error!(%peer, ?api, version, error = %e, "closing connection: cannot encode response");
                    return Ok(());
                }
            }
        }
        // Pipelined requests that are already fully buffered share one flush; otherwise
        // write out now, before waiting on the socket.
        if !holds_whole_frame(rd.buffer()) {
            wr.flush().await?;
        }
    }
}

/// Requests whose handler may park for a long time: a long-polling Fetch, and
/// JoinGroup/SyncGroup waiting for their rebalance.
fn may_wait(api: ApiKey) -> bool {
    matches!(api, ApiKey::Fetch | ApiKey::JoinGroup | ApiKey::SyncGroup)
}

/// Whether `buf` starts with a complete size-prefixed frame.
fn holds_whole_frame(buf: &[u8]) -> bool {
    if buf.len() < 4 {
        return false;
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    size >= 0 && buf.len() - 4 >= size as usize
}
