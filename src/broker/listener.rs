//! The Kafka TCP listener: accepts connections (bounded by `max_connections`), reads
//! size-prefixed frames (bounded by `socket.request.max.bytes`), hands decoded requests
//! to `Broker::handle_staged` one at a time per connection, in order, and writes the
//! responses back in request order, as Kafka guarantees. A produce with `acks=all`
//! is appended when it is read and answered once its ISR holds it: while it waits,
//! the connection's next requests are read and handled (at most
//! `MAX_WAITING_PER_CONNECTION` answers outstanding), so one partition's replication
//! round trips do not leave the connection idle; a writer task sends the answers in
//! order as each becomes ready.
//!
//! Peers are bounded: connections by `max_connections` (less where the descriptor
//! limit says so, see `net::connection_caps`), frames by `socket_request_max_bytes`,
//! the bytes of requests buffered across all connections by `queued_max_request_bytes`
//! (Kafka's `queued.max.request.bytes`: a connection whose request does not fit waits,
//! unread, for memory), a frame must complete within `request_frame_timeout_ms` of its
//! first byte (size prefix included), and a connection silent between requests is
//! closed after `connections_max_idle_ms` (Kafka's default, 10 minutes).
//! Bad input closes only the offending connection, with one log line; a request whose
//! API or version we do not implement is answered where Kafka defines an answer
//! (ApiVersions with UNSUPPORTED_VERSION) and otherwise closes the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use super::errors::code;
use super::Broker;
use crate::net::{MemoryBudget, MemoryPermit};
use crate::protocol::framing::{self, Front};
use crate::protocol::{decode_request, encode_response, DecodeError};

/// Serves connections until `shutdown` becomes true; returns when every connection
/// has finished the request it was handling.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    name: String,
    max_connections: usize,
    memory: Arc<MemoryBudget>,
    shutdown: watch::Receiver<bool>,
) {
    let stop = shutdown.clone();
    let name: Arc<str> = name.into();
    crate::net::accept_loop(
        listener,
        max_connections,
        stop,
        "kafka",
        move |stream, peer| {
            let (broker, shutdown, memory) = (broker.clone(), shutdown.clone(), memory.clone());
            let name = name.clone();
            async move {
                if let Err(e) = connection(broker, memory, stream, peer, &name, shutdown).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an i/o error");
                }
            }
        },
    )
    .await
}

/// Why reading the next frame ended the connection.
enum ReadEnd {
    /// The client closed, went idle, or shutdown began: nothing to log beyond debug.
    Quiet,
    /// The client broke a bound; the reason is logged once.
    Refused(String),
}

