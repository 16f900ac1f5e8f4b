//! How cost grows: the CLI's CPU per 1M records against record size (10 B to 10 KB)
//! and against partition count (1, 32, 1,000) on librdkafka's mock, consuming and
//! producing; and the plain consumer's peak RSS against topic size (100 MB, 1 GB) on
//! tansu. Prints Markdown tables and writes an SVG of the three curves.
//!
//! CPU per record is (CPU of the run − CPU of the same command on an empty topic or
//! input) / records: process start-up, metadata and teardown are taken out. The mock
//! keeps ~5 MiB per partition, so one partition holds 40,000 records of 100 B.
//!
//! Run: `scripts/bench.sh curves [--reps N] [--svg PATH]`.

use std::fmt::Write as _;
use std::time::Instant;

use ferrokafka_client::admin::create_topic;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::Producer;

use crate::{median, timed};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
const PARTITION_COUNTS: [u32; 3] = [1, 32, 1_000];

/// `records` lines of `size` random alphanumerics (fixed seed).
fn input(size: usize, records: usize) -> String {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut text = String::with_capacity(records * (size + 1));
    for _ in 0..records {
        for _ in 0..size {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.push(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[(seed % 62) as usize] as char);
        }
        text.push('\n');
    }
    text
}

/// Median CPU seconds of `cmd` over `reps` runs.
fn cpu(cmd: &str, reps: usize) -> f64 {
    let v: Vec<f64> = (0..reps).map(|_| timed(cmd).1).collect();
    median(&v)
}

struct Point {
    x: f64,
    consume: f64,
    produce: f64,
}

