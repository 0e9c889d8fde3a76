//! The Beats listener: Lumberjack v1/v2 connections from Filebeat's `output.logstash`
//! (and older forwarders). Events of a window are routed to topics, appended, and only
//! then acknowledged with the window's last sequence number; while an append is in
//! progress the server sends `ACK 0` keep-alives each second, which Filebeat reads as
//! "still working".
//!
//! With `[beats_tls]` the listener speaks TLS only (optionally requiring client
//! certificates); the handshake must finish within 10 s.
//!
//! Bounds: a frame (and a decompressed payload) over `beats_max_frame_bytes` closes the
//! connection, so does a window whose events exceed that size in total or number
//! (`beats_max_window_events`, see `window.rs`), a client silent between frames for
//! `beats_client_inactivity_timeout_ms`, and a frame not whole within
//! `request_frame_timeout_ms` of its first byte — the frame is timed, not each byte.
//! A large frame's declared size is reserved from the memory budget shared with the
//! Kafka listener before it is read, and the events of the window being assembled hold
//! their bytes of the budget until the window is written. The socket is not read while a window is being
//! written: back-pressure reaches the shipper, not our memory.
//! Invalid JSON in an event is refused with one log line and acknowledged with its
//! window (the shipper cannot fix it by resending).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use tokio::time::Instant;

use super::frame;
use super::routing::Router;
use super::window::{Window, WindowLimits};
use crate::broker::Broker;
use crate::net::{MemoryBudget, MemoryPermit};
use crate::protocol::records::OutRecord;

pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    router: Arc<Router>,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    memory: Arc<MemoryBudget>,
    shutdown: watch::Receiver<bool>,
) {
    let stop = shutdown.clone();
    crate::net::accept_loop(listener, max_connections, stop, "beats", move |stream, peer| {
        let (broker, router, shutdown, tls, memory) =
            (broker.clone(), router.clone(), shutdown.clone(), tls.clone(), memory.clone());
        async move {
            let result = match tls {
                None => connection(broker, router, memory, stream, peer, shutdown).await,
                Some(acceptor) => match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => connection(broker, router, memory, tls_stream, peer, shutdown).await,
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, error = %e, "closing beats connection: TLS handshake failed");
                        Ok(())
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "closing beats connection: TLS handshake timed out");
                        Ok(())
                    }
                },
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "beats connection ended with an i/o error");
            }
        }
    })
    .await
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    broker: Arc<Broker>,
    router: Arc<Router>,
    memory: Arc<MemoryBudget>,
    mut stream: S,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = WindowLimits {
        max_bytes: broker.settings.beats_max_frame_bytes,
        max_events: broker.settings.beats_max_window_events,
    };
    let idle = Duration::from_millis(broker.settings.beats_client_inactivity_timeout_ms);
    let frame_timeout = Duration::from_millis(broker.settings.request_frame_timeout_ms).min(idle);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut window = Window::default();
    // When the first byte of the frame at the front of `buf` arrived (None: `buf` is
    // empty), and the memory its declared size holds.
    let mut frame_started: Option<Instant> = None;
    let mut permit: Option<MemoryPermit> = None;
    // The budget held for the events of the window being assembled.
    let mut window_permits: Vec<MemoryPermit> = Vec::new();
    let mut covered = 0usize;
    loop {
        // Handle every whole frame already received.
        loop {
            let frame = match frame::decode(&mut buf, limits.max_bytes) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing beats connection: bad frame");
                    return Ok(());
                }
            };
            frame_started = None;
            permit = None;
            if buf.capacity() > 1024 * 1024 && buf.len() < 64 * 1024 {
                // What is left shares a large frame's allocation: copy it out so the
                // allocation goes when the window does.
                buf = BytesMut::from(&buf[..]);
            }
            if let Err(e) = window.take_frame(frame, limits) {
                tracing::warn!(%peer, error = %e, "closing beats connection: bad frame");
                return Ok(());
            }
            // The window's events (inflated payloads included) count against the
            // memory budget until the window is written, like the frames they came in.
            if window.bytes() > covered {
                let more = window.bytes() - covered;
                // From the large pool, and not for ever: connections holding parts of
                // windows must not wait on each other, nor on the small requests' room.
                let reserved = tokio::select! {
                    _ = shutdown.changed() => return Ok(()),
                    p = tokio::time::timeout(frame_timeout, memory.reserve_large(more)) => p,
                };
                let Ok(Some(reserved)) = reserved else {
                    tracing::warn!(%peer, bytes = window.bytes(), "closing beats connection: no memory for its window within the frame timeout (queued_max_request_bytes)");
                    return Ok(());
                };
                window_permits.push(reserved);
                covered = window.bytes();
            }
            if window.is_complete() {
                let events = window.take_events();
                let written = write_window(&broker, &router, &mut stream, peer, events).await?;
                window_permits.clear();
                covered = 0;
                if !written {
                    return Ok(());
                }
            }
        }
        if buf.is_empty() {
            frame_started = None;
        } else {
            frame_started.get_or_insert_with(Instant::now);
            if permit.is_none() {
                if let Some(len) = frame::declared_len(&buf).filter(|l| *l > buf.len()) {
                    // A large frame's bytes are reserved before they are read; while
                    // the budget is spent the socket is not read.
                    let reserved = tokio::select! {
                        _ = shutdown.changed() => return Ok(()),
                        p = memory.reserve(len) => p,
                    };
                    let Some(reserved) = reserved else {
                        tracing::warn!(%peer, len, "closing beats connection: frame exceeds queued_max_request_bytes");
                        return Ok(());
                    };
                    permit = Some(reserved);
                    frame_started = Some(Instant::now());
                    buf.reserve(len - buf.len());
                }
            }
        }
        // Between frames a shipper may stay silent for the inactivity timeout; once a
        // frame has begun, it must arrive whole in time, however slowly it trickles.
        let timer = match frame_started {
            None => idle,
            Some(t) => (t + frame_timeout).saturating_duration_since(Instant::now()),
        };
        let read = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            r = tokio::time::timeout(timer, stream.read_buf(&mut buf)) => r,
        };
        match read {
            Err(_) if frame_started.is_none() => {
                tracing::info!(%peer, "closing idle beats connection (beats_client_inactivity_timeout_ms)");
                return Ok(());
            }
            Err(_) => {
                tracing::warn!(%peer, buffered = buf.len(), "closing beats connection: frame not completed in time");
                return Ok(());
            }
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// Routes, appends and acknowledges one window. Returns false when the connection
/// must close (the append failed: the shipper will resend the unacknowledged window).
async fn write_window<S: AsyncWrite + Unpin>(
    broker: &Arc<Broker>,
    router: &Router,
    stream: &mut S,
    peer: SocketAddr,
    events: Vec<(u32, Bytes)>,
) -> std::io::Result<bool> {
    let last_seq = events.iter().map(|(s, _)| *s).max().unwrap_or(0);
    let remote = Bytes::from(peer.to_string());
    let mut by_topic: BTreeMap<String, Vec<OutRecord>> = BTreeMap::new();
    for (seq, payload) in events {
        let parsed: serde_json::Value = match serde_json::from_slice(&payload) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%peer, seq, error = %e, "refusing beats event: invalid JSON");
                continue;
            }
        };
        by_topic
            .entry(router.topic(&parsed))
            .or_default()
            .push(OutRecord {
                key: router.key(&parsed).map(Bytes::from),
                value: Some(payload),
                headers: vec![
                    ("source".into(), Bytes::from_static(b"beats")),
                    ("remote_addr".into(), remote.clone()),
                ],
            });
    }
    let b = broker.clone();
    let mut append = tokio::task::spawn_blocking(move || -> Result<(), String> {
        for (topic, records) in by_topic {
            let report = b
                .ingest(&topic, records)
                .map_err(|e| format!("{topic}: {e}"))?;
            // The shipper cannot make a record smaller by resending it: refused
            // records are logged and acknowledged with their window.
            for (_, why) in report.refused {
                tracing::warn!(%peer, topic, reason = %why, "refusing beats event");
            }
        }
        Ok(())
    });
    let mut keepalive = tokio::time::interval(Duration::from_secs(1));
    keepalive.tick().await;
    let result = loop {
        tokio::select! {
            r = &mut append => break r,
            _ = keepalive.tick() => stream.write_all(&frame::ack(0)).await?,
        }
    };
    match result {
        Ok(Ok(())) => {
            stream.write_all(&frame::ack(last_seq)).await?;
            Ok(true)
        }
        Ok(Err(e)) => {
            tracing::error!(%peer, error = %e, "closing beats connection: cannot append window");
            Ok(false)
        }
        Err(e) => {
            tracing::error!(%peer, error = %e, "closing beats connection: append task failed");
            Ok(false)
        }
    }
}
