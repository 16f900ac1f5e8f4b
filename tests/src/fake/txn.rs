//! The fake broker's transaction coordinator: producer ids and epochs per
//! transactional id (a new epoch fences the old one and aborts its open transaction),
//! the partitions of each open transaction, and EndTxn writing COMMIT/ABORT markers.
//! It is also the group coordinator for offsets committed in transactions
//! (AddOffsetsToTxn, TxnOffsetCommit, applied by a COMMIT; OffsetFetch reads them, with
//! UNSTABLE_OFFSET_COMMIT while a transaction holds offsets of the partition and the
//! reader asks for stable offsets). Plain OffsetCommit and groups are not served.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, BrokerId,
    EndTxnRequest, EndTxnResponse, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    OffsetFetchRequest, OffsetFetchResponse, ProducerId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Inner;
use super::wire::Request;

const INVALID_PRODUCER_EPOCH: i16 = 47;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TXN_STATE: i16 = 48;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// One transactional id's producer.
struct Producer {
    pid: i64,
    epoch: i16,
    /// Partitions of the open transaction.
    partitions: BTreeSet<(String, i32)>,
    /// Offsets committed in the open transaction: (group, topic, partition) → offset.
    offsets: BTreeMap<(String, String, i32), i64>,
}

#[derive(Default)]
pub(super) struct Coordinator {
    by_id: HashMap<String, Producer>,
    next_pid: i64,
    /// Committed offsets: (group, topic, partition) → offset.
    committed: BTreeMap<(String, String, i32), i64>,
}

impl Coordinator {
    /// Checks the producer of each batch in `records`: a transactional batch must carry
    /// its id's current epoch. Returns the producer id of a transactional batch.
    pub(super) fn check_produce(&self, records: &[u8]) -> Result<Option<i64>, i16> {
        if records.len() < 61 || records[22] & 0x10 == 0 {
            return Ok(None);
        }
        let pid = i64::from_be_bytes(records[43..51].try_into().unwrap_or_default());
        let epoch = i16::from_be_bytes([records[51], records[52]]);
        match self.by_id.values().find(|p| p.pid == pid) {
            Some(p) if p.epoch == epoch => Ok(Some(pid)),
            _ => Err(INVALID_PRODUCER_EPOCH),
        }
    }
}

/// FindCoordinator: the fake coordinates everything.
pub(super) fn find_coordinator(req: &Request) -> Vec<u8> {
    req.reply(
        &FindCoordinatorResponse::default()
            .with_node_id(BrokerId(1))
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(i32::from(req.port)),
    )
}

/// InitProducerId: a new producer id, or for a transactional id its id with the next
/// epoch, aborting the open transaction of the previous epoch.
pub(super) fn init_producer_id(inner: &mut Inner, req: &Request) -> Vec<u8> {
    let init: InitProducerIdRequest = req.decode();
    let coord = &mut inner.txn;
    let (pid, epoch) = match init.transactional_id {
        None => {
            coord.next_pid += 1;
            (coord.next_pid, 0)
        }
        Some(id) => {
            let next_pid = coord.next_pid + 1;
            let p = coord.by_id.entry(id.0.to_string()).or_insert(Producer {
                pid: next_pid,
                epoch: -1,
                partitions: BTreeSet::new(),
                offsets: BTreeMap::new(),
            });
            p.offsets.clear();
            if p.pid == next_pid {
                coord.next_pid = next_pid;
            }
            let open = std::mem::take(&mut p.partitions);
            for (topic, partition) in open {
                if let Some(log) = log_of(&mut inner.topics, &topic, partition) {
                    log.marker(p.pid, p.epoch, false);
                }
            }
            p.epoch += 1;
            (p.pid, p.epoch)
        }
    };
    req.reply(&InitProducerIdResponse::default().with_producer_id(ProducerId(pid)).with_producer_epoch(epoch))
}

/// AddPartitionsToTxn (v0-3).
pub(super) fn add_partitions(inner: &mut Inner, req: &Request) -> Vec<u8> {
    let add: AddPartitionsToTxnRequest = req.decode();
    let id = add.v3_and_below_transactional_id.0.to_string();
    let current = inner.txn.by_id.get(&id).map(|p| (p.pid, p.epoch));
    let fenced = current != Some((add.v3_and_below_producer_id.0, add.v3_and_below_producer_epoch));
    let mut results = Vec::new();
    for t in &add.v3_and_below_topics {
        let mut parts = Vec::new();
        for &partition in &t.partitions {
            let known = log_of(&mut inner.topics, t.name.0.as_str(), partition).is_some();
            let code = match (fenced, known) {
                (true, _) => INVALID_PRODUCER_EPOCH,
                (false, false) => UNKNOWN_TOPIC_OR_PARTITION,
                (false, true) => {
                    if let Some(p) = inner.txn.by_id.get_mut(&id) {
                        p.partitions.insert((t.name.0.to_string(), partition));
                    }
                    0
                }
            };
            parts.push(
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(partition)
                    .with_partition_error_code(code),
            );
        }
        results
            .push(AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()).with_results_by_partition(parts));
    }
    req.reply(&AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results))
}

