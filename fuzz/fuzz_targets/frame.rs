//! Frame splitting with a small maximum, fed in arbitrary chunks.
#![no_main]
use bytes::BytesMut;
use ferrokafka_protocol::frame::FrameDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dec = FrameDecoder::new(1 << 16);
    let mut buf = BytesMut::new();
    let step = 1 + data.first().copied().unwrap_or(7) as usize % 64;
    for chunk in data.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(buf.capacity() <= (1 << 16) + 4 + 64 * 1024, "no reservation beyond the maximum");
    }
});
