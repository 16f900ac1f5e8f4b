//! The transactional producer (KIP-98; offsets in transactions, KIP-447): a producer
//! id and epoch for `transactional.id` from the transaction coordinator, partitions
//! added to the transaction before their first batch is sent (the sender asks, see
//! [`add_partitions`]), consumed offsets committed with the transaction, and EndTxn.
//!
//! States, as in the Java client: `Uninitialized` → `init_transactions` → `Ready` →
//! `begin_transaction` → `InTransaction` → `commit_transaction` / `abort_transaction`
//! → `Ready`. A record or offset that fails makes the transaction *abortable* (abort
//! it, the producer goes on); fencing (another producer with the same id started,
//! PRODUCER_FENCED / INVALID_PRODUCER_EPOCH) or an authorization failure of the id
//! makes the producer *fatal* ([`ClientError::ProducerFatal`]).

use std::collections::HashSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::{Accumulator, Shared};
use crate::cluster::Cluster;
use crate::conn::Connection;
use crate::error::{ClientError, Result, Subject};
use crate::group::coordinator::{find_coordinator_of, CoordinatorKey};
use crate::metadata::TopicPartition;

/// Where a transactional producer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Uninitialized,
    Ready,
    InTransaction,
    Committing,
    Aborting,
    /// A record or offset of the transaction failed: only abort is possible.
    Abortable,
}

impl Phase {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Phase::Uninitialized => "init_transactions() has not been called",
            Phase::Ready => "no transaction is open: call begin_transaction()",
            Phase::InTransaction => "a transaction is open",
            Phase::Committing => "the transaction is committing",
            Phase::Aborting => "the transaction is aborting",
            Phase::Abortable => "the transaction failed and must be aborted",
        }
    }
}

/// A transactional producer's state, in the accumulator.
#[derive(Debug)]
pub(crate) struct Txn {
    pub(crate) id: String,
    pub(crate) phase: Phase,
    /// Partitions the coordinator has in the open transaction.
    pub(crate) added: HashSet<TopicPartition>,
    /// AddOffsetsToTxn succeeded in the open transaction.
    pub(crate) offsets_added: bool,
    /// Why the transaction is abortable.
    pub(crate) error: Option<ClientError>,
    /// A batch failed: its partition's sequence has a gap, so the next transaction
    /// starts with a new epoch (KIP-360), which resets every sequence.
    pub(crate) bump_epoch: bool,
    pub(crate) coordinator: Option<Connection>,
}

impl Txn {
    pub(crate) fn new(id: &str) -> Txn {
        Txn {
            id: id.to_owned(),
            phase: Phase::Uninitialized,
            added: HashSet::new(),
            offsets_added: false,
            error: None,
            bump_epoch: false,
            coordinator: None,
        }
    }
}

/// What an error code of a transactional call means (the Java client's
/// TransactionManager handlers, merged; decided without I/O, table-tested).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxnErrorKind {
    /// The coordinator moved or is unreachable: look it up again, then retry.
    Refind,
    /// Try again after `retry.backoff.ms` (the coordinator is busy).
    Retry,
    /// The transaction must be aborted; the producer goes on.
    Abortable,
    /// The producer can do nothing more (fenced, not authorized for its id).
    Fatal,
}

pub(crate) fn txn_error_kind(error: ResponseError) -> TxnErrorKind {
    use ResponseError as E;
    match error {
        E::NotCoordinator | E::CoordinatorNotAvailable | E::RequestTimedOut | E::NetworkException => {
            TxnErrorKind::Refind
        }
        E::ConcurrentTransactions | E::CoordinatorLoadInProgress | E::UnknownTopicOrPartition => TxnErrorKind::Retry,
        E::TopicAuthorizationFailed
        | E::GroupAuthorizationFailed
        | E::UnknownMemberId
        | E::IllegalGeneration
        | E::FencedInstanceId
        | E::UnknownProducerId
        | E::InvalidProducerIdMapping
        | E::OperationNotAttempted
        | E::MessageTooLarge
        | E::RecordListTooLarge
        | E::InvalidRecord
        | E::CorruptMessage => TxnErrorKind::Abortable,
        // PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        // INVALID_TXN_STATE, CLUSTER_AUTHORIZATION_FAILED and anything unexpected, as
        // the Java client treats them.
        _ => TxnErrorKind::Fatal,
    }
}

