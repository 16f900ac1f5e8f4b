//! Membership state shared with the heartbeat task: the coordinator connection,
//! member id, generation, and the flags that ask `poll` to rejoin.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    leave_group_request::MemberIdentity, ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, LeaveGroupRequest, LeaveGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::{GroupConfig, GroupProtocol};
use super::kip848::{self, NextState, Signals};
use super::offsets::{CommitIdentity, OffsetAndMetadata};
use crate::cluster::{Cluster, ConnKind};
use crate::conn::Connection;
use crate::error::Subject;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// What the member knows about itself.
#[derive(Debug)]
pub(crate) struct MemberState {
    pub(crate) member_id: String,
    pub(crate) generation_id: i32,
    pub(crate) protocol_name: Option<String>,
    pub(crate) coordinator: Option<Connection>,
    /// In a generation with an assignment.
    pub(crate) joined: bool,
    /// `poll` must rejoin (rebalance announced, subscription changed, …).
    pub(crate) rejoin: bool,
    /// The member was kicked out (session or poll timeout): its partitions are lost, not revoked.
    pub(crate) lost: bool,
    /// An error the application must see (fenced static member, authorization, …).
    pub(crate) fatal: Option<ClientError>,
    pub(crate) last_poll: Instant,
    /// The consumer protocol's part (KIP-848); unused by classic members.
    pub(crate) next: NextState,
    /// Offsets this member committed or found committed, per partition (statistics).
    pub(crate) committed: std::collections::HashMap<TopicPartition, i64>,
}

/// Membership shared by the consumer and its heartbeat task.
#[derive(Debug)]
pub(crate) struct Membership {
    pub(crate) cluster: Cluster,
    pub(crate) cfg: GroupConfig,
    state: Arc<Mutex<MemberState>>,
    pub(crate) signals: Arc<Signals>,
    heartbeat: JoinHandle<()>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

fn gid(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_owned()))
}

