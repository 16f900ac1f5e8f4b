//! A direct stream over TLS (Spark guide: "SSL / TLS").
//!
//! ```scala
//! val kafkaParams = Map[String, Object](
//!   // the usual params, make sure to change the port in bootstrap.servers if 9092 is not TLS
//!   "security.protocol" -> "SSL",
//!   "ssl.truststore.location" -> "/some-directory/kafka.client.truststore.jks",
//!   "ssl.truststore.password" -> "test1234",
//!   "ssl.keystore.location" -> "/some-directory/kafka.client.keystore.jks",
//!   "ssl.keystore.password" -> "test1234",
//!   "ssl.key.password" -> "test1234"
//! )
//! ```
//!
//! The same keys work unchanged: JKS, PKCS12 or PEM stores, read by pure-Rust code (rustls).
//! The keystore is only needed when the broker requires client certificates (mutual TLS).
//! TLS covers the stream's driver and its executors alike: every connection to a broker.
//!
//! Prints every batch's offset ranges and its records as `(key,value)`.
//!
//! Environment: `FERROKAFKA_BOOTSTRAP` (localhost:9093), `FERROKAFKA_TOPICS` (topicA,topicB),
//! `FERROKAFKA_GROUP`, `FERROKAFKA_OFFSET_RESET` (latest), `FERROKAFKA_TRUSTSTORE`,
//! `FERROKAFKA_TRUSTSTORE_PASSWORD`, `FERROKAFKA_KEYSTORE` (empty: no client certificate),
//! `FERROKAFKA_KEYSTORE_PASSWORD`, `FERROKAFKA_KEY_PASSWORD` (defaults: the guide's),
//! `FERROKAFKA_BATCH_INTERVAL_MS` (1000), `FERROKAFKA_BATCHES` (10): stop after that many
//! batches, or at the first empty batch after records were seen.

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
    let mut pairs = vec![
        // the usual params, with the TLS port in bootstrap.servers
        ("bootstrap.servers", env_or("FERROKAFKA_BOOTSTRAP", "localhost:9093")),
        ("group.id", env_or("FERROKAFKA_GROUP", "use_a_separate_group_id_for_each_stream")),
        ("auto.offset.reset", env_or("FERROKAFKA_OFFSET_RESET", "latest")),
        ("enable.auto.commit", "false".to_owned()),
        ("security.protocol", "SSL".to_owned()),
        ("ssl.truststore.location", env_or("FERROKAFKA_TRUSTSTORE", "/some-directory/kafka.client.truststore.jks")),
        ("ssl.truststore.password", env_or("FERROKAFKA_TRUSTSTORE_PASSWORD", "test1234")),
    ];
    let keystore =
        std::env::var("FERROKAFKA_KEYSTORE").unwrap_or_else(|_| "/some-directory/kafka.client.keystore.jks".into());
    if !keystore.is_empty() {
        pairs.extend([
            ("ssl.keystore.location", keystore),
            ("ssl.keystore.password", env_or("FERROKAFKA_KEYSTORE_PASSWORD", "test1234")),
            ("ssl.key.password", env_or("FERROKAFKA_KEY_PASSWORD", "test1234")),
        ]);
    }
    let kafka_params = KafkaParams::new(pairs)?;

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
        println!("batch time: {} records: {count}", batch.time_ms);
        for range in batch.offset_ranges() {
            println!("{range}");
        }
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
    stream.stop(true).await?;
    Ok(())
}