/// Reads until `buf` holds one whole frame and returns it, with the share of the
/// request memory budget it holds. Times the frame from its first byte: a client that
/// starts a request must finish it within `frame_timeout`, however it trickles it in;
/// between requests it may stay silent for `idle`.
async fn read_frame(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    limits: &Limits,
    memory: &MemoryBudget,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(Bytes, MemoryPermit), ReadEnd> {
    // Bytes already buffered (pipelined behind the last request) started a frame.
    let mut deadline: Option<Instant> =
        (!buf.is_empty()).then(|| Instant::now() + limits.frame_timeout);
    let mut permit: Option<MemoryPermit> = None;
    loop {
        let front =
            framing::front(buf, limits.max_frame).map_err(|e| ReadEnd::Refused(e.to_string()))?;
        let want = match front {
            Front::Empty => 8 * 1024,
            Front::PartialSize => framing::SIZE_LEN - buf.len(),
            Front::Frame { size, have } => {
                if permit.is_none() {
                    // Reserved before the body is read or allocated; while the budget
                    // is spent the socket is not read, so the client waits, not us.
                    let asked = Instant::now();
                    let reserved = tokio::select! {
                        _ = shutdown.changed() => return Err(ReadEnd::Quiet),
                        p = memory.reserve(size) => p,
                    };
                    permit = Some(reserved.ok_or_else(|| {
                        ReadEnd::Refused(format!(
                            "request of {size} bytes exceeds queued_max_request_bytes"
                        ))
                    })?);
                    // A wait for memory is ours, not the client's: its time is added
                    // to the frame's.
                    let waited = asked.elapsed();
                    deadline = deadline.map(|d| d + waited);
                }
                if have == size {
                    let frame = framing::take(buf, limits.max_frame)
                        .map_err(|e| ReadEnd::Refused(e.to_string()))?
                        .expect("a whole frame is buffered");
                    if frame.len() > 64 * 1024 {
                        // The bytes left behind share the frame's allocation and would
                        // keep all of it alive after the request: copy them out.
                        *buf = BytesMut::from(&buf[..]);
                    }
                    return Ok((frame, permit.expect("reserved above")));
                }
                size - have
            }
        };
        let timer = match deadline {
            None => limits.idle,
            Some(d) => d.saturating_duration_since(Instant::now()),
        };
        // Room for what the frame still needs (reserved above) or, between frames, 8
        // KiB; reading stops there, so little is buffered beyond the reserved frame.
        buf.reserve(want.max(8 * 1024));
        let mut bounded = (&mut *rd).take(want.max(8 * 1024) as u64);
        let read = tokio::select! {
            _ = shutdown.changed() => return Err(ReadEnd::Quiet),
            r = tokio::time::timeout(timer, bounded.read_buf(buf)) => r,
        };
        match read {
            Err(_) if deadline.is_none() => return Err(ReadEnd::Quiet),
            Err(_) => {
                return Err(ReadEnd::Refused(format!(
                    "request frame not completed within {} ms",
                    limits.frame_timeout.as_millis()
                )))
            }
            Ok(Ok(0)) if buf.is_empty() => return Err(ReadEnd::Quiet),
            Ok(Ok(0)) => {
                return Err(ReadEnd::Refused(
                    "connection closed in the middle of a request".into(),
                ))
            }
            Ok(Ok(_)) => {
                if deadline.is_none() {
                    deadline = Some(Instant::now() + limits.frame_timeout);
                }
            }
            // A reset between requests is how many clients hang up.
            Ok(Err(e)) if buf.is_empty() => {
                tracing::debug!(error = %e, "kafka connection ended between requests");
                return Err(ReadEnd::Quiet);
            }
            Ok(Err(e)) => {
                return Err(ReadEnd::Refused(format!(
                    "read failed in the middle of a request: {e}"
                )))
            }
        }
    }
}

/// The bounds one connection's reading is held to.
struct Limits {
    max_frame: usize,
    idle: Duration,
    frame_timeout: Duration,
}

/// Answers a connection may have outstanding (written in order by its writer task)
/// before the next request is read: librdkafka's default in-flight window.
const MAX_WAITING_PER_CONNECTION: usize = 5;

/// One answer on its way to the writer: the encoded response, none (`acks=0`), or
/// Err when it cannot be encoded (the connection is closed).
type Answer = tokio::sync::oneshot::Receiver<Result<Option<Bytes>, ()>>;

async fn connection(
    broker: Arc<Broker>,
    memory: Arc<MemoryBudget>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: &str,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (mut rd, wr) = stream.into_split();
    let mut buf = BytesMut::new();
    let (answers, mut queue) = tokio::sync::mpsc::channel::<Answer>(MAX_WAITING_PER_CONNECTION);
    // The writer: answers in request order, flushed whenever it would wait — for the
    // next answer to be ready or for the next request to be read.
    let writer = tokio::spawn(async move {
        let mut wr = BufWriter::with_capacity(64 * 1024, wr);
        while let Some(mut answer) = queue.recv().await {
            let ready = match answer.try_recv() {
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                    wr.flush().await?;
                    answer.await
                }
                Ok(r) => Ok(r),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => break,
            };
            match ready {
                Ok(Ok(Some(bytes))) => wr.write_all(&bytes).await?,
                Ok(Ok(None)) => {}
                // Not encodable, or its handler gone: the connection ends here.
                Ok(Err(())) | Err(_) => break,
            }
            if queue.is_empty() {
                wr.flush().await?;
            }
        }
        wr.flush().await
    });
    let idle = Duration::from_millis(broker.settings.connections_max_idle_ms);
    let limits = Limits {
        max_frame: broker.settings.socket_request_max_bytes,
        idle,
        frame_timeout: Duration::from_millis(broker.settings.request_frame_timeout_ms).min(idle),
    };
    let read = async {
        loop {
            let (frame, _permit) =
                match read_frame(&mut rd, &mut buf, &limits, &memory, &mut shutdown).await {
                    Ok(f) => f,
                    Err(ReadEnd::Quiet) => return,
                    Err(ReadEnd::Refused(why)) => {
                        tracing::warn!(%peer, reason = %why, "closing kafka connection");
                        return;
                    }
                };
            let (done, answer) = tokio::sync::oneshot::channel();
            if answers.send(answer).await.is_err() {
                // The writer stopped (the peer went away, or an answer failed).
                return;
            }
            let request = match decode_request(frame) {
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
                        .map_err(
                            |e| tracing::error!(%peer, error = %e, "cannot encode ApiVersions"),
                        )
                        .map(Some);
                    let _ = done.send(bytes);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection: cannot decode request");
                    let _ = done.send(Err(()));
                    return;
                }
            };
            let api = request.api_key;
            let version = request.wire_version;
            let correlation_id = request.header.correlation_id;
            tracing::trace!(%peer, ?api, version, correlation_id, "request");
            let encode = move |body: Option<ResponseKind>| -> Result<Option<Bytes>, ()> {
                match body {
                    None => Ok(None),
                    Some(body) => encode_response(api, version, correlation_id, &body)
                        .map(Some)
                        .map_err(|e| {
                            tracing::error!(%peer, ?api, version, error = %e, "closing connection: cannot encode response");
                        }),
                }
            };
            match broker.handle_staged(request, peer, listener).await {
                super::Handled::Now(body) => {
                    let encoded = encode(body);
                    let failed = encoded.is_err();
                    let _ = done.send(encoded);
                    if failed {
                        return;
                    }
                }
                super::Handled::Later(waiting) => {
                    tokio::spawn(async move {
                        let _ = done.send(encode(Some(waiting.await)));
                    });
                }
            }
        }
    };
    read.await;
    // No more requests: the writer sends what is outstanding, then ends.
    drop(answers);
    writer.await.map_err(std::io::Error::other)?
}
