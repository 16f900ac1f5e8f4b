//! Fetching from a follower (KIP-392) on librdkafka's mock cluster: the leader names a
//! preferred read replica, the consumer reads from it, falls back to the leader when
//! the follower goes down, and returns to the follower when it is back. Every record is
//! read once, in order, across the switches. On librdkafka 2.16's mock, request
//! tracking shows which broker served the fetches. (An error code from a follower,
//! OFFSET_OUT_OF_RANGE included, sends the partition back to its leader without a
//! reset: `follower_refusal` in the client, table-tested.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_tests::mock::{mock_version, MockCluster};
use ferrokafka_tests::unique_topic;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Produces v{from}..v{to}, one batch per record (the mock's follower checks only
/// where a batch starts against its high watermark).
async fn produce(b: &str, topic: &str, from: usize, to: usize) {
    let p =
        Producer::new(ClientConfig::from_pairs([("bootstrap.servers", b), ("linger.ms", "0")]).unwrap()).await.unwrap();
    for i in from..to {
        let f = p.send(ProducerRecord::new(topic, format!("v{i}")).partition(0)).await.unwrap();
        f.await.unwrap();
    }
    p.close().await;
}

/// Polls until at least `until` values are read (in order, each once), or panics after
/// 30 s. One poll may return more than asked for: a fetch the consumer had in flight to
/// the leader before the test named the follower again can bring records past a
/// follower's high watermark; what matters is that none is lost, repeated or reordered.
async fn read_to(c: &mut Consumer, got: &mut Vec<String>, until: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < until {
        assert!(Instant::now() < deadline, "only {} of {until} read: {:?}", got.len(), got.last());
        // Errors while the follower is down are retried by the consumer itself.
        let Ok(records) = c.poll(Duration::from_millis(200)).await else { continue };
        for r in &records {
            let r = r.unwrap();
            got.push(String::from_utf8(r.record.value.clone().unwrap().to_vec()).unwrap());
        }
    }
    let want: Vec<String> = (0..got.len()).map(|i| format!("v{i}")).collect();
    assert_eq!(got, &want, "every record once, in order");
}

/// `broker_requests Fetch` → fetches per broker id (2.16's request tracking).
fn fetches_by_broker(mock: &mut MockCluster) -> Vec<(usize, usize)> {
    let reply = mock.must("broker_requests Fetch");
    reply
        .split_whitespace()
        .skip(1)
        .map(|w| {
            let (b, n) = w.split_once('=').unwrap();
            (b.parse().unwrap(), n.parse().unwrap())
        })
        .collect()
}

#[test]
fn reads_from_the_preferred_replica_and_falls_back_to_the_leader() {
    let mut mock = MockCluster::start(3);
    let topic = unique_topic("follower");
    mock.must(&format!("topic {topic} 1 3"));
    mock.must(&format!("leader {topic} 0 1"));
    mock.must("rack -1 zone-a");
    let b = mock.bootstrap().to_owned();
    let tracking = mock_version() == "2.16";
    let rt = runtime();
    rt.block_on(produce(&b, &topic, 0, 100));
    mock.must(&format!("follower {topic} 0 2"));
    if tracking {
        mock.must("track start");
    }
    let cfg = ClientConfig::from_pairs([
        ("bootstrap.servers", b.as_str()),
        ("client.rack", "zone-a"),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "100"),
        ("retry.backoff.ms", "50"),
        ("request.timeout.ms", "3000"),
        ("reconnect.backoff.max.ms", "200"),
    ])
    .unwrap();
    let mut got = Vec::new();
    let mut c = rt.block_on(Consumer::new(cfg)).unwrap();
    let tp = TopicPartition::new(&*topic, 0);
    c.assign([tp.clone()]);
    c.seek(&tp, 0).unwrap();
    rt.block_on(read_to(&mut c, &mut got, 100));
    if tracking {
        let by_broker = fetches_by_broker(&mut mock);
        assert!(by_broker.iter().any(|&(b, n)| b == 2 && n > 0), "the follower served fetches: {by_broker:?}");
        mock.must("track clear");
    }

    // The follower goes down, and the leader stops naming it (the mock names a follower
    // whether it is up or not; Kafka names only live, caught-up replicas): the fetch
    // to the follower fails and the consumer goes back to the leader.
    mock.must("down 2");
    mock.must(&format!("follower {topic} 0 -1"));
    rt.block_on(produce(&b, &topic, 100, 200));
    rt.block_on(read_to(&mut c, &mut got, 200));
    mock.must("up 2");
    mock.must(&format!("follower {topic} 0 2"));

    // The follower is behind: it has offsets up to 230 while the leader has 260. At 230
    // it answers OFFSET_OUT_OF_RANGE, which must not reset the position (a reset to
    // earliest would read everything again): the consumer goes back to the leader (the
    // mock's leader names the follower again, so the consumer waits for it to catch
    // up; Kafka's leader would serve the rest itself) and reads on once it has.
    mock.must(&format!("wmarks {topic} 0 0 230"));
    rt.block_on(produce(&b, &topic, 200, 260));
    rt.block_on(read_to(&mut c, &mut got, 230));
    std::thread::sleep(Duration::from_millis(300));
    mock.must(&format!("wmarks {topic} 0 -1 -1"));
    rt.block_on(read_to(&mut c, &mut got, 260));
    rt.block_on(c.close());
}

