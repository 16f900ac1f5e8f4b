//! Unit tests and property tests of the assignors and the ConsumerProtocol codec.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use ferrokafka_protocol::ProtocolError;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::Decodable;
use proptest::prelude::*;

use super::protocol::{decode_sticky_user_data, encode_sticky_user_data};
use super::*;
use crate::config::ConfigError;

type Result<T> = std::result::Result<T, ClientError>;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn ppt(counts: &[(&str, i32)]) -> BTreeMap<String, i32> {
    counts.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
}

fn member(id: &str, topics: &[&str]) -> MemberSubscription {
    MemberSubscription::new(id, topics.iter().copied())
}

fn owning(id: &str, topics: &[&str], owned: &[TopicPartition], generation: i32) -> MemberSubscription {
    MemberSubscription { owned_partitions: owned.to_vec(), generation_id: generation, ..member(id, topics) }
}

/// `member -> ["t-p", ...]`.
fn names(result: &BTreeMap<String, MemberAssignment>) -> BTreeMap<String, Vec<String>> {
    result.iter().map(|(m, a)| (m.clone(), a.partitions.iter().map(ToString::to_string).collect())).collect()
}

fn expect(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs.iter().map(|(m, ps)| ((*m).to_owned(), ps.iter().map(|p| (*p).to_owned()).collect())).collect()
}

fn all_assignors() -> Vec<Box<dyn Assignor>> {
    vec![
        Box::new(RangeAssignor),
        Box::new(RoundRobinAssignor),
        Box::new(StickyAssignor::new()),
        Box::new(CooperativeStickyAssignor),
    ]
}

// ---------------------------------------------------------------- range, roundrobin

#[test]
fn range_two_members_two_topics() -> Result<()> {
    let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
    let r = RangeAssignor.assign(&ppt(&[("t0", 3), ("t1", 3)]), &members)?;
    assert_eq!(names(&r), expect(&[("C0", &["t0-0", "t0-1", "t1-0", "t1-1"]), ("C1", &["t0-2", "t1-2"])]));
    Ok(())
}

#[test]
fn roundrobin_two_members_two_topics() -> Result<()> {
    let members = [member("C1", &["t0", "t1"]), member("C0", &["t1", "t0"])];
    let r = RoundRobinAssignor.assign(&ppt(&[("t0", 3), ("t1", 3)]), &members)?;
    assert_eq!(names(&r), expect(&[("C0", &["t0-0", "t0-2", "t1-1"]), ("C1", &["t0-1", "t1-0", "t1-2"])]));
    Ok(())
}

#[test]
fn uneven_subscriptions() -> Result<()> {
    // The Java documentation's example: C0 on t0, C1 on t0 and t1, C2 on t0, t1 and t2.
    let counts = ppt(&[("t0", 1), ("t1", 2), ("t2", 3)]);
    let members = [member("C0", &["t0"]), member("C1", &["t0", "t1"]), member("C2", &["t0", "t1", "t2"])];
    let rr = RoundRobinAssignor.assign(&counts, &members)?;
    assert_eq!(names(&rr), expect(&[("C0", &["t0-0"]), ("C1", &["t1-0"]), ("C2", &["t1-1", "t2-0", "t2-1", "t2-2"])]));
    let range = RangeAssignor.assign(&counts, &members)?;
    assert_eq!(
        names(&range),
        expect(&[("C0", &["t0-0"]), ("C1", &["t1-0"]), ("C2", &["t1-1", "t2-0", "t2-1", "t2-2"])])
    );
    let sticky = StickyAssignor::new().assign(&counts, &members)?;
    assert_eq!(
        names(&sticky),
        expect(&[("C0", &["t0-0"]), ("C1", &["t1-0", "t1-1"]), ("C2", &["t2-0", "t2-1", "t2-2"])])
    );
    Ok(())
}

#[test]
fn range_more_members_than_partitions() -> Result<()> {
    let members = [member("a", &["t"]), member("b", &["t"]), member("c", &["t"])];
    let r = RangeAssignor.assign(&ppt(&[("t", 2)]), &members)?;
    assert_eq!(names(&r), expect(&[("a", &["t-0"]), ("b", &["t-1"]), ("c", &[])]));
    Ok(())
}

