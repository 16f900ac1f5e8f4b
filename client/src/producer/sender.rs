//! The producer's sender task: drains ready batches per leader into Produce
//! requests, one batch in flight per partition, and retries retriable failures.

use std::collections::HashMap;
use std::sync::Arc;

use ferrokafka_protocol::messages::{
    produce_request::{PartitionProduceData, TopicProduceData},
    ApiKey, ProduceRequest, ProduceResponse, TopicName,
};
use ferrokafka_protocol::protocol::StrBytes;
use ferrokafka_protocol::ResponseError;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Accumulator, SealedBatch, Shared};
use crate::cluster::{Cluster, ConnKind};
use crate::config::Acks;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

type Group = Vec<(TopicPartition, SealedBatch)>;
/// Per partition: error code and base offset.
type Acks2 = HashMap<TopicPartition, (i16, i64)>;

pub(crate) async fn run(cluster: Cluster, shared: Arc<Shared>) {
    let mut inflight: JoinSet<(Group, Result<Option<Acks2>>)> = JoinSet::new();
    loop {
        cluster.refresh_if_stale();
        let (take, next_deadline, done) = drain(&cluster, &shared);
        if done && inflight.is_empty() {
            return;
        }
        let md = cluster.metadata();
        let mut by_leader: HashMap<i32, Group> = HashMap::new();
        let mut leaderless = Vec::new();
        for (tp, b) in take {
            match md.leader(&tp) {
                Some(l) => by_leader.entry(l.id).or_default().push((tp, b)),
                None => leaderless.push((tp, b)),
            }
        }
        if !leaderless.is_empty() {
            let refreshed = cluster.refresh_metadata().await;
            let err = refreshed.err().map(|e| e.to_string()).unwrap_or_else(|| "partition has no leader".into());
            requeue_or_fail(&cluster, &shared, leaderless, &err, true);
        }
        for (leader, group) in by_leader {
            let c = cluster.clone();
            inflight.spawn(async move {
                let r = produce_to(&c, leader, &group).await;
                (group, r)
            });
        }
        let sleep = next_deadline.map(tokio::time::sleep_until);
        tokio::select! {
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Ok((group, result)) = done {
                    complete(&cluster, &shared, group, result).await;
                }
            }
            _ = shared.wake.notified() => {}
            _ = async { if let Some(s) = sleep { s.await } else { std::future::pending().await } } => {}
        }
    }
}

/// Takes one sendable batch per idle partition. Returns them, the next time a
/// lingering batch or a backoff expires, and whether the producer is closed and empty.
fn drain(cluster: &Cluster, shared: &Shared) -> (Group, Option<Instant>, bool) {
    let linger = cluster.config().linger();
    let now = Instant::now();
    let mut acc = shared.lock();
    // Java's rule: with senders blocked on buffer.memory, waiting out linger.ms only
    // keeps them blocked.
    let hurry = acc.flushing > 0 || acc.closed || acc.blocked > 0;
    let mut take = Vec::new();
    let mut next: Option<Instant> = None;
    let mut failed = Settled::default();
    let mut earliest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
    for (tp, q) in acc.parts.iter_mut() {
        if q.in_flight {
            continue;
        }
        if let Some(t) = q.not_before.filter(|t| *t > now) {
            earliest(t);
            continue;
        }
        if q.ready.is_empty() {
            let due = q.open.as_ref().map(|b| b.created + linger);
            match due {
                Some(due) if hurry || due <= now => {
                    if let Some(b) = q.open.take() {
                        let (records, bytes) = (b.delivery.len(), b.reserved);
                        match b.seal() {
                            Some(s) => q.ready.push_back(s),
                            None => failed.add(records, bytes),
                        }
                    }
                }
                Some(due) => earliest(due),
                None => {}
            }
        }
        if let Some(b) = q.ready.pop_front() {
            q.in_flight = true;
            take.push((tp.clone(), b));
        }
    }
    failed.release(shared, &mut acc);
    let done = acc.closed && acc.pending == 0;
    (take, next, done)
}

