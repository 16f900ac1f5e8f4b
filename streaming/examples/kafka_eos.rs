//! Storing offsets in Kafka transactions: results written to an output topic and the
//! input offsets committed to the consumer group in one Kafka transaction per batch, so
//! a `read_committed` reader of the output sees each input record's results exactly
//! once, across crashes and restarts. (Spark users built this by hand; Kafka Streams'
//! `processing.guarantee=exactly_once_v2` and Flink's exactly-once Kafka sink do it
//! with the same transactions.)
//!
//! ```java
//! // The Java client's consume-transform-produce loop (KIP-98 / KIP-447):
//! producer.initTransactions();
//! while (true) {
//!   ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));
//!   producer.beginTransaction();
//!   for (ConsumerRecord<String, String> r : records) producer.send(new ProducerRecord<>("out", r.value(), "1"));
//!   producer.sendOffsetsToTransaction(nextOffsets(records), consumer.groupMetadata());
//!   producer.commitTransaction();
//! }
//! ```
//!
//! Here the stream's batch is the unit: the calculation counts the records per value,
//! each count becomes a record `VALUE` → `COUNT` of the output topic, and `commit_batch`
//! commits the records and the batch's offsets together (refusing a batch whose ranges
//! do not start at the committed offsets). Restarted with the same `transactional.id`,
//! the example fences any older instance and aborts what it left open.
//!
//! Prints `batch time: T records: N`, the batch's ranges, and `output: VALUE COUNT` for
//! each record written.
//!
//! Environment: `FERROKAFKA_BOOTSTRAP` (localhost:9092), `FERROKAFKA_TOPICS`
//! (topicA,topicB), `FERROKAFKA_GROUP`, `FERROKAFKA_OFFSET_RESET` (latest),
//! `FERROKAFKA_OUTPUT` (value-counts), `FERROKAFKA_TRANSACTIONAL_ID` (value-counts-0),
//! `FERROKAFKA_BATCH_INTERVAL_MS` (1000), `FERROKAFKA_BATCHES` (10): stop after that
//! many batches, or at the first empty batch after records were seen.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrokafka_client::cluster::Cluster;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::ProducerRecord;
use ferrokafka_streaming::store::{commit_batch, KafkaStore, TransactionalStore};
use ferrokafka_streaming::{
    Assign, DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig, TopicPartition,
};

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = env_or("FERROKAFKA_BOOTSTRAP", "localhost:9092");
    let group = env_or("FERROKAFKA_GROUP", "use_a_separate_group_id_for_each_stream");
    let output = env_or("FERROKAFKA_OUTPUT", "value-counts");
    let kafka_params = KafkaParams::new([
        ("bootstrap.servers", bootstrap.clone()),
        ("group.id", group.clone()),
        ("auto.offset.reset", env_or("FERROKAFKA_OFFSET_RESET", "latest")),
        ("enable.auto.commit", "false".to_owned()),
        // The output is transactional: read it (and chain streams) with read_committed.
        ("isolation.level", "read_committed".to_owned()),
    ])?;
    let store = KafkaStore::connect(ClientConfig::from_pairs([
        ("bootstrap.servers", bootstrap.clone()),
        ("transactional.id", env_or("FERROKAFKA_TRANSACTIONAL_ID", "value-counts-0")),
    ])?)
    .await?;

    // Begin from the offsets the group committed with its last transaction.
    let topics = env_or("FERROKAFKA_TOPICS", "topicA,topicB");
    let cluster = Cluster::connect(kafka_params.driver_config()?).await?;
    cluster.track_topics(topics.split(','));
    let metadata = cluster.refresh_metadata().await?;
    let mut partitions = Vec::new();
    for topic in topics.split(',') {
        let n = metadata.partition_count(topic).ok_or_else(|| format!("topic {topic} not found"))?;
        partitions.extend((0..n as i32).map(|p| TopicPartition::new(topic, p)));
    }
    let from_offsets: BTreeMap<TopicPartition, i64> =
        store.load_offsets(&group).await?.into_iter().filter(|(tp, _)| partitions.contains(tp)).collect();
    let cfg = StreamConfig {
        batch_interval: Duration::from_millis(env_or("FERROKAFKA_BATCH_INTERVAL_MS", "1000").parse()?),
        ..Default::default()
    };
    let strategy = Assign::new(partitions, kafka_params, from_offsets)?;
    let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await?;

    let (max_batches, mut seen): (usize, u64) = (env_or("FERROKAFKA_BATCHES", "10").parse()?, 0);
    for _ in 0..max_batches {
        let rdd = stream.next_batch().await?;
        let started = Instant::now();
        let mut results: BTreeMap<String, u64> = BTreeMap::new();
        for partition in rdd.collect().await? {
            for record in &partition.records {
                let value = record.value.as_ref().map_or_else(|| "null".into(), |v| String::from_utf8_lossy(v));
                *results.entry(value.into_owned()).or_default() += 1;
            }
        }
        let records: u64 = results.values().sum();
        println!("batch time: {} records: {records}", rdd.time_ms);
        for range in rdd.offset_ranges() {
            println!("{range}");
        }
        // One Kafka transaction: the output records and the batch's offsets.
        commit_batch(&store, &group, rdd.offset_ranges(), async |txn| {
            for (value, n) in &results {
                txn.send(ProducerRecord::new(output.as_str(), n.to_string()).key(value.clone())).await?;
                println!("output: {value} {n}");
            }
            Ok(())
        })
        .await?;
        stream.complete(&rdd, started.elapsed())?;
        if records == 0 && seen > 0 {
            break; // drained
        }
        seen += records;
    }
    stream.stop(true).await?;
    store.close().await;
    Ok(())
}
