//! The consumer's background fetcher: one Fetch in flight per leader, positions
//! reset per `auto.offset.reset`, leader moves followed through metadata.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ferrokafka_protocol::records::{Batch, DecodeOptions};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{fetch_response::PartitionData, ApiKey, FetchResponse};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use super::decode::{decode_all, Work};
use super::tasks::{FetchTasks, Planned};
use super::{Shared, State};
use crate::admin::{list_offsets, OffsetSpec};
use crate::cluster::{Cluster, ConnKind};
use crate::config::AutoOffsetReset;
use crate::error::Subject;
use crate::error::{ClientError, Result};
use crate::fetch::{aborted_transactions, fetch_request, with_session};
use crate::fetch_session::FetchSession;
use crate::metadata::{Metadata, TopicPartition};

/// Decoded data of one partition from one fetch.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) tp: TopicPartition,
    pub(crate) epoch: u64,
    pub(crate) fetch_offset: i64,
    pub(crate) next_offset: i64,
    pub(crate) batches: Vec<Batch>,
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) permits: usize,
}

/// What the fetcher sends to [`Consumer::poll`](super::Consumer::poll).
#[derive(Debug)]
pub(crate) enum Event {
    Data(Fetched),
    /// A partition recorded an error in the shared state.
    Error,
}

pub(crate) async fn run(
    cluster: Cluster,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Event>,
    budget: Arc<Semaphore>,
    budget_total: usize,
) {
    let mut inflight = FetchTasks::default();
    // One incremental fetch session per broker (KIP-227); one fetch in flight per
    // broker, so each task takes its broker's session and hands it back.
    let sessions: Arc<std::sync::Mutex<HashMap<i32, FetchSession>>> = Arc::default();
    let mut busy: HashSet<i32> = HashSet::new();
    let mut retry_at: Option<Instant> = None;
    loop {
        if shared.lock().closed {
            return;
        }
        cluster.refresh_if_stale();
        let waiting = retry_at.is_some_and(|t| t > Instant::now());
        if !waiting {
            retry_at = None;
            if let Err(e) = reset_positions(&cluster, &shared, &tx).await {
                tracing::debug!(error = %e, "offset reset failed; retrying");
                retry_at = Some(Instant::now() + cluster.retry_backoff());
            }
            let (plan, leaderless) = plan_fetches(&cluster.metadata(), &mut shared.lock(), &busy, Instant::now());
            if leaderless {
                retry_at = Some(Instant::now() + cluster.retry_backoff());
                cluster.request_refresh();
            }
            for (leader, parts) in plan {
                busy.insert(leader);
                let (c, sessions) = (cluster.clone(), sessions.clone());
                let tps = parts.iter().map(|(tp, _, _)| tp.clone()).collect();
                inflight.spawn(leader, tps, async move {
                    let answer = fetch_from(&c, leader, &parts, &sessions).await;
                    (parts, answer)
                });
            }
        }
        let retry_sleep = retry_at.map(tokio::time::sleep_until);
        tokio::select! {
            Some((leader, parts, result)) = inflight.next(), if !inflight.is_empty() => {
                // Freed whatever the task did, a panic included.
                busy.remove(&leader);
                if handle(&cluster, &shared, &tx, &budget, budget_total, (leader, parts), result).await {
                    retry_at = Some(Instant::now() + cluster.retry_backoff());
                }
            }
            _ = shared.wake.notified() => {}
            _ = async { if let Some(s) = retry_sleep { s.await } else { std::future::pending().await } } => {}
        }
    }
}