async fn produce_to(cluster: &Cluster, leader: i32, group: &Group) -> Result<Option<Acks2>> {
    let cfg = cluster.config();
    let conn = cluster.broker(leader, ConnKind::General).await?;
    let version = conn.version(ApiKey::Produce)?;
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (tp, b) in group {
        let p = PartitionProduceData::default().with_index(tp.partition).with_records(Some(b.data.clone()));
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
            Some(t) => t.partition_data.push(p),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(tp.topic.to_string())))
                    .with_partition_data(vec![p]),
            ),
        }
    }
    let acks: i16 = match cfg.acks() {
        Acks::None => 0,
        Acks::Leader => 1,
        Acks::All => -1,
    };
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(i32::try_from(cfg.request_timeout().as_millis()).unwrap_or(i32::MAX))
        .with_topic_data(topics);
    if acks == 0 {
        conn.send_only(ApiKey::Produce, version, &req).await?;
        return Ok(None);
    }
    let resp: ProduceResponse = conn.call_at(ApiKey::Produce, version, &req, None).await?;
    let mut out = HashMap::new();
    for t in &resp.responses {
        for p in &t.partition_responses {
            out.insert(TopicPartition::new(t.name.0.as_str(), p.index), (p.error_code, p.base_offset));
        }
    }
    Ok(Some(out))
}

async fn complete(cluster: &Cluster, shared: &Shared, group: Group, result: Result<Option<Acks2>>) {
    let acks = match result {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(error = %e, "produce request failed");
            let retriable = e.is_retriable();
            if e.needs_metadata_refresh() {
                let _ = cluster.refresh_metadata().await;
            }
            requeue_or_fail(cluster, shared, group, &e.to_string(), retriable);
            return;
        }
    };
    let mut retry = Vec::new();
    let mut refresh = false;
    let mut done = Settled::default();
    for (tp, batch) in group {
        let (code, base) = match &acks {
            None => (0, -1),
            Some(a) => a.get(&tp).copied().unwrap_or((ResponseError::UnknownServerError.code(), -1)),
        };
        if let Some(q) = shared.lock().parts.get_mut(&tp) {
            q.in_flight = false;
        }
        match ResponseError::try_from_code(code) {
            None => {
                done.add(batch.delivery.len(), batch.reserved);
                batch.delivery.succeed(tp.partition, base);
            }
            Some(error) if error.is_retriable() => {
                refresh |= matches!(
                    error,
                    ResponseError::NotLeaderOrFollower
                        | ResponseError::UnknownTopicOrPartition
                        | ResponseError::LeaderNotAvailable
                );
                retry.push((tp, batch, error));
            }
            Some(error) => {
                let (topic, partition) = (tp.topic.clone(), tp.partition);
                fail(&mut done, batch, move || ClientError::Broker {
                    api: ApiKey::Produce,
                    error,
                    topic: topic.to_string(),
                    partition,
                });
            }
        }
    }
    done.release(shared, &mut shared.lock());
    if refresh {
        let _ = cluster.refresh_metadata().await;
    }
    for (tp, batch, error) in retry {
        requeue_or_fail(cluster, shared, vec![(tp, batch)], &error.to_string(), true);
    }
}

/// Puts batches back at the front of their queues (keeping order) after
/// `retry.backoff.ms`, or fails them when out of retries or past `delivery.timeout.ms`.
fn requeue_or_fail(cluster: &Cluster, shared: &Shared, group: Group, reason: &str, retriable: bool) {
    let cfg = cluster.config();
    let mut failed = Settled::default();
    {
        let mut acc = shared.lock();
        for (tp, mut batch) in group {
            batch.attempts += 1;
            let expired = batch.created.elapsed() >= cfg.delivery_timeout();
            let q = acc.parts.entry(tp.clone()).or_default();
            q.in_flight = false;
            if retriable && !expired && batch.attempts <= cfg.retries() {
                q.not_before = Some(Instant::now() + cfg.retry_backoff());
                q.ready.push_front(batch);
            } else {
                let (attempts, topic, partition, reason) =
                    (batch.attempts, tp.topic.clone(), tp.partition, reason.to_owned());
                fail(&mut failed, batch, move || ClientError::Delivery {
                    topic: topic.to_string(),
                    partition,
                    attempts,
                    retriable,
                    reason: reason.clone(),
                });
            }
        }
        failed.release(shared, &mut acc);
    }
    shared.wake.notify_one();
}

fn fail(settled: &mut Settled, batch: SealedBatch, error: impl Fn() -> ClientError + Send + Sync + 'static) {
    settled.add(batch.delivery.len(), batch.reserved);
    batch.delivery.fail(Arc::new(error));
}

/// Records (and their `buffer.memory` bytes) delivered or failed for good.
#[derive(Default)]
struct Settled {
    records: usize,
    bytes: usize,
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
        if self.bytes > 0 {
            shared.space.notify_waiters();
        }
        if acc.pending == 0 {
            shared.drained.notify_waiters();
        }
    }
}
