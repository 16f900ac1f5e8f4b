//! librdkafka's mock cluster, run through the launcher in `tests/mock/mock_cluster.c`.
//!
//! The launcher is compiled with gcc the first time a test needs it, against one of two
//! librdkafka versions, chosen by `FERROKAFKA_MOCK`:
//! - `2.0.2` (the default): Debian's librdkafka-dev;
//! - `2.16`: librdkafka 2.16.0 from the confluent-kafka 2.16.1 wheel with the headers of
//!   the same mock API, both installed by `scripts/setup.sh` under
//!   `~/.cache/ferrokafka/librdkafka-2.16` (KIP-848 groups, transaction markers, …).
//!
//! `scripts/test.sh` runs the mock suites once with each. The launcher must be started
//! from the thread that keeps using it: it dies with its parent thread (PR_SET_PDEATHSIG).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::OnceLock;
use std::time::Duration;

use crate::repo_root;

/// How long the launcher may take to answer one command.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

fn launcher() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferrokafka-mock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let bin = dir.join("mock_cluster");
        let src = repo_root().join("tests/mock/mock_cluster.c");
        let mut gcc = Command::new("gcc");
        gcc.args(["-O2", "-Wall", "-Wextra", "-o"]).arg(&bin).arg(&src);
        match mock_version().as_str() {
            "2.0.2" => {
                gcc.arg("-lrdkafka");
            }
            "2.16" => {
                let root =
                    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/ferrokafka/librdkafka-2.16");
                let lib = std::fs::read_dir(root.join("lib"))
                    .map_err(|e| format!("librdkafka 2.16 is not installed (scripts/setup.sh): {e}"))?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .find(|n| n.starts_with("librdkafka-") && n.ends_with(".so.1"))
                    .ok_or("librdkafka 2.16 is not installed (scripts/setup.sh)")?;
                gcc.arg("-isystem").arg(root.join("include"));
                gcc.arg("-L").arg(root.join("lib")).arg(format!("-l:{lib}"));
                gcc.arg(format!("-Wl,-rpath,{}", root.join("lib").display()));
            }
            other => return Err(format!("FERROKAFKA_MOCK={other}: expected 2.0.2 or 2.16")),
        }
        let out = gcc.output().map_err(|e| format!("cannot run gcc (needed for the librdkafka mock cluster): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "building the mock cluster launcher failed (is librdkafka-dev installed?):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(bin)
    })
    .clone()
}

/// The librdkafka version of the mock cluster (`FERROKAFKA_MOCK`, `2.0.2` by default).
pub fn mock_version() -> String {
    std::env::var("FERROKAFKA_MOCK").unwrap_or_else(|_| "2.0.2".into())
}

/// A running mock cluster; stopped on drop.
pub struct MockCluster {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    bootstrap: String,
}

impl MockCluster {
    /// Starts a cluster of `brokers` brokers (ids 1..=brokers). Panics with the reason on failure.
    pub fn start(brokers: u32) -> MockCluster {
        match Self::try_start(brokers) {
            Ok(m) => m,
            Err(e) => panic!("librdkafka mock cluster could not be started: {e}"),
        }
    }

    /// Starts a cluster, reporting failure as an error.
    pub fn try_start(brokers: u32) -> Result<MockCluster, String> {
        let bin = launcher()?;
        let mut child = Command::new(&bin)
            .args(["--brokers", &brokers.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", bin.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(REPLY_TIMEOUT)
            .map_err(|_| "the launcher printed no BOOTSTRAP line within 20 s".to_string())?;
        let bootstrap = first
            .strip_prefix("BOOTSTRAP ")
            .ok_or_else(|| format!("unexpected first line from the launcher: {first}"))?
            .to_owned();
        Ok(MockCluster { child, stdin, lines, bootstrap })
    }

    /// `host:port,host:port,…` of all brokers.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The address of broker `id` (1-based).
    pub fn broker(&self, id: usize) -> &str {
        self.bootstrap.split(',').nth(id - 1).expect("no such broker")
    }

    /// Sends one command; returns the text after `OK`, or the `ERR` text as an error.
    pub fn command(&mut self, cmd: &str) -> Result<String, String> {
        writeln!(self.stdin, "{cmd}").map_err(|e| format!("launcher stdin: {e}"))?;
        self.stdin.flush().map_err(|e| format!("launcher stdin: {e}"))?;
        let reply = self.lines.recv_timeout(REPLY_TIMEOUT).map_err(|_| format!("no reply to {cmd:?} within 20 s"))?;
        match reply.strip_prefix("OK") {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => Err(reply),
        }
    }

    /// Runs a command that must succeed.
    pub fn must(&mut self, cmd: &str) -> String {
        self.command(cmd).unwrap_or_else(|e| panic!("mock command {cmd:?} failed: {e}"))
    }

    /// Creates a topic with `partitions` partitions.
    pub fn create_topic(&mut self, name: &str, partitions: u32) {
        self.must(&format!("topic {name} {partitions} 1"));
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
