//! One in-process fake Kafka cluster for the tests (franz-go's kfake is the model): a
//! single-broker server on 127.0.0.1 that answers the APIs a producer and a consumer
//! use from an in-memory log (`cluster.rs`, and `txn.rs`: a transaction coordinator), with a hook that sees every request first
//! and may answer it itself, drop it, delay it, stall the connection or close it.
//!
//! The same server runs in two other modes:
//! - [`FakeCluster::proxy`]: requests go to a real broker instead of the in-memory
//!   log (bytes unchanged both ways), recorded and subject to the hook;
//! - [`FakeCluster::scripted`]: the first connection plays a list of [`Step`]s, for
//!   malformed frames, wrong correlation ids and truncated answers.
//!
//! Every request is recorded ([`FakeCluster::requests`]), in any mode.

mod action;
mod cluster;
mod fetch;
mod script;
mod txn;
pub(crate) mod wire;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;

pub use action::{Action, Mutation, Out};
pub use cluster::VERSIONS;
pub use script::Step;
pub use wire::{api_versions, frame, metadata, response_frame, Request};

use crate::tansu::Tansu;

type Hook = dyn Fn(&Request) -> Action + Send + Sync;

struct Shared {
    /// The listening port.
    port: u16,
    /// The port Metadata answers name (0 for a proxy, which answers nothing itself).
    advertised: u16,
    state: cluster::State,
    upstream: Option<String>,
    hook: RwLock<Option<Box<Hook>>>,
    requests: Mutex<Vec<Request>>,
    streams: Mutex<Vec<TcpStream>>,
    ended: Mutex<Vec<usize>>,
    stop: AtomicBool,
}

/// The fake; stops accepting and closes its connections when dropped.
pub struct FakeCluster {
    shared: Arc<Shared>,
}

impl FakeCluster {
    /// An empty in-memory cluster on a random port (create topics with
    /// [`FakeCluster::create_topic`]).
    pub fn start() -> FakeCluster {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake cluster");
        FakeCluster::serve(listener, None)
    }

    /// A fake whose every answer comes from `hook` (`None`: close the connection):
    /// for behaviour no real broker here has, such as a Fetch answer listing aborted
    /// transactions.
    pub fn answering(hook: impl Fn(&Request) -> Option<Vec<u8>> + Send + Sync + 'static) -> FakeCluster {
        let fake = FakeCluster::start();
        fake.hook(move |req| hook(req).map_or(Action::Close, Action::Reply));
        fake
    }

