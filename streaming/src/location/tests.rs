//! Tests of the location strategies: exact balance, determinism, the placement rules of each
//! strategy, and stability measured against Spark's hash-modulo scheme.

use std::collections::{BTreeMap, HashMap};

use super::balanced::{self, Matcher};
use super::*;

/// splitmix64: a small deterministic generator for the property tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        balanced::fmix64(self.0)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn ex(id: &str, host: &str) -> Executor {
    Executor::new(id, host)
}

/// `n` partitions over up to 4 topics, like a subscription to several topics.
fn partitions(rng: &mut Rng, n: usize) -> Vec<TopicPartition> {
    let topics = rng.range(1, 4);
    let prefix = rng.next() % 1000;
    (0..n).map(|i| tp(&format!("events-{prefix}-{}", i % topics), (i / topics) as i32)).collect()
}

/// `m` executors with Spark-like numeric ids, two or three per host.
fn executors(rng: &mut Rng, m: usize) -> Vec<Executor> {
    let first = rng.range(1, 50);
    (0..m).map(|i| ex(&(first + i).to_string(), &format!("10.0.0.{}", (first + i) / 3))).collect()
}

fn consistent(partitions: &[TopicPartition], executors: &[Executor]) -> BTreeMap<TopicPartition, Executor> {
    PreferConsistent.place(partitions, executors, &HashMap::new()).unwrap()
}

fn counts(placed: &BTreeMap<TopicPartition, Executor>, executors: &[Executor]) -> Vec<usize> {
    executors.iter().map(|e| placed.values().filter(|x| *x == e).count()).collect()
}

fn assert_balanced(placed: &BTreeMap<TopicPartition, Executor>, partitions: usize, executors: &[Executor]) {
    assert_eq!(placed.len(), partitions);
    let c = counts(placed, executors);
    let (lo, hi) = (c.iter().min().copied().unwrap_or(0), c.iter().max().copied().unwrap_or(0));
    assert!(hi - lo <= 1, "counts {c:?}");
    assert_eq!(lo, partitions / executors.len(), "counts {c:?}");
}

/// Partitions whose executor differs between two placements.
fn moved(a: &BTreeMap<TopicPartition, Executor>, b: &BTreeMap<TopicPartition, Executor>) -> usize {
    a.iter().filter(|(tp, e)| b.get(*tp) != Some(*e)).count()
}

/// Java's `String.hashCode` (UTF-16 code units, wrapping).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Kafka's Java `TopicPartition.hashCode`: `31 * (31 + partition) + topic.hashCode()`.
fn java_tp_hash(tp: &TopicPartition) -> i32 {
    31i32.wrapping_mul(31i32.wrapping_add(tp.partition)).wrapping_add(java_string_hash(&tp.topic))
}

/// Spark's `KafkaRDD.getPreferredLocations` for PreferConsistent: executors sorted
/// descending by host then id, index `Math.floorMod(tp.hashCode, executors)`.
fn spark_place(partitions: &[TopicPartition], executors: &[Executor]) -> BTreeMap<TopicPartition, Executor> {
    let mut sorted = executors.to_vec();
    sorted.sort_by(|a, b| (&b.host, &b.id).cmp(&(&a.host, &a.id)));
    let len = sorted.len() as i32;
    partitions.iter().map(|tp| (tp.clone(), sorted[java_tp_hash(tp).rem_euclid(len) as usize].clone())).collect()
}

/// The allowance for partitions moving between executors that are both still there, when
/// one executor leaves or joins: the stateless balanced placement re-decides which executors
/// hold the `n mod m` extra slots and which partitions sit away from their first choice, which
/// costs O(√n) moves, not O(1): over 3,600 random clusters (n ≤ 500, m ≤ 20) the mean was
/// 0.52·√n and the worst 1.57·√n; Spark's scheme moves most partitions.
fn rebalancing_allowance(n: usize) -> usize {
    (1.75 * (n as f64).sqrt()).ceil() as usize + 2
}

