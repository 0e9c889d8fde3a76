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
//! connection, so does a window whose events exceed that size in total, and a client
//! that sends nothing for `beats_client_inactivity_timeout_ms`. The socket is not read
//! while a window is being written: back-pressure reaches the shipper, not our memory.
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

use super::frame::{self, Frame, FrameError};
use super::routing::Router;
use crate::broker::Broker;
use crate::protocol::records::OutRecord;

/// One connection's pending window.
#[derive(Default)]
struct Window {
    size: Option<u32>,
    events: Vec<(u32, Bytes)>,
    bytes: usize,
}

pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    router: Arc<Router>,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) {
    let max = broker.settings.max_connections;
    let stop = shutdown.clone();
    crate::net::accept_loop(listener, max, stop, "beats", move |stream, peer| {
        let (broker, router, shutdown, tls) = (broker.clone(), router.clone(), shutdown.clone(), tls.clone());
        async move {
            let result = match tls {
                None => connection(broker, router, stream, peer, shutdown).await,
                Some(acceptor) => match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => connection(broker, router, tls_stream, peer, shutdown).await,
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
    mut stream: S,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let max = broker.settings.beats_max_frame_bytes;
    let idle = Duration::from_millis(broker.settings.beats_client_inactivity_timeout_ms);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut window = Window::default();
    loop {
        // Handle every whole frame already received.
        loop {
            let frame = match frame::decode(&mut buf, max) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing beats connection: bad frame");
                    return Ok(());
                }
            };
            if let Err(e) = take_frame(&mut window, frame, max) {
                tracing::warn!(%peer, error = %e, "closing beats connection: bad frame");
                return Ok(());
            }
            if window
                .size
                .is_some_and(|n| window.events.len() >= n as usize)
            {
                let events = std::mem::take(&mut window.events);
                window = Window::default();
                if !write_window(&broker, &router, &mut stream, peer, events).await? {
                    return Ok(());
                }
            }
        }
        let read = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            r = tokio::time::timeout(idle, stream.read_buf(&mut buf)) => r,
        };
        match read {
            Err(_) => {
                tracing::info!(%peer, "closing idle beats connection (beats_client_inactivity_timeout_ms)");
                return Ok(());
            }
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

fn take_frame(window: &mut Window, frame: Frame, max: usize) -> Result<(), FrameError> {
    match frame {
        Frame::Window(n) => window.size = Some(n),
        Frame::Json { seq, payload } => {
            window.bytes += payload.len();
            window.events.push((seq, payload));
        }
        Frame::Data { seq, pairs } => {
            let obj: serde_json::Map<String, serde_json::Value> = pairs
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            let payload = Bytes::from(serde_json::Value::Object(obj).to_string());
            window.bytes += payload.len();
            window.events.push((seq, payload));
        }
        Frame::Compressed(p) => {
            for f in frame::decode_compressed(&p, max, 8)? {
                take_frame(window, f, max)?;
            }
        }
    }
    if window.bytes > max {
        return Err(FrameError::TooLarge {
            size: window.bytes as u64,
            max,
        });
    }
    Ok(())
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
            b.ingest(&topic, records)
                .map_err(|e| format!("{topic}: {e}"))?;
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
