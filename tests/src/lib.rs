//! Test harness for ferrokafka: real brokers, peers and a scripted fake broker.
//!
//! Every broker a test uses is started by that test on a random 127.0.0.1 port and
//! stopped when its handle drops. A broker that cannot start makes the test fail
//! with the reason; nothing is ever skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod chaos;
pub mod fake;
pub mod mock;
pub mod peers;
pub mod postgres;
pub mod raw;
pub mod sasl_frontend;
pub mod stunnel;
pub mod tansu;
pub mod tansu_scram;
pub mod testgen;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A broker binary: `$env` when set, else `~/.cache/ferrokafka/<cached>` (where
/// `scripts/setup.sh` installs it).
pub fn cached_binary(env: &str, cached: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/ferrokafka").join(cached)
}

/// Commits the positions of `partitions` from inside a rebalance listener (what a Java
/// `onPartitionsRevoked` does with `commitSync`): the listeners of the group suites and
/// the chaos run.
pub async fn commit_positions(
    group: &ferrokafka_client::group::GroupContext<'_>,
    partitions: &[ferrokafka_client::metadata::TopicPartition],
) -> ferrokafka_client::Result<()> {
    use ferrokafka_client::group::OffsetAndMetadata;
    let offsets: Vec<_> = partitions
        .iter()
        .filter_map(|tp| group.position(tp).map(|o| (tp.clone(), OffsetAndMetadata::new(o))))
        .collect();
    group.commit(&offsets).await
}

/// A topic name no other test (or earlier run) uses.
pub fn unique_topic(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Polls `f` every 50 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Awaits until `ok()` holds, checking every 50 ms; fails naming `what` after `timeout`.
/// The async twin of [`wait_for`], for tests whose clients run on the same runtime.
pub async fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `c` (its partitions `tps` assigned and positioned) until every partition is
/// read to its end, then until `idle` passes without a record; hands each record to
/// `each`. The end is the high watermark, or with `read_committed` the last stable
/// offset, as the consumer learns them from its fetches: a slow first fetch cannot end
/// the read early (an idle window from the start could, on a loaded machine). Fails
/// after 60 s without reaching the end.
pub async fn read_to_end(
    c: &mut ferrokafka_client::consumer::Consumer,
    tps: &[ferrokafka_client::metadata::TopicPartition],
    idle: Duration,
    mut each: impl FnMut(&ferrokafka_client::consumer::ConsumerRecord<'_>),
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Option<Instant> = None;
    while last.is_none_or(|t| t.elapsed() < idle) {
        let at_end = tps.iter().all(|tp| c.lag(tp) == Some(0));
        if last.is_none() && at_end {
            last = Some(Instant::now());
        }
        assert!(last.is_some() || Instant::now() < deadline, "not at the end of {tps:?} after 60 s");
        for r in &c.poll(Duration::from_millis(200)).await.unwrap() {
            each(&r.unwrap());
            if last.is_some() {
                last = Some(Instant::now());
            }
        }
    }
}

/// The repository root (where the workspace `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The `ferrokafka` binary a CLI test runs: `built` (cargo's `CARGO_BIN_EXE_ferrokafka`), or
/// the file named by `FERROKAFKA_BIN` — `scripts/static.sh` runs the CLI suites against the
/// static musl build this way. A `FERROKAFKA_BIN` that names no file fails the test.
pub fn cli_binary(built: &str) -> String {
    match std::env::var("FERROKAFKA_BIN") {
        Ok(path) if !path.is_empty() => {
            assert!(std::path::Path::new(&path).is_file(), "FERROKAFKA_BIN={path} is not a file");
            path
        }
        _ => built.to_owned(),
    }
}

/// Runs the CLI binary (see [`cli_binary`]) with `args`, feeding `stdin`, under a 120 s
/// `timeout`; returns its exit status and output.
pub fn run_cli<S: AsRef<std::ffi::OsStr>>(built: &str, args: &[S], stdin: &[u8]) -> std::process::Output {
    run_program(&cli_binary(built), args, stdin)
}

/// Runs `bin` (a path or a name on PATH, e.g. `kcat`) with `args` and `stdin` under
/// `timeout 120`; returns its exit status and output.
pub fn run_program<S: AsRef<std::ffi::OsStr>>(bin: &str, args: &[S], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("timeout")
        .arg("120")
        .arg(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).unwrap_or_else(|e| panic!("writing stdin of {bin}: {e}"));
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("waiting for {bin}: {e}"))
}
