//! Record views against owned records: the same records, errors and offsets, with
//! every slice borrowed from the fetched (or decompressed) buffer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use ferrokafka_protocol::records::{
    encode_legacy_message, DecodeOptions, LegacyMessage, NewHeader, NewRecord, Record, RecordBatchBuilder, RecordSet,
};
use ferrokafka_protocol::Compression;
use proptest::prelude::*;

type Rec = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Option<Vec<u8>>)>);

fn rec() -> impl Strategy<Value = Rec> {
    let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..48));
    (bytes(), bytes(), proptest::collection::vec((".{0,6}", bytes()), 0..3))
}

fn encode(records: &[Rec], codec: Compression, base: i64) -> BytesMut {
    let mut b = RecordBatchBuilder::new(codec).base_offset(base);
    for (i, (k, v, h)) in records.iter().enumerate() {
        let headers: Vec<NewHeader<'_>> = h.iter().map(|(k, v)| NewHeader { key: k, value: v.as_deref() }).collect();
        let r = NewRecord { key: k.as_deref(), value: v.as_deref(), headers: &headers, timestamp: 1_000 + i as i64 };
        b.push(&r).unwrap();
    }
    let mut out = BytesMut::new();
    b.finish(&mut out).unwrap();
    out
}

/// Records, each or the error that ended the walk, as text.
type Walked = Vec<Result<Record, String>>;

/// Every batch's records both ways, from `min_offset`: (records, views turned into
/// records), each ending with the error's text if iteration failed.
fn both_ways(data: Bytes, opts: DecodeOptions, min_offset: i64) -> (Walked, Walked) {
    let (mut owned, mut viewed) = (Vec::new(), Vec::new());
    for batch in RecordSet::new(data, opts).flatten() {
        owned.extend(batch.records_from(min_offset).map(|r| r.map_err(|e| e.to_string())));
        for v in batch.views_from(min_offset) {
            viewed.push(v.map_err(|e| e.to_string()).map(|v| {
                // What a view shows is what its record holds.
                let r = v.to_record();
                assert_eq!(v.key(), r.key.as_deref());
                assert_eq!(v.value(), r.value.as_deref());
                assert_eq!(v.key_bytes(), r.key);
                assert_eq!(v.value_bytes(), r.value);
                let hv: Vec<_> = v.headers().iter().map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec))).collect();
                let hr: Vec<_> = r.headers.iter().map(|h| (h.key.to_vec(), h.value.map(|b| b.to_vec()))).collect();
                assert_eq!(hv, hr);
                assert_eq!(v.headers().len(), r.headers.len());
                r
            }));
        }
    }
    (owned, viewed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn views_match_records(
        records in proptest::collection::vec(rec(), 1..16),
        codec in prop_oneof![Just(Compression::None), Just(Compression::Lz4), Just(Compression::Zstd)],
        skip in 0i64..20,
    ) {
        let data = encode(&records, codec, 100).freeze();
        let (owned, viewed) = both_ways(data, DecodeOptions::default(), 100 + skip);
        prop_assert_eq!(owned.len(), records.len().saturating_sub(skip as usize));
        prop_assert_eq!(owned, viewed);
    }

    /// Damaged batches (CRC not checked, so the damage reaches the record walk) give
    /// the same records and the same error both ways.
    #[test]
    fn views_fail_where_records_fail(records in proptest::collection::vec(rec(), 1..8), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut data = encode(&records, Compression::None, 0);
        let i = 61 + at.index(data.len() - 61);
        data[i] = byte;
        let opts = DecodeOptions { check_crcs: false, ..Default::default() };
        let (owned, viewed) = both_ways(data.freeze(), opts, i64::MIN);
        prop_assert_eq!(owned, viewed);
    }

    #[test]
    fn legacy_views_match_records(values in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)), 1..8), magic in 0i8..=1) {
        let msgs: Vec<LegacyMessage<'_>> = values
            .iter()
            .enumerate()
            .map(|(i, v)| LegacyMessage { offset: i as i64, timestamp: 5, key: Some(b"k"), value: v.as_deref() })
            .collect();
        let mut out = BytesMut::new();
        encode_legacy_message(&mut out, magic, Compression::Gzip, values.len() as i64 - 1, &msgs).unwrap();
        let (owned, viewed) = both_ways(out.freeze(), DecodeOptions::default(), 1);
        prop_assert_eq!(owned.len(), values.len() - 1);
        prop_assert_eq!(owned, viewed);
    }
}

/// The zero-copy guarantee: an uncompressed batch's views and their `Bytes` point into
/// the fetched buffer itself.
#[test]
fn views_borrow_the_fetched_buffer() {
    let records: Vec<Rec> = (0..50).map(|i| (Some(vec![i; 4]), Some(vec![i; 100]), vec![("h".into(), None)])).collect();
    let data = encode(&records, Compression::None, 0).freeze();
    let range = data.as_ptr() as usize..data.as_ptr() as usize + data.len();
    let inside =
        |s: &[u8]| range.contains(&(s.as_ptr() as usize)) && range.contains(&(s.as_ptr() as usize + s.len() - 1));
    let mut n = 0;
    for batch in RecordSet::new(data.clone(), DecodeOptions::default()) {
        let batch = batch.unwrap();
        for v in batch.views() {
            let v = v.unwrap();
            assert!(inside(v.key().unwrap()) && inside(v.value().unwrap()));
            assert!(inside(&v.value_bytes().unwrap()) && inside(&v.key_bytes().unwrap()));
            assert_eq!(v.headers().last("h"), Some(None));
            n += 1;
        }
    }
    assert_eq!(n, 50);
    let record =
        RecordSet::new(data, DecodeOptions::default()).next().unwrap().unwrap().records().next().unwrap().unwrap();
    let view = record.view();
    assert_eq!(view.to_record(), record);
    assert!(format!("{view:?}").contains("value: Some(b\"\\x00\\x00"), "{view:?}");
}
