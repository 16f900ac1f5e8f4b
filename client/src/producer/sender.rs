//! The producer's sender task: takes sendable batches from the accumulator (one per
//! partition in flight, or up to `max.in.flight.requests.per.connection` ≤ 5 for the
//! idempotent producer), groups them per leader into Produce requests handed to that
//! leader's lane, and settles the answers: success, retry in order, or failure.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::idempotence;
use super::lanes::{Answers, Done, Group, Lanes};
use super::txn::{self, Phase};
use super::{Accumulator, SealedBatch, Shared};
use crate::cluster::Cluster;
use crate::error::{ClientError, Result, Subject};
use crate::metadata::{Metadata, TopicPartition};

/// Batches taken to send, with their partition's leader (`None`: unknown).
type Taken = Vec<(TopicPartition, SealedBatch, Option<i32>)>;

pub(crate) async fn run(cluster: Cluster, shared: Arc<Shared>) {
    let plain_idempotent = {
        let acc = shared.lock();
        acc.idempotent && acc.txn.is_none()
    };
    if plain_idempotent {
        idempotence::init(&cluster, &shared).await;
    }
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut lanes = Lanes::new(cluster.clone(), done_tx);
    let mut outstanding = 0usize;
    loop {
        cluster.refresh_if_stale();
        let md = cluster.metadata();
        let Drained { take, next: next_deadline, done, to_add, bump } = drain(&cluster, &md, &shared);
        if done && outstanding == 0 {
            return;
        }
        if bump && outstanding == 0 {
            // KIP-360: a batch failed for good; with nothing in flight any more, a new
            // epoch restarts every partition's sequence and sending goes on.
            idempotence::bump_epoch(&cluster, &shared).await;
            continue;
        }
        if !to_add.is_empty() {
            // Partitions join the transaction before their first batch is sent.
            txn::add_partitions(&cluster, &shared, to_add).await;
        }
        // Per leader, requests holding at most one batch per partition; a partition's
        // batches fill successive requests, so its order is the lane's order.
        let mut by_leader: HashMap<i32, Vec<Group>> = HashMap::new();
        let mut leaderless = Vec::new();
        let mut round: Option<(TopicPartition, usize)> = None;
        for (tp, b, leader) in take {
            // `take` lists a partition's batches one after another, in order.
            let k = match &mut round {
                Some((last, k)) if *last == tp => {
                    *k += 1;
                    *k
                }
                _ => {
                    round = Some((tp.clone(), 0));
                    0
                }
            };
            match leader {
                Some(l) => {
                    let groups = by_leader.entry(l).or_default();
                    if groups.len() <= k {
                        groups.resize_with(k + 1, Vec::new);
                    }
                    groups[k].push((tp, b));
                }
                None => leaderless.push((tp, b)),
            }
        }
        if !leaderless.is_empty() {
            let refreshed = cluster.refresh_metadata().await;
            let err = refreshed.err().unwrap_or(ClientError::broker(
                ApiKey::Metadata,
                ResponseError::LeaderNotAvailable,
                Subject::Request,
            ));
            requeue_or_fail(&cluster, &shared, leaderless, &err, Requeue { retriable: true, sent: false });
        }
        for (leader, groups) in by_leader {
            for group in groups {
                for (_, b) in &group {
                    shared.counters.batch_sent(b.data.len());
                }
                outstanding += 1;
                lanes.send(leader, group);
            }
        }
        let sleep = next_deadline.map(tokio::time::sleep_until);
        tokio::select! {
            Some((group, result)) = done_rx.recv(), if outstanding > 0 => {
                outstanding -= 1;
                complete(&cluster, &shared, group, result).await;
            }
            _ = shared.wake.notified() => {}
            _ = async { if let Some(s) = sleep { s.await } else { std::future::pending().await } } => {}
        }
    }
}

/// What one drain found.
struct Drained {
    /// The batches to send now.
    take: Taken,
    /// When a lingering batch or a backoff expires.
    next: Option<Instant>,
    /// The producer is closed and empty.
    done: bool,
    /// Partitions to add to the transaction before their batches are sent.
    to_add: Vec<TopicPartition>,
    /// The epoch must be bumped (KIP-360) before anything more is sent.
    bump: bool,
}

