//! Statistics after known workloads, second part (issue 19): producer retries, batches
//! and delivery latency after injected Produce errors; errors by API and code; the
//! `statistics.interval.ms` callbacks of a consumer, a group member and a producer;
//! a direct stream's batches, planning and processing times and consumer-cache hits.
//! Each figure is checked in the snapshot and, where it has one, in the metrics facade
//! (a capturing recorder, one per test process).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_client::stats::Statistics;
use ferrokafka_streaming::{DirectStream, KafkaParams, PreferConsistent, RateLimits, StreamConfig, Subscribe};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::unique_topic;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// The process's capturing recorder (installed by the first test that asks).
fn facade() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::set_global_recorder(recorder).unwrap();
        snapshotter
    })
}

/// A counter's value with these labels (`None`: never registered). The debugging
/// recorder's snapshot drains counters (it swaps them to zero), so every snapshot is
/// added to running totals here.
fn counter(name: &str, labels: &[(&str, &str)]) -> Option<u64> {
    type Totals = Mutex<Vec<(String, Vec<(String, String)>, u64)>>;
    static TOTALS: OnceLock<Totals> = OnceLock::new();
    let mut totals = TOTALS.get_or_init(Totals::default).lock().unwrap();
    for (key, _, _, value) in facade().snapshot().into_vec() {
        let DebugValue::Counter(c) = value else { continue };
        let k = key.key();
        let ls: Vec<(String, String)> = k.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
        match totals.iter_mut().find(|(n, l, _)| n == k.name() && *l == ls) {
            Some(t) => t.2 += c,
            None => totals.push((k.name().to_owned(), ls, c)),
        }
    }
    let matching = totals
        .iter()
        .filter(|(n, l, _)| n == name && labels.iter().all(|(lk, lv)| l.iter().any(|(k, v)| k == lk && v == lv)));
    matching.map(|t| t.2).reduce(|a, b| a + b)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn produce(b: &str, topic: &str, n: usize) {
    let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", b)]).unwrap()).await.unwrap();
    for i in 0..n {
        p.send(ProducerRecord::new(topic, format!("v{i}")).partition(0)).await.unwrap().await.unwrap();
    }
    p.close().await;
}

#[test]
fn producer_retries_batches_latency_and_errors_by_code() {
    facade();
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("stats-retry");
    mock.create_topic(&topic, 1);
    let b = mock.bootstrap().to_owned();
    let client_id = unique_topic("retrying-producer");
    runtime().block_on(async {
        let cfg = ClientConfig::from_pairs([
            ("bootstrap.servers", b.as_str()),
            ("client.id", client_id.as_str()),
            ("retry.backoff.ms", "20"),
            ("batch.size", "1000"),
        ])
        .unwrap();
        let p = Producer::new(cfg).await.unwrap();
        // One record first, so the connection and metadata exist before the errors.
        p.send(ProducerRecord::new(&*topic, "warm-up").partition(0)).await.unwrap().await.unwrap();
        // The next two Produce requests are answered NOT_LEADER_OR_FOLLOWER (6).
        mock.must("error 0 6 2");
        let record = ProducerRecord::new(&*topic, vec![b'x'; 200]).partition(0);
        p.send(record).await.unwrap().await.unwrap();
        let s = p.statistics();
        let prod = s.producer.as_ref().unwrap();
        assert_eq!(
            (prod.retries, prod.batches_sent, prod.records_delivered, prod.records_failed),
            (2, 4, 2, 0),
            "{prod:?}"
        );
        // Two batches of one record: the fill is their mean size against batch.size.
        assert!(prod.batch_bytes_avg > 100 && prod.batch_fill_percent == prod.batch_bytes_avg * 100 / 1000, "{prod:?}");
        // The retried batch waited two backoffs of 20 ms before its acknowledgement.
        assert!(prod.delivery_latency_max >= Duration::from_millis(40), "{prod:?}");
        assert!(prod.delivery_latency_avg <= prod.delivery_latency_max, "{prod:?}");
        assert_eq!(s.errors_with(6), 2, "{:?}", s.errors);
        assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
        assert_eq!(s.errors[0].api, ferrokafka_client::Api::PRODUCE);
        // Per broker: the one broker answered both.
        assert_eq!(s.brokers.len(), 1);
        assert_eq!(s.brokers[0].errors, s.errors, "{:?}", s.brokers[0]);
        let json = s.to_json();
        assert!(json.contains("\"errors\":{\"Produce\":{\"NOT_LEADER_OR_FOLLOWER\":2}}"), "{json}");
        assert!(json.contains("\"txretries\":2") && json.contains("\"txmsgs\":2"), "{json}");
        let id = client_id.as_str();
        assert_eq!(counter("ferrokafka_producer_retries_total", &[("client_id", id)]), Some(2));
        assert_eq!(counter("ferrokafka_producer_batches_total", &[("client_id", id)]), Some(4));
        assert_eq!(counter("ferrokafka_producer_records_delivered_total", &[("client_id", id)]), Some(2));
        let labels = [("broker", b.as_str()), ("api", "Produce"), ("code", "NOT_LEADER_OR_FOLLOWER")];
        assert_eq!(counter("ferrokafka_errors_total", &labels), Some(2));
        p.close().await;
    });
}

#[test]
fn fetch_errors_are_counted_by_code() {
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("stats-fetch-err");
    mock.create_topic(&topic, 1);
    let b = mock.bootstrap().to_owned();
    runtime().block_on(async {
        produce(&b, &topic, 5).await;
        let cfg = ClientConfig::from_pairs([
            ("bootstrap.servers", b.as_str()),
            ("fetch.max.wait.ms", "50"),
            ("retry.backoff.ms", "20"),
        ])
        .unwrap();
        let mut c = Consumer::new(cfg).await.unwrap();
        let tp = TopicPartition::new(&*topic, 0);
        // The first Fetch is answered NOT_LEADER_OR_FOLLOWER (queued before the consumer
        // may send it); the consumer refreshes its metadata, fetches again and reads all five.
        mock.must("error 1 6 1");
        c.assign([tp.clone()]);
        c.seek(&tp, 0).unwrap();
        let mut read = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while read < 5 {
            assert!(tokio::time::Instant::now() < deadline, "read {read} of 5");
            read += c.poll(Duration::from_millis(200)).await.unwrap().iter().count();
        }
        let s = c.statistics();
        let fetch: Vec<_> = s.errors.iter().filter(|e| e.api == ferrokafka_client::Api::FETCH).collect();
        assert_eq!(fetch.len(), 1, "{:?}", s.errors);
        assert_eq!((fetch[0].code.code(), fetch[0].count), (6, 1), "{:?}", s.errors);
    });
}

#[test]
fn statistics_callbacks_follow_the_interval_and_stop_with_the_client() {
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("stats-cb");
    mock.create_topic(&topic, 2);
    let b = mock.bootstrap().to_owned();
    runtime().block_on(async {
        produce(&b, &topic, 30).await;
        let seen: Arc<Mutex<Vec<Statistics>>> = Arc::default();
        let cfg = ClientConfig::from_pairs([
            ("bootstrap.servers", b.as_str()),
            ("auto.offset.reset", "earliest"),
            ("statistics.interval.ms", "100"),
            ("fetch.max.wait.ms", "50"),
        ])
        .unwrap();
        let mut c = Consumer::new(cfg).await.unwrap();
        let tp = TopicPartition::new(&*topic, 0);
        c.assign([tp.clone()]);
        let sink = seen.clone();
        c.set_statistics_callback(move |s| sink.lock().unwrap().push(s.clone()));
        // Served from poll, at most one per 100 ms: polls for 1 s or more, until a snapshot
        // shows all 30 records read (a slow start must not leave the last one behind).
        let started = tokio::time::Instant::now();
        let caught_up = |s: &Statistics| s.partitions.first().is_some_and(|p| p.lag == Some(0));
        loop {
            c.poll(Duration::from_millis(50)).await.unwrap();
            let done = seen.lock().unwrap().last().is_some_and(caught_up);
            if done && started.elapsed() >= Duration::from_millis(1050) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{:?}", seen.lock().unwrap().last());
        }
        let elapsed = started.elapsed();
        let n = seen.lock().unwrap().len();
        assert!((5..=elapsed.as_millis() as usize / 100 + 1).contains(&n), "{n} snapshots in {elapsed:?} at 100 ms");
        let last = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last.partitions.len(), 1);
        assert_eq!((last.partitions[0].high_watermark, last.partitions[0].lag), (30, Some(0)), "{last:?}");
        // Without polls, nothing is served (librdkafka's stats_cb is served by poll too).
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(seen.lock().unwrap().len(), n);

        // A producer serves its own, from a task, until it is closed.
        let cfg =
            ClientConfig::from_pairs([("bootstrap.servers", b.as_str()), ("statistics.interval.ms", "100")]).unwrap();
        let p = Producer::new(cfg).await.unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let sink = calls.clone();
        p.set_statistics_callback(move |s| sink.lock().unwrap().push(s.producer.clone().unwrap().records_delivered));
        for i in 0..3 {
            p.send(ProducerRecord::new(&*topic, format!("cb{i}")).partition(1)).await.unwrap().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(550)).await;
        let made = calls.lock().unwrap().clone();
        assert!(made.len() >= 3 && made.last() == Some(&3), "{made:?}");
        p.close().await;
        let after_close = calls.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(calls.lock().unwrap().len(), after_close, "no callbacks after close");

        // Interval 0 (the default): never called.
        let cfg = ClientConfig::from_pairs([("bootstrap.servers", b.as_str())]).unwrap();
        let mut quiet = Consumer::new(cfg).await.unwrap();
        let hit = Arc::new(Mutex::new(0));
        let sink = hit.clone();
        quiet.set_statistics_callback(move |_| *sink.lock().unwrap() += 1);
        for _ in 0..4 {
            quiet.poll(Duration::from_millis(100)).await.unwrap();
        }
        assert_eq!(*hit.lock().unwrap(), 0);
    });
}

