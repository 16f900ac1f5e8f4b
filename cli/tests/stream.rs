//! `ferrokafka stream` against the librdkafka mock cluster: batches with their offset
//! ranges (text and JSON), exit at the first empty batch, commits that a second run
//! resumes from, explicit assignments with offsets, rate caps and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::unique_topic;
use serde_json::Value;

fn ferrokafka(args: &[&str], stdin: &[u8]) -> Output {
    ferrokafka_tests::run_cli(env!("CARGO_BIN_EXE_ferrokafka"), args, stdin)
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn produce(b: &str, topic: &str, partition: i32, n: usize) {
    let input: String = (0..n).map(|i| format!("p{partition}-{i}\n")).collect();
    ok(ferrokafka(&["-P", "-b", b, "-t", topic, "-p", &partition.to_string()], input.as_bytes()), "produce");
}

/// (partition, from, until, count) of one range.
type Range = (i32, i64, i64, i64);

/// The ranges of every batch, and the batches' record counts.
fn batches(json_lines: &str) -> (Vec<Vec<Range>>, Vec<i64>) {
    let mut ranges = Vec::new();
    let mut counts = Vec::new();
    for line in json_lines.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        counts.push(v["records"].as_i64().unwrap());
        ranges.push(
            v["ranges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let n = |k: &str| r[k].as_i64().unwrap();
                    (n("partition") as i32, n("from"), n("until"), n("count"))
                })
                .collect(),
        );
    }
    (ranges, counts)
}

#[test]
fn stream_prints_batches_commits_and_resumes() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("stream-cli");
    mock.create_topic(&topic, 3);
    for p in 0..3 {
        produce(&b, &topic, p, 10);
    }
    let group = unique_topic("stream-cli-g");
    let run = |extra: &[&str]| {
        let mut args =
            vec!["stream", "-b", &b, "-G", &group, "-t", &topic, "--interval", "200", "-e", "-J", "--commit"];
        args.extend_from_slice(extra);
        ok(ferrokafka(&args, b""), "stream")
    };

    let (ranges, counts) = batches(&run(&["-o", "beginning"]));
    assert_eq!(counts.iter().sum::<i64>(), 30, "{ranges:?}");
    assert_eq!(counts.last(), Some(&0), "stops at the first empty batch");
    for p in 0..3 {
        let mine: Vec<(i64, i64)> = ranges.iter().flatten().filter(|r| r.0 == p).map(|r| (r.1, r.2)).collect();
        assert_eq!(mine.first().map(|r| r.0), Some(0));
        assert_eq!(mine.last().map(|r| r.1), Some(10));
        assert!(mine.windows(2).all(|w| w[0].1 == w[1].0), "ranges chain: {mine:?}");
    }
    for r in ranges.iter().flatten() {
        assert_eq!(r.3, r.2 - r.1, "count = until - from on a plain topic");
    }

    // The second run starts at the committed offsets, not at the beginning.
    produce(&b, &topic, 1, 4);
    let (ranges, counts) = batches(&run(&["-o", "beginning"]));
    assert_eq!(counts.iter().sum::<i64>(), 4, "{ranges:?}");
    let first = &ranges[0];
    assert!(first.contains(&(1, 10, 14, 4)) && first.contains(&(0, 10, 10, 0)), "{first:?}");

    // Text output, explicit assignment with a starting offset.
    let spec = format!("{topic}:0@5,{topic}:1@12");
    let text =
        ok(ferrokafka(&["stream", "-b", &b, "-G", &group, "--assign", &spec, "--batches", "1", "-q"], b""), "assign");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("batch ") && lines[0].ends_with("(7 records)"), "{text}");
    assert_eq!(
        &lines[1..],
        [
            format!("topic: {topic} partition: 0 offsets: 5 to 10 count: 5"),
            format!("topic: {topic} partition: 1 offsets: 12 to 14 count: 2"),
        ]
    );

    // maxRatePerPartition: 4 records/s × 0.5 s = 2 records per batch.
    let spec = format!("{topic}:2@0");
    let capped = ok(
        ferrokafka(
            &[
                "stream",
                "-b",
                &b,
                "-G",
                &group,
                "--assign",
                &spec,
                "--interval",
                "500",
                "--max-rate",
                "4",
                "--batches",
                "3",
                "-J",
            ],
            b"",
        ),
        "rate",
    );
    let (ranges, _) = batches(&capped);
    let got: Vec<(i64, i64)> = ranges.iter().flatten().map(|r| (r.1, r.2)).collect();
    assert_eq!(got, [(0, 2), (2, 4), (4, 6)]);
}

#[test]
fn stream_exit_codes() {
    let usage = ferrokafka(&["stream", "-b", "127.0.0.1:1", "-G", "g"], b"");
    assert_eq!(usage.status.code(), Some(2), "{}", String::from_utf8_lossy(&usage.stderr));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("exactly one of -t TOPIC"));
    let both = ferrokafka(&["stream", "-b", "127.0.0.1:1", "-G", "g", "-t", "a", "--pattern", "b.*"], b"");
    assert_eq!(both.status.code(), Some(2));
    let config = ferrokafka(&["stream", "-b", "127.0.0.1:1", "-G", "g", "-t", "a", "-X", "fetch.max.wiat.ms=5"], b"");
    assert_eq!(config.status.code(), Some(3), "{}", String::from_utf8_lossy(&config.stderr));
    assert!(String::from_utf8_lossy(&config.stderr).contains("fetch.max.wait.ms"), "names the closest key");
    let no_group = ferrokafka(&["stream", "-b", "127.0.0.1:1", "-t", "a"], b"");
    assert_eq!(no_group.status.code(), Some(3), "{}", String::from_utf8_lossy(&no_group.stderr));
    assert!(String::from_utf8_lossy(&no_group.stderr).contains("group.id"));
}

