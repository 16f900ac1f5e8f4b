//! The consumer group protocol of KIP-848 (`group.protocol=consumer`, Kafka 4.0+).
//!
//! One request, ConsumerGroupHeartbeat, carries the member's subscription and the
//! partitions it owns, and brings back its member epoch and its target assignment,
//! which the broker computes (`group.remote.assignor`). Next to the classic protocol
//! (`join.rs`): no JoinGroup/SyncGroup rounds, no leader, no stop-the-world; a member
//! gives up only the partitions that move.
//!
//! Who does what:
//! - the heartbeat task ([`heartbeat_loop`]) sends a heartbeat at the interval the
//!   broker gives, and at once when `poll` asks (an acknowledgement, a new
//!   subscription). It writes what it learns into the shared `MemberState`: the epoch,
//!   a pending target, "lost", a fatal error;
//! - `poll`, on the application's task, reconciles (`GroupConsumer::reconcile`):
//!   revokes what left the target (listener, auto-commit), assigns what joined it
//!   (committed offsets, listener), records the new owned set and wakes the task to
//!   acknowledge it.
//!
//! What an answer means is decided by a pure function ([`heartbeat_step`]), tested
//! without sockets, as is the request a state produces ([`heartbeat_request`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as OwnedTopic;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;

use super::config::GroupConfig;
use super::coordinator::{live_coordinator, lock, MemberState};
use crate::cluster::Cluster;
use crate::conn::Connection;
use crate::error::{ClientError, Result, Subject};
use crate::metadata::TopicId;

/// Member epoch to join (or rejoin) the group.
pub(crate) const JOIN: i32 = 0;
/// Member epoch to leave the group.
const LEAVE: i32 = -1;
/// Member epoch of a static member leaving for a restart: the broker keeps its
/// assignment until the session times out.
const LEAVE_STATIC: i32 = -2;

/// Error codes after the codec's table (Kafka 3.7+).
pub(crate) const FENCED_MEMBER_EPOCH: i16 = 110;
/// An offset commit made with an older member epoch: retried with the current one.
pub(crate) const STALE_MEMBER_EPOCH: i16 = 113;

/// What the member subscribes to, as the protocol carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Subscribed {
    /// Topic names.
    Topics(Vec<String>),
    /// A regular expression the broker evaluates (RE2/J), anchored at both ends.
    Pattern(String),
}

/// A member's partitions as the protocol names them: by topic id.
pub(crate) type IdAssignment = Vec<(TopicId, Vec<i32>)>;

/// The consumer protocol's part of the member state.
#[derive(Debug, Default)]
pub(crate) struct NextState {
    pub(crate) subscription: Option<Subscribed>,
    /// A target assignment from the broker that `poll` has not reconciled yet.
    pub(crate) target: Option<IdAssignment>,
    /// The partitions this member owns (reconciled), as reported to the broker.
    pub(crate) owned: IdAssignment,
    /// Bumped whenever `owned` changes; the next heartbeat carries `owned` while the
    /// broker has not answered one that carried this version.
    pub(crate) owned_version: u64,
    pub(crate) acked_version: u64,
    /// The next heartbeat carries every field (join, error, new subscription).
    pub(crate) full: bool,
    /// Bumped whenever `full` is asked for: an answer clears `full` only if no one
    /// asked again while its heartbeat was in flight.
    pub(crate) full_gen: u64,
    /// The heartbeat interval the broker asked for.
    pub(crate) interval: Option<Duration>,
    /// Stopped on a fatal error; `poll` starts over after reporting it.
    pub(crate) halted: bool,
    /// When unknown topic ids of a target may be looked up again.
    pub(crate) lookup_after: Option<tokio::time::Instant>,
}

impl NextState {
    /// The next heartbeat must carry every field.
    pub(crate) fn want_full(&mut self) {
        self.full = true;
        self.full_gen += 1;
    }
}