#[test]
fn a_streams_batches_times_and_cache_hits() {
    facade();
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("stats-stream");
    mock.create_topic(&topic, 1);
    let b = mock.bootstrap().to_owned();
    let group = unique_topic("stats-stream-g");
    runtime().block_on(async {
        produce(&b, &topic, 40).await;
        let params = KafkaParams::new([
            ("bootstrap.servers", b.as_str()),
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("fetch.max.wait.ms", "50"),
        ])
        .unwrap();
        // 20 records per batch (100 records/s × 200 ms): the first read fetches all 40
        // (one chunk), and the second batch continues from the cached leftover.
        let cfg = StreamConfig {
            batch_interval: Duration::from_millis(200),
            rate: RateLimits { max_rate_per_partition: 100.0, ..RateLimits::default() },
            ..StreamConfig::default()
        };
        let strategy = Subscribe::new([topic.clone()], params, BTreeMap::new()).unwrap();
        let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await.unwrap();
        for _ in 0..2 {
            let batch = stream.next_batch().await.unwrap();
            let parts = batch.collect().await.unwrap();
            assert_eq!(parts.iter().map(|p| p.records.len()).sum::<usize>(), 20);
            stream.complete(&batch, Duration::from_millis(30)).unwrap();
        }
        let s = stream.statistics();
        assert_eq!((s.batches, s.records, s.last_batch_records, s.completed), (2, 40, 20, 2), "{s:?}");
        assert_eq!((s.processing_last, s.processing_avg), (Duration::from_millis(30), Duration::from_millis(30)));
        assert!(s.planning_last > Duration::ZERO && s.planning_max >= s.planning_last, "{s:?}");
        assert_eq!((s.cache.misses, s.cache.hits, s.cache.evictions), (1, 1, 0), "{s:?}");
        assert_eq!(s.backpressure_rate, None, "backpressure is off");
        let g = group.as_str();
        assert_eq!(counter("ferrokafka_stream_batches_total", &[("group", g)]), Some(2));
        assert!(counter("ferrokafka_stream_cache_hits_total", &[]).unwrap() >= 1);
        stream.stop(true).await.unwrap();
    });
}

