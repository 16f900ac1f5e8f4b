//! Every malformed input yields its typed error; nothing panics, nothing is lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{BufMut, Bytes, BytesMut};
use ferrokafka_protocol::compression::{compress, decompress};
use ferrokafka_protocol::frame::FrameDecoder;
use ferrokafka_protocol::records::{
    encode_legacy_message, AbortedTransaction, AbortedTransactions, ControlMarker, DecodeOptions, LegacyMessage,
    NewRecord, RecordBatchBuilder, RecordSet,
};
use ferrokafka_protocol::{Compression, ProtocolError};

fn batch(base: i64, values: &[&str], codec: Compression) -> BytesMut {
    let mut b = RecordBatchBuilder::new(codec).base_offset(base);
    for (i, v) in values.iter().enumerate() {
        b.push(&NewRecord { key: None, value: Some(v.as_bytes()), headers: &[], timestamp: i as i64 }).unwrap();
    }
    let mut out = BytesMut::new();
    b.finish(&mut out).unwrap();
    out
}

fn values(data: Bytes, opts: DecodeOptions) -> Result<Vec<(i64, String)>, ProtocolError> {
    let mut out = Vec::new();
    for b in RecordSet::new(data, opts) {
        for r in b?.records() {
            let r = r?;
            out.push((r.offset, String::from_utf8(r.value.unwrap().to_vec()).unwrap()));
        }
    }
    Ok(out)
}

#[test]
fn frames_arrive_in_pieces() {
    let dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    buf.put_i32(5);
    buf.put_slice(b"he");
    assert!(dec.decode(&mut buf).unwrap().is_none());
    buf.put_slice(b"llo");
    buf.put_i32(0);
    assert_eq!(&dec.decode(&mut buf).unwrap().unwrap()[..], b"hello");
    assert_eq!(&dec.decode(&mut buf).unwrap().unwrap()[..], b"");
    assert!(dec.decode(&mut buf).unwrap().is_none());
}

#[test]
fn oversized_frame_is_rejected_before_allocating() {
    let dec = FrameDecoder::new(1024);
    let mut buf = BytesMut::new();
    buf.put_i32(i32::MAX);
    let cap = buf.capacity();
    match dec.decode(&mut buf) {
        Err(ProtocolError::FrameTooLarge { size, max }) => assert_eq!((size, max), (i32::MAX as u64, 1024)),
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert_eq!(buf.capacity(), cap, "no memory was reserved for the oversized frame");
    let mut neg = BytesMut::from(&(-1i32).to_be_bytes()[..]);
    assert!(matches!(dec.decode(&mut neg), Err(ProtocolError::NegativeFrameSize(-1))));
}

#[test]
fn truncated_last_batch_is_skipped_not_an_error() {
    let mut data = batch(0, &["a", "b"], Compression::None);
    let second = batch(2, &["c", "d"], Compression::None);
    data.extend_from_slice(&second[..second.len() - 5]);
    let mut set = RecordSet::new(data.freeze(), DecodeOptions::default());
    let first = set.next().unwrap().unwrap();
    assert_eq!(first.records().count(), 2);
    assert!(set.next().is_none());
    assert!(set.truncated());
    assert_eq!(set.truncated_batch_size(), Some(second.len() as u64));
    // A fragment too short even for the length field is also just truncation.
    let mut set = RecordSet::new(Bytes::from_static(&[0, 0, 0]), DecodeOptions::default());
    assert!(set.next().is_none() && set.truncated());
}

#[test]
fn crc_mismatch_is_reported_and_can_be_disabled() {
    let mut data = batch(10, &["hello"], Compression::None);
    let o = data.len() - 2; // the value's last byte, before the header count
    data[o] ^= 0x01;
    let err = values(data.clone().freeze(), DecodeOptions::default()).unwrap_err();
    assert!(matches!(err, ProtocolError::CrcMismatch { offset: 10, .. }), "{err}");
    assert!(err.is_retriable());
    let off = DecodeOptions { check_crcs: false, ..Default::default() };
    assert_eq!(values(data.freeze(), off).unwrap(), [(10, "helln".to_owned())]);
}

#[test]
fn corrupt_batches_have_typed_errors() {
    let no_crc = DecodeOptions { check_crcs: false, ..Default::default() };
    // Negative batch length.
    let mut d = batch(3, &["x"], Compression::None);
    d[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(values(d.freeze(), no_crc), Err(ProtocolError::CorruptBatch { offset: 3, .. })));
    // Unknown magic.
    let mut d = batch(3, &["x"], Compression::None);
    d[16] = 7;
    assert!(matches!(values(d.freeze(), no_crc), Err(ProtocolError::UnsupportedMagic { offset: 3, magic: 7 })));
    // Unknown codec.
    let mut d = batch(3, &["x"], Compression::None);
    d[22] |= 0x07;
    assert!(matches!(values(d.freeze(), no_crc), Err(ProtocolError::UnknownCodec { codec: 7, .. })));
    // More records declared than present.
    let mut d = batch(3, &["x"], Compression::None);
    d[57..61].copy_from_slice(&2i32.to_be_bytes());
    assert!(matches!(values(d.freeze(), no_crc), Err(ProtocolError::CorruptRecord { index: 1, .. })));
    // Fewer declared than present: leftover bytes.
    let mut d = batch(3, &["x", "y"], Compression::None);
    d[57..61].copy_from_slice(&1i32.to_be_bytes());
    assert!(matches!(values(d.freeze(), no_crc), Err(ProtocolError::CorruptRecord { index: 1, .. })));
    // A record length pointing past the batch.
    let mut d = batch(3, &["x"], Compression::None);
    d[61] = 0x7e;
    assert!(matches!(values(d.freeze(), no_crc), Err(ProtocolError::CorruptRecord { index: 0, .. })));
    // Batch length shorter than the v2 header.
    let mut d = batch(3, &["x"], Compression::None);
    d.truncate(40);
    d[8..12].copy_from_slice(&28i32.to_be_bytes());
    assert!(matches!(values(d.freeze(), no_crc), Err(ProtocolError::CorruptBatch { offset: 3, .. })));
    // Garbage compressed section.
    let mut d = batch(3, &["x"], Compression::Gzip);
    let n = d.len();
    d[61..n].fill(0x55);
    assert!(matches!(values(d.freeze(), no_crc), Err(ProtocolError::Decompress { codec: Compression::Gzip, .. })));
}

#[test]
fn decompression_is_bounded() {
    let big = vec![0u8; 4 << 20];
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let small = compress(codec, &big).unwrap();
        assert!(small.len() < 300 * 1024, "{codec}: {} bytes", small.len());
        match decompress(codec, &small, 1 << 20, 77) {
            Err(ProtocolError::DecompressLimit { codec: c, offset: 77, limit }) => {
                assert_eq!((c, limit), (codec, 1 << 20))
            }
            other => panic!("{codec}: expected DecompressLimit, got {:?}", other.map(|v| v.len())),
        }
        assert_eq!(decompress(codec, &small, 8 << 20, 0).unwrap(), big);
    }
}