#[test]
fn static_members_come_first_by_instance_id() -> Result<()> {
    let with_instance = |id: &str, instance: &str| MemberSubscription {
        group_instance_id: Some(instance.to_owned()),
        ..member(id, &["t"])
    };
    // Order: b (instance y), a (instance z), then dynamic 0, c.
    let members = [member("c", &["t"]), with_instance("a", "z"), member("0", &["t"]), with_instance("b", "y")];
    let counts = ppt(&[("t", 5)]);
    let r = RangeAssignor.assign(&counts, &members)?;
    assert_eq!(names(&r), expect(&[("b", &["t-0", "t-1"]), ("a", &["t-2"]), ("0", &["t-3"]), ("c", &["t-4"])]));
    let rr = RoundRobinAssignor.assign(&counts, &members)?;
    assert_eq!(names(&rr), expect(&[("b", &["t-0", "t-4"]), ("a", &["t-1"]), ("0", &["t-2"]), ("c", &["t-3"])]));
    Ok(())
}

#[test]
fn java_string_order_is_by_utf16_code_unit() {
    use std::cmp::Ordering;
    // U+10000 is a surrogate pair (D800 DC00), below U+FFFF in UTF-16, above it in UTF-8.
    assert_eq!(java_str_cmp("\u{10000}", "\u{FFFF}"), Ordering::Less);
    assert_eq!("\u{10000}".cmp("\u{FFFF}"), Ordering::Greater);
    assert_eq!(java_str_cmp("a", "b"), Ordering::Less);
    assert_eq!(java_str_cmp("ab", "a"), Ordering::Greater);
}

#[test]
fn empty_group_and_members_without_topics() -> Result<()> {
    let counts = ppt(&[("t", 4)]);
    for a in all_assignors() {
        assert!(a.assign(&counts, &[])?.is_empty(), "{}", a.name());
        let r = a.assign(&counts, &[member("idle", &[]), member("busy", &["t"])])?;
        assert_eq!(names(&r), expect(&[("busy", &["t-0", "t-1", "t-2", "t-3"]), ("idle", &[])]), "{}", a.name());
    }
    Ok(())
}

#[test]
fn topics_missing_from_metadata_are_skipped() -> Result<()> {
    let counts = ppt(&[("t", 2), ("empty", 0), ("bogus", -3)]);
    let members = [member("a", &["t", "gone", "empty", "bogus"]), member("b", &["gone"])];
    for a in all_assignors() {
        let r = a.assign(&counts, &members)?;
        assert_eq!(names(&r), expect(&[("a", &["t-0", "t-1"]), ("b", &[])]), "{}", a.name());
    }
    Ok(())
}

#[test]
fn duplicate_topics_in_a_subscription_count_once() -> Result<()> {
    let members = [member("a", &["t", "t"]), member("b", &["t"])];
    let r = RangeAssignor.assign(&ppt(&[("t", 4)]), &members)?;
    assert_eq!(names(&r), expect(&[("a", &["t-0", "t-1"]), ("b", &["t-2", "t-3"])]));
    Ok(())
}

#[test]
fn duplicate_member_ids_are_an_error() {
    let members = [member("a", &["t"]), member("a", &["t"])];
    for a in all_assignors() {
        assert!(matches!(a.assign(&ppt(&[("t", 1)]), &members), Err(ClientError::Assignor { .. })), "{}", a.name());
    }
}

// ---------------------------------------------------------------- configuration

