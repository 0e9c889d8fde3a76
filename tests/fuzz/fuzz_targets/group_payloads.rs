//! Bytes clients put inside group messages (subscriptions, assignments) and records
//! read back from `__consumer_offsets` (offset commits and group metadata): parsing
//! never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = logbridge::group::consumer_protocol::parse_subscription(data);
    let _ = logbridge::group::consumer_protocol::parse_assignment(data);
    let b = bytes::Bytes::copy_from_slice(data);
    let _ = logbridge::group::offsets::decode_key(b.clone());
    let _ = logbridge::group::offsets::decode_value(b.clone());
    let _ = logbridge::group::metadata_record::decode_key(b.clone());
    if let Some(g) = logbridge::group::metadata_record::decode_value(b) {
        // What decodes, encodes (as v3) into something that decodes again.
        let again = logbridge::group::metadata_record::encode_value(&g);
        assert!(logbridge::group::metadata_record::decode_value(again).is_some());
    }
});
