//! tansu, a Kafka-compatible broker in Rust, with in-memory storage.
//!
//! `.ci/run` installs it with
//! `cargo install tansu --version 0.6.0 --features dynostore --locked --root ~/.cache/ferrokafka/tansu`;
//! `FERROKAFKA_TANSU` may point at another binary.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::raw::RawConnection;
use crate::{free_port, wait_for};

/// Where the tansu binary is expected.
pub fn binary() -> PathBuf {
    crate::cached_binary("FERROKAFKA_TANSU", "tansu/bin/tansu")
}

/// A running tansu broker; killed on drop.
pub struct Tansu {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Tansu {
    /// Starts a broker on a random port. Panics with the reason if it cannot start.
    pub fn start() -> Tansu {
        let mut last = String::new();
        // A random port can be taken between probing and binding; try a few.
        for _ in 0..3 {
            match Self::try_start(None) {
                Ok(t) => return t,
                Err(e) => last = e,
            }
        }
        panic!("tansu could not be started: {last}");
    }

    /// Starts a broker on a random port that advertises `127.0.0.1:advertised_port`
    /// in its metadata instead (a TLS proxy in front of it listens there).
    pub fn try_start_advertising(advertised_port: u16) -> Result<Tansu, String> {
        Self::try_start_with(Some(advertised_port), &[])
    }

    /// Starts a broker that requires SASL authentication (`--authentication`).
    pub fn start_authenticating() -> Tansu {
        Self::try_start_with(None, &["--authentication"]).unwrap_or_else(|e| panic!("tansu could not be started: {e}"))
    }

    fn try_start(advertised_port: Option<u16>) -> Result<Tansu, String> {
        Self::try_start_with(advertised_port, &[])
    }

    fn try_start_with(advertised_port: Option<u16>, extra: &[&str]) -> Result<Tansu, String> {
        let bin = binary();
        if !bin.exists() {
            return Err(format!(
                "{} not found; install it with `cargo install tansu --version 0.6.0 --features dynostore --locked --root ~/.cache/ferrokafka/tansu` (or run .ci/run)",
                bin.display()
            ));
        }
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{}", advertised_port.unwrap_or(port));
        let log = std::env::temp_dir().join(format!("ferrokafka-tansu-{}-{port}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", "memory://tansu/"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", bin.display()))?;
        let mut t = Tansu { child, addr: format!("127.0.0.1:{port}"), log };
        let ready = wait_for(Duration::from_secs(60), || {
            if let Ok(Some(status)) = t.child.try_wait() {
                return Some(Err(format!("tansu exited with {status}")));
            }
            RawConnection::connect(&t.addr).ok().map(|_| Ok(()))
        });
        match ready {
            Some(Ok(())) => Ok(t),
            Some(Err(e)) => Err(format!("{e}; log:\n{}", t.log_tail())),
            None => Err(format!("tansu did not answer ApiVersions on {} within 60 s; log:\n{}", t.addr, t.log_tail())),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The last lines tansu logged (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