/// The exact-range reader (batch reads, the stream's executors) reads from the preferred
/// replica too, and goes back to the leader when the follower is down or behind; every
/// range is read exactly.
#[test]
fn range_reads_use_the_preferred_replica_and_fall_back_to_the_leader() {
    use ferrokafka_client::cluster::Cluster;
    use ferrokafka_client::range::RangeReader;

    let mut mock = MockCluster::start(3);
    let topic = unique_topic("follower-range");
    mock.must(&format!("topic {topic} 1 3"));
    mock.must(&format!("leader {topic} 0 1"));
    mock.must("rack -1 zone-a");
    let b = mock.bootstrap().to_owned();
    let tracking = mock_version() == "2.16";
    let rt = runtime();
    rt.block_on(produce(&b, &topic, 0, 150));
    mock.must(&format!("follower {topic} 0 2"));
    if tracking {
        mock.must("track start");
    }
    let cfg = ClientConfig::from_pairs([
        ("bootstrap.servers", b.as_str()),
        ("client.rack", "zone-a"),
        ("fetch.max.wait.ms", "100"),
        ("retry.backoff.ms", "50"),
        ("request.timeout.ms", "3000"),
        ("reconnect.backoff.max.ms", "200"),
    ])
    .unwrap();
    let cluster = rt.block_on(Cluster::connect(cfg)).unwrap();
    let tp = TopicPartition::new(&*topic, 0);
    let reading = |from: i64, until: i64| {
        let (cluster, tp) = (cluster.clone(), tp.clone());
        rt.spawn(async move {
            let r = RangeReader::new(cluster, tp, from, until, Duration::from_secs(20)).unwrap();
            let records = r.read_all().await.unwrap();
            records.iter().map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()).collect::<Vec<_>>()
        })
    };
    let read = |from: i64, until: i64| -> Vec<String> { rt.block_on(reading(from, until)).unwrap() };
    let want = |from: usize, until: usize| -> Vec<String> { (from..until).map(|i| format!("v{i}")).collect() };
    assert_eq!(read(0, 50), want(0, 50));
    assert_eq!(read(50, 100), want(50, 100));
    if tracking {
        let by_broker = fetches_by_broker(&mut mock);
        assert!(by_broker.iter().any(|&(b, n)| b == 2 && n > 0), "the follower served range fetches: {by_broker:?}");
    }
    // The follower down (and no longer named): the leader serves the range.
    mock.must("down 2");
    mock.must(&format!("follower {topic} 0 -1"));
    assert_eq!(read(100, 120), want(100, 120));
    mock.must("up 2");
    mock.must(&format!("follower {topic} 0 2"));
    // The follower behind the range's end: at its end the mock's follower answers
    // OFFSET_OUT_OF_RANGE, which sends the range back to the leader (which, on the mock,
    // names the follower again until it has caught up), never RangeUnavailable. (A Kafka
    // follower answers such a fetch empty instead; the reader then also goes back to the
    // leader rather than wait for the follower: `handle` in client/src/range/reader.rs.
    // No test broker answers that way.)
    mock.must(&format!("wmarks {topic} 0 0 130"));
    // Held behind longer than the reader's catch-up wait (2 s): a follower's short log
    // must not end the range as unavailable.
    let reader = reading(120, 150);
    std::thread::sleep(Duration::from_secs(3));
    mock.must(&format!("wmarks {topic} 0 -1 -1"));
    assert_eq!(rt.block_on(reader).unwrap(), want(120, 150));
}

