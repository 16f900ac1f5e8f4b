//! The connection task, in two halves that run concurrently:
//!
//! - the **writer** takes requests from the handles' queue in order, registers each with
//!   the reader *before* its first byte goes out (its deadline starts then), and writes
//!   it; it holds one of `max.in.flight.requests.per.connection` slots per request that
//!   expects an answer;
//! - the **reader** always services the socket and the deadlines: it matches answers to
//!   registered requests strictly in order and fails the connection when the earliest
//!   deadline passes, whether the request is still being written or awaits its answer.
//!
//! So a write stalled on a broker that stopped reading ends in `request.timeout.ms`, and a
//! broker that stops reading until we read its answers (its send buffer full) is read
//! from while we write. When the reader stops (error, timeout, the broker closing) it
//! records why, fails every registered request and tells the writer to stop; the writer
//! abandons its write and fails the requests still queued with the same error.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferrokafka_protocol::frame::{peek_correlation_id, FrameDecoder};
use ferrokafka_protocol::ProtocolError;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::buffers::ReadBuffer;
use super::socket::host_of;
use super::{ConnectionOptions, Envelope, Reply, RAW_SASL_TOKEN};
use crate::error::{ClientError, Result};

/// What the connection task needs besides the socket.
#[derive(Clone)]
pub(super) struct Task {
    pub(super) addr: String,
    pub(super) opts: ConnectionOptions,
    pub(super) closed: Arc<AtomicBool>,
    pub(super) failure: Arc<OnceLock<ClientError>>,
    /// The broker's statistics: a connection is open while its task runs.
    pub(super) counters: Arc<crate::stats::BrokerCounters>,
}

impl Task {
    /// A socket error, explained as a TLS error when the stream carried one (an
    /// alert from the broker, e.g. a TLS 1.3 client certificate it refused).
    fn io_error(&self, source: std::io::Error) -> ClientError {
        if let Some(tls) = self.opts.tls.as_ref().and_then(|t| t.stream_error(host_of(&self.addr), &source)) {
            return ClientError::Tls { broker: Some(self.addr.clone()), source: tls };
        }
        ClientError::io(&self.addr, source)
    }

    /// The error requests get once the task has stopped.
    fn failure(&self) -> ClientError {
        match self.failure.get() {
            Some(e) => e.clone(),
            None => ClientError::Disconnected { broker: self.addr.clone(), reason: "connection task stopped".into() },
        }
    }
}

/// A request on the wire (or on its way there) that expects an answer.
struct InFlight {
    id: i32,
    api: ApiKey,
    deadline: Instant,
    timeout: Duration,
    reply: Reply,
    /// One of `max.in.flight.requests.per.connection`; freed with the answer.
    _slot: OwnedSemaphorePermit,
}

/// What the writer tells the reader.
enum Control {
    /// A request is about to be written and expects an answer.
    Sent(InFlight),
    /// A request is about to be written and gets no answer (Produce with acks=0).
    SentUnanswered(i32),
    /// The socket refused a write.
    WriteFailed(ClientError),
    /// Every handle is gone.
    Closed,
}

/// Starts both halves.
pub(super) fn spawn<R, W>(task: Task, rd: R, wr: W, rx: mpsc::Receiver<Envelope>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Unbounded, yet bounded: the writer sends at most one message per request it took,
    // and takes answered requests only while it holds a slot.
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let slots = Arc::new(Semaphore::new(task.opts.max_in_flight.max(1)));
    // Open from here until `read_half` ends, however it ends (its guard counts the close).
    task.counters.opened();
    let open = OpenGuard(task.counters.clone());
    tokio::spawn(write_half(task.clone(), wr, rx, ctl_tx, slots, stop_rx));
    tokio::spawn(async move {
        let _open = open;
        read_half(task, rd, ctl_rx, stop_tx).await;
    });
}

/// Counts a connection closed when its reader ends: returned, panicked or dropped with
/// its runtime.
struct OpenGuard(Arc<crate::stats::BrokerCounters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.closed();
    }
}

async fn write_half<W: AsyncWrite + Unpin>(
    task: Task,
    mut wr: W,
    mut rx: mpsc::Receiver<Envelope>,
    ctl: mpsc::UnboundedSender<Control>,
    slots: Arc<Semaphore>,
    mut stop: oneshot::Receiver<()>,
) {
    let ended = tokio::select! {
        biased;
        _ = &mut stop => None,
        e = write_requests(&task, &mut wr, &mut rx, &ctl, &slots) => Some(e),
    };
    match ended {
        Some(ClientError::Closed) => {
            let _ = ctl.send(Control::Closed);
            return;
        }
        Some(e) => {
            let _ = ctl.send(Control::WriteFailed(e));
            // The reader records the failure, then lets us go.
            let _ = stop.await;
        }
        None => {}
    }
    let failure = task.failure();
    rx.close();
    while let Some(env) = rx.recv().await {
        if let Some(reply) = env.reply {
            let _ = reply.send(Err(failure.clone()));
        }
    }
}

