//! Record batches as readers meet them (a fetch response, a segment): decoding every
//! record, walking them in place, and the budgeted decode the clients and pipelines
//! use never panic and never build more than the budget allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logbridge::storage::records::{self, ReadLimits};

fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    let _ = records::decode_records(&bytes, 1 << 20);
    let limits = ReadLimits { max_uncompressed: 1 << 20, budget: 64 * 1024 };
    if let Ok(recs) = records::decode_full_records(&bytes, 0, limits) {
        // The budget is checked before each record: at most one record beyond it.
        let cost: usize = recs
            .iter()
            .map(|r| records::DECODED_RECORD_OVERHEAD + r.value.as_ref().map_or(0, |v| v.len()))
            .sum();
        assert!(recs.len() <= 1 || cost <= 64 * 1024 + (1 << 20) + 64 * 1024);
    }
});