/// A batch read whose executor has a rack reads through a cluster handle with
/// `client.rack` set to it: its Fetch requests carry the rack (checked on the fake
/// cluster's recording: an executor without a rack sends none), and on the mock the
/// preferred replica serves them (2.16's request tracking shows the follower). The mock
/// names its follower whatever rack a client gives, so the rack itself is checked on the
/// fake. Every record is read exactly.
#[test]
fn executors_with_a_rack_read_from_the_replica_in_their_rack() {
    use ferrokafka_streaming::{create_batch, Executor, ExecutorPool, KafkaParams, OffsetRange, PreferConsistent};
    use ferrokafka_tests::fake::FakeCluster;
    use kafka_protocol::messages::{ApiKey, FetchRequest};

    let rt = runtime();
    let read = |bootstrap: &str, topic: &str, executor: Executor, n: usize| -> Vec<String> {
        let params = KafkaParams::new([
            ("bootstrap.servers", bootstrap),
            ("group.id", "follower-exec"),
            ("fetch.max.wait.ms", "100"),
        ])
        .unwrap();
        rt.block_on(async {
            let pool =
                ExecutorPool::new(&params, vec![executor], Default::default(), Default::default()).await.unwrap();
            let range = OffsetRange::new(topic, 0, 0, n as i64).unwrap();
            let parts = create_batch(vec![range], &PreferConsistent, pool).unwrap().collect().await.unwrap();
            parts[0].records.iter().map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()).collect()
        })
    };
    let want = |n: usize| -> Vec<String> { (0..n).map(|i| format!("v{i}")).collect() };

    // The rack on the wire, per executor.
    let fake = FakeCluster::start();
    fake.create_topic("racks", 1);
    rt.block_on(produce(&fake.addr(), "racks", 0, 20));
    let racks_sent = |fake: &FakeCluster, from: usize| -> Vec<String> {
        let fetches = fake.requests_of(ApiKey::Fetch);
        fetches[from..].iter().map(|r| r.decode::<FetchRequest>().rack_id.to_string()).collect()
    };
    assert_eq!(read(&fake.addr(), "racks", Executor::new("0", "localhost"), 20), want(20));
    let mark = fake.requests_of(ApiKey::Fetch).len();
    assert!(racks_sent(&fake, 0).iter().all(String::is_empty), "no rack without one");
    assert_eq!(read(&fake.addr(), "racks", Executor::new("0", "localhost").with_rack("zone-a"), 20), want(20));
    let sent = racks_sent(&fake, mark);
    assert!(!sent.is_empty() && sent.iter().all(|r| r == "zone-a"), "the executor's rack: {sent:?}");

    // The follower serves the executor in its rack.
    let mut mock = MockCluster::start(3);
    let topic = unique_topic("follower-exec");
    mock.must(&format!("topic {topic} 1 3"));
    mock.must(&format!("leader {topic} 0 1"));
    mock.must("rack -1 zone-a");
    let b = mock.bootstrap().to_owned();
    rt.block_on(produce(&b, &topic, 0, 60));
    mock.must(&format!("follower {topic} 0 2"));
    let tracking = mock_version() == "2.16";
    if tracking {
        mock.must("track start");
    }
    assert_eq!(read(&b, &topic, Executor::new("0", "localhost").with_rack("zone-a"), 60), want(60));
    if tracking {
        let by_broker = fetches_by_broker(&mut mock);
        assert!(by_broker.iter().any(|&(b, n)| b == 2 && n > 0), "the follower served: {by_broker:?}");
    }
}
