//! The fetch loop of a set of range reads: one task that sends one Fetch per leader
//! for every partition whose reader has room, and hands each partition's decoded
//! answer to its [`PartitionRecords`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferrokafka_protocol::records::DecodeOptions;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, FetchResponse};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::budget::{MemoryBudget, Reservation};
use super::records::{Chunk, PartitionRecords, TaskGuard};
use super::RangeOptions;
use crate::cluster::{Cluster, ConnKind};
use crate::config::IsolationLevel;
use crate::consumer::decode::{decode_all, Work};
use crate::error::Subject;
use crate::error::{ClientError, Result};
use crate::fetch::{aborted_transactions, fetch_request};
use crate::metadata::TopicPartition;

/// One range being fetched.
pub(crate) struct Slot {
    pub(crate) tp: TopicPartition,
    pub(crate) from: i64,
    pub(crate) until: i64,
    /// Next fetch offset.
    pub(crate) next: i64,
    pub(crate) tx: mpsc::Sender<Result<Chunk>>,
    last_progress: Instant,
    caught_up_since: Option<Instant>,
    retry_at: Option<Instant>,
    last_error: Option<ClientError>,
    log_start: i64,
    end: i64,
    /// An error to hand to the reader once its queued chunk was taken.
    failed: Option<ClientError>,
    done: bool,
    /// The replica the leader said to read from (KIP-392), and until when.
    read_replica: Option<(i32, Instant)>,
}

impl Slot {
    pub(crate) fn new(tp: TopicPartition, from: i64, until: i64, next: i64, tx: mpsc::Sender<Result<Chunk>>) -> Slot {
        Slot {
            tp,
            from,
            until,
            next,
            tx,
            last_progress: Instant::now(),
            caught_up_since: None,
            retry_at: None,
            last_error: None,
            log_start: -1,
            end: -1,
            failed: None,
            done: false,
            read_replica: None,
        }
    }

    fn unavailable(&self) -> ClientError {
        ClientError::RangeUnavailable {
            partition: self.tp.clone(),
            from: self.from,
            until: self.until,
            log_start: self.log_start,
            high_watermark: self.end,
        }
    }

    /// Ends the range with `e`, after the chunks already queued (never dropped).
    fn fail(&mut self, e: ClientError) {
        self.failed = Some(e);
        self.deliver_failure();
    }

    fn deliver_failure(&mut self) {
        if self.tx.capacity() == 0 {
            return; // the reader has not taken the last chunk yet
        }
        if let Some(e) = self.failed.take() {
            let _ = self.tx.try_send(Err(e));
            self.done = true;
        }
    }

    fn retry_later(&mut self, e: ClientError, backoff: Duration) {
        self.retry_at = Some(Instant::now() + backoff);
        self.last_error = Some(e);
    }
}

/// Starts the fetch loop for `slots`; the returned guard aborts it.
pub(crate) fn spawn(
    cluster: Cluster,
    slots: Vec<Slot>,
    opts: RangeOptions,
    budget: Arc<MemoryBudget>,
    wake: Arc<Notify>,
) -> Arc<TaskGuard> {
    let task = tokio::spawn(run(cluster, slots, opts, budget, wake));
    Arc::new(TaskGuard(task.abort_handle()))
}

/// Answers to collect: the broker's id and address, the partitions asked (slot index
/// and reservation), the pending answer.
type Pending = Vec<(
    (i32, String),
    Vec<(usize, Reservation)>,
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<FetchResponse>> + Send>>,
)>;

