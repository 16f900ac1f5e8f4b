//! ApiVersions negotiation and raw Produce + Fetch round trips against real brokers
//! (tansu and librdkafka's mock cluster), through the protocol crate over a plain
//! socket; plus the same bytes crossing to and from kcat and kafka-python.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use ferrokafka_protocol::records::{DecodeOptions, NewHeader, NewRecord, Record, RecordBatchBuilder, RecordSet};
use ferrokafka_protocol::Compression;
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::peers::{kcat_consume, kcat_produce, kpy_consume, kpy_produce};
use ferrokafka_tests::raw::RawConnection;
use ferrokafka_tests::tansu::Tansu;
use ferrokafka_tests::unique_topic;
use kafka_protocol::messages::ApiKey;

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

fn batch(codec: Compression, n: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(codec);
    for i in 0..n {
        let key = format!("key-{i}");
        let value = format!("value-{i}-{}", "x".repeat(i % 50));
        let hv = i.to_string();
        let headers = [NewHeader { key: "i", value: Some(hv.as_bytes()) }, NewHeader { key: "null", value: None }];
        b.push(&NewRecord {
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
            headers: &headers,
            timestamp: 1_700_000_000_000 + i as i64,
        })
        .unwrap();
    }
    let mut out = BytesMut::new();
    b.finish(&mut out).unwrap();
    out.freeze()
}

/// Fetches until `count` records from `from` were read (bounded number of fetches).
fn fetch_all(conn: &mut RawConnection, topic: &str, partition: i32, from: i64, count: usize) -> Vec<Record> {
    let mut out = Vec::new();
    let mut offset = from;
    for _ in 0..50 {
        if out.len() >= count {
            break;
        }
        let (_hw, data) = conn.fetch(topic, partition, offset).unwrap();
        for b in RecordSet::new(data, DecodeOptions::default()) {
            for r in b.unwrap().records_from(offset) {
                let r = r.unwrap();
                offset = r.offset + 1;
                out.push(r);
            }
        }
    }
    assert_eq!(out.len(), count, "{topic}/{partition}: records read back");
    out
}

fn check_round_trip(conn: &mut RawConnection, topic: &str) {
    for (partition, codec) in CODECS.into_iter().enumerate() {
        let partition = partition as i32;
        let n = 40;
        let base = conn.produce(topic, partition, batch(codec, n)).unwrap();
        let base2 = conn.produce(topic, partition, batch(codec, n)).unwrap();
        assert_eq!(base2, base + n as i64, "{codec}: offsets are contiguous");
        let records = fetch_all(conn, topic, partition, base, 2 * n);
        for (j, r) in records.iter().enumerate() {
            let i = j % n;
            assert_eq!(r.offset, base + j as i64, "{codec}");
            assert_eq!(r.key.as_deref(), Some(format!("key-{i}").as_bytes()), "{codec}");
            assert_eq!(r.value.as_deref(), Some(format!("value-{i}-{}", "x".repeat(i % 50)).as_bytes()), "{codec}");
            assert_eq!(r.timestamp, 1_700_000_000_000 + i as i64, "{codec}");
            let h: Vec<_> = r.headers.iter().map(|h| (h.key, h.value)).collect();
            assert_eq!(
                h,
                [(Bytes::from("i"), Some(Bytes::from(i.to_string()))), (Bytes::from("null"), None)],
                "{codec}"
            );
        }
    }
}

#[test]
fn tansu_negotiates_and_round_trips_every_codec() {
    let broker = Tansu::start();
    let mut conn = RawConnection::connect(broker.addr()).unwrap();
    assert_eq!(conn.api_versions_sent, [3], "tansu knows ApiVersions v3");
    for api in [ApiKey::Produce, ApiKey::Fetch, ApiKey::Metadata, ApiKey::ListOffsets] {
        let v = conn.version(api).unwrap();
        assert!(v >= 1, "{api:?} negotiated v{v}");
    }
    let topic = unique_topic("rt");
    conn.create_topic(&topic, CODECS.len() as i32).unwrap();
    let md = conn.metadata(&[&topic]).unwrap();
    assert_eq!(md.topics[0].partitions.len(), CODECS.len());
    check_round_trip(&mut conn, &topic);
}

