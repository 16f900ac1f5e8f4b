//! Differential tests against `kafka_protocol::records` (uncompressed, gzip, snappy):
//! batches written by either implementation read back identically in the other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use ferrokafka_protocol::records::{DecodeOptions, NewHeader, NewRecord, RecordBatchBuilder, RecordSet};
use ferrokafka_protocol::Compression;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records as kp;
use proptest::prelude::*;

type Row = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Option<Vec<u8>>)>, i64);

/// Records within kafka-protocol's limits: header names unique per record (it keeps
/// headers in a map), timestamps less than 2^31 ms apart (its encoder refuses more,
/// although the format allows it), and, when `null_header_values` is false, no
/// null header values: kafka-protocol 0.15 cannot decode the -1 length that Java,
/// librdkafka and kafka-python write for them (our golden fixtures cover that case).
fn rows(null_header_values: bool) -> impl Strategy<Value = Vec<Row>> {
    let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..48));
    let header_value = move || bytes().prop_filter("null header value", move |v| null_header_values || v.is_some());
    let headers = proptest::collection::btree_map("[a-z]{1,6}", header_value(), 0..3)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    proptest::collection::vec((bytes(), bytes(), headers, 1_600_000_000_000i64..1_602_000_000_000), 1..16)
}

fn codecs() -> impl Strategy<Value = (Compression, kp::Compression)> {
    prop_oneof![
        Just((Compression::None, kp::Compression::None)),
        Just((Compression::Gzip, kp::Compression::Gzip)),
        Just((Compression::Snappy, kp::Compression::Snappy)),
    ]
}

fn decode_ours(data: Bytes) -> Vec<Row> {
    let mut out = Vec::new();
    for b in RecordSet::new(data, DecodeOptions::default()) {
        for r in b.unwrap().records() {
            let r = r.unwrap();
            let headers = r
                .headers
                .iter()
                .map(|h| (String::from_utf8(h.key.to_vec()).unwrap(), h.value.map(|v| v.to_vec())))
                .collect();
            out.push((r.key.map(|k| k.to_vec()), r.value.map(|v| v.to_vec()), headers, r.timestamp));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn kafka_protocol_writes_we_read(rows in rows(true), (_, codec) in codecs(), base in 0i64..1 << 40) {
        let records: Vec<kp::Record> = rows.iter().enumerate().map(|(i, (k, v, h, ts))| kp::Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: 99,
            producer_epoch: 2,
            timestamp_type: kp::TimestampType::Creation,
            offset: base + i as i64,
            sequence: i as i32,
            timestamp: *ts,
            key: k.clone().map(Bytes::from),
            value: v.clone().map(Bytes::from),
            headers: h.iter().map(|(n, v)| (StrBytes::from_string(n.clone()), v.clone().map(Bytes::from))).collect::<IndexMap<_, _>>(),
        }).collect();
        let mut buf = BytesMut::new();
        kp::RecordBatchEncoder::encode(&mut buf, records.iter(), &kp::RecordEncodeOptions { version: 2, compression: codec }).unwrap();
        let data = buf.freeze();
        let batch = RecordSet::new(data.clone(), DecodeOptions::default()).next().unwrap().unwrap();
        prop_assert_eq!((batch.base_offset, batch.producer_id, batch.producer_epoch), (base, 99, 2));
        prop_assert_eq!(decode_ours(data), rows);
    }

    #[test]
    fn we_write_kafka_protocol_reads(rows in rows(false), (codec, _) in codecs(), base in 0i64..1 << 40) {
        let mut b = RecordBatchBuilder::new(codec).base_offset(base);
        for (k, v, h, ts) in &rows {
            let headers: Vec<NewHeader<'_>> = h.iter().map(|(n, v)| NewHeader { key: n, value: v.as_deref() }).collect();
            b.push(&NewRecord { key: k.as_deref(), value: v.as_deref(), headers: &headers, timestamp: *ts }).unwrap();
        }
        let mut buf = BytesMut::new();
        b.finish(&mut buf).unwrap();
        let set = kp::RecordBatchDecoder::decode(&mut buf.freeze()).unwrap();
        let theirs: Vec<Row> = set.records.iter().map(|r| (
            r.key.as_ref().map(|k| k.to_vec()),
            r.value.as_ref().map(|v| v.to_vec()),
            r.headers.iter().map(|(n, v)| (n.to_string(), v.as_ref().map(|v| v.to_vec()))).collect(),
            r.timestamp,
        )).collect();
        let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
        prop_assert_eq!(offsets, (base..base + rows.len() as i64).collect::<Vec<_>>());
        prop_assert_eq!(theirs, rows);
    }
}
