//! Decompression output buffers are reused once released, never while held.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use ferrokafka_protocol::records::{Batch, DecodeOptions, NewRecord, OutputBuffers, RecordBatchBuilder, RecordSet};
use ferrokafka_protocol::Compression;

fn batch(codec: Compression, fill: u8) -> Bytes {
    let mut b = RecordBatchBuilder::new(codec);
    for i in 0..500u32 {
        let value = [fill; 200];
        b.push(&NewRecord { key: Some(&i.to_be_bytes()), value: Some(&value), headers: &[], timestamp: 1 }).unwrap();
    }
    let mut out = BytesMut::new();
    b.finish(&mut out).unwrap();
    out.freeze()
}

fn decode(data: &Bytes, pool: &OutputBuffers) -> Batch {
    RecordSet::new(data.clone(), DecodeOptions::default()).with_buffers(pool).next().unwrap().unwrap()
}

/// Where a batch's first value lives, and whether every value is `fill`.
fn check(b: &Batch, fill: u8) -> usize {
    let mut n = 0;
    for v in b.views() {
        assert!(v.unwrap().value().unwrap().iter().all(|x| *x == fill));
        n += 1;
    }
    assert_eq!(n, 500);
    b.views().next().unwrap().unwrap().value().unwrap().as_ptr() as usize
}

#[test]
fn released_buffers_are_reused_and_held_ones_never() {
    for codec in [Compression::Lz4, Compression::Zstd, Compression::Gzip, Compression::Snappy] {
        let pool = OutputBuffers::new();
        let (a, b) = (batch(codec, 1), batch(codec, 2));
        let first = decode(&a, &pool);
        let at = check(&first, 1);
        // Held (the batch, or a value kept from it): a second batch gets another buffer.
        let kept = first.views().next().unwrap().unwrap().value_bytes().unwrap();
        drop(first);
        let second = decode(&b, &pool);
        assert_ne!(check(&second, 2), at, "{codec}: a held buffer was reused");
        assert!(kept.iter().all(|x| *x == 1), "{codec}: a kept value changed");
        // Released: the next batch lands in it.
        drop(kept);
        let third = decode(&b, &pool);
        assert_eq!(check(&third, 2), at, "{codec}: the released buffer was not reused");
        assert!(check(&second, 2) != at);
    }
}

#[test]
fn the_pool_stays_bounded() {
    let pool = OutputBuffers::new();
    let data = batch(Compression::Lz4, 7);
    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(decode(&data, &pool));
    }
    assert!(pool.held() <= 64, "{} handles", pool.held());
    drop(held);
    // Released buffers beyond the idle bound are let go as the pool is used.
    let b = decode(&data, &pool);
    check(&b, 7);
    assert!(pool.held() <= 32 + 1, "{} handles after release", pool.held());
}