/// Records that a batch of the open transaction failed for good: the producer turns
/// fatal when it was fenced, else the transaction abortable.
pub(crate) fn batch_failed(acc: &mut Accumulator, cause: &ClientError) {
    let code = cause.code().map(|c| c.response());
    let fatal = code.is_some_and(|e| txn_error_kind(e) == TxnErrorKind::Fatal);
    if fatal {
        if acc.fatal.is_none() {
            tracing::warn!(error = %cause, "transactional producer fenced or not authorized: it stops");
            acc.fatal = Some(ClientError::ProducerFatal { partition: None, cause: Box::new(cause.clone()) });
        }
        return;
    }
    if let Some(txn) = acc.txn.as_mut() {
        txn.bump_epoch = true;
        if txn.error.is_none() && matches!(txn.phase, Phase::InTransaction | Phase::Committing) {
            tracing::debug!(error = %cause, "transaction abortable");
            txn.error = Some(cause.clone());
            txn.phase = Phase::Abortable;
        }
    }
}

/// The connection to the transaction coordinator (found on first use).
pub(crate) async fn coordinator(cluster: &Cluster, shared: &Shared) -> Result<(Connection, String)> {
    let (cached, id) = {
        let acc = shared.lock();
        let txn = acc.txn.as_ref().ok_or(ClientError::TransactionState {
            operation: "a transactional call",
            state: "the producer has no transactional.id",
        })?;
        (txn.coordinator.clone(), txn.id.clone())
    };
    if let Some(c) = cached {
        return Ok((c, id));
    }
    let conn = find_coordinator_of(cluster, CoordinatorKey::Transaction(&id)).await?;
    if let Some(txn) = shared.lock().txn.as_mut() {
        txn.coordinator = Some(conn.clone());
    }
    Ok((conn, id))
}

/// How long a transactional call keeps retrying, and how many attempts it made.
pub(crate) struct Budget {
    deadline: Instant,
    attempts: u32,
}

impl Budget {
    /// Retries allowed for `within` from now.
    pub(crate) fn new(within: std::time::Duration) -> Budget {
        Budget { deadline: Instant::now() + within, attempts: 0 }
    }
}

/// What to do after one attempt of a transactional call.
pub(crate) enum Next {
    Done,
    Again,
}

/// Decides on one attempt's outcome (a transport error or the answer's error code):
/// done, again (after dropping the coordinator and/or a backoff, within the budget),
/// or an error, recorded in the producer's state when abortable or fatal.
pub(crate) async fn decide(
    cluster: &Cluster,
    shared: &Shared,
    api: ApiKey,
    outcome: Result<i16>,
    budget: &mut Budget,
) -> Result<Next> {
    budget.attempts += 1;
    let txn_id = shared.lock().txn.as_ref().map(|t| t.id.clone()).unwrap_or_default();
    let error = match outcome {
        Ok(0) => return Ok(Next::Done),
        Ok(code) => {
            // Transactional answers come from the transaction coordinator.
            if let Some(c) = shared.lock().txn.as_ref().and_then(|t| t.coordinator.as_ref()) {
                c.note_error(crate::codes::Api::of(api), code);
            }
            let e = ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError);
            let err = ClientError::broker(api, e, Subject::Transaction(txn_id));
            match txn_error_kind(e) {
                TxnErrorKind::Refind => (err, true),
                TxnErrorKind::Retry => (err, false),
                TxnErrorKind::Abortable => {
                    let mut acc = shared.lock();
                    if let Some(txn) = acc.txn.as_mut() {
                        txn.error.get_or_insert(err.clone());
                        txn.phase = Phase::Abortable;
                    }
                    return Err(ClientError::TransactionAbortable { cause: Box::new(err) });
                }
                TxnErrorKind::Fatal => {
                    let fatal = ClientError::ProducerFatal { partition: None, cause: Box::new(err) };
                    tracing::warn!(error = %fatal, "transactional producer stops");
                    shared.lock().fatal = Some(fatal.clone());
                    shared.wake.notify_one();
                    return Err(fatal);
                }
            }
        }
        Err(e) if e.is_retriable() => (e, true),
        Err(e) => return Err(e),
    };
    let (err, refind) = error;
    if Instant::now() >= budget.deadline {
        return Err(ClientError::RetriesExhausted {
            api: crate::codes::Api::of(api),
            attempts: budget.attempts,
            last: Some(Box::new(err)),
        });
    }
    tracing::debug!(error = %err, refind, "transactional call retried");
    if refind {
        if let Some(txn) = shared.lock().txn.as_mut() {
            txn.coordinator = None;
        }
    }
    tokio::time::sleep(cluster.retry_backoff()).await;
    Ok(Next::Again)
}

