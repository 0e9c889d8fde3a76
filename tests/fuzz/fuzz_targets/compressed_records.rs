//! The compressed records section of a client batch: every codec (gzip, raw and
//! xerial snappy, lz4 frames, zstd) decompresses within its limit or fails, and what
//! comes out is walked record by record without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logbridge::protocol::compression::{decompress, GZIP, LZ4, SNAPPY, ZSTD};
use logbridge::protocol::records::RecordWalker;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else { return };
    let codec = [GZIP, SNAPPY, LZ4, ZSTD][pick as usize % 4];
    if let Ok(out) = decompress(codec, input, 1 << 20) {
        assert!(out.len() <= 1 << 20);
        for r in RecordWalker::new(&out) {
            if r.is_err() {
                break;
            }
        }
    }
    for r in RecordWalker::new(input) {
        if let Ok(view) = r {
            let _ = view.headers().count();
        }
    }
});
