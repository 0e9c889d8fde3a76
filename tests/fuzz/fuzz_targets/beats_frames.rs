//! Bytes a Beats shipper sends: the Lumberjack frame decoder, including compressed
//! frames (bounded inflation), never panics and never over-allocates.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(frame)) = logbridge::beats::frame::decode(&mut buf, 1 << 20) {
        if let logbridge::beats::frame::Frame::Compressed(p) = frame {
            let _ = logbridge::beats::frame::decode_compressed(&p, 1 << 20, 8, 1000);
        }
    }
});
