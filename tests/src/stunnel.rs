//! A TLS broker for the TLS tests: tansu (which speaks only plain TCP) behind
//! stunnel (apt `stunnel4`), which terminates TLS on a random 127.0.0.1 port and
//! forwards to tansu; tansu advertises the stunnel port, so every connection a
//! client makes after bootstrap goes through TLS too.
//!
//! stunnel runs in the foreground from a config file in a temporary directory and
//! is killed on drop; a broker that cannot start makes the test fail with the
//! reason and stunnel's log.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::tansu::Tansu;
use crate::{free_port, wait_for};

/// The store writer (openssl, keytool), for the TLS tests.
pub use crate::testgen;

/// How the TLS side is set up.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// The broker's certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// The broker's private key (PEM).
    pub key: PathBuf,
    /// Mutual TLS: require a client certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
    /// Highest TLS version offered: `Some("TLSv1.2")` for a TLS 1.2-only broker.
    pub max_version: Option<&'static str>,
}

/// stunnel, killed on drop.
pub struct Stunnel {
    child: Child,
    dir: PathBuf,
    addr: String,
}

impl Stunnel {
    /// Starts stunnel on `127.0.0.1:port`, forwarding to `127.0.0.1:target_port`.
    pub fn try_start(opts: &TlsOptions, port: u16, target_port: u16) -> Result<Stunnel, String> {
        let dir = std::env::temp_dir().join(format!("ferrokafka-stunnel-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log = dir.join("stunnel.log");
        let mut conf = format!(
            "foreground = yes\npid =\nsyslog = no\ndebug = 5\noutput = {}\n\n[kafka]\n\
             accept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{target_port}\ncert = {}\nkey = {}\n",
            log.display(),
            opts.cert.display(),
            opts.key.display()
        );
        if let Some(ca) = &opts.client_ca {
            conf.push_str(&format!("CAfile = {}\nverifyChain = yes\nrequireCert = yes\n", ca.display()));
        }
        if let Some(max) = opts.max_version {
            conf.push_str(&format!("sslVersionMax = {max}\n"));
        }
        let conf_path = dir.join("stunnel.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let bin =
            ["/usr/bin/stunnel4", "/usr/bin/stunnel"].into_iter().find(|p| Path::new(p).exists()).unwrap_or("stunnel");
        let child = Command::new(bin)
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot spawn {bin} (apt install stunnel4; scripts/setup.sh does): {e}"))?;
        let mut s = Stunnel { child, dir, addr: format!("127.0.0.1:{port}") };
        let ready = wait_for(Duration::from_secs(20), || {
            if let Ok(Some(status)) = s.child.try_wait() {
                return Some(Err(format!("stunnel exited with {status}")));
            }
            TcpStream::connect(&s.addr).ok().map(|_| Ok(()))
        });
        match ready {
            Some(Ok(())) => Ok(s),
            Some(Err(e)) => Err(format!("{e}; log:\n{}", s.log())),
            None => Err(format!("stunnel did not listen on {} within 20 s; log:\n{}", s.addr, s.log())),
        }
    }

    /// `127.0.0.1:PORT`, where TLS is accepted.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// stunnel's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stunnel.log")).unwrap_or_default()
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// tansu behind stunnel. Dropping it stops both.
pub struct TlsBroker {
    /// stunnel (dropped first).
    pub stunnel: Stunnel,
    /// The broker.
    pub tansu: Tansu,
}

impl TlsBroker {
    /// Starts tansu advertising a free port and stunnel on that port. Panics with
    /// the reason (and the logs) if either cannot start.
    pub fn start(opts: &TlsOptions) -> TlsBroker {
        let mut last = String::new();
        // A random port can be taken between probing and binding; try a few.
        for _ in 0..3 {
            let port = free_port();
            let tansu = match Tansu::try_start_advertising(port) {
                Ok(t) => t,
                Err(e) => {
                    last = format!("tansu: {e}");
                    continue;
                }
            };
            let tansu_port: u16 = tansu.addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("tansu port");
            match Stunnel::try_start(opts, port, tansu_port) {
                Ok(stunnel) => return TlsBroker { stunnel, tansu },
                Err(e) => last = format!("stunnel: {e}"),
            }
        }
        panic!("TLS broker could not be started: {last}");
    }

    /// The TLS address clients bootstrap from (and that tansu advertises).
    pub fn addr(&self) -> &str {
        self.stunnel.addr()
    }
}
