//! The transactional producer's calls, as in the Java client's `KafkaProducer`:
//! `init_transactions`, `begin_transaction`, `send_offsets_to_transaction`,
//! `commit_transaction`, `abort_transaction` (the state machine is in [`super::txn`]).

use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey, GroupId, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::txn::{self, Next, Phase};
use super::Producer;
use crate::error::{ClientError, Result};
use crate::group::coordinator::find_coordinator;
use crate::group::{CommitIdentity, OffsetAndMetadata};
use crate::metadata::TopicPartition;

fn not_transactional(operation: &'static str) -> ClientError {
    ClientError::TransactionState { operation, state: "the producer has no transactional.id" }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

impl Producer {
    /// Java's `initTransactions()`: gets the producer id and a new epoch for
    /// `transactional.id` from its coordinator. Any older producer with the same id is
    /// fenced and its open transaction aborted. Call once, before anything else.
    pub async fn init_transactions(&self) -> Result<()> {
        self.transition("init_transactions", &[Phase::Uninitialized], None)?;
        txn::init_producer_id(&self.cluster, &self.shared).await?;
        self.set_phase(Phase::Ready);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Java's `beginTransaction()`: records sent from now on belong to a new
    /// transaction (nothing is sent to the cluster yet).
    pub fn begin_transaction(&self) -> Result<()> {
        self.transition("begin_transaction", &[Phase::Ready], Some(Phase::InTransaction))
    }

    /// Java's `sendOffsetsToTransaction(offsets, groupMetadata)` (KIP-447): the consumed
    /// offsets are committed for the group when the transaction commits, and never
    /// if it aborts. `group` comes from [`crate::group::GroupConsumer::group_metadata`]
    /// (generation and member id fence a zombie member) or, for an `assign`-mode
    /// reader, [`CommitIdentity::standalone`].
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
        group: &CommitIdentity,
    ) -> Result<()> {
        self.transition("send_offsets_to_transaction", &[Phase::InTransaction], None)?;
        let (cluster, shared) = (&self.cluster, &*self.shared);
        let mut budget = txn::Budget::new(cluster.config().max_block());
        if !shared.lock().txn.as_ref().is_some_and(|t| t.offsets_added) {
            loop {
                let attempt = async {
                    let (conn, id) = txn::coordinator(cluster, shared).await?;
                    let (pid, epoch) = shared.lock().producer.unwrap_or((-1, -1));
                    let req = AddOffsetsToTxnRequest::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_producer_id(ProducerId(pid))
                        .with_producer_epoch(epoch)
                        .with_group_id(GroupId(s(&group.group_id)));
                    let resp: AddOffsetsToTxnResponse = conn.call(&req).await?;
                    Ok(resp.error_code)
                };
                match txn::decide(cluster, shared, ApiKey::AddOffsetsToTxn, attempt.await, &mut budget).await? {
                    Next::Again => continue,
                    Next::Done => break,
                }
            }
            if let Some(t) = shared.lock().txn.as_mut() {
                t.offsets_added = true;
            }
        }
        loop {
            let attempt = async {
                let conn = find_coordinator(cluster, &group.group_id).await?;
                let req = self.txn_offset_commit(offsets, group);
                let version = conn.version(ApiKey::TxnOffsetCommit)?;
                let resp: TxnOffsetCommitResponse = conn.call_at(version, &req, None).await?;
                Ok(txn::worst_code(resp.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code))))
            };
            match txn::decide(cluster, shared, ApiKey::TxnOffsetCommit, attempt.await, &mut budget).await? {
                Next::Again => continue,
                Next::Done => return Ok(()),
            }
        }
    }

    fn txn_offset_commit(
        &self,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
        group: &CommitIdentity,
    ) -> TxnOffsetCommitRequest {
        let acc = self.shared.lock();
        let id = acc.txn.as_ref().map(|t| t.id.clone()).unwrap_or_default();
        let (pid, epoch) = acc.producer.unwrap_or((-1, -1));
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for (tp, om) in offsets {
            let part = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(om.offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(om.metadata.as_deref().map(s));
            match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
                Some(t) => t.partitions.push(part),
                None => topics.push(
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(&tp.topic)))
                        .with_partitions(vec![part]),
                ),
            }
        }
        TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s(&id)))
            .with_group_id(GroupId(s(&group.group_id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_generation_id(group.generation_id)
            .with_member_id(s(&group.member_id))
            .with_group_instance_id(group.group_instance_id.as_deref().map(s))
            .with_topics(topics)
    }

    /// Java's `commitTransaction()`: sends every record of the transaction, waits for
    /// them, and commits. If any record (or the offsets) failed, nothing is committed:
    /// the error is [`ClientError::TransactionAbortable`], and the transaction must be
    /// aborted.
    pub async fn commit_transaction(&self) -> Result<()> {
        self.transition("commit_transaction", &[Phase::InTransaction], Some(Phase::Committing))?;
        self.flush().await;
        let (error, touched) = {
            let acc = self.shared.lock();
            if let Some(fatal) = &acc.fatal {
                return Err(fatal.clone());
            }
            let Some(txn) = acc.txn.as_ref() else { return Err(not_transactional("commit_transaction")) };
            (txn.error.clone(), !txn.added.is_empty() || txn.offsets_added)
        };
        if let Some(cause) = error {
            self.set_phase(Phase::Abortable);
            return Err(ClientError::TransactionAbortable { cause: Box::new(cause) });
        }
        if touched {
            txn::end_txn(&self.cluster, &self.shared, true).await?;
        }
        self.finish_transaction();
        Ok(())
    }

    /// Java's `abortTransaction()`: records of the transaction not yet sent fail with
    /// [`ClientError::TransactionAborted`]; those sent are aborted on the cluster
    /// (`read_committed` readers never see them) and their offsets discarded.
    pub async fn abort_transaction(&self) -> Result<()> {
        self.transition("abort_transaction", &[Phase::InTransaction, Phase::Abortable], Some(Phase::Aborting))?;
        self.shared.wake.notify_one();
        self.flush().await;
        let (touched, bump) = {
            let acc = self.shared.lock();
            if let Some(fatal) = &acc.fatal {
                return Err(fatal.clone());
            }
            let Some(txn) = acc.txn.as_ref() else { return Err(not_transactional("abort_transaction")) };
            (!txn.added.is_empty() || txn.offsets_added, txn.bump_epoch)
        };
        if touched {
            txn::end_txn(&self.cluster, &self.shared, false).await?;
        }
        if bump {
            // A batch failed: its sequence has a gap, so a new epoch restarts them all.
            txn::init_producer_id(&self.cluster, &self.shared).await?;
        }
        self.finish_transaction();
        Ok(())
    }

    /// Moves from one of `from` to `to` (`None`: stays), or says why not.
    fn transition(&self, operation: &'static str, from: &[Phase], to: Option<Phase>) -> Result<()> {
        let mut acc = self.shared.lock();
        if let Some(fatal) = &acc.fatal {
            return Err(fatal.clone());
        }
        let Some(txn) = acc.txn.as_mut() else {
            return Err(not_transactional(operation));
        };
        if !from.contains(&txn.phase) {
            if let (Phase::Abortable, Some(cause)) = (txn.phase, &txn.error) {
                return Err(ClientError::TransactionAbortable { cause: Box::new(cause.clone()) });
            }
            return Err(ClientError::TransactionState { operation, state: txn.phase.describe() });
        }
        if let Some(to) = to {
            txn.phase = to;
        }
        Ok(())
    }

    fn set_phase(&self, phase: Phase) {
        if let Some(txn) = self.shared.lock().txn.as_mut() {
            txn.phase = phase;
        }
    }

    fn finish_transaction(&self) {
        if let Some(txn) = self.shared.lock().txn.as_mut() {
            txn.phase = Phase::Ready;
            txn.added.clear();
            txn.offsets_added = false;
            txn.error = None;
            txn.bump_epoch = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::error::ResponseError as E;

    use super::txn::{txn_error_kind, worst_code, TxnErrorKind::*};

    /// Each coordinator error → what the producer does, as the Java client's handlers.
    #[test]
    fn transactional_errors_are_classified_as_the_java_client_does() {
        let table = [
            (E::NotCoordinator, Refind),
            (E::CoordinatorNotAvailable, Refind),
            (E::RequestTimedOut, Refind),
            (E::ConcurrentTransactions, Retry),
            (E::CoordinatorLoadInProgress, Retry),
            (E::UnknownTopicOrPartition, Retry),
            (E::TopicAuthorizationFailed, Abortable),
            (E::GroupAuthorizationFailed, Abortable),
            (E::UnknownMemberId, Abortable),
            (E::IllegalGeneration, Abortable),
            (E::FencedInstanceId, Abortable),
            (E::UnknownProducerId, Abortable),
            (E::MessageTooLarge, Abortable),
            (E::ProducerFenced, Fatal),
            (E::InvalidProducerEpoch, Fatal),
            (E::TransactionalIdAuthorizationFailed, Fatal),
            (E::InvalidTxnState, Fatal),
            (E::ClusterAuthorizationFailed, Fatal),
            (E::UnknownServerError, Fatal),
        ];
        for (error, kind) in table {
            assert_eq!(txn_error_kind(error), kind, "{error:?}");
        }
        let code = |e: E| e.code();
        assert_eq!(worst_code([0, 0].into_iter()), 0);
        assert_eq!(worst_code([0, code(E::ConcurrentTransactions), code(E::NotCoordinator)].into_iter()), 16);
        assert_eq!(
            worst_code([code(E::OperationNotAttempted), code(E::TopicAuthorizationFailed)].into_iter()),
            code(E::TopicAuthorizationFailed)
        );
        assert_eq!(worst_code([code(E::MessageTooLarge), code(E::ProducerFenced), 0].into_iter()), 90);
    }
}
