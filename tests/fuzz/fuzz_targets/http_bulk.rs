//! A `_bulk` request body sent to the HTTP ingest: parsing it into items and records
//! never panics, whatever the lines hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = logbridge::http::bulk::parse_bulk(data, Some("logs"), "127.0.0.1:1", &|index| {
        index.to_string()
    });
});
