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

/// Polls until `until` values are read (in order, each once), or panics after 30 s.
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
    let want: Vec<String> = (0..until).map(|i| format!("v{i}")).collect();
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
