//! The chaos run's long-lived clients: an idempotent producer of keyed, sequenced
//! records; consumer-group members; a direct stream storing into redb. Each records
//! what it did in a shared [`Ledger`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::group::{GroupConsumer, GroupContext, ListenerFuture, RebalanceListener};
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_streaming::store::redb::redb::{ReadableDatabase, ReadableTable, TableDefinition};
use ferrokafka_streaming::store::{commit_batch, store_offsets, RedbStore};
use ferrokafka_streaming::{
    DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig, StreamingError, Subscribe,
};
use tokio::task::JoinHandle;

/// About how many records per second the producer writes (the ledger keeps them all).
const RATE: usize = 1000;
/// Keys the producer writes; each key's values carry a sequence number.
pub const KEYS: u32 = 40;
/// What the stream stores: "partition:offset:key:seq" → how many times it was stored.
pub const SEEN: TableDefinition<&str, u64> = TableDefinition::new("seen");

/// One record as the producer wrote it: its key and sequence, and where it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Written {
    /// Key number.
    pub key: u32,
    /// Sequence within the key.
    pub seq: u64,
}

/// What everyone did.
#[derive(Default)]
pub struct Ledger {
    /// Records the broker acknowledged.
    pub acked: Vec<Written>,
    /// Records whose send failed for good.
    pub failed: u64,
    /// Every record a group member returned: (member session, partition, offset, record).
    pub consumed: Vec<(u64, i32, i64, Written)>,
    /// Member and stream restarts.
    pub member_kills: u64,
    /// Stream restarts (kills and stream errors).
    pub stream_restarts: u64,
    /// Errors the members' polls returned (kept going).
    pub poll_errors: Vec<String>,
    /// Errors that stopped a stream (it was restarted).
    pub stream_errors: Vec<String>,
    /// Panics of the harness's own clients (a member or stream task that panicked).
    pub panics: Vec<String>,
    /// Partitions lost without a commit (fenced members): (member session, partition,
    /// records consumed so far: where it happened in `consumed`).
    pub lost: Vec<(u64, i32, usize)>,
    /// Commits that failed (their records are read again after a rebalance): the
    /// error, and (member session, where in `consumed`).
    pub commit_errors: Vec<String>,
    /// (member session, where in `consumed`) of each failed commit.
    pub failed_commits: Vec<(u64, usize)>,
    /// (member session, where in `consumed`) of each member kill.
    pub kills: Vec<(u64, usize)>,
    /// Where in `consumed` each OFFSET_OUT_OF_RANGE was injected (a reset may follow).
    pub resets: Vec<usize>,
}

impl Ledger {
    /// A commit of member `session` failed.
    pub fn commit_failed(&mut self, session: u64, error: String) {
        self.commit_errors.push(error);
        let at = self.consumed.len();
        self.failed_commits.push((session, at));
    }

    /// The bytes its two record lists have allocated, in KiB.
    pub fn kib(&self) -> u64 {
        let bytes = self.acked.capacity() * std::mem::size_of::<Written>()
            + self.consumed.capacity() * std::mem::size_of::<(u64, i32, i64, Written)>();
        bytes as u64 / 1024
    }
}

/// Parses "k:seq".
pub fn parse(value: &[u8]) -> Option<Written> {
    let s = std::str::from_utf8(value).ok()?;
    let (k, seq) = s.split_once(':')?;
    Some(Written { key: k.parse().ok()?, seq: seq.parse().ok()? })
}

/// Produces keyed records until `stop`; records acknowledgements in the ledger.
pub fn producer(bootstrap: String, topic: String, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let cfg = ClientConfig::from_pairs([
            ("bootstrap.servers", bootstrap.as_str()),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("request.timeout.ms", "5000"),
            ("delivery.timeout.ms", "120000"),
            ("retry.backoff.ms", "100"),
        ])
        .unwrap();
        let producer = retry(|| Producer::new(cfg.clone())).await;
        let mut seq = vec![0u64; KEYS as usize];
        let mut pending = Vec::new();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let key = (n % u64::from(KEYS)) as u32;
            n += 1;
            let w = Written { key, seq: seq[key as usize] };
            seq[key as usize] += 1;
            let record = ProducerRecord::new(topic.as_str(), format!("{}:{}", w.key, w.seq)).key(format!("k{key}"));
            match producer.send(record).await {
                Ok(f) => pending.push((w, f)),
                Err(_) => ledger.lock().unwrap().failed += 1,
            }
            if pending.len() >= RATE / 5 {
                settle(&mut pending, &ledger).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        settle(&mut pending, &ledger).await;
        producer.close().await;
    })
}

type Pending = Vec<(Written, ferrokafka_client::producer::DeliveryFuture)>;

