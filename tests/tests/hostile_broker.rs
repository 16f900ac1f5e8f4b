//! A hostile broker over real sockets (issue 19): the fake cluster answers as a broker
//! would, except that one answer per case is rewritten by a seeded mutation (bits
//! flipped, cut short, a length or count blown up, garbage appended, bytes replaced, a
//! huge frame length). The client paths that read those answers — the consumer
//! (Metadata, ListOffsets, Fetch), the producer (Metadata, InitProducerId, Produce),
//! admin (ListOffsets) and the transactional producer (FindCoordinator,
//! AddPartitionsToTxn, EndTxn) — must each end the case in a result or a typed error
//! within a bounded time: no panic anywhere (a panic hook counts them, tasks included),
//! no hang, and memory that does not grow with what the broker claims. Consumer-group
//! answers (JoinGroup, SyncGroup, Heartbeat, OffsetCommit) are not served by the fake
//! cluster; their decoders are covered by the `response` fuzz target.
//!
//! `HOSTILE_SEED` replays a run; the seed is printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrokafka_client::admin::{list_offsets, OffsetSpec};
use ferrokafka_client::config::{ClientConfig, IsolationLevel};
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_tests::fake::{Action, FakeCluster, Mutation};
use kafka_protocol::messages::ApiKey;

const CASES: usize = 400;
/// Each case's operation must end within this.
const BOUND: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Path {
    Consume,
    Produce,
    Admin,
    Transaction,
}

impl Path {
    /// The answers this path reads, one of which is mutated.
    fn apis(self) -> &'static [ApiKey] {
        match self {
            Path::Consume => &[ApiKey::Metadata, ApiKey::ListOffsets, ApiKey::Fetch],
            Path::Produce => &[ApiKey::Metadata, ApiKey::InitProducerId, ApiKey::Produce],
            Path::Admin => &[ApiKey::Metadata, ApiKey::ListOffsets],
            Path::Transaction => &[ApiKey::FindCoordinator, ApiKey::AddPartitionsToTxn, ApiKey::EndTxn],
        }
    }
}

/// A rewrite of a response frame.
type Rewrite = Box<dyn FnOnce(Vec<u8>) -> Vec<u8> + Send>;

