//! Property tests: whatever the encoders write, the decoders read back unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use ferrokafka_protocol::records::{
    encode_legacy_message, stamp_producer, DecodeOptions, LegacyMessage, NewHeader, NewRecord, RecordBatchBuilder,
    RecordSet, TimestampType,
};
use ferrokafka_protocol::varint::{put_varint, put_varlong, read_varint, read_varlong, varint_len, varlong_len};
use ferrokafka_protocol::Compression;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: i64,
}

fn rec() -> impl Strategy<Value = Rec> {
    let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64));
    (bytes(), bytes(), proptest::collection::vec((".{0,8}", bytes()), 0..4), any::<i64>())
        .prop_map(|(key, value, headers, timestamp)| Rec { key, value, headers, timestamp })
}

fn codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

fn encode_batch(records: &[Rec], codec: Compression, base: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(codec).base_offset(base).producer(7, 1, 0, false);
    for r in records {
        let headers: Vec<NewHeader<'_>> =
            r.headers.iter().map(|(k, v)| NewHeader { key: k, value: v.as_deref() }).collect();
        b.push(&NewRecord {
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &headers,
            timestamp: r.timestamp,
        })
        .unwrap();
    }
    let mut out = BytesMut::new();
    b.finish(&mut out).unwrap();
    out.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn v2_batches_round_trip(records in proptest::collection::vec(rec(), 1..20), codec in codec(), base in 0i64..1 << 40) {
        let data = encode_batch(&records, codec, base);
        let batches: Vec<_> = RecordSet::new(data, DecodeOptions::default()).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        prop_assert_eq!(batch.compression, codec);
        prop_assert_eq!(batch.base_offset, base);
        prop_assert_eq!(batch.last_offset, base + records.len() as i64 - 1);
        prop_assert_eq!((batch.producer_id, batch.producer_epoch, batch.base_sequence), (7, 1, 0));
        let decoded: Vec<_> = batch.records().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded.len(), records.len());
        for (i, (d, r)) in decoded.iter().zip(&records).enumerate() {
            prop_assert_eq!(d.offset, base + i as i64);
            prop_assert_eq!(d.timestamp, r.timestamp);
            prop_assert_eq!(d.timestamp_type, TimestampType::CreateTime);
            prop_assert_eq!(d.key.as_deref(), r.key.as_deref());
            prop_assert_eq!(d.value.as_deref(), r.value.as_deref());
            let headers: Vec<(Vec<u8>, Option<Vec<u8>>)> =
                d.headers.iter().map(|h| (h.key.to_vec(), h.value.map(|v| v.to_vec()))).collect();
            let expected: Vec<(Vec<u8>, Option<Vec<u8>>)> =
                r.headers.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.clone())).collect();
            prop_assert_eq!(headers, expected);
        }
    }

    #[test]
    fn legacy_sets_round_trip(
        values in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)), 1..10),
        magic in 0i8..=1,
        codec in prop_oneof![Just(Compression::None), Just(Compression::Gzip), Just(Compression::Snappy), Just(Compression::Lz4)],
        base in 0i64..1 << 40,
    ) {
        let n = values.len() as i64;
        // Inner offsets: absolute for magic 0, relative for magic 1 (wrapper = last absolute).
        let relative = magic == 1 && codec != Compression::None;
        let msgs: Vec<LegacyMessage<'_>> = values.iter().enumerate().map(|(i, v)| LegacyMessage {
            offset: if relative { i as i64 } else { base + i as i64 },
            timestamp: 1000 + i as i64,
            key: Some(b"k"),
            value: v.as_deref(),
        }).collect();
        let mut out = BytesMut::new();
        encode_legacy_message(&mut out, magic, codec, base + n - 1, &msgs).unwrap();
        let mut offsets = Vec::new();
        for batch in RecordSet::new(out.freeze(), DecodeOptions::default()) {
            let batch = batch.unwrap();
            prop_assert_eq!(batch.magic, magic);
            for r in batch.records() {
                let r = r.unwrap();
                let i = (r.offset - base) as usize;
                prop_assert_eq!(r.value.as_deref(), values[i].as_deref());
                let ts = if magic == 0 { -1 } else { 1000 + i as i64 };
                prop_assert_eq!(r.timestamp, ts);
                offsets.push(r.offset);
            }
        }
        prop_assert_eq!(offsets, (base..base + n).collect::<Vec<_>>());
    }

    #[test]
    fn varints_round_trip(v in any::<i32>(), l in any::<i64>()) {
        let mut buf = Vec::new();
        put_varint(&mut buf, v);
        prop_assert_eq!(buf.len(), varint_len(v));
        prop_assert_eq!(read_varint(&buf), Some((v, buf.len())));
        buf.clear();
        put_varlong(&mut buf, l);
        prop_assert_eq!(buf.len(), varlong_len(l));
        prop_assert_eq!(read_varlong(&buf), Some((l, buf.len())));
    }

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let opts = DecodeOptions { check_crcs: false, ..Default::default() };
        for b in RecordSet::new(Bytes::from(data), opts).flatten() {
            b.records().for_each(drop);
            for v in b.views().flatten() {
                v.headers().iter().for_each(drop);
                drop((v.key_bytes(), v.value_bytes(), v.to_record()));
            }
        }
    }
}