#[test]
fn raw_snappy_and_broken_lz4_header_checksum_are_read() {
    let raw = snap::raw::Encoder::new().compress_vec(b"raw snappy block").unwrap();
    assert_eq!(decompress(Compression::Snappy, &raw, 1024, 0).unwrap(), b"raw snappy block");
    // Kafka's magic-0 writers hashed the magic number into the header checksum
    // (KAFKA-3160): accepted, as Java's and librdkafka's readers accept it.
    let mut frame = compress(Compression::Lz4, b"old kafka lz4").unwrap();
    assert_eq!(frame[4] & 0x08, 0, "no content size: a 7-byte header");
    let old_hc = (twox_hash::XxHash32::oneshot(0, &frame[..6]) >> 8) as u8;
    assert_ne!(old_hc, frame[6]);
    frame[6] = old_hc;
    assert_eq!(decompress(Compression::Lz4, &frame, 1024, 0).unwrap(), b"old kafka lz4");
    // Any other checksum is a corrupt header.
    frame[6] = old_hc.wrapping_add(1);
    let err = decompress(Compression::Lz4, &frame, 1024, 0).unwrap_err();
    assert!(err.to_string().contains("header checksum"), "{err}");
}

#[test]
fn records_below_the_requested_offset_are_skipped() {
    let data = batch(100, &["a", "b", "c", "d"], Compression::Snappy).freeze();
    let b = RecordSet::new(data, DecodeOptions::default()).next().unwrap().unwrap();
    let offsets: Vec<i64> = b.records_from(102).map(|r| r.unwrap().offset).collect();
    assert_eq!(offsets, [102, 103]);
}

#[test]
fn legacy_crc_and_nesting_errors() {
    let msg = LegacyMessage { offset: 5, timestamp: 1, key: None, value: Some(b"v") };
    let mut d = BytesMut::new();
    encode_legacy_message(&mut d, 1, Compression::None, 5, std::slice::from_ref(&msg)).unwrap();
    let last = d.len() - 1;
    d[last] ^= 1;
    assert!(matches!(values(d.freeze(), DecodeOptions::default()), Err(ProtocolError::CrcMismatch { offset: 5, .. })));
    assert!(matches!(
        encode_legacy_message(&mut BytesMut::new(), 2, Compression::None, 0, &[msg]),
        Err(ProtocolError::Unencodable(_))
    ));
}

