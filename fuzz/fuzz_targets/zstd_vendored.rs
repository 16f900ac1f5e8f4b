//! The vendored ruzstd (vendor/ruzstd/PATCHED.md) against the unpatched 0.8.3 release on
//! arbitrary input: the same output or the same error, and no panic.
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

fuzz_target!(|data: &[u8]| {
    assert_eq!(vendored(data), upstream(data));
});
