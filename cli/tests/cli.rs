//! The `ferrokafka` binary against real brokers and peers: kcat and kafka-python
//! interop both ways for every codec, metadata, offsets queries, exact ranges,
//! and documented exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::peers::{kpy_consume, kpy_produce};
use ferrokafka_tests::tansu::Tansu;
use ferrokafka_tests::unique_topic;
use serde_json::Value;

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

use ferrokafka_tests::run_program as run;

fn ferrokafka(args: &[&str], stdin: &[u8]) -> Output {
    ferrokafka_tests::run_cli(env!("CARGO_BIN_EXE_ferrokafka"), args, stdin)
}

fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(out.status.success(), "{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Records of a `-J` stream, without fields that differ between tools by design.
fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            serde_json::json!({
                "partition": v["partition"], "offset": v["offset"], "ts": v["ts"], "tstype": v["tstype"],
                "key": v["key"], "payload": v["payload"], "headers": v["headers"],
            })
        })
        .collect()
}

#[test]
fn kcat_and_ferrokafka_interoperate_byte_for_byte_on_the_mock() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    for codec in CODECS {
        // kcat writes, both read: the JSON envelopes must agree field for field.
        let t1 = unique_topic(&format!("kcat2fk-{codec}"));
        mock.create_topic(&t1, 1);
        let input: String = (0..50).map(|i| format!("key{i}:value-{codec}-{i}-{}\n", "z".repeat(i))).collect();
        ok(
            run(
                "kcat",
                &["-P", "-b", &b, "-t", &t1, "-K:", "-z", codec, "-H", "h1=a", "-H", "h2=", "-X", "linger.ms=50"],
                input.as_bytes(),
            ),
            "kcat -P",
        );
        let theirs = json_lines(&ok(
            run("kcat", &["-C", "-b", &b, "-t", &t1, "-o", "beginning", "-e", "-J", "-q"], b""),
            "kcat -C",
        ));
        let ours = json_lines(&ok(
            ferrokafka(&["-C", "-b", &b, "-t", &t1, "-o", "beginning", "-e", "-J", "-q"], b""),
            "ferrokafka -C",
        ));
        assert_eq!(theirs.len(), 50, "{codec}");
        assert_eq!(ours, theirs, "{codec}: ferrokafka reads what kcat wrote exactly as kcat does");

        // ferrokafka writes, kcat reads.
        let t2 = unique_topic(&format!("fk2kcat-{codec}"));
        mock.create_topic(&t2, 1);
        ok(
            ferrokafka(&["-P", "-b", &b, "-t", &t2, "-K", ":", "-z", codec, "-H", "src=ferrokafka"], input.as_bytes()),
            "ferrokafka -P",
        );
        let read = json_lines(&ok(
            run("kcat", &["-C", "-b", &b, "-t", &t2, "-o", "beginning", "-e", "-J", "-q"], b""),
            "kcat -C",
        ));
        assert_eq!(read.len(), 50, "{codec}");
        for (i, r) in read.iter().enumerate() {
            assert_eq!(r["key"], format!("key{i}"), "{codec}");
            assert_eq!(r["payload"], format!("value-{codec}-{i}-{}", "z".repeat(i)), "{codec}");
            assert_eq!(r["headers"], serde_json::json!(["src", "ferrokafka"]), "{codec}");
            assert_eq!(r["offset"], i as i64);
        }
        // And the binary-safe format path reads it back identically.
        let fmt = ok(ferrokafka(&["-C", "-b", &b, "-t", &t2, "-e", "-f", "%k:%s\\n", "-q"], b""), "ferrokafka -C -f");
        assert_eq!(String::from_utf8(fmt).unwrap(), input, "{codec}");
    }
}

/// kafka-python writes, ferrokafka reads; ferrokafka writes, kafka-python reads.
fn kafka_python_interop(b: &str, mut create_topic: impl FnMut(&str)) {
    for codec in CODECS {
        let topic = unique_topic(&format!("kpy-cli-{codec}"));
        create_topic(&topic);
        let recs: Vec<(Option<String>, Option<String>)> =
            (0..20).map(|i| (Some(format!("k{i}")), Some(format!("{codec}-kpy-{i}")))).collect();
        let refs: Vec<(Option<&str>, Option<&str>)> = recs.iter().map(|(k, v)| (k.as_deref(), v.as_deref())).collect();
        kpy_produce(b, &topic, 0, &refs, codec).unwrap();
        let ours = json_lines(&ok(ferrokafka(&["-C", "-b", b, "-t", &topic, "-e", "-J", "-q"], b""), "ferrokafka -C"));
        let got: Vec<(Value, Value)> = ours.iter().map(|r| (r["key"].clone(), r["payload"].clone())).collect();
        let want: Vec<(Value, Value)> =
            recs.iter().map(|(k, v)| (Value::from(k.clone()), Value::from(v.clone()))).collect();
        assert_eq!(got, want, "{codec}: kafka-python → ferrokafka");

        let input: String = (0..20).map(|i| format!("fk{i}|{codec}-fk-{i}\n")).collect();
        ok(
            ferrokafka(&["-P", "-b", b, "-t", &topic, "-p", "0", "-K", "|", "-z", codec], input.as_bytes()),
            "ferrokafka -P",
        );
        let read = kpy_consume(b, &topic, 0, 40).unwrap();
        let tail: Vec<(Option<String>, Option<String>)> =
            read[20..].iter().map(|r| (r.key.clone(), r.value.clone())).collect();
        let want: Vec<(Option<String>, Option<String>)> =
            (0..20).map(|i| (Some(format!("fk{i}")), Some(format!("{codec}-fk-{i}")))).collect();
        assert_eq!(tail, want, "{codec}: ferrokafka → kafka-python");
    }
}