#[test]
fn a_group_members_rebalances_on_the_facade_and_in_its_callback() {
    facade();
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("stats-group");
    mock.create_topic(&topic, 3);
    let b = mock.bootstrap().to_owned();
    let group = unique_topic("stats-group-g");
    runtime().block_on(async {
        produce(&b, &topic, 5).await;
        let cfg = ClientConfig::from_pairs([
            ("bootstrap.servers", b.as_str()),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("group.id", group.as_str()),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
            ("statistics.interval.ms", "100"),
        ])
        .unwrap();
        let mut g = ferrokafka_client::group::GroupConsumer::new(cfg).await.unwrap();
        let seen: Arc<Mutex<Vec<Statistics>>> = Arc::default();
        let sink = seen.clone();
        g.set_statistics_callback(move |s| sink.lock().unwrap().push(s.clone()));
        g.subscribe([topic.as_str()]);
        let (mut read, until) = (0, tokio::time::Instant::now() + Duration::from_millis(600));
        while tokio::time::Instant::now() < until || read < 5 {
            assert!(tokio::time::Instant::now() < until + Duration::from_secs(20), "read {read} of 5");
            read += g.poll(Duration::from_millis(50)).await.unwrap().iter().count();
        }
        let last = seen.lock().unwrap().last().cloned().expect("the callback ran");
        let member = last.group.as_ref().expect("a member's snapshot has the group's part");
        assert_eq!((member.state, member.rebalances, member.assignment_size), ("up", 1, 3), "{member:?}");
        assert_eq!(counter("ferrokafka_group_rebalances_total", &[("group", group.as_str())]), Some(1));
        // Committed offsets: none before the first commit, the positions after it.
        let p0 = |s: &Statistics| s.partitions.iter().find(|p| p.partition.partition == 0).cloned().unwrap();
        assert_eq!(p0(&g.statistics()).committed, None);
        // The first commit is answered NOT_COORDINATOR (16): found again, retried, counted.
        mock.must("error OffsetCommit 16 1");
        g.commit_sync(None).await.unwrap();
        let commit_errors: Vec<_> =
            g.statistics().errors.into_iter().filter(|e| e.api == ferrokafka_client::Api::OFFSET_COMMIT).collect();
        assert_eq!(commit_errors.len(), 1, "{commit_errors:?}");
        assert_eq!(
            (commit_errors[0].code.code(), commit_errors[0].count),
            (16, 3),
            "one per partition: {commit_errors:?}"
        );
        let after = p0(&g.statistics());
        assert_eq!((after.committed, after.position, after.consumed_offsets), (Some(5), Some(5), 5), "{after:?}");
        assert!(g.statistics().to_json().contains("\"committed_offset\":5"));
        g.close().await.unwrap();
    });
}
