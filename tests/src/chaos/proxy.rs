//! A relay in front of each mock broker, for the chaos run's "connection cut in the
//! middle of a response" fault. The clients bootstrap through the relays; Metadata and
//! FindCoordinator answers are rewritten to name the relays, so every later connection
//! goes through them too. Once a cut is armed, the next Fetch or Produce answer through
//! any relay is forwarded only in part (its first half) and both sides are closed. Any
//! relay, not one broker's: a broker may lead no partition when the cut is armed (after
//! leader moves) or be down, and the cut would then wait for ever.
//!
//! Only Fetch and Produce answers are cut: they travel on connections of their own, so a
//! cut never drops a JoinGroup the mock still holds (the mocks abort when one is sent
//! again while the first is pending; DESIGN.md, broker quirks).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, FindCoordinatorResponse, MetadataResponse, ResponseHeader};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::fake::wire::{parse, read_frame, response_frame};
use crate::mock::MockCluster;

/// The relays of a cluster's brokers.
pub(crate) struct Relays {
    /// Per broker (id - 1): its relay's port.
    ports: Vec<u16>,
    /// Answers still to cut, through whichever relay carries one first.
    armed: Arc<AtomicU32>,
    cuts: Arc<AtomicU64>,
    /// Client connections open now, through every relay.
    open: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

/// Counts a relayed connection open until both of its threads are done.
struct Open(Arc<AtomicU64>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every relay shares: upstream port → relay port, for rewriting answers.
type PortMap = Arc<HashMap<u16, u16>>;

impl Relays {
    /// One relay per broker of `mock` (`brokers` of them), on 127.0.0.1.
    pub(crate) fn start(mock: &MockCluster, brokers: usize) -> Relays {
        let listeners: Vec<TcpListener> =
            (0..brokers).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a relay")).collect();
        let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().expect("relay address").port()).collect();
        let upstreams: Vec<String> = (1..=brokers).map(|id| mock.broker(id).to_owned()).collect();
        let map: PortMap = Arc::new(
            upstreams
                .iter()
                .zip(&ports)
                .map(|(u, p)| (u.rsplit(':').next().and_then(|x| x.parse().ok()).expect("broker port"), *p))
                .collect(),
        );
        let armed = Arc::new(AtomicU32::new(0));
        let (cuts, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let open = Arc::new(AtomicU64::new(0));
        for (listener, upstream) in listeners.into_iter().zip(upstreams) {
            let (map, arm, cuts, stop, open) = (map.clone(), armed.clone(), cuts.clone(), stop.clone(), open.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        // The broker is down: so is its relay, as far as the client sees.
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    };
                    open.fetch_add(1, Ordering::Relaxed);
                    let open = Arc::new(Open(open.clone()));
                    relay(client, server, map.clone(), (arm.clone(), cuts.clone()), open);
                }
            });
        }
        Relays { ports, armed, cuts, open, stop }
    }

    /// The relays' addresses, as `bootstrap.servers`.
    pub(crate) fn bootstrap(&self) -> String {
        self.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    }

    /// The next Fetch or Produce answer through any relay is cut in the middle.
    pub(crate) fn cut_next(&self) {
        self.armed.fetch_add(1, Ordering::Relaxed);
    }

    /// The clients' connections open now (all of them go through the relays).
    pub(crate) fn client_connections(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Answers cut so far.
    pub(crate) fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for p in &self.ports {
            // Wakes each accept loop so it sees `stop`.
            let _ = TcpStream::connect(("127.0.0.1", *p));
        }
    }
}

/// Relays one connection: requests as they are (their API and version noted by
/// correlation id), answers rewritten or cut.
fn relay(client: TcpStream, server: TcpStream, map: PortMap, cut: (Arc<AtomicU32>, Arc<AtomicU64>), open: Arc<Open>) {
    let (arm, cuts) = cut;
    let asked: Arc<Mutex<HashMap<i32, (ApiKey, i16)>>> = Arc::default();
    // Four descriptors per connection in this process: the two sockets and a clone of
    // each for the request direction.
    let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone()) else { return };
    let noted = asked.clone();
    let still_open = open.clone();
    std::thread::spawn(move || {
        let _open = still_open;
        while let Some(frame) = read_frame(&mut c_read) {
            if let Some(r) = parse(frame.clone(), 0, 0) {
                noted.lock().unwrap_or_else(|p| p.into_inner()).insert(r.correlation_id, (r.api, r.version));
            }
            let len = (frame.len() as i32).to_be_bytes();
            if s_write.write_all(&len).and_then(|()| s_write.write_all(&frame)).is_err() {
                break;
            }
        }
        close(&c_read, &s_write);
    });
    std::thread::spawn(move || {
        let _open = open;
        let (mut server, mut client) = (server, client);
        while let Some(frame) = read_answer(&mut server) {
            let corr = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let asked = asked.lock().unwrap_or_else(|p| p.into_inner()).remove(&corr);
            let out = match asked {
                Some((api @ (ApiKey::Metadata | ApiKey::FindCoordinator), version)) => {
                    rewrite(api, version, &frame, &map).unwrap_or_else(|| sized(&frame))
                }
                Some((ApiKey::Fetch | ApiKey::Produce, _)) if take(&arm) => {
                    // The size prefix says the whole answer; half of it follows, then the end.
                    let _ = client.write_all(&(frame.len() as i32).to_be_bytes());
                    let _ = client.write_all(&frame[..frame.len() / 2]);
                    cuts.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                _ => sized(&frame),
            };
            if client.write_all(&out).is_err() {
                break;
            }
        }
        close(&client, &server);
    });
}

fn close(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// Takes one armed cut, if any.
fn take(arm: &AtomicU32) -> bool {
    arm.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
}

/// One answer frame without its size prefix (at least a correlation id; at most 100 MiB).
fn read_answer(sock: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    sock.read_exact(&mut len).ok()?;
    let size = usize::try_from(i32::from_be_bytes(len)).ok().filter(|s| (4..=100 << 20).contains(s))?;
    let mut frame = vec![0u8; size];
    sock.read_exact(&mut frame).ok()?;
    Some(frame)
}

fn sized(payload: &[u8]) -> Vec<u8> {
    crate::fake::wire::frame(payload)
}

/// A Metadata or FindCoordinator answer naming the relays instead of the brokers.
fn rewrite(api: ApiKey, version: i16, frame: &[u8], map: &HashMap<u16, u16>) -> Option<Vec<u8>> {
    let mut buf = Bytes::copy_from_slice(frame);
    let header = ResponseHeader::decode(&mut buf, api.response_header_version(version)).ok()?;
    let relay = |port: i32| u16::try_from(port).ok().and_then(|p| map.get(&p)).map(|p| i32::from(*p));
    let local = || StrBytes::from_static_str("127.0.0.1");
    if api == ApiKey::Metadata {
        let mut md = MetadataResponse::decode(&mut buf, version).ok()?;
        for b in &mut md.brokers {
            if let Some(p) = relay(b.port) {
                (b.host, b.port) = (local(), p);
            }
        }
        return Some(response_frame(api, version, header.correlation_id, &md));
    }
    let mut fc = FindCoordinatorResponse::decode(&mut buf, version).ok()?;
    if let Some(p) = relay(fc.port) {
        (fc.host, fc.port) = (local(), p);
    }
    for c in &mut fc.coordinators {
        if let Some(p) = relay(c.port) {
            (c.host, c.port) = (local(), p);
        }
    }
    Some(response_frame(api, version, header.correlation_id, &fc))
}