/// A seeded rewrite of a response frame (4-byte length prefix, then the body).
fn mutate(rng: &mut fastrand::Rng) -> (String, Rewrite) {
    let kind = rng.u32(0..6);
    let (a, b) = (rng.u64(..), rng.u64(..));
    let describe = ["flip bits", "cut short", "blow up a length", "append garbage", "replace bytes", "huge frame"];
    let f: Rewrite = Box::new(move |mut frame: Vec<u8>| {
        let mut r = fastrand::Rng::with_seed(a ^ b);
        // Keep the correlation id (bytes 4..8) mostly intact: the answer should reach
        // the decoder, not just the correlation check.
        let body = 8..frame.len().max(9);
        let fix_len = |f: &mut Vec<u8>| {
            let n = (f.len() - 4) as u32;
            f[..4].copy_from_slice(&n.to_be_bytes());
        };
        match kind {
            0 => {
                for _ in 0..r.usize(1..9) {
                    let i = r.usize(body.clone()).min(frame.len() - 1);
                    frame[i] ^= 1 << r.u32(0..8);
                }
            }
            1 => {
                let cut = r.usize(4..frame.len().max(5));
                frame.truncate(cut);
                fix_len(&mut frame);
            }
            2 => {
                if frame.len() >= 12 {
                    let i = r.usize(8..frame.len() - 3);
                    let v: u32 = if r.bool() { 0x7fff_ffff } else { r.u32(1 << 20..u32::MAX) };
                    frame[i..i + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            3 => {
                let extra = r.usize(1..4096);
                frame.extend((0..extra).map(|_| r.u8(..)));
                fix_len(&mut frame);
            }
            4 => {
                for i in body.clone() {
                    if i < frame.len() && r.u8(..) < 64 {
                        frame[i] = r.u8(..);
                    }
                }
            }
            // A frame length past receive.message.max.bytes (refused before reading), or
            // one below it that the bytes never fill (the read waits, then times out).
            _ => {
                let claimed = if r.bool() { r.u32(1 << 28..u32::MAX) } else { r.u32(1 << 16..1 << 26) };
                frame[..4].copy_from_slice(&claimed.to_be_bytes());
            }
        }
        frame
    });
    (describe[kind as usize].to_owned(), f)
}

fn config(fake: &FakeCluster, extra: &[(&str, &str)]) -> ClientConfig {
    let addr = fake.addr();
    let mut pairs = vec![
        ("bootstrap.servers", addr.as_str()),
        ("request.timeout.ms", "1500"),
        ("retry.backoff.ms", "20"),
        ("reconnect.backoff.ms", "20"),
        ("reconnect.backoff.max.ms", "100"),
        ("fetch.max.wait.ms", "20"),
        ("delivery.timeout.ms", "5000"),
        ("max.block.ms", "5000"),
        ("linger.ms", "0"),
        ("auto.offset.reset", "earliest"),
        ("enable.idempotence", "false"),
    ];
    pairs.extend_from_slice(extra);
    ClientConfig::from_pairs(pairs).unwrap()
}

/// Runs one path's operation; Ok(description) or the typed error's description.
async fn operate(path: Path, fake: &FakeCluster) -> String {
    let tp = TopicPartition::new("h", 0);
    let outcome: Result<String, ferrokafka_client::ClientError> = async {
        match path {
            Path::Consume => {
                // CRCs off: a rewritten record batch reaches the record decoder instead of
                // stopping at the checksum.
                let mut c = Consumer::new(config(fake, &[("check.crcs", "false")])).await?;
                c.assign([tp.clone()]);
                let mut n = 0;
                let deadline = Instant::now() + Duration::from_secs(5);
                while n < 3 && Instant::now() < deadline {
                    n += c.poll(Duration::from_millis(100)).await?.iter().count();
                }
                Ok(format!("read {n}"))
            }
            Path::Produce => {
                let p = Producer::new(config(fake, &[("enable.idempotence", "true")])).await?;
                let r = p.send(ProducerRecord::new("h", "x").partition(0)).await?.await;
                p.close().await;
                r.map(|m| format!("offset {}", m.offset))
            }
            Path::Admin => {
                let cluster = ferrokafka_client::cluster::Cluster::connect(config(fake, &[])).await?;
                let o = list_offsets(
                    &cluster,
                    std::slice::from_ref(&tp),
                    OffsetSpec::Latest,
                    IsolationLevel::ReadUncommitted,
                )
                .await?;
                Ok(format!("{o:?}"))
            }
            Path::Transaction => {
                let p = Producer::new(config(fake, &[("enable.idempotence", "true"), ("transactional.id", "hostile")]))
                    .await?;
                p.init_transactions().await?;
                p.begin_transaction()?;
                p.send(ProducerRecord::new("h", "t").partition(0)).await?;
                p.commit_transaction().await?;
                p.close().await;
                Ok("committed".into())
            }
        }
    }
    .await;
    match outcome {
        Ok(s) => s,
        Err(e) => format!("error: {e}"),
    }
}

/// The process's peak resident memory so far (KiB): a large allocation that was touched
/// shows here even after it was freed.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn hostile_answers_end_in_a_result_or_a_typed_error() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (p, s) = (panics.clone(), seen.clone());
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        p.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut s) = s.lock() {
            s.push(info.to_string());
        }
        default_hook(info);
    }));
    let seed = std::env::var("HOSTILE_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    println!("hostile broker seed {seed} (HOSTILE_SEED={seed} replays it)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let before = peak_rss_kib();
    let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
    let fired = Arc::new(AtomicUsize::new(0));
    for case in 0..CASES {
        let path = [Path::Consume, Path::Produce, Path::Admin, Path::Transaction][case % 4];
        let api = path.apis()[rng.usize(0..path.apis().len())];
        let (what, rewrite) = mutate(&mut rng);
        let fake = FakeCluster::start();
        fake.create_topic("h", 1);
        rt.block_on(async {
            let p = Producer::new(config(&fake, &[])).await.unwrap();
            for i in 0..5 {
                p.send(ProducerRecord::new("h", format!("v{i}")).partition(0)).await.unwrap().await.unwrap();
            }
            p.close().await;
        });
        let rewrite = Mutex::new(Some(rewrite));
        let hit = fired.clone();
        fake.hook(move |req| match (req.api == api).then(|| rewrite.lock().unwrap().take()).flatten() {
            Some(f) => {
                hit.fetch_add(1, Ordering::Relaxed);
                Action::Mutate(Mutation(f))
            }
            None => Action::Pass,
        });
        let started = Instant::now();
        let outcome = rt.block_on(async { tokio::time::timeout(BOUND, operate(path, &fake)).await });
        let outcome = outcome.unwrap_or_else(|_| panic!("case {case} ({path:?}, {api:?}, {what}) hung: seed {seed}"));
        let class = if outcome.starts_with("error") { "typed error" } else { "result" };
        *outcomes.entry(format!("{path:?} {api:?}: {class}")).or_default() += 1;
        if started.elapsed() > Duration::from_secs(10) {
            println!("slow case {case} ({path:?}, {api:?}, {what}): {:?}: {outcome}", started.elapsed());
        }
    }
    drop(rt);
    let after = peak_rss_kib();
    for (k, v) in &outcomes {
        println!("  {k}: {v}");
    }
    let fired = fired.load(Ordering::Relaxed);
    println!("{fired} of {CASES} rewrites served; peak RSS {before} KiB → {after} KiB");
    assert_eq!(panics.load(Ordering::Relaxed), 0, "panics (seed {seed}): {:?}", seen.lock().unwrap());
    // Each case asks for its API at least once unless an earlier step of the path failed
    // for a reason of its own (say, the transaction path before EndTxn).
    assert!(fired * 4 >= CASES * 3, "only {fired} of {CASES} rewrites reached the client (seed {seed})");
    assert!(
        after < before + 64 * 1024,
        "peak memory grew with the hostile answers: {before} → {after} KiB (seed {seed})"
    );
}

