//! `tests/sasl_frontend.py`: a small Kafka-protocol SASL server in Python whose SCRAM
//! side is the `scramp` library (and PLAIN its own check), so that ferrokafka's SASL
//! client is checked against an implementation that is not ours. It serves
//! ApiVersions, SaslHandshake, SaslAuthenticate (re-authentication included) and
//! Metadata, and reports each authentication on its standard output.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running front end; killed on drop.
pub struct SaslFrontend {
    child: Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
    users: PathBuf,
}

impl SaslFrontend {
    /// Starts it with `users` (name, password), the enabled `mechanisms`, and a session
    /// lifetime (0: unlimited). Panics with the reason if it cannot start.
    pub fn start(users: &[(&str, &str)], mechanisms: &[&str], session_lifetime_ms: u64) -> SaslFrontend {
        Self::start_with(users, mechanisms, session_lifetime_ms, &[])
    }

    /// A SASL-terminating proxy in front of the plaintext broker `upstream` (a
    /// one-broker mock cluster or tansu): authenticated clients produce, consume and
    /// join groups through it; Metadata and FindCoordinator answers name the proxy (or
    /// `advertised_port`, where stunnel terminates TLS in front of it).
    pub fn start_proxy(
        users: &[(&str, &str)],
        mechanisms: &[&str],
        upstream: &str,
        advertised_port: Option<u16>,
    ) -> SaslFrontend {
        let port = advertised_port.map(|p| p.to_string());
        let mut extra = vec!["--upstream", upstream];
        if let Some(p) = &port {
            extra.extend(["--advertised-port", p.as_str()]);
        }
        Self::start_with(users, mechanisms, 0, &extra)
    }

    /// A server as Kafka 0.10–0.11 brokers are: no SaslAuthenticate, SaslHandshake v0
    /// only, the mechanism's tokens as raw size-prefixed frames.
    pub fn start_legacy(users: &[(&str, &str)], mechanisms: &[&str]) -> SaslFrontend {
        Self::start_with(users, mechanisms, 0, &["--no-sasl-authenticate"])
    }

    fn start_with(
        users: &[(&str, &str)],
        mechanisms: &[&str],
        session_lifetime_ms: u64,
        extra: &[&str],
    ) -> SaslFrontend {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sasl_frontend.py");
        let users_file = std::env::temp_dir().join(crate::unique_topic("ferrokafka-sasl-users") + ".json");
        let map: serde_json::Map<String, serde_json::Value> =
            users.iter().map(|(u, p)| ((*u).to_owned(), serde_json::Value::String((*p).to_owned()))).collect();
        std::fs::write(&users_file, serde_json::Value::Object(map).to_string()).expect("write users");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--users", users_file.to_str().expect("path"), "--mechanisms", &mechanisms.join(",")])
            .args(["--session-lifetime-ms", &session_lifetime_ms.to_string(), "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 tests/sasl_frontend.py");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("tests/sasl_frontend.py did not start (is scramp installed? scripts/setup.sh installs it)");
            }
        };
        SaslFrontend { child, addr, lines, users: users_file }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// How many lines it printed that start with `prefix` (e.g. `"reauthenticated alice"`).
    pub fn count(&self, prefix: &str) -> usize {
        self.lines.lock().unwrap().iter().filter(|l| l.starts_with(prefix)).count()
    }

    /// Waits (up to 10 s) until at least `n` lines start with `prefix`; the count then.
    /// The server prints before it answers, but its output reaches us through a pipe.
    pub fn wait_count(&self, prefix: &str, n: usize) -> usize {
        crate::wait_for(Duration::from_secs(10), || (self.count(prefix) >= n).then_some(()));
        self.count(prefix)
    }

    /// Everything it printed.
    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for SaslFrontend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.users);
    }
}
