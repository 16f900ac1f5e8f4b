//! Benchmark: 1,000,000 records (8-byte key, 100-byte value) on librdkafka's mock
//! cluster (32 partitions), consumed from the beginning by ferrokafka (library and
//! CLI), kcat and rskafka, for uncompressed, lz4 and zstd topics; and produced by
//! kcat and ferrokafka. Prints wall time, msgs/s, MB/s and CPU seconds (user+sys)
//! of each client process, measured by bash's `time`, median of `--reps` runs.
//!
//! Run: `scripts/bench.sh` (builds the CLI and this crate in release mode).

use std::process::Command;
use std::time::Duration;

mod clients;
mod curves;
mod memory;
mod streaming;

const PARTITIONS: i32 = 32;
/// ferrokafka's producer buffer in the produce runs: 128 MiB holds the whole load
/// (1M records, 113 MB), as kcat's `queue.buffering.max.messages=1000000` does.
const BUFFER_MEMORY: &str = "134217728";
const VALUE_LEN: usize = 100;

/// The values the records carry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Payload {
    /// A JSON object around a periodic letter pattern: compresses far better than real data.
    Pattern,
    /// The same object around random alphanumerics (zstd ratio ~0.54 on 1 MiB batches),
    /// as in ../shared/docs/perf-anchors.md.
    Realistic,
}

impl Payload {
    fn name(self) -> &'static str {
        match self {
            Payload::Pattern => "pattern",
            Payload::Realistic => "realistic",
        }
    }

    /// Topic names are prefixed so both payloads live side by side on one mock.
    fn prefix(self) -> &'static str {
        match self {
            Payload::Pattern => "",
            Payload::Realistic => "r",
        }
    }

    /// `records` lines `KEY:VALUE`: an 8-byte key `k%07d` and a 100-byte value.
    fn lines(self, records: usize) -> String {
        let mut text = String::with_capacity(records * (VALUE_LEN + 10));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..records {
            text.push_str(&format!("k{n:07}:"));
            let tail: String = (0..VALUE_LEN - 23)
                .map(|j| match self {
                    Payload::Pattern => (b'a' + ((n * 7 + j * 13) % 26) as u8) as char,
                    Payload::Realistic => {
                        // xorshift64*: a fixed seed, so every run loads the same data.
                        seed ^= seed >> 12;
                        seed ^= seed << 25;
                        seed ^= seed >> 27;
                        let x = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[(x % 62) as usize] as char
                    }
                })
                .collect();
            text.push_str(&format!("{{\"id\":{n:09},\"v\":\"{tail}\"}}"));
            text.push('\n');
        }
        text
    }
}

struct Row {
    payload: Payload,
    client: String,
    topic: String,
    walls: Vec<f64>,
    cpus: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs a shell command under bash's `time`; returns (wall, user+sys) seconds.
fn timed(cmd: &str) -> (f64, f64) {
    let script = format!("TIMEFORMAT='%R %U %S'; time ( {cmd} ) > /dev/null");
    let out = Command::new("bash").args(["-c", &script]).output().expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd} failed: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    let f: Vec<f64> = last.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    assert_eq!(f.len(), 3, "cannot read timing from {last:?} ({stderr})");
    (f[0], f[1] + f[2])
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("consume-ferrokafka") | Some("consume-rskafka") | Some("produce-ferrokafka") => {
            let mode = std::env::args().nth(1).unwrap_or_default();
            let rest: Vec<String> = args.collect();
            clients::run(&mode, &rest);
        }
        Some(mode @ ("wordcount-plain" | "wordcount-stream")) => {
            let mode = mode.to_owned();
            let rest: Vec<String> = args.collect();
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
            let (boot, topic, parts, n) =
                (&rest[0], &rest[1], rest[2].parse().expect("partitions"), rest[3].parse().expect("n"));
            let counted = match mode.as_str() {
                "wordcount-plain" => rt.block_on(streaming::plain_wordcount(boot, topic, parts, n)),
                _ => rt.block_on(streaming::stream_wordcount(boot, topic, parts, n)),
            };
            println!("{counted}");
        }
        Some("streaming") => streaming::orchestrate(&args.collect::<Vec<_>>()),
        Some(mode @ ("memory" | "curves")) => {
            let curves = mode == "curves";
            let rest: Vec<String> = args.collect();
            let cli = match rest.iter().position(|a| a == "--cli") {
                Some(i) => rest[i + 1].clone(),
                None => "target/release/ferrokafka".to_owned(),
            };
            let rest: Vec<String> = match rest.iter().position(|a| a == "--cli") {
                Some(i) => [&rest[..i], &rest[i + 2..]].concat(),
                None => rest,
            };
            if curves {
                curves::orchestrate(&cli, &rest)
            } else {
                memory::orchestrate(&cli, &rest)
            }
        }
        _ => orchestrate(std::env::args().skip(1).collect()),
    }
}