/// EndTxn: a COMMIT or ABORT marker in every partition of the transaction.
pub(super) fn end_txn(inner: &mut Inner, req: &Request) -> Vec<u8> {
    let end: EndTxnRequest = req.decode();
    let Some(p) = inner.txn.by_id.get_mut(end.transactional_id.0.as_str()) else {
        return req.reply(&EndTxnResponse::default().with_error_code(INVALID_TXN_STATE));
    };
    if (p.pid, p.epoch) != (end.producer_id.0, end.producer_epoch) {
        return req.reply(&EndTxnResponse::default().with_error_code(INVALID_PRODUCER_EPOCH));
    }
    let (pid, epoch) = (p.pid, p.epoch);
    let offsets = std::mem::take(&mut p.offsets);
    if end.committed {
        inner.txn.committed.extend(offsets);
    }
    let Some(p) = inner.txn.by_id.get_mut(end.transactional_id.0.as_str()) else {
        return req.reply(&EndTxnResponse::default());
    };
    for (topic, partition) in std::mem::take(&mut p.partitions) {
        if let Some(log) = log_of(&mut inner.topics, &topic, partition) {
            log.marker(pid, epoch, end.committed);
        }
    }
    req.reply(&EndTxnResponse::default())
}

fn log_of<'a>(
    topics: &'a mut std::collections::BTreeMap<String, Vec<super::cluster::Log>>,
    topic: &str,
    partition: i32,
) -> Option<&'a mut super::cluster::Log> {
    topics.get_mut(topic)?.get_mut(usize::try_from(partition).ok()?)
}

/// AddOffsetsToTxn: the group's offsets join the transaction (checked for the epoch).
pub(super) fn add_offsets(inner: &mut Inner, req: &Request) -> Vec<u8> {
    let add: AddOffsetsToTxnRequest = req.decode();
    let current = inner.txn.by_id.get(add.transactional_id.0.as_str()).map(|p| (p.pid, p.epoch));
    let code = if current == Some((add.producer_id.0, add.producer_epoch)) { 0 } else { INVALID_PRODUCER_EPOCH };
    req.reply(&AddOffsetsToTxnResponse::default().with_error_code(code))
}

/// TxnOffsetCommit: offsets held by the transaction until EndTxn.
pub(super) fn txn_offset_commit(inner: &mut Inner, req: &Request) -> Vec<u8> {
    let commit: TxnOffsetCommitRequest = req.decode();
    let group = commit.group_id.0.to_string();
    let producer = inner.txn.by_id.get_mut(commit.transactional_id.0.as_str());
    let code = match producer {
        Some(p) if (p.pid, p.epoch) == (commit.producer_id.0, commit.producer_epoch) => {
            for t in &commit.topics {
                for part in &t.partitions {
                    p.offsets
                        .insert((group.clone(), t.name.0.to_string(), part.partition_index), part.committed_offset);
                }
            }
            0
        }
        _ => INVALID_PRODUCER_EPOCH,
    };
    let topics = commit
        .topics
        .iter()
        .map(|t| {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(parts)
        })
        .collect();
    req.reply(&TxnOffsetCommitResponse::default().with_topics(topics))
}

/// OffsetFetch (v1-7, listed partitions): committed offsets, -1 where none;
/// UNSTABLE_OFFSET_COMMIT for a partition an open transaction holds offsets of, when
/// the reader asks for stable offsets (v7).
pub(super) fn offset_fetch(inner: &Inner, req: &Request) -> Vec<u8> {
    let fetch: OffsetFetchRequest = req.decode();
    let group = fetch.group_id.0.to_string();
    let topics = fetch
        .topics
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let parts = t
                .partition_indexes
                .iter()
                .map(|&partition| {
                    let key = (group.clone(), t.name.0.to_string(), partition);
                    let pending = inner.txn.by_id.values().any(|p| p.offsets.contains_key(&key));
                    let r = OffsetFetchResponsePartition::default().with_partition_index(partition);
                    if pending && fetch.require_stable {
                        return r.with_committed_offset(-1).with_error_code(UNSTABLE_OFFSET_COMMIT);
                    }
                    r.with_committed_offset(inner.txn.committed.get(&key).copied().unwrap_or(-1))
                })
                .collect();
            OffsetFetchResponseTopic::default().with_name(t.name.clone()).with_partitions(parts)
        })
        .collect();
    req.reply(&OffsetFetchResponse::default().with_topics(topics))
}
