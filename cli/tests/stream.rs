//! `ferrokafka stream` against the librdkafka mock cluster: batches with their offset
//! ranges (text and JSON), exit at the first empty batch, commits that a second run
//! resumes from, explicit assignments with offsets, rate caps and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::unique_topic;
use serde_json::Value;

fn ferrokafka(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new("timeout")
        .arg("120")
        .arg(ferrokafka_tests::cli_binary(env!("CARGO_BIN_EXE_ferrokafka")))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
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
