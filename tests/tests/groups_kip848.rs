//! KIP-848 consumer groups (`group.protocol=consumer`) against librdkafka 2.16's mock
//! cluster, which computes assignments on the broker as Kafka 4 does: members go
//! 1 → 2 → 1 without losing or repeating a record, share a group with confluent-kafka
//! consumers, a static member restarting within the session timeout gets its own
//! partitions back, and injected heartbeat errors are survived (or reported, for the
//! fatal ones). On librdkafka 2.0.2's mock, which has no ConsumerGroupHeartbeat, the
//! member fails with a clear error instead.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::group::{GroupConsumer, GroupContext, ListenerFuture, RebalanceListener};
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_client::ClientError;
use ferrokafka_tests::mock::{mock_version, MockCluster};
use ferrokafka_tests::peers::CkGroupMember;
use ferrokafka_tests::unique_topic;
use tokio::task::JoinHandle;

const PARTITIONS: i32 = 4;
const PER_PARTITION: usize = 50;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut pairs = vec![
        ("bootstrap.servers", bootstrap),
        ("group.id", group),
        ("group.protocol", "consumer"),
        ("fetch.max.wait.ms", "100"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ];
    pairs.extend_from_slice(extra);
    ClientConfig::from_pairs(pairs).unwrap()
}

/// A 2.16 mock with fast KIP-848 timeouts (session 6 s, heartbeat 300 ms) and a topic.
fn cluster(topic: &str) -> MockCluster {
    let mut mock = MockCluster::start(3);
    mock.must("cgrp_consumer 6000 300");
    mock.create_topic(topic, PARTITIONS as u32);
    mock
}

fn produce(rt: &tokio::runtime::Runtime, bootstrap: &str, topic: &str) {
    rt.block_on(async {
        let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", bootstrap)]).unwrap()).await.unwrap();
        let mut fs = Vec::new();
        for i in 0..PER_PARTITION {
            for part in 0..PARTITIONS {
                fs.push(p.send(ProducerRecord::new(topic, format!("v{i}")).partition(part)).await.unwrap());
            }
        }
        for f in fs {
            f.await.unwrap();
        }
        p.close().await;
    });
}

#[derive(Default)]
struct Seen {
    revoked: Vec<TopicPartition>,
    lost: Vec<TopicPartition>,
    commit_errors: Vec<String>,
}

/// Commits what it revokes; records revoked and lost partitions.
struct Listener(Arc<Mutex<Seen>>);

impl RebalanceListener for Listener {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        group: &'a GroupContext<'a>,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            let result = ferrokafka_tests::commit_positions(group, partitions).await;
            let mut seen = self.0.lock().unwrap();
            seen.revoked.extend_from_slice(partitions);
            if let Err(e) = result {
                seen.commit_errors.push(e.to_string());
            }
        })
    }

    fn on_partitions_lost<'a>(
        &'a mut self,
        _group: &'a GroupContext<'a>,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move { self.0.lock().unwrap().lost.extend_from_slice(partitions) })
    }
}

