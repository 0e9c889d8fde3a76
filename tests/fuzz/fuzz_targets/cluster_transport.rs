//! Bytes a peer node sends on the cluster listener (and answers it reads back): the
//! frame header check and the request and response decoders never panic, and a frame
//! length over the bound is refused before anything is allocated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logbridge::cluster::transport;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 4 {
        let header = [data[0], data[1], data[2], data[3]];
        if let Ok(len) = transport::frame_len(header) {
            assert!(len <= transport::MAX_FRAME_BYTES);
        }
        let body = &data[4..];
        let _ = transport::decode_request(body);
        let _ = transport::decode_response(body);
    }
});
