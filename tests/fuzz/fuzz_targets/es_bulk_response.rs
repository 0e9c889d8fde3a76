//! What an Elasticsearch host answers to a bulk request: reading it item by item
//! never panics, for any body and any number of documents sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logbridge::pipeline::outputs::elasticsearch::bulk::verdicts;

fuzz_target!(|data: &[u8]| {
    let (sent, body) = match data.split_first() {
        Some((n, rest)) => (*n as usize, rest),
        None => (0, data),
    };
    if let Ok(v) = verdicts(body, sent, &[403, 413]) {
        assert_eq!(v.len(), sent);
    }
});