/// Takes the sendable batches of every partition, in partition order, with their
/// leader in `md`.
fn drain(cluster: &Cluster, md: &Metadata, shared: &Shared) -> Drained {
    let cfg = cluster.config();
    let linger = cfg.linger();
    let now = Instant::now();
    let mut guard = shared.lock();
    let acc: &mut Accumulator = &mut guard;
    // A transaction being aborted (or that must be) fails what it has not sent; an
    // open one sends a partition's batches once the partition is in it.
    let txn_fail = acc.txn.as_ref().and_then(|t| match (t.phase, &t.error) {
        (Phase::Aborting, _) => Some(ClientError::TransactionAborted),
        (Phase::Abortable, Some(cause)) => Some(ClientError::TransactionAbortable { cause: Box::new(cause.clone()) }),
        _ => None,
    });
    let mut to_add = Vec::new();
    let transactional = acc.txn.is_some();
    // Java's rule: with senders blocked on buffer.memory, waiting out linger.ms only
    // keeps them blocked.
    let hurry = acc.flushing > 0 || acc.closed || acc.blocked > 0;
    let limit = if acc.idempotent { cfg.max_in_flight_requests_per_connection().min(5) } else { 1 };
    let (producer, fatal) = (acc.producer, acc.fatal.clone());
    let waiting_for_id = acc.idempotent && (producer.is_none() || acc.bump_epoch) && fatal.is_none();
    let mut take = Vec::new();
    let mut next: Option<Instant> = None;
    let mut failed = Settled::default();
    let mut earliest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
    for (tp, q) in acc.parts.iter_mut() {
        if let Some(fatal) = fatal.as_ref().or(txn_fail.as_ref()) {
            if let Some(f) = q.seal_open() {
                // Records that could not be encoded: their deliveries failed.
                failed.failed += f.0;
                failed.add(f.0, f.1);
            }
            for b in q.ready.drain(..) {
                fail(&mut failed, b, fatal.clone());
            }
            continue;
        }
        if let Some(t) = &acc.txn {
            if !t.added.contains(tp) {
                if q.open.is_some() || !q.ready.is_empty() {
                    to_add.push(tp.clone());
                }
                continue;
            }
        }
        if q.recovering {
            if q.in_flight > 0 {
                continue;
            }
            q.recovering = false;
        }
        if let Some(t) = q.not_before.filter(|t| *t > now) {
            earliest(t);
            continue;
        }
        let leader = md.leader(tp).map(|l| l.id);
        if q.in_flight > 0 && leader != q.sent_to {
            continue;
        }
        let limit = if q.resending.is_some() { 1 } else { limit };
        while q.in_flight < limit && !waiting_for_id {
            if q.ready.is_empty() {
                match q.open.as_ref().map(|b| b.created + linger) {
                    Some(due) if hurry || due <= now => {
                        if let Some(f) = q.seal_open() {
                            failed.failed += f.0;
                            failed.add(f.0, f.1);
                        }
                    }
                    Some(due) => earliest(due),
                    None => {}
                }
            }
            let Some(mut b) = q.ready.pop_front() else { break };
            if let Some(id) = producer {
                if let Err(e) = idempotence::stamp(q, &mut b, id, transactional) {
                    fail(
                        &mut failed,
                        b,
                        ClientError::ProducerFatal { partition: Some(tp.clone()), cause: Box::new(e) },
                    );
                    continue;
                }
            }
            q.in_flight += 1;
            q.sent_to = leader;
            take.push((tp.clone(), b, leader));
        }
    }
    failed.release(shared, acc);
    let done = acc.closed && acc.pending == 0;
    if !take.is_empty() {
        // The queue gauges follow batches out (and back in `Settled::release`), not
        // every wake-up of the sender.
        shared.counters.queue(acc.pending, acc.buffered);
    }
    Drained { take, next, done, to_add, bump: acc.bump_epoch && acc.fatal.is_none() }
}