/// What a heartbeat carried, for its answer to acknowledge.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sent {
    /// `Some(full_gen)` when it was a full heartbeat.
    pub(crate) full: Option<u64>,
    /// The owned-set version it carried (or that the broker already had).
    pub(crate) owned: u64,
}

/// What a heartbeat from `st` at `epoch` carries.
pub(crate) fn sent(st: &MemberState, epoch: i32) -> Sent {
    Sent { full: (st.next.full || epoch == JOIN).then_some(st.next.full_gen), owned: st.next.owned_version }
}

/// Wake-ups between `poll` and the heartbeat task.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// Heartbeat now (an acknowledgement or a new subscription is waiting).
    pub(crate) heartbeat_now: Notify,
    /// An answer changed the state (a target, an error): a waiting `poll` looks again.
    pub(crate) answered: Notify,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// The heartbeat a member in state `st` sends with `epoch`. Fields that did not change
/// since the last answered heartbeat are left null, as the protocol allows; a join
/// (epoch 0) or a heartbeat after an error carries all of them.
pub(crate) fn heartbeat_request(
    st: &MemberState,
    cfg: &GroupConfig,
    rack: Option<&str>,
    epoch: i32,
) -> ConsumerGroupHeartbeatRequest {
    let next = &st.next;
    let mut req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(&cfg.group_id)))
        .with_member_id(s(&st.member_id))
        .with_member_epoch(epoch);
    if epoch < 0 {
        return req;
    }
    // The instance id goes with every heartbeat, as the Java client sends it.
    req.instance_id = cfg.group_instance_id.as_deref().map(s);
    let full = next.full || epoch == JOIN;
    if full {
        req.rack_id = rack.map(s);
        req.rebalance_timeout_ms = millis(cfg.max_poll_interval);
        req.server_assignor = cfg.remote_assignor.as_deref().map(s);
        // Names and regex travel together, one of them empty, as librdkafka sends them
        // (librdkafka's mock cluster refuses one without the other).
        let (names, regex) = match &next.subscription {
            Some(Subscribed::Topics(t)) => (t.clone(), String::new()),
            Some(Subscribed::Pattern(p)) => (Vec::new(), p.clone()),
            None => (Vec::new(), String::new()),
        };
        req.subscribed_topic_names = Some(names.iter().map(|n| TopicName(s(n))).collect());
        req.subscribed_topic_regex = Some(s(&regex));
    }
    if epoch == JOIN {
        // A (re)joining member owns nothing as far as the broker is concerned.
        req.topic_partitions = Some(Vec::new());
    } else if full || next.owned_version != next.acked_version {
        req.topic_partitions = Some(
            next.owned
                .iter()
                .map(|(id, parts)| {
                    OwnedTopic::default().with_topic_id(uuid::Uuid::from_bytes(id.0)).with_partitions(parts.clone())
                })
                .collect(),
        );
    }
    req
}

/// What a heartbeat's answer means for the member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Answered: take the epoch, the interval and any new target.
    Apply,
    /// FENCED_MEMBER_EPOCH or UNKNOWN_MEMBER_ID: the partitions are lost; join again
    /// with epoch 0 (and the same member id).
    Rejoin,
    /// The coordinator moved, is unavailable, or did not answer: find it again and
    /// send a full heartbeat after the backoff.
    FindCoordinator,
    /// COORDINATOR_LOAD_IN_PROGRESS or another retriable code: the same heartbeat
    /// after the backoff.
    Retry,
    /// UNSUPPORTED_VERSION: the broker does not serve KIP-848 groups.
    Unsupported,
    /// Anything else (UNRELEASED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED,
    /// UNSUPPORTED_ASSIGNOR, INVALID_REQUEST, INVALID_REGULAR_EXPRESSION,
    /// authorization): the application sees it.
    Fatal(i16),
}