#[test]
fn no_executors_is_a_placement_error() {
    let parts = [tp("t", 0)];
    let fixed = PreferFixed::new(HashMap::from([(tp("t", 0), "h".to_string())]));
    let strategies: [&dyn LocationStrategy; 3] = [&PreferConsistent, &PreferBrokers, &fixed];
    for s in strategies {
        let err = s.place(&parts, &[], &HashMap::new()).unwrap_err();
        assert!(matches!(err, StreamingError::NoExecutors { .. }), "{err}");
        assert_eq!(err.to_string(), format!("{} needs at least one executor", s.name()));
        // Even for no partitions: the executor set is wrong, not the batch.
        assert!(s.place(&[], &[], &HashMap::new()).is_err());
    }
}

#[test]
fn names_batch_reads_and_display() {
    assert_eq!(PreferConsistent.name(), "PreferConsistent");
    assert_eq!(PreferBrokers.name(), "PreferBrokers");
    assert_eq!(PreferFixed::default().name(), "PreferFixed");
    assert!(PreferConsistent.allowed_for_batch_reads());
    assert!(!PreferBrokers.allowed_for_batch_reads());
    assert!(PreferFixed::default().allowed_for_batch_reads());
    assert_eq!(ex("3", "host-a").to_string(), "executor_host-a_3");
    let map = HashMap::from([(tp("t", 1), "h".to_string())]);
    assert_eq!(PreferFixed::new(map.clone()).map(), &map);
}

#[test]
fn consistent_is_exactly_balanced() {
    let mut rng = Rng(1);
    for (n, m) in [(0, 1), (0, 3), (1, 1), (1, 5), (4, 5), (5, 5), (6, 5), (7, 3), (100, 7), (500, 20), (64, 64)] {
        let (parts, execs) = (partitions(&mut rng, n), executors(&mut rng, m));
        assert_balanced(&consistent(&parts, &execs), n, &execs);
    }
    for _ in 0..200 {
        let (n, m) = (rng.range(0, 300), rng.range(1, 25));
        let (parts, execs) = (partitions(&mut rng, n), executors(&mut rng, m));
        assert_balanced(&consistent(&parts, &execs), n, &execs);
    }
}

#[test]
fn consistent_is_deterministic_whatever_the_input_order_and_duplicates() {
    let mut rng = Rng(2);
    for _ in 0..50 {
        let (n, m) = (rng.range(1, 200), rng.range(1, 12));
        let (parts, execs) = (partitions(&mut rng, n), executors(&mut rng, m));
        let expected = consistent(&parts, &execs);
        let mut parts2: Vec<TopicPartition> = parts.iter().rev().cloned().collect();
        parts2.extend(parts.iter().take(5).cloned());
        let mut execs2 = execs.clone();
        execs2.rotate_left(m / 2);
        execs2.push(execs[0].clone());
        assert_eq!(consistent(&parts2, &execs2), expected);
    }
}

#[test]
fn placement_is_pinned() {
    // The hash is part of the placement contract (processes must agree, caches stay warm
    // across upgrades): these values must not change.
    assert_eq!(balanced::partition_key(&tp("events", 0)), 0x4b77_a517_36ff_d58f);
    assert_eq!(balanced::executor_key(&ex("1", "a")), 0xd846_a913_b3f5_1768);
    assert_eq!(balanced::weight(1, 2), 0xbea0_03d2_a6d8_2826);
    let parts: Vec<TopicPartition> = (0..6).map(|p| tp("events", p)).collect();
    let execs = [ex("1", "a"), ex("2", "b"), ex("3", "c")];
    let placed = consistent(&parts, &execs);
    let ids: Vec<&str> = placed.values().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, PINNED_IDS);
}

const PINNED_IDS: [&str; 6] = ["1", "2", "3", "2", "1", "3"];

