//! Stored batches as an old consumer fetches them: down-conversion to magic 0 and 1
//! never panics, never decompresses past its bound, and never writes past its budget
//! by more than one message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    for magic in [0, 1] {
        if let Ok(out) = logbridge::broker::legacy::downconvert(&bytes, magic, 0, 4096, true, 1 << 20) {
            // One message may pass the budget (so a consumer always progresses); what
            // a message holds came from a batch of at most 1 MiB uncompressed.
            assert!(out.len() <= 4096 + (1 << 20) + 64);
        }
    }
});
