//! Encode → decode is the identity for v2 batches of arbitrary records and codecs.
#![no_main]
use bytes::BytesMut;
use ferrokafka_protocol::records::{DecodeOptions, NewHeader, NewRecord, RecordBatchBuilder, RecordSet};
use ferrokafka_protocol::Compression;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let codec = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd][sel as usize % 5];
    // Records are the input split on 0xff; each record's first byte says whether it has a key.
    let parts: Vec<&[u8]> = rest.split(|b| *b == 0xff).take(64).collect();
    let mut b = RecordBatchBuilder::new(codec).base_offset(i64::from(sel));
    for (i, p) in parts.iter().enumerate() {
        let key = (p.first().is_some_and(|k| k & 1 == 1)).then_some(&p[..p.len().min(4)]);
        let headers = [NewHeader { key: "h", value: Some(p) }];
        let hs: &[NewHeader<'_>] = if i % 2 == 0 { &headers } else { &[] };
        b.push(&NewRecord { key, value: Some(p), headers: hs, timestamp: i as i64 }).expect("push");
    }
    let mut out = BytesMut::new();
    b.finish(&mut out).expect("finish");
    let batches: Vec<_> = RecordSet::new(out.freeze(), DecodeOptions::default()).collect::<Result<_, _>>().expect("decode");
    let records: Vec<_> = batches[0].records().collect::<Result<_, _>>().expect("records");
    assert_eq!(records.len(), parts.len());
    for (i, (r, p)) in records.iter().zip(&parts).enumerate() {
        assert_eq!(r.value.as_deref(), Some(*p));
        assert_eq!(r.offset, i64::from(sel) + i as i64);
        assert_eq!(r.headers.len(), if i % 2 == 0 { 1 } else { 0 });
    }
});