async fn complete(cluster: &Cluster, shared: &Shared, group: Group, result: Result<Answers>) {
    let acks = match result {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(error = %e, "produce request failed");
            let retriable = e.is_retriable();
            if e.needs_metadata_refresh() {
                let _ = cluster.refresh_metadata().await;
            }
            requeue_or_fail(cluster, shared, group, &e, Requeue { retriable, sent: true });
            return;
        }
    };
    let idempotent = shared.lock().idempotent;
    let mut retry = Vec::new();
    let mut refresh = false;
    let mut done = Settled::default();
    for (tp, batch) in group {
        let (code, base) = match acks.as_ref().map(|a| a.get(&tp).copied()) {
            None => (0, -1),
            Some(Some(answer)) => answer,
            // The answer left the partition out: no code the broker sent.
            Some(None) => (ResponseError::UnknownServerError.code(), -1),
        };
        let error = ResponseError::try_from_code(code);
        let verdict = produce_verdict(error, idempotent);
        if !matches!((verdict, error), (Verdict::Retry { .. }, Some(_))) {
            // Settled here; a batch to retry leaves the in-flight count in
            // `requeue_or_fail`, once (counting it twice let later batches overtake it:
            // a resend the broker no longer recognised, refused out of order forever).
            if let Some(q) = shared.lock().parts.get_mut(&tp) {
                q.in_flight = q.in_flight.saturating_sub(1);
            }
        }
        match (verdict, error) {
            (Verdict::Delivered, _) | (_, None) => {
                if let Some(q) = shared.lock().parts.get_mut(&tp) {
                    q.acknowledged(batch.ordinal);
                }
                shared.counters.delivered(batch.delivery.len(), batch.created.elapsed());
                done.add(batch.delivery.len(), batch.reserved);
                batch.retire().succeed(tp.partition, base);
            }
            (Verdict::Retry { refresh: r }, Some(error)) => {
                refresh |= r;
                retry.push((tp, batch, error));
            }
            (Verdict::Fail, Some(error)) => {
                let error = ClientError::broker(ApiKey::Produce, error, Subject::Partition(tp.clone()));
                let mut acc = shared.lock();
                if acc.idempotent {
                    turn_fatal(&mut acc, &tp, &error);
                }
                drop(acc);
                fail(&mut done, batch, error);
            }
        }
    }
    done.release(shared, &mut shared.lock());
    if refresh {
        let _ = cluster.refresh_metadata().await;
    }
    for (tp, batch, error) in retry {
        let error = ClientError::broker(ApiKey::Produce, error, Subject::Partition(tp.clone()));
        requeue_or_fail(cluster, shared, vec![(tp, batch)], &error, Requeue { retriable: true, sent: true });
    }
}

/// What a partition's Produce answer means for its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Stored (or stored before: DUPLICATE_SEQUENCE_NUMBER, an earlier attempt whose
    /// answer was lost).
    Delivered,
    /// Send again after `retry.backoff.ms`; `refresh`: the leader may have moved.
    Retry { refresh: bool },
    /// Fails for good (and stops an idempotent producer).
    Fail,
}

/// The verdict for a batch answered with `error` (decided without sockets; unit-tested).
/// OUT_OF_ORDER_SEQUENCE_NUMBER is retried by the idempotent producer: a batch sent
/// before this one failed and is resent first (`recovering` holds the partition).
pub(crate) fn produce_verdict(error: Option<ResponseError>, idempotent: bool) -> Verdict {
    match error {
        None | Some(ResponseError::DuplicateSequenceNumber) => Verdict::Delivered,
        Some(e)
            if crate::error::code_is_retriable(&e) || (idempotent && e == ResponseError::OutOfOrderSequenceNumber) =>
        {
            let refresh = matches!(
                e,
                ResponseError::NotLeaderOrFollower
                    | ResponseError::UnknownTopicOrPartition
                    | ResponseError::LeaderNotAvailable
            );
            Verdict::Retry { refresh }
        }
        Some(_) => Verdict::Fail,
    }
}

/// Puts batches back at their place in their queues, to be sent after
/// `retry.backoff.ms`, or fails them when out of retries or past `delivery.timeout.ms`.
/// How a group of batches comes back: whether its error is retriable, and whether the
/// batches went out (a retry, for the statistics) or found no leader to go to.
struct Requeue {
    retriable: bool,
    sent: bool,
}