async fn run(cluster: Cluster, mut slots: Vec<Slot>, opts: RangeOptions, budget: Arc<MemoryBudget>, wake: Arc<Notify>) {
    let per_partition = cluster.config().max_partition_fetch_bytes().min(budget.limit());
    loop {
        let now = Instant::now();
        for s in slots.iter_mut() {
            if s.failed.is_some() {
                s.deliver_failure();
            } else if s.tx.capacity() == 0 {
                // Waiting for the reader, not for the broker: the poll timeout does not run.
                s.last_progress = now;
            } else if now.duration_since(s.last_progress) >= opts.poll_timeout {
                let e = s.last_error.take().unwrap_or_else(|| s.unavailable());
                s.fail(e);
            }
        }
        slots.retain(|s| !s.done && !s.tx.is_closed());
        if slots.is_empty() {
            return;
        }
        let ready: Vec<usize> = (0..slots.len())
            .filter(|&i| {
                let s = &slots[i];
                s.failed.is_none() && s.tx.capacity() > 0 && s.retry_at.is_none_or(|t| t <= now)
            })
            .collect();
        if ready.is_empty() {
            let retry = slots.iter().filter_map(|s| s.retry_at).min().unwrap_or(now + Duration::from_millis(100));
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep_until(retry.min(now + Duration::from_millis(100))) => {}
            }
            continue;
        }
        let mut planned: Vec<(usize, Reservation)> = Vec::with_capacity(ready.len());
        for &i in &ready {
            match budget.try_reserve(per_partition) {
                Some(r) => planned.push((i, r)),
                None => break,
            }
        }
        // Ranges waiting for room in the budget wait for other readers, not the broker.
        for &i in &ready[planned.len()..] {
            slots[i].last_progress = now;
        }
        if planned.is_empty() {
            tokio::select! {
                r = budget.reserve(per_partition) => planned.push((ready[0], r)),
                _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
            }
        }
        let pending = send_fetches(&cluster, &mut slots, planned, opts.catch_up).await;
        let mut refresh = false;
        for ((node, addr), parts, answer) in pending {
            match answer.await {
                Ok(resp) => refresh |= handle(&cluster, &mut slots, parts, resp, (node, &addr), opts).await,
                Err(e) => {
                    refresh |= e.needs_metadata_refresh();
                    for (i, _) in parts {
                        // A follower that fails sends its partitions back to the leader.
                        if slots[i].read_replica.take_if(|(r, _)| *r == node).is_some() {
                            slots[i].retry_later(e.clone(), cluster.retry_backoff());
                            continue;
                        }
                        retriable_or_fail(&mut slots[i], e.clone(), cluster.retry_backoff());
                    }
                }
            }
        }
        if refresh {
            let _ = cluster.refresh_metadata().await;
        }
    }
}

fn retriable_or_fail(slot: &mut Slot, e: ClientError, backoff: Duration) {
    if e.is_retriable() {
        slot.retry_later(e, backoff);
    } else {
        slot.fail(e);
    }
}

/// Groups the planned partitions by leader and puts one Fetch per leader on the wire.
async fn send_fetches(
    cluster: &Cluster,
    slots: &mut [Slot],
    planned: Vec<(usize, Reservation)>,
    catch_up: Duration,
) -> Pending {
    let mut by_leader: BTreeMap<i32, (crate::conn::Connection, Vec<(usize, Reservation)>)> = BTreeMap::new();
    let md = cluster.metadata();
    for (i, r) in planned {
        // The preferred read replica while it is known and fresh (KIP-392), else the leader.
        let replica =
            slots[i].read_replica.filter(|(id, until)| *until > Instant::now() && md.brokers.contains_key(id));
        slots[i].read_replica = replica;
        let target = match replica {
            Some((id, _)) => cluster.broker(id, ConnKind::Fetch).await.map(|c| (id, c)),
            None => cluster.leader(&slots[i].tp, ConnKind::Fetch).await,
        };
        let target = match target {
            Err(e) if replica.is_some() => {
                // The replica cannot be reached: back to the leader, whatever the error.
                slots[i].read_replica = None;
                slots[i].retry_later(e, cluster.retry_backoff());
                continue;
            }
            other => other,
        };
        match target {
            Ok((id, conn)) => by_leader.entry(id).or_insert_with(|| (conn, Vec::new())).1.push((i, r)),
            // The partition is not in this handle's metadata (yet): a refresh racing the
            // topic's tracking, or a topic being created. Retried like a log that has not
            // caught up, then reported.
            Err(e @ ClientError::UnknownTopicOrPartition { .. }) => {
                let now = Instant::now();
                let s = &mut slots[i];
                if now.duration_since(*s.caught_up_since.get_or_insert(now)) >= catch_up {
                    s.fail(e);
                } else {
                    s.retry_later(e, cluster.retry_backoff());
                }
            }
            Err(e) => retriable_or_fail(&mut slots[i], e, cluster.retry_backoff()),
        }
    }
    let cfg = cluster.config();
    let mut pending: Pending = Vec::with_capacity(by_leader.len());
    for (node, (conn, parts)) in by_leader {
        let sent = async {
            let version = conn.version(ApiKey::Fetch)?;
            let mut req = fetch_request(cfg, version, 1, parts.iter().map(|(i, _)| (&slots[*i].tp, slots[*i].next)));
            if version >= 3 {
                let total: usize = parts.iter().map(|(_, r)| r.bytes()).sum();
                req.max_bytes = i32::try_from(total).unwrap_or(i32::MAX);
            }
            conn.enqueue(version, &req, Some(cfg.fetch_max_wait())).await
        };
        match sent.await {
            Ok(answer) => pending.push(((node, conn.addr().to_owned()), parts, Box::pin(answer))),
            Err(e) => {
                for (i, _) in parts {
                    if slots[i].read_replica.take_if(|(r, _)| *r == node).is_some() {
                        slots[i].retry_later(e.clone(), cluster.retry_backoff());
                    } else {
                        retriable_or_fail(&mut slots[i], e.clone(), cluster.retry_backoff());
                    }
                }
            }
        }
    }
    pending
}

