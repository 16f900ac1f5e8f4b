//! The connection task against in-process fake brokers (plain std sockets on
//! 127.0.0.1, no broker installed): reads and timeouts are serviced while a request
//! is being written.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::TopicProduceResponse;
use kafka_protocol::messages::{
    api_versions_response::ApiVersion, ApiKey, ApiVersionsResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::{Connection, ConnectionOptions};
use crate::error::ClientError;

/// Requests and answers this large do not fit in the sockets' buffers (32 KiB each way,
/// on both sides).
const BIG: usize = 2 << 20;
const SOCKET_BUFFER: u32 = 32 << 10;

fn read_frame(sock: &mut TcpStream) -> Option<(ApiKey, i32)> {
    let mut len = [0u8; 4];
    sock.read_exact(&mut len).ok()?;
    let mut frame = vec![0u8; i32::from_be_bytes(len) as usize];
    sock.read_exact(&mut frame).ok()?;
    let api = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).ok()?;
    Some((api, i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]])))
}

/// A response frame: size, correlation id (header v0), body at `version`.
fn frame(id: i32, body: &impl Encodable, version: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i32(0);
    b.put_i32(id);
    body.encode(&mut b, version).expect("encodable");
    let size = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&size.to_be_bytes());
    b.to_vec()
}

fn versions(id: i32) -> Vec<u8> {
    let key = ApiVersion::default().with_api_key(ApiKey::Produce as i16).with_min_version(3).with_max_version(3);
    let av = ApiVersion::default().with_api_key(ApiKey::ApiVersions as i16).with_max_version(3);
    frame(id, &ApiVersionsResponse::default().with_api_keys(vec![key, av]), 3)
}

/// A Produce v3 answer of about `BIG` bytes (topic names are free-form strings).
fn big_answer(id: i32) -> Vec<u8> {
    let name = "t".repeat(32_000);
    let topics = (0..BIG / 32_000)
        .map(|_| TopicProduceResponse::default().with_name(TopicName(StrBytes::from_string(name.clone()))))
        .collect();
    frame(id, &ProduceResponse::default().with_responses(topics), 3)
}

fn big_request() -> ProduceRequest {
    let data = PartitionProduceData::default().with_records(Some(Bytes::from(vec![7u8; BIG])));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("t")))
        .with_partition_data(vec![data]);
    ProduceRequest::default().with_acks(1).with_timeout_ms(1000).with_topic_data(vec![topic])
}

/// Serves one connection on a thread: ApiVersions, then `after` with the socket.
fn fake(after: impl FnOnce(TcpStream) + Send + 'static) -> String {
    // Small buffers on the fake's side too (accepted sockets inherit the listener's).
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(SOCKET_BUFFER).expect("SO_RCVBUF");
    socket.set_send_buffer_size(SOCKET_BUFFER).expect("SO_SNDBUF");
    socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let listener: TcpListener = socket.listen(8).expect("listen").into_std().expect("std listener");
    listener.set_nonblocking(false).expect("blocking");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        let (api, id) = read_frame(&mut sock).expect("ApiVersions");
        assert_eq!(api, ApiKey::ApiVersions);
        sock.write_all(&versions(id)).expect("answer ApiVersions");
        after(sock);
    });
    addr
}

fn options(request_timeout: Duration) -> ConnectionOptions {
    ConnectionOptions {
        request_timeout,
        max_in_flight: 5,
        receive_buffer: Some(SOCKET_BUFFER as usize),
        send_buffer: Some(SOCKET_BUFFER as usize),
        max_frame_size: 64 << 20,
        ..ConnectionOptions::default()
    }
}

/// A broker that answers each request in full before it reads the next one (so it stops
/// reading while its answer does not fit in our receive buffer). Five large requests
/// pipelined: a connection that writes without reading deadlocks here (the broker waits
/// for us to read, we wait for it to read) until the request timeout; ours completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stops_reading_until_we_read_is_read_from() {
    let addr = fake(|mut sock| {
        while let Some((_, id)) = read_frame(&mut sock) {
            if sock.write_all(&big_answer(id)).is_err() {
                return;
            }
        }
    });
    let conn = Connection::connect(&addr, &options(Duration::from_secs(60))).await.expect("connect");
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let conn = conn.clone();
        calls.spawn(async move { conn.call_at(3, &big_request(), None).await });
    }
    let answers = tokio::time::timeout(Duration::from_secs(120), calls.join_all())
        .await
        .expect("the five calls end (a deadlocked connection never does)");
    for a in answers {
        let a = a.expect("answered");
        assert_eq!(a.responses.len(), BIG / 32_000);
    }
    assert!(!conn.is_closed());
}

/// A broker that takes the first bytes of a request and then stops reading for good: the
/// write stalls, and the request ends in the request timeout (not in a hang), and so does
/// every request queued behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_stalled_mid_request_ends_in_the_request_timeout() {
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let addr = fake(move |mut sock| {
        let mut first = [0u8; 1024];
        let _ = sock.read_exact(&mut first);
        // Hold the socket open without reading until the test ends.
        let _ = hold_rx.recv();
    });
    let conn = Connection::connect(&addr, &options(Duration::from_millis(500))).await.expect("connect");
    let req = big_request();
    let (first, second) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(conn.call_at(3, &req, None), conn.call_at(3, &req, None),)
    })
    .await
    .expect("a stalled write must not hang the connection");
    match first {
        Err(ClientError::Timeout { api: crate::Api::PRODUCE, after, .. }) => {
            assert_eq!(after, Duration::from_millis(500))
        }
        other => panic!("expected the request timeout, got {other:?}"),
    }
    assert!(second.is_err(), "the request queued behind fails too");
    assert!(conn.is_closed());
    let later = conn.call_at(3, &req, None).await;
    assert!(matches!(later, Err(ClientError::Timeout { .. })), "later calls report why: {later:?}");
    drop(hold_tx);
}

/// `receive.buffer.bytes` / `send.buffer.bytes` reach the socket (Linux reports twice the
/// value asked for, its bookkeeping share); unset, the OS default stays.
#[tokio::test]
async fn socket_buffers_are_applied() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let sizes = |stream: tokio::net::TcpStream| {
        let socket = tokio::net::TcpSocket::from_std_stream(stream.into_std().expect("std"));
        (socket.recv_buffer_size().expect("SO_RCVBUF"), socket.send_buffer_size().expect("SO_SNDBUF"))
    };
    let small = ConnectionOptions { receive_buffer: Some(8192), send_buffer: Some(4096), ..Default::default() };
    let (rcv, snd) = sizes(super::socket::open_socket(&addr, &small).await.expect("connect"));
    assert!((8192..=16384).contains(&rcv), "SO_RCVBUF {rcv}");
    assert!((4096..=8192).contains(&snd), "SO_SNDBUF {snd}");
    let (rcv, snd) = sizes(super::socket::open_socket(&addr, &ConnectionOptions::default()).await.expect("connect"));
    assert!(rcv > 16384 && snd > 8192, "OS defaults: {rcv} {snd}");
}