#[test]
fn mock_cluster_negotiates_down_and_round_trips_every_codec() {
    let mut mock = MockCluster::start(3);
    let topic = unique_topic("rt");
    mock.create_topic(&topic, CODECS.len() as u32);
    for p in 0..CODECS.len() {
        mock.must(&format!("leader {topic} {p} 1"));
    }
    let mut conn = RawConnection::connect(mock.broker(1)).unwrap();
    // librdkafka's mock knows ApiVersions up to v2 (2.16's too): it answers v3 with
    // UNSUPPORTED_VERSION in a layout no version has, and we retry at v0.
    assert_eq!(conn.api_versions_sent, [3, 0]);
    let metadata = conn.version(ApiKey::Metadata).unwrap();
    match ferrokafka_tests::mock::mock_version().as_str() {
        "2.0.2" => assert_eq!(metadata, 2),
        _ => assert!(metadata >= 9, "2.16 announces flexible Metadata versions: v{metadata}"),
    }
    let md = conn.metadata(&[&topic]).unwrap();
    assert_eq!(md.brokers.len(), 3);
    check_round_trip(&mut conn, &topic);
}

#[test]
fn kcat_and_protocol_crate_exchange_records_on_the_mock() {
    let mut mock = MockCluster::start(1);
    for codec in CODECS {
        let topic = unique_topic(&format!("kcat-{codec}"));
        mock.create_topic(&topic, 1);
        let sent: Vec<(String, String)> = (0..20).map(|i| (format!("k{i}"), format!("{codec}-value-{i}"))).collect();
        let pairs: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        kcat_produce(mock.bootstrap(), &topic, 0, &pairs, codec.name()).unwrap();
        let mut conn = RawConnection::connect(mock.bootstrap()).unwrap();
        let got = fetch_all(&mut conn, &topic, 0, 0, sent.len());
        for (r, (k, v)) in got.iter().zip(&sent) {
            assert_eq!((r.key.as_deref(), r.value.as_deref()), (Some(k.as_bytes()), Some(v.as_bytes())), "{codec}");
        }
        // And the other way: our batch, read by kcat.
        let base = conn.produce(&topic, 0, batch(codec, 5)).unwrap();
        assert_eq!(base, 20);
        let read = kcat_consume(mock.bootstrap(), &topic, 25).unwrap();
        let ours: Vec<_> = read.iter().filter(|r| r.offset >= 20).map(|r| (r.key.clone(), r.value.clone())).collect();
        let want: Vec<_> =
            (0..5).map(|i| (Some(format!("key-{i}")), Some(format!("value-{i}-{}", "x".repeat(i % 50))))).collect();
        assert_eq!(ours, want, "{codec}: kcat reads our batch");
    }
}

#[test]
fn kafka_python_and_protocol_crate_exchange_records_on_tansu() {
    let broker = Tansu::start();
    let mut conn = RawConnection::connect(broker.addr()).unwrap();
    for codec in CODECS {
        let topic = unique_topic(&format!("kpy-{codec}"));
        conn.create_topic(&topic, 1).unwrap();
        let sent: Vec<(Option<String>, Option<String>)> = (0..10)
            .map(|i| {
                (
                    if i == 3 { None } else { Some(format!("k{i}")) },
                    if i == 5 { None } else { Some(format!("{codec}-v{i}")) },
                )
            })
            .collect();
        let refs: Vec<(Option<&str>, Option<&str>)> = sent.iter().map(|(k, v)| (k.as_deref(), v.as_deref())).collect();
        kpy_produce(broker.addr(), &topic, 0, &refs, codec.name()).unwrap();
        let got = fetch_all(&mut conn, &topic, 0, 0, sent.len());
        for (r, (k, v)) in got.iter().zip(&sent) {
            assert_eq!(r.key.as_deref(), k.as_deref().map(str::as_bytes), "{codec}");
            assert_eq!(r.value.as_deref(), v.as_deref().map(str::as_bytes), "{codec}");
        }
        let base = conn.produce(&topic, 0, batch(codec, 5)).unwrap();
        let read = kpy_consume(broker.addr(), &topic, 0, 15).unwrap();
        let ours: Vec<_> = read.iter().filter(|r| r.offset >= base).map(|r| (r.key.clone(), r.value.clone())).collect();
        let want: Vec<_> =
            (0..5).map(|i| (Some(format!("key-{i}")), Some(format!("value-{i}-{}", "x".repeat(i % 50))))).collect();
        assert_eq!(ours, want, "{codec}: kafka-python reads our batch");
    }
}
