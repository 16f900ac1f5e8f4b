//! librdkafka's mock cluster, run through the launcher in `tests/mock/mock_cluster.c`.
//!
//! The launcher is compiled with gcc against librdkafka-dev the first time a test
//! needs it. It must be started from the thread that keeps using it: it dies with
//! its parent thread (PR_SET_PDEATHSIG).

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
        let out = Command::new("gcc")
            .args(["-O2", "-Wall", "-Wextra", "-o"])
            .arg(&bin)
            .arg(&src)
            .arg("-lrdkafka")
            .output()
            .map_err(|e| format!("cannot run gcc (needed for the librdkafka mock cluster): {e}"))?;
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
