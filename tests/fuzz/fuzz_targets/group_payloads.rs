//! Bytes clients put inside group messages (subscriptions, assignments) and records
//! read back from `__consumer_offsets`: parsing never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = logbridge::group::consumer_protocol::parse_subscription(data);
    let _ = logbridge::group::consumer_protocol::parse_assignment(data);
    let b = bytes::Bytes::copy_from_slice(data);
    let _ = logbridge::group::offsets::decode_key(b.clone());
    let _ = logbridge::group::offsets::decode_value(b);
});
