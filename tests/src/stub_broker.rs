//! A stub broker that answers every request with what a handler builds, on every
//! connection a client opens (bootstrap, fetch, group). For client behaviour that
//! needs a broker feature neither tansu nor the mock cluster has — a Fetch answer that
//! lists aborted transactions and a last stable offset below the high watermark, say.
//! Unlike [`crate::fake_broker`], which plays one scripted connection to test bad
//! input, this one is a (tiny) server: the handler decides from the request.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, BrokerId, MetadataResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::fake_broker::response_frame;

/// One request a client sent.
#[derive(Clone, Debug)]
pub struct Request {
    /// Which client connection (in accept order) sent it.
    pub connection: usize,
    /// Its API.
    pub api: ApiKey,
    /// Its version.
    pub version: i16,
    /// Its correlation id.
    pub correlation_id: i32,
    /// The body after the request header.
    pub body: Bytes,
    /// The stub's own port, for Metadata answers that point at itself.
    pub port: u16,
}

impl Request {
    /// Decodes the body as `T` (panics on a body the client should never have sent).
    pub fn decode<T: Decodable>(&self) -> T {
        T::decode(&mut self.body.clone(), self.version)
            .unwrap_or_else(|e| panic!("{:?} v{} body does not decode: {e}", self.api, self.version))
    }

    /// The response frame carrying `body`, at the request's version and correlation id.
    pub fn reply<B: Encodable>(&self, body: &B) -> Vec<u8> {
        response_frame(self.api, self.version, self.correlation_id, body)
    }
}

/// An ApiVersions answer announcing `apis` as (key, min, max).
pub fn api_versions(req: &Request, apis: &[(ApiKey, i16, i16)]) -> Vec<u8> {
    let keys = apis
        .iter()
        .map(|&(k, min, max)| ApiVersion::default().with_api_key(k as i16).with_min_version(min).with_max_version(max))
        .collect();
    req.reply(&ApiVersionsResponse::default().with_api_keys(keys))
}

/// A Metadata answer in which this stub is broker 1 and leads every partition of
/// `topics` (name, partition count).
pub fn metadata(req: &Request, topics: &[(&str, i32)]) -> Vec<u8> {
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(1))
        .with_host(StrBytes::from_static_str("127.0.0.1"))
        .with_port(i32::from(req.port));
    let topics = topics
        .iter()
        .map(|&(name, count)| {
            let partitions = (0..count)
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p)
                        .with_leader_id(BrokerId(1))
                        .with_replica_nodes(vec![BrokerId(1)])
                        .with_isr_nodes(vec![BrokerId(1)])
                })
                .collect();
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
                .with_partitions(partitions)
        })
        .collect();
    req.reply(
        &MetadataResponse::default().with_brokers(vec![broker]).with_controller_id(BrokerId(1)).with_topics(topics),
    )
}

type Handler = dyn Fn(&Request) -> Option<Vec<u8>> + Send + Sync;

/// The stub; stops accepting and closes its connections when dropped.
pub struct StubBroker {
    port: u16,
    requests: Arc<Mutex<Vec<(ApiKey, i16)>>>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl StubBroker {
    /// Listens on a random 127.0.0.1 port. The handler answers each request (`None`:
    /// no answer, the connection is closed).
    pub fn start(handler: impl Fn(&Request) -> Option<Vec<u8>> + Send + Sync + 'static) -> StubBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind stub broker");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let stub = StubBroker {
            port,
            requests: Arc::default(),
            streams: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let handler: Arc<Handler> = Arc::new(handler);
        let (requests, streams, stop) = (stub.requests.clone(), stub.streams.clone(), stub.stop.clone());
        std::thread::spawn(move || {
            accept_loop(listener, &stop, |connection, sock| {
                if let (Ok(copy), Ok(mut s)) = (sock.try_clone(), streams.lock()) {
                    s.push(copy);
                }
                let (handler, requests) = (handler.clone(), requests.clone());
                std::thread::spawn(move || serve(sock, port, connection, &*handler, &requests));
            })
        });
        stub
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// (API, version) of every request answered or not, in arrival order.
    pub fn requests(&self) -> Vec<(ApiKey, i16)> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for StubBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(streams) = self.streams.lock() {
            for s in streams.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Accepts connections on a non-blocking listener until `stop` is set, handing each
/// (in blocking mode) to `on_accept` with its number in accept order.
pub(crate) fn accept_loop(listener: TcpListener, stop: &AtomicBool, mut on_accept: impl FnMut(usize, TcpStream)) {
    let mut accepted = 0;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((sock, _)) => {
                if sock.set_nonblocking(false).is_ok() {
                    on_accept(accepted, sock);
                    accepted += 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return,
        }
    }
}

fn serve(mut sock: TcpStream, port: u16, connection: usize, handler: &Handler, log: &Mutex<Vec<(ApiKey, i16)>>) {
    while let Some(frame) = read_frame(&mut sock) {
        let Some(request) = parse(frame, port, connection) else { break };
        if let Ok(mut l) = log.lock() {
            l.push((request.api, request.version));
        }
        match handler(&request) {
            Some(reply) if sock.write_all(&reply).is_ok() => {}
            _ => break,
        }
    }
    let _ = sock.shutdown(Shutdown::Both);
}

/// One size-prefixed request frame (without its prefix); `None` at end of stream, on a
/// read error or on a size outside 8 bytes..100 MiB.
pub(crate) fn read_frame(sock: &mut impl Read) -> Option<Bytes> {
    let mut len = [0u8; 4];
    sock.read_exact(&mut len).ok()?;
    let size = usize::try_from(i32::from_be_bytes(len)).ok().filter(|s| (8..=100 << 20).contains(s))?;
    let mut frame = vec![0u8; size];
    sock.read_exact(&mut frame).ok()?;
    Some(Bytes::from(frame))
}

/// Splits a request frame into its header fields and body.
pub(crate) fn parse(mut frame: Bytes, port: u16, connection: usize) -> Option<Request> {
    let key = i16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
    let version = i16::from_be_bytes([*frame.get(2)?, *frame.get(3)?]);
    let api = ApiKey::try_from(key).ok()?;
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version)).ok()?;
    Some(Request { connection, api, version, correlation_id: header.correlation_id, body: frame, port })
}
