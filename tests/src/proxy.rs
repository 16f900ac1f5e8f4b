//! A recording TCP proxy in front of one broker: bytes pass through unchanged both ways,
//! and every request frame a client sends is recorded (header and body), so a test can
//! check what a client put on the wire against a real broker — e.g. that a static
//! member sends its `group.instance.id` and no LeaveGroup.
//!
//! Start the broker advertising the proxy's port ([`crate::tansu::Tansu::try_start_advertising`])
//! so that every connection a client opens, bootstrap or not, goes through the proxy.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kafka_protocol::messages::ApiKey;

use crate::stub_broker::{accept_loop, parse, read_frame};
use crate::tansu::Tansu;

/// One request a client sent (`port` is 0: the proxy answers nothing itself).
pub use crate::stub_broker::Request as Recorded;

/// The proxy; stops accepting and closes its connections when dropped.
pub struct RecordingProxy {
    port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl RecordingProxy {
    /// Listens on `127.0.0.1:port` and forwards each connection to `upstream`.
    pub fn start(port: u16, upstream: &str) -> std::io::Result<RecordingProxy> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let proxy = RecordingProxy {
            port,
            requests: Arc::default(),
            streams: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (requests, streams, stop, upstream) =
            (proxy.requests.clone(), proxy.streams.clone(), proxy.stop.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            accept_loop(listener, &stop, |id, client| {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    return;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    if let Ok(mut all) = streams.lock() {
                        all.extend([c, s]);
                    }
                }
                let (Ok(client_rx), Ok(server_rx)) = (client.try_clone(), server.try_clone()) else { return };
                let log = requests.clone();
                std::thread::spawn(move || forward_requests(id, client_rx, server, &log));
                std::thread::spawn(move || copy(server_rx, client));
            })
        });
        Ok(proxy)
    }

    /// Starts tansu advertising a proxy port, and the proxy in front of it.
    pub fn start_with_tansu() -> (RecordingProxy, Tansu) {
        let mut last = String::new();
        for _ in 0..3 {
            let port = crate::free_port();
            let tansu = match Tansu::try_start_advertising(port) {
                Ok(t) => t,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            match RecordingProxy::start(port, tansu.addr()) {
                Ok(p) => return (p, tansu),
                Err(e) => last = format!("proxy on port {port}: {e}"),
            }
        }
        panic!("recording proxy in front of tansu could not be started: {last}");
    }

    /// `127.0.0.1:PORT` of the proxy (use it as `bootstrap.servers`).
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request recorded so far, in arrival order per connection.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The recorded requests of one API.
    pub fn requests_of(&self, api: ApiKey) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.api == api).collect()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(all) = self.streams.lock() {
            for s in all.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Client → broker: split into frames, record each, forward it unchanged.
fn forward_requests(connection: usize, mut from: TcpStream, mut to: TcpStream, log: &Mutex<Vec<Recorded>>) {
    while let Some(frame) = read_frame(&mut from) {
        if let Some(r) = parse(frame.clone(), 0, connection) {
            if let Ok(mut l) = log.lock() {
                l.push(r);
            }
        }
        let len = (frame.len() as u32).to_be_bytes();
        if to.write_all(&len).and_then(|()| to.write_all(&frame)).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}
