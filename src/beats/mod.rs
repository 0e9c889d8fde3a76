//! Beats (Lumberjack) ingest: framing (`frame`), assembling windows from frames
//! (`window`), routing events to topics (`routing`), and the listener that appends
//! windows and acknowledges them (`server`).
pub mod frame;
pub mod routing;
pub mod server;
pub mod window;
