//! Consumer groups against real brokers: members split partitions with each
//! assignor, rebalance when members join, leave or crash, hand partitions over
//! without duplicates when offsets are committed in the revoke callback, share a
//! group with kafka-python, follow pattern
//! subscriptions, and survive coordinator errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::group::{GroupConsumer, GroupContext, ListenerFuture, RebalanceListener};
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_client::ClientError;
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::tansu::Tansu;
use ferrokafka_tests::unique_topic;
use tokio::task::JoinHandle;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut pairs = vec![
        ("bootstrap.servers", bootstrap),
        ("group.id", group),
        ("fetch.max.wait.ms", "100"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ];
    pairs.extend_from_slice(extra);
    ClientConfig::from_pairs(pairs).unwrap()
}

/// Commits the positions of revoked partitions; counts commits that failed.
struct CommitOnRevoke(Arc<Mutex<Vec<String>>>);

impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        group: &'a GroupContext<'a>,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            if let Err(e) = ferrokafka_tests::commit_positions(group, partitions).await {
                self.0.lock().unwrap().push(e.to_string());
            }
        })
    }
}

/// A member polling in its own task.
struct Member {
    assigned: Arc<Mutex<Vec<TopicPartition>>>,
    records: Arc<Mutex<Vec<(i32, i64)>>>,
    commit_failures: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Member {
    fn start(rt: &tokio::runtime::Runtime, cfg: ClientConfig, topics: Vec<String>) -> Member {
        let assigned = Arc::new(Mutex::new(Vec::new()));
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let commit_failures = Arc::new(Mutex::new(Vec::new()));
        let (a, r, s, f) = (assigned.clone(), records.clone(), stop.clone(), commit_failures.clone());
        let task = rt.spawn(async move {
            let mut c = GroupConsumer::new(cfg).await.unwrap();
            c.set_rebalance_listener(CommitOnRevoke(f));
            c.subscribe(topics);
            while !s.load(Ordering::Relaxed) {
                let polled = c.poll(Duration::from_millis(200)).await.unwrap();
                for rec in &polled {
                    let rec = rec.unwrap();
                    r.lock().unwrap().push((rec.topic_partition.partition, rec.record.offset));
                }
                *a.lock().unwrap() = c.assignment();
            }
            // A member stopping while another leaves can meet the rebalance that leave
            // started: REBALANCE_IN_PROGRESS, as Java's commitSync throws. As a Java
            // caller would, poll to finish the rebalance (keeping what it delivers),
            // then commit again.
            let mut attempts = 0;
            loop {
                match c.commit_sync(None).await {
                    Ok(()) => break,
                    Err(ClientError::CommitFailed { error, .. })
                        if error.name() == "REBALANCE_IN_PROGRESS" && attempts < 20 =>
                    {
                        attempts += 1;
                        let polled = c.poll(Duration::from_millis(200)).await.unwrap();
                        for rec in &polled {
                            let rec = rec.unwrap();
                            r.lock().unwrap().push((rec.topic_partition.partition, rec.record.offset));
                        }
                    }
                    Err(e) => panic!("the last commit failed: {e}"),
                }
            }
            c.close().await.unwrap();
        });
        Member { assigned, records, commit_failures, stop, task }
    }

    fn assigned(&self) -> BTreeSet<TopicPartition> {
        self.assigned.lock().unwrap().iter().cloned().collect()
    }

    fn stop(self, rt: &tokio::runtime::Runtime) -> Vec<(i32, i64)> {
        self.stop.store(true, Ordering::Relaxed);
        rt.block_on(self.task).unwrap();
        self.records.lock().unwrap().clone()
    }

    /// Dies without leaving the group.
    fn crash(self) {
        self.task.abort();
    }
}

/// Waits until the members' assignments are disjoint, non-empty and cover `all`.
fn wait_for_split(members: &[&Member], all: &BTreeSet<TopicPartition>, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let sets: Vec<BTreeSet<TopicPartition>> = members.iter().map(|m| m.assigned()).collect();
        let union: BTreeSet<TopicPartition> = sets.iter().flatten().cloned().collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let counts: Vec<usize> = sets.iter().map(BTreeSet::len).collect();
        let balanced = counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0) <= 1;
        // Cooperative rebalancing passes through covering but unbalanced splits between
        // its two rounds; what must hold in the end is a balanced one.
        if union == *all && total == all.len() && sets.iter().all(|s| !s.is_empty()) && balanced {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: no clean, balanced split within 60 s: {counts:?} {sets:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn partitions(topic: &str, n: i32) -> BTreeSet<TopicPartition> {
    (0..n).map(|p| TopicPartition::new(topic, p)).collect()
}

fn produce(rt: &tokio::runtime::Runtime, bootstrap: &str, topic: &str, per_partition: usize, parts: i32) {
    rt.block_on(async {
        let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", bootstrap)]).unwrap()).await.unwrap();
        let mut fs = Vec::new();
        for i in 0..per_partition {
            for part in 0..parts {
                fs.push(p.send(ProducerRecord::new(topic, format!("v{i}")).partition(part)).await.unwrap());
            }
        }
        for f in fs {
            f.await.unwrap();
        }
        p.close().await;
    });
}

/// Every assignor: two, then three members split six partitions; a member that
/// leaves and one that crashes (no LeaveGroup) trigger rebalances.
fn assignors_split_and_rebalance(
    bootstrap: &str,
    create: &mut dyn FnMut(&str, i32),
    strategies: &[&str],
    test_crash: bool,
) {
    let rt = runtime();
    for &strategy in strategies {
        let topic = unique_topic(&format!("grp-{strategy}"));
        create(&topic, 6);
        let group = unique_topic(&format!("g-{strategy}"));
        let cfg = config(bootstrap, &group, &[("partition.assignment.strategy", strategy)]);
        let all = partitions(&topic, 6);
        let a = Member::start(&rt, cfg.clone(), vec![topic.clone()]);
        let b = Member::start(&rt, cfg.clone(), vec![topic.clone()]);
        wait_for_split(&[&a, &b], &all, &format!("{strategy}: 2 members"));
        let c = Member::start(&rt, cfg.clone(), vec![topic.clone()]);
        wait_for_split(&[&a, &b, &c], &all, &format!("{strategy}: 3 members"));
        c.stop(&rt);
        wait_for_split(&[&a, &b], &all, &format!("{strategy}: after a member left"));
        if test_crash {
            b.crash();
            wait_for_split(&[&a], &all, &format!("{strategy}: after a member crashed (session timeout)"));
        } else {
            b.stop(&rt);
        }
        a.stop(&rt);
    }
}

#[test]
fn tansu_assignors_split_and_rebalance() {
    let broker = Tansu::start();
    let mut raw = ferrokafka_tests::raw::RawConnection::connect(broker.addr()).unwrap();
    // tansu 0.6 does not expire a crashed member's session, and its join rounds do not
    // keep the members in one generation (see DESIGN.md, broker quirks), which
    // cooperative rebalancing depends on; crashes and cooperative-sticky run on the mock.
    assignors_split_and_rebalance(
        broker.addr(),
        &mut |t, n| raw.create_topic(t, n).unwrap(),
        &["range", "roundrobin", "sticky"],
        false,
    );
}

#[test]
fn mock_assignors_split_and_rebalance() {
    let mut mock = MockCluster::start(3);
    let b = mock.bootstrap().to_owned();
    assignors_split_and_rebalance(
        &b,
        &mut |t, n| mock.create_topic(t, n as u32),
        &["range", "roundrobin", "sticky", "cooperative-sticky"],
        true,
    );
}

/// With offsets committed in the revoke callback, records are neither skipped nor
/// consumed twice when a second member joins half way.
/// On tansu: librdkafka 2.0.2's mock rejects commits while a rebalance is pending
/// (REBALANCE_IN_PROGRESS), so a revoke-time commit cannot land there.
#[test]
fn no_duplicates_or_gaps_across_a_rebalance() {
    let broker = Tansu::start();
    let b = broker.addr().to_owned();
    let topic = unique_topic("handover");
    ferrokafka_tests::raw::RawConnection::connect(&b).unwrap().create_topic(&topic, 4).unwrap();
    let rt = runtime();
    produce(&rt, &b, &topic, 250, 4);
    let cfg = config(
        &b,
        &unique_topic("g-handover"),
        &[("max.poll.records", "50"), ("partition.assignment.strategy", "range")],
    );
    let a = Member::start(&rt, cfg.clone(), vec![topic.clone()]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while a.records.lock().unwrap().len() < 300 {
        assert!(std::time::Instant::now() < deadline, "first member consumed too little");
        std::thread::sleep(Duration::from_millis(20));
    }
    let b2 = Member::start(&rt, cfg, vec![topic.clone()]);
    wait_for_split(&[&a, &b2], &partitions(&topic, 4), "handover");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while a.records.lock().unwrap().len() + b2.records.lock().unwrap().len() < 1000 {
        assert!(std::time::Instant::now() < deadline, "not everything was consumed within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let failures: Vec<String> =
        a.commit_failures.lock().unwrap().iter().chain(b2.commit_failures.lock().unwrap().iter()).cloned().collect();
    assert!(failures.is_empty(), "revoke-time commits failed: {failures:?}");
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for r in a.stop(&rt).into_iter().chain(b2.stop(&rt)) {
        *seen.entry(r).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "records consumed twice: {dups:?}");
    let want: BTreeSet<(i32, i64)> = (0..4).flat_map(|p| (0..250).map(move |o| (p, o))).collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), want, "every record consumed once");
}

/// A pattern subscription picks up a topic created after subscribing.
#[test]
fn pattern_subscription_picks_up_new_topics() {
    let broker = Tansu::start();
    let b = broker.addr().to_owned();
    let prefix = unique_topic("pat");
    let mut raw = ferrokafka_tests::raw::RawConnection::connect(&b).unwrap();
    raw.create_topic(&format!("{prefix}-a"), 2).unwrap();
    let rt = runtime();
    let cfg = config(&b, &unique_topic("g-pat"), &[("metadata.max.age.ms", "500")]);
    let assigned = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (a, s, pattern) = (assigned.clone(), stop.clone(), format!("^{prefix}-.*"));
    let task = rt.spawn(async move {
        let mut c = GroupConsumer::new(cfg).await.unwrap();
        c.subscribe_pattern(&pattern).unwrap();
        while !s.load(Ordering::Relaxed) {
            c.poll(Duration::from_millis(100)).await.unwrap();
            *a.lock().unwrap() = c.assignment();
        }
        c.close().await.unwrap();
    });
    let wait = |n: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while assigned.lock().unwrap().len() != n {
            assert!(
                std::time::Instant::now() < deadline,
                "expected {n} partitions, have {:?}",
                assigned.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait(2);
    raw.create_topic(&format!("{prefix}-b"), 3).unwrap();
    raw.create_topic(&format!("other-{prefix}"), 1).unwrap();
    wait(5);
    stop.store(true, Ordering::Relaxed);
    rt.block_on(task).unwrap();
}

/// Injected coordinator errors and a coordinator move on the mock: the member
/// rediscovers the coordinator, keeps consuming and its commits land.
#[test]
fn coordinator_errors_and_moves_are_survived() {
    let mut mock = MockCluster::start(3);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("coord");
    mock.create_topic(&topic, 2);
    let group = unique_topic("g-coord");
    mock.must(&format!("coordinator group {group} 1"));
    let rt = runtime();
    produce(&rt, &b, &topic, 50, 2);
    rt.block_on(async {
        let mut c = GroupConsumer::new(config(&b, &group, &[])).await.unwrap();
        c.subscribe([topic.clone()]);
        let mut got = 0;
        while got < 50 {
            got += c.poll(Duration::from_millis(200)).await.unwrap().iter().count();
        }
        mock.must("error OffsetCommit NOT_COORDINATOR 2");
        mock.must("error Heartbeat NOT_COORDINATOR 2");
        mock.must(&format!("coordinator group {group} 2"));
        c.commit_sync(None).await.unwrap();
        while got < 100 {
            got += c.poll(Duration::from_millis(200)).await.unwrap().iter().count();
        }
        c.commit_sync(None).await.unwrap();
        let committed = c.committed(&partitions(&topic, 2).into_iter().collect::<Vec<_>>()).await.unwrap();
        assert!(committed.values().all(|o| o.as_ref().map(|o| o.offset) == Some(50)), "{committed:?}");
        c.close().await.unwrap();
    });
}

const KPY_MEMBER: &str = r#"
import json, select, sys, time
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, RebalanceInProgressError
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
boot, topic, group, strategy, end = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
assignor = RangePartitionAssignor if strategy == "range" else RoundRobinPartitionAssignor
c = KafkaConsumer(topic, bootstrap_servers=boot, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
                  partition_assignment_strategy=[assignor], session_timeout_ms=6000, heartbeat_interval_ms=500,
                  api_version_auto_timeout_ms=20000)
def say(**kv):
    print(json.dumps(kv), flush=True)
# Consume and commit until told to stop (a line on stdin), at most 2 minutes; say
# "done" once every partition it holds is read and committed to the end.
deadline, done = time.time() + 120, False
while time.time() < deadline and not select.select([sys.stdin], [], [], 0)[0]:
    c.poll(timeout_ms=200)
    held = c.assignment()
    if held:
        try:
            c.commit()
        except (CommitFailedError, RebalanceInProgressError):
            pass  # the group is rebalancing: the next poll rejoins
    say(assigned=sorted(tp.partition for tp in held))
    if held and not done and all(c.position(tp) == end and c.committed(tp) == end for tp in held):
        done = True
        say(done=True)
# No more polls (so no rejoin: the other member's partitions never become ours); what
# the group has committed, once every partition is at the end (at most 30 s).
say(stopped=True)
parts = [TopicPartition(topic, p) for p in range(6)]
deadline, committed = time.time() + 30, {}
while time.time() < deadline:
    committed = {str(tp.partition): c.committed(tp) for tp in parts}
    if all(o == end for o in committed.values()):
        break
    time.sleep(0.2)
say(committed=committed)
c.close(autocommit=False)
"#;

/// A ferrokafka member and a kafka-python member share a group (range and
/// roundrobin) and see each other's committed offsets. The records are produced once
/// the two have split the partitions, and kafka-python stops polling before our member
/// leaves: each partition's records are read and committed by its owner only, so an
/// offset of 10 on our partitions is our commit, and on theirs kafka-python's.
#[test]
fn mixed_group_with_kafka_python() {
    use std::io::{BufRead, Write};
    let broker = Tansu::start();
    let b = broker.addr().to_owned();
    let rt = runtime();
    for strategy in ["range", "roundrobin"] {
        let topic = unique_topic(&format!("mixed-{strategy}"));
        ferrokafka_tests::raw::RawConnection::connect(&b).unwrap().create_topic(&topic, 6).unwrap();
        let group = unique_topic("g-mixed");
        let mut py = std::process::Command::new("python3")
            .args(["-c", KPY_MEMBER, &b, &topic, &group, strategy, "10"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 with kafka-python");
        let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
        let stdout = py.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        // kafka-python's next line saying `key`.
        let said = |key: &str| loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(v) if v.get(key).is_some() => break v[key].clone(),
                Ok(_) => continue,
                Err(e) => panic!("{strategy}: no {key:?} from kafka-python: {e}"),
            }
        };
        let ours =
            Member::start(&rt, config(&b, &group, &[("partition.assignment.strategy", strategy)]), vec![topic.clone()]);
        let all: BTreeSet<i32> = (0..6).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut theirs: BTreeSet<i32> = BTreeSet::new();
        loop {
            while let Ok(v) = rx.try_recv() {
                if let Some(a) = v.get("assigned") {
                    theirs = a.as_array().unwrap().iter().map(|p| p.as_i64().unwrap() as i32).collect();
                }
            }
            let mine: BTreeSet<i32> = ours.assigned().iter().map(|tp| tp.partition).collect();
            if !mine.is_empty()
                && !theirs.is_empty()
                && mine.is_disjoint(&theirs)
                && mine.union(&theirs).cloned().collect::<BTreeSet<_>>() == all
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{strategy}: no shared split: ours {mine:?}, kafka-python {theirs:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mine: Vec<TopicPartition> = ours.assigned().into_iter().collect();
        produce(&rt, &b, &topic, 10, 6);
        // Our member reads the ten records of each of its partitions; kafka-python reads
        // and commits its own, then stops polling.
        let read_all = || {
            let read = ours.records.lock().unwrap();
            mine.iter().all(|tp| read.iter().any(|&(p, o)| p == tp.partition && o == 9))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !read_all() {
            assert!(std::time::Instant::now() < deadline, "{strategy}: our member did not read {mine:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        said("done");
        py.stdin.take().unwrap().write_all(b"stop\n").unwrap();
        said("stopped");
        ours.stop(&rt); // commits its positions
        let committed = said("committed");
        py.wait().unwrap();
        // kafka-python sees the offsets our member committed for its partitions.
        for tp in &mine {
            assert_eq!(committed[tp.partition.to_string()], 10, "{strategy}: kafka-python sees our commit for {tp}");
        }
        // And we see what kafka-python committed for the partitions it consumed.
        rt.block_on(async {
            let c = GroupConsumer::new(config(&b, &group, &[])).await.unwrap();
            let got = c.committed(&partitions(&topic, 6).into_iter().collect::<Vec<_>>()).await.unwrap();
            for (tp, om) in got {
                assert_eq!(om.map(|o| o.offset), Some(10), "{strategy}: committed offset of {tp}");
            }
        });
    }
}
