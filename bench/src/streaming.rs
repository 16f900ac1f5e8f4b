//! Streaming benchmark: the direct stream's per-batch planning overhead for 1,000
//! partitions, and the word count (Spark's DirectKafkaWordCount) as a direct stream
//! against plain consumption of the same topic, in one run on the mock cluster.
//!
//! Run: `scripts/bench.sh streaming [--records N] [--reps N]`.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition as ClientTp;
use ferrokafka_streaming::{
    Assign, DirectStream, Executor, ExecutorPool, KafkaParams, LocationStrategy, PreferConsistent, StreamConfig,
    TopicPartition,
};

use crate::{median, timed};

const PARTITIONS: i32 = 32;
const PLAN_PARTITIONS: i32 = 1000;
const WORDS: [&str; 12] =
    ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "kafka", "spark", "stream", "batch"];

/// Counts the space-separated words of `value` into `counts`. A new word's key shares
/// the value's buffer, which `owner` gives as `Bytes` (no copy).
fn count_words(value: &[u8], owner: impl Fn() -> Bytes, counts: &mut HashMap<Bytes, u64>) {
    for word in value.split(|b| *b == b' ').filter(|w| !w.is_empty()) {
        match counts.get_mut(word) {
            Some(c) => *c += 1,
            None => {
                counts.insert(owner().slice_ref(word), 1);
            }
        }
    }
}

fn total(counts: &HashMap<Bytes, u64>) -> u64 {
    counts.values().sum()
}

/// `wordcount-plain BOOT TOPIC PARTITIONS N`: a consumer reading the topic, counting words.
pub async fn plain_wordcount(boot: &str, topic: &str, partitions: i32, n: usize) -> usize {
    let cfg = ClientConfig::from_pairs([("bootstrap.servers", boot), ("auto.offset.reset", "earliest")]).expect("cfg");
    let mut consumer = Consumer::new(cfg).await.expect("consumer");
    consumer.assign((0..partitions).map(|p| ClientTp::new(topic, p)));
    let (mut records, mut counts) = (0usize, HashMap::new());
    while records < n {
        let polled = consumer.poll(Duration::from_secs(10)).await.expect("poll");
        assert!(!polled.is_empty(), "no records for 10 s after {records}");
        for r in polled.views() {
            let r = r.expect("record").record;
            if let Some(v) = r.value() {
                count_words(v, || r.value_bytes().unwrap_or_default(), &mut counts);
            }
            records += 1;
        }
    }
    println!("{} words", total(&counts));
    records
}

/// `wordcount-stream BOOT TOPIC PARTITIONS N`: the word count as a direct stream (Assign —
/// Subscribe would add the mock's 3-second initial group delay —, PreferConsistent, two
/// executors), until `n` records were counted.
pub async fn stream_wordcount(boot: &str, topic: &str, partitions: i32, n: usize) -> usize {
    let params = KafkaParams::new([
        ("bootstrap.servers", boot),
        ("group.id", "bench-wordcount"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ])
    .expect("params");
    let parts: BTreeSet<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
    let strategy = Assign::new(parts, params, Default::default()).expect("assign");
    let cfg = StreamConfig { batch_interval: Duration::from_millis(100), ..Default::default() };
    let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await.expect("stream");
    let (mut records, mut batches, mut counts) = (0usize, 0usize, HashMap::<Bytes, u64>::new());
    while records < n {
        let batch = stream.next_batch().await.expect("batch");
        let started = Instant::now();
        let parts = batch
            .foreach_partition(|mut p| async move {
                let mut counts = HashMap::new();
                let n = p
                    .records
                    .for_each_view(|r| {
                        if let Some(v) = r.value() {
                            count_words(v, || r.value_bytes().unwrap_or_default(), &mut counts);
                        }
                    })
                    .await?;
                Ok((n as usize, counts))
            })
            .await
            .expect("foreach_partition");
        for (n, part) in parts {
            records += n;
            for (w, c) in part {
                *counts.entry(w).or_insert(0) += c;
            }
        }
        stream.complete(&batch, started.elapsed()).expect("complete");
        batches += 1;
    }
    stream.stop(true).await.expect("stop");
    println!("{} words in {batches} batches", total(&counts));
    records
}

/// Planning overhead: median and 90th percentile of `next_batch` (latest offsets for
/// every partition, rate caps, placement, no data) for `PLAN_PARTITIONS` partitions, and
/// of PreferConsistent's placement alone.
fn planning(mock: &mut ferrokafka_tests::mock::MockCluster) {
    let topic = "plan";
    mock.create_topic(topic, PLAN_PARTITIONS as u32);
    let boot = mock.bootstrap().to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let times = rt.block_on(async {
        let params = KafkaParams::new([("bootstrap.servers", boot.as_str()), ("group.id", "bench-plan")]).expect("p");
        let parts: BTreeSet<TopicPartition> = (0..PLAN_PARTITIONS).map(|p| TopicPartition::new(topic, p)).collect();
        let offsets = parts.iter().map(|tp| (tp.clone(), 0)).collect();
        let strategy = Assign::new(parts, params, offsets).expect("assign");
        let cfg = StreamConfig {
            batch_interval: Duration::from_millis(1),
            executors: ExecutorPool::local_executors(8),
            ..Default::default()
        };
        let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await.expect("s");
        let mut times = Vec::new();
        for i in 0..60 {
            let t = Instant::now();
            let batch = stream.next_batch().await.expect("batch");
            let elapsed = t.elapsed().as_secs_f64() * 1e3;
            if i >= 10 {
                times.push(elapsed); // the first batches warm up connections and metadata
            }
            stream.complete(&batch, Duration::ZERO).expect("complete");
        }
        stream.stop(true).await.expect("stop");
        times
    });
    let tps: Vec<TopicPartition> = (0..PLAN_PARTITIONS).map(|p| TopicPartition::new(topic, p)).collect();
    let executors: Vec<Executor> = (0..10).map(|i| Executor::new(i.to_string(), format!("host{}", i % 3))).collect();
    let mut place = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let placed = PreferConsistent.place(&tps, &executors, &HashMap::new()).expect("place");
        place.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(placed.len(), tps.len());
    }
    let p90 = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() * 9 / 10]
    };
    println!(
        "planning, {PLAN_PARTITIONS} partitions, 8 executors, mock cluster (1 broker), 50 batches after 10 warm-up:"
    );
    println!("| step | median | p90 |");
    println!("|---|---|---|");
    println!(
        "| `next_batch` (ListOffsets for all, rate caps, placement) | {:.2} ms | {:.2} ms |",
        median(&times),
        p90(&times)
    );
    println!(
        "| `PreferConsistent::place` alone (10 executors on 3 hosts) | {:.0} µs | {:.0} µs |",
        median(&place),
        p90(&place)
    );
}

