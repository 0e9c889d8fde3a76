//! Assembling Lumberjack windows from frames, no I/O: a window frame announces how many
//! events come, then JSON (v2) or key/value (v1) events arrive, directly or inside
//! compressed frames, until the window is complete and can be appended and acked.
//!
//! Bounds: a window holds at most `max_events` events and `max_bytes` bytes of event
//! payloads, whatever size the client announced (a window size of 10^9 is just a
//! number); a compressed frame is decoded within the same bounds, so its events are
//! never all in memory before the count is checked.

use bytes::Bytes;

use super::frame::{self, Frame, FrameError};

/// The bounds a window is held to.
#[derive(Debug, Clone, Copy)]
pub struct WindowLimits {
    /// Largest frame, decompressed payload, and total of a window's events, in bytes.
    pub max_bytes: usize,
    /// Most events in one window.
    pub max_events: usize,
}

/// One connection's pending window.
#[derive(Debug, Default)]
pub struct Window {
    size: Option<u32>,
    events: Vec<(u32, Bytes)>,
    bytes: usize,
}

impl Window {
    /// Whether the announced number of events has arrived.
    pub fn is_complete(&self) -> bool {
        self.size.is_some_and(|n| self.events.len() >= n as usize)
    }

    /// Takes the events out, leaving an empty window.
    pub fn take_events(&mut self) -> Vec<(u32, Bytes)> {
        let events = std::mem::take(&mut self.events);
        *self = Window::default();
        events
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Bytes of event payloads held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Adds one decoded frame to the window.
    pub fn take_frame(&mut self, frame: Frame, limits: WindowLimits) -> Result<(), FrameError> {
        match frame {
            Frame::Window(n) => self.size = Some(n),
            Frame::Json { seq, payload } => self.push(seq, payload, limits)?,
            Frame::Data { seq, pairs } => {
                let obj: serde_json::Map<String, serde_json::Value> = pairs
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect();
                let payload = Bytes::from(serde_json::Value::Object(obj).to_string());
                self.push(seq, payload, limits)?;
            }
            Frame::Compressed(p) => {
                let room = limits.max_events.saturating_sub(self.events.len());
                let inner = frame::decode_compressed(&p, limits.max_bytes, 8, room).map_err(
                    |e| match e {
                        FrameError::TooManyEvents { .. } => FrameError::TooManyEvents {
                            max: limits.max_events,
                        },
                        other => other,
                    },
                )?;
                for f in inner {
                    self.take_frame(f, limits)?;
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, seq: u32, payload: Bytes, limits: WindowLimits) -> Result<(), FrameError> {
        if self.events.len() >= limits.max_events {
            return Err(FrameError::TooManyEvents {
                max: limits.max_events,
            });
        }
        self.bytes += payload.len();
        if self.bytes > limits.max_bytes {
            return Err(FrameError::TooLarge {
                size: self.bytes as u64,
                max: limits.max_bytes,
            });
        }
        self.events.push((seq, payload));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use std::io::Write;

    use super::*;

    const LIMITS: WindowLimits = WindowLimits {
        max_bytes: 1 << 20,
        max_events: 100,
    };

    #[test]
    fn a_window_completes_at_its_announced_size() {
        let mut w = Window::default();
        w.take_frame(Frame::Window(2), LIMITS).unwrap();
        w.take_frame(
            Frame::Json {
                seq: 1,
                payload: Bytes::from_static(b"{}"),
            },
            LIMITS,
        )
        .unwrap();
        assert!(!w.is_complete());
        w.take_frame(
            Frame::Data {
                seq: 2,
                pairs: vec![("line".into(), "x".into())],
            },
            LIMITS,
        )
        .unwrap();
        assert!(w.is_complete());
        let events = w.take_events();
        assert_eq!(events[1], (2, Bytes::from_static(br#"{"line":"x"}"#)));
        assert!(w.is_empty() && !w.is_complete());
    }

    #[test]
    fn a_huge_announced_window_is_held_to_the_event_bound() {
        let mut w = Window::default();
        w.take_frame(Frame::Window(1_000_000_000), LIMITS).unwrap();
        let mut inner = BytesMut::new();
        for i in 0..150 {
            frame::encode_json(i, b"{}", &mut inner);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&inner).unwrap();
        let p = Bytes::from(z.finish().unwrap());
        assert_eq!(
            w.take_frame(Frame::Compressed(p), LIMITS),
            Err(FrameError::TooManyEvents { max: 100 })
        );
    }
}