/// The step for an answer with error `code` (`Err` when no answer came), as the Java
/// client's `ConsumerMembershipManager` decides it.
pub(crate) fn heartbeat_step(code: std::result::Result<i16, ()>) -> Step {
    let Ok(code) = code else { return Step::FindCoordinator };
    match code {
        0 => Step::Apply,
        FENCED_MEMBER_EPOCH => Step::Rejoin,
        c if c == ResponseError::UnknownMemberId.code() => Step::Rejoin,
        c if c == ResponseError::NotCoordinator.code() || c == ResponseError::CoordinatorNotAvailable.code() => {
            Step::FindCoordinator
        }
        c if c == ResponseError::UnsupportedVersion.code() => Step::Unsupported,
        // COORDINATOR_LOAD_IN_PROGRESS and any other retriable code (REQUEST_TIMED_OUT, …).
        c if ResponseError::try_from_code(c).is_some_and(|e| crate::error::code_is_retriable(&e)) => Step::Retry,
        c => Step::Fatal(c),
    }
}

/// Applies an answered heartbeat: epoch, interval, new target.
pub(crate) fn apply_answer(st: &mut MemberState, resp: &ConsumerGroupHeartbeatResponse, sent: Sent) {
    if let Some(id) = resp.member_id.as_ref().filter(|id| !id.is_empty()) {
        st.member_id = id.to_string();
    }
    st.generation_id = resp.member_epoch;
    if sent.full == Some(st.next.full_gen) {
        st.next.full = false;
    }
    st.next.acked_version = st.next.acked_version.max(sent.owned);
    if resp.heartbeat_interval_ms > 0 {
        st.next.interval = Some(Duration::from_millis(resp.heartbeat_interval_ms as u64));
    }
    if let Some(a) = &resp.assignment {
        let target =
            a.topic_partitions.iter().map(|t| (TopicId(*t.topic_id.as_bytes()), t.partitions.clone())).collect();
        st.next.target = Some(target);
    }
}

/// The member was fenced (or forgotten): what it owns is lost, and it joins again.
pub(crate) fn fenced(st: &mut MemberState) {
    st.generation_id = JOIN;
    st.joined = false;
    st.lost = true;
    st.next.owned.clear();
    st.next.owned_version += 1;
    st.next.target = None;
    st.next.want_full();
}

/// A fresh member id (KIP-1082: the client makes it), printed as Kafka prints a `Uuid`.
pub(crate) fn new_member_id() -> String {
    let mut raw = [0u8; 16];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw).is_err() {
        raw.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    TopicId(raw).to_string()
}

fn group_error(cfg: &GroupConfig, code: i16, message: Option<&StrBytes>) -> ClientError {
    let error = ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code));
    if let Some(m) = message {
        tracing::warn!(group = %cfg.group_id, code, message = %m.as_str(), "consumer group heartbeat refused");
    }
    ClientError::broker(ApiKey::ConsumerGroupHeartbeat, error, Subject::Group(cfg.group_id.clone()))
}

fn unsupported(cfg: &GroupConfig, conn: &Connection) -> ClientError {
    ClientError::GroupProtocolUnsupported { group: cfg.group_id.clone(), broker: conn.addr().to_owned() }
}