/// The deferred-acceptance result equals taking (partition, executor) pairs greedily in the
/// common pair order, pass by pass: the unique stable matching, hence order-independent.
#[test]
fn deferred_acceptance_matches_the_greedy_definition() {
    fn greedy(m: &Matcher) -> Vec<(usize, usize)> {
        let (n, k) = (m.partition_keys.len(), m.executor_keys.len());
        // Pair order: rank of the executor in the partition's list, weight descending, partition.
        let mut pairs = Vec::new();
        for p in 0..n {
            let mut list: Vec<(u64, usize)> =
                (0..k).map(|e| (balanced::weight(m.partition_keys[p], m.executor_keys[e]), e)).collect();
            list.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            pairs.extend(list.into_iter().enumerate().map(|(rank, (w, e))| (rank, std::cmp::Reverse(w), p, e)));
        }
        pairs.sort();
        let (floor, mut count, mut out) = (n / k, vec![0; k], vec![None; n]);
        for pass_capacity in [floor, floor + 1] {
            for &(_, _, p, e) in &pairs {
                if out[p].is_none() && count[e] < pass_capacity {
                    count[e] += 1;
                    out[p] = Some(e);
                }
            }
        }
        out.into_iter().enumerate().map(|(p, e)| (p, e.unwrap())).collect()
    }
    let mut rng = Rng(3);
    for _ in 0..300 {
        let (n, k) = (rng.range(0, 120), rng.range(1, 15));
        let mut pk: Vec<u64> = (0..n).map(|_| rng.next()).collect();
        let mut ek: Vec<u64> = (0..k).map(|_| rng.next()).collect();
        pk.sort_unstable();
        ek.sort_unstable();
        let m = Matcher { partition_keys: pk, executor_keys: ek, racks: None };
        assert_eq!(balanced::assignment(&m), greedy(&m));
    }
}

/// Statistics of one-executor changes over random clusters (n ≤ 500 partitions, m ≤ 20
/// executors): ours and Spark's.
#[derive(Default, Debug)]
struct Churn {
    cases: usize,
    partitions: usize,
    forced: usize,
    ours_moved: usize,
    ours_extra_max: usize,
    /// Largest `extra / √n`.
    ours_extra_ratio_max: f64,
    spark_forced: usize,
    spark_moved: usize,
}

fn churn(seed: u64, cases: usize, mut check: impl FnMut(usize, usize, usize, usize)) -> Churn {
    let mut rng = Rng(seed);
    let mut c = Churn::default();
    for _ in 0..cases {
        let (n, m) = (rng.range(1, 500), rng.range(2, 20));
        let (parts, execs) = (partitions(&mut rng, n), executors(&mut rng, m));
        let gone = rng.range(0, m - 1);
        let rest: Vec<Executor> =
            execs.iter().enumerate().filter(|(i, _)| *i != gone).map(|(_, e)| e.clone()).collect();
        let (before, after) = (consistent(&parts, &execs), consistent(&parts, &rest));
        assert_balanced(&after, n, &rest);
        let forced = before.values().filter(|e| **e == execs[gone]).count();
        let ours = moved(&before, &after);
        let spark_before = spark_place(&parts, &execs);
        let spark = moved(&spark_before, &spark_place(&parts, &rest));
        c.spark_forced += spark_before.values().filter(|e| **e == execs[gone]).count();
        check(n, m, forced, ours);
        c.cases += 1;
        c.partitions += n;
        c.forced += forced;
        c.ours_moved += ours;
        c.ours_extra_max = c.ours_extra_max.max(ours - forced);
        c.ours_extra_ratio_max = c.ours_extra_ratio_max.max((ours - forced) as f64 / (n as f64).sqrt());
        c.spark_moved += spark;
    }
    c
}

#[test]
fn removing_an_executor_moves_its_partitions_and_little_else() {
    let c = churn(4, 300, |n, _m, forced, ours| {
        assert!(ours >= forced);
        assert!(ours - forced <= rebalancing_allowance(n), "n={n} forced={forced} moved={ours}");
    });
    println!("removal: {c:?}");
}

