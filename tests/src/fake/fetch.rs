//! The fake's Fetch, with incremental fetch sessions (KIP-227) kept as Kafka keeps them:
//! a full request with session id 0 and epoch 0 opens a session; later requests name
//! only changed or new partitions (and the ones to forget), with the next epoch; the
//! answer then lists only partitions with records, an error, or a new high watermark.
//! An unknown session id gets FETCH_SESSION_ID_NOT_FOUND, a wrong epoch
//! INVALID_FETCH_SESSION_EPOCH. Tests can evict every session ([`Sessions::evict`]) or
//! turn sessions off (the broker then answers session id 0).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::cluster::{read, State, OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_OR_PARTITION};
use super::wire::Request;

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

/// (topic, partition) → (fetch offset, partition max bytes).
type Wanted = BTreeMap<(String, i32), (i64, i32)>;

struct Session {
    next_epoch: i32,
    partitions: Wanted,
    /// The high watermark last reported per partition.
    reported: HashMap<(String, i32), i64>,
}

/// The fake broker's session cache.
pub(crate) struct Sessions {
    enabled: bool,
    next_id: i32,
    open: HashMap<i32, Session>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions { enabled: true, next_id: 1, open: HashMap::new() }
    }
}

impl Sessions {
    /// Forgets every session (as a broker evicting them from a full cache).
    pub(crate) fn evict(&mut self) {
        self.open.clear();
    }

    /// Turns sessions on or off (off: every answer carries session id 0).
    pub(crate) fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        self.open.clear();
    }
}

fn requested(fetch: &FetchRequest) -> Wanted {
    let mut out = Wanted::new();
    for t in &fetch.topics {
        for p in &t.partitions {
            out.insert((t.topic.0.to_string(), p.partition), (p.fetch_offset, p.partition_max_bytes));
        }
    }
    out
}

/// Which partitions to answer for, the session id to answer with, whether only news
/// goes in the answer; or a session error.
fn open_or_continue(state: &State, fetch: &FetchRequest, version: i16) -> Result<(Wanted, i32, bool), i16> {
    let asked = requested(fetch);
    if version < 7 {
        return Ok((asked, 0, false));
    }
    let mut inner = state.lock();
    let sessions = &mut inner.sessions;
    match (fetch.session_id, fetch.session_epoch) {
        (id, -1) => {
            sessions.open.remove(&id);
            Ok((asked, 0, false))
        }
        (id, 0) => {
            sessions.open.remove(&id);
            if !sessions.enabled {
                return Ok((asked, 0, false));
            }
            let id = sessions.next_id;
            sessions.next_id += 1;
            let session = Session { next_epoch: 1, partitions: asked.clone(), reported: HashMap::new() };
            sessions.open.insert(id, session);
            Ok((asked, id, false))
        }
        (id, epoch) => {
            let Some(session) = sessions.open.get_mut(&id) else { return Err(FETCH_SESSION_ID_NOT_FOUND) };
            if epoch != session.next_epoch {
                return Err(INVALID_FETCH_SESSION_EPOCH);
            }
            session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
            for f in &fetch.forgotten_topics_data {
                for p in &f.partitions {
                    session.partitions.remove(&(f.topic.0.to_string(), *p));
                }
            }
            session.partitions.extend(asked);
            Ok((session.partitions.clone(), id, true))
        }
    }
}

/// One partition's answer.
fn partition(state: &State, key: &(String, i32), at: (i64, i32), committed: bool) -> PartitionData {
    let inner = state.lock();
    let (offset, max) = at;
    let data = PartitionData::default().with_partition_index(key.1);
    let log = inner.topics.get(&key.0).and_then(|l| l.get(usize::try_from(key.1).ok()?));
    let Some(log) = log else { return data.with_error_code(UNKNOWN_TOPIC_OR_PARTITION) };
    let stable = log.last_stable();
    let data = data.with_high_watermark(log.next).with_last_stable_offset(stable);
    if offset < 0 || offset > log.next {
        return data.with_error_code(OFFSET_OUT_OF_RANGE);
    }
    // read_committed: up to the last stable offset, with the aborted transactions of
    // that range.
    let end = if committed { stable } else { log.next };
    let records = read(log, offset, end, max.max(1) as usize);
    let aborted = committed.then(|| {
        log.aborted
            .iter()
            .filter(|&&(_, first, marker)| marker >= offset && first < end)
            .map(|&(pid, first, _)| {
                AbortedTransaction::default().with_producer_id(ProducerId(pid)).with_first_offset(first)
            })
            .collect()
    });
    data.with_records(Some(records)).with_aborted_transactions(aborted)
}

fn answer(state: &State, wanted: &Wanted, session: i32, incremental: bool, committed: bool) -> (bool, FetchResponse) {
    let mut any = false;
    let mut topics: BTreeMap<&str, Vec<PartitionData>> = BTreeMap::new();
    for (key, at) in wanted {
        let data = partition(state, key, *at, committed);
        let has_records = data.records.as_ref().is_some_and(|r| !r.is_empty());
        any |= has_records;
        if incremental {
            let inner = state.lock();
            let Some(s) = inner.sessions.open.get(&session) else { continue };
            let news = s.reported.get(key) != Some(&data.high_watermark);
            if !(has_records || data.error_code != 0 || news) {
                continue;
            }
        }
        topics.entry(&key.0).or_default().push(data);
    }
    let responses = topics
        .into_iter()
        .map(|(t, ps)| {
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_string(t.to_owned())))
                .with_partitions(ps)
        })
        .collect();
    (any, FetchResponse::default().with_session_id(session).with_responses(responses))
}

/// Answers a Fetch.
pub(super) fn fetch(state: &State, req: &Request) -> Vec<u8> {
    let fetch: FetchRequest = req.decode();
    let committed = fetch.isolation_level == 1;
    let (wanted, session, incremental) = match open_or_continue(state, &fetch, req.version) {
        Ok(w) => w,
        Err(code) => return req.reply(&FetchResponse::default().with_error_code(code)),
    };
    // Wait (a little) for data as a broker does, so an idle consumer does not spin.
    let (any, mut response) = answer(state, &wanted, session, incremental, committed);
    if !any && fetch.max_wait_ms > 0 {
        std::thread::sleep(Duration::from_millis(fetch.max_wait_ms.min(100) as u64));
        response = answer(state, &wanted, session, incremental, committed).1;
    }
    // Remember the watermarks this answer tells (all of them, when full).
    if let Some(s) = state.lock().sessions.open.get_mut(&session) {
        if !incremental {
            s.reported.clear();
        }
        for t in &response.responses {
            for p in &t.partitions {
                s.reported.insert((t.topic.0.to_string(), p.partition_index), p.high_watermark);
            }
        }
    }
    req.reply(&response)
}