/// Picks, per broker without a fetch in flight, the partitions ready to fetch (and
/// marks them in flight): from the partition's preferred read replica while it is
/// known and not expired (KIP-392), else from its leader. Returns the plan and whether
/// some partition has no known leader. Decided without sockets; unit-tested.
pub(crate) fn plan_fetches(
    md: &Metadata,
    st: &mut State,
    busy: &HashSet<i32>,
    now: Instant,
) -> (HashMap<i32, Planned>, bool) {
    let mut plan: HashMap<i32, Planned> = HashMap::new();
    let mut leaderless = false;
    for (tp, p) in st.parts.iter_mut() {
        let Some(offset) = p.fetch_position else { continue };
        if p.paused || p.stopped || p.in_flight {
            continue;
        }
        if let Some((replica, until)) = p.read_replica {
            let usable = until > now && md.brokers.contains_key(&replica);
            if !usable {
                p.read_replica = None;
            } else if !busy.contains(&replica) {
                p.in_flight = true;
                plan.entry(replica).or_default().push((tp.clone(), offset, p.epoch));
                continue;
            } else {
                continue;
            }
        }
        match md.leader(tp) {
            Some(b) if !busy.contains(&b.id) => {
                p.in_flight = true;
                plan.entry(b.id).or_default().push((tp.clone(), offset, p.epoch));
            }
            Some(_) => {}
            None => leaderless = true,
        }
    }
    (plan, leaderless)
}

/// What a partition's error code in a Fetch answer means for it.
#[derive(Debug, PartialEq)]
pub(crate) enum PartitionVerdict {
    /// No error: decode the records (maybe none).
    Data,
    /// OFFSET_OUT_OF_RANGE with `auto.offset.reset=none`: stop with `OffsetOutOfRange`.
    OutOfRange,
    /// OFFSET_OUT_OF_RANGE otherwise: forget the position, reset it per the policy.
    Reset,
    /// A retriable error or a stale leader: back off, refresh metadata, fetch again.
    Retry,
    /// Anything else stops the partition with the broker's error.
    Fail(ResponseError),
}

/// Whether an answer from a follower sends the partition back to its leader instead of
/// applying `verdict`: any error does (OFFSET_OUT_OF_RANGE included: a follower behind
/// the leader is no reason to reset the position); data does not.
pub(crate) fn follower_refusal(verdict: &PartitionVerdict, from_follower: bool) -> bool {
    from_follower && *verdict != PartitionVerdict::Data
}

/// The decision for one partition's answer (no I/O: table-tested in `tasks.rs`).
pub(crate) fn partition_verdict(code: i16, reset: AutoOffsetReset) -> PartitionVerdict {
    match ResponseError::try_from_code(code) {
        None => PartitionVerdict::Data,
        Some(ResponseError::OffsetOutOfRange) if reset == AutoOffsetReset::None => PartitionVerdict::OutOfRange,
        Some(ResponseError::OffsetOutOfRange) => PartitionVerdict::Reset,
        Some(e)
            if crate::error::code_is_retriable(&e)
                || matches!(e, ResponseError::NotLeaderOrFollower | ResponseError::FencedLeaderEpoch) =>
        {
            PartitionVerdict::Retry
        }
        Some(e) => PartitionVerdict::Fail(e),
    }
}

async fn fetch_from(
    cluster: &Cluster,
    leader: i32,
    parts: &Planned,
    sessions: &std::sync::Mutex<HashMap<i32, FetchSession>>,
) -> Result<Vec<(TopicPartition, PartitionData)>> {
    let cfg = cluster.config();
    let conn = cluster.broker(leader, ConnKind::Fetch).await?;
    let version = conn.version(ApiKey::Fetch)?;
    let min_bytes = i32::try_from(cfg.fetch_min_bytes()).unwrap_or(i32::MAX);
    let wanted: Vec<(TopicPartition, i64)> = parts.iter().map(|(tp, offset, _)| (tp.clone(), *offset)).collect();
    let lock = || sessions.lock().unwrap_or_else(|p| p.into_inner());
    let sent = (version >= 7).then(|| lock().entry(leader).or_default().request(&wanted));
    let named = sent.as_ref().map_or(&wanted, |s| &s.partitions);
    let mut req = fetch_request(cfg, version, min_bytes, named.iter().map(|(tp, offset)| (tp, *offset)));
    if let Some(s) = &sent {
        with_session(&mut req, version, s);
    }
    let resp: FetchResponse = match conn.call_at(version, &req, Some(cfg.fetch_max_wait())).await {
        Ok(r) => r,
        Err(e) => {
            lock().entry(leader).or_default().failed();
            return Err(e);
        }
    };
    if let Some(sent) = sent {
        // A session error (evicted, wrong epoch) starts a new session; it goes back as
        // a retriable fetch failure, and the next fetch is full. No position moved.
        lock().entry(leader).or_default().answered(sent, resp.error_code, resp.session_id);
    }
    let codes = resp.responses.iter().flat_map(|t| &t.partitions).map(|p| p.error_code);
    conn.note_errors(crate::Api::FETCH, resp.error_code, codes);
    if let Some(error) = ResponseError::try_from_code(resp.error_code) {
        return Err(ClientError::broker(ApiKey::Fetch, error, Subject::Request));
    }
    let mut out = Vec::new();
    for t in resp.responses {
        let topic: Arc<str> = Arc::from(t.topic.0.as_str());
        for p in t.partitions {
            out.push((TopicPartition { topic: topic.clone(), partition: p.partition_index }, p));
        }
    }
    Ok(out)
}