/// Hands each partition's answer to its reader; true when metadata needs a refresh.
async fn handle(
    cluster: &Cluster,
    slots: &mut [Slot],
    parts: Vec<(usize, Reservation)>,
    resp: FetchResponse,
    (node, addr): (i32, &str),
    opts: RangeOptions,
) -> bool {
    let cfg = cluster.config();
    let md = cluster.metadata();
    let isolation = cfg.isolation_level();
    // Counted as the consumer's fetcher counts: a request-level code once, else each
    // partition's.
    let request_code = resp.error_code;
    cluster.note_error(addr, crate::Api::FETCH, request_code);
    let mut answers: BTreeMap<(String, i32), _> = BTreeMap::new();
    for t in resp.responses {
        for p in t.partitions {
            answers.insert((t.topic.0.to_string(), p.partition_index), p);
        }
    }
    let mut refresh = false;
    let mut work = Vec::new();
    let mut held = Vec::new();
    for (i, reservation) in parts {
        let s = &mut slots[i];
        let Some(mut pd) = answers.remove(&(s.tp.topic.to_string(), s.tp.partition)) else { continue };
        // Sent to the range's read replica (not its leader): where the fetch went.
        let from_follower = s.read_replica.is_some_and(|(r, _)| r == node);
        let replica = pd.preferred_read_replica.0;
        if replica >= 0 && replica != node {
            // The leader names a replica in our rack to read from (KIP-392).
            s.read_replica = Some((replica, Instant::now() + cfg.metadata_max_age()));
            refresh |= !md.brokers.contains_key(&replica);
            if pd.records.as_ref().is_none_or(|r| r.is_empty()) {
                continue;
            }
        }
        if request_code == 0 {
            cluster.note_error(addr, crate::Api::FETCH, pd.error_code);
        }
        if from_follower && pd.error_code != 0 {
            // Any error on a follower, OFFSET_OUT_OF_RANGE included (it may be behind the
            // leader), sends the range back to the leader after the backoff; it is not
            // the range's error.
            tracing::debug!(tp = %s.tp, node, error = pd.error_code, "follower refused; reading from the leader");
            s.read_replica = None;
            let e = ClientError::broker(
                ApiKey::Fetch,
                ResponseError::try_from_code(pd.error_code).unwrap_or(ResponseError::Unknown(pd.error_code)),
                Subject::Partition(s.tp.clone()),
            );
            s.retry_later(e, cluster.retry_backoff());
            continue;
        }
        s.end = match isolation {
            IsolationLevel::ReadCommitted if pd.last_stable_offset >= 0 => pd.last_stable_offset,
            _ => pd.high_watermark,
        };
        s.log_start = pd.log_start_offset;
        if let Some(error) = ResponseError::try_from_code(pd.error_code) {
            // OFFSET_OUT_OF_RANGE while the same answer says the log holds the offset (a
            // broker mid leader change, or a fault): fetched again after the backoff, until
            // the poll timeout. Only a log that does not hold it makes the range unavailable.
            let held = s.log_start >= 0 && s.log_start <= s.next && s.next < s.end;
            let e = match error {
                ResponseError::OffsetOutOfRange if held => {
                    s.retry_later(s.unavailable(), cluster.retry_backoff());
                    continue;
                }
                ResponseError::OffsetOutOfRange => s.unavailable(),
                error => ClientError::broker(ApiKey::Fetch, error, Subject::Partition(s.tp.clone())),
            };
            refresh |= e.needs_metadata_refresh();
            retriable_or_fail(s, e, cluster.retry_backoff());
            continue;
        }
        if s.log_start >= 0 && s.next < s.log_start {
            s.fail(s.unavailable());
            continue;
        }
        s.retry_at = None;
        s.last_error = None;
        let aborted = aborted_transactions(&mut pd);
        work.push(Work {
            tp: s.tp.clone(),
            offset: s.next,
            epoch: i as u64,
            records: pd.records.unwrap_or_default(),
            aborted,
            high_watermark: pd.high_watermark,
            last_stable_offset: pd.last_stable_offset,
        });
        held.push(reservation);
    }
    let opts_decode = DecodeOptions { check_crcs: cfg.check_crcs(), ..DecodeOptions::default() };
    let now = Instant::now();
    for ((w, decoded), mut reservation) in decode_all(work, opts_decode, isolation, None).await.into_iter().zip(held) {
        let s = &mut slots[w.epoch as usize];
        let (batches, next, size) = match decoded {
            Ok(d) => d,
            Err(ClientError::Protocol { source, .. }) => {
                s.fail(ClientError::Protocol { broker: Some(addr.to_owned()), partition: Some(s.tp.clone()), source });
                continue;
            }
            Err(e) => {
                s.fail(e);
                continue;
            }
        };
        if batches.is_empty() && next == s.next {
            // Nothing new: caught up with a log that ends before the range does? On a
            // follower that may only mean the follower is behind: back to the leader.
            if s.end >= 0 && s.next >= s.end && s.end < s.until && s.read_replica.take().is_some() {
                // The catch-up wait runs on: a range past the log's end still ends after
                // `catch_up`, however the leader and the follower hand it around.
                s.caught_up_since.get_or_insert(now);
                continue;
            }
            if s.end >= 0 && s.next >= s.end && s.end < s.until {
                let since = *s.caught_up_since.get_or_insert(now);
                if now.duration_since(since) >= opts.catch_up {
                    s.fail(s.unavailable());
                }
            }
            continue;
        }
        // `size` counts the fetched bytes and what decompression made (`decode`).
        reservation.resize(size);
        let chunk = Chunk { batches, start: s.next, next, reservation: Some(reservation) };
        s.next = next;
        s.last_progress = now;
        s.caught_up_since = None;
        if s.tx.try_send(Ok(chunk)).is_err() {
            s.done = true; // the reader is gone (fetches are only sent for ranges with room)
        } else if next >= s.until {
            s.done = true; // dropping the sender ends the reader's data
        }
    }
    refresh
}