impl Membership {
    pub(crate) fn new(cluster: Cluster, cfg: GroupConfig) -> Membership {
        let consumer_protocol = cfg.protocol == GroupProtocol::Consumer;
        let state = Arc::new(Mutex::new(MemberState {
            // KIP-1082: a consumer-protocol member makes its own id, kept for its life.
            member_id: if consumer_protocol { kip848::new_member_id() } else { String::new() },
            generation_id: -1,
            protocol_name: None,
            coordinator: None,
            joined: false,
            rejoin: true,
            lost: false,
            fatal: None,
            last_poll: Instant::now(),
            next: NextState::default(),
            committed: Default::default(),
        }));
        let signals = Arc::new(Signals::default());
        let heartbeat = if consumer_protocol {
            tokio::spawn(kip848::heartbeat_loop(cluster.clone(), cfg.clone(), state.clone(), signals.clone()))
        } else {
            tokio::spawn(heartbeat_loop(cluster.clone(), cfg.clone(), state.clone()))
        };
        Membership { cluster, cfg, state, signals, heartbeat }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, MemberState> {
        lock(&self.state)
    }

    /// Records offsets committed (or found committed) for the statistics.
    pub(crate) fn note_committed(&self, offsets: &[(TopicPartition, OffsetAndMetadata)]) {
        note_committed(&self.state, offsets);
    }

    /// The state, for a task that outlives a borrow (an asynchronous commit).
    pub(crate) fn state_handle(&self) -> Arc<Mutex<MemberState>> {
        self.state.clone()
    }

    /// The shared state itself (for calls that lock it around their I/O).
    pub(crate) fn state(&self) -> &Mutex<MemberState> {
        &self.state
    }

    /// The identity commits are made with.
    pub(crate) fn identity(&self) -> CommitIdentity {
        let st = self.lock();
        CommitIdentity {
            group_id: self.cfg.group_id.clone(),
            generation_id: st.generation_id,
            member_id: st.member_id.clone(),
            group_instance_id: self.cfg.group_instance_id.clone(),
        }
    }

    /// A live connection to the group coordinator, discovering it if needed.
    pub(crate) async fn coordinator(&self) -> Result<Connection> {
        if let Some(c) = self.lock().coordinator.clone().filter(|c| !c.is_closed()) {
            return Ok(c);
        }
        let c = find_coordinator(&self.cluster, &self.cfg.group_id).await?;
        self.lock().coordinator = Some(c.clone());
        Ok(c)
    }

    /// Forgets the coordinator (NOT_COORDINATOR and friends).
    pub(crate) fn coordinator_lost(&self) {
        self.lock().coordinator = None;
    }

    /// Sends LeaveGroup (dynamic members only) and resets the member id. A
    /// consumer-protocol member leaves with a heartbeat (a static one for a restart:
    /// its partitions wait for it until the session times out).
    pub(crate) async fn leave(&self) -> Result<()> {
        if self.cfg.protocol == GroupProtocol::Consumer {
            self.heartbeat.abort();
            // Also while joining (epoch 0): the broker may already count the member.
            if self.lock().next.subscription.is_none() {
                return Ok(());
            }
            let conn = self.coordinator().await?;
            kip848::send_leave(&conn, &self.cfg, &self.state).await?;
            let mut st = self.lock();
            st.generation_id = kip848::JOIN;
            st.joined = false;
            return Ok(());
        }
        let (member_id, joined) = {
            let st = self.lock();
            (st.member_id.clone(), st.joined)
        };
        self.heartbeat.abort();
        if self.cfg.group_instance_id.is_some() || member_id.is_empty() || !joined {
            return Ok(());
        }
        let conn = self.coordinator().await?;
        send_leave(&conn, &self.cfg, &member_id).await?;
        let mut st = self.lock();
        st.member_id.clear();
        st.generation_id = -1;
        st.joined = false;
        Ok(())
    }
}

pub(crate) fn note_committed(state: &Mutex<MemberState>, offsets: &[(TopicPartition, OffsetAndMetadata)]) {
    let mut st = lock(state);
    st.committed.extend(offsets.iter().map(|(tp, om)| (tp.clone(), om.offset)));
}

pub(crate) fn lock(state: &Mutex<MemberState>) -> MutexGuard<'_, MemberState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Asks any broker which broker coordinates `group_id`, retrying while none is
/// available yet (bounded by `request.timeout.ms`).
pub(crate) async fn find_coordinator(cluster: &Cluster, group_id: &str) -> Result<Connection> {
    find_coordinator_of(cluster, CoordinatorKey::Group(group_id)).await
}

/// What a coordinator is looked up for (FindCoordinator's key type).
#[derive(Clone, Copy, Debug)]
pub(crate) enum CoordinatorKey<'a> {
    /// A consumer group (key type 0).
    Group(&'a str),
    /// A transactional id (key type 1).
    Transaction(&'a str),
}

/// Finds the coordinator of `key` and connects to it.
pub(crate) async fn find_coordinator_of(cluster: &Cluster, key: CoordinatorKey<'_>) -> Result<Connection> {
    let (group_id, key_type) = match key {
        CoordinatorKey::Group(g) => (g, 0),
        CoordinatorKey::Transaction(t) => (t, 1),
    };
    let subject = || match key {
        CoordinatorKey::Group(g) => Subject::Group(g.to_owned()),
        CoordinatorKey::Transaction(t) => Subject::Transaction(t.to_owned()),
    };
    let deadline = Instant::now() + cluster.config().request_timeout();
    loop {
        let attempt = async {
            let conn = cluster.any_connection().await?;
            let version = conn.version(ApiKey::FindCoordinator)?;
            let mut req = FindCoordinatorRequest::default();
            if key_type != 0 && version < 1 {
                return Err(ClientError::Protocol {
                    broker: Some(conn.addr().to_owned()),
                    partition: None,
                    // Only FindCoordinator v1+ has a key type (brokers 0.11+).
                    source: ferrokafka_protocol::ProtocolError::NoCommonVersion {
                        api: ApiKey::FindCoordinator,
                        client: kafka_protocol::protocol::VersionRange { min: 1, max: 4 },
                        broker: Some(kafka_protocol::protocol::VersionRange { min: 0, max: 0 }),
                    },
                });
            }
            if version >= 1 {
                req.key_type = key_type;
            }
            if version >= 4 {
                req.coordinator_keys = vec![StrBytes::from_string(group_id.to_owned())];
            } else {
                req.key = StrBytes::from_string(group_id.to_owned());
            }
            let resp: FindCoordinatorResponse = conn.call_at(version, &req, None).await?;
            let (code, node) = match resp.coordinators.first() {
                Some(c) if version >= 4 => (c.error_code, c.node_id.0),
                _ => (resp.error_code, resp.node_id.0),
            };
            conn.note_error(crate::Api::FIND_COORDINATOR, code);
            if let Some(error) = ResponseError::try_from_code(code) {
                return Err(ClientError::broker(ApiKey::FindCoordinator, error, subject()));
            }
            if !cluster.metadata().brokers.contains_key(&node) {
                cluster.refresh_metadata().await?;
            }
            cluster.broker(node, ConnKind::Group).await
        };
        match attempt.await {
            Ok(c) => return Ok(c),
            Err(e) if e.is_retriable() && Instant::now() < deadline => {
                tracing::debug!(group = group_id, error = %e, "coordinator not found yet");
                tokio::time::sleep(cluster.retry_backoff()).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// `known` if it is still open, else the coordinator found again (and remembered).
pub(crate) async fn live_coordinator(
    cluster: &Cluster,
    group_id: &str,
    state: &Mutex<MemberState>,
    known: Option<Connection>,
) -> Result<Connection> {
    if let Some(c) = known.filter(|c| !c.is_closed()) {
        return Ok(c);
    }
    let c = find_coordinator(cluster, group_id).await?;
    lock(state).coordinator = Some(c.clone());
    Ok(c)
}

async fn send_leave(conn: &Connection, cfg: &GroupConfig, member_id: &str) -> Result<()> {
    let version = conn.version(ApiKey::LeaveGroup)?;
    let mut req = LeaveGroupRequest::default().with_group_id(gid(&cfg.group_id));
    if version >= 3 {
        req.members = vec![MemberIdentity::default()
            .with_member_id(StrBytes::from_string(member_id.to_owned()))
            .with_group_instance_id(cfg.group_instance_id.clone().map(StrBytes::from_string))];
    } else {
        req.member_id = StrBytes::from_string(member_id.to_owned());
    }
    let resp: LeaveGroupResponse = conn.call_at(version, &req, None).await?;
    match ResponseError::try_from_code(resp.error_code) {
        None | Some(ResponseError::UnknownMemberId) => Ok(()),
        Some(error) => Err(ClientError::broker(ApiKey::LeaveGroup, error, Subject::Group(cfg.group_id.clone()))),
    }
}

/// Heartbeats while the member is in a generation; turns broker answers into
/// rejoin/lost/fatal flags for `poll`, and leaves the group when the application
/// stops polling for longer than `max.poll.interval.ms`, as the Java client does.
async fn heartbeat_loop(cluster: Cluster, cfg: GroupConfig, state: Arc<Mutex<MemberState>>) {
    loop {
        tokio::time::sleep(cfg.heartbeat_interval).await;
        let (joined, member_id, generation, conn, idle) = {
            let st = lock(&state);
            (st.joined, st.member_id.clone(), st.generation_id, st.coordinator.clone(), st.last_poll.elapsed())
        };
        if !joined {
            continue;
        }
        if idle > cfg.max_poll_interval {
            tracing::warn!(group = %cfg.group_id, ?idle, "max.poll.interval.ms exceeded: leaving the group");
            if let Some(c) = conn.as_ref() {
                if cfg.group_instance_id.is_none() {
                    let _ = send_leave(c, &cfg, &member_id).await;
                }
            }
            let mut st = lock(&state);
            reset_member(&mut st, &cfg);
            continue;
        }
        let Ok(conn) = live_coordinator(&cluster, &cfg.group_id, &state, conn).await else { continue };
        let req = HeartbeatRequest::default()
            .with_group_id(gid(&cfg.group_id))
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(member_id.clone()));
        let req = match conn.version(ApiKey::Heartbeat) {
            Ok(v) if v >= 3 => req.with_group_instance_id(cfg.group_instance_id.clone().map(StrBytes::from_string)),
            _ => req,
        };
        let result: Result<HeartbeatResponse> = conn.call(&req).await;
        conn.note_error(crate::Api::HEARTBEAT, result.as_ref().map_or(0, |r| r.error_code));
        let mut st = lock(&state);
        if st.generation_id != generation {
            continue; // a rejoin happened meanwhile
        }
        let answer = result.map(|r| ResponseError::try_from_code(r.error_code));
        apply_heartbeat(&mut st, &cfg, heartbeat_action(answer.as_ref().map(|e| *e).map_err(|_| ())));
    }
}

/// What the member does after a heartbeat's answer (decided without sockets; unit-tested).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeartbeatAction {
    /// Nothing: the generation is current.
    Continue,
    /// The group rebalances: rejoin, keeping the member id and the partitions.
    Rejoin,
    /// The coordinator forgot this member (or its generation): the partitions are lost.
    ResetMember,
    /// Find the coordinator again (moved, unavailable, or the call failed).
    FindCoordinator,
    /// Stop: the error is not one a member recovers from.
    Fatal(ResponseError),
}

/// The action for a heartbeat answered with `answer` (`Err` when no answer came).
pub(crate) fn heartbeat_action(answer: std::result::Result<Option<ResponseError>, ()>) -> HeartbeatAction {
    match answer {
        Ok(None) => HeartbeatAction::Continue,
        Ok(Some(ResponseError::RebalanceInProgress)) => HeartbeatAction::Rejoin,
        Ok(Some(ResponseError::UnknownMemberId | ResponseError::IllegalGeneration)) => HeartbeatAction::ResetMember,
        Ok(Some(ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable)) | Err(()) => {
            HeartbeatAction::FindCoordinator
        }
        Ok(Some(error)) => HeartbeatAction::Fatal(error),
    }
}

/// Applies a heartbeat's action to the member state (flags only: the rebalance itself
/// runs in `poll` on the application's task).
pub(crate) fn apply_heartbeat(st: &mut MemberState, cfg: &GroupConfig, action: HeartbeatAction) {
    match action {
        HeartbeatAction::Continue => {}
        HeartbeatAction::Rejoin => st.rejoin = true,
        HeartbeatAction::ResetMember => reset_member(st, cfg),
        HeartbeatAction::FindCoordinator => st.coordinator = None,
        HeartbeatAction::Fatal(error) => {
            st.fatal = Some(ClientError::broker(ApiKey::Heartbeat, error, Subject::Group(cfg.group_id.clone())));
        }
    }
}

/// The coordinator no longer knows this member: its partitions are lost.
pub(crate) fn reset_member(st: &mut MemberState, cfg: &GroupConfig) {
    if cfg.group_instance_id.is_none() {
        st.member_id.clear();
    }
    st.generation_id = -1;
    st.joined = false;
    st.rejoin = true;
    st.lost = true;
}

/// How long a JoinGroup may take: the coordinator waits up to the rebalance timeout
/// (`max.poll.interval.ms`) for every member.
pub(crate) fn join_timeout(cfg: &GroupConfig) -> Duration {
    cfg.max_poll_interval + Duration::from_secs(5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientConfig;

    fn state() -> MemberState {
        MemberState {
            member_id: "m-1".into(),
            generation_id: 7,
            protocol_name: Some("range".into()),
            coordinator: None,
            joined: true,
            rejoin: false,
            lost: false,
            fatal: None,
            last_poll: Instant::now(),
            next: NextState::default(),
            committed: Default::default(),
        }
    }

    fn cfg(static_member: bool) -> GroupConfig {
        let mut pairs = vec![("bootstrap.servers", "b:9092"), ("group.id", "g")];
        if static_member {
            pairs.push(("group.instance.id", "i-1"));
        }
        GroupConfig::from_client(&ClientConfig::from_pairs(pairs).unwrap()).unwrap()
    }

    /// Every heartbeat answer, decided and applied without a socket.
    #[test]
    fn heartbeat_answers_decide_the_member_state() {
        use HeartbeatAction::*;
        let table = [
            (Ok(None), Continue),
            (Ok(Some(ResponseError::RebalanceInProgress)), Rejoin),
            (Ok(Some(ResponseError::UnknownMemberId)), ResetMember),
            (Ok(Some(ResponseError::IllegalGeneration)), ResetMember),
            (Ok(Some(ResponseError::NotCoordinator)), FindCoordinator),
            (Ok(Some(ResponseError::CoordinatorNotAvailable)), FindCoordinator),
            (Err(()), FindCoordinator),
            (Ok(Some(ResponseError::FencedInstanceId)), Fatal(ResponseError::FencedInstanceId)),
            (Ok(Some(ResponseError::GroupAuthorizationFailed)), Fatal(ResponseError::GroupAuthorizationFailed)),
        ];
        for (answer, want) in table {
            assert_eq!(heartbeat_action(answer), want, "{answer:?}");
        }

        let mut st = state();
        apply_heartbeat(&mut st, &cfg(false), Rejoin);
        assert!(st.rejoin && st.joined && !st.lost && st.member_id == "m-1", "a rebalance keeps the partitions");

        let mut st = state();
        apply_heartbeat(&mut st, &cfg(false), ResetMember);
        assert!(st.lost && st.rejoin && !st.joined && st.member_id.is_empty() && st.generation_id == -1);
        let mut st = state();
        apply_heartbeat(&mut st, &cfg(true), ResetMember);
        assert_eq!(st.member_id, "m-1", "a static member keeps its member id");

        let mut st = state();
        apply_heartbeat(&mut st, &cfg(false), Fatal(ResponseError::FencedInstanceId));
        let fatal = st.fatal.expect("fatal");
        assert!(
            matches!(fatal, ClientError::Broker { api: crate::Api::HEARTBEAT, subject: Subject::Group(ref g), .. } if g == "g")
        );
        assert!(!st.rejoin && !st.lost, "nothing else changes");
    }
}
