//! Record data shaped like the benchmark's realistic payload (README "Benchmarks"):
//! an 8-byte key and a 100-byte value of random alphanumerics inside a small JSON
//! object, which zstd compresses to about 0.54. Shared by the zstd tests and bench.

use bytes::BytesMut;
use ferrokafka_protocol::records::{NewRecord, RecordBatchBuilder};
use ferrokafka_protocol::Compression;

/// The records section (what follows the 61-byte v2 batch header) of an uncompressed
/// batch of `records` realistic records, from a fixed `seed`.
pub fn records_section(records: usize, seed: u64) -> Vec<u8> {
    let mut seed = seed | 1;
    let mut b = RecordBatchBuilder::new(Compression::None);
    let mut value = Vec::with_capacity(100);
    for i in 0..records {
        let key = format!("k{i:07}");
        value.clear();
        value.extend_from_slice(format!("{{\"id\":{i:09},\"v\":\"").as_bytes());
        while value.len() < 98 {
            // xorshift64*
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            let x = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
            value.push(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[(x % 62) as usize]);
        }
        value.extend_from_slice(b"\"}");
        let record = NewRecord {
            key: Some(key.as_bytes()),
            value: Some(&value),
            headers: &[],
            timestamp: 1_700_000_000_000 + i as i64,
        };
        b.push(&record).expect("push");
    }
    let mut out = BytesMut::new();
    b.finish(&mut out).expect("finish");
    out[61..].to_vec()
}