fn requeue_or_fail(cluster: &Cluster, shared: &Shared, group: Group, last: &ClientError, how: Requeue) {
    let Requeue { retriable, sent } = how;
    let cfg = cluster.config();
    let mut failed = Settled::default();
    {
        let mut acc = shared.lock();
        for (tp, mut batch) in group {
            batch.attempts += 1;
            let expired = batch.created.elapsed() >= cfg.delivery_timeout();
            let give_up = !retriable || expired || batch.attempts > cfg.retries() || acc.fatal.is_some();
            let q = acc.parts.entry(tp.clone()).or_default();
            q.in_flight = q.in_flight.saturating_sub(1);
            if !give_up {
                q.resend_from(batch.ordinal);
                if sent {
                    shared.counters.retried();
                }
                q.not_before = Some(Instant::now() + cfg.retry_backoff());
                q.recovering = true;
                q.requeue(batch);
                continue;
            }
            if acc.idempotent && acc.fatal.is_none() {
                turn_fatal(&mut acc, &tp, last);
            }
            let error = ClientError::Delivery { partition: tp, attempts: batch.attempts, last: Box::new(last.clone()) };
            fail(&mut failed, batch, error);
        }
        failed.release(shared, &mut acc);
    }
    shared.wake.notify_one();
}

/// A batch of an idempotent producer failed for good: later batches of the partition
/// would leave a gap in its sequence, which the broker refuses. The producer bumps its
/// epoch (KIP-360) once nothing is in flight, which restarts every sequence; a
/// transactional producer makes its transaction abortable instead (its abort bumps
/// the epoch). Fencing and authorization errors stop the producer for good.
fn turn_fatal(acc: &mut Accumulator, tp: &TopicPartition, cause: &ClientError) {
    if acc.txn.is_some() {
        txn::batch_failed(acc, cause);
        return;
    }
    let code = cause.code().map(|c| c.response());
    if !code.is_some_and(|e| txn::txn_error_kind(e) == txn::TxnErrorKind::Fatal) {
        tracing::debug!(%tp, error = %cause, "batch failed for good: bumping the producer epoch");
        acc.bump_epoch = true;
        return;
    }
    let fatal = ClientError::ProducerFatal { partition: Some(tp.clone()), cause: Box::new(cause.clone()) };
    tracing::warn!(error = %fatal, "idempotent producer stops");
    acc.fatal = Some(fatal);
}

fn fail(settled: &mut Settled, batch: SealedBatch, error: ClientError) {
    settled.failed += batch.delivery.len();
    settled.add(batch.delivery.len(), batch.reserved);
    batch.retire().fail(error);
}

/// Records (and their `buffer.memory` bytes) delivered or failed for good.
#[derive(Default)]
struct Settled {
    records: usize,
    bytes: usize,
    /// Of `records`, those failed for good.
    failed: usize,
}

impl Settled {
    fn add(&mut self, records: usize, bytes: usize) {
        self.records += records;
        self.bytes += bytes;
    }

    /// Takes them off the accumulator's counts, waking flushers and blocked senders.
    fn release(self, shared: &Shared, acc: &mut Accumulator) {
        acc.pending = acc.pending.saturating_sub(self.records);
        acc.buffered = acc.buffered.saturating_sub(self.bytes);
        if self.records > 0 {
            shared.counters.queue(acc.pending, acc.buffered);
        }
        if self.failed > 0 {
            shared.counters.failed(self.failed);
        }
        if self.bytes > 0 {
            shared.space.notify_waiters();
        }
        if acc.pending == 0 {
            shared.drained.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of Produce answer, decided without a socket.
    #[test]
    fn produce_answers_decide_each_batch() {
        use ResponseError as E;
        let table = [
            (None, false, Verdict::Delivered),
            (Some(E::DuplicateSequenceNumber), true, Verdict::Delivered),
            (Some(E::NotLeaderOrFollower), false, Verdict::Retry { refresh: true }),
            (Some(E::UnknownTopicOrPartition), false, Verdict::Retry { refresh: true }),
            (Some(E::LeaderNotAvailable), true, Verdict::Retry { refresh: true }),
            (Some(E::RequestTimedOut), false, Verdict::Retry { refresh: false }),
            (Some(E::NotEnoughReplicas), false, Verdict::Retry { refresh: false }),
            (Some(E::OutOfOrderSequenceNumber), true, Verdict::Retry { refresh: false }),
            (Some(E::OutOfOrderSequenceNumber), false, Verdict::Fail),
            (Some(E::MessageTooLarge), false, Verdict::Fail),
            (Some(E::TopicAuthorizationFailed), true, Verdict::Fail),
            (Some(E::InvalidRecord), false, Verdict::Fail),
        ];
        for (error, idempotent, want) in table {
            assert_eq!(produce_verdict(error, idempotent), want, "{error:?} idempotent={idempotent}");
        }
    }
}
