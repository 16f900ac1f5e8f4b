//! The fake broker's transaction coordinator: producer ids and epochs per
//! transactional id (a new epoch fences the old one and aborts its open transaction),
//! the partitions of each open transaction, and EndTxn writing COMMIT/ABORT markers.
//! It is also its own group coordinator for FindCoordinator (offsets are not served).

use std::collections::{BTreeSet, HashMap};

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, BrokerId, EndTxnRequest, EndTxnResponse,
    FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Inner;
use super::wire::Request;

const INVALID_PRODUCER_EPOCH: i16 = 47;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TXN_STATE: i16 = 48;

/// One transactional id's producer.
struct Producer {
    pid: i64,
    epoch: i16,
    /// Partitions of the open transaction.
    partitions: BTreeSet<(String, i32)>,
}

#[derive(Default)]
pub(super) struct Coordinator {
    by_id: HashMap<String, Producer>,
    next_pid: i64,
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
            });
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
