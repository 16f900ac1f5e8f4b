//! tansu with SCRAM users: a tansu 0.6.0 built with `--features dynostore,libsql`
//! (`scripts/setup.sh` builds it into `~/.cache/ferrokafka/tansu-sql`), because only
//! its SQLite engine stores SCRAM credentials (DESIGN.md). Users are created while the
//! broker runs without authentication, then the broker is restarted on the same
//! database with `--authentication`: from then on it checks SCRAM-SHA-256/512 itself.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::raw::RawConnection;
use crate::{free_port, unique_topic, wait_for};

/// The libsql-enabled tansu binary (`FERROKAFKA_TANSU_SQL` overrides).
pub fn binary() -> PathBuf {
    crate::cached_binary("FERROKAFKA_TANSU_SQL", "tansu-sql/bin/tansu")
}

/// A tansu that authenticates SCRAM users; killed on drop.
pub struct ScramTansu {
    child: Child,
    addr: String,
    dir: PathBuf,
}

fn spawn(dir: &PathBuf, port: u16, auth: bool) -> Result<Child, String> {
    let url = format!("tcp://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join(format!("broker-{auth}.log"))).map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir)
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    if auth {
        cmd.arg("--authentication");
    }
    cmd.spawn().map_err(|e| format!("cannot spawn {}: {e}", binary().display()))
}

fn ready(addr: &str, child: &mut Child) -> Result<(), String> {
    let ok = wait_for(Duration::from_secs(60), || {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(Err(format!("tansu exited with {status}")));
        }
        RawConnection::connect(addr).ok().map(|_| Ok(()))
    });
    ok.unwrap_or_else(|| Err(format!("tansu did not answer on {addr} within 60 s")))
}

impl ScramTansu {
    /// Creates `users` (each for SCRAM-SHA-256 and SCRAM-SHA-512) and `topics` (one
    /// partition each), then serves them with authentication on. Panics with the reason.
    pub fn start(users: &[(&str, &str)], topics: &[&str]) -> ScramTansu {
        let bin = binary();
        assert!(
            bin.exists(),
            "{} not found: scripts/setup.sh builds it (tansu with the libsql feature)",
            bin.display()
        );
        let dir = std::env::temp_dir().join(unique_topic("ferrokafka-tansu-sql"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut setup = spawn(&dir, port, false).unwrap();
        ready(&addr, &mut setup).unwrap_or_else(|e| panic!("{e}: {}", log(&dir, false)));
        for (user, password) in users {
            for mechanism in ["scram256", "scram512"] {
                let out = Command::new(&bin)
                    .args([
                        "user",
                        "create",
                        user,
                        password,
                        "--mechanism",
                        mechanism,
                        "--broker",
                        &format!("tcp://{addr}"),
                    ])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "tansu user create: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        for topic in topics {
            RawConnection::connect(&addr).unwrap().create_topic(topic, 1).unwrap();
        }
        let _ = setup.kill();
        let _ = setup.wait();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = spawn(&dir, port, true).unwrap();
        ready(&addr, &mut child).unwrap_or_else(|e| panic!("{e}: {}", log(&dir, true)));
        ScramTansu { child, addr, dir }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

fn log(dir: &std::path::Path, auth: bool) -> String {
    std::fs::read_to_string(dir.join(format!("broker-{auth}.log"))).unwrap_or_default()
}

impl Drop for ScramTansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