/// A `ferrokafka stream` process whose JSON batches are collected as they come.
struct StreamProcess {
    child: std::process::Child,
    ranges: std::sync::Arc<std::sync::Mutex<Vec<Range>>>,
    batches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl StreamProcess {
    fn start(args: &[&str]) -> StreamProcess {
        use std::io::BufRead;
        let mut child = Command::new(ferrokafka_tests::cli_binary(env!("CARGO_BIN_EXE_ferrokafka")))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ranges = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let batches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (r, b) = (ranges.clone(), batches.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let (mut got, _) = self::batches(&line.unwrap());
                r.lock().unwrap().extend(got.pop().unwrap_or_default());
                b.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        StreamProcess { child, ranges, batches }
    }

    fn records(&self) -> i64 {
        self.ranges.lock().unwrap().iter().map(|r| r.3).sum()
    }

    fn partitions(&self) -> std::collections::BTreeSet<i32> {
        self.ranges.lock().unwrap().iter().map(|r| r.0).collect()
    }

    /// SIGINT: finish the running batch, flush commits, leave the group.
    fn interrupt(mut self) -> Vec<Range> {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut stderr).unwrap();
        }
        assert!(status.success(), "stream exited with {status}: {stderr}");
        let ranges = self.ranges.lock().unwrap().clone();
        ranges
    }
}

impl Drop for StreamProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "{what}: not within 60 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Scale-out: two processes with the same group split a topic, then one stops; every
/// record is read exactly once across both (offsets committed with commit_async). On
/// tansu (group rebalances with our assignor), one record per produced batch so that
/// tansu's ListOffsets(latest) — the last batch's base offset + 1 — is the true end.
#[test]
fn two_processes_split_a_topic_then_one_leaves() {
    let broker = ferrokafka_tests::tansu::Tansu::start();
    let b = broker.addr().to_owned();
    let topic = unique_topic("scale-out");
    ferrokafka_tests::raw::RawConnection::connect(&b).unwrap().create_topic(&topic, 4).unwrap();
    let produce_round = |round: usize| {
        for p in 0..4 {
            let input: String = (0..10).map(|i| format!("r{round}-p{p}-{i}\n")).collect();
            let args = ["-P", "-b", &b, "-t", &topic, "-p", &p.to_string(), "-X", "batch.size=1"];
            ok(ferrokafka(&args, input.as_bytes()), "produce");
        }
    };
    let group = unique_topic("scale-out-g");
    let args = ["stream", "-b", &b, "-G", &group, "-t", &topic, "--scale-out", "--commit", "-J", "--interval", "200"];
    let args: Vec<&str> = args.iter().copied().chain(["-o", "beginning", "-q"]).collect();

    produce_round(0);
    let a = StreamProcess::start(&args);
    wait_until("process A reads the first 40 records", || a.records() == 40);
    let second = StreamProcess::start(&args);
    // B has joined once it prints batches; A then reads only its share.
    wait_until("process B gets partitions", || second.batches.load(std::sync::atomic::Ordering::SeqCst) > 1);
    produce_round(1);
    wait_until("A and B read the second 40 records", || a.records() + second.records() == 80);
    assert!(second.records() > 0 && second.records() < 40, "B read {} of the second round", second.records());
    let (from_a, from_b) = (a.partitions(), second.partitions());
    let b_ranges = second.interrupt();
    produce_round(2);
    wait_until("A takes B's partitions over and reads the third 40", || {
        a.records() == 120 - b_ranges.iter().map(|r| r.3).sum::<i64>()
    });
    let a_ranges = a.interrupt();

    assert!(!from_b.is_empty() && from_a.len() == 4, "A read {from_a:?}, B read {from_b:?}");
    for p in 0..4 {
        let mut mine: Vec<(i64, i64)> =
            a_ranges.iter().chain(&b_ranges).filter(|r| r.0 == p && r.3 > 0).map(|r| (r.1, r.2)).collect();
        mine.sort();
        assert_eq!(mine.first().map(|r| r.0), Some(0), "partition {p}: {mine:?}");
        assert_eq!(mine.last().map(|r| r.1), Some(30), "partition {p}: {mine:?}");
        assert!(mine.windows(2).all(|w| w[0].1 == w[1].0), "partition {p} read twice or skipped: {mine:?}");
    }
}

/// `--pattern` subscribes a topic only when the whole name matches, as kcat (librdkafka)
/// and the Java client do for `^`-patterns: `…pat\d` takes `…pat9`, not `x…pat9` or
/// `…pat10`.
#[test]
fn stream_pattern_matches_whole_topic_names() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let prefix = unique_topic("cli-anchor");
    let topics = [format!("{prefix}-pat9"), format!("x{prefix}-pat9"), format!("{prefix}-pat10")];
    for t in &topics {
        mock.create_topic(t, 1);
        produce(&b, t, 0, 2);
    }
    let group = unique_topic("cli-anchor-g");
    let pattern = format!("{prefix}-pat\\d");
    let args = ["stream", "-b", &b, "-G", &group, "--pattern", &pattern, "-o", "beginning", "--interval", "200"];
    let out = ok(ferrokafka(&[&args[..], &["-e", "-J"]].concat(), b""), "stream --pattern");
    let mut seen = std::collections::BTreeMap::new();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        for r in v["ranges"].as_array().unwrap() {
            *seen.entry(r["topic"].as_str().unwrap().to_owned()).or_insert(0) += r["count"].as_i64().unwrap();
        }
    }
    assert_eq!(seen, std::collections::BTreeMap::from([(topics[0].clone(), 2)]), "{out}");
}