/// One range to start: where it is and, when a remainder continues it, the cursor
/// and the offset fetching resumes at.
pub(crate) struct Spec {
    pub(crate) tp: TopicPartition,
    pub(crate) from: i64,
    pub(crate) until: i64,
    pub(crate) resume: Option<(super::records::Cursor, i64)>,
}

/// Starts reading `specs` (validated), with the readers' cursors; one task for all.
pub(crate) fn start_readers(
    cluster: &Cluster,
    specs: Vec<Spec>,
    opts: RangeOptions,
    budget: Arc<MemoryBudget>,
) -> Vec<PartitionRecords> {
    let wake = Arc::new(Notify::new());
    let mut slots = Vec::new();
    let mut readers = Vec::with_capacity(specs.len());
    for Spec { tp, from, until, resume } in specs {
        let (cursor, next) = match resume {
            Some((c, next)) => (Some(c), next),
            None => (None, from),
        };
        let rx = if from < until && next < until {
            let (tx, rx) = mpsc::channel(1);
            slots.push(Slot::new(tp.clone(), from, until, next, tx));
            Some(rx)
        } else {
            None
        };
        let wake = Some(wake.clone());
        readers.push(PartitionRecords::new(tp, (from, until), opts.allow_non_consecutive, rx, cursor, wake, None));
    }
    if !slots.is_empty() {
        let guard = spawn(cluster.clone(), slots, opts, budget, wake);
        for r in &mut readers {
            r.set_guard(guard.clone());
        }
    }
    readers
}