    /// A recording proxy on `127.0.0.1:port` in front of the broker at `upstream`.
    pub fn proxy(port: u16, upstream: &str) -> std::io::Result<FakeCluster> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        Ok(FakeCluster::serve(listener, Some(upstream.to_owned())))
    }

    /// Starts tansu advertising a proxy port, and a recording proxy in front of it.
    pub fn proxy_with_tansu() -> (FakeCluster, Tansu) {
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
            match FakeCluster::proxy(port, tansu.addr()) {
                Ok(p) => return (p, tansu),
                Err(e) => last = format!("proxy on port {port}: {e}"),
            }
        }
        panic!("recording proxy in front of tansu could not be started: {last}");
    }

    /// A fake whose first connection plays `steps` (later connections are closed).
    pub fn scripted(steps: Vec<Step>) -> FakeCluster {
        let fake = FakeCluster::start();
        fake.hook(script::hook(steps));
        fake
    }

    fn serve(listener: TcpListener, upstream: Option<String>) -> FakeCluster {
        listener.set_nonblocking(true).expect("nonblocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            port,
            advertised: if upstream.is_some() { 0 } else { port },
            state: cluster::State::default(),
            upstream,
            hook: RwLock::new(None),
            requests: Mutex::default(),
            streams: Mutex::default(),
            ended: Mutex::default(),
            stop: AtomicBool::new(false),
        });
        let accept = shared.clone();
        std::thread::spawn(move || accept_loop(listener, &accept));
        FakeCluster { shared }
    }

    /// Sets the hook that sees every request first (replacing any earlier one).
    pub fn hook(&self, hook: impl Fn(&Request) -> Action + Send + Sync + 'static) {
        *self.shared.hook.write().expect("hook lock") = Some(Box::new(hook));
    }

    /// Removes the hook: every request is answered by default again.
    pub fn clear_hook(&self) {
        *self.shared.hook.write().expect("hook lock") = None;
    }

    /// Creates a topic in the in-memory cluster.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.shared.state.create_topic(name, partitions);
    }

    /// Forgets every incremental fetch session (KIP-227), as a broker evicting them:
    /// the next incremental Fetch of each gets FETCH_SESSION_ID_NOT_FOUND.
    pub fn evict_fetch_sessions(&self) {
        self.shared.state.lock().sessions.evict();
    }

    /// Turns incremental fetch sessions on (the default) or off (every Fetch answered
    /// with session id 0, as a broker with no session slots).
    pub fn fetch_sessions(&self, on: bool) {
        self.shared.state.lock().sessions.set_enabled(on);
    }

    /// A partition's high watermark in the in-memory cluster.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.shared.state.high_watermark(topic, partition)
    }

    /// `127.0.0.1:port` (use it as `bootstrap.servers`).
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.shared.port)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The requests of one API.
    pub fn requests_of(&self, api: ApiKey) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.api == api).collect()
    }

    /// Waits (up to 20 s) for the first connection to end, then returns every request.
    pub fn finish(self) -> Result<Vec<Request>, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.shared.ended.lock().map(|e| e.contains(&0)).unwrap_or(false) {
            if Instant::now() > deadline {
                return Err("the fake's first connection did not end within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(self.requests())
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Ok(streams) = self.shared.streams.lock() {
            for s in streams.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

fn accept_loop(listener: TcpListener, shared: &Arc<Shared>) {
    let mut accepted = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((sock, _)) => {
                if sock.set_nonblocking(false).is_err() {
                    continue;
                }
                let _ = sock.set_nodelay(true);
                if let (Ok(copy), Ok(mut all)) = (sock.try_clone(), shared.streams.lock()) {
                    all.push(copy);
                }
                let (shared, id) = (shared.clone(), accepted);
                std::thread::spawn(move || {
                    connection(sock, id, &shared);
                    if let Ok(mut e) = shared.ended.lock() {
                        e.push(id);
                    }
                });
                accepted += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return,
        }
    }
}

/// Serves one client connection until it or the fake ends it.
fn connection(mut sock: TcpStream, id: usize, shared: &Shared) {
    let mut upstream = match &shared.upstream {
        None => None,
        Some(addr) => match upstream_copy(addr, &sock, shared) {
            Some(up) => Some(up),
            None => return close(&sock),
        },
    };
    while let Some(frame) = wire::read_frame(&mut sock) {
        let Some(req) = wire::parse(frame.clone(), shared.advertised, id) else { break };
        if let Ok(mut log) = shared.requests.lock() {
            log.push(req.clone());
        }
        let action = shared.hook.read().ok().and_then(|h| h.as_ref().map(|h| h(&req))).unwrap_or(Action::Pass);
        let pass = |sock: &mut TcpStream, upstream: &mut Option<TcpStream>| match upstream {
            Some(up) => {
                let len = (frame.len() as u32).to_be_bytes();
                up.write_all(&len).and_then(|()| up.write_all(&frame)).is_ok()
            }
            None => match shared.state.handle(&req) {
                Some(answer) => sock.write_all(&answer).is_ok(),
                None => false,
            },
        };
        let go_on = match action {
            Action::Pass => pass(&mut sock, &mut upstream),
            Action::Delay(d) => {
                std::thread::sleep(d);
                pass(&mut sock, &mut upstream)
            }
            Action::Reply(bytes) => {
                assert!(upstream.is_none(), "a proxy cannot answer itself: its answers would interleave");
                sock.write_all(&bytes).is_ok()
            }
            Action::Mutate(rewrite) => {
                assert!(upstream.is_none(), "a proxy does not see its upstream's answers");
                match shared.state.handle(&req) {
                    Some(answer) => sock.write_all(&(rewrite.0)(answer)).is_ok(),
                    None => false,
                }
            }
            Action::Play(outs) => play(&mut sock, outs),
            Action::Drop => true,
            Action::Stall => {
                while !shared.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                false
            }
            Action::Close => false,
        };
        if !go_on {
            break;
        }
    }
    if let Some(up) = upstream {
        let _ = up.shutdown(Shutdown::Both);
    }
    close(&sock);
}

fn play(sock: &mut TcpStream, outs: Vec<Out>) -> bool {
    for out in outs {
        match out {
            Out::Bytes(b) => {
                if sock.write_all(&b).is_err() {
                    return false;
                }
            }
            Out::Sleep(d) => std::thread::sleep(d),
            Out::Close => return false,
        }
    }
    true
}

/// Connects to the proxied broker and copies its answers to the client.
fn upstream_copy(addr: &str, client: &TcpStream, shared: &Shared) -> Option<TcpStream> {
    let server = TcpStream::connect(addr).ok()?;
    let _ = server.set_nodelay(true);
    let (mut from, mut to) = (server.try_clone().ok()?, client.try_clone().ok()?);
    if let Ok(mut all) = shared.streams.lock() {
        all.push(server.try_clone().ok()?);
    }
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
    Some(server)
}

fn close(sock: &TcpStream) {
    let _ = sock.shutdown(Shutdown::Both);
}
