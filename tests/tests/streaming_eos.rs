//! Kafka as the exactly-once store of a direct stream (`store::KafkaStore`): each
//! batch's output records and input offsets are committed in one Kafka transaction.
//! The application crashes three ways: with its transaction open (outputs written,
//! nothing committed), after sending its offsets but before the commit, and after the
//! commit but before it marked the batch complete. At the end a `read_committed`
//! reader of the output (ours and confluent-kafka) sees every input record's output
//! exactly once, and the group's committed offsets are the end of the input. Runs on
//! the fake cluster, the one test broker here that keeps Kafka's aborted-transaction
//! index (DESIGN.md, broker quirks).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_streaming::store::{KafkaStore, KafkaTransaction, StoreTransaction, TransactionalStore};
use ferrokafka_streaming::{
    Assign, Batch, DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, RateLimits, StreamConfig,
    StreamingError, TopicPartition,
};
use ferrokafka_tests::fake::FakeCluster;

const PARTITIONS: i32 = 3;
const PER_PARTITION: i64 = 120;
const GROUP: &str = "eos";
const INPUT: &str = "words";
const OUTPUT: &str = "counted";

fn client_config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut pairs = vec![("bootstrap.servers", bootstrap), ("linger.ms", "2"), ("fetch.max.wait.ms", "50")];
    pairs.extend_from_slice(extra);
    ClientConfig::from_pairs(pairs).unwrap()
}

async fn store(bootstrap: &str) -> KafkaStore {
    KafkaStore::connect(client_config(bootstrap, &[("transactional.id", "eos-writer")])).await.unwrap()
}

async fn start(bootstrap: &str, store: &KafkaStore) -> DirectStream {
    let params = KafkaParams::new([
        ("bootstrap.servers", bootstrap),
        ("group.id", GROUP),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("fetch.max.wait.ms", "50"),
    ])
    .unwrap();
    let from: BTreeMap<TopicPartition, i64> =
        store.load_offsets(GROUP).await.unwrap().into_iter().filter(|(tp, _)| &*tp.topic == INPUT).collect();
    let parts: Vec<TopicPartition> = (0..PARTITIONS).map(|p| TopicPartition::new(INPUT, p)).collect();
    let cfg = StreamConfig {
        batch_interval: Duration::from_millis(50),
        rate: RateLimits { max_rate_per_partition: 200.0, ..Default::default() }, // 10 per partition per batch
        ..Default::default()
    };
    DirectStream::create(Assign::new(parts, params, from).unwrap(), PreferConsistent, cfg).await.unwrap()
}

/// The batch's input values, partition by partition.
async fn inputs(batch: &Batch) -> Result<Vec<(i32, String)>, StreamingError> {
    let parts = batch
        .foreach_partition(|mut p| async move {
            let mut out = Vec::new();
            while let Some(r) = p.records.next().await {
                let r = r?;
                out.push((p.range.partition, String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into()));
            }
            Ok(out)
        })
        .await?;
    Ok(parts.into_iter().flatten().collect())
}

/// Writes one output record per input record, in the transaction.
async fn write_outputs(txn: &KafkaTransaction<'_>, values: &[(i32, String)]) -> Result<(), StreamingError> {
    for (partition, v) in values {
        txn.send(ProducerRecord::new(OUTPUT, format!("out-{v}")).partition(*partition)).await?;
    }
    Ok(())
}

/// Every output value a reader with `isolation` sees, to the end and then until 2 s
/// pass without one.
async fn read_output(bootstrap: &str, isolation: &str) -> Vec<String> {
    let mut c = Consumer::new(client_config(bootstrap, &[("isolation.level", isolation)])).await.unwrap();
    let tps: Vec<_> = (0..PARTITIONS).map(|p| TopicPartition::new(OUTPUT, p)).collect();
    c.assign(tps.clone());
    for tp in &tps {
        c.seek(tp, 0).unwrap();
    }
    let mut out = Vec::new();
    ferrokafka_tests::read_to_end(&mut c, &tps, Duration::from_secs(2), |r| {
        out.push(String::from_utf8(r.record.value.clone().unwrap().to_vec()).unwrap());
    })
    .await;
    c.close().await;
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Crash {
    /// Outputs written, transaction open: the process dies.
    Open,
    /// Outputs and offsets sent, not committed: the process dies.
    BeforeCommit,
    /// Committed, but the process dies before it records the batch as done.
    AfterCommit,
}

#[test]
fn every_input_record_is_output_exactly_once_across_crashes() {
    let fake = FakeCluster::start();
    fake.create_topic(INPUT, PARTITIONS);
    fake.create_topic(OUTPUT, PARTITIONS);
    let b = fake.addr();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut want: Vec<String> = rt.block_on(async {
        let p = Producer::new(client_config(&b, &[])).await.unwrap();
        let mut out = Vec::new();
        for i in 0..PER_PARTITION {
            for part in 0..PARTITIONS {
                let v = format!("p{part}-{i}");
                p.send(ProducerRecord::new(INPUT, v.clone()).partition(part)).await.unwrap();
                out.push(format!("out-{v}"));
            }
        }
        p.flush().await;
        p.close().await;
        out
    });
    let crashes = BTreeMap::from([(3usize, Crash::Open), (6, Crash::BeforeCommit), (9, Crash::AfterCommit)]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut batch_no, mut restarts) = (0usize, Vec::new());
    'run: loop {
        let store = rt.block_on(store(&b));
        let mut stream = rt.block_on(start(&b, &store));
        loop {
            assert!(Instant::now() < deadline, "not done within 120 s after {batch_no} batches");
            let offsets = rt.block_on(store.load_offsets(GROUP)).unwrap();
            if (0..PARTITIONS).all(|p| offsets.get(&TopicPartition::new(INPUT, p)) == Some(&PER_PARTITION)) {
                break 'run;
            }
            batch_no += 1;
            let batch = rt.block_on(stream.next_batch()).unwrap();
            let started = Instant::now();
            let values = rt.block_on(inputs(&batch)).unwrap();
            let crash = crashes.get(&batch_no).copied();
            rt.block_on(async {
                let mut txn = store.begin().await?;
                write_outputs(&txn, &values).await?;
                if crash == Some(Crash::Open) {
                    return Ok::<(), StreamingError>(());
                }
                txn.advance_offsets(GROUP, batch.offset_ranges()).await?;
                if crash == Some(Crash::BeforeCommit) {
                    store.producer().flush().await; // the outputs reach the log
                    return Ok(());
                }
                txn.commit().await
            })
            .unwrap();
            if let Some(c) = crash {
                // The process dies: nothing more happens on this stream or producer.
                restarts.push(c);
                drop(stream);
                drop(store);
                continue 'run;
            }
            stream.complete(&batch, started.elapsed()).unwrap();
        }
    }
    assert_eq!(restarts, [Crash::Open, Crash::BeforeCommit, Crash::AfterCommit]);
    let mut got = rt.block_on(read_output(&b, "read_committed"));
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len(), "each input record's output once");
    assert_eq!(got, want);
    let everything = rt.block_on(read_output(&b, "read_uncommitted"));
    assert!(everything.len() > want.len(), "the crashed transactions did write outputs, which were aborted");
    let mut peer = ferrokafka_tests::peers::ck_read_committed(&b, OUTPUT, PARTITIONS).unwrap();
    peer.sort();
    assert_eq!(peer, want, "confluent-kafka reads the same");
}