#[test]
fn kafka_python_and_ferrokafka_interoperate_on_tansu() {
    let broker = Tansu::start();
    let b = broker.addr().to_owned();
    let mut raw = ferrokafka_tests::raw::RawConnection::connect(&b).unwrap();
    kafka_python_interop(&b, |t| raw.create_topic(t, 1).unwrap());
}

#[test]
fn kafka_python_and_ferrokafka_interoperate_on_the_mock() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    kafka_python_interop(&b, |t| mock.create_topic(t, 1));
}

#[test]
fn metadata_offsets_ranges_and_exit_codes() {
    let mut mock = MockCluster::start(3);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("cli");
    mock.create_topic(&topic, 2);
    let input: String = (0..30).map(|i| format!("v{i}\n")).collect();
    ok(ferrokafka(&["-P", "-b", &b, "-t", &topic, "-p", "1"], input.as_bytes()), "produce");

    let list = String::from_utf8(ok(ferrokafka(&["-L", "-b", &b, "-t", &topic], b""), "-L")).unwrap();
    assert!(list.contains(" 3 brokers:") && list.contains(&format!("topic \"{topic}\" with 2 partitions")), "{list}");
    let json: Value = serde_json::from_slice(&ok(ferrokafka(&["-L", "-J", "-b", &b], b""), "-L -J")).unwrap();
    assert_eq!(json["brokers"].as_array().unwrap().len(), 3);
    let version = String::from_utf8(ok(ferrokafka(&["--version"], b""), "--version")).unwrap();
    assert_eq!(version, format!("ferrokafka {}\n", env!("CARGO_PKG_VERSION")));

    // As with kcat, timestamp -1 means the end and -2 the beginning (the 2.0.2 mock
    // has no time index, so real timestamps resolve to -1 there).
    let (end, begin) = (format!("{topic}:1:-1"), format!("{topic}:1:-2"));
    let q = String::from_utf8(ok(ferrokafka(&["-Q", "-b", &b, "-t", &end, "-t", &begin], b""), "-Q")).unwrap();
    assert_eq!(q, format!("{topic} [1] offset 30\n{topic} [1] offset 0\n"));

    let range = ok(ferrokafka(&["read-range", &topic, "1", "10", "15", "-b", &b, "-f", "%o=%s "], b""), "read-range");
    assert_eq!(String::from_utf8(range).unwrap(), "10=v10 11=v11 12=v12 13=v13 14=v14 ");
    let counted = ok(
        ferrokafka(&["-C", "-b", &b, "-t", &topic, "-p", "1", "-o", "-5", "-c", "3", "-f", "%o "], b""),
        "-o -5 -c 3",
    );
    assert_eq!(String::from_utf8(counted).unwrap(), "25 26 27 ");

    // --stats: librdkafka's statistics JSON on stderr (here after every poll).
    let stats = ferrokafka(
        &["-C", "-b", &b, "-t", &topic, "-p", "1", "-o", "20", "-e", "-q", "--stats", "-X", "statistics.interval.ms=1"],
        b"",
    );
    let stderr = String::from_utf8_lossy(&stats.stderr).to_string();
    assert!(stats.status.success(), "{stderr}");
    let line = stderr.lines().rev().find_map(|l| l.strip_prefix("stats: ")).unwrap_or_else(|| panic!("{stderr}"));
    let json: Value = serde_json::from_str(line).unwrap();
    let p1 = &json["topics"][&topic]["partitions"]["1"];
    assert_eq!((p1["hi_offset"].as_i64(), p1["consumer_lag"].as_i64()), (Some(30), Some(0)), "{line}");
    assert!(json["brokers"].as_object().unwrap().values().any(|b| b["tx"].as_u64() > Some(0)), "{line}");

    let code = |out: Output| out.status.code();
    assert_eq!(code(ferrokafka(&["-C", "-b", &b, "-t", &topic, "--bogus"], b"")), Some(2), "unknown flag");
    assert_eq!(code(ferrokafka(&["-C", "-t", &topic], b"")), Some(2), "missing -b");
    let bad_cfg = ferrokafka(&["-C", "-b", &b, "-t", &topic, "-X", "fetch.wait.max.msx=1"], b"");
    assert_eq!(code(bad_cfg.clone()), Some(3), "unknown config key");
    assert!(
        String::from_utf8_lossy(&bad_cfg.stderr).contains("did you mean"),
        "{}",
        String::from_utf8_lossy(&bad_cfg.stderr)
    );
    let port = ferrokafka_tests::free_port();
    let unreachable =
        ferrokafka(&["-L", "-b", &format!("127.0.0.1:{port}"), "-X", "socket.connection.setup.timeout.ms=1000"], b"");
    assert_eq!(code(unreachable.clone()), Some(1), "unreachable broker");
    assert!(
        String::from_utf8_lossy(&unreachable.stderr).contains("could be reached"),
        "{}",
        String::from_utf8_lossy(&unreachable.stderr)
    );
}