/// The `response` fuzz target's stored regression inputs, each served as the answer to
/// the request its first byte selects (with the request's correlation id), to a client
/// path that sends that request: a result or a typed error, no panic, no hang.
#[test]
fn fuzz_regression_inputs_served_as_answers() {
    // The order of the `response` fuzz target's list (fuzz/fuzz_targets/response.rs).
    const APIS: [ApiKey; 16] = [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::FindCoordinator,
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::DescribeGroups,
        ApiKey::ListGroups,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
    ];
    let dir = ferrokafka_tests::repo_root().join("fuzz/regressions/response");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut served = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let (Some(&sel), Some(frame)) = (input.first(), input.get(2..)) else { continue };
        let api = APIS[sel as usize % APIS.len()];
        let fake = FakeCluster::start();
        fake.create_topic("h", 1);
        let body = frame.to_vec();
        let hits = Arc::new(AtomicUsize::new(0));
        let hit = hits.clone();
        // The fake announces the API too (it does not serve every one itself).
        let mut versions = ferrokafka_tests::fake::VERSIONS.to_vec();
        if !versions.iter().any(|(k, _, _)| *k == api) {
            versions.push((api, 0, 16));
        }
        fake.hook(move |req| {
            if req.api == ApiKey::ApiVersions {
                return Action::Reply(ferrokafka_tests::fake::api_versions(req, &versions));
            }
            if req.api != api {
                return Action::Pass;
            }
            hit.fetch_add(1, Ordering::Relaxed);
            let mut answer = body.clone();
            if answer.len() >= 4 {
                answer[..4].copy_from_slice(&req.correlation_id.to_be_bytes());
            }
            let mut out = (answer.len() as u32).to_be_bytes().to_vec();
            out.extend(answer);
            Action::Reply(out)
        });
        let cfg = config(&fake, &[]);
        let _runtime = rt.enter();
        let outcome = rt.block_on(tokio::time::timeout(BOUND, async {
            let cluster = ferrokafka_client::cluster::Cluster::connect(cfg.clone()).await?;
            match api {
                ApiKey::DeleteTopics => {
                    ferrokafka_client::admin::delete_topic(&cluster, "h").await.map(|()| "deleted".to_owned())
                }
                ApiKey::CreateTopics => {
                    ferrokafka_client::admin::create_topic(&cluster, "n", 1, 1).await.map(|()| "created".to_owned())
                }
                ApiKey::ListOffsets => {
                    let tp = TopicPartition::new("h", 0);
                    list_offsets(&cluster, &[tp], OffsetSpec::Latest, IsolationLevel::ReadUncommitted)
                        .await
                        .map(|o| format!("{o:?}"))
                }
                _ => cluster.describe(None).await.map(|m| format!("{} topics", m.topics.len())),
            }
        }));
        let outcome = outcome.unwrap_or_else(|_| panic!("{} ({api:?}) hung", path.display()));
        println!("{} as a {api:?} answer: {:?}", path.display(), outcome.map_err(|e| e.to_string()));
        if hits.load(Ordering::Relaxed) > 0 {
            served += 1;
        } else {
            println!("  (no path here sends {api:?}: not served)");
        }
    }
    assert!(served > 0, "no regression input of {} reached a client path", dir.display());
}