#[test]
fn read_committed_drops_aborted_transactions_and_markers() {
    let mut data = BytesMut::new();
    let txn = |base, pid, vals: &[&str]| {
        let mut b = RecordBatchBuilder::new(Compression::None).base_offset(base).producer(pid, 0, 0, true);
        for v in vals {
            b.push(&NewRecord { value: Some(v.as_bytes()), ..Default::default() }).unwrap();
        }
        let mut out = BytesMut::new();
        b.finish(&mut out).unwrap();
        out
    };
    data.extend_from_slice(&txn(0, 1, &["p1-aborted-a", "p1-aborted-b"]));
    data.extend_from_slice(&txn(2, 2, &["p2-committed"]));
    RecordBatchBuilder::control(&mut data, 3, 1, 0, ControlMarker::Abort, 0).unwrap();
    RecordBatchBuilder::control(&mut data, 4, 2, 0, ControlMarker::Commit, 0).unwrap();
    data.extend_from_slice(&txn(5, 1, &["p1-committed"]));
    data.extend_from_slice(&batch(6, &["plain"], Compression::None));
    let mut filter = AbortedTransactions::new(vec![AbortedTransaction { producer_id: 1, first_offset: 0 }]);
    let mut seen = Vec::new();
    let mut markers = Vec::new();
    for b in RecordSet::new(data.freeze(), DecodeOptions::default()) {
        let b = b.unwrap();
        markers.extend(b.control_marker());
        if filter.retain(&b) {
            seen.extend(b.records().map(|r| String::from_utf8(r.unwrap().value.unwrap().to_vec()).unwrap()));
        }
    }
    assert_eq!(seen, ["p2-committed", "p1-committed", "plain"]);
    assert_eq!(markers, [ControlMarker::Abort, ControlMarker::Commit]);
}

/// A response announcing 2^31 − 1 array elements in a few bytes is a typed decode error, not an
/// attempt to allocate for them (found by `cargo fuzz run response`; kafka-protocol preallocated
/// from the wire count until vendor/kafka-protocol was patched).
#[test]
fn huge_array_count_is_refused_before_allocating() {
    use ferrokafka_protocol::frame::decode_response;
    use kafka_protocol::messages::{ApiKey, DeleteTopicsResponse, MetadataResponse};

    // DeleteTopics v0: correlation id, then the `responses` array count.
    let mut frame = BytesMut::new();
    frame.put_i32(7);
    frame.put_i32(i32::MAX);
    frame.put_slice(b"abc");
    let err = decode_response::<DeleteTopicsResponse>(frame.freeze(), ApiKey::DeleteTopics, 0).unwrap_err();
    assert!(matches!(err, ProtocolError::Decode { api: ApiKey::DeleteTopics, version: 0, .. }), "{err:?}");
    assert!(err.to_string().contains("exceeds the 3 bytes remaining"), "{err}");

    // Metadata v0: `brokers` array count.
    let mut frame = BytesMut::new();
    frame.put_i32(7);
    frame.put_i32(0x4000_0000);
    let err = decode_response::<MetadataResponse>(frame.freeze(), ApiKey::Metadata, 0).unwrap_err();
    assert!(err.to_string().contains("exceeds the 0 bytes remaining"), "{err}");
}

/// The same for compact (flexible-version) arrays, whose count is an unsigned varint.
#[test]
fn huge_compact_array_count_is_refused_before_allocating() {
    use ferrokafka_protocol::frame::decode_response;
    use kafka_protocol::messages::{ApiKey, DeleteTopicsResponse};

    // DeleteTopics v4: correlation id, header tagged fields (0), throttle_time_ms, then the
    // compact `responses` count 0xFFFF_FFFF (count + 1 as a varint).
    let mut frame = BytesMut::new();
    frame.put_i32(7);
    frame.put_u8(0);
    frame.put_i32(0);
    frame.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    frame.put_slice(b"x");
    let err = decode_response::<DeleteTopicsResponse>(frame.freeze(), ApiKey::DeleteTopics, 4).unwrap_err();
    assert!(err.to_string().contains("exceeds the 1 bytes remaining"), "{err}");
}

/// A legitimate array is still decoded: the bound is the bytes left, not a fixed cap.
#[test]
fn arrays_that_fit_still_decode() {
    use ferrokafka_protocol::frame::decode_response;
    use kafka_protocol::messages::{ApiKey, DeleteTopicsResponse};

    let mut frame = BytesMut::new();
    frame.put_i32(7);
    frame.put_i32(2);
    for name in ["a", "bb"] {
        frame.put_i16(name.len() as i16);
        frame.put_slice(name.as_bytes());
        frame.put_i16(0);
    }
    let (header, body) = decode_response::<DeleteTopicsResponse>(frame.freeze(), ApiKey::DeleteTopics, 0).unwrap();
    assert_eq!(header.correlation_id, 7);
    let names: Vec<&str> = body.responses.iter().map(|r| r.name.as_ref().map(|n| &***n).unwrap_or("")).collect();
    assert_eq!(names, ["a", "bb"]);
}