/// Connects, retrying while every broker refuses (one may be down; the bootstrap list
/// is tried in order).
async fn retry<T, F: std::future::Future<Output = ferrokafka_client::Result<T>>>(mut f: impl FnMut() -> F) -> T {
    loop {
        match f().await {
            Ok(t) => return t,
            Err(e) => {
                tracing::debug!(error = %e, "chaos client could not connect yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn settle(pending: &mut Pending, ledger: &Mutex<Ledger>) {
    for (w, f) in pending.drain(..) {
        let result = f.await;
        let mut l = ledger.lock().unwrap();
        match result {
            Ok(_) => l.acked.push(w),
            Err(_) => l.failed += 1,
        }
    }
}

/// Commits what it gives up; records what its member (session) lost uncommitted.
struct CommitOnRevoke(u64, Arc<Mutex<Ledger>>);

impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        group: &'a GroupContext<'a>,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            if let Err(e) = crate::commit_positions(group, partitions).await {
                self.1.lock().unwrap().commit_failed(self.0, format!("on revoke: {e}"));
            }
        })
    }

    fn on_partitions_lost<'a>(
        &'a mut self,
        _group: &'a GroupContext<'a>,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        let mut ledger = self.1.lock().unwrap();
        let at = ledger.consumed.len();
        ledger.lost.extend(partitions.iter().map(|tp| (self.0, tp.partition, at)));
        Box::pin(async {})
    }
}

/// A group member (session `session`): polls, records, commits after each poll.
pub fn member(
    bootstrap: String,
    topic: String,
    group: String,
    session: u64,
    ledger: Arc<Mutex<Ledger>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let cfg = ClientConfig::from_pairs([
            ("bootstrap.servers", bootstrap.as_str()),
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
            ("fetch.max.wait.ms", "100"),
            ("request.timeout.ms", "5000"),
            ("retry.backoff.ms", "100"),
        ])
        .unwrap();
        let mut c = retry(|| GroupConsumer::new(cfg.clone())).await;
        c.set_rebalance_listener(CommitOnRevoke(session, ledger.clone()));
        c.subscribe([topic]);
        loop {
            match c.poll(Duration::from_millis(200)).await {
                Ok(records) => {
                    let mut got = Vec::new();
                    for r in &records {
                        let Ok(r) = r else { continue };
                        if let Some(w) = r.record.value.as_deref().and_then(parse) {
                            got.push((session, r.topic_partition.partition, r.record.offset, w));
                        }
                    }
                    if !got.is_empty() {
                        ledger.lock().unwrap().consumed.extend(got);
                        if let Err(e) = c.commit_sync(None).await {
                            ledger.lock().unwrap().commit_failed(session, e.to_string());
                        }
                    }
                }
                Err(e) => {
                    ledger.lock().unwrap().poll_errors.push(e.to_string());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    })
}

fn store_err(e: impl std::fmt::Display) -> StreamingError {
    StreamingError::store(e.to_string())
}

/// A direct stream that stores every record's "key:seq" with the batch's offsets in
/// one redb transaction. Ends (for a restart) on any stream error.
pub fn stream(
    bootstrap: String,
    topic: String,
    group: String,
    store: Arc<RedbStore>,
    ledger: Arc<Mutex<Ledger>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let run = async {
            let params = KafkaParams::new([
                ("bootstrap.servers", bootstrap.as_str()),
                ("group.id", group.as_str()),
                ("auto.offset.reset", "earliest"),
                ("enable.auto.commit", "false"),
                ("fetch.max.wait.ms", "100"),
                ("request.timeout.ms", "5000"),
                ("retry.backoff.ms", "100"),
                // As the members: a killed stream's group member is gone in 6 s, not 45.
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "500"),
            ])?;
            let strategy = Subscribe::new([topic.as_str()], params, Default::default())?
                .offsets_from(store_offsets(store.clone(), group.clone()));
            let cfg = StreamConfig { batch_interval: Duration::from_millis(300), ..Default::default() };
            let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await?;
            loop {
                let batch = stream.next_batch().await?;
                let started = std::time::Instant::now();
                let parts = batch.collect().await?;
                // Keyed by log position: exactly once means each record of the log once.
                let values: Vec<String> = parts
                    .iter()
                    .flat_map(|p| p.records.iter().map(move |r| (p.range.partition, r)))
                    .filter_map(|(p, r)| r.value.as_deref().and_then(parse).map(|w| (p, r.offset, w)))
                    .map(|(p, offset, w)| format!("{p}:{offset}:{}:{}", w.key, w.seq))
                    .collect();
                commit_batch(&*store, &group, batch.offset_ranges(), async |txn| {
                    let mut t = txn.redb().open_table(SEEN).map_err(store_err)?;
                    for v in &values {
                        let before = t.get(v.as_str()).map_err(store_err)?.map_or(0, |g| g.value());
                        t.insert(v.as_str(), before + 1).map_err(store_err)?;
                    }
                    Ok(())
                })
                .await?;
                stream.complete(&batch, started.elapsed())?;
            }
            #[allow(unreachable_code)]
            Ok::<(), StreamingError>(())
        };
        if let Err(e) = run.await {
            ledger.lock().unwrap().stream_errors.push(e.to_string());
        }
    })
}

/// What the store holds: (partition, offset) → the record there and the times stored.
pub fn stored(store: &RedbStore) -> BTreeMap<(i32, i64), (Written, u64)> {
    let read = store.database().begin_read().unwrap();
    let Ok(t) = read.open_table(SEEN) else { return BTreeMap::new() };
    t.iter()
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|(k, v)| {
            let k = k.value();
            let mut parts = k.splitn(3, ':');
            let p = parts.next()?.parse().ok()?;
            let offset = parts.next()?.parse().ok()?;
            let w = parse(parts.next()?.as_bytes())?;
            Some(((p, offset), (w, v.value())))
        })
        .collect()
}