#[test]
fn adding_an_executor_moves_about_its_share() {
    // Adding executor x to `rest` is removing it from `execs`, read backwards: the partitions
    // that move are the new executor's share (floor or ceil of n / m) plus the rebalancing.
    churn(5, 300, |n, m, share, ours| {
        assert!(share <= n.div_ceil(m));
        assert!(ours <= n.div_ceil(m) + rebalancing_allowance(n), "n={n} m={m} moved={ours}");
    });
}

#[test]
fn moves_far_fewer_partitions_than_spark() {
    let c = churn(6, 300, |_, _, _, _| {});
    println!("{c:?}");
    let extra = c.ours_moved - c.forced;
    let spark_extra = c.spark_moved - c.spark_forced;
    println!(
        "one executor removed, {} clusters, {} partitions: ours moved {} = {} forced + {} extra (max {} in one \
         cluster, max {:.2}·√n); spark moved {} = {} forced + {} extra",
        c.cases,
        c.partitions,
        c.ours_moved,
        c.forced,
        extra,
        c.ours_extra_max,
        c.ours_extra_ratio_max,
        c.spark_moved,
        c.spark_forced,
        spark_extra
    );
    assert!(c.ours_moved * 3 < c.spark_moved);
    assert!(extra * 10 < spark_extra);

    // One concrete cluster: 120 partitions of one topic, executors 1..=10 on five hosts.
    let parts: Vec<TopicPartition> = (0..120).map(|p| tp("events", p)).collect();
    let execs: Vec<Executor> = (1..=11).map(|i| ex(&i.to_string(), &format!("host-{}", (i + 1) / 2))).collect();
    let ten = &execs[..10];
    let nine: Vec<Executor> = ten.iter().filter(|e| e.id != "4").cloned().collect();
    for (label, before, after) in [("remove 4", ten, &nine[..]), ("add 11", ten, &execs[..])] {
        let ours = moved(&consistent(&parts, before), &consistent(&parts, after));
        let spark = moved(&spark_place(&parts, before), &spark_place(&parts, after));
        println!("120 partitions, 10 executors, {label}: ours moved {ours}, spark moved {spark}");
        assert!(ours * 3 < spark, "{label}: {ours} vs {spark}");
    }
}

#[test]
fn java_hash_codes_match_java() {
    assert_eq!(java_string_hash(""), 0);
    assert_eq!(java_string_hash("hello"), 99_162_322);
    assert_eq!(java_string_hash("Aa"), java_string_hash("BB"));
    assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    assert_eq!(java_tp_hash(&tp("hello", 0)), 961 + 99_162_322);
    // floorMod of a negative hash stays in range.
    let execs = [ex("1", "a"), ex("2", "a"), ex("3", "b")];
    let p = spark_place(&[tp("polygenelubricants", 0)], &execs);
    assert_eq!(p.len(), 1);
}

#[test]
fn prefer_brokers_places_on_the_leader_host() {
    let execs = [ex("1", "broker-a"), ex("2", "broker-a"), ex("3", "broker-b"), ex("4", "other")];
    let parts: Vec<TopicPartition> = (0..12).map(|p| tp("t", p)).collect();
    let mut leaders = HashMap::new();
    for p in 0..6 {
        leaders.insert(tp("t", p), "broker-a".to_string());
    }
    for p in 6..9 {
        leaders.insert(tp("t", p), "BROKER-B".to_string()); // hosts compare case-insensitively
    }
    leaders.insert(tp("t", 9), "broker-z".to_string()); // no executor there
                                                        // 10 and 11: leader unknown
    let placed = PreferBrokers.place(&parts, &execs, &leaders).unwrap();
    assert_eq!(placed.len(), 12);
    for p in 0..6 {
        assert_eq!(placed[&tp("t", p)].host, "broker-a");
    }
    // Balanced between the two executors of broker-a.
    let on_1 = (0..6).filter(|p| placed[&tp("t", *p)].id == "1").count();
    assert_eq!(on_1, 3);
    for p in 6..9 {
        assert_eq!(placed[&tp("t", p)], execs[2]);
    }
    // The rest: consistent placement over all executors, balanced among themselves.
    let rest = [tp("t", 9), tp("t", 10), tp("t", 11)];
    let expected = consistent(&rest, &execs);
    for p in &rest {
        assert_eq!(placed[p], expected[p]);
    }
    let hosts: std::collections::BTreeSet<&Executor> = rest.iter().map(|p| &placed[p]).collect();
    assert_eq!(hosts.len(), 3);
}

