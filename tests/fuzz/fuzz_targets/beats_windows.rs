//! A Beats connection's bytes as the listener handles them: frames decoded, assembled
//! into windows within their event and byte bounds, each event routed to a topic —
//! never a panic, never an internal topic, never more events held than the bound.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logbridge::beats::frame;
use logbridge::beats::routing::Router;
use logbridge::beats::window::{Window, WindowLimits};

fuzz_target!(|data: &[u8]| {
    let limits = WindowLimits { max_bytes: 1 << 20, max_events: 64 };
    let router = Router::new("%{[fields][log_topic]}", "beats", Some("[host][name]"));
    let mut buf = BytesMut::from(data);
    let mut window = Window::default();
    while let Ok(Some(f)) = frame::decode(&mut buf, limits.max_bytes) {
        if window.take_frame(f, limits).is_err() {
            return;
        }
        assert!(window.len() <= limits.max_events);
        if window.is_complete() {
            for (_, payload) in window.take_events() {
                if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&payload) {
                    let topic = router.topic(&event);
                    assert!(!logbridge::broker::registry::is_internal(&topic));
                    let _ = router.key(&event);
                }
            }
        }
    }
});
