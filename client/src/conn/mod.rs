//! One broker connection: a task that owns the socket, and cheap handles to it.
//!
//! Callers encode their request (with a correlation id from the handle), hand the
//! frame to the task over a channel, and await a oneshot for the response frame. A
//! frame is a list of parts written one after another: one buffer for most requests;
//! a Produce request's record batches are parts of their own, never copied
//! ([`encode_produce`]).
//! The task (see [`task`]: a writer and a reader half running concurrently, so reads
//! and timeouts are serviced while a request is being written) writes requests in
//! arrival order, keeps at most `max.in.flight.requests.per.connection` unanswered,
//! and matches responses strictly in order. A response with another correlation id, a malformed frame,
//! a timed-out request (counted from when its first byte was to be written) or a
//! socket error *poisons* the connection: every pending
//! request fails and the handle reports itself closed, so the owner reconnects.
//!
//! With `security.protocol=SSL` the socket is wrapped in TLS right after the TCP
//! connect (SNI and host-name check from the host part of the broker address);
//! the task is the same for both, generic over the stream's read and write halves.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferrokafka_protocol::frame::{decode_response, encode_request, RequestMeta};
use ferrokafka_protocol::produce::{encode_produce, ProduceTopic};
use ferrokafka_protocol::versions::{
    api_versions_request, parse_api_versions, ApiVersionsReply, BrokerVersions, API_VERSIONS_MAX,
};
use ferrokafka_protocol::{ProtocolError, Request};
use ferrokafka_tls::TlsConnector;
use kafka_protocol::messages::{ApiKey, ProduceResponse};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::{ClientError, Result};
use crate::stats::BrokerCounters;

/// Settings of one connection, taken from the client configuration.
#[derive(Clone, Debug)]
pub struct ConnectionOptions {
    /// `client.id`.
    pub client_id: StrBytes,
    /// `request.timeout.ms`.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`.
    pub connect_timeout: Duration,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight: usize,
    /// `receive.message.max.bytes`.
    pub max_frame_size: usize,
    /// TLS for every connection (`security.protocol=SSL`), built once per cluster.
    pub tls: Option<Arc<TlsConnector>>,
    /// `receive.buffer.bytes` (`SO_RCVBUF`); `None` leaves the OS default.
    pub receive_buffer: Option<usize>,
    /// `send.buffer.bytes` (`SO_SNDBUF`); `None` leaves the OS default.
    pub send_buffer: Option<usize>,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            client_id: StrBytes::from_static_str("ferrokafka"),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_in_flight: 5,
            max_frame_size: ferrokafka_protocol::frame::DEFAULT_MAX_FRAME_SIZE,
            tls: None,
            receive_buffer: None,
            send_buffer: None,
        }
    }
}

type Reply = oneshot::Sender<Result<Bytes>>;

struct Envelope {
    id: i32,
    api: ApiKey,
    /// The frame's parts, size prefix first, written one after another (none is empty).
    frame: Vec<Bytes>,
    timeout: Duration,
    /// `None` for requests the broker does not answer (Produce with acks=0).
    reply: Option<Reply>,
}

/// The size of a frame, prefix included: what the byte counters count.
fn frame_len(frame: &[Bytes]) -> usize {
    frame.iter().map(Bytes::len).sum()
}

mod buffers;
mod socket;
mod task;
#[cfg(test)]
mod tests;
use socket::{host_of, open_socket};
use task::Task;

/// The id of a raw SASL token (SaslHandshake v0 framing: no header, so its answer has
/// no correlation id either). Real ids are never negative.
const RAW_SASL_TOKEN: i32 = -1;

struct Shared {
    addr: String,
    next_id: AtomicI32,
    /// Set by the connection task when it stops, and by handles that poison it.
    closed: Arc<AtomicBool>,
    /// Why the connection task stopped, for requests sent after it did.
    failure: Arc<OnceLock<ClientError>>,
    versions: OnceLock<BrokerVersions>,
    client_id: StrBytes,
    request_timeout: Duration,
    /// Readers: every request on its way into the queue; writer: re-authentication.
    gate: tokio::sync::RwLock<()>,
    /// The broker's statistics (shared with its other connections).
    counters: Arc<BrokerCounters>,
}

/// A request on the queue: its answer to come, and when it was queued.
pub(crate) struct Waiting {
    rx: oneshot::Receiver<Result<Bytes>>,
    queued: Instant,
    /// Counted as in flight until answered, failed, or abandoned (dropped unawaited:
    /// a fetch task aborted mid long-poll, a cancelled call).
    counters: Option<Arc<BrokerCounters>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(c) = self.counters.take() {
            c.answered(None);
        }
    }
}

