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
use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Buf, Bytes};
use ferrokafka_protocol::frame::{peek_correlation_id, FrameDecoder};
use ferrokafka_protocol::ProtocolError;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::buffers::ReadBuffer;
use super::socket::host_of;
use super::{frame_len, ConnectionOptions, Envelope, Reply, RAW_SASL_TOKEN};
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
        tracing::trace!(broker = %task.addr, api = ?env.api, id = env.id, bytes = frame_len(&env.frame), "request");
        let mut frame = env.frame;
        // TLS buffers records until flushed; for TCP the flush is a no-op.
        let written = match write_frame(wr, &mut frame).await {
            Ok(()) => wr.flush().await,
            Err(e) => Err(e),
        };
        if let Err(source) = written {
            return task.io_error(source);
        }
    }
}

/// Most parts handed to one vectored write (as tokio's `write_all_buf`; Linux takes 1024).
const MAX_SLICES: usize = 64;

/// Writes a frame's parts in order, as many per call as the stream takes: a TCP socket
/// takes up to [`MAX_SLICES`] in one `writev`, TLS encrypts them into its records, and a
/// stream that cannot write vectored writes the first part (tokio's default). After a
/// partial write the rest goes in the next call: written bytes are advanced past in
/// `parts` (a `Bytes` moves its start; nothing is copied). Like `write_all`, an error
/// or a cancellation leaves an unknown part of the frame written.
async fn write_frame<W: AsyncWrite + Unpin>(wr: &mut W, parts: &mut [Bytes]) -> std::io::Result<()> {
    let mut first = 0;
    loop {
        // Parts written whole (or empty) are done with.
        while parts.get(first).is_some_and(Bytes::is_empty) {
            first += 1;
        }
        if first == parts.len() {
            return Ok(());
        }
        let written = {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (i, part) in parts[first..].iter().filter(|p| !p.is_empty()).take(MAX_SLICES).enumerate() {
                slices[i] = IoSlice::new(part);
                count = i + 1;
            }
            wr.write_vectored(&slices[..count]).await?
        };
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let mut left = written;
        for part in &mut parts[first..] {
            let n = left.min(part.len());
            part.advance(n);
            left -= n;
            if left == 0 {
                break;
            }
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

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// A stream that takes at most `max` bytes a call: from as many slices as it is
    /// given, or (`vectored: false`, tokio's default) from the first non-empty one only.
    struct Trickle {
        out: Vec<u8>,
        max: usize,
        vectored: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            if !self.vectored {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
                return self.poll_write(cx, first);
            }
            let mut n = 0;
            for b in bufs {
                let k = b.len().min(self.max - n);
                self.out.extend_from_slice(&b[..k]);
                n += k;
            }
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn frames_are_written_whole_through_partial_writes() {
        // More parts than one call takes, some empty, of many sizes.
        let parts: Vec<Bytes> =
            (0..150u32).map(|i| Bytes::from((0..(i * 7) % 23).map(|j| (i + j) as u8).collect::<Vec<u8>>())).collect();
        let whole = parts.concat();
        for vectored in [true, false] {
            for max in [1, 2, 7, 64, 1000, usize::MAX] {
                let mut wr = Trickle { out: Vec::new(), max, vectored };
                let mut frame = parts.clone();
                write_frame(&mut wr, &mut frame).await.unwrap();
                assert_eq!(wr.out, whole, "max {max}, vectored {vectored}");
                assert!(frame.iter().all(Bytes::is_empty), "every part advanced past");
            }
        }
    }

    #[tokio::test]
    async fn a_stream_taking_nothing_fails_the_write() {
        let mut wr = Trickle { out: Vec::new(), max: 0, vectored: true };
        let mut frame = vec![Bytes::new(), Bytes::from_static(b"abc")];
        let err = write_frame(&mut wr, &mut frame).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WriteZero);
        // Nothing to write is no error.
        write_frame(&mut wr, &mut [Bytes::new()]).await.unwrap();
    }
}