/// Applies one fetch outcome; `true` asks the loop to back off (metadata is being refreshed).
async fn handle(
    cluster: &Cluster,
    shared: &Shared,
    tx: &mpsc::Sender<Event>,
    budget: &Semaphore,
    budget_total: usize,
    (node, planned): (i32, Planned),
    result: Result<Vec<(TopicPartition, PartitionData)>>,
) -> bool {
    let md = cluster.metadata();
    let data = match result {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(error = %e, node, "fetch failed");
            let mut st = shared.lock();
            for (tp, _, _) in &planned {
                if let Some(p) = st.parts.get_mut(tp) {
                    p.in_flight = false;
                    // A follower that fails sends its partitions back to the leader.
                    if p.read_replica.is_some_and(|(r, _)| r == node) {
                        p.read_replica = None;
                    }
                }
            }
            if e.needs_metadata_refresh() {
                cluster.request_refresh();
            }
            return true;
        }
    };
    let cfg = cluster.config();
    let opts = DecodeOptions { check_crcs: cfg.check_crcs(), ..DecodeOptions::default() };
    let mut backoff = false;
    let mut to_send = Vec::new();
    let mut work = Vec::new();
    {
        let mut st = shared.lock();
        // Partitions the broker did not answer for are simply fetched again.
        for (tp, _, _) in &planned {
            if let Some(p) = st.parts.get_mut(tp) {
                p.in_flight = false;
            }
        }
        for (tp, mut pd) in data {
            let Some(&(_, offset, epoch)) = planned.iter().find(|(t, _, _)| *t == tp) else { continue };
            let Some(part) = st.parts.get_mut(&tp) else { continue };
            tracing::trace!(%tp, offset, error = pd.error_code, hw = pd.high_watermark, bytes = pd.records.as_ref().map_or(0, |r| r.len()), "fetched");
            if part.epoch != epoch || part.fetch_position != Some(offset) {
                continue;
            }
            // Fetched from the partition's read replica (KIP-392), as planned, not from
            // its leader: decided by where the fetch went, not by today's metadata.
            let via_replica = part.read_replica.is_some_and(|(r, _)| r == node);
            let replica = pd.preferred_read_replica.0;
            if replica >= 0 && replica != node {
                // The leader names a replica to read from (and sends no data).
                tracing::debug!(%tp, replica, "fetching from the preferred read replica");
                part.read_replica = Some((replica, Instant::now() + cfg.metadata_max_age()));
                if !md.brokers.contains_key(&replica) {
                    // A broker our metadata does not know (yet): learn it, meanwhile
                    // back off instead of asking the leader again at once.
                    cluster.request_refresh();
                    backoff = true;
                }
                if pd.records.as_ref().is_none_or(|r| r.is_empty()) {
                    continue;
                }
            }
            let verdict = partition_verdict(pd.error_code, cfg.auto_offset_reset());
            if follower_refusal(&verdict, via_replica) {
                // Any error on a follower, OFFSET_OUT_OF_RANGE included (it may be
                // behind the leader), is not the partition's: back to the leader.
                tracing::debug!(%tp, node, error = pd.error_code, "follower refused; fetching from the leader");
                part.read_replica = None;
                backoff = true;
                continue;
            }
            match verdict {
                PartitionVerdict::Data => {}
                PartitionVerdict::OutOfRange => {
                    part.error = Some(ClientError::OffsetOutOfRange { partition: tp.clone(), offset });
                    part.stopped = true;
                    continue;
                }
                PartitionVerdict::Reset => {
                    tracing::info!(%tp, offset, "offset out of range; resetting per auto.offset.reset");
                    part.position = None;
                    part.fetch_position = None;
                    part.epoch += 1;
                    continue;
                }
                PartitionVerdict::Retry => {
                    backoff = true;
                    continue;
                }
                PartitionVerdict::Fail(e) => {
                    part.error = Some(ClientError::broker(ApiKey::Fetch, e, Subject::Partition(tp.clone())));
                    part.stopped = true;
                    continue;
                }
            }
            part.high_watermark = pd.high_watermark;
            part.last_stable_offset = pd.last_stable_offset;
            part.log_start_offset = pd.log_start_offset;
            let aborted = aborted_transactions(&mut pd);
            let records = pd.records.take().unwrap_or_default();
            work.push(Work {
                tp,
                offset,
                epoch,
                records,
                aborted,
                high_watermark: pd.high_watermark,
                last_stable_offset: pd.last_stable_offset,
            });
        }
    }
    // Decoding (and decompressing) happens without the lock `poll` takes, in parallel
    // across partitions when several hold compressed data.
    let decoded = decode_all(work, opts, cfg.isolation_level(), Some(&shared.buffers)).await;
    {
        let mut st = shared.lock();
        for (w, result) in decoded {
            let Some(part) = st.parts.get_mut(&w.tp) else { continue };
            // A seek (or a reset) while decoding makes this data stale.
            if part.epoch != w.epoch || part.fetch_position != Some(w.offset) {
                continue;
            }
            match result {
                Ok((batches, next, size)) => {
                    part.fetch_position = Some(next);
                    if next != w.offset {
                        to_send.push(Fetched {
                            tp: w.tp,
                            epoch: w.epoch,
                            fetch_offset: w.offset,
                            next_offset: next,
                            batches,
                            high_watermark: w.high_watermark,
                            last_stable_offset: w.last_stable_offset,
                            permits: size.min(budget_total),
                        });
                    }
                }
                Err(e) => {
                    part.error = Some(e);
                    part.stopped = true;
                }
            }
        }
    }
    let errored = shared.lock().parts.values().any(|p| p.error.is_some());
    for f in to_send {
        // Backpressure: wait until the application has consumed enough.
        if let Ok(permit) = budget.acquire_many(u32::try_from(f.permits).unwrap_or(u32::MAX)).await {
            permit.forget();
        }
        if tx.send(Event::Data(f)).await.is_err() {
            return false;
        }
    }
    if errored {
        let _ = tx.try_send(Event::Error);
    }
    if backoff {
        cluster.request_refresh();
    }
    backoff
}

