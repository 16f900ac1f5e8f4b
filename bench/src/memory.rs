//! Memory benchmark: a backlog of `--records` records of `--value-bytes` bytes (1 GB by
//! default) on tansu, read from the beginning in ONE batch with no rate limit (Spark's
//! default) by `ferrokafka stream`, next to the plain consumer (`ferrokafka -C -e`) over
//! the same topic. Prints each process's peak RSS (the kernel's `ru_maxrss`) and wall
//! time, and the stream's configured memory budget.
//!
//! Run: `scripts/bench.sh memory [--records N] [--value-bytes B] [--budget BYTES]`.

use std::process::Command;
use std::time::Instant;

use ferrokafka_client::admin::create_topic;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};

const PARTITIONS: i32 = 4;

/// Runs `args` and returns (wall seconds, peak RSS in KiB, what it wrote to stderr) of
/// the process, from the kernel's accounting of children (through Python's `resource`
/// module).
pub(crate) fn peak_rss(args: &[String]) -> (f64, u64, String) {
    let script = "import resource, subprocess, sys\n\
                  subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n\
                  print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
    let started = Instant::now();
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().expect("python3");
    let wall = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let kib = String::from_utf8_lossy(&out.stdout).trim().parse().expect("ru_maxrss");
    (wall, kib, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `memory [--records N] [--value-bytes B] [--budget BYTES] [--cli PATH]`.
pub fn orchestrate(cli: &str, argv: &[String]) {
    let (mut records, mut value_bytes, mut budget) = (1_000_000usize, 1000usize, 64usize << 20);
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--records" => records = argv[i + 1].parse().expect("--records N"),
            "--value-bytes" => value_bytes = argv[i + 1].parse().expect("--value-bytes B"),
            "--budget" => budget = argv[i + 1].parse().expect("--budget BYTES"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let tansu = ferrokafka_tests::tansu::Tansu::start();
    let boot = tansu.addr().to_owned();
    let topic = "backlog";
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let started = Instant::now();
    rt.block_on(async {
        let cfg = ClientConfig::from_pairs([
            ("bootstrap.servers", boot.as_str()),
            ("linger.ms", "20"),
            ("batch.size", "1000000"),
            ("buffer.memory", "67108864"),
        ])
        .expect("config");
        let producer = Producer::new(cfg).await.expect("producer");
        create_topic(producer.cluster(), topic, PARTITIONS, 1).await.expect("create topic");
        let value = "v".repeat(value_bytes);
        let mut pending = std::collections::VecDeque::new();
        for n in 0..records {
            let record = ProducerRecord::new(topic, value.clone()).partition((n % PARTITIONS as usize) as i32);
            pending.push_back(producer.send(record).await.expect("send"));
            while pending.front().is_some_and(|d| d.is_finished()) {
                if let Some(d) = pending.pop_front() {
                    d.await.expect("delivery");
                }
            }
        }
        for d in pending {
            d.await.expect("delivery");
        }
        producer.close().await;
    });
    let gb = (records * value_bytes) as f64 / 1e9;
    eprintln!("produced {records} records ({gb:.2} GB of values) in {:.1} s", started.elapsed().as_secs_f64());

    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<String>>();
    let stream = s(&[
        cli,
        "stream",
        "-b",
        &boot,
        "-G",
        "bench-memory",
        "-t",
        topic,
        "-o",
        "beginning",
        "--batches",
        "1",
        "--memory-budget",
        &budget.to_string(),
    ]);
    let plain = s(&[cli, "-C", "-b", &boot, "-t", topic, "-o", "beginning", "-e", "-q"]);
    let (sw, srss, summary) = peak_rss(&stream);
    // `% 1 batches, N records`: the one batch must hold the whole backlog.
    let read: usize = summary
        .lines()
        .find_map(|l| l.strip_prefix("% 1 batches, ").and_then(|r| r.strip_suffix(" records")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stream summary in {summary:?}"));
    assert!(read * 100 >= records * 99, "the stream's one batch read {read} of {records} records");
    let (pw, prss, _) = peak_rss(&plain);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "memory: {records} records of {value_bytes} bytes ({gb:.2} GB), {PARTITIONS} partitions, tansu, read from the beginning"
    );
    println!("| reader | peak RSS | wall s |");
    println!("|---|---|---|");
    println!(
        "| `ferrokafka stream --batches 1` (one batch of {read} records, no rate limit, budget {:.0} MiB) | {:.0} MiB | {sw:.1} |",
        budget as f64 / 1048576.0,
        mib(srss)
    );
    println!("| `ferrokafka -C -e` (plain consumer) | {:.0} MiB | {pw:.1} |", mib(prss));
    let bound = 128.0 + budget as f64 / 1048576.0;
    println!("stream peak RSS {:.0} MiB vs the bound 128 MiB + budget = {bound:.0} MiB", mib(srss));
}
