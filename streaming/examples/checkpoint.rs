//! Storing offsets in checkpoints (Spark guide: "Storing Offsets", 1. Checkpoints).
//!
//! ```scala
//! // If you enable Spark checkpointing, offsets will be stored in the checkpoint.
//! val ssc = StreamingContext.getOrCreate(checkpointDirectory, functionToCreateContext _)
//! ```
//!
//! With `StreamConfig::checkpoint_dir`, the stream keeps its positions and the batches it
//! generated but did not complete in `offsets.json` there (replaced atomically). A restart
//! with the same directory first re-runs the unfinished batches, unchanged, then goes on from
//! the checkpointed positions. As in Spark, the output must be idempotent: a re-run batch
//! repeats its output.
//!
//! Prints `batch time: T records: N` and the batch's ranges; with `FERROKAFKA_FAIL_AT` = k, the
//! k-th batch fails before its output (`failed batch time: T`) and the program stops the stream
//! without completing it: run it again to see that batch re-run first.
//!
//! Environment: `FERROKAFKA_BOOTSTRAP` (localhost:9092), `FERROKAFKA_TOPICS` (topicA,topicB),
//! `FERROKAFKA_GROUP`, `FERROKAFKA_OFFSET_RESET` (latest), `FERROKAFKA_CHECKPOINT_DIR`
//! (`$TMPDIR/ferrokafka-checkpoint`), `FERROKAFKA_MAX_RATE` (records per second per
//! partition, 0: no limit), `FERROKAFKA_BATCH_INTERVAL_MS` (1000), `FERROKAFKA_BATCHES` (10):
//! stop after that many batches, or at the first empty batch after records were seen.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrokafka_streaming::{
    DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, RateLimits, StreamConfig, Subscribe,
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
    let checkpoint_dir = match std::env::var_os("FERROKAFKA_CHECKPOINT_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => std::env::temp_dir().join("ferrokafka-checkpoint"),
    };
    let cfg = StreamConfig {
        batch_interval: Duration::from_millis(env_or("FERROKAFKA_BATCH_INTERVAL_MS", "1000").parse()?),
        // spark.streaming.kafka.maxRatePerPartition (0: unlimited)
        rate: RateLimits { max_rate_per_partition: env_or("FERROKAFKA_MAX_RATE", "0").parse()?, ..Default::default() },
        checkpoint_dir: Some(checkpoint_dir),
        ..Default::default()
    };
    let strategy = Subscribe::new(topics.split(','), kafka_params, Default::default())?;
    let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await?;

    let fail_at: usize = env_or("FERROKAFKA_FAIL_AT", "0").parse()?;
    let (max_batches, mut seen): (usize, i64) = (env_or("FERROKAFKA_BATCHES", "10").parse()?, 0);
    for n in 1..=max_batches {
        let batch = stream.next_batch().await?;
        if n == fail_at {
            // The batch is in the checkpoint as generated but not completed.
            println!("failed batch time: {}", batch.time_ms);
            stream.stop(false).await?;
            return Ok(());
        }
        let started = Instant::now();
        let count = batch.count().await?;
        println!("batch time: {} records: {count}", batch.time_ms);
        for range in batch.offset_ranges() {
            println!("{range}");
        }
        // An idempotent output would go here.
        stream.complete(&batch, started.elapsed())?; // the checkpoint now has it done
        if count == 0 && seen > 0 {
            break; // drained
        }
        seen += count;
    }
    stream.stop(true).await?;
    Ok(())
}
