//! Storing offsets in Kafka itself (Spark guide: "Storing Offsets", 2. Kafka itself).
//!
//! ```scala
//! stream.foreachRDD { rdd =>
//!   val offsetRanges = rdd.asInstanceOf[HasOffsetRanges].offsetRanges
//!   // some time later, after outputs have completed
//!   stream.asInstanceOf[CanCommitOffsets].commitAsync(offsetRanges)
//! }
//! ```
//!
//! `commit_async` only queues the ranges; the stream commits them to the group when it
//! computes the next batch, and a graceful `stop(true)` commits what is still queued and waits
//! for the result. A restart with the same `group.id` starts from the committed offsets
//! (committed offsets win over `auto.offset.reset`). Kafka is not transactional: the output
//! must be idempotent.
//!
//! Prints `batch time: T records: N`, the batch's ranges, and `committed: TOPIC PARTITION
//! OFFSET` lines when a commit completes.
//!
//! Environment: `FERROKAFKA_BOOTSTRAP` (localhost:9092), `FERROKAFKA_TOPICS` (topicA,topicB),
//! `FERROKAFKA_GROUP`, `FERROKAFKA_OFFSET_RESET` (latest), `FERROKAFKA_BATCH_INTERVAL_MS`
//! (1000), `FERROKAFKA_BATCHES` (10): stop after that many batches, or at the first empty
//! batch after records were seen.

use std::time::{Duration, Instant};

use ferrokafka_streaming::{DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig, Subscribe};

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kafka_params = KafkaParams::new([
        ("bootstrap.servers", env_or("FERROKAFKA_BOOTSTRAP", "localhost:9092")),
        ("group.id", env_or("FERROKAFKA_GROUP", "use_a_separate_group_id_for_each_stream")),
        ("auto.offset.reset", env_or("FERROKAFKA_OFFSET_RESET", "latest")),
        ("enable.auto.commit", "false".to_owned()),
    ])?;
    let topics = env_or("FERROKAFKA_TOPICS", "topicA,topicB");
    let cfg = StreamConfig {
        batch_interval: Duration::from_millis(env_or("FERROKAFKA_BATCH_INTERVAL_MS", "1000").parse()?),
        ..Default::default()
    };
    let strategy = Subscribe::new(topics.split(','), kafka_params, Default::default())?;
    let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await?;

    let (max_batches, mut seen): (usize, i64) = (env_or("FERROKAFKA_BATCHES", "10").parse()?, 0);
    for _ in 0..max_batches {
        let batch = stream.next_batch().await?;
        let started = Instant::now();
        let count = batch.count().await?;
        // The output: here, printing the batch.
        println!("batch time: {} records: {count}", batch.time_ms);
        for range in batch.offset_ranges() {
            println!("{range}");
        }
        // After the output completed: queue the ranges (the callback reports the commit).
        stream.commit_queue().commit_async_with(batch.offset_ranges(), |offsets, result| match result {
            Ok(()) => offsets.iter().for_each(|(tp, o)| println!("committed: {} {} {o}", tp.topic, tp.partition)),
            Err(e) => eprintln!("commit failed: {e}"),
        });
        stream.complete(&batch, started.elapsed())?;
        if count == 0 && seen > 0 {
            break; // drained
        }
        seen += count;
    }
    // Graceful: commits what is still queued and waits for the result.
    stream.stop(true).await?;
    Ok(())
}
