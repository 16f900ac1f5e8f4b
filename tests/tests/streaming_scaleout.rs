//! Scale-out with offsets in the transactional store: two streams with the same group
//! (two members, as two processes would be) share a topic through the group protocol,
//! store each batch's results and offsets together in one redb store, and read starting
//! offsets from it whenever partitions move. One joins while the other runs, then leaves;
//! the store holds every record exactly once. On tansu with the classic protocol, and on
//! librdkafka 2.16's mock with KIP-848's (`group.protocol=consumer`). On tansu, one record
//! per produced batch so that its ListOffsets(latest) is exact (see DESIGN.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_streaming::store::redb::redb::{ReadableDatabase, ReadableTable, TableDefinition};
use ferrokafka_streaming::store::{commit_batch, store_offsets, RedbStore, TransactionalStore};
use ferrokafka_streaming::{
    DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig, StreamingError, Subscribe,
    TopicPartition,
};
use ferrokafka_tests::tansu::Tansu;
use ferrokafka_tests::unique_topic;
use tokio::task::JoinHandle;

const SUMS: TableDefinition<&str, i64> = TableDefinition::new("sums");
const PARTITIONS: i32 = 4;

fn store_err(e: impl std::fmt::Display) -> StreamingError {
    StreamingError::store(e.to_string())
}

