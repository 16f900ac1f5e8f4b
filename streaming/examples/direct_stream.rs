//! Creating a direct stream (Spark guide: "Creating a Direct Stream").
//!
//! ```scala
//! val kafkaParams = Map[String, Object](
//!   "bootstrap.servers" -> "localhost:9092,anotherhost:9092",
//!   "key.deserializer" -> classOf[StringDeserializer],
//!   "value.deserializer" -> classOf[StringDeserializer],
//!   "group.id" -> "use_a_separate_group_id_for_each_stream",
//!   "auto.offset.reset" -> "latest",
//!   "enable.auto.commit" -> (false: java.lang.Boolean)
//! )
//! val topics = Array("topicA", "topicB")
//! val stream = KafkaUtils.createDirectStream[String, String](
//!   streamingContext, PreferConsistent, Subscribe[String, String](topics, kafkaParams))
//! stream.map(record => (record.key, record.value))
//! ```
//!
//! Prints every batch's offset ranges (`topic: T partition: P offsets: F to U count: C`) and
//! its records as `(key,value)`.
//!
//! Environment: `FERROKAFKA_BOOTSTRAP` (localhost:9092), `FERROKAFKA_TOPICS` (topicA,topicB),
//! `FERROKAFKA_GROUP`, `FERROKAFKA_OFFSET_RESET` (latest), `FERROKAFKA_BATCH_INTERVAL_MS`
//! (1000), `FERROKAFKA_BATCHES` (10): stop after that many batches, or at the first empty
//! batch after records were seen.
//!
//! ```text
//! FERROKAFKA_TOPICS=events FERROKAFKA_OFFSET_RESET=earliest cargo run -p ferrokafka-streaming --example direct_stream
//! ```

use std::time::{Duration, Instant};

use ferrokafka_streaming::{DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig, Subscribe};

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// A record's key or value as text (`null` when absent, as Java prints it).
fn text(b: &Option<bytes::Bytes>) -> String {
    b.as_ref().map_or_else(|| "null".to_owned(), |b| String::from_utf8_lossy(b).into_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let string_deserializer = "org.apache.kafka.common.serialization.StringDeserializer";
    let kafka_params = KafkaParams::new([
        ("bootstrap.servers", env_or("FERROKAFKA_BOOTSTRAP", "localhost:9092")),
        ("key.deserializer", string_deserializer.to_owned()),
        ("value.deserializer", string_deserializer.to_owned()),
        ("group.id", env_or("FERROKAFKA_GROUP", "use_a_separate_group_id_for_each_stream")),
        ("auto.offset.reset", env_or("FERROKAFKA_OFFSET_RESET", "latest")),
        ("enable.auto.commit", "false".to_owned()),
    ])?;
    let topics = env_or("FERROKAFKA_TOPICS", "topicA,topicB");
    let cfg = StreamConfig {
        batch_interval: Duration::from_millis(env_or("FERROKAFKA_BATCH_INTERVAL_MS", "1000").parse()?),
        ..Default::default()
    };
    let mut stream = DirectStream::create(
        Subscribe::new(topics.split(','), kafka_params, Default::default())?,
        PreferConsistent,
        cfg,
    )
    .await?;

    let (max_batches, mut seen): (usize, i64) = (env_or("FERROKAFKA_BATCHES", "10").parse()?, 0);
    for _ in 0..max_batches {
        let batch = stream.next_batch().await?;
        let started = Instant::now();
        let count = batch.count().await?;
        println!("batch time: {} records: {count}", batch.time_ms);
        for range in batch.offset_ranges() {
            println!("{range}");
        }
        // stream.map(record => (record.key, record.value)): partition i holds offset_ranges()[i].
        for partition in batch.collect().await? {
            for record in &partition.records {
                println!("({},{})", text(&record.key), text(&record.value));
            }
        }
        stream.complete(&batch, started.elapsed())?;
        if count == 0 && seen > 0 {
            break; // drained
        }
        seen += count;
    }
    println!("total records: {seen}");
    stream.stop(true).await?;
    Ok(())
}
