//! A recording TCP proxy in front of one broker: bytes pass through unchanged both ways,
//! and every request frame a client sends is recorded (header and body), so a test can
//! check what a client put on the wire against a real broker — e.g. that a static
//! member sends its `group.instance.id` and no LeaveGroup.
//!
//! Start the broker advertising the proxy's port ([`crate::tansu::Tansu::try_start_advertising`])
//! so that every connection a client opens, bootstrap or not, goes through the proxy.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

use crate::tansu::Tansu;

/// One request a client sent.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Which client connection (in accept order) sent it.
    pub connection: usize,
    /// Its API.
    pub api: ApiKey,
    /// Its version.
    pub version: i16,
    /// The body after the request header.
    pub body: Bytes,
}

impl Recorded {
    /// Decodes the body as `T` (panics on a body the client should never have sent).
    pub fn decode<T: Decodable>(&self) -> T {
        T::decode(&mut self.body.clone(), self.version)
            .unwrap_or_else(|e| panic!("{:?} v{} body does not decode: {e}", self.api, self.version))
    }
}

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
            let mut connection = 0;
            while !stop.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => return,
                };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    if let Ok(mut all) = streams.lock() {
                        all.extend([c, s]);
                    }
                }
                let (Ok(client_rx), Ok(server_rx)) = (client.try_clone(), server.try_clone()) else { continue };
                let log = requests.clone();
                let id = connection;
                connection += 1;
                std::thread::spawn(move || forward_requests(id, client_rx, server, &log));
                std::thread::spawn(move || copy(server_rx, client));
            }
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
    loop {
        let mut len = [0u8; 4];
        if from.read_exact(&mut len).is_err() {
            break;
        }
        let size = i32::from_be_bytes(len);
        if !(0..=100 << 20).contains(&size) {
            break;
        }
        let mut frame = vec![0u8; size as usize];
        if from.read_exact(&mut frame).is_err() {
            break;
        }
        if let Some(r) = parse(connection, Bytes::from(frame.clone())) {
            if let Ok(mut l) = log.lock() {
                l.push(r);
            }
        }
        if to.write_all(&len).and_then(|()| to.write_all(&frame)).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn parse(connection: usize, mut frame: Bytes) -> Option<Recorded> {
    let key = i16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
    let version = i16::from_be_bytes([*frame.get(2)?, *frame.get(3)?]);
    let api = ApiKey::try_from(key).ok()?;
    RequestHeader::decode(&mut frame, api.request_header_version(version)).ok()?;
    Some(Recorded { connection, api, version, body: frame })
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}
