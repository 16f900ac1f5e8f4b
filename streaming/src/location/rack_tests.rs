//! Rack-aware placement: executors in a rack holding a replica rank first, the balance
//! stays, and without racks nothing changes.

use std::collections::{BTreeMap, HashMap};

use super::*;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

const RACKS: [&str; 3] = ["az-a", "az-b", "az-c"];

/// Two executors in each of three racks.
fn racked() -> Vec<Executor> {
    racked_n(6)
}

/// Partition p has replicas in racks p % 3 and (p + 1) % 3.
fn replica_racks(n: i32) -> HashMap<TopicPartition, Vec<String>> {
    (0..n).map(|p| (tp(p), vec![RACKS[p as usize % 3].to_owned(), RACKS[(p as usize + 1) % 3].to_owned()])).collect()
}

fn counts(placed: &BTreeMap<TopicPartition, Executor>) -> Vec<usize> {
    let mut c: BTreeMap<&str, usize> = BTreeMap::new();
    for e in placed.values() {
        *c.entry(e.id.as_str()).or_default() += 1;
    }
    c.into_values().collect()
}

/// Executors `0..m`, rack `i % 3`.
fn racked_n(m: usize) -> Vec<Executor> {
    (0..m).map(|i| Executor::new(i.to_string(), format!("h{i}")).with_rack(RACKS[i % 3])).collect()
}

fn inside(placed: &BTreeMap<TopicPartition, Executor>, racks: &HashMap<TopicPartition, Vec<String>>) -> usize {
    placed.iter().filter(|(p, e)| racks[*p].contains(e.rack.as_ref().unwrap())).count()
}

/// Placement is a stable matching, not a maximum one: a partition whose racks' executors
/// are full goes elsewhere. Over several sizes, rack-aware placement keeps at least 90%
/// of the partitions in a rack of their replicas (rackless: about two thirds, as each
/// partition has replicas in two of three racks), and the balance holds.
#[test]
fn partitions_land_in_a_rack_of_their_replicas_and_stay_balanced() {
    for (n, m) in [(30, 6), (60, 6), (99, 9), (100, 12), (7, 3)] {
        let parts: Vec<TopicPartition> = (0..n).map(tp).collect();
        let racks = replica_racks(n);
        let execs = racked_n(m);
        let rackless = inside(&PreferConsistent.place(&parts, &execs, &HashMap::new()).unwrap(), &racks);
        for strategy in [&PreferConsistent as &dyn LocationStrategy, &PreferBrokers] {
            let placed = strategy.place_near(&parts, &execs, &HashMap::new(), &racks).unwrap();
            assert_eq!(placed.len(), n as usize);
            let near = inside(&placed, &racks);
            assert!(
                near * 10 >= n as usize * 9,
                "{} n={n} m={m}: {near} in rack (rackless {rackless})",
                strategy.name()
            );
            assert!(near > rackless || rackless == n as usize, "n={n} m={m}: {near} vs rackless {rackless}");
            let c = counts(&placed);
            assert!(c.iter().max().unwrap() - c.iter().min().unwrap() <= 1, "balanced: {c:?}");
        }
    }
}

#[test]
fn balance_wins_over_racks_when_one_rack_holds_every_replica() {
    let parts: Vec<TopicPartition> = (0..12).map(tp).collect();
    let racks: HashMap<TopicPartition, Vec<String>> =
        parts.iter().map(|p| (p.clone(), vec!["az-a".to_owned()])).collect();
    let placed = PreferConsistent.place_near(&parts, &racked(), &HashMap::new(), &racks).unwrap();
    assert_eq!(counts(&placed), [2; 6], "still 2 per executor");
    let in_a = placed.values().filter(|e| e.rack.as_deref() == Some("az-a")).count();
    assert_eq!(in_a, 4, "the two az-a executors are filled first");
}

#[test]
fn without_racks_the_placement_does_not_change() {
    let parts: Vec<TopicPartition> = (0..40).map(tp).collect();
    let plain: Vec<Executor> = (0..5).map(|i| Executor::new(i.to_string(), "h")).collect();
    let racks = replica_racks(40);
    let before = PreferConsistent.place(&parts, &plain, &HashMap::new()).unwrap();
    // Executors without racks: the replica racks change nothing.
    assert_eq!(PreferConsistent.place_near(&parts, &plain, &HashMap::new(), &racks).unwrap(), before);
    // Racked executors but no replica racks known: the plain hash order, racks aside.
    let with_racks: Vec<Executor> = plain.iter().cloned().map(|e| e.with_rack("az-a")).collect();
    let placed = PreferConsistent.place_near(&parts, &with_racks, &HashMap::new(), &HashMap::new()).unwrap();
    let ids =
        |m: &BTreeMap<TopicPartition, Executor>| m.iter().map(|(p, e)| (p.clone(), e.id.clone())).collect::<Vec<_>>();
    assert_eq!(ids(&placed), ids(&before));
}
