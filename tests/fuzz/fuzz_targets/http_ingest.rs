//! A body sent to `/ingest/{topic}` or `_bulk`: the gunzip with its bound, and the
//! line splitting into records, never panic; gunzipped output never passes the limit.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut gzip = HeaderMap::new();
    gzip.insert("content-encoding", HeaderValue::from_static("gzip"));
    if let Ok(body) = logbridge::http::bulk::body_bytes(&gzip, bytes::Bytes::copy_from_slice(data), 1 << 20) {
        assert!(body.len() <= 1 << 20);
    }
    let (lines, records) = logbridge::http::bulk::ingest_records(data, "127.0.0.1:1");
    assert_eq!(lines.len(), records.len());
    assert!(lines.windows(2).all(|w| w[0] < w[1]));
});
