#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)] // criterion_group! generates undocumented items
//! zstd decompression of one realistic ~1 MiB batch (README "Benchmarks": random
//! alphanumerics in a small JSON object), three decoders side by side:
//!
//! - `ferrokafka`: `compression::decompress_into` with a reused output buffer, on the
//!   vendored ruzstd (vendor/ruzstd/PATCHED.md);
//! - `ruzstd_0_8_3`: the unpatched crates.io release, through the same `Read` path;
//! - `c_libzstd`: C libzstd (the `zstd` crate; a dev-dependency only, never in the
//!   library), the speed rskafka and librdkafka decode at.
//!
//! Frames come from C libzstd at level 3 (librdkafka's default, what kcat writes) and
//! from ruzstd's Fastest level (what ferrokafka's producer writes).
//!
//! Run: `cargo bench -p ferrokafka-protocol --bench zstd`

use std::io::Read;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ferrokafka_protocol::compression::{compress, decompress_into};
use ferrokafka_protocol::Compression;

#[path = "../tests/common/realistic.rs"]
mod realistic;

fn bench(c: &mut Criterion) {
    let plain = realistic::records_section(8_800, 7);
    let frames = [
        ("c_level3", zstd::bulk::compress(&plain, 3).unwrap()),
        ("ruzstd_fastest", compress(Compression::Zstd, &plain).unwrap()),
    ];
    let mut g = c.benchmark_group("zstd");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    for (made_by, frame) in &frames {
        let mut out = Some(Vec::new());
        g.bench_function(format!("{made_by}/ferrokafka"), |b| {
            b.iter(|| {
                let o = decompress_into(Compression::Zstd, frame, 1 << 24, 0, out.take().unwrap()).unwrap();
                assert_eq!(o.len(), plain.len());
                out = Some(black_box(o));
            })
        });
        let mut decoder = ruzstd_upstream::decoding::FrameDecoder::new();
        let mut out = Vec::with_capacity(plain.len());
        g.bench_function(format!("{made_by}/ruzstd_0_8_3"), |b| {
            b.iter(|| {
                out.clear();
                let mut r =
                    ruzstd_upstream::decoding::StreamingDecoder::new_with_decoder(&frame[..], &mut decoder).unwrap();
                r.read_to_end(&mut out).unwrap();
                assert_eq!(out.len(), plain.len());
            })
        });
        let mut dctx = zstd::bulk::Decompressor::new().unwrap();
        let mut out = Vec::with_capacity(plain.len());
        g.bench_function(format!("{made_by}/c_libzstd"), |b| {
            b.iter(|| {
                out.clear();
                dctx.decompress_to_buffer(&frame[..], &mut out).unwrap();
                assert_eq!(out.len(), plain.len());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
