use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;

use super::*;
use crate::frame::encode_request;

fn produce_meta(version: i16, correlation_id: i32, client_id: Option<&str>) -> RequestMeta {
    RequestMeta {
        api: ApiKey::Produce,
        version,
        correlation_id,
        client_id: client_id.map(|c| StrBytes::from_string(c.to_owned())),
    }
}

/// What `encode_request` makes of the same request.
fn reference(
    meta: &RequestMeta,
    transactional_id: Option<&str>,
    acks: i16,
    timeout_ms: i32,
    topics: &[ProduceTopic<'_>],
) -> Result<Bytes> {
    let topic_data = topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|(index, records)| {
                    PartitionProduceData::default().with_index(*index).with_records(Some(records.clone()))
                })
                .collect();
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(t.name.to_owned())))
                .with_partition_data(partitions)
        })
        .collect();
    let req = ProduceRequest::default()
        .with_transactional_id(transactional_id.map(|id| TransactionalId(StrBytes::from_string(id.to_owned()))))
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topic_data);
    let mut buf = BytesMut::new();
    encode_request(&mut buf, meta, &req)?;
    Ok(buf.freeze())
}

/// Encodes with both encoders and compares; checks that no part is empty and that
/// every non-empty batch is a part of its own, in order, the very buffer given.
fn check(meta: &RequestMeta, transactional_id: Option<&str>, acks: i16, timeout_ms: i32, topics: &[ProduceTopic<'_>]) {
    let parts = encode_produce(meta, transactional_id, acks, timeout_ms, topics).unwrap();
    let want = reference(meta, transactional_id, acks, timeout_ms, topics).unwrap();
    assert_eq!(parts.concat(), want.to_vec(), "Produce v{}", meta.version);
    assert!(parts.iter().all(|p| !p.is_empty()), "an empty part");
    let mut batches = topics.iter().flat_map(|t| &t.partitions).map(|(_, b)| b).filter(|b| !b.is_empty());
    let mut expected = batches.next();
    let mut shared = 0;
    for part in &parts {
        if let Some(batch) = expected.filter(|b| b.as_ptr() == part.as_ptr()) {
            assert_eq!(part.len(), batch.len());
            shared += 1;
            expected = batches.next();
        }
    }
    assert!(expected.is_none(), "batch {shared} is not a part of its own (copied?)");
    // The rest are the bytes between batches: one part before each, one after the last.
    assert!(parts.len() - shared <= shared + 1);
}

#[test]
fn known_frames() {
    let batch = Bytes::from(vec![1u8, 2, 3]);
    let topics = [ProduceTopic { name: "t", partitions: vec![(0, batch.clone())] }];
    // v9: header v2 (tagged fields), compact lengths, a tagged-field section after the
    // partition, the topic and the body.
    let parts = encode_produce(&produce_meta(9, 7, Some("c")), None, -1, 1000, &topics).unwrap();
    let want: [&[u8]; 3] = [
        &[
            0, 0, 0, 34, // size
            0, 0, 0, 9, 0, 0, 0, 7, 0, 1, b'c', 0, // api key, version, correlation id, client id, tags
            0, // transactional id: null
            0xff, 0xff, 0, 0, 0x03, 0xe8, // acks -1, timeout 1000 ms
            2, 2, b't', 2, // one topic, "t", one partition
            0, 0, 0, 0, 4, // partition 0, 3 bytes of records
        ],
        &[1, 2, 3],
        &[0, 0, 0], // tags: partition, topic, body
    ];
    assert_eq!(parts.iter().map(|p| &p[..]).collect::<Vec<_>>(), want);
    assert_eq!(parts[1].as_ptr(), batch.as_ptr());
    // v3: header v1, int16/int32 lengths, nothing after the last batch.
    let parts = encode_produce(&produce_meta(3, 7, Some("c")), None, -1, 1000, &topics).unwrap();
    let want: [&[u8]; 2] = [
        &[
            0, 0, 0, 41, // size
            0, 0, 0, 3, 0, 0, 0, 7, 0, 1, b'c', // api key, version, correlation id, client id
            0xff, 0xff, // transactional id: null
            0xff, 0xff, 0, 0, 0x03, 0xe8, // acks -1, timeout 1000 ms
            0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, // one topic, "t", one partition
            0, 0, 0, 0, 0, 0, 0, 3, // partition 0, 3 bytes of records
        ],
        &[1, 2, 3],
    ];
    assert_eq!(parts.iter().map(|p| &p[..]).collect::<Vec<_>>(), want);
}

#[test]
fn other_versions_and_apis_are_refused() {
    for version in [-1, 0, 2, 10, 11] {
        let result = encode_produce(&produce_meta(version, 1, None), None, 1, 0, &[]);
        assert!(matches!(result, Err(ProtocolError::Encode { api: ApiKey::Produce, .. })), "v{version}");
    }
    let fetch = RequestMeta { api: ApiKey::Fetch, ..produce_meta(9, 1, None) };
    assert!(matches!(encode_produce(&fetch, None, 1, 0, &[]), Err(ProtocolError::Encode { .. })));
}

#[test]
fn strings_over_an_int16_length_need_v9() {
    let long = "x".repeat(i16::MAX as usize + 1);
    let batch = Bytes::from_static(b"records");
    let short_name = [ProduceTopic { name: "t", partitions: vec![(0, batch.clone())] }];
    let long_name = [ProduceTopic { name: long.as_str(), partitions: vec![(0, batch)] }];
    for version in 3..=8 {
        let meta = produce_meta(version, 1, None);
        assert!(encode_produce(&meta, Some(long.as_str()), 1, 0, &short_name).is_err());
        assert!(reference(&meta, Some(long.as_str()), 1, 0, &short_name).is_err());
        assert!(encode_produce(&meta, None, 1, 0, &long_name).is_err());
        assert!(reference(&meta, None, 1, 0, &long_name).is_err());
    }
    check(&produce_meta(9, 1, None), Some(long.as_str()), 1, 0, &short_name);
    check(&produce_meta(9, 1, None), None, 1, 0, &long_name);
}

#[test]
fn frames_over_2_gib_are_refused() {
    // One 1 MiB buffer shared by every partition: gigabytes of frame, no gigabytes of memory.
    let mib = Bytes::from(vec![7u8; 1 << 20]);
    let topic = |n: i32| [ProduceTopic { name: "t", partitions: (0..n).map(|i| (i, mib.clone())).collect() }];
    for version in PRODUCE_VERSIONS {
        let meta = produce_meta(version, 1, Some("c"));
        // 2047 MiB of records and what frames them fit an int32 size...
        let parts = encode_produce(&meta, Some("txn"), 1, 1000, &topic(2047)).unwrap();
        let total: usize = parts.iter().map(Bytes::len).sum();
        let size = i32::from_be_bytes(parts[0][..4].try_into().unwrap());
        assert_eq!(usize::try_from(size).unwrap(), total - 4);
        assert_eq!(parts.iter().filter(|p| p.as_ptr() == mib.as_ptr()).count(), 2047);
        // ...2048 MiB do not.
        let result = encode_produce(&meta, Some("txn"), 1, 1000, &topic(2048));
        assert!(matches!(result, Err(ProtocolError::Encode { api: ApiKey::Produce, .. })), "v{version}");
    }
}

/// A topic: a name (long enough, at times, for a 2-byte compact length) and up to 4
/// partitions, whose batches are empty, short, or long enough for a 3-byte one.
fn topic() -> impl Strategy<Value = (String, Vec<(i32, Bytes)>)> {
    let batch = (prop_oneof![Just(0usize), 1..300usize, 16_000..16_500usize], any::<u8>())
        .prop_map(|(len, seed)| Bytes::from((0..len).map(|i| (i as u8) ^ seed).collect::<Vec<u8>>()));
    ("[a-zA-Z0-9._-]{0,150}", proptest::collection::vec((any::<i32>(), batch), 0..5))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn parts_are_what_encode_request_writes_at_every_version(
        correlation_id in any::<i32>(),
        client_id in proptest::option::of("[a-z0-9-]{0,20}"),
        transactional_id in proptest::option::of("[a-zA-Z0-9._-]{0,150}"),
        acks in any::<i16>(),
        timeout_ms in any::<i32>(),
        topics in proptest::collection::vec(topic(), 0..5),
    ) {
        let topics: Vec<ProduceTopic<'_>> =
            topics.iter().map(|(name, partitions)| ProduceTopic { name: name.as_str(), partitions: partitions.clone() }).collect();
        for version in PRODUCE_VERSIONS {
            let meta = produce_meta(version, correlation_id, client_id.as_deref());
            check(&meta, transactional_id.as_deref(), acks, timeout_ms, &topics);
        }
    }
}
