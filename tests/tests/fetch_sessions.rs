//! Incremental fetch sessions (KIP-227) against the fake cluster, which keeps sessions as
//! Kafka does (neither mock nor tansu 0.6 keeps any: they answer session id 0, and the
//! consumer then sends full requests, which every other suite exercises).
//!
//! A consumer of 1,000 partitions opens a session with one full Fetch, then sends
//! incremental ones naming only the partitions whose position moved; the request sizes
//! are printed (README quotes them). An evicted session, pausing and resuming, and an
//! assignment change lose no position; a broker without sessions gets full requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_tests::fake::{FakeCluster, Request};
use kafka_protocol::messages::{ApiKey, FetchRequest};

const TOPIC: &str = "many";
const PARTITIONS: i32 = 1000;
/// The partitions records are written to.
const BUSY: [i32; 5] = [3, 250, 500, 751, 999];

fn config(fake: &FakeCluster) -> ClientConfig {
    let addr = fake.addr();
    ClientConfig::from_pairs([
        ("bootstrap.servers", addr.as_str()),
        ("enable.idempotence", "false"),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "20"),
        ("retry.backoff.ms", "20"),
        ("linger.ms", "0"),
    ])
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn produce(fake: &FakeCluster, round: usize, parts: &[i32]) {
    let producer = Producer::new(config(fake)).await.unwrap();
    let mut fs = Vec::new();
    for &p in parts {
        for i in 0..10 {
            fs.push(producer.send(ProducerRecord::new(TOPIC, format!("r{round}-{i}")).partition(p)).await.unwrap());
        }
    }
    for f in fs {
        f.await.unwrap();
    }
    producer.close().await;
}

/// Polls until `want` records per partition in `parts` were read since `seen` was
/// empty; fails on a duplicate offset.
async fn read(c: &mut Consumer, seen: &mut BTreeMap<(i32, i64), String>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < want {
        assert!(Instant::now() < deadline, "read {} of {want} records", seen.len());
        for r in &c.poll(Duration::from_millis(50)).await.unwrap() {
            let r = r.unwrap();
            let value = String::from_utf8(r.record.value.as_deref().unwrap().to_vec()).unwrap();
            let key = (r.topic_partition.partition, r.record.offset);
            assert!(seen.insert(key, value).is_none(), "read twice: {key:?}");
        }
    }
}

fn fetches(fake: &FakeCluster, from: usize) -> Vec<(Request, FetchRequest)> {
    fake.requests_of(ApiKey::Fetch).into_iter().skip(from).map(|r| (r.clone(), r.decode())).collect()
}

fn named(f: &FetchRequest) -> usize {
    f.topics.iter().map(|t| t.partitions.len()).sum()
}

