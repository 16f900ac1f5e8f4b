//! `ferrokafka stream`: a direct stream from the command line. Each batch prints its
//! time, record count and offset ranges (Spark's batch description lines), or one JSON
//! object with `-J`; the strategy and rate options are the streaming layer's.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ferrokafka_streaming::{
    Assign, ConsumerStrategy, DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig,
    StreamingError, Subscribe, TopicPartition,
};

use crate::args::{config_file, UsageError};

pub const USAGE: &str = "\
usage: ferrokafka stream -b BROKERS -G GROUP (-t TOPIC… | --pattern REGEX | --assign T:P[@OFFSET],…) [options]

  -o beginning|end      start without committed offsets (auto.offset.reset; default end)
  --interval MS         batch interval (default 1000)
  --batches N           stop after N batches
  -e                    stop at the first empty batch (caught up)
  --max-rate N          records/s per partition (spark.streaming.kafka.maxRatePerPartition)
  --min-rate N          records per batch per partition when capped (…minRatePerPartition)
  --backpressure        PID rate control (spark.streaming.backpressure.enabled)
  --executors N         executor tasks (default 2)
  --memory-budget BYTES bytes all executors may hold for reading (default 67108864)
  --commit              commit each batch's ranges to Kafka after printing it (commit_async)
  --scale-out           share the topics' partitions with other processes of the same group
  --checkpoint DIR      checkpoint positions and unfinished batches in DIR
  -J                    one JSON object per batch
  -X KEY=VAL, -F FILE   kafkaParams (Java keys)
  -q                    no summary on stderr";

#[derive(Debug, Default)]
struct StreamArgs {
    params: BTreeMap<String, String>,
    topics: Vec<String>,
    pattern: Option<String>,
    assign: Vec<(TopicPartition, Option<i64>)>,
    interval: Option<u64>,
    batches: Option<u64>,
    exit_when_empty: bool,
    max_rate: f64,
    min_rate: Option<i64>,
    backpressure: bool,
    executors: Option<usize>,
    memory_budget: Option<usize>,
    commit: bool,
    scale_out: bool,
    checkpoint: Option<String>,
    json: bool,
    quiet: bool,
}

fn num<T: std::str::FromStr>(v: Option<&String>, flag: &str) -> Result<T, UsageError> {
    let v = v.ok_or_else(|| UsageError(format!("{flag} needs a value")))?;
    v.parse().map_err(|_| UsageError(format!("{flag}: {v:?} is not a valid number")))
}

fn parse_assign(spec: &str, out: &mut Vec<(TopicPartition, Option<i64>)>) -> Result<(), UsageError> {
    for item in spec.split(',').filter(|s| !s.is_empty()) {
        let (tp, offset) = match item.rsplit_once('@') {
            Some((tp, o)) => (tp, Some(num::<i64>(Some(&o.to_owned()), "--assign offset")?)),
            None => (item, None),
        };
        let (topic, p) =
            tp.rsplit_once(':').ok_or_else(|| UsageError(format!("--assign {item:?}: expected TOPIC:PARTITION")))?;
        out.push((TopicPartition::new(topic, num(Some(&p.to_owned()), "--assign partition")?), offset));
    }
    Ok(())
}

fn parse(argv: &[String]) -> Result<StreamArgs, UsageError> {
    let mut a = StreamArgs::default();
    let mut it = argv.iter();
    let mut offset_reset = "latest";
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| UsageError(format!("{flag} needs a value")));
        match flag.as_str() {
            "-b" | "-G" => {
                let key = if flag == "-b" { "bootstrap.servers" } else { "group.id" };
                a.params.insert(key.into(), val()?.clone());
            }
            "-t" => a.topics.push(val()?.clone()),
            "--pattern" => a.pattern = Some(val()?.clone()),
            "--assign" => parse_assign(val()?, &mut a.assign)?,
            "-o" => {
                offset_reset = match val()?.as_str() {
                    "beginning" | "earliest" => "earliest",
                    "end" | "latest" => "latest",
                    other => return Err(UsageError(format!("-o {other:?}: expected beginning or end"))),
                }
            }
            "--interval" => a.interval = Some(num(it.next(), flag)?),
            "--batches" => a.batches = Some(num(it.next(), flag)?),
            "-e" => a.exit_when_empty = true,
            "--max-rate" => a.max_rate = num(it.next(), flag)?,
            "--min-rate" => a.min_rate = Some(num(it.next(), flag)?),
            "--backpressure" => a.backpressure = true,
            "--executors" => a.executors = Some(num(it.next(), flag)?),
            "--memory-budget" => a.memory_budget = Some(num(it.next(), flag)?),
            "--commit" => a.commit = true,
            "--scale-out" => a.scale_out = true,
            "--checkpoint" => a.checkpoint = Some(val()?.clone()),
            "-J" => a.json = true,
            "-q" => a.quiet = true,
            "-X" => {
                let kv = val()?;
                let (k, v) = kv.split_once('=').ok_or_else(|| UsageError(format!("-X {kv:?}: expected KEY=VALUE")))?;
                a.params.insert(k.to_owned(), v.to_owned());
            }
            "-F" => config_file(val()?, &mut a.params)?,
            other => return Err(UsageError(format!("stream: unknown option {other:?}"))),
        }
    }
    let sources = [!a.topics.is_empty(), a.pattern.is_some(), !a.assign.is_empty()];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(UsageError("stream needs exactly one of -t TOPIC, --pattern REGEX or --assign".into()));
    }
    if a.scale_out && !a.assign.is_empty() {
        return Err(UsageError("--scale-out shares subscribed topics; it does not apply to --assign".into()));
    }
    if a.executors == Some(0) {
        return Err(UsageError("--executors must be at least 1".into()));
    }
    a.params.entry("auto.offset.reset".into()).or_insert_with(|| offset_reset.into());
    a.params.entry("enable.auto.commit".into()).or_insert_with(|| "false".into());
    Ok(a)
}

