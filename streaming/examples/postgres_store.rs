//! Storing offsets in your own data store: PostgreSQL (Spark guide: "Storing Offsets",
//! 3. Your own data store).
//!
//! ```scala
//! // begin from the the offsets committed to the database
//! val fromOffsets = selectOffsetsFromYourDatabase.map { resultSet =>
//!   new TopicPartition(resultSet.string("topic"), resultSet.int("partition")) -> resultSet.long("offset")
//! }.toMap
//! val stream = KafkaUtils.createDirectStream[String, String](
//!   streamingContext, PreferConsistent, Assign[String, String](fromOffsets.keys.toList, kafkaParams, fromOffsets))
//! stream.foreachRDD { rdd =>
//!   val offsetRanges = rdd.asInstanceOf[HasOffsetRanges].offsetRanges
//!   val results = yourCalculation(rdd)
//!   // begin your transaction
//!   // update results
//!   // update offsets where the end of existing offsets matches the beginning of this batch of offsets
//!   // assert that offsets were updated correctly
//!   // end your transaction
//! }
//! ```
//!
//! The calculation counts the records per value (`countByValue`); the counts (table
//! `value_counts`) and the offsets (table `ferrokafka_offsets`) are written in one SQL
//! transaction by `commit_batch`, which refuses a batch whose ranges do not start at the
//! stored offsets (the offset row is locked with `SELECT … FOR UPDATE`). Every record is
//! counted exactly once, across restarts.
//!
//! Prints `batch time: T records: N`, the batch's ranges, and at the end `stored: VALUE COUNT`
//! for every stored count.
//!
//! Environment: `FERROKAFKA_BOOTSTRAP` (localhost:9092), `FERROKAFKA_TOPICS` (topicA,topicB),
//! `FERROKAFKA_GROUP`, `FERROKAFKA_OFFSET_RESET` (latest: where partitions without a stored
//! offset start), `FERROKAFKA_POSTGRES` (`host=localhost user=postgres dbname=postgres`),
//! `FERROKAFKA_BATCH_INTERVAL_MS` (1000), `FERROKAFKA_BATCHES` (10): stop after that many
//! batches, or at the first empty batch after records were seen.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrokafka_client::cluster::Cluster;
use ferrokafka_streaming::store::{commit_batch, PostgresStore, StoreTransaction, TransactionalStore};
use ferrokafka_streaming::{
    Assign, DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig, StreamingError, TopicPartition,
};

/// The results: how many records carried each value.
const CREATE_RESULTS: &str = "CREATE TABLE IF NOT EXISTS value_counts (value TEXT PRIMARY KEY, count BIGINT NOT NULL)";
const ADD_RESULT: &str = "INSERT INTO value_counts (value, count) VALUES ($1, $2) \
     ON CONFLICT (value) DO UPDATE SET count = value_counts.count + EXCLUDED.count";

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

fn store_err(e: impl std::fmt::Display) -> StreamingError {
    StreamingError::store(e.to_string())
}

/// Every partition of `topics`, from the cluster's metadata.
async fn partitions_of(
    params: &KafkaParams,
    topics: &[&str],
) -> Result<Vec<TopicPartition>, Box<dyn std::error::Error>> {
    let cluster = Cluster::connect(params.driver_config()?).await?;
    cluster.track_topics(topics.iter().copied());
    let metadata = cluster.refresh_metadata().await?;
    let mut out = Vec::new();
    for topic in topics {
        let n = metadata.partition_count(topic).ok_or_else(|| format!("topic {topic} not found"))?;
        out.extend((0..n as i32).map(|p| TopicPartition::new(*topic, p)));
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let group = env_or("FERROKAFKA_GROUP", "use_a_separate_group_id_for_each_stream");
    let kafka_params = KafkaParams::new([
        ("bootstrap.servers", env_or("FERROKAFKA_BOOTSTRAP", "localhost:9092")),
        ("group.id", group.clone()),
        ("auto.offset.reset", env_or("FERROKAFKA_OFFSET_RESET", "latest")),
        ("enable.auto.commit", "false".to_owned()),
    ])?;
    let topics = env_or("FERROKAFKA_TOPICS", "topicA,topicB");
    let store =
        PostgresStore::connect(&env_or("FERROKAFKA_POSTGRES", "host=localhost user=postgres dbname=postgres")).await?;
    let txn = store.begin().await?;
    txn.sql().batch_execute(CREATE_RESULTS).await?;
    txn.commit().await?;

    // Begin from the offsets committed to the database (partitions it does not know yet start
    // at auto.offset.reset).
    let from_offsets = store.load_offsets(&group).await?;
    let partitions = partitions_of(&kafka_params, &topics.split(',').collect::<Vec<_>>()).await?;
    let cfg = StreamConfig {
        batch_interval: Duration::from_millis(env_or("FERROKAFKA_BATCH_INTERVAL_MS", "1000").parse()?),
        ..Default::default()
    };
    let strategy = Assign::new(partitions, kafka_params, from_offsets)?;
    let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await?;

    let (max_batches, mut seen): (usize, i64) = (env_or("FERROKAFKA_BATCHES", "10").parse()?, 0);
    for _ in 0..max_batches {
        let rdd = stream.next_batch().await?;
        let started = Instant::now();
        // yourCalculation(rdd): records per value.
        let mut results: BTreeMap<String, i64> = BTreeMap::new();
        for partition in rdd.collect().await? {
            for record in &partition.records {
                let value = record.value.as_ref().map_or_else(|| "null".into(), |v| String::from_utf8_lossy(v));
                *results.entry(value.into_owned()).or_default() += 1;
            }
        }
        let records: i64 = results.values().sum();
        println!("batch time: {} records: {records}", rdd.time_ms);
        for range in rdd.offset_ranges() {
            println!("{range}");
        }
        // One transaction: the offsets advance only from where the stored ones end, and the
        // results are updated; any error rolls both back.
        commit_batch(&store, &group, rdd.offset_ranges(), async |txn| {
            for (value, n) in &results {
                txn.sql().execute(ADD_RESULT, &[value, n]).await.map_err(store_err)?;
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

    // The results, read outside of any batch.
    let txn = store.begin().await?;
    for row in txn.sql().query("SELECT value, count FROM value_counts ORDER BY value", &[]).await? {
        println!("stored: {} {}", row.try_get::<_, &str>(0)?, row.try_get::<_, i64>(1)?);
    }
    txn.commit().await?;
    Ok(())
}
