//! Batch reads of explicit offset ranges (Spark guide: "Creating an RDD").
//!
//! ```scala
//! val offsetRanges = Array(
//!   // topic, partition, inclusive starting offset, exclusive ending offset
//!   OffsetRange("test", 0, 0, 100),
//!   OffsetRange("test", 1, 0, 100)
//! )
//! val rdd = KafkaUtils.createRDD[String, String](sparkContext, kafkaParams, offsetRanges, PreferConsistent)
//! ```
//!
//! As in Spark, `PreferBrokers` cannot be used here (there is no driver consumer to find
//! leaders); `create_batch` refuses it.
//!
//! Environment: `FERROKAFKA_BOOTSTRAP` (localhost:9092), `FERROKAFKA_GROUP`,
//! `FERROKAFKA_RANGES` (`test:0:0:100,test:1:0:100`: `topic:partition:from:until`, comma
//! separated), `FERROKAFKA_TAKE` (5): how many records `take` prints, `FERROKAFKA_POLL_MS`
//! (120000, Spark's `spark.streaming.kafka.consumer.poll.ms`): how long a read waits for a
//! record of its range before failing (e.g. a range past the end of the log).

use std::time::Duration;

use ferrokafka_streaming::{
    create_batch, CacheConfig, ExecutorPool, HasOffsetRanges, KafkaParams, OffsetRange, PreferConsistent, ReadOptions,
};

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// Parses `topic:partition:from:until`.
fn parse_range(s: &str) -> Result<OffsetRange, Box<dyn std::error::Error>> {
    let fields: Vec<&str> = s.trim().rsplitn(4, ':').collect();
    let [until, from, partition, topic] = fields[..] else {
        return Err(format!("{s:?}: expected topic:partition:from:until").into());
    };
    Ok(OffsetRange::new(topic, partition.parse()?, from.parse()?, until.parse()?)?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kafka_params = KafkaParams::new([
        ("bootstrap.servers", env_or("FERROKAFKA_BOOTSTRAP", "localhost:9092")),
        ("group.id", env_or("FERROKAFKA_GROUP", "use_a_separate_group_id_for_each_stream")),
    ])?;
    let offset_ranges = env_or("FERROKAFKA_RANGES", "test:0:0:100,test:1:0:100")
        .split(',')
        .map(parse_range)
        .collect::<Result<_, _>>()?;

    // The executors that read the partitions, each with its consumer cache (Spark's executors).
    // spark.streaming.kafka.consumer.poll.ms: how long a read waits for a missing record.
    let read = ReadOptions {
        poll_timeout: Duration::from_millis(env_or("FERROKAFKA_POLL_MS", "120000").parse()?),
        ..Default::default()
    };
    let pool = ExecutorPool::new(&kafka_params, ExecutorPool::local_executors(2), CacheConfig::default(), read).await?;
    let rdd = create_batch(offset_ranges, &PreferConsistent, pool)?;

    for range in rdd.offset_ranges() {
        println!("{range}");
    }
    println!("count: {}", rdd.count().await?);
    println!("is_empty: {}", rdd.is_empty().await?);
    for record in rdd.take(env_or("FERROKAFKA_TAKE", "5").parse()?).await? {
        let value = record.value.as_ref().map_or_else(|| "null".into(), |v| String::from_utf8_lossy(v));
        println!("take: offset: {} value: {value}", record.offset);
    }
    Ok(())
}