/// A member polling in its own task; it commits its positions and closes on stop.
struct Member {
    assigned: Arc<Mutex<BTreeSet<i32>>>,
    records: Arc<Mutex<Vec<(i32, i64)>>>,
    seen: Arc<Mutex<Seen>>,
    errors: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Member {
    fn start(rt: &tokio::runtime::Runtime, cfg: ClientConfig, topic: &str) -> Member {
        let assigned: Arc<Mutex<BTreeSet<i32>>> = Arc::default();
        let records: Arc<Mutex<Vec<(i32, i64)>>> = Arc::default();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (errors, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let (a, r, l, e, s) = (Arc::clone(&assigned), Arc::clone(&records), seen.clone(), errors.clone(), stop.clone());
        let topic = topic.to_owned();
        let task = rt.spawn(async move {
            let mut c = GroupConsumer::new(cfg).await.unwrap();
            c.set_rebalance_listener(Listener(l));
            c.subscribe([topic]);
            while !s.load(Ordering::Relaxed) {
                match c.poll(Duration::from_millis(100)).await {
                    Ok(polled) => {
                        for rec in &polled {
                            let rec = rec.unwrap();
                            r.lock().unwrap().push((rec.topic_partition.partition, rec.record.offset));
                        }
                    }
                    Err(err) => e.lock().unwrap().push(format!("{err:?}")),
                }
                *a.lock().unwrap() = c.assignment().iter().map(|tp| tp.partition).collect();
            }
            c.commit_sync(None).await.unwrap();
            c.close().await.unwrap();
        });
        Member { assigned, records, seen, errors, stop, task }
    }

    fn assigned(&self) -> BTreeSet<i32> {
        self.assigned.lock().unwrap().clone()
    }

    fn stop(self, rt: &tokio::runtime::Runtime) -> (Vec<(i32, i64)>, Arc<Mutex<Seen>>) {
        self.stop.store(true, Ordering::Relaxed);
        rt.block_on(self.task).unwrap();
        (self.records.lock().unwrap().clone(), self.seen)
    }
}

/// Waits until `sets()` are disjoint, each non-empty, and cover every partition.
fn wait_for_split(what: &str, mut sets: impl FnMut() -> Vec<BTreeSet<i32>>) -> Vec<BTreeSet<i32>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = sets();
        let union: BTreeSet<i32> = now.iter().flatten().copied().collect();
        let total: usize = now.iter().map(BTreeSet::len).sum();
        if union.len() == PARTITIONS as usize && total == union.len() && now.iter().all(|s| !s.is_empty()) {
            return now;
        }
        assert!(Instant::now() < deadline, "{what}: no clean split within 60 s: {now:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn skip_unless_2_16() -> bool {
    if mock_version() != "2.16" {
        eprintln!("KIP-848 groups need librdkafka 2.16's mock (FERROKAFKA_MOCK=2.16; scripts/test.sh runs it)");
        return true;
    }
    false
}

#[test]
fn members_go_one_two_one_without_losing_or_repeating_a_record() {
    if skip_unless_2_16() {
        return;
    }
    let rt = runtime();
    let topic = unique_topic("k848");
    let mock = cluster(&topic);
    produce(&rt, mock.bootstrap(), &topic);
    let group = unique_topic("g848");
    let cfg = config(mock.bootstrap(), &group, &[("max.poll.records", "20")]);

    let a = Member::start(&rt, cfg.clone(), &topic);
    wait_for_split("one member", || vec![a.assigned()]);
    let b = Member::start(&rt, cfg.clone(), &topic);
    let split = wait_for_split("two members", || vec![a.assigned(), b.assigned()]);
    assert_eq!(split.iter().map(BTreeSet::len).collect::<Vec<_>>(), [2, 2], "the mock's range assignor halves 4");
    // Records written while the group has two members: each reads its half.
    produce(&rt, mock.bootstrap(), &topic);
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.records.lock().unwrap().len() < PER_PARTITION * 2 {
        assert!(Instant::now() < deadline, "the second member did not read its half");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (b_records, b_seen) = b.stop(&rt);
    wait_for_split("after the second member left", || vec![a.assigned()]);
    // And after it left: the first member reads them all, from where the second committed.
    produce(&rt, mock.bootstrap(), &topic);
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.records.lock().unwrap().len() + b_records.len() < 3 * PER_PARTITION * PARTITIONS as usize {
        assert!(Instant::now() < deadline, "records missing after the hand-back");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (a_records, a_seen) = a.stop(&rt);

    let a_seen = a_seen.lock().unwrap();
    assert!(!a_seen.revoked.is_empty(), "the first member gave partitions up when the second joined");
    assert!(a_seen.lost.is_empty() && b_seen.lock().unwrap().lost.is_empty(), "nothing was lost");
    assert!(a_seen.commit_errors.is_empty(), "commits on revocation: {:?}", a_seen.commit_errors);
    let mut count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for r in a_records.iter().chain(&b_records) {
        *count.entry(*r).or_default() += 1;
    }
    let repeated: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "records read twice across the hand-overs: {repeated:?}");
    assert_eq!(count.len(), 3 * PER_PARTITION * PARTITIONS as usize, "every record read once");
}

#[test]
fn a_group_shared_with_confluent_kafka_consumers() {
    if skip_unless_2_16() {
        return;
    }
    let rt = runtime();
    let topic = unique_topic("k848-mixed");
    let mock = cluster(&topic);
    let group = unique_topic("g848-mixed");
    let mut peer = CkGroupMember::start(mock.bootstrap(), &group, &topic).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while peer.assigned().unwrap().len() != PARTITIONS as usize {
        assert!(Instant::now() < deadline, "confluent-kafka alone never got every partition");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ours = Member::start(&rt, config(mock.bootstrap(), &group, &[]), &topic);
    let split = wait_for_split("ferrokafka + confluent-kafka", || {
        vec![ours.assigned(), peer.assigned().unwrap().into_iter().collect()]
    });
    eprintln!("split: ours {:?}, confluent-kafka {:?}", split[0], split[1]);
    peer.close().unwrap();
    wait_for_split("after confluent-kafka left", || vec![ours.assigned()]);
    let errors = ours.errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "{errors:?}");
    ours.stop(&rt);
}

#[test]
fn a_static_member_restarting_within_the_session_timeout_keeps_its_partitions() {
    if skip_unless_2_16() {
        return;
    }
    let rt = runtime();
    let topic = unique_topic("k848-static");
    let mock = cluster(&topic);
    let group = unique_topic("g848-static");
    let static_cfg = config(mock.bootstrap(), &group, &[("group.instance.id", "instance-1")]);
    let dynamic = Member::start(&rt, config(mock.bootstrap(), &group, &[]), &topic);
    let first = Member::start(&rt, static_cfg.clone(), &topic);
    let split = wait_for_split("static + dynamic", || vec![first.assigned(), dynamic.assigned()]);
    let (static_set, dynamic_set) = (split[0].clone(), split[1].clone());
    first.stop(&rt); // leaves with epoch -2: its partitions wait for it

    // Within the 6 s session, the other member does not get them.
    let quiet = Instant::now() + Duration::from_secs(2);
    while Instant::now() < quiet {
        assert_eq!(dynamic.assigned(), dynamic_set, "the static member's partitions moved while it restarted");
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = Member::start(&rt, static_cfg, &topic);
    let split = wait_for_split("static member back", || vec![second.assigned(), dynamic.assigned()]);
    assert_eq!(split[0], static_set, "the restarted static member got its own partitions back");
    assert_eq!(split[1], dynamic_set);
    second.stop(&rt);
    dynamic.stop(&rt);
}

#[test]
fn heartbeat_errors_are_survived_and_fatal_ones_reported() {
    if skip_unless_2_16() {
        return;
    }
    let rt = runtime();
    let topic = unique_topic("k848-err");
    let mut mock = cluster(&topic);
    let group = unique_topic("g848-err");
    let member = Member::start(&rt, config(mock.bootstrap(), &group, &[]), &topic);
    wait_for_split("one member", || vec![member.assigned()]);

    // Retriable: the member keeps its partitions and goes on.
    for code in ["NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS"] {
        mock.must(&format!("error ConsumerGroupHeartbeat {code} 2"));
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(member.assigned().len(), PARTITIONS as usize, "after {code}");
    }
    assert!(member.seen.lock().unwrap().lost.is_empty());

    // Fenced: the partitions are lost (the listener hears it), then the member joins again.
    mock.must("error ConsumerGroupHeartbeat FENCED_MEMBER_EPOCH 1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while member.seen.lock().unwrap().lost.is_empty() {
        assert!(Instant::now() < deadline, "a fenced member never reported its partitions lost");
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for_split("after the fence", || vec![member.assigned()]);
    assert!(member.errors.lock().unwrap().is_empty(), "{:?}", member.errors.lock().unwrap());

    // Fatal: poll reports it, typed, with the broker's code.
    mock.must("error ConsumerGroupHeartbeat GROUP_MAX_SIZE_REACHED 1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while member.errors.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "GROUP_MAX_SIZE_REACHED was not reported");
        std::thread::sleep(Duration::from_millis(100));
    }
    let reported = member.errors.lock().unwrap()[0].clone();
    assert!(reported.contains("GROUP_MAX_SIZE_REACHED") || reported.contains("81"), "{reported}");
    // Polling again after the error starts over, and the member gets its partitions back.
    wait_for_split("after the fatal error", || vec![member.assigned()]);
    member.stop(&rt);
}

/// librdkafka 2.0.2's mock has no ConsumerGroupHeartbeat: a clear, typed error, not a hang.
#[test]
fn a_broker_without_kip_848_gets_a_clear_error() {
    if mock_version() == "2.16" {
        return; // the 2.16 mock serves it
    }
    let rt = runtime();
    let topic = unique_topic("k848-old");
    let mut mock = MockCluster::start(1);
    mock.create_topic(&topic, 1);
    let group = unique_topic("g848-old");
    let err = rt.block_on(async {
        let mut c = GroupConsumer::new(config(mock.bootstrap(), &group, &[])).await.unwrap();
        c.subscribe([topic.as_str()]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match c.poll(Duration::from_millis(100)).await {
                Err(e) => break e,
                Ok(_) => assert!(Instant::now() < deadline, "no error within 30 s"),
            }
        }
    });
    assert!(matches!(err, ClientError::GroupProtocolUnsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("group.protocol=classic"), "{err}");
    assert!(!err.is_retriable());
}

/// A pattern subscription goes to the broker as a regex (KIP-848 evaluates it there),
/// anchored so that it matches whole topic names, as the Java client's pattern does.
#[test]
fn a_pattern_subscription_is_evaluated_by_the_broker_on_whole_names() {
    if skip_unless_2_16() {
        return;
    }
    let rt = runtime();
    let prefix = unique_topic("k848re");
    let mut mock = MockCluster::start(1);
    mock.must("cgrp_consumer 6000 300");
    let (a, b, other) = (format!("{prefix}-a"), format!("{prefix}-b"), format!("x{prefix}-a"));
    for t in [&a, &b, &other] {
        mock.create_topic(t, 2);
    }
    let group = unique_topic("g848-re");
    let assigned = rt.block_on(async {
        let mut c = GroupConsumer::new(config(mock.bootstrap(), &group, &[])).await.unwrap();
        c.subscribe_pattern(&format!("{prefix}-.*")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while c.assignment().len() < 4 {
            assert!(Instant::now() < deadline, "pattern assignment: {:?}", c.assignment());
            c.poll(Duration::from_millis(100)).await.unwrap();
        }
        // A little longer: nothing else may arrive.
        for _ in 0..10 {
            c.poll(Duration::from_millis(100)).await.unwrap();
        }
        let got: BTreeSet<(String, i32)> =
            c.assignment().iter().map(|tp| (tp.topic.to_string(), tp.partition)).collect();
        c.close().await.unwrap();
        got
    });
    let want: BTreeSet<(String, i32)> =
        [(&a, 0), (&a, 1), (&b, 0), (&b, 1)].iter().map(|(t, p)| ((*t).clone(), *p)).collect();
    assert_eq!(assigned, want, "{other} must not match: the pattern matches whole names");
}