/// On tansu: the 2.0.2 mock creates any topic a Metadata request names (Metadata
/// v2 cannot ask it not to), so "unknown topic" is only stable on a real broker.
#[test]
fn unknown_topic_exits_with_1() {
    let broker = Tansu::start();
    let out = ferrokafka(&["-C", "-b", broker.addr(), "-t", "no-such-topic-here", "-e"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-topic-here"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Progress (records, rate, lag) goes to stderr only when it is a terminal (here a pty
/// from `script`) and not with `-q`; it never goes to a pipe.
#[test]
fn progress_only_on_a_terminal() {
    let broker = Tansu::start();
    let b = broker.addr().to_owned();
    let topic = unique_topic("cli-progress");
    ferrokafka_tests::raw::RawConnection::connect(&b).unwrap().create_topic(&topic, 1).unwrap();
    let input: String = (0..30).map(|i| format!("v{i}\n")).collect();
    ok(ferrokafka(&["-P", "-b", &b, "-t", &topic], input.as_bytes()), "produce");

    let bin = ferrokafka_tests::cli_binary(env!("CARGO_BIN_EXE_ferrokafka"));
    // With -e the last figures are shown on exit, however soon that comes.
    let on_pty = |extra: &str| {
        let cmd = format!("{bin} -C -b {b} -t {topic} -o beginning -e -f '' {extra}");
        let out = Command::new("timeout").args(["60", "script", "-q", "-e", "-c", &cmd, "/dev/null"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_pty("");
    assert!(shown.contains("% 30 records (") && shown.contains("lag 0"), "no progress line on a terminal: {shown:?}");
    let quiet = on_pty("-q");
    assert!(!quiet.contains(" records ("), "progress despite -q: {quiet:?}");
    let piped = ferrokafka(&["-C", "-b", &b, "-t", &topic, "-o", "beginning", "-e", "-f", ""], b"");
    assert!(piped.status.success());
    assert!(!String::from_utf8_lossy(&piped.stderr).contains(" records ("), "progress on a pipe");
}

/// `-G` balanced consume, then `group list | describe | lag | reset-offsets`.
#[test]
fn group_commands() {
    let broker = Tansu::start();
    let b = broker.addr().to_owned();
    let topic = unique_topic("cli-group");
    ferrokafka_tests::raw::RawConnection::connect(&b).unwrap().create_topic(&topic, 2).unwrap();
    let input: String = (0..20).map(|i| format!("v{i}\n")).collect();
    ok(ferrokafka(&["-P", "-b", &b, "-t", &topic], input.as_bytes()), "produce");
    let group = unique_topic("cli-g");
    let args = ["-b", &b, "-G", &group, "-c", "20", "-f", "%s\\n", "-q", "-X", "auto.offset.reset=earliest", &topic];
    let mut got: Vec<String> =
        String::from_utf8(ok(ferrokafka(&args, b""), "-G")).unwrap().lines().map(str::to_owned).collect();
    got.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(got, want);

    let list = String::from_utf8(ok(ferrokafka(&["group", "list", "-b", &b], b""), "group list")).unwrap();
    assert!(list.lines().any(|l| l.starts_with(&group)), "{list}");
    let lag: Value =
        serde_json::from_slice(&ok(ferrokafka(&["group", "lag", &group, "-b", &b, "-J"], b""), "group lag")).unwrap();
    let total: i64 = lag.as_array().unwrap().iter().map(|l| l["lag"].as_i64().unwrap()).sum();
    let committed: i64 = lag.as_array().unwrap().iter().map(|l| l["committed"].as_i64().unwrap()).sum();
    assert_eq!((total, committed), (0, 20), "{lag}");
    let desc =
        String::from_utf8(ok(ferrokafka(&["group", "describe", &group, "-b", &b], b""), "group describe")).unwrap();
    assert!(desc.contains(&format!("group {group}")), "{desc}");

    let dry = String::from_utf8(ok(
        ferrokafka(&["group", "reset-offsets", &group, "-b", &b, "-t", &topic, "--to-earliest"], b""),
        "dry run",
    ))
    .unwrap();
    assert_eq!(dry.lines().count(), 2, "{dry}");
    ok(
        ferrokafka(&["group", "reset-offsets", &group, "-b", &b, "-t", &topic, "--to-offset", "3", "--execute"], b""),
        "reset",
    );
    let lag: Value =
        serde_json::from_slice(&ok(ferrokafka(&["group", "lag", &group, "-b", &b, "-J"], b""), "group lag")).unwrap();
    let committed: Vec<i64> = lag.as_array().unwrap().iter().map(|l| l["committed"].as_i64().unwrap()).collect();
    assert_eq!(committed, [3, 3]);
}