struct Member {
    stop: Arc<AtomicBool>,
    records: Arc<AtomicI64>,
    /// Partitions in the member's last batch (its assignment then).
    owned: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// Which group protocol the members speak.
#[derive(Clone, Copy)]
enum Protocol {
    Classic,
    /// KIP-848: the broker's session timeout and heartbeat interval apply.
    Consumer,
}

fn member(bootstrap: &str, topic: &str, group: &str, store: Arc<RedbStore>, protocol: Protocol) -> Member {
    let mut pairs = vec![
        ("bootstrap.servers", bootstrap),
        ("group.id", group),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("fetch.max.wait.ms", "100"),
    ];
    match protocol {
        Protocol::Classic => pairs.extend([("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "300")]),
        Protocol::Consumer => pairs.push(("group.protocol", "consumer")),
    }
    let params = KafkaParams::new(pairs).unwrap();
    let strategy = Subscribe::new([topic], params, Default::default())
        .unwrap()
        .scale_out()
        .offsets_from(store_offsets(store.clone(), group));
    let (stop, records, owned) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicI64::new(0)), Arc::new(AtomicUsize::new(0)));
    let (s, r, o, group) = (stop.clone(), records.clone(), Arc::clone(&owned), group.to_owned());
    let task = tokio::spawn(async move {
        let cfg = StreamConfig { batch_interval: Duration::from_millis(200), ..Default::default() };
        let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await.unwrap();
        while !s.load(Ordering::SeqCst) {
            let batch = stream.next_batch().await.unwrap();
            let started = Instant::now();
            let sums = batch
                .foreach_partition(|p| async move {
                    Ok(p.records
                        .collect()
                        .await?
                        .iter()
                        .map(|r| std::str::from_utf8(r.value.as_deref().unwrap()).unwrap().parse::<i64>().unwrap())
                        .sum::<i64>())
                })
                .await
                .unwrap();
            let sum: i64 = sums.iter().sum();
            commit_batch(&*store, &group, batch.offset_ranges(), async |txn| {
                let mut t = txn.redb().open_table(SUMS).map_err(store_err)?;
                let before = t.get("sum").map_err(store_err)?.map_or(0, |v| v.value());
                t.insert("sum", before + sum).map_err(store_err)?;
                Ok(())
            })
            .await
            .unwrap();
            r.fetch_add(batch.record_count_hint(), Ordering::SeqCst);
            o.store(batch.offset_ranges().len(), Ordering::SeqCst);
            stream.complete(&batch, started.elapsed()).unwrap();
        }
        stream.stop(true).await.unwrap();
    });
    Member { stop, records, owned, task }
}

impl Member {
    async fn leave(self) -> i64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        self.records.load(Ordering::SeqCst)
    }
}

fn stored(store: &RedbStore) -> i64 {
    let read = store.database().begin_read().unwrap();
    read.open_table(SUMS).ok().and_then(|t| t.get("sum").unwrap().map(|v| v.value())).unwrap_or(0)
}

/// Waits up to a minute for `ok`.
async fn wait_until(what: &str, ok: impl FnMut() -> bool) {
    ferrokafka_tests::wait_until(what, Duration::from_secs(60), ok).await;
}

#[test]
fn members_share_a_topic_with_offsets_in_the_store() {
    let broker = Tansu::start();
    let b = broker.addr().to_owned();
    let topic = unique_topic("scale-store");
    ferrokafka_tests::raw::RawConnection::connect(&b).unwrap().create_topic(&topic, PARTITIONS).unwrap();
    scale_out(&b, &topic, Protocol::Classic);
}

#[test]
fn members_share_a_topic_over_the_kip_848_protocol() {
    if ferrokafka_tests::mock::mock_version() != "2.16" {
        eprintln!("KIP-848 groups need librdkafka 2.16's mock (FERROKAFKA_MOCK=2.16; scripts/test.sh runs it)");
        return;
    }
    let mut mock = ferrokafka_tests::mock::MockCluster::start(3);
    mock.must("cgrp_consumer 6000 300");
    let topic = unique_topic("scale-848");
    mock.create_topic(&topic, PARTITIONS as u32);
    scale_out(mock.bootstrap(), &topic, Protocol::Consumer);
}

fn scale_out(b: &str, topic: &str, protocol: Protocol) {
    let (b, topic) = (b.to_owned(), topic.to_owned());
    let dir = std::env::temp_dir().join(unique_topic("scale-store"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(RedbStore::open(dir.join("store.redb")).unwrap());
    let group = unique_topic("scale-store-g");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let producer = Producer::new(
            ClientConfig::from_pairs([("bootstrap.servers", b.as_str()), ("batch.size", "1"), ("linger.ms", "0")])
                .unwrap(),
        )
        .await
        .unwrap();
        let mut next = 0i64;
        let mut expected = 0i64;
        let mut produce_round = async |n: i64| {
            let mut fs = Vec::new();
            for _ in 0..n {
                next += 1;
                expected += next;
                let p = (next % i64::from(PARTITIONS)) as i32;
                fs.push(
                    producer.send(ProducerRecord::new(topic.as_str(), next.to_string()).partition(p)).await.unwrap(),
                );
            }
            for f in fs {
                f.await.unwrap();
            }
            expected
        };
        let total = produce_round(40).await;
        let a = member(&b, &topic, &group, store.clone(), protocol);
        wait_until("A stores the first 40 records", || stored(&store) == total).await;
        let second = member(&b, &topic, &group, store.clone(), protocol);
        // B joins and A rebalances: B's batches have partitions, and A's no longer all.
        wait_until("B gets partitions", || {
            second.owned.load(Ordering::SeqCst) > 0 && a.owned.load(Ordering::SeqCst) < PARTITIONS as usize
        })
        .await;
        let total = produce_round(40).await;
        wait_until("A and B store the second 40", || stored(&store) == total).await;
        let by_b = second.leave().await;
        let total = produce_round(40).await;
        wait_until("A takes B's partitions over from the store", || stored(&store) == total).await;
        let by_a = a.leave().await;
        assert!(by_b > 0 && by_b < 80, "B read {by_b} records: it never shared the topic");
        assert_eq!(by_a + by_b, 120, "every record read once (A {by_a}, B {by_b})");
        let offsets = store.load_offsets(&group).await.unwrap();
        for p in 0..PARTITIONS {
            assert_eq!(offsets.get(&TopicPartition::new(topic.as_str(), p)), Some(&30), "{offsets:?}");
        }
        producer.close().await;
    });
    assert!(stored(&store) > 0);
    let _ = std::fs::remove_dir_all(&dir);
}
