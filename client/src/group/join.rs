//! Joining a generation: JoinGroup, the leader's assignment, SyncGroup.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    join_group_request::JoinGroupRequestProtocol, sync_group_request::SyncGroupRequestAssignment, ApiKey, GroupId,
    JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::assignor::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription, Assignor, MemberAssignment,
    RebalanceProtocol,
};
use super::coordinator::{join_timeout, reset_member, Membership};
use crate::error::Subject;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// Version of the ConsumerProtocol subscription we send: v1 carries owned partitions
/// (needed by sticky and cooperative assignors) and is read by every peer (older
/// readers ignore the trailing fields).
const SUBSCRIPTION_VERSION: i16 = 1;
/// Assignments are written at v0, which every client reads.
const ASSIGNMENT_VERSION: i16 = 0;

/// Picks the rebalance protocol all configured assignors support (cooperative if they all do).
pub(crate) fn common_protocol(assignors: &[Arc<dyn Assignor>]) -> RebalanceProtocol {
    if assignors.iter().all(|a| a.supported_protocols().contains(&RebalanceProtocol::Cooperative)) {
        RebalanceProtocol::Cooperative
    } else {
        RebalanceProtocol::Eager
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn group_error(api: ApiKey, error: ResponseError, group: &str) -> ClientError {
    ClientError::broker(api, error, Subject::Group(group.to_owned()))
}

/// What one JoinGroup/SyncGroup round produced.
pub(crate) struct Joined {
    pub(crate) partitions: Vec<TopicPartition>,
    pub(crate) generation_id: i32,
}

impl Membership {
    /// Runs JoinGroup and SyncGroup until this member has an assignment in a new
    /// generation, retrying what the protocol says is retriable.
    pub(crate) async fn join(
        &self,
        topics: &[String],
        owned: &[TopicPartition],
        assignors: &[Arc<dyn Assignor>],
    ) -> Result<Joined> {
        let deadline = Instant::now() + join_timeout(&self.cfg);
        let group = self.cfg.group_id.clone();
        loop {
            if Instant::now() >= deadline {
                return Err(ClientError::JoinTimeout { group, after: join_timeout(&self.cfg) });
            }
            match self.join_once(topics, owned, assignors).await {
                Ok(Some(j)) => return Ok(j),
                Ok(None) => {}
                Err(e) if e.is_retriable() => {
                    tracing::debug!(group = %group, error = %e, "join failed; retrying");
                    if e.needs_metadata_refresh() {
                        self.coordinator_lost();
                    }
                    tokio::time::sleep(self.cluster.retry_backoff()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One round; `Ok(None)` means "go again now" (e.g. MEMBER_ID_REQUIRED).
    async fn join_once(
        &self,
        topics: &[String],
        owned: &[TopicPartition],
        assignors: &[Arc<dyn Assignor>],
    ) -> Result<Option<Joined>> {
        let conn = self.coordinator().await?;
        let group = &self.cfg.group_id;
        let (member_id, generation) = {
            let st = self.lock();
            (st.member_id.clone(), st.generation_id)
        };
        let mut protocols = Vec::new();
        for a in assignors {
            let user_data = a.subscription_user_data(topics, owned, generation);
            let metadata = encode_subscription(topics, user_data, owned, generation, None, SUBSCRIPTION_VERSION)?;
            protocols.push(JoinGroupRequestProtocol::default().with_name(s(a.name())).with_metadata(metadata));
        }
        let version = conn.version(ApiKey::JoinGroup)?;
        let mut req = JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(i32::try_from(self.cfg.session_timeout.as_millis()).unwrap_or(i32::MAX))
            .with_member_id(s(&member_id))
            .with_protocol_type(s("consumer"))
            .with_protocols(protocols);
        if version >= 1 {
            req.rebalance_timeout_ms = i32::try_from(self.cfg.max_poll_interval.as_millis()).unwrap_or(i32::MAX);
        }
        if version >= 5 {
            req.group_instance_id = self.cfg.group_instance_id.clone().map(StrBytes::from_string);
        }
        let resp: JoinGroupResponse = conn.call_at(version, &req, Some(join_timeout(&self.cfg))).await?;
        conn.note_error(crate::Api::JOIN_GROUP, resp.error_code);
        match round_step(Phase::Join, resp.error_code) {
            RoundStep::Proceed => {}
            RoundStep::AdoptMemberId => {
                self.lock().member_id = resp.member_id.to_string();
                return Ok(None);
            }
            RoundStep::ResetMember => {
                reset_member(&mut self.lock(), &self.cfg);
                return Ok(None);
            }
            RoundStep::Retry => return Ok(None),
            RoundStep::CoordinatorLost(e) => {
                self.coordinator_lost();
                return Err(group_error(ApiKey::JoinGroup, e, group));
            }
            RoundStep::Fail(e) => return Err(group_error(ApiKey::JoinGroup, e, group)),
        }
        let me = resp.member_id.to_string();
        let protocol_name = resp.protocol_name.as_ref().map(|p| p.to_string()).unwrap_or_default();
        {
            let mut st = self.lock();
            st.member_id = me.clone();
            st.generation_id = resp.generation_id;
            st.protocol_name = Some(protocol_name.clone());
        }
        let assignor = assignors.iter().find(|a| a.name() == protocol_name).ok_or_else(|| ClientError::Assignor {
            assignor: protocol_name.clone(),
            reason: format!("group {group} chose it, but it is not configured here"),
        })?;
        let assignments =
            if resp.leader.as_str() == me { self.lead(&resp, assignor.as_ref()).await? } else { Vec::new() };
        let version = conn.version(ApiKey::SyncGroup)?;
        let mut sync = SyncGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(resp.generation_id)
            .with_member_id(s(&me))
            .with_assignments(assignments);
        if version >= 3 {
            sync.group_instance_id = self.cfg.group_instance_id.clone().map(StrBytes::from_string);
        }
        if version >= 5 {
            sync.protocol_type = Some(s("consumer"));
            sync.protocol_name = Some(s(&protocol_name));
        }
        let sresp: SyncGroupResponse = conn.call_at(version, &sync, Some(join_timeout(&self.cfg))).await?;
        conn.note_error(crate::Api::SYNC_GROUP, sresp.error_code);
        match round_step(Phase::Sync, sresp.error_code) {
            RoundStep::Proceed => {}
            RoundStep::Retry | RoundStep::AdoptMemberId => return Ok(None),
            RoundStep::ResetMember => {
                reset_member(&mut self.lock(), &self.cfg);
                return Ok(None);
            }
            RoundStep::CoordinatorLost(e) => {
                self.coordinator_lost();
                return Err(group_error(ApiKey::SyncGroup, e, group));
            }
            RoundStep::Fail(e) => return Err(group_error(ApiKey::SyncGroup, e, group)),
        }
        let assignment = decode_assignment(sresp.assignment)?;
        assignor.on_assignment(&assignment, resp.generation_id);
        let mut st = self.lock();
        st.joined = true;
        st.rejoin = false;
        st.lost = false;
        Ok(Some(Joined { partitions: assignment.partitions, generation_id: resp.generation_id }))
    }

    /// The leader's part: decode every member's subscription, look up partition
    /// counts, run the assignor, encode the result for SyncGroup.
    async fn lead(&self, resp: &JoinGroupResponse, assignor: &dyn Assignor) -> Result<Vec<SyncGroupRequestAssignment>> {
        let mut members = Vec::new();
        for m in &resp.members {
            let instance = m.group_instance_id.as_ref().map(|i| i.to_string());
            members.push(decode_subscription(m.member_id.as_str(), instance.as_deref(), m.metadata.clone())?);
        }
        let topics: BTreeSet<&str> = members.iter().flat_map(|m| m.topics.iter().map(String::as_str)).collect();
        self.cluster.track_topics(topics.iter().copied());
        let md = self.cluster.refresh_metadata().await?;
        let partitions_per_topic: BTreeMap<String, i32> =
            topics.iter().filter_map(|t| md.partition_count(t).map(|n| ((*t).to_owned(), n as i32))).collect();
        let result = assignor.assign(&partitions_per_topic, &members)?;
        let mut out = Vec::new();
        for m in &members {
            let a = result.get(&m.member_id).cloned().unwrap_or_else(MemberAssignment::default);
            let bytes: Bytes = encode_assignment(&a, ASSIGNMENT_VERSION)?;
            out.push(SyncGroupRequestAssignment::default().with_member_id(s(&m.member_id)).with_assignment(bytes));
        }
        tracing::debug!(group = %self.cfg.group_id, members = members.len(), "computed assignment as leader");
        Ok(out)
    }
}

/// Which answer of a join round.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Phase {
    Join,
    Sync,
}

/// What an answer's error code means for the member (decided without I/O, as the
/// Java client's JoinGroup and SyncGroup response handlers do).
#[derive(Debug, PartialEq)]
pub(crate) enum RoundStep {
    /// No error: go on with the round.
    Proceed,
    /// MEMBER_ID_REQUIRED (KIP-394): join again with the member id the broker gave.
    AdoptMemberId,
    /// The member id or generation is no longer valid: forget both and join again.
    ResetMember,
    /// The group is rebalancing (or the coordinator is loading): join again.
    Retry,
    /// The coordinator moved: find it again, then join.
    CoordinatorLost(ResponseError),
    /// Anything else ends the round with the broker's error.
    Fail(ResponseError),
}

pub(crate) fn round_step(phase: Phase, code: i16) -> RoundStep {
    let Some(error) = ResponseError::try_from_code(code) else { return RoundStep::Proceed };
    match (phase, error) {
        (Phase::Join, ResponseError::MemberIdRequired) => RoundStep::AdoptMemberId,
        (_, ResponseError::UnknownMemberId | ResponseError::IllegalGeneration) => RoundStep::ResetMember,
        (_, ResponseError::RebalanceInProgress | ResponseError::CoordinatorLoadInProgress) => RoundStep::Retry,
        (_, e @ (ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable)) => {
            RoundStep::CoordinatorLost(e)
        }
        (_, e) => RoundStep::Fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_answer_code_leads_to_its_step() {
        use RoundStep::*;
        let code = |e: ResponseError| e.code();
        let table = [
            (Phase::Join, 0, Proceed),
            (Phase::Sync, 0, Proceed),
            (Phase::Join, code(ResponseError::MemberIdRequired), AdoptMemberId),
            (Phase::Sync, code(ResponseError::MemberIdRequired), Fail(ResponseError::MemberIdRequired)),
            (Phase::Join, code(ResponseError::UnknownMemberId), ResetMember),
            (Phase::Sync, code(ResponseError::UnknownMemberId), ResetMember),
            (Phase::Join, code(ResponseError::IllegalGeneration), ResetMember),
            (Phase::Sync, code(ResponseError::IllegalGeneration), ResetMember),
            (Phase::Join, code(ResponseError::RebalanceInProgress), Retry),
            (Phase::Sync, code(ResponseError::RebalanceInProgress), Retry),
            (Phase::Join, code(ResponseError::CoordinatorLoadInProgress), Retry),
            (Phase::Join, code(ResponseError::NotCoordinator), CoordinatorLost(ResponseError::NotCoordinator)),
            (
                Phase::Sync,
                code(ResponseError::CoordinatorNotAvailable),
                CoordinatorLost(ResponseError::CoordinatorNotAvailable),
            ),
            (Phase::Join, code(ResponseError::FencedInstanceId), Fail(ResponseError::FencedInstanceId)),
            (Phase::Join, code(ResponseError::GroupMaxSizeReached), Fail(ResponseError::GroupMaxSizeReached)),
            (Phase::Sync, code(ResponseError::GroupAuthorizationFailed), Fail(ResponseError::GroupAuthorizationFailed)),
            (Phase::Join, 999, Fail(ResponseError::Unknown(999))),
        ];
        for (phase, code, want) in table {
            assert_eq!(round_step(phase, code), want, "{phase:?} code {code}");
        }
    }
}
