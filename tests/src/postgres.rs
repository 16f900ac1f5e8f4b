//! A PostgreSQL server from Debian's `postgresql` package, started by the test that uses it.
//!
//! The binaries (`initdb`, `postgres`, `pg_isready`) are taken from the highest
//! `/usr/lib/postgresql/<version>/bin/`; `FERROKAFKA_PG_BIN` may point at another directory.
//! `scripts/setup.sh` installs the package.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (as CI does), `initdb` and
//! the server run through `setpriv` as an unprivileged user: `FERROKAFKA_PG_USER`, else
//! `ferrokafka` (a system user `scripts/setup.sh` creates), else `nobody`. Each server gets a
//! fresh cluster in a temporary directory owned by that user (under `/tmp` when root, since the
//! user must reach it), trust authentication for the `postgres` superuser, a random
//! 127.0.0.1 port and its Unix socket in that directory. It is stopped (SIGQUIT, then SIGKILL)
//! and the directory removed on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{free_port, wait_for};

/// The directory holding `initdb`, `postgres` and `pg_isready`.
pub fn bin_dir() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("FERROKAFKA_PG_BIN") {
        return Ok(PathBuf::from(p));
    }
    let root = Path::new("/usr/lib/postgresql");
    let entries = std::fs::read_dir(root).map_err(|e| {
        format!("{}: {e}; install Debian's `postgresql` package (scripts/setup.sh does)", root.display())
    })?;
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(version) = name.split('.').map(str::parse::<u32>).collect::<Result<Vec<u32>, _>>() else { continue };
        let bin = entry.path().join("bin");
        if bin.join("postgres").exists() && bin.join("initdb").exists() && best.as_ref().is_none_or(|b| version > b.0) {
            best = Some((version, bin));
        }
    }
    best.map(|b| b.1).ok_or_else(|| {
        format!(
            "no PostgreSQL server under {}/<version>/bin; install Debian's `postgresql` package (scripts/setup.sh does)",
            root.display()
        )
    })
}

/// The user the server runs as, with its uid and gid; `None` when not root (run as ourselves).
fn server_user() -> Result<Option<(String, u32, u32)>, String> {
    let me = output(Command::new("id").arg("-u"))?;
    if me.trim() != "0" {
        return Ok(None);
    }
    let candidates = match std::env::var("FERROKAFKA_PG_USER") {
        Ok(u) => vec![u],
        Err(_) => vec!["ferrokafka".to_owned(), "nobody".to_owned()],
    };
    for name in &candidates {
        let Ok(line) = output(Command::new("getent").args(["passwd", name])) else { continue };
        let fields: Vec<&str> = line.trim().split(':').collect();
        if let (Some(uid), Some(gid)) = (fields.get(2), fields.get(3)) {
            let uid = uid.parse().map_err(|e| format!("getent passwd {name}: uid {uid:?}: {e}"))?;
            let gid = gid.parse().map_err(|e| format!("getent passwd {name}: gid {gid:?}: {e}"))?;
            if uid == 0 {
                return Err(format!("user {name} is root; PostgreSQL refuses to run as root"));
            }
            return Ok(Some((name.clone(), uid, gid)));
        }
    }
    Err(format!(
        "running as root and none of the users {candidates:?} exists to run PostgreSQL; run scripts/setup.sh (it creates `ferrokafka`)"
    ))
}

fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A running PostgreSQL server with its own cluster; stopped and deleted on drop.
pub struct Postgres {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    /// Starts a server on a random port. Panics with the reason if it cannot start.
    pub fn start() -> Postgres {
        let mut last = String::new();
        // A random port can be taken between probing and binding; try a few.
        for _ in 0..3 {
            match Self::try_start() {
                Ok(p) => return p,
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL could not be started: {last}");
    }

    fn try_start() -> Result<Postgres, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let bin = bin_dir()?;
        let user = server_user()?;
        let parent = if user.is_some() { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let dir = parent.join(format!("ferrokafka-pg-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // From here on, `Cleanup` removes the directory on failure.
        let cleanup = Cleanup(dir.clone());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        if let Some((name, uid, gid)) = &user {
            std::os::unix::fs::chown(&dir, Some(*uid), Some(*gid))
                .map_err(|e| format!("chown {} to {name}: {e}", dir.display()))?;
        }
        let as_user = |program: &Path| -> Command {
            let mut cmd = match &user {
                Some((_, uid, gid)) => {
                    let mut c = Command::new("setpriv");
                    c.args([format!("--reuid={uid}"), format!("--regid={gid}"), "--clear-groups".to_owned()]);
                    c.arg("--").arg(program);
                    c
                }
                None => Command::new(program),
            };
            // The user may not be able to enter our working directory.
            cmd.current_dir(&dir).stdin(Stdio::null());
            cmd
        };

        let data = dir.join("data");
        let mut initdb = as_user(&bin.join("initdb"));
        initdb.arg("-D").arg(&data);
        initdb.args(["-U", "postgres", "--auth=trust", "--no-sync", "--locale=C", "--encoding=UTF8"]);
        let out = initdb.output().map_err(|e| format!("cannot run {initdb:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{initdb:?} failed with {}:\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }

        let port = free_port();
        let log = dir.join("postgres.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
        let mut server = as_user(&bin.join("postgres"));
        server.arg("-D").arg(&data).arg("-p").arg(port.to_string());
        server.args(["-c", "listen_addresses=127.0.0.1"]);
        server.arg("-c").arg(format!("unix_socket_directories={}", dir.display()));
        // A throwaway cluster: no durability needed across a machine crash.
        server.args(["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "shared_buffers=16MB"]);
        server.args(["-c", "max_connections=50"]);
        let child =
            server.stdout(log_file).stderr(log_err).spawn().map_err(|e| format!("cannot spawn {server:?}: {e}"))?;
        std::mem::forget(cleanup);
        let mut pg = Postgres { child, dir, port };

        let isready = bin.join("pg_isready");
        let ready = wait_for(Duration::from_secs(60), || {
            if let Ok(Some(status)) = pg.child.try_wait() {
                return Some(Err(format!("postgres exited with {status}")));
            }
            let ok = Command::new(&isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-d", "postgres", "-t", "2"])
                .stdin(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            ok.then_some(Ok(()))
        });
        match ready {
            Some(Ok(())) => Ok(pg),
            Some(Err(e)) => Err(format!("{e}; log:\n{}", pg.log_tail())),
            None => {
                Err(format!("postgres did not accept connections on port {port} within 60 s; log:\n{}", pg.log_tail()))
            }
        }
    }

    /// A libpq-style connection string for the `postgres` superuser and database.
    pub fn connection_string(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding the cluster (`data/`), the socket and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last lines the server logged (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown; the postmaster stops its backends and frees its shared
        // memory (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let exited = wait_for(Duration::from_secs(10), || self.child.try_wait().ok().flatten()).is_some();
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes a directory on drop (a start that failed half-way).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
