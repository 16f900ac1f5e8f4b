//! Obtaining offsets (Spark guide: "Obtaining Offsets").
//!
//! ```scala
//! stream.foreachRDD { rdd =>
//!   val offsetRanges = rdd.asInstanceOf[HasOffsetRanges].offsetRanges
//!   rdd.foreachPartition { iter =>
//!     val o: OffsetRange = offsetRanges(TaskContext.get.partitionId)
//!     println(s"${o.topic} ${o.partition} ${o.fromOffset} ${o.untilOffset}")
//!   }
//! }
//! ```
//!
//! Each partition of a batch runs on an executor task and reads exactly its range:
//! `BatchPartition::index` is Spark's `TaskContext.get.partitionId` (and `p.range` is
//! `offsetRanges(index)` already). Prints the guide's line per partition, then
//! `batch records: N` with the number of records the partitions read.
//!
//! Environment: `FERROKAFKA_BOOTSTRAP` (localhost:9092), `FERROKAFKA_TOPICS` (topicA,topicB),
//! `FERROKAFKA_GROUP`, `FERROKAFKA_OFFSET_RESET` (latest), `FERROKAFKA_BATCH_INTERVAL_MS`
//! (1000), `FERROKAFKA_BATCHES` (10): stop after that many batches, or at the first empty
//! batch after records were seen.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrokafka_streaming::{
    DirectStream, HasOffsetRanges, KafkaParams, OffsetRange, PreferConsistent, StreamConfig, Subscribe,
};

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

    let (max_batches, mut seen): (usize, usize) = (env_or("FERROKAFKA_BATCHES", "10").parse()?, 0);
    for _ in 0..max_batches {
        let rdd = stream.next_batch().await?;
        let started = Instant::now();
        let offset_ranges: Arc<[OffsetRange]> = rdd.offset_ranges().into();
        let read = rdd
            .foreach_partition(move |p| {
                let offset_ranges = offset_ranges.clone();
                async move {
                    let o = &offset_ranges[p.index];
                    println!("{} {} {} {}", o.topic, o.partition, o.from_offset, o.until_offset);
                    Ok(p.records.count().await?)
                }
            })
            .await?;
        let records: usize = read.iter().sum();
        println!("batch records: {records}");
        stream.complete(&rdd, started.elapsed())?;
        if records == 0 && seen > 0 {
            break; // drained
        }
        seen += records;
    }
    stream.stop(true).await?;
    Ok(())
}