/// InitProducerId for the transactional id: a new epoch, which fences older producers
/// of the id and aborts their open transaction. Every partition's sequence restarts.
pub(crate) async fn init_producer_id(cluster: &Cluster, shared: &Shared) -> Result<()> {
    let mut budget = Budget::new(cluster.config().max_block());
    let timeout = i32::try_from(cluster.config().transaction_timeout().as_millis()).unwrap_or(i32::MAX);
    loop {
        let (conn, id) = coordinator(cluster, shared).await?;
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_string(id))))
            .with_transaction_timeout_ms(timeout)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let resp = conn.call(&req).await;
        let code = resp.as_ref().map(|r: &InitProducerIdResponse| r.error_code).map_err(Clone::clone);
        match decide(cluster, shared, ApiKey::InitProducerId, code, &mut budget).await? {
            Next::Again => continue,
            Next::Done => {}
        }
        let resp = resp?;
        let mut acc = shared.lock();
        acc.producer = Some((resp.producer_id.0, resp.producer_epoch));
        for q in acc.parts.values_mut() {
            q.next_sequence = 0;
        }
        tracing::debug!(producer_id = resp.producer_id.0, epoch = resp.producer_epoch, "transactional producer id");
        return Ok(());
    }
}

/// Adds `parts` to the open transaction (AddPartitionsToTxn), called by the sender
/// before it sends a partition's first batch of the transaction. Retries stay within
/// `delivery.timeout.ms`; on failure the transaction turns abortable (or the producer
/// fatal) and the sender fails the partitions' batches.
pub(crate) async fn add_partitions(cluster: &Cluster, shared: &Shared, parts: Vec<TopicPartition>) {
    let mut budget = Budget::new(cluster.config().delivery_timeout());
    loop {
        let attempt = async {
            let (conn, id) = coordinator(cluster, shared).await?;
            let (pid, epoch) = shared.lock().producer.unwrap_or((-1, -1));
            let req = add_partitions_request(&id, pid, epoch, &parts);
            let resp: AddPartitionsToTxnResponse = conn.call(&req).await?;
            Ok(worst_code(
                resp.results_by_topic_v3_and_below
                    .iter()
                    .flat_map(|t| t.results_by_partition.iter().map(|p| p.partition_error_code)),
            ))
        };
        let outcome: Result<i16> = attempt.await;
        match decide(cluster, shared, ApiKey::AddPartitionsToTxn, outcome, &mut budget).await {
            Ok(Next::Again) => continue,
            Ok(Next::Done) => {
                if let Some(txn) = shared.lock().txn.as_mut() {
                    txn.added.extend(parts);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "AddPartitionsToTxn failed");
                let mut acc = shared.lock();
                if acc.fatal.is_none() {
                    if let Some(txn) = acc.txn.as_mut() {
                        txn.error.get_or_insert(e);
                        txn.phase = Phase::Abortable;
                    }
                }
            }
        }
        shared.wake.notify_one();
        return;
    }
}

fn add_partitions_request(id: &str, pid: i64, epoch: i16, parts: &[TopicPartition]) -> AddPartitionsToTxnRequest {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for tp in parts {
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
            Some(t) => t.partitions.push(tp.partition),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(tp.topic.to_string())))
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_string(id.to_owned())))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(topics)
}

/// The code that decides a multi-partition answer: a fatal one first, then abortable,
/// then refind, then retry (OPERATION_NOT_ATTEMPTED only stands in for another).
pub(crate) fn worst_code(codes: impl Iterator<Item = i16>) -> i16 {
    let rank = |code: i16| match ResponseError::try_from_code(code) {
        None => 0,
        Some(ResponseError::OperationNotAttempted) => 1,
        Some(e) => match txn_error_kind(e) {
            TxnErrorKind::Retry => 2,
            TxnErrorKind::Refind => 3,
            TxnErrorKind::Abortable => 4,
            TxnErrorKind::Fatal => 5,
        },
    };
    codes.max_by_key(|c| rank(*c)).unwrap_or(0)
}

/// EndTxn: commits or aborts the open transaction on the coordinator.
pub(crate) async fn end_txn(cluster: &Cluster, shared: &Shared, commit: bool) -> Result<()> {
    let mut budget = Budget::new(cluster.config().max_block());
    loop {
        let attempt = async {
            let (conn, id) = coordinator(cluster, shared).await?;
            let (pid, epoch) = shared.lock().producer.unwrap_or((-1, -1));
            let req = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(commit);
            let resp: EndTxnResponse = conn.call(&req).await?;
            Ok(resp.error_code)
        };
        match decide(cluster, shared, ApiKey::EndTxn, attempt.await, &mut budget).await? {
            Next::Again => continue,
            Next::Done => return Ok(()),
        }
    }
}
