//! The fake's own broker: real answers for the APIs a producer and a consumer need
//! (ApiVersions, Metadata, Produce, Fetch, ListOffsets) and a transaction coordinator
//! ([`super::txn`]: InitProducerId, AddPartitionsToTxn, EndTxn, FindCoordinator), over
//! an in-memory log per partition. Batches are kept as the client sent them, with their
//! base offset rewritten (the CRC does not cover it), as a broker does; transaction
//! markers, the last stable offset and the aborted-transaction index are kept as Kafka
//! keeps them, which neither tansu 0.6 nor the mock clusters do.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use ferrokafka_protocol::records::{ControlMarker, RecordBatchBuilder};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, ProduceRequest, ProduceResponse,
};

use super::wire::{api_versions, metadata_response, metadata_topic, Request};

/// The versions the fake serves (within what the client sends).
pub const VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::FindCoordinator, 1, 3),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::OffsetFetch, 1, 7),
];

pub(super) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub(super) const OFFSET_OUT_OF_RANGE: i16 = 1;
const CORRUPT_MESSAGE: i16 = 2;
const UNSUPPORTED_VERSION: i16 = 35;

/// One partition's log: (base offset, batch) in offset order.
#[derive(Default)]
pub(super) struct Log {
    batches: Vec<(i64, Bytes)>,
    pub(super) next: i64,
    /// Open transactions: producer id → first offset.
    pub(super) open: BTreeMap<i64, i64>,
    /// Aborted transactions: (producer id, first offset, marker offset).
    pub(super) aborted: Vec<(i64, i64, i64)>,
}

impl Log {
    /// The last stable offset: the first offset of the oldest open transaction.
    pub(super) fn last_stable(&self) -> i64 {
        self.open.values().copied().min().unwrap_or(self.next)
    }

    /// Appends a one-record control batch (a COMMIT or ABORT marker for `pid`).
    pub(super) fn marker(&mut self, pid: i64, epoch: i16, commit: bool) {
        let mut out = BytesMut::new();
        let marker = if commit { ControlMarker::Commit } else { ControlMarker::Abort };
        RecordBatchBuilder::control(&mut out, self.next, pid, epoch, marker, 0).expect("marker batch");
        let first = self.open.remove(&pid);
        if let (false, Some(first)) = (commit, first) {
            self.aborted.push((pid, first, self.next));
        }
        self.batches.push((self.next, out.freeze()));
        self.next += 1;
    }
}

/// Topics, their logs, and the transactional producers.
#[derive(Default)]
pub(crate) struct State {
    pub(super) inner: Mutex<Inner>,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) topics: BTreeMap<String, Vec<Log>>,
    pub(super) txn: super::txn::Coordinator,
    pub(super) sessions: super::fetch::Sessions,
}

impl State {
    pub(crate) fn create_topic(&self, name: &str, partitions: i32) {
        let logs = (0..partitions).map(|_| Log::default()).collect();
        self.lock().topics.insert(name.to_owned(), logs);
    }