/// Heartbeats while the member has a subscription; see the module's description.
pub(crate) async fn heartbeat_loop(
    cluster: Cluster,
    cfg: GroupConfig,
    state: Arc<Mutex<MemberState>>,
    signals: Arc<Signals>,
) {
    let rack = cluster.config().client_rack().map(str::to_owned);
    let idle_wait = Duration::from_secs(3600);
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = signals.heartbeat_now.notified() => {}
        }
        let (active, epoch, idle, conn) = {
            let st = lock(&state);
            (
                st.next.subscription.is_some() && !st.next.halted,
                st.generation_id.max(JOIN),
                st.last_poll.elapsed(),
                st.coordinator.clone(),
            )
        };
        if !active {
            wait = idle_wait;
            continue;
        }
        if idle > cfg.max_poll_interval {
            // As the Java client: a member that stops polling leaves, and joins again
            // when the application polls.
            if epoch > JOIN {
                tracing::warn!(group = %cfg.group_id, ?idle, "max.poll.interval.ms exceeded: leaving the group");
                if let Some(c) = conn.filter(|c| !c.is_closed()) {
                    let _ = send_leave(&c, &cfg, &state).await;
                }
                fenced(&mut lock(&state));
                signals.answered.notify_one();
            }
            wait = cfg.max_poll_interval.min(Duration::from_secs(1));
            continue;
        }
        let conn = match live_coordinator(&cluster, &cfg.group_id, &state, conn).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(group = %cfg.group_id, error = %e, "no coordinator for the heartbeat");
                wait = cluster.retry_backoff();
                continue;
            }
        };
        let Ok(version) = conn.version(ApiKey::ConsumerGroupHeartbeat) else {
            halt(&state, &signals, unsupported(&cfg, &conn));
            wait = idle_wait;
            continue;
        };
        let (req, sent) = {
            let st = lock(&state);
            (heartbeat_request(&st, &cfg, rack.as_deref(), epoch), sent(&st, epoch))
        };
        let result: Result<ConsumerGroupHeartbeatResponse> = conn.call_at(version, &req, None).await;
        conn.note_error(crate::Api::CONSUMER_GROUP_HEARTBEAT, result.as_ref().map_or(0, |r| r.error_code));
        let step = heartbeat_step(result.as_ref().map(|r| r.error_code).map_err(|_| ()));
        let mut st = lock(&state);
        wait = cluster.retry_backoff();
        match (step, &result) {
            (Step::Apply, Ok(resp)) => {
                apply_answer(&mut st, resp, sent);
                wait = st.next.interval.unwrap_or(cfg.heartbeat_interval);
            }
            (Step::Rejoin, _) => {
                // Joins again after the backoff (a broker that keeps fencing is not spun on).
                tracing::info!(group = %cfg.group_id, epoch, "fenced: the partitions are lost; joining again");
                fenced(&mut st);
            }
            (Step::FindCoordinator, _) => {
                st.coordinator = None;
                st.next.want_full();
            }
            (Step::Unsupported, _) => {
                drop(st);
                halt(&state, &signals, unsupported(&cfg, &conn));
                wait = idle_wait;
                continue;
            }
            (Step::Fatal(code), Ok(resp)) => {
                let e = group_error(&cfg, code, resp.error_message.as_ref());
                drop(st);
                halt(&state, &signals, e);
                wait = idle_wait;
                continue;
            }
            (Step::Retry, _) | (Step::Apply | Step::Fatal(_), Err(_)) => {}
        }
        drop(st);
        signals.answered.notify_one();
    }
}

/// Stops on a fatal error. The member is out of the group as the broker sees it (no
/// more heartbeats): what it owns is lost, as the Java client's fatal state says.
fn halt(state: &Mutex<MemberState>, signals: &Signals, e: ClientError) {
    let mut st = lock(state);
    fenced(&mut st);
    st.fatal = Some(e);
    st.next.halted = true;
    drop(st);
    signals.answered.notify_one();
}

/// Leaves the group: epoch -1, or -2 for a static member (its partitions wait for it
/// until the session times out, KIP-848's static membership).
pub(crate) async fn send_leave(conn: &Connection, cfg: &GroupConfig, state: &Mutex<MemberState>) -> Result<()> {
    let epoch = if cfg.group_instance_id.is_some() { LEAVE_STATIC } else { LEAVE };
    let req = {
        let st = lock(state);
        let mut req = heartbeat_request(&st, cfg, None, epoch);
        req.instance_id = cfg.group_instance_id.as_deref().map(s);
        req
    };
    let version = conn.version(ApiKey::ConsumerGroupHeartbeat).map_err(|_| unsupported(cfg, conn))?;
    let resp: ConsumerGroupHeartbeatResponse = conn.call_at(version, &req, None).await?;
    match resp.error_code {
        0 => Ok(()),
        c if c == FENCED_MEMBER_EPOCH || c == ResponseError::UnknownMemberId.code() => Ok(()),
        c => Err(group_error(cfg, c, resp.error_message.as_ref())),
    }
}

#[cfg(test)]
#[path = "kip848_tests.rs"]
mod tests;