/// A handle to a broker connection. Cloning is cheap; the socket closes when the
/// last handle is dropped.
#[derive(Clone)]
pub struct Connection {
    tx: mpsc::Sender<Envelope>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("addr", &self.shared.addr).field("closed", &self.is_closed()).finish()
    }
}

impl Connection {
    /// Connects to `addr` (resolving it now), shakes hands over TLS when
    /// configured, starts the connection task and negotiates API versions.
    /// `socket.connection.setup.timeout.ms` bounds the TCP connect and the TLS
    /// handshake together.
    pub async fn connect(addr: &str, opts: &ConnectionOptions) -> Result<Connection> {
        Self::connect_counted(addr, opts, Arc::default()).await
    }

    /// [`connect`](Self::connect), counting into the broker's statistics.
    pub(crate) async fn connect_counted(
        addr: &str,
        opts: &ConnectionOptions,
        counters: Arc<BrokerCounters>,
    ) -> Result<Connection> {
        let io = |source| ClientError::io(addr, source);
        let timed_out =
            || ClientError::Disconnected { broker: addr.to_owned(), reason: "connection setup timed out".into() };
        let deadline = Instant::now() + opts.connect_timeout;
        let stream =
            tokio::time::timeout_at(deadline, open_socket(addr, opts)).await.map_err(|_| timed_out())?.map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        tracing::debug!(broker = %addr, "TCP connected");
        let (tx, rx) = mpsc::channel(opts.max_in_flight.max(1) * 2);
        let closed = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(OnceLock::new());
        let task = Task {
            addr: addr.to_owned(),
            opts: opts.clone(),
            closed: closed.clone(),
            failure: failure.clone(),
            counters: counters.clone(),
        };
        match &opts.tls {
            None => {
                let (rd, wr) = stream.into_split();
                task::spawn(task, rd, wr, rx);
            }
            Some(tls) => {
                let tls_stream = tokio::time::timeout_at(deadline, tls.connect(host_of(addr), stream))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|source| ClientError::Tls { broker: Some(addr.to_owned()), source })?;
                tracing::debug!(broker = %addr, "TLS handshake done");
                let (rd, wr) = tokio::io::split(tls_stream);
                task::spawn(task, rd, wr, rx);
            }
        }
        let conn = Connection {
            tx,
            shared: Arc::new(Shared {
                addr: addr.to_owned(),
                next_id: AtomicI32::new(1),
                closed,
                failure,
                versions: OnceLock::new(),
                client_id: opts.client_id.clone(),
                request_timeout: opts.request_timeout,
                gate: tokio::sync::RwLock::new(()),
                counters,
            }),
        };
        let mut version = API_VERSIONS_MAX;
        for _ in 0..4 {
            let frame = conn.raw_call(ApiKey::ApiVersions, version, &api_versions_request(version), None).await?;
            match parse_api_versions(frame, version).map_err(|source| conn.protocol_error(source))? {
                ApiVersionsReply::Supported(v) => {
                    tracing::debug!(broker = %addr, api_versions = version, "API versions negotiated");
                    let _ = conn.shared.versions.set(v);
                    return Ok(conn);
                }
                ApiVersionsReply::RetryWith(v) => {
                    tracing::debug!(broker = %addr, from = version, to = v, "ApiVersions: broker asks for another version");
                    version = v
                }
            }
        }
        Err(ClientError::Disconnected {
            broker: addr.to_owned(),
            reason: "ApiVersions negotiation did not converge".into(),
        })
    }

    fn protocol_error(&self, source: ProtocolError) -> ClientError {
        ClientError::Protocol { broker: Some(self.shared.addr.clone()), partition: None, source }
    }

    /// Counts an answer's error code in the broker's statistics (0 is not counted).
    pub(crate) fn note_error(&self, api: crate::Api, code: i16) {
        self.shared.counters.errors.note(api, code);
    }

    /// Counts an answer's codes: a request-level code once (brokers may repeat it in
    /// every partition), else each partition's.
    pub(crate) fn note_errors(&self, api: crate::Api, request_code: i16, partitions: impl IntoIterator<Item = i16>) {
        match request_code {
            0 => partitions.into_iter().for_each(|code| self.note_error(api, code)),
            code => self.note_error(api, code),
        }
    }

    /// The broker's address.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Whether the connection task has stopped (poisoned, closed by the broker, …).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed) || self.tx.is_closed()
    }

    /// The version of `api` negotiated with this broker.
    pub fn version(&self, api: ApiKey) -> Result<i16> {
        match self.shared.versions.get() {
            Some(v) => v.negotiate(api).map_err(|source| self.protocol_error(source)),
            None => Err(self.disconnected("API versions not negotiated yet")),
        }
    }

    /// Sends `req` at the version negotiated for its API and decodes the response.
    pub async fn call<R: Request>(&self, req: &R) -> Result<R::Response> {
        let version = self.version(R::API)?;
        self.call_at(version, req, None).await
    }

    /// Sends `req` at `version`; `extra_timeout` is added to `request.timeout.ms`
    /// (a Fetch may legitimately wait `fetch.max.wait.ms` at the broker).
    pub async fn call_at<R: Request>(
        &self,
        version: i16,
        req: &R,
        extra_timeout: Option<Duration>,
    ) -> Result<R::Response> {
        let waiting = self.enqueue_raw(R::API, version, req, extra_timeout).await?;
        self.answer(waiting, R::API, version).await
    }

    /// Puts `req` on the connection's queue now and returns the future of its answer.
    /// Requests one task enqueues one after another reach the broker in that order,
    /// whenever their answers are awaited (an idempotent producer's batches of one
    /// partition must).
    pub(crate) async fn enqueue<R: Request>(
        &self,
        version: i16,
        req: &R,
        extra_timeout: Option<Duration>,
    ) -> Result<impl std::future::Future<Output = Result<R::Response>> + Send + 'static> {
        let waiting = self.enqueue_raw(R::API, version, req, extra_timeout).await?;
        let conn = self.clone();
        Ok(async move { conn.answer(waiting, R::API, version).await })
    }

    /// Awaits a queued request's frame and decodes its body.
    async fn answer<Resp: Decodable>(&self, waiting: Waiting, api: ApiKey, version: i16) -> Result<Resp> {
        let frame = self.wait(waiting).await?;
        decode_response::<Resp>(frame, api, version).map(|(_, body)| body).map_err(|source| {
            self.poison_with(ClientError::Protocol { broker: Some(self.shared.addr.clone()), partition: None, source })
        })
    }

    /// Puts a Produce request on the queue, each partition's record batches written from
    /// their own buffer (not copied: [`encode_produce`]), and returns the future of its
    /// answer as [`enqueue`](Self::enqueue) does; `None` with `acks == 0`, which the
    /// broker does not answer.
    pub(crate) async fn enqueue_produce(
        &self,
        version: i16,
        transactional_id: Option<&str>,
        acks: i16,
        timeout_ms: i32,
        topics: &[ProduceTopic<'_>],
    ) -> Result<Option<impl std::future::Future<Output = Result<ProduceResponse>> + Send + 'static>> {
        let _open = self.shared.gate.read().await;
        let meta = self.next_meta(ApiKey::Produce, version);
        let id = meta.correlation_id;
        let frame = encode_produce(&meta, transactional_id, acks, timeout_ms, topics)
            .map_err(|source| self.protocol_error(source))?;
        if acks == 0 {
            let bytes = frame_len(&frame);
            let env = Envelope { id, api: ApiKey::Produce, frame, timeout: self.shared.request_timeout, reply: None };
            self.tx.send(env).await.map_err(|_| self.stopped())?;
            self.shared.counters.sent_unanswered(bytes);
            return Ok(None);
        }
        let waiting = self.push(id, ApiKey::Produce, frame, None).await?;
        let conn = self.clone();
        Ok(Some(async move { conn.answer::<ProduceResponse>(waiting, ApiKey::Produce, version).await }))
    }

    /// The header of a new request: the next correlation id, and `client.id`.
    fn next_meta(&self, api: ApiKey, version: i16) -> RequestMeta {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        RequestMeta { api, version, correlation_id: id, client_id: Some(self.shared.client_id.clone()) }
    }

    fn encode<Req: Encodable>(&self, api: ApiKey, version: i16, req: &Req) -> Result<(i32, Vec<Bytes>)> {
        let meta = self.next_meta(api, version);
        let mut buf = BytesMut::new();
        encode_request(&mut buf, &meta, req).map_err(|source| self.protocol_error(source))?;
        Ok((meta.correlation_id, vec![buf.freeze()]))
    }

    async fn raw_call<Req: Encodable>(
        &self,
        api: ApiKey,
        version: i16,
        req: &Req,
        extra_timeout: Option<Duration>,
    ) -> Result<Bytes> {
        let waiting = self.enqueue_raw(api, version, req, extra_timeout).await?;
        self.wait(waiting).await
    }

    /// Awaits a queued request's frame, counting it in the broker's statistics.
    async fn wait(&self, mut waiting: Waiting) -> Result<Bytes> {
        let frame = (&mut waiting.rx).await.map_err(|_| self.stopped()).and_then(|r| r);
        let answered = frame.as_ref().ok().map(|f| (f.len(), waiting.queued.elapsed()));
        if let Some(c) = waiting.counters.take() {
            c.answered(answered);
        }
        frame
    }

    async fn enqueue_raw<Req: Encodable>(
        &self,
        api: ApiKey,
        version: i16,
        req: &Req,
        extra_timeout: Option<Duration>,
    ) -> Result<Waiting> {
        let _open = self.shared.gate.read().await;
        self.enqueue_ungated(api, version, req, extra_timeout).await
    }

    /// Puts a request on the queue even while the gate is held (the holder's own requests).
    async fn enqueue_ungated<Req: Encodable>(
        &self,
        api: ApiKey,
        version: i16,
        req: &Req,
        extra_timeout: Option<Duration>,
    ) -> Result<Waiting> {
        let (id, frame) = self.encode(api, version, req)?;
        self.push(id, api, frame, extra_timeout).await
    }

    /// Puts an encoded request on the queue (the caller passed the gate, or holds it).
    async fn push(&self, id: i32, api: ApiKey, frame: Vec<Bytes>, extra_timeout: Option<Duration>) -> Result<Waiting> {
        let (reply, rx) = oneshot::channel();
        let timeout = self.shared.request_timeout + extra_timeout.unwrap_or_default();
        let bytes = frame_len(&frame);
        let env = Envelope { id, api, frame, timeout, reply: Some(reply) };
        self.tx.send(env).await.map_err(|_| self.stopped())?;
        self.shared.counters.sent(bytes);
        Ok(Waiting { rx, queued: Instant::now(), counters: Some(self.shared.counters.clone()) })
    }

    /// The error of a request that found the connection task stopped: why it
    /// stopped (a TLS alert read just after the handshake, say), if it said so.
    fn stopped(&self) -> ClientError {
        match self.shared.failure.get() {
            Some(e) => {
                self.shared.closed.store(true, Ordering::Relaxed);
                e.clone()
            }
            None => self.disconnected("connection task stopped"),
        }
    }

    /// Holds every other request back (they wait, in order) until the guard drops:
    /// re-authentication must be the only traffic between its SaslHandshake and its
    /// last SaslAuthenticate, or a Kafka broker closes the connection. Requests queued
    /// before go out first.
    pub(crate) async fn exclusive(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.shared.gate.write().await
    }

    /// A call that passes the gate: for the holder of [`exclusive`](Self::exclusive),
    /// and for authentication before the handle is handed out.
    pub(crate) async fn call_exclusive<R: Request>(&self, req: &R) -> Result<R::Response> {
        let version = self.version(R::API)?;
        self.call_exclusive_at(version, req).await
    }

    /// [`call_exclusive`](Self::call_exclusive) at a given version.
    pub(crate) async fn call_exclusive_at<R: Request>(&self, version: i16, req: &R) -> Result<R::Response> {
        let waiting = self.enqueue_ungated(R::API, version, req, None).await?;
        self.answer(waiting, R::API, version).await
    }

    /// Sends a raw SASL token as brokers without SaslAuthenticate (Kafka < 1.0) expect
    /// after SaslHandshake v0 — the size-prefixed bytes, no request header — and returns
    /// the broker's raw answer. Only at connect time, when nothing else is in flight.
    pub(crate) async fn raw_sasl_token(&self, token: &[u8]) -> Result<Bytes> {
        let size = i32::try_from(token.len()).map_err(|_| self.disconnected("SASL token over 2 GiB"))?;
        let mut frame = BytesMut::with_capacity(4 + token.len());
        frame.extend_from_slice(&size.to_be_bytes());
        frame.extend_from_slice(token);
        let (reply, rx) = oneshot::channel();
        let timeout = self.shared.request_timeout;
        let env = Envelope {
            id: RAW_SASL_TOKEN,
            api: ApiKey::SaslHandshake,
            frame: vec![frame.freeze()],
            timeout,
            reply: Some(reply),
        };
        self.tx.send(env).await.map_err(|_| self.stopped())?;
        rx.await.map_err(|_| self.stopped())?
    }

    /// A handle that does not keep the connection open.
    pub(crate) fn downgrade(&self) -> WeakConnection {
        WeakConnection { tx: self.tx.downgrade(), shared: Arc::downgrade(&self.shared) }
    }

    /// Marks the connection closed: the cluster opens a new one on next use.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
    }

    fn disconnected(&self, reason: &str) -> ClientError {
        self.shared.closed.store(true, Ordering::Relaxed);
        ClientError::Disconnected { broker: self.shared.addr.clone(), reason: reason.to_owned() }
    }

    /// A response that cannot be decoded means we no longer trust the stream.
    fn poison_with(&self, e: ClientError) -> ClientError {
        self.shared.closed.store(true, Ordering::Relaxed);
        e
    }
}

/// A [`Connection`] that may be gone.
pub(crate) struct WeakConnection {
    tx: mpsc::WeakSender<Envelope>,
    shared: std::sync::Weak<Shared>,
}

impl WeakConnection {
    /// The connection, while some handle keeps it open.
    pub(crate) fn upgrade(&self) -> Option<Connection> {
        Some(Connection { tx: self.tx.upgrade()?, shared: self.shared.upgrade()? })
    }
}