/// Writes queued requests in order until the socket fails or every handle is gone.
async fn write_requests<W: AsyncWrite + Unpin>(
    task: &Task,
    wr: &mut W,
    rx: &mut mpsc::Receiver<Envelope>,
    ctl: &mpsc::UnboundedSender<Control>,
    slots: &Arc<Semaphore>,
) -> ClientError {
    loop {
        let Some(env) = rx.recv().await else { return ClientError::Closed };
        let msg = match env.reply {
            Some(reply) => {
                let Ok(slot) = slots.clone().acquire_owned().await else { return ClientError::Closed };
                let deadline = Instant::now() + env.timeout;
                Control::Sent(InFlight { id: env.id, api: env.api, deadline, timeout: env.timeout, reply, _slot: slot })
            }
            None => Control::SentUnanswered(env.id),
        };
        if ctl.send(msg).is_err() {
            return ClientError::Closed;
        }
        tracing::trace!(broker = %task.addr, api = ?env.api, id = env.id, bytes = env.frame.len(), "request");
        // TLS buffers records until flushed; for TCP the flush is a no-op.
        let written = match wr.write_all(&env.frame).await {
            Ok(()) => wr.flush().await,
            Err(e) => Err(e),
        };
        if let Err(source) = written {
            return task.io_error(source);
        }
    }
}

async fn read_half<R: AsyncRead + Unpin>(
    task: Task,
    mut rd: R,
    mut ctl: mpsc::UnboundedReceiver<Control>,
    stop: oneshot::Sender<()>,
) {
    let addr = task.addr.clone();
    let decoder = FrameDecoder::new(task.opts.max_frame_size);
    let mut buffer = ReadBuffer::new();
    let max_frame_size = task.opts.max_frame_size;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    // Ids of requests sent without expecting an answer; some brokers answer anyway.
    let mut unanswered: VecDeque<i32> = VecDeque::new();
    let failure: ClientError = loop {
        let earliest = in_flight.iter().min_by_key(|f| f.deadline).map(|f| (f.deadline, f.api, f.timeout));
        buffer.before_read();
        tokio::select! {
            msg = ctl.recv() => {
                if let Err(e) = absorb(msg, &mut in_flight, &mut unanswered, &addr) { break e; }
            }
            read = rd.read_buf(&mut buffer.buf) => {
                match read {
                    Ok(0) => break ClientError::Disconnected { broker: addr.clone(), reason: "closed by the broker".into() },
                    Err(source) => break task.io_error(source),
                    Ok(_) => {}
                }
                // Requests registered since the last wake-up may be answered in this read.
                let mut stopped = None;
                while let Ok(msg) = ctl.try_recv() {
                    if let Err(e) = absorb(Some(msg), &mut in_flight, &mut unanswered, &addr) {
                        stopped = Some(e);
                        break;
                    }
                }
                if let Some(e) = stopped { break e; }
                if let Err(e) = dispatch(&decoder, &mut buffer, max_frame_size, &mut in_flight, &mut unanswered, &addr) { break e; }
            }
            _ = sleep_until(earliest.map(|e| e.0)), if earliest.is_some() => {
                let (api, after) = earliest.map(|e| (e.1, e.2)).unwrap_or((ApiKey::ApiVersions, Duration::ZERO));
                break ClientError::timeout(api, &addr, after);
            }
        }
    };
    let _ = task.failure.set(failure.clone());
    task.closed.store(true, Ordering::Relaxed);
    tracing::debug!(broker = %addr, error = %failure, "connection closed");
    for f in in_flight.drain(..) {
        let _ = f.reply.send(Err(failure.clone()));
    }
    let _ = stop.send(());
    // Requests the writer registers from now on are dropped with `ctl`: their callers
    // see the task stopped and read the failure recorded above.
}

/// Takes one message of the writer into the reader's books.
fn absorb(
    msg: Option<Control>,
    in_flight: &mut VecDeque<InFlight>,
    unanswered: &mut VecDeque<i32>,
    addr: &str,
) -> Result<()> {
    match msg {
        Some(Control::Sent(f)) => in_flight.push_back(f),
        Some(Control::SentUnanswered(id)) => {
            unanswered.push_back(id);
            if unanswered.len() > 1024 {
                unanswered.pop_front();
            }
        }
        Some(Control::WriteFailed(e)) => return Err(e),
        Some(Control::Closed) => return Err(ClientError::Closed),
        None => return Err(ClientError::Disconnected { broker: addr.to_owned(), reason: "the writer stopped".into() }),
    }
    Ok(())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Hands every complete frame in `buf` to the request it answers.
fn dispatch(
    decoder: &FrameDecoder,
    buffer: &mut ReadBuffer,
    max_frame_size: usize,
    in_flight: &mut VecDeque<InFlight>,
    unanswered: &mut VecDeque<i32>,
    addr: &str,
) -> Result<()> {
    let protocol = |source| ClientError::Protocol { broker: Some(addr.to_owned()), partition: None, source };
    loop {
        buffer.make_room(max_frame_size);
        let Some(frame) = decoder.decode(&mut buffer.buf).map_err(protocol)? else { break };
        if in_flight.front().is_some_and(|f| f.id == RAW_SASL_TOKEN) {
            if let Some(front) = in_flight.pop_front() {
                let _ = front.reply.send(Ok(frame));
            }
            continue;
        }
        let actual = peek_correlation_id(&frame).ok_or_else(|| {
            protocol(ProtocolError::Decode {
                api: ApiKey::ApiVersions,
                version: 0,
                message: "frame shorter than a correlation id".into(),
            })
        })?;
        if let Some(pos) = unanswered.iter().position(|id| *id == actual) {
            unanswered.remove(pos);
            continue;
        }
        let Some(front) = in_flight.pop_front() else {
            return Err(protocol(ProtocolError::CorrelationMismatch { expected: -1, actual }));
        };
        if front.id != actual {
            let e = protocol(ProtocolError::CorrelationMismatch { expected: front.id, actual });
            let _ = front.reply.send(Err(e.clone()));
            return Err(e);
        }
        tracing::trace!(broker = %addr, api = ?front.api, id = actual, bytes = frame.len(), "response");
        let _ = front.reply.send(Ok(frame));
    }
    Ok(())
}