/// Resolves positions of partitions that have none, per `auto.offset.reset`.
async fn reset_positions(cluster: &Cluster, shared: &Shared, tx: &mpsc::Sender<Event>) -> Result<()> {
    let pending: Vec<(TopicPartition, u64)> = {
        let st = shared.lock();
        st.parts
            .iter()
            .filter(|(_, p)| p.position.is_none() && !p.stopped)
            .map(|(tp, p)| (tp.clone(), p.epoch))
            .collect()
    };
    if pending.is_empty() {
        return Ok(());
    }
    let cfg = cluster.config();
    let spec = match cfg.auto_offset_reset() {
        AutoOffsetReset::Earliest => OffsetSpec::Earliest,
        AutoOffsetReset::Latest => OffsetSpec::Latest,
        AutoOffsetReset::None => {
            let mut st = shared.lock();
            for (tp, _) in &pending {
                if let Some(p) = st.parts.get_mut(tp) {
                    p.stopped = true;
                    p.error = Some(ClientError::NoOffsetForPartition { partition: tp.clone() });
                }
            }
            let _ = tx.try_send(Event::Error);
            return Ok(());
        }
    };
    let tps: Vec<TopicPartition> = pending.iter().map(|(tp, _)| tp.clone()).collect();
    let offsets = list_offsets(cluster, &tps, spec, cfg.isolation_level()).await?;
    let mut st = shared.lock();
    for (tp, epoch) in pending {
        if let (Some(p), Some(&o)) = (st.parts.get_mut(&tp), offsets.get(&tp)) {
            if p.epoch == epoch && p.position.is_none() {
                p.position = Some(o);
                p.fetch_position = Some(o);
            }
        }
    }
    Ok(())
}