/// Whether `client` is selected by `--only a,b,…` (every client when absent).
fn wanted(only: &Option<Vec<String>>, client: &str) -> bool {
    only.as_ref().is_none_or(|o| o.iter().any(|c| c == client))
}

fn orchestrate(argv: Vec<String>) {
    let mut records: usize = 1_000_000;
    let mut reps = 3;
    let mut cli = String::from("target/release/ferrokafka");
    let mut static_cli: Option<String> = None;
    let mut only: Option<Vec<String>> = None;
    let mut payloads = vec![Payload::Pattern, Payload::Realistic];
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--records" => records = argv[i + 1].parse().expect("--records N"),
            "--reps" => reps = argv[i + 1].parse().expect("--reps N"),
            "--cli" => cli = argv[i + 1].clone(),
            "--static-cli" => static_cli = Some(argv[i + 1].clone()),
            "--only" => only = Some(argv[i + 1].split(',').map(str::to_owned).collect()),
            "--payload" => {
                payloads = match argv[i + 1].as_str() {
                    "pattern" => vec![Payload::Pattern],
                    "realistic" => vec![Payload::Realistic],
                    "both" => vec![Payload::Pattern, Payload::Realistic],
                    other => panic!("--payload pattern|realistic|both, not {other}"),
                }
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let me = std::env::current_exe().expect("current exe").display().to_string();
    let mut mock = ferrokafka_tests::mock::MockCluster::start(1);
    let boot = mock.bootstrap().to_owned();
    let mut inputs = Vec::new();
    for p in &payloads {
        let path = std::env::temp_dir().join(format!("ferrokafka-bench-{}-{}.txt", std::process::id(), p.name()));
        std::fs::write(&path, p.lines(records)).expect("write input");
        inputs.push((*p, path.display().to_string()));
    }
    let payload_mb = (records * (8 + VALUE_LEN)) as f64 / 1e6;
    let mut rows: Vec<Row> = Vec::new();
    let row = |payload: Payload, client: &str, topic: &str, rows: &mut Vec<Row>, (w, c): (f64, f64)| match rows
        .iter_mut()
        .find(|r| r.payload == payload && r.client == client && r.topic == topic)
    {
        Some(r) => {
            r.walls.push(w);
            r.cpus.push(c);
        }
        None => rows.push(Row { payload, client: client.into(), topic: topic.into(), walls: vec![w], cpus: vec![c] }),
    };
    let load =
        "-X linger.ms=50 -X batch.num.messages=10000 -X batch.size=1000000 -X queue.buffering.max.messages=1000000";
    let codecs = [("perf", "none"), ("perf_lz4", "lz4"), ("perf_zstd", "zstd")];
    for (payload, input) in &inputs {
        for (topic, codec) in codecs {
            let topic = format!("{}{topic}", payload.prefix());
            mock.create_topic(&topic, PARTITIONS as u32);
            let t = timed(&format!("kcat -P -b {boot} -t {topic} -K: -z {codec} {load} -l {input}"));
            row(*payload, &format!("kcat-produce-{codec}"), &topic, &mut rows, t);
        }
    }
    for rep in 0..reps {
        for (payload, input) in &inputs {
            for (topic, codec) in codecs {
                let topic = format!("{}{topic}", payload.prefix());
                let n = records;
                let mut cmds = vec![
                    ("ferrokafka-lib", format!("{me} consume-ferrokafka {boot} {topic} {PARTITIONS} {n}")),
                    ("ferrokafka-cli", format!("{cli} -C -b {boot} -t {topic} -o beginning -e -q -f ''")),
                    ("kcat", format!("kcat -C -b {boot} -t {topic} -o beginning -e -q -f ''")),
                    (
                        "kcat-fw10",
                        format!("kcat -C -b {boot} -t {topic} -o beginning -e -q -f '' -X fetch.wait.max.ms=10"),
                    ),
                    ("rskafka", format!("{me} consume-rskafka {boot} {topic} {PARTITIONS} {n}")),
                ];
                if let Some(s) = &static_cli {
                    cmds.push((
                        "ferrokafka-cli-static",
                        format!("{s} -C -b {boot} -t {topic} -o beginning -e -q -f ''"),
                    ));
                }
                for (client, cmd) in cmds.into_iter().filter(|(c, _)| wanted(&only, c)) {
                    if rep == 0 {
                        eprintln!("% {client} on {topic} ({codec}, {})", payload.name());
                    }
                    row(*payload, client, &topic, &mut rows, timed(&cmd));
                }
            }
            // The producers write to a mock of their own, started afresh for each rep and
            // payload: one mock taking every rep's sink topics grew to several GB in a
            // full run, and the producers' rows slowed by up to 3× in its later reps
            // (system time in page faults; README, "Benchmarks"). A fresh mock holds one
            // rep's six topics.
            let mut sinks = ferrokafka_tests::mock::MockCluster::start(1);
            let boot = sinks.bootstrap().to_owned();
            let sink = format!("{}sink{rep}", payload.prefix());
            for t in ["k", "f", "c", "ki", "ci", "s"] {
                sinks.create_topic(&format!("{sink}_{t}"), PARTITIONS as u32);
            }
            let cli_produce = |bin: &str, t: &str, extra: &str| {
                format!(
                    "{bin} -P -b {boot} -t {sink}_{t} -K : -q -X linger.ms=50 -X batch.size=1000000 -X buffer.memory={BUFFER_MEMORY} {extra} < {input}"
                )
            };
            let idem = "-X enable.idempotence=true -X acks=all";
            let mut produces = vec![
                ("kcat-produce", format!("kcat -P -b {boot} -t {sink}_k -K: {load} -l {input}")),
                ("ferrokafka-lib-produce", format!("{me} produce-ferrokafka {boot} {sink}_f {PARTITIONS} {input}")),
                ("ferrokafka-cli-produce", cli_produce(&cli, "c", "")),
                ("kcat-produce-idempotent", format!("kcat -P -b {boot} -t {sink}_ki -K: {load} {idem} -l {input}")),
                ("ferrokafka-cli-produce-idempotent", cli_produce(&cli, "ci", idem)),
            ];
            if let Some(s) = &static_cli {
                produces.push(("ferrokafka-cli-static-produce", cli_produce(s, "s", "")));
            }
            for (client, cmd) in produces.into_iter().filter(|(c, _)| wanted(&only, c)) {
                // The mock stays busy for a while after taking 1M records (it trims each
                // partition to ~5 MiB): run straight after kcat's, our rows ran 2–3×
                // slower than alone (`--only`), so each producer starts on a settled mock.
                std::thread::sleep(Duration::from_secs(1));
                row(*payload, client, "sink", &mut rows, timed(&cmd));
            }
            drop(sinks);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    println!("records: {records} (8-byte key + {VALUE_LEN}-byte value, {payload_mb:.1} MB), {PARTITIONS} partitions, librdkafka mock cluster, {reps} reps, median");
    println!(
        "| payload | client | topic | runs | wall min / median s | msgs/s (median) | MB/s (median) | CPU-s per 1M (median) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let (wmin, wmed, cmed) = (r.walls.iter().cloned().fold(f64::MAX, f64::min), median(&r.walls), median(&r.cpus));
        let per_m = cmed * 1_000_000.0 / records as f64;
        println!(
            "| {} | {} | {} | {} | {:.2} / {:.2} | {:.0} | {:.1} | {:.2} |",
            r.payload.name(),
            r.client,
            r.topic,
            r.walls.len(),
            wmin,
            wmed,
            records as f64 / wmed,
            payload_mb / wmed,
            per_m
        );
    }
    for (_, input) in inputs {
        let _ = std::fs::remove_file(input);
    }
}
