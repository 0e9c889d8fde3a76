//! Record values a pipeline's input decodes (any client can produce them): every
//! input codec turns any bytes into events without panicking, and the events write
//! back out as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logbridge::pipeline::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    for decoder in [Decoder::PLAIN, Decoder::JSON, Decoder::LINE, Decoder::JSON_LINES] {
        let mut events = Vec::new();
        decoder.decode_all(data, 0, &mut events);
        for e in &events {
            let mut out = Vec::new();
            e.write_json(&mut out);
            assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
        }
    }
});
