//! The records field of a Produce request: framing checks, the full validation the
//! produce path runs on every client batch (decompression within its bound, every
//! record walked), and the legacy message-set up-conversion for old clients.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = logbridge::storage::batch::validate_batches(data);
    let _ = logbridge::storage::batch::whole_batches_prefix(data);
    let rules = logbridge::storage::validate::Rules {
        max_message_bytes: 1 << 20,
        max_uncompressed: 1 << 20,
        compacted: data.first().is_some_and(|b| b & 1 == 1),
        log_append_time: false,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: 3_600_000,
    };
    let mut copy = data.to_vec();
    if let Ok(batches) = logbridge::storage::validate::client_batch(&mut copy, &rules, 1_700_000_000_000) {
        // What passes is one whole, CRC-valid batch (corrections keep the CRC right).
        assert_eq!(batches.len(), 1);
        assert!(logbridge::storage::batch::validate_batch(&copy).is_ok());
    }
    if matches!(logbridge::broker::legacy::magic_of(data), Some(0 | 1)) {
        let _ = logbridge::broker::legacy::upconvert(bytes::Bytes::copy_from_slice(data), 1 << 20);
    }
});
