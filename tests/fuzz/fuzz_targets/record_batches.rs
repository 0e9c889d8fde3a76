//! The records field of a Produce request: v2 batch validation (what the produce path
//! runs on every batch) and the legacy message-set up-conversion for old clients.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = logbridge::storage::batch::validate_batches(data);
    let _ = logbridge::storage::batch::whole_batches_prefix(data);
    if matches!(logbridge::broker::legacy::magic_of(data), Some(0 | 1)) {
        let _ = logbridge::broker::legacy::upconvert(bytes::Bytes::copy_from_slice(data));
    }
});
