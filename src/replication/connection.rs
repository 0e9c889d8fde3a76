//! One request/answer exchange with another node's Kafka listener, on a connection kept
//! for the next exchange: what the forwarder and the follower fetchers share. Speaks
//! only framing (a 4-byte size, then the body); what the bytes mean is `protocol/`'s.
//!
//! Invariants: the answer's size is checked against `max_answer` before anything is
//! allocated; a connection on which an exchange failed (or was cancelled part-way) is
//! dropped, never reused, so the next exchange never reads a stale answer.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("an answer of {0} bytes")]
    TooLarge(i32),
}

/// Sends `frame` (size prefix included) on `conn` — connecting to `addr` first when
/// there is none — and reads one size-prefixed answer.
pub async fn exchange(
    conn: &mut Option<TcpStream>,
    addr: &str,
    frame: &[u8],
    max_answer: usize,
) -> Result<Bytes, ExchangeError> {
    // Taken out for the exchange: a failed or cancelled one leaves no stream behind.
    let mut s = match conn.take() {
        Some(s) => s,
        None => {
            let s = TcpStream::connect(addr)
                .await
                .map_err(|source| ExchangeError::Connect {
                    addr: addr.to_string(),
                    source,
                })?;
            let _ = s.set_nodelay(true);
            s
        }
    };
    let io = |source| ExchangeError::Io {
        addr: addr.to_string(),
        source,
    };
    s.write_all(frame).await.map_err(io)?;
    let size = s.read_i32().await.map_err(io)?;
    if size < 0 || size as usize > max_answer {
        return Err(ExchangeError::TooLarge(size));
    }
    let mut buf = BytesMut::zeroed(size as usize);
    s.read_exact(&mut buf).await.map_err(io)?;
    *conn = Some(s);
    Ok(buf.freeze())
}
