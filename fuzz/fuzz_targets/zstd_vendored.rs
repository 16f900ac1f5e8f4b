//! The vendored ruzstd (vendor/ruzstd/PATCHED.md) against the unpatched 0.8.3 release on
//! arbitrary input: the same output or the same error, and no panic. And against C
//! libzstd on one whole frame with a content checksum: where both ferrokafka's zstd path
//! (the vendored decoder, then its checksum and content size checks) and C accept it,
//! the same bytes. (Without a checksum C is no oracle: see protocol/tests/zstd_vendored.rs.)
#![no_main]
use std::io::Read;

use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 1 << 20;

fn vendored(frame: &[u8]) -> Result<Vec<u8>, String> {
    let mut decoder = ruzstd::decoding::FrameDecoder::new();
    let mut out = Vec::new();
    ruzstd::decoding::StreamingDecoder::new_with_decoder(frame, &mut decoder)
        .map_err(|e| e.to_string())?
        .take(LIMIT)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn upstream(frame: &[u8]) -> Result<Vec<u8>, String> {
    let mut decoder = ruzstd_upstream::decoding::FrameDecoder::new();
    let mut out = Vec::new();
    ruzstd_upstream::decoding::StreamingDecoder::new_with_decoder(frame, &mut decoder)
        .map_err(|e| e.to_string())?
        .take(LIMIT)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// One whole zstd frame that carries a content checksum.
fn one_checksummed_frame(frame: &[u8]) -> bool {
    frame.len() > 4
        && frame[..4] == [0x28, 0xb5, 0x2f, 0xfd]
        && frame[4] & 4 != 0
        && zstd::zstd_safe::find_frame_compressed_size(frame) == Ok(frame.len())
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(vendored(data), upstream(data));
    if one_checksummed_frame(data) {
        let ours = ferrokafka_protocol::compression::decompress(
            ferrokafka_protocol::Compression::Zstd,
            data,
            LIMIT as usize,
            0,
        );
        if let (Ok(ours), Ok(c)) = (ours, zstd::bulk::decompress(data, LIMIT as usize)) {
            assert!(ours == c, "C libzstd and ferrokafka accept a checksummed frame and give different bytes");
        }
    }
});