/// `streaming [--records N] [--reps N]`.
pub fn orchestrate(argv: &[String]) {
    let (mut records, mut reps) = (1_000_000usize, 3usize);
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--records" => records = argv[i + 1].parse().expect("--records N"),
            "--reps" => reps = argv[i + 1].parse().expect("--reps N"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let me = std::env::current_exe().expect("current exe").display().to_string();
    let mut mock = ferrokafka_tests::mock::MockCluster::start(1);
    planning(&mut mock);

    let boot = mock.bootstrap().to_owned();
    let topic = "words";
    mock.create_topic(topic, PARTITIONS as u32);
    let input = std::env::temp_dir().join(format!("ferrokafka-bench-words-{}.txt", std::process::id()));
    let text: String = (0..records)
        .map(|n| {
            let words: Vec<&str> = (0..8).map(|j| WORDS[(n * 7 + j * 5) % WORDS.len()]).collect();
            format!("k{n:07}:{}\n", words.join(" "))
        })
        .collect();
    std::fs::write(&input, &text).expect("write input");
    let load =
        "-X linger.ms=50 -X batch.num.messages=10000 -X batch.size=1000000 -X queue.buffering.max.messages=1000000";
    // Keyed, so murmur2 spreads the records evenly: with null keys librdkafka's sticky
    // partitioner writes 10,000-record batches to few partitions, and the mock drops data.
    timed(&format!("kcat -P -b {boot} -t {topic} -K: {load} -l {}", input.display()));
    let _ = std::fs::remove_file(&input);

    let cmds = [
        (
            "plain consume (ferrokafka Consumer)",
            format!("{me} consume-ferrokafka {boot} {topic} {PARTITIONS} {records}"),
        ),
        ("plain consume + word count", format!("{me} wordcount-plain {boot} {topic} {PARTITIONS} {records}")),
        ("direct stream word count", format!("{me} wordcount-stream {boot} {topic} {PARTITIONS} {records}")),
    ];
    let mut rows: Vec<(&str, Vec<f64>, Vec<f64>)> = cmds.iter().map(|(n, _)| (*n, Vec::new(), Vec::new())).collect();
    for _ in 0..reps {
        for (row, (_, cmd)) in rows.iter_mut().zip(&cmds) {
            let (w, c) = timed(cmd);
            row.1.push(w);
            row.2.push(c);
        }
    }
    println!();
    println!("word count: {records} lines of 8 words, {PARTITIONS} partitions, mock cluster, {reps} reps, median");
    println!("| client | wall s | records/s | CPU-s per 1M |");
    println!("|---|---|---|---|");
    for (name, walls, cpus) in &rows {
        let (w, c) = (median(walls), median(cpus));
        println!("| {name} | {w:.2} | {:.0} | {:.2} |", records as f64 / w, c * 1e6 / records as f64);
    }
}