/// Batches with offset gaps (what compaction leaves) keep their offsets through a round
/// trip, and the header's last offset delta is the last record's.
#[test]
fn offset_gaps_round_trip() {
    let mut b = RecordBatchBuilder::new(Compression::None).base_offset(100);
    for delta in [0, 2, 3, 7] {
        let v = format!("v{delta}");
        b.push_at(delta, &NewRecord { key: None, value: Some(v.as_bytes()), headers: &[], timestamp: 5 }).unwrap();
    }
    b.push(&NewRecord { key: None, value: Some(b"next"), headers: &[], timestamp: 5 }).unwrap();
    assert!(b.push_at(8, &NewRecord { key: None, value: None, headers: &[], timestamp: 5 }).is_err());
    let mut out = BytesMut::new();
    b.finish(&mut out).unwrap();
    let batch = RecordSet::new(out.freeze(), DecodeOptions::default()).next().unwrap().unwrap();
    assert_eq!(batch.last_offset, 108);
    let offsets: Vec<i64> = batch.records().map(|r| r.unwrap().offset).collect();
    assert_eq!(offsets, [100, 102, 103, 107, 108]);
}

#[test]
fn stamping_producer_state_equals_encoding_it() {
    for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let encode = |producer: Option<(i64, i16, i32)>| {
            let mut b = RecordBatchBuilder::new(codec).base_offset(0);
            if let Some((id, epoch, seq)) = producer {
                b = b.producer(id, epoch, seq, false);
            }
            for i in 0..10 {
                let v = format!("value-{i}");
                b.push(&NewRecord { key: Some(b"k"), value: Some(v.as_bytes()), headers: &[], timestamp: 9 }).unwrap();
            }
            let mut out = BytesMut::new();
            b.finish(&mut out).unwrap();
            out
        };
        let mut stamped = encode(None);
        stamp_producer(&mut stamped, 4_000_000_001, 7, i32::MAX - 3).unwrap();
        assert_eq!(stamped, encode(Some((4_000_000_001, 7, i32::MAX - 3))), "{codec:?}");
        let batch = RecordSet::new(stamped.freeze(), DecodeOptions::default()).next().unwrap().unwrap();
        assert_eq!((batch.producer_id, batch.producer_epoch, batch.base_sequence), (4_000_000_001, 7, i32::MAX - 3));
        assert_eq!(batch.records().count(), 10);
    }
    assert!(stamp_producer(&mut [0u8; 60], 1, 1, 1).is_err(), "shorter than a header");
    let mut legacy = vec![0u8; 80];
    legacy[16] = 1;
    assert!(stamp_producer(&mut legacy, 1, 1, 1).is_err(), "not v2");
}