pub fn orchestrate(cli: &str, argv: &[String]) {
    let (mut reps, mut svg) = (5usize, String::from("docs/cost-curves.svg"));
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--reps" => reps = argv[i + 1].parse().expect("--reps N"),
            "--svg" => svg = argv[i + 1].clone(),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let dir = std::env::temp_dir().join(format!("ferrokafka-curves-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut mock = ferrokafka_tests::mock::MockCluster::start(1);
    let boot = mock.bootstrap().to_owned();
    let consume = |topic: &str| format!("{cli} -C -b {boot} -t {topic} -o beginning -e -q -f ''");
    let produce = |topic: &str, file: &str| {
        format!("{cli} -P -b {boot} -t {topic} -q -X linger.ms=50 -X batch.size=1000000 -X buffer.memory=134217728 < {file}")
    };
    let empty = dir.join("empty.txt").display().to_string();
    std::fs::write(&empty, "").expect("write");
    let mut n = 0;
    let mut topic = |mock: &mut ferrokafka_tests::mock::MockCluster, partitions: u32| {
        n += 1;
        let t = format!("curve{n}");
        mock.create_topic(&t, partitions);
        t
    };
    // (CPU per 1M records, consume and produce) for `records` of `size` on `partitions`.
    let mut measure = |mock: &mut ferrokafka_tests::mock::MockCluster, size: usize, records: usize, partitions: u32| {
        let file = dir.join(format!("in-{size}-{records}.txt")).display().to_string();
        std::fs::write(&file, input(size, records)).expect("write input");
        let (data, none) = (topic(mock, partitions), topic(mock, partitions));
        let load = timed(&produce(&data, &file));
        assert!(load.0 > 0.0);
        let c = cpu(&consume(&data), reps) - cpu(&consume(&none), reps);
        let sinks: Vec<String> = (0..reps).map(|_| topic(mock, partitions)).collect();
        let base: Vec<String> = (0..reps).map(|_| topic(mock, partitions)).collect();
        let p = median(&sinks.iter().map(|s| timed(&produce(s, &file)).1).collect::<Vec<_>>())
            - median(&base.iter().map(|s| timed(&produce(s, &empty)).1).collect::<Vec<_>>());
        let _ = std::fs::remove_file(&file);
        let per_m = |cpu: f64| cpu.max(0.0) * 1e6 / records as f64;
        (per_m(c), per_m(p))
    };

    let mut by_size = Vec::new();
    for size in SIZES {
        let records = (100_000_000 / size).min(1_000_000);
        eprintln!("% record size {size} B, {records} records, 32 partitions");
        let (c, p) = measure(&mut mock, size, records, 32);
        by_size.push(Point { x: size as f64, consume: c, produce: p });
    }
    let mut by_partitions = Vec::new();
    for partitions in PARTITION_COUNTS {
        let records = (partitions as usize * 40_000).min(1_000_000);
        eprintln!("% {partitions} partitions, {records} records of 100 B");
        let (c, p) = measure(&mut mock, 100, records, partitions);
        by_partitions.push(Point { x: f64::from(partitions), consume: c, produce: p });
    }
    drop(mock);

    println!("cost by record size: the CLI, 32 partitions, librdkafka mock, median of {reps}, start-up taken out");
    println!(
        "| record size | consume CPU-s per 1M | produce CPU-s per 1M | consume ns per byte | produce ns per byte |"
    );
    println!("|---|---|---|---|---|");
    for p in &by_size {
        let per_byte = |v: f64| v * 1e3 / p.x;
        println!(
            "| {} B | {:.3} | {:.3} | {:.2} | {:.2} |",
            p.x,
            p.consume,
            p.produce,
            per_byte(p.consume),
            per_byte(p.produce)
        );
    }
    println!();
    println!("cost by partition count: the CLI, records of 100 B, librdkafka mock, median of {reps}");
    println!("| partitions | consume CPU-s per 1M | produce CPU-s per 1M |");
    println!("|---|---|---|");
    for p in &by_partitions {
        println!("| {} | {:.3} | {:.3} |", p.x, p.consume, p.produce);
    }
    println!();
    let rss = rss_by_topic_size(cli, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    println!("plain consumer (`ferrokafka -C -e`) peak RSS by topic size: tansu, 4 partitions, records of 1,000 B, default fetch sizes");
    println!("| topic size | peak RSS | wall s |");
    println!("|---|---|---|");
    for (mb, kib, wall) in &rss {
        println!("| {mb} MB | {:.1} MiB | {wall:.1} |", *kib as f64 / 1024.0);
    }
    std::fs::write(&svg, plot(&by_size, &by_partitions, &rss)).expect("write svg");
    eprintln!("% wrote {svg}");
}

/// Peak RSS of the plain consumer over 100 MB, then 1 GB, of 1,000-byte records.
fn rss_by_topic_size(cli: &str, dir: &std::path::Path) -> Vec<(u64, u64, f64)> {
    let tansu = ferrokafka_tests::tansu::Tansu::start();
    let boot = tansu.addr().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let cfg = ClientConfig::from_pairs([("bootstrap.servers", boot.as_str())]).expect("config");
        let producer = Producer::new(cfg).await.expect("producer");
        create_topic(producer.cluster(), "sized", 4, 1).await.expect("create topic");
        producer.close().await;
    });
    let file = dir.join("kb.txt").display().to_string();
    std::fs::write(&file, input(1000, 100_000)).expect("write input");
    let mut out = Vec::new();
    let mut loaded = 0u64;
    let started = Instant::now();
    for target_mb in [100u64, 1000] {
        while loaded < target_mb {
            let load = format!(
                "{cli} -P -b {boot} -t sized -q -X linger.ms=20 -X batch.size=1000000 -X buffer.memory=67108864 < {file}"
            );
            timed(&load);
            loaded += 100;
        }
        eprintln!("% tansu holds {loaded} MB ({:.0} s)", started.elapsed().as_secs_f64());
        let read: Vec<String> = [cli, "-C", "-b", &boot, "-t", "sized", "-o", "beginning", "-e", "-q"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let (wall, kib, _) = crate::memory::peak_rss(&read);
        out.push((target_mb, kib, wall));
    }
    out
}

/// Three small line charts side by side.
fn plot(by_size: &[Point], by_partitions: &[Point], rss: &[(u64, u64, f64)]) -> String {
    let (w, h, pad) = (300.0, 220.0, 45.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        3.0 * w,
        h + 30.0
    );
    let size_series = [
        ("consume", "#1f77b4", by_size.iter().map(|p| (p.x, p.consume * 1e3 / p.x)).collect::<Vec<_>>()),
        ("produce", "#d62728", by_size.iter().map(|p| (p.x, p.produce * 1e3 / p.x)).collect::<Vec<_>>()),
    ];
    chart(&mut s, 0.0, (w, h, pad), "CPU ns per byte vs record size (B)", true, &size_series);
    let part_series = [
        ("consume", "#1f77b4", by_partitions.iter().map(|p| (p.x, p.consume)).collect::<Vec<_>>()),
        ("produce", "#d62728", by_partitions.iter().map(|p| (p.x, p.produce)).collect::<Vec<_>>()),
    ];
    chart(&mut s, w, (w, h, pad), "CPU-s per 1M records vs partitions", true, &part_series);
    let rss_series =
        [("peak RSS MiB", "#2ca02c", rss.iter().map(|(mb, kib, _)| (*mb as f64, *kib as f64 / 1024.0)).collect())];
    chart(&mut s, 2.0 * w, (w, h, pad), "consumer peak RSS (MiB) vs topic MB", true, &rss_series);
    s.push_str("</svg>\n");
    s
}

type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

fn chart(s: &mut String, left: f64, (w, h, pad): (f64, f64, f64), title: &str, log_x: bool, series: &[Series<'_>]) {
    let xs: Vec<f64> =
        series.iter().flat_map(|(_, _, p)| p.iter().map(|(x, _)| if log_x { x.log10() } else { *x })).collect();
    let ys: Vec<f64> = series.iter().flat_map(|(_, _, p)| p.iter().map(|(_, y)| *y)).collect();
    let (x0, x1) = (xs.iter().cloned().fold(f64::MAX, f64::min), xs.iter().cloned().fold(f64::MIN, f64::max));
    let y1 = ys.iter().cloned().fold(0.0, f64::max) * 1.15 + 1e-9;
    let px = |x: f64| {
        let x = if log_x { x.log10() } else { x };
        left + pad + (x - x0) / (x1 - x0).max(1e-9) * (w - 1.6 * pad)
    };
    let py = |y: f64| h - pad + 20.0 - y / y1 * (h - 1.5 * pad);
    let _ = write!(s, r#"<text x="{}" y="14">{title}</text>"#, left + 10.0);
    let _ = write!(
        s,
        r#"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="black"/><line x1="{0}" y1="{1}" x2="{0}" y2="{3}" stroke="black"/>"#,
        left + pad,
        py(0.0),
        left + w - 0.6 * pad,
        py(y1)
    );
    let _ = write!(s, r#"<text x="{}" y="{}">{:.3}</text>"#, left + 2.0, py(y1) + 4.0, y1);
    let _ = write!(s, r#"<text x="{}" y="{}">0</text>"#, left + pad - 12.0, py(0.0) + 4.0);
    for (n, (name, color, points)) in series.iter().enumerate() {
        let path: Vec<String> = points.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
        let _ = write!(s, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, path.join(" "));
        for (x, y) in points {
            let _ = write!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#, px(*x), py(*y));
            if n == 0 {
                let _ = write!(s, r#"<text x="{:.1}" y="{}" text-anchor="middle">{x}</text>"#, px(*x), py(0.0) + 14.0);
            }
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" fill="{color}">{name}</text>"#,
            left + w - 1.6 * pad,
            30.0 + 13.0 * n as f64
        );
    }
}