#[test]
fn strategies_from_config() {
    let names_of = |v: Option<&str>| -> std::result::Result<Vec<String>, ConfigError> {
        Ok(assignors_from_config(v)?.iter().map(|a| a.name().to_owned()).collect())
    };
    assert_eq!(names_of(None).unwrap(), ["range", "cooperative-sticky"]);
    assert_eq!(
        names_of(Some(
            "org.apache.kafka.clients.consumer.CooperativeStickyAssignor, org.apache.kafka.clients.consumer.RangeAssignor"
        ))
        .unwrap(),
        ["cooperative-sticky", "range"]
    );
    assert_eq!(
        names_of(Some("RoundRobin,org.apache.kafka.clients.consumer.StickyAssignor")).unwrap(),
        ["roundrobin", "sticky"]
    );
    assert_eq!(names_of(Some(" sticky ,, ")).unwrap(), ["sticky"]);
    for bad in [
        "",
        " , ",
        "range,nope",
        "range,range",
        "range,org.apache.kafka.clients.consumer.RangeAssignor",
        "org.apache.kafka.clients.consumer.rangeassignor",
        "org.apache.kafka.clients.consumer.Other",
    ] {
        match names_of(Some(bad)) {
            Err(ConfigError::InvalidValue { key, value, .. }) => {
                assert_eq!(key, "partition.assignment.strategy");
                assert_eq!(value, bad);
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let coop = &assignors_from_config(Some("cooperative-sticky")).unwrap()[0];
    assert_eq!(coop.supported_protocols(), [RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]);
    let range = &assignors_from_config(Some("range")).unwrap()[0];
    assert_eq!(range.supported_protocols(), [RebalanceProtocol::Eager]);
}

// ---------------------------------------------------------------- sticky

#[test]
fn sticky_keeps_everything_when_a_member_leaves() -> Result<()> {
    // KIP-54's first example: C1 leaves; C0 and C2 keep all they had.
    let topics = ["t0", "t1", "t2", "t3"];
    let counts = ppt(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)]);
    let members = [
        owning("C0", &topics, &[tp("t0", 0), tp("t1", 1), tp("t3", 0)], 1),
        owning("C2", &topics, &[tp("t1", 0), tp("t2", 1)], 1),
    ];
    let r = StickyAssignor::new().assign(&counts, &members)?;
    assert_eq!(
        names(&r),
        expect(&[("C0", &["t0-0", "t1-1", "t2-0", "t3-0"]), ("C2", &["t0-1", "t1-0", "t2-1", "t3-1"])])
    );
    Ok(())
}

#[test]
fn sticky_generation_conflicts() -> Result<()> {
    let counts = ppt(&[("t", 4)]);
    // b claims t-0 in an older generation: a (newer) keeps it; b's stale claims are void.
    let members = [
        owning("a", &["t"], &[tp("t", 0), tp("t", 1)], 5),
        owning("b", &["t"], &[tp("t", 0), tp("t", 2), tp("t", 3)], 4),
    ];
    let r = StickyAssignor::new().assign(&counts, &members)?;
    assert_eq!(names(&r)["a"], ["t-0", "t-1"]);
    assert_eq!(names(&r)["b"], ["t-2", "t-3"]); // unclaimed, and b is least loaded

    // Same generation, same partition: neither keeps it on that claim.
    let members = [
        owning("a", &["t"], &[tp("t", 0), tp("t", 1), tp("t", 2)], 5),
        owning("b", &["t"], &[tp("t", 0), tp("t", 3)], 5),
        owning("c", &["t"], &[], 5),
    ];
    let r = StickyAssignor::new().assign(&counts, &members)?;
    assert_eq!(names(&r), expect(&[("a", &["t-1", "t-2"]), ("b", &["t-3"]), ("c", &["t-0"])]));
    Ok(())
}

#[test]
fn sticky_older_generation_breaks_ties() -> Result<()> {
    // Only b's stale claim says where t-1 was; with equal loads it goes back to b.
    let members = [owning("a", &["t"], &[tp("t", 0)], 3), owning("b", &["t"], &[tp("t", 1)], 2)];
    let r = StickyAssignor::new().assign(&ppt(&[("t", 2)]), &members)?;
    assert_eq!(names(&r), expect(&[("a", &["t-0"]), ("b", &["t-1"])]));
    Ok(())
}

#[test]
fn sticky_drops_claims_of_unsubscribed_or_vanished_partitions() -> Result<()> {
    let members =
        [owning("a", &["t"], &[tp("u", 0), tp("t", 7), tp("t", 0)], 1), owning("b", &["t", "u"], &[tp("t", 1)], 1)];
    let r = StickyAssignor::new().assign(&ppt(&[("t", 2), ("u", 1)]), &members)?;
    assert_eq!(names(&r), expect(&[("a", &["t-0"]), ("b", &["t-1", "u-0"])]));
    Ok(())
}

#[test]
fn sticky_user_data_remembers_the_last_assignment() -> Result<()> {
    let a = StickyAssignor::new();
    assert_eq!(a.subscription_user_data(&["t".into()], &[], -1), None);
    // Without memory, what the member owns now.
    let ud = a.subscription_user_data(&["t".into()], &[tp("t", 1)], 4).unwrap();
    assert_eq!(decode_sticky_user_data(&ud), Some((vec![tp("t", 1)], Some(4))));
    a.on_assignment(&MemberAssignment { partitions: vec![tp("t", 2), tp("t", 0)], user_data: None }, 7);
    let ud = a.subscription_user_data(&["t".into()], &[], 8).unwrap();
    assert_eq!(decode_sticky_user_data(&ud), Some((vec![tp("t", 0), tp("t", 2)], Some(7))));

    // As leader, the user data stands in for owned partitions (an eager member owns none).
    let mut m0 = member("m0", &["t"]);
    m0.user_data = Some(ud);
    let mut m1 = member("m1", &["t"]);
    m1.user_data = Some(encode_sticky_user_data(&[tp("t", 1)], 7));
    let r = StickyAssignor::new().assign(&ppt(&[("t", 3)]), &[m1, m0])?;
    assert_eq!(names(&r), expect(&[("m0", &["t-0", "t-2"]), ("m1", &["t-1"])]));
    Ok(())
}

#[test]
fn sticky_user_data_versions() {
    // v0 (no generation) and garbage, as Java reads them.
    let v1 = encode_sticky_user_data(&[tp("a", 1), tp("a", 0), tp("b", 3)], 9);
    let v0 = v1.slice(..v1.len() - 4);
    assert_eq!(decode_sticky_user_data(&v1), Some((vec![tp("a", 0), tp("a", 1), tp("b", 3)], Some(9))));
    assert_eq!(decode_sticky_user_data(&v0), Some((vec![tp("a", 0), tp("a", 1), tp("b", 3)], None)));
    assert_eq!(decode_sticky_user_data(&Bytes::from_static(&[0, 0, 0, 5, 0])), None);
    assert_eq!(decode_sticky_user_data(&Bytes::from_static(&[0xff, 0xff, 0xff, 0xff])), None);
}

#[test]
fn cooperative_withholds_partitions_that_change_owner() -> Result<()> {
    let counts = ppt(&[("t", 4)]);
    let all = [tp("t", 0), tp("t", 1), tp("t", 2), tp("t", 3)];
    let members = [owning("a", &["t"], &all, 3), member("b", &["t"])];
    let r = CooperativeStickyAssignor.assign(&counts, &members)?;
    // a keeps two; the two it gives up are not yet b's.
    assert_eq!(names(&r), expect(&[("a", &["t-0", "t-1"]), ("b", &[])]));
    // Follow-up rebalance: a owns what it kept, the rest is free.
    let members = [owning("a", &["t"], &r["a"].partitions, 4), owning("b", &["t"], &[], 4)];
    let r = CooperativeStickyAssignor.assign(&counts, &members)?;
    assert_eq!(names(&r), expect(&[("a", &["t-0", "t-1"]), ("b", &["t-2", "t-3"])]));
    Ok(())
}

#[test]
fn cooperative_generation_from_user_data() -> Result<()> {
    let coop = CooperativeStickyAssignor;
    let ud = coop.subscription_user_data(&[], &[], 6).unwrap();
    assert_eq!(&ud[..], &[0, 0, 0, 6]);
    // b's generation (user data only, subscription v1) is older than a's: b's claim is void.
    let mut b = owning("b", &["t"], &[tp("t", 0)], -1);
    b.user_data = Some(coop.subscription_user_data(&[], &[], 5).unwrap());
    let mut a = owning("a", &["t"], &[tp("t", 0), tp("t", 1)], -1);
    a.user_data = Some(ud);
    let r = coop.assign(&ppt(&[("t", 3)]), &[a, b])?;
    assert_eq!(names(&r), expect(&[("a", &["t-0", "t-1"]), ("b", &["t-2"])]));
    Ok(())
}

#[test]
fn eager_sticky_through_the_wire() -> Result<()> {
    // Members own nothing when they rejoin (eager); the assignor's memory, sent as
    // user data, keeps the assignment sticky across generations.
    let topics = vec!["t".to_owned(), "u".to_owned()];
    let counts = ppt(&[("t", 4), ("u", 2)]);
    let assignors: Vec<(String, StickyAssignor)> =
        ["m1", "m2", "m3"].iter().map(|m| ((*m).to_owned(), StickyAssignor::new())).collect();
    let mut previous: BTreeMap<String, MemberAssignment> = BTreeMap::new();
    for (generation, size) in [(1, 2), (2, 3), (3, 2)] {
        let joined = &assignors[..size];
        let members = joined
            .iter()
            .map(|(id, a)| {
                let ud = a.subscription_user_data(&topics, &[], generation - 1);
                decode_subscription(id, None, encode_subscription(&topics, ud, &[], generation - 1, None, 1)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let leader = StickyAssignor::new();
        let result = leader.assign(&counts, &members)?;
        for (id, a) in joined {
            let assignment = decode_assignment(encode_assignment(&result[id], 0)?)?;
            if let Some(before) = previous.get(id) {
                let kept = assignment.partitions.iter().filter(|p| before.partitions.contains(p)).count();
                assert_eq!(
                    kept,
                    before.partitions.len().min(assignment.partitions.len()),
                    "{id} in generation {generation}"
                );
            }
            a.on_assignment(&assignment, generation);
            previous.insert(id.clone(), assignment);
        }
    }
    Ok(())
}

#[test]
fn sticky_large_group_with_churn() -> Result<()> {
    // 10 topics of 1000 partitions, 100 members in three subscription classes; then
    // 40 members leave and 30 of the rest change their subscription.
    let topics: Vec<String> = (0..10).map(|i| format!("topic{i}")).collect();
    let counts: BTreeMap<String, i32> = topics.iter().map(|t| (t.clone(), 1000)).collect();
    let mut members: Vec<MemberSubscription> =
        (0..100).map(|i| MemberSubscription::new(format!("m{i:03}"), topics.iter().skip(i % 3).cloned())).collect();
    let first = StickyAssignor::new().assign(&counts, &members)?;
    assert_eq!(first.values().map(|a| a.partitions.len()).sum::<usize>(), 10_000);
    for m in &mut members {
        m.owned_partitions = first[&m.member_id].partitions.clone();
        m.generation_id = 1;
    }
    members.truncate(60);
    for m in members.iter_mut().take(30) {
        m.topics = topics.clone();
    }
    let second = CooperativeStickyAssignor.assign(&counts, &members)?;
    for m in &members {
        for p in &second[&m.member_id].partitions {
            let owner = members.iter().find(|o| o.owned_partitions.contains(p));
            assert!(owner.is_none_or(|o| o.member_id == m.member_id), "{p} moves directly");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- wire format

fn subscription_case() -> (Vec<String>, Option<Bytes>, Vec<TopicPartition>, i32, Option<String>) {
    (
        vec!["zeta".into(), "alpha".into(), "ünïcode".into()],
        Some(Bytes::from_static(b"\x00\x01user")),
        vec![tp("zeta", 3), tp("alpha", 1), tp("zeta", 0)],
        42,
        Some("rack-1".into()),
    )
}

#[test]
fn subscription_round_trip_every_version() -> Result<()> {
    let (topics, user_data, owned, generation, rack) = subscription_case();
    for version in 0..=3i16 {
        let bytes = encode_subscription(&topics, user_data.clone(), &owned, generation, rack.as_deref(), version)?;
        assert_eq!(i16::from_be_bytes([bytes[0], bytes[1]]), version);
        let s = decode_subscription("m-1", Some("inst"), bytes.clone())?;
        assert_eq!(s.member_id, "m-1");
        assert_eq!(s.group_instance_id.as_deref(), Some("inst"));
        assert_eq!(s.topics, ["alpha", "zeta", "ünïcode"]);
        assert_eq!(s.user_data, user_data);
        let expected_owned = if version >= 1 { vec![tp("alpha", 1), tp("zeta", 0), tp("zeta", 3)] } else { vec![] };
        assert_eq!(s.owned_partitions, expected_owned);
        assert_eq!(s.generation_id, if version >= 2 { generation } else { -1 });
        assert_eq!(s.rack_id, if version >= 3 { rack.clone() } else { None });
        // kafka-protocol reads the same thing.
        let mut body = bytes.slice(2..);
        let kp = ConsumerProtocolSubscription::decode(&mut body, version).unwrap();
        assert_eq!(kp.topics.len(), 3);
        assert_eq!(kp.user_data, user_data);
        assert_eq!(kp.owned_partitions.len(), if version >= 1 { 2 } else { 0 });
        assert!(body.is_empty());
    }
    // Null user data, empty rack id (read as none), a version from the future with trailing bytes.
    let bytes = encode_subscription(&[], None, &[], -1, Some(""), 3)?;
    let s = decode_subscription("m", None, bytes.clone())?;
    assert_eq!((s.topics.len(), s.user_data.clone(), s.rack_id.clone()), (0, None, None));
    let mut future = BytesMut::new();
    future.put_i16(7);
    future.put_slice(&bytes[2..]);
    future.put_slice(b"new fields");
    assert_eq!(decode_subscription("m", None, future.freeze())?, s);
    // A version above 3 is written as 3.
    assert_eq!(encode_subscription(&[], None, &[], -1, None, 9)?[..2], [0, 3]);
    assert!(encode_subscription(&[], None, &[], -1, None, -1).is_err());
    Ok(())
}

#[test]
fn assignment_round_trip_every_version() -> Result<()> {
    let a = MemberAssignment {
        partitions: vec![tp("b", 2), tp("a", 0), tp("b", 1)],
        user_data: Some(Bytes::from_static(b"ud")),
    };
    for version in 0..=3i16 {
        let bytes = encode_assignment(&a, version)?;
        let back = decode_assignment(bytes.clone())?;
        assert_eq!(back.partitions, [tp("a", 0), tp("b", 1), tp("b", 2)]);
        assert_eq!(back.user_data, a.user_data);
        let kp = ConsumerProtocolAssignment::decode(&mut bytes.slice(2..), version).unwrap();
        assert_eq!(kp.assigned_partitions.len(), 2);
    }
    assert_eq!(decode_assignment(Bytes::new())?, MemberAssignment::default());
    let empty = encode_assignment(&MemberAssignment::default(), 0)?;
    assert_eq!(&empty[..], &[0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(decode_assignment(empty)?, MemberAssignment::default());
    Ok(())
}

#[test]
fn truncated_and_malformed_metadata_is_an_error() -> Result<()> {
    let (topics, user_data, owned, generation, rack) = subscription_case();
    let full = encode_subscription(&topics, user_data, &owned, generation, rack.as_deref(), 3)?;
    for len in 0..full.len() {
        let err = decode_subscription("bad-member", None, full.slice(..len)).unwrap_err();
        match &err {
            ClientError::Protocol { broker: None, source: ProtocolError::Decode { message, .. }, .. } => {
                assert!(message.contains("member bad-member"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    let full = encode_assignment(&MemberAssignment { partitions: owned, user_data: None }, 1)?;
    for len in 1..full.len() {
        assert!(matches!(decode_assignment(full.slice(..len)), Err(ClientError::Protocol { .. })), "{len}");
    }
    // Negative version, an absurd array length, a null topic, bad UTF-8.
    let cases: [&[u8]; 5] = [
        &[0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'a'],
        &[0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 0, 0, 1, 0, 1, 0xc3, 0xff, 0xff, 0xff, 0xff],
        &[0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0],
    ];
    for case in cases {
        let bytes = Bytes::copy_from_slice(case);
        assert!(decode_subscription("m", None, bytes.clone()).is_err(), "{case:?}");
    }
    assert!(decode_assignment(Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff])).is_err());
    Ok(())
}

// ---------------------------------------------------------------- properties

/// A group: partition counts (some topics missing) and members with subscriptions.
#[derive(Clone, Debug)]
struct Group {
    counts: BTreeMap<String, i32>,
    members: Vec<MemberSubscription>,
}

const TOPICS: [&str; 5] = ["t0", "t1", "t2", "t3", "t4"];

fn group(identical: bool, max_members: usize) -> impl Strategy<Value = Group> {
    let counts = proptest::collection::vec(proptest::option::weighted(0.9, 0..10i32), TOPICS.len());
    let subs =
        proptest::collection::vec(proptest::collection::btree_set(0..TOPICS.len(), 0..=TOPICS.len()), 0..=max_members);
    let shared = proptest::collection::btree_set(0..TOPICS.len(), 1..=TOPICS.len());
    let statics = proptest::collection::vec(any::<bool>(), max_members);
    (counts, subs, shared, statics).prop_map(move |(counts, subs, shared, statics)| {
        let counts = TOPICS.iter().zip(counts).filter_map(|(t, c)| c.map(|c| ((*t).to_owned(), c))).collect();
        let members = subs
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let s = if identical { shared.clone() } else { s };
                let mut m = MemberSubscription::new(format!("m{i}"), s.iter().map(|t| TOPICS[*t]));
                if statics[i] {
                    m.group_instance_id = Some(format!("i{}", 9 - i));
                }
                m
            })
            .collect();
        Group { counts, members }
    })
}

/// Every partition of a subscribed, existing topic.
fn universe(g: &Group) -> BTreeSet<TopicPartition> {
    let mut out = BTreeSet::new();
    for m in &g.members {
        for t in &m.topics {
            for p in 0..partition_count(&g.counts, t).unwrap_or(0) {
                out.insert(tp(t, partition_id(p)));
            }
        }
    }
    out
}

/// Each partition at most once, only to subscribers, every member present.
fn check_valid(
    g: &Group,
    r: &BTreeMap<String, MemberAssignment>,
) -> std::result::Result<BTreeSet<TopicPartition>, TestCaseError> {
    prop_assert_eq!(r.len(), g.members.len());
    let all = universe(g);
    let mut seen = BTreeSet::new();
    for m in &g.members {
        let a = r.get(&m.member_id).ok_or_else(|| TestCaseError::fail("member missing"))?;
        for p in &a.partitions {
            prop_assert!(all.contains(p), "{} does not exist", p);
            prop_assert!(m.topics.iter().any(|t| **t == *p.topic), "{} not subscribed to {}", m.member_id, p);
            prop_assert!(seen.insert(p.clone()), "{} assigned twice", p);
        }
    }
    Ok(seen)
}

fn counts_of(r: &BTreeMap<String, MemberAssignment>) -> Vec<usize> {
    r.values().map(|a| a.partitions.len()).collect()
}

/// Java's balance criterion: no partition could move to an eligible member with two fewer.
fn check_balanced(g: &Group, r: &BTreeMap<String, MemberAssignment>) -> std::result::Result<(), TestCaseError> {
    for src in &g.members {
        let have = r[&src.member_id].partitions.len();
        for p in &r[&src.member_id].partitions {
            for dst in &g.members {
                if dst.topics.iter().any(|t| **t == *p.topic) {
                    prop_assert!(
                        r[&dst.member_id].partitions.len() + 2 > have,
                        "{} ({}) could go from {} to {}",
                        p,
                        have,
                        src.member_id,
                        dst.member_id
                    );
                }
            }
        }
    }
    Ok(())
}

/// Random disjoint previous ownership (possibly of topics no longer subscribed).
fn with_owners(g: &Group, seed: &[usize], generation: i32) -> Group {
    let mut g = g.clone();
    if g.members.is_empty() {
        return g;
    }
    let all: Vec<TopicPartition> = universe(&g).into_iter().collect();
    for (i, p) in all.into_iter().enumerate() {
        let pick = seed.get(i).copied().unwrap_or(0);
        if pick % 4 != 0 {
            let n = g.members.len();
            g.members[pick % n].owned_partitions.push(p);
        }
    }
    for m in &mut g.members {
        m.generation_id = generation;
    }
    g
}

fn previous_of(r: &BTreeMap<String, MemberAssignment>, g: &Group, generation: i32) -> Group {
    let mut g = g.clone();
    for m in &mut g.members {
        m.owned_partitions = r.get(&m.member_id).map(|a| a.partitions.clone()).unwrap_or_default();
        m.generation_id = generation;
    }
    g
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_assignor_is_valid_and_complete(g in group(false, 7), seed in proptest::collection::vec(0usize..64, 64)) {
        let g = with_owners(&g, &seed, 3);
        for a in all_assignors() {
            let r = a.assign(&g.counts, &g.members).unwrap();
            let assigned = check_valid(&g, &r)?;
            let all = universe(&g);
            if a.name() == "cooperative-sticky" {
                // Withheld partitions are exactly those some member owns but does not keep.
                for p in all.difference(&assigned) {
                    prop_assert!(g.members.iter().any(|m| m.owned_partitions.contains(p)
                        && !r[&m.member_id].partitions.contains(p)), "{} withheld for no reason", p);
                }
            } else {
                prop_assert_eq!(&assigned, &all, "{} left partitions out", a.name());
            }
            // Determinism: member order does not matter.
            let mut reversed = g.members.clone();
            reversed.reverse();
            prop_assert_eq!(&a.assign(&g.counts, &reversed).unwrap(), &r);
        }
    }

    #[test]
    fn sticky_is_balanced(g in group(false, 7), identical in group(true, 7), seed in proptest::collection::vec(0usize..64, 64)) {
        let a = StickyAssignor::new();
        for g in [g.clone(), with_owners(&g, &seed, 1), identical.clone(), with_owners(&identical, &seed, 1)] {
            let r = a.assign(&g.counts, &g.members).unwrap();
            check_balanced(&g, &r)?;
        }
        let r = a.assign(&identical.counts, &identical.members).unwrap();
        let counts = counts_of(&r);
        if let (Some(min), Some(max)) = (counts.iter().min(), counts.iter().max()) {
            prop_assert!(max - min <= 1, "{:?}", counts);
        }
    }

    #[test]
    fn sticky_keeps_what_it_can(g in group(true, 7), seed in proptest::collection::vec(0usize..64, 64), change in 0usize..16) {
        // From random ownership, and from a previous sticky result after a member leaves or joins.
        let a = StickyAssignor::new();
        let mut cases = vec![with_owners(&g, &seed, 2)];
        let first = a.assign(&g.counts, &g.members).unwrap();
        let mut after = previous_of(&first, &g, 2);
        if !after.members.is_empty() && change % 2 == 0 {
            after.members.remove(change % after.members.len());
        } else {
            let topics = g.members.first().map(|m| m.topics.clone()).unwrap_or_else(|| vec!["t0".into()]);
            after.members.push(MemberSubscription::new("new", topics));
        }
        cases.push(after);
        for case in cases {
            let r = a.assign(&case.counts, &case.members).unwrap();
            let all = universe(&case);
            for m in &case.members {
                let before: BTreeSet<&TopicPartition> = m.owned_partitions.iter().filter(|p| all.contains(*p)).collect();
                let now = &r[&m.member_id].partitions;
                let kept = now.iter().filter(|p| before.contains(p)).count();
                prop_assert_eq!(kept, before.len().min(now.len()), "{} had {:?}, got {:?}", m.member_id, before, now);
            }
        }
    }

    #[test]
    fn cooperative_never_moves_directly_and_converges(
        g in group(false, 6),
        identical in group(true, 6),
        seed in proptest::collection::vec(0usize..64, 64),
    ) {
        let a = CooperativeStickyAssignor;
        for (g, identical) in [(with_owners(&g, &seed, 1), false), (with_owners(&identical, &seed, 1), true)] {
            let mut current = g.clone();
            for round in 0..4 {
                let r = a.assign(&current.counts, &current.members).unwrap();
                check_valid(&current, &r)?;
                for m in &current.members {
                    for p in &r[&m.member_id].partitions {
                        let other = current.members.iter().find(|o| o.member_id != m.member_id && o.owned_partitions.contains(p));
                        prop_assert!(other.is_none(), "{} moves from {:?} to {} in one step", p, other.map(|o| &o.member_id), m.member_id);
                    }
                }
                let complete = check_valid(&current, &r)? == universe(&current);
                // With equal subscriptions the follow-up rebalance completes the assignment.
                if identical && round >= 1 {
                    prop_assert!(complete, "round {} incomplete", round);
                }
                if complete && round >= 1 {
                    check_balanced(&current, &r)?;
                    break;
                }
                prop_assert!(round < 2, "no convergence in 3 rounds");
                current = previous_of(&r, &current, 2 + round);
            }
        }
    }

    #[test]
    fn subscription_round_trip(
        topics in proptest::collection::vec("[a-zA-Z0-9._-]{1,20}", 0..6),
        user_data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
        owned in proptest::collection::btree_set(("[a-z]{1,5}", 0..100i32), 0..8),
        generation in -1..1000i32,
        rack in proptest::option::of("[a-z0-9]{1,8}"),
        version in 0..=3i16,
    ) {
        let user_data = user_data.map(Bytes::from);
        let owned: Vec<TopicPartition> = owned.into_iter().map(|(t, p)| tp(&t, p)).collect();
        let bytes = encode_subscription(&topics, user_data.clone(), &owned, generation, rack.as_deref(), version).unwrap();
        let s = decode_subscription("m", None, bytes).unwrap();
        let mut sorted = topics.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(s.topics, sorted);
        prop_assert_eq!(s.user_data, user_data);
        prop_assert_eq!(s.owned_partitions, if version >= 1 { owned } else { vec![] });
        prop_assert_eq!(s.generation_id, if version >= 2 { generation } else { -1 });
        prop_assert_eq!(s.rack_id, if version >= 3 { rack } else { None });
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64), prefix in 0usize..4) {
        let mut bytes = vec![0u8; prefix.min(2)];
        bytes.extend(data);
        let bytes = Bytes::from(bytes);
        let _ = decode_subscription("m", None, bytes.clone());
        let _ = decode_assignment(bytes.clone());
        let _ = decode_sticky_user_data(&bytes);
        let mut m = MemberSubscription::new("m", ["t0"]);
        m.user_data = Some(bytes);
        for a in all_assignors() {
            let _ = a.assign(&ppt(&[("t0", 3)]), std::slice::from_ref(&m)).unwrap();
        }
    }
}