    /// The high watermark of a partition (`None`: unknown).
    pub(crate) fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        let inner = self.lock();
        inner.topics.get(topic)?.get(usize::try_from(partition).ok()?).map(|l| l.next)
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer to a request the hooks passed on (`None`: an API the fake does not
    /// serve; the connection is closed, as a broker does).
    pub(crate) fn handle(&self, req: &Request) -> Option<Vec<u8>> {
        let supported = VERSIONS.iter().any(|&(k, lo, hi)| k == req.api && (lo..=hi).contains(&req.version));
        if req.api == ApiKey::ApiVersions {
            return Some(api_versions(req, VERSIONS));
        }
        if !supported {
            return None;
        }
        match req.api {
            ApiKey::Metadata => Some(self.metadata(req)),
            ApiKey::Produce => Some(self.produce(req)),
            ApiKey::Fetch => Some(super::fetch::fetch(self, req)),
            ApiKey::ListOffsets => Some(self.list_offsets(req)),
            ApiKey::FindCoordinator => Some(super::txn::find_coordinator(req)),
            ApiKey::InitProducerId => Some(super::txn::init_producer_id(&mut self.lock(), req)),
            ApiKey::AddPartitionsToTxn => Some(super::txn::add_partitions(&mut self.lock(), req)),
            ApiKey::EndTxn => Some(super::txn::end_txn(&mut self.lock(), req)),
            ApiKey::AddOffsetsToTxn => Some(super::txn::add_offsets(&mut self.lock(), req)),
            ApiKey::TxnOffsetCommit => Some(super::txn::txn_offset_commit(&mut self.lock(), req)),
            ApiKey::OffsetFetch => Some(super::txn::offset_fetch(&self.lock(), req)),
            _ => None,
        }
    }

    fn metadata(&self, req: &Request) -> Vec<u8> {
        let asked: MetadataRequest = req.decode();
        let inner = self.lock();
        let topics = &inner.topics;
        let answer = match asked.topics {
            None => topics.iter().map(|(name, logs)| metadata_topic(name, logs.len() as i32, 0)).collect(),
            Some(list) => list
                .iter()
                .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                .map(|name| match topics.get(&name) {
                    Some(logs) => metadata_topic(&name, logs.len() as i32, 0),
                    None => metadata_topic(&name, 0, UNKNOWN_TOPIC_OR_PARTITION),
                })
                .collect(),
        };
        req.reply(&metadata_response(req.port, answer))
    }

    fn produce(&self, req: &Request) -> Vec<u8> {
        let produce: ProduceRequest = req.decode();
        let mut guard = self.lock();
        let Inner { topics, txn, .. } = &mut *guard;
        let mut responses = Vec::new();
        for t in produce.topic_data {
            let logs = topics.get_mut(t.name.0.as_str());
            let mut parts = Vec::new();
            let mut logs = logs;
            for p in t.partition_data {
                let log = logs.as_deref_mut().and_then(|l| l.get_mut(usize::try_from(p.index).ok()?));
                let (error, base) = match log {
                    None => (UNKNOWN_TOPIC_OR_PARTITION, -1),
                    Some(log) => {
                        let records = p.records.unwrap_or_default();
                        match txn.check_produce(&records) {
                            Err(code) => (code, -1),
                            Ok(producer) => match append(log, records) {
                                Some(base) => {
                                    if let Some(pid) = producer {
                                        log.open.entry(pid).or_insert(base);
                                    }
                                    (0, base)
                                }
                                None => (CORRUPT_MESSAGE, -1),
                            },
                        }
                    }
                };
                parts.push(
                    PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_error_code(error)
                        .with_base_offset(base),
                );
            }
            responses.push(TopicProduceResponse::default().with_name(t.name).with_partition_responses(parts));
        }
        req.reply(&ProduceResponse::default().with_responses(responses))
    }

    fn list_offsets(&self, req: &Request) -> Vec<u8> {
        let asked: ListOffsetsRequest = req.decode();
        let inner = self.lock();
        let topics = &inner.topics;
        let answer = asked
            .topics
            .iter()
            .map(|t| {
                let logs = topics.get(t.name.0.as_str());
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                        match logs.and_then(|l| l.get(usize::try_from(p.partition_index).ok()?)) {
                            None => r.with_error_code(UNKNOWN_TOPIC_OR_PARTITION),
                            Some(log) => match p.timestamp {
                                -2 => r.with_offset(0).with_timestamp(-1),
                                -1 => r.with_offset(log.next).with_timestamp(-1),
                                _ => r.with_error_code(UNSUPPORTED_VERSION),
                            },
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions)
            })
            .collect();
        req.reply(&ListOffsetsResponse::default().with_topics(answer))
    }
}

/// Appends the v2 batches of `records`, rewriting each base offset; returns the first
/// offset, or `None` when the bytes are not whole v2 batches.
fn append(log: &mut Log, records: Bytes) -> Option<i64> {
    let first = log.next;
    let mut rest = records;
    let mut batches = Vec::new();
    let mut next = log.next;
    while !rest.is_empty() {
        let len = i32::from_be_bytes(rest.get(8..12)?.try_into().ok()?);
        let size = 12 + usize::try_from(len).ok()?;
        if rest.len() < size || size < 61 || rest[16] != 2 {
            return None;
        }
        let last_delta = i32::from_be_bytes(rest[23..27].try_into().ok()?);
        let mut batch = BytesMut::from(&rest[..size]);
        batch[..8].copy_from_slice(&next.to_be_bytes());
        batches.push((next, batch.freeze()));
        next += i64::from(last_delta) + 1;
        rest = rest.split_off(size);
    }
    log.batches.extend(batches);
    log.next = next;
    Some(first)
}

/// Whole batches below `end` from the one holding `offset`, at least one, then up to
/// `max` bytes.
pub(super) fn read(log: &Log, offset: i64, end: i64, max: usize) -> Bytes {
    let start = log.batches.partition_point(|(base, _)| *base <= offset).saturating_sub(1);
    let mut out = BytesMut::new();
    for (base, batch) in &log.batches[start.min(log.batches.len())..] {
        let last = base + i64::from(i32::from_be_bytes(batch[23..27].try_into().unwrap_or([0; 4])));
        if last < offset {
            continue;
        }
        if *base >= end {
            break;
        }
        if !out.is_empty() && out.len() + batch.len() > max {
            break;
        }
        out.extend_from_slice(batch);
    }
    out.freeze()
}
