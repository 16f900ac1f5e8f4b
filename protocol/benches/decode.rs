#![allow(missing_docs, clippy::unwrap_used)] // criterion_group! generates undocumented items
//! Decode throughput of one ~1 MiB v2 batch (8-byte keys, 100-byte values), next
//! to plain CRC32C over the same bytes: how close record decoding gets to the
//! cost of merely checksumming the data.
//!
//! `decode_*` hands out owned `Record`s (two `Bytes` slices each); `views_*` hands
//! out `RecordView`s borrowed from the batch.
//!
//! Run: `cargo bench -p ferrokafka-protocol --bench decode`

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ferrokafka_protocol::records::{DecodeOptions, NewRecord, RecordBatchBuilder, RecordSet};
use ferrokafka_protocol::Compression;

const RECORDS: usize = 8_800;

fn batch(codec: Compression) -> Bytes {
    let mut b = RecordBatchBuilder::new(codec);
    let mut value = [0u8; 100];
    for i in 0..RECORDS {
        let key = format!("k{i:07}");
        for (j, v) in value.iter_mut().enumerate() {
            *v = b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 + j * 13) % 36];
        }
        b.push(&NewRecord {
            key: Some(key.as_bytes()),
            value: Some(&value),
            headers: &[],
            timestamp: 1_700_000_000_000 + i as i64,
        })
        .unwrap();
    }
    let mut out = BytesMut::new();
    b.finish(&mut out).unwrap();
    out.freeze()
}

/// Walks every record, touching key and value lengths so nothing is optimised out.
fn decode_all(data: &Bytes, opts: DecodeOptions) -> usize {
    let mut n = 0;
    for b in RecordSet::new(data.clone(), opts) {
        for r in b.unwrap().records() {
            let r = r.unwrap();
            n += r.key.map_or(0, |k| k.len()) + r.value.map_or(0, |v| v.len());
        }
    }
    n
}

/// The same walk over [`RecordView`]s: slices borrowed from the batch, no refcounts.
fn decode_all_views(data: &Bytes, opts: DecodeOptions) -> usize {
    let mut n = 0;
    for b in RecordSet::new(data.clone(), opts) {
        for r in b.unwrap().views() {
            let r = r.unwrap();
            n += r.key().map_or(0, <[u8]>::len) + r.value().map_or(0, <[u8]>::len);
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let plain = batch(Compression::None);
    let mut g = c.benchmark_group("v2_batch_1MiB");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("crc32c_only", |b| b.iter(|| crc32c::crc32c(black_box(&plain))));
    g.bench_function("decode_with_crc", |b| b.iter(|| decode_all(black_box(&plain), DecodeOptions::default())));
    let no_crc = DecodeOptions { check_crcs: false, ..Default::default() };
    g.bench_function("decode_without_crc", |b| b.iter(|| decode_all(black_box(&plain), no_crc)));
    g.bench_function("views_with_crc", |b| b.iter(|| decode_all_views(black_box(&plain), DecodeOptions::default())));
    g.bench_function("views_without_crc", |b| b.iter(|| decode_all_views(black_box(&plain), no_crc)));
    g.finish();

    let mut g = c.benchmark_group("v2_batch_compressed");
    g.throughput(Throughput::Elements(RECORDS as u64));
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let data = batch(codec);
        g.bench_function(format!("decode_{codec}"), |b| {
            b.iter(|| decode_all(black_box(&data), DecodeOptions::default()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