/// Runs `ferrokafka stream ARGS…`; exit codes as for the other modes.
pub fn main(argv: &[String]) -> ExitCode {
    let args = match parse(argv) {
        Ok(a) => a,
        Err(UsageError(msg)) => {
            eprintln!("ferrokafka: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match crate::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrokafka: {e}");
            let config = match &e {
                StreamingError::Params(_) => true,
                StreamingError::Client(c) => c.is_config(),
                _ => false,
            };
            ExitCode::from(if config { 3 } else { 1 })
        }
    }
}

fn strategy(a: &StreamArgs, params: KafkaParams) -> Result<Box<dyn ConsumerStrategy>, StreamingError> {
    let scale = |s: Subscribe| if a.scale_out { s.scale_out() } else { s };
    if let Some(p) = &a.pattern {
        return Ok(Box::new(scale(Subscribe::pattern(p, params, BTreeMap::new())?)));
    }
    if !a.assign.is_empty() {
        let parts: BTreeSet<TopicPartition> = a.assign.iter().map(|(tp, _)| tp.clone()).collect();
        let offsets = a.assign.iter().filter_map(|(tp, o)| o.map(|o| (tp.clone(), o))).collect();
        return Ok(Box::new(Assign::new(parts, params, offsets)?));
    }
    Ok(Box::new(scale(Subscribe::new(a.topics.clone(), params, BTreeMap::new())?)))
}

async fn run(a: StreamArgs) -> Result<(), StreamingError> {
    let params = KafkaParams::new(a.params.iter().map(|(k, v)| (k.clone(), v.clone())))?;
    let mut cfg = StreamConfig::default();
    if let Some(ms) = a.interval {
        cfg.batch_interval = Duration::from_millis(ms);
    }
    if let Some(bytes) = a.memory_budget {
        cfg.read.memory_budget = bytes;
    }
    if let Some(n) = a.executors {
        cfg.executors = ferrokafka_streaming::ExecutorPool::local_executors(n);
    }
    cfg.rate.max_rate_per_partition = a.max_rate;
    if let Some(m) = a.min_rate {
        cfg.rate.min_rate_per_partition = m;
    }
    cfg.rate.backpressure = a.backpressure;
    cfg.checkpoint_dir = a.checkpoint.as_ref().map(Into::into);
    let mut stream = DirectStream::create(strategy(&a, params)?, PreferConsistent, cfg).await?;
    let (mut batches, mut records) = (0u64, 0i64);
    // Ctrl-C (SIGINT) stops after the running batch; a permit is kept if it arrives
    // while a batch is being processed.
    let interrupted = std::sync::Arc::new(tokio::sync::Notify::new());
    let notify = interrupted.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            notify.notify_one();
        }
    });
    let result = loop {
        if a.batches.is_some_and(|n| batches >= n) {
            break Ok(());
        }
        let batch = tokio::select! {
            b = stream.next_batch() => b?,
            _ = interrupted.notified() => break Ok(()),
        };
        let started = Instant::now();
        let counts = batch.foreach_partition(|p| async move { Ok(p.records.count().await? as i64) }).await?;
        let count: i64 = counts.iter().sum();
        print_batch(&batch, &counts, a.json).map_err(|e| StreamingError::Params(format!("stdout: {e}")))?;
        if a.commit {
            stream.commit_async(batch.offset_ranges());
        }
        stream.complete(&batch, started.elapsed())?;
        batches += 1;
        records += count;
        if a.exit_when_empty && count == 0 {
            break Ok(());
        }
    };
    stream.stop(true).await?;
    if !a.quiet {
        eprintln!("% {batches} batches, {records} records");
    }
    result
}

fn print_batch(batch: &ferrokafka_streaming::Batch, counts: &[i64], json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let total: i64 = counts.iter().sum();
    if json {
        let ranges: Vec<_> = batch
            .offset_ranges()
            .iter()
            .zip(counts)
            .map(|(r, c)| {
                serde_json::json!({"topic": &*r.topic, "partition": r.partition, "from": r.from_offset,
                    "until": r.until_offset, "count": c})
            })
            .collect();
        writeln!(out, "{}", serde_json::json!({"time": batch.time_ms, "records": total, "ranges": ranges}))?;
    } else {
        writeln!(out, "batch {} ({total} records)", batch.time_ms)?;
        let description = batch.description();
        if !description.is_empty() {
            writeln!(out, "{description}")?;
        }
    }
    out.flush()
}
