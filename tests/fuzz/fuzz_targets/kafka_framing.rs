//! The Kafka listener's size-prefixed framing, fed in arbitrary pieces: frames come out
//! whole and in order, sizes are checked before anything is buffered for them, and
//! nothing panics.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logbridge::protocol::framing::{self, Front};

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else { return };
    let step = step as usize % 7 + 1;
    let mut buf = BytesMut::new();
    for piece in stream.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match framing::front(&buf, 4096) {
                Err(_) => return,
                Ok(Front::Frame { size, have }) => assert!(size <= 4096 && have <= size),
                Ok(_) => {}
            }
            match framing::take(&mut buf, 4096) {
                Ok(Some(frame)) => assert!(frame.len() <= 4096),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
