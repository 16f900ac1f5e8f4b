//! Structure-aware: the input becomes the body of a v2 batch with a valid length
//! and CRC, so every input reaches the header and record parsers with checks on.
#![no_main]
use bytes::{BufMut, Bytes, BytesMut};
use ferrokafka_protocol::records::{DecodeOptions, RecordSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // base offset, length, leader epoch, magic 2, CRC placeholder, then the input as
    // attributes.. records.
    let mut b = BytesMut::with_capacity(data.len() + 21);
    b.put_i64(0);
    b.put_i32((9 + data.len()) as i32);
    b.put_i32(0);
    b.put_i8(2);
    b.put_u32(0);
    b.put_slice(data);
    let crc = crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    let opts = DecodeOptions { check_crcs: true, max_decompressed_bytes: 1 << 20 };
    for batch in RecordSet::new(Bytes::from(b), opts).flatten() {
        batch.records().for_each(drop);
    }
});

fn crc32c(bytes: &[u8]) -> u32 {
    // The same Castagnoli CRC the decoder checks (bitwise, to stay dependency-free).
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}