#[test]
fn prefer_brokers_without_matching_hosts_is_consistent() {
    let mut rng = Rng(7);
    let (parts, execs) = (partitions(&mut rng, 40), executors(&mut rng, 5));
    let leaders: HashMap<TopicPartition, String> = parts.iter().map(|p| (p.clone(), "elsewhere".into())).collect();
    assert_eq!(PreferBrokers.place(&parts, &execs, &leaders).unwrap(), consistent(&parts, &execs));
    assert_eq!(PreferBrokers.place(&parts, &execs, &HashMap::new()).unwrap(), consistent(&parts, &execs));
}

#[test]
fn prefer_brokers_is_stable_within_a_host() {
    // Losing an executor on one host moves nothing led from other hosts.
    let execs: Vec<Executor> = (0..6).map(|i| ex(&i.to_string(), if i < 3 { "a" } else { "b" })).collect();
    let parts: Vec<TopicPartition> = (0..60).map(|p| tp("t", p)).collect();
    let leaders: HashMap<TopicPartition, String> =
        parts.iter().map(|p| (p.clone(), if p.partition % 2 == 0 { "a" } else { "b" }.to_string())).collect();
    let before = PreferBrokers.place(&parts, &execs, &leaders).unwrap();
    let after = PreferBrokers.place(&parts, &execs[..5], &leaders).unwrap();
    for p in &parts {
        if p.partition % 2 == 0 {
            assert_eq!(before[p], after[p]);
        } else if before[p] != execs[5] {
            assert_eq!(after[p].host, "b");
        }
    }
}

#[test]
fn prefer_fixed_follows_the_map() {
    let execs = [ex("1", "h1"), ex("2", "h1"), ex("3", "h2")];
    let parts: Vec<TopicPartition> = (0..10).map(|p| tp("t", p)).collect();
    let mut map = HashMap::new();
    for p in 0..4 {
        map.insert(tp("t", p), "h1".to_string());
    }
    map.insert(tp("t", 4), "h2".to_string());
    map.insert(tp("t", 5), "gone".to_string()); // host without executors → anywhere
    map.insert(tp("other", 0), "h2".to_string()); // not in the batch: ignored
    let fixed = PreferFixed::new(map);
    let placed = fixed.place(&parts, &execs, &HashMap::new()).unwrap();
    assert_eq!(placed.len(), 10);
    for p in 0..4 {
        assert_eq!(placed[&tp("t", p)].host, "h1");
    }
    assert_eq!((0..4).filter(|p| placed[&tp("t", *p)].id == "1").count(), 2);
    assert_eq!(placed[&tp("t", 4)], execs[2]);
    let rest: Vec<TopicPartition> = (5..10).map(|p| tp("t", p)).collect();
    let expected = consistent(&rest, &execs);
    for p in &rest {
        assert_eq!(placed[p], expected[p]);
    }
    // Leaders are ignored by PreferFixed.
    let leaders = HashMap::from([(tp("t", 7), "h2".to_string())]);
    assert_eq!(fixed.place(&parts, &execs, &leaders).unwrap(), placed);
}

#[test]
fn strategies_are_usable_as_trait_objects() {
    let boxed: Vec<Box<dyn LocationStrategy>> =
        vec![Box::new(PreferConsistent), Box::new(PreferBrokers), Box::new(PreferFixed::default())];
    let execs = [ex("1", "h")];
    for s in &boxed {
        let placed = s.place(&[tp("t", 0), tp("t", 1)], &execs, &HashMap::new()).unwrap();
        assert!(placed.values().all(|e| *e == execs[0]));
        assert!(!format!("{s:?}").is_empty());
    }
}
