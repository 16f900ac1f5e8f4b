//! kcat command lines carry over unchanged: each line below runs through kcat and through
//! ferrokafka as it is (getopt forms: values attached, flags bundled), and the outputs
//! (or what each wrote, read back by kcat) must be the same. Plus `-d`: debug output on
//! stderr says why a connection fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::run_program as run;
use ferrokafka_tests::unique_topic;
use serde_json::Value;

fn ferrokafka(args: &[String], stdin: &[u8]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ferrokafka_tests::run_cli(env!("CARGO_BIN_EXE_ferrokafka"), &args, stdin)
}

fn kcat(args: &[String], stdin: &[u8]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("kcat", &args, stdin)
}

fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(out.status.success(), "{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A command line with `{b}` and `{t}` filled in, split on spaces.
fn line(template: &str, b: &str, t: &str) -> Vec<String> {
    template.split(' ').map(|w| w.replace("{b}", b).replace("{t}", t)).collect()
}

/// Key, payload, headers and partition of each record of `t`, read by kcat.
fn contents(b: &str, t: &str) -> Vec<Value> {
    let out = ok(kcat(&line("-C -b {b} -t {t} -o beginning -e -J -q", b, t), b""), "kcat -C -J");
    String::from_utf8_lossy(&out)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            serde_json::json!([v["partition"], v["offset"], v["key"], v["payload"], v["headers"]])
        })
        .collect()
}

#[test]
fn kcat_command_lines_run_unchanged() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();

    // Producer lines: each tool writes its own topic from the same input; kcat reads both.
    let produce: &[(&str, &[u8])] = &[
        ("-P -b{b} -t{t} -K: -zlz4", b"k1:v1\nk2:v2\n:empty-key\nno-delimiter\n"),
        ("-Pb {b} -t {t} -k fixed -Xlinger.ms=5", b"a\nb\nc\n"),
        ("-P -b {b} -t {t} -D ;; -p0", b"one;;two;;three"),
        ("-P -b {b} -t{t} -Hh1=x -H h2=y -zgzip", b"with-headers\n"),
    ];
    // -l FILE: the messages of a file instead of stdin.
    let file = std::env::temp_dir().join(format!("{}.txt", unique_topic("kcat-l")));
    std::fs::write(&file, "k1:from-file\nk2:second\n").unwrap();
    let from_file = format!("-P -b {{b}} -t {{t}} -K: -l {}", file.display());
    let produce = [produce, &[(from_file.as_str(), &b""[..])]].concat();
    for (template, input) in &produce {
        let (theirs, ours) = (unique_topic("kcat-p"), unique_topic("fk-p"));
        mock.create_topic(&theirs, 1);
        mock.create_topic(&ours, 1);
        ok(kcat(&line(template, &b, &theirs), input), &format!("kcat {template}"));
        ok(ferrokafka(&line(template, &b, &ours), input), &format!("ferrokafka {template}"));
        let (want, got) = (contents(&b, &theirs), contents(&b, &ours));
        assert!(!want.is_empty(), "{template}");
        assert_eq!(got, want, "{template}: ferrokafka wrote what kcat wrote");
    }
    std::fs::remove_file(&file).unwrap();

    // Consumer lines over one topic: stdout must match byte for byte.
    let t = unique_topic("kcat-c");
    mock.create_topic(&t, 1);
    let input: String = (0..6).map(|i| format!("key{i}:value{i}\n")).collect();
    ok(kcat(&line("-P -b {b} -t {t} -K:", &b, &t), input.as_bytes()), "kcat -P");
    let consume = [
        "-Ceq -b{b} -t{t} -obeginning",
        "-C -b {b} -t {t} -o-2 -e -q",
        "-Cqe -b {b} -t {t} -c2 -f %k=%s|%p|%o\\n",
        "-Cqe -b {b} -t {t} -K: -o 3",
        "-C -qe -b {b} -t {t} -D |",
        "-Cqeu -p0 -b {b} -t {t} -o1 -c3",
        "-C -e -q -b {b} -t {t} -K::: -D \\n--\\n",
    ];
    for template in consume {
        let args = line(template, &b, &t);
        let want = ok(kcat(&args, b""), &format!("kcat {template}"));
        let got = ok(ferrokafka(&args, b""), &format!("ferrokafka {template}"));
        assert!(!want.is_empty(), "{template}");
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "{template}");
    }

    // Metadata: both list the topic and its partition from a bundled, attached line.
    let listed = ok(ferrokafka(&line("-L -b{b} -t{t}", &b, &t), b""), "ferrokafka -L");
    assert!(String::from_utf8_lossy(&listed).contains(&t));
}

#[test]
fn debug_contexts_explain_a_failed_connection() {
    // A port nobody listens on: the debug output names the broker and the refusal.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let b = format!("127.0.0.1:{port}");
    let args = line("-L -b {b} -d broker,protocol -X socket.connection.setup.timeout.ms=2000", &b, "");
    let out = ferrokafka(&args, b"");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bootstrap connection failed") && err.contains(&b), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    // Without -d: only the error.
    let quiet = ferrokafka(&line("-L -b {b}", &b, ""), b"");
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("bootstrap connection failed"));
    // librdkafka's spelling of the same (-X debug=…), and a bad context is a usage error.
    let x = ferrokafka(&line("-L -b {b} -X debug=broker", &b, ""), b"");
    assert!(String::from_utf8_lossy(&x.stderr).contains("bootstrap connection failed"));
    assert_eq!(ferrokafka(&line("-L -b {b} -d nonsense", &b, ""), b"").status.code(), Some(2));
}