#[test]
fn a_thousand_partitions_fetch_incrementally_and_lose_nothing_across_evictions_and_pauses() {
    let rt = runtime();
    let fake = FakeCluster::start();
    fake.create_topic(TOPIC, PARTITIONS);
    rt.block_on(async {
        produce(&fake, 0, &BUSY).await;
        let mut c = Consumer::new(config(&fake)).await.unwrap();
        c.assign((0..PARTITIONS).map(|p| TopicPartition::new(TOPIC, p)));
        let mut seen = BTreeMap::new();
        read(&mut c, &mut seen, 50).await;
        // A few idle rounds: steady state.
        for _ in 0..5 {
            assert!(c.poll(Duration::from_millis(50)).await.unwrap().is_empty());
        }

        let all = fetches(&fake, 0);
        let (first_req, first) = &all[0];
        assert_eq!((first.session_id, first.session_epoch), (0, 0), "the first fetch opens a session");
        assert_eq!(named(first), PARTITIONS as usize, "and names every partition");
        let session = all[1].1.session_id;
        assert_ne!(session, 0, "the broker gave a session id");
        let mut epoch = 0;
        let mut incremental_sizes = Vec::new();
        for (r, f) in &all[1..] {
            assert_eq!(f.session_id, session);
            assert_eq!(f.session_epoch, epoch + 1, "epochs go up by one");
            epoch = f.session_epoch;
            assert!(named(f) <= BUSY.len(), "an incremental fetch names only moved partitions: {}", named(f));
            incremental_sizes.push(r.body.len());
        }
        let full = first_req.body.len();
        incremental_sizes.sort_unstable();
        let idle = incremental_sizes[0];
        let busiest = *incremental_sizes.last().unwrap();
        println!(
            "Fetch request body for {PARTITIONS} partitions: full {full} bytes; incremental {idle} bytes idle, \
             {busiest} bytes with {} partitions moved ({} incremental requests)",
            BUSY.len(),
            incremental_sizes.len()
        );
        assert!(busiest * 20 < full, "incremental {busiest} bytes vs full {full}");

        // The broker forgets the session: a new one starts, and nothing is lost or repeated.
        let mark = fake.requests_of(ApiKey::Fetch).len();
        fake.evict_fetch_sessions();
        produce(&fake, 1, &BUSY).await;
        read(&mut c, &mut seen, 100).await;
        let after = fetches(&fake, mark);
        assert!(
            after.iter().any(|(_, f)| f.session_id == 0 && f.session_epoch == 0 && named(f) == PARTITIONS as usize),
            "a full fetch opened a new session after the eviction"
        );

        // Paused partitions leave the session (forgotten) and come back with their position.
        let paused = TopicPartition::new(TOPIC, BUSY[0]);
        c.pause(&paused).unwrap();
        let mark = fake.requests_of(ApiKey::Fetch).len();
        let forgot = |fake: &FakeCluster| {
            fetches(fake, mark)
                .iter()
                .any(|(_, f)| f.forgotten_topics_data.iter().any(|t| t.partitions.contains(&BUSY[0])))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !forgot(&fake) && Instant::now() < deadline {
            assert!(c.poll(Duration::from_millis(50)).await.unwrap().is_empty());
        }
        assert!(forgot(&fake), "the paused partition was forgotten by the session");
        produce(&fake, 2, &BUSY).await;
        read(&mut c, &mut seen, 140).await;
        assert_eq!(c.position(&paused), Some(20), "a paused partition keeps its position");
        c.resume(&paused).unwrap();
        read(&mut c, &mut seen, 150).await;

        // A smaller assignment: the session forgets the rest; positions of kept partitions hold.
        c.assign(BUSY.iter().map(|&p| TopicPartition::new(TOPIC, p)));
        produce(&fake, 3, &BUSY).await;
        read(&mut c, &mut seen, 200).await;
        for p in BUSY {
            let values: Vec<&String> = seen.range((p, 0)..(p, i64::MAX)).map(|(_, v)| v).collect();
            assert_eq!(values.len(), 40, "partition {p}: every record once, in order");
            assert!(values.windows(2).all(|w| w[0] < w[1]), "partition {p}: out of order");
        }
        c.close().await;
    });
}

#[test]
fn a_broker_without_sessions_gets_full_requests() {
    let rt = runtime();
    let fake = FakeCluster::start();
    fake.create_topic(TOPIC, 10);
    fake.fetch_sessions(false);
    rt.block_on(async {
        produce(&fake, 0, &[3]).await;
        let mut c = Consumer::new(config(&fake)).await.unwrap();
        c.assign((0..10).map(|p| TopicPartition::new(TOPIC, p)));
        let mut seen = BTreeMap::new();
        read(&mut c, &mut seen, 10).await;
        for _ in 0..3 {
            assert!(c.poll(Duration::from_millis(50)).await.unwrap().is_empty());
        }
        c.close().await;
    });
    let all = fetches(&fake, 0);
    assert!(all.len() >= 2);
    for (_, f) in &all {
        assert_eq!((f.session_id, f.session_epoch, named(f)), (0, 0, 10), "every fetch is full");
    }
}
