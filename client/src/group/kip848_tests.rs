//! The KIP-848 member's decisions, without sockets: the request each state sends and
//! what each answer does to the state.

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use tokio::time::Instant;

use super::*;
use crate::config::ClientConfig;

fn cfg(extra: &[(&str, &str)]) -> GroupConfig {
    let mut pairs = vec![("bootstrap.servers", "b:9092"), ("group.id", "g"), ("group.protocol", "consumer")];
    pairs.extend_from_slice(extra);
    GroupConfig::from_client(&ClientConfig::from_pairs(pairs).unwrap()).unwrap()
}

fn state(epoch: i32) -> MemberState {
    MemberState {
        member_id: "m-1".into(),
        generation_id: epoch,
        protocol_name: None,
        coordinator: None,
        joined: epoch > 0,
        rejoin: false,
        lost: false,
        fatal: None,
        last_poll: Instant::now(),
        next: NextState { subscription: Some(Subscribed::Topics(vec!["a".into(), "b".into()])), ..Default::default() },
        committed: Default::default(),
    }
}

const T1: TopicId = TopicId([1; 16]);

#[test]
fn a_join_carries_every_field_and_owns_nothing() {
    let cfg =
        cfg(&[("group.instance.id", "i-1"), ("group.remote.assignor", "uniform"), ("max.poll.interval.ms", "60000")]);
    let mut st = state(0);
    st.next.owned = vec![(T1, vec![0])];
    let req = heartbeat_request(&st, &cfg, Some("az-1"), JOIN);
    assert_eq!((req.group_id.0.as_str(), req.member_id.as_str(), req.member_epoch), ("g", "m-1", 0));
    assert_eq!(req.instance_id.as_deref(), Some("i-1"));
    assert_eq!(req.rack_id.as_deref(), Some("az-1"));
    assert_eq!(req.rebalance_timeout_ms, 60_000);
    assert_eq!(req.server_assignor.as_deref(), Some("uniform"));
    let names: Vec<&str> = req.subscribed_topic_names.as_ref().unwrap().iter().map(|n| n.0.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(req.subscribed_topic_regex.as_deref(), Some(""), "names and regex travel together");
    assert_eq!(req.topic_partitions, Some(Vec::new()), "a joining member owns nothing (Kafka checks it)");
}

#[test]
fn a_steady_heartbeat_sends_only_what_changed() {
    let cfg = cfg(&[]);
    let mut st = state(5);
    st.next.owned = vec![(T1, vec![0, 2])];
    let req = heartbeat_request(&st, &cfg, Some("az-1"), 5);
    assert_eq!(req.member_epoch, 5);
    assert!(req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none());
    assert!(req.rack_id.is_none() && req.instance_id.is_none() && req.rebalance_timeout_ms == -1);
    assert!(req.topic_partitions.is_none(), "owned partitions already acknowledged");

    st.next.owned_version = 1; // poll reconciled a new target
    let req = heartbeat_request(&st, &cfg, None, 5);
    let owned = req.topic_partitions.expect("the new owned set is sent");
    assert_eq!(owned.len(), 1);
    assert_eq!((owned[0].topic_id.as_bytes(), owned[0].partitions.as_slice()), (&[1u8; 16], [0, 2].as_slice()));

    st.next.want_full(); // after an error
    assert!(heartbeat_request(&st, &cfg, None, 5).subscribed_topic_names.is_some());
}

#[test]
fn a_pattern_subscription_is_sent_as_a_regex() {
    let mut st = state(0);
    st.next.subscription = Some(Subscribed::Pattern("^(?:orders-.*)$".into()));
    let req = heartbeat_request(&st, &cfg(&[]), None, JOIN);
    assert_eq!(req.subscribed_topic_names, Some(Vec::new()));
    assert_eq!(req.subscribed_topic_regex.as_deref(), Some("^(?:orders-.*)$"));
}

#[test]
fn a_leave_carries_only_the_member_and_its_epoch() {
    let req = heartbeat_request(&state(5), &cfg(&[]), Some("az"), LEAVE);
    assert_eq!(req.member_epoch, -1);
    assert!(req.subscribed_topic_names.is_none() && req.topic_partitions.is_none() && req.rack_id.is_none());
    assert_eq!(LEAVE_STATIC, -2);
}

#[test]
fn each_answer_code_leads_to_its_step() {
    let code = |e: ResponseError| e.code();
    let table = [
        (Ok(0), Step::Apply),
        (Ok(FENCED_MEMBER_EPOCH), Step::Rejoin),
        (Ok(code(ResponseError::UnknownMemberId)), Step::Rejoin),
        (Ok(code(ResponseError::NotCoordinator)), Step::FindCoordinator),
        (Ok(code(ResponseError::CoordinatorNotAvailable)), Step::FindCoordinator),
        (Err(()), Step::FindCoordinator),
        (Ok(code(ResponseError::CoordinatorLoadInProgress)), Step::Retry),
        (Ok(code(ResponseError::RequestTimedOut)), Step::Retry),
        (Ok(code(ResponseError::UnsupportedVersion)), Step::Unsupported),
        (Ok(111), Step::Fatal(111)), // UNRELEASED_INSTANCE_ID
        (Ok(112), Step::Fatal(112)), // UNSUPPORTED_ASSIGNOR
        (Ok(128), Step::Fatal(128)), // INVALID_REGULAR_EXPRESSION
        (Ok(code(ResponseError::GroupMaxSizeReached)), Step::Fatal(81)),
        (Ok(code(ResponseError::InvalidRequest)), Step::Fatal(42)),
        (Ok(code(ResponseError::GroupAuthorizationFailed)), Step::Fatal(30)),
    ];
    for (answer, want) in table {
        assert_eq!(heartbeat_step(answer), want, "{answer:?}");
    }
}

#[test]
fn an_answer_sets_epoch_interval_and_target() {
    let mut st = state(0);
    st.next.want_full();
    st.next.owned_version = 3;
    let resp = ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(StrBytes::from_static_str("m-1")))
        .with_member_epoch(4)
        .with_heartbeat_interval_ms(500)
        .with_assignment(Some(Assignment::default().with_topic_partitions(vec![
            TopicPartitions::default().with_topic_id(uuid::Uuid::from_bytes([1; 16])).with_partitions(vec![1, 3]),
        ])));
    let sent_now = sent(&st, 0);
    apply_answer(&mut st, &resp, sent_now);
    assert_eq!(st.generation_id, 4);
    assert_eq!(st.next.interval, Some(Duration::from_millis(500)));
    assert_eq!(st.next.target, Some(vec![(T1, vec![1, 3])]));
    assert!(!st.next.full && st.next.acked_version == 3);

    // An answer without an assignment leaves the pending target alone.
    let plain = sent(&st, 4);
    apply_answer(&mut st, &resp.clone().with_assignment(None).with_member_epoch(5), plain);
    assert_eq!((st.generation_id, st.next.target.is_some()), (5, true));

    // Owned partitions changed while the heartbeat was in flight: still to be sent.
    let in_flight = sent(&st, 5);
    st.next.owned_version = 4;
    apply_answer(&mut st, &resp, in_flight);
    assert_ne!(st.next.owned_version, st.next.acked_version);

    // A new subscription while a full heartbeat was in flight: its answer does not
    // clear the need for another full one.
    st.next.want_full();
    let in_flight = sent(&st, 5);
    st.next.want_full();
    apply_answer(&mut st, &resp, in_flight);
    assert!(st.next.full, "the newer subscription is still to be sent");
    let again = sent(&st, 5);
    apply_answer(&mut st, &resp, again);
    assert!(!st.next.full);
}

#[test]
fn a_fenced_member_loses_its_partitions_and_joins_again() {
    let mut st = state(6);
    st.next.owned = vec![(T1, vec![0])];
    st.next.target = Some(vec![(T1, vec![0, 1])]);
    fenced(&mut st);
    assert_eq!(st.generation_id, JOIN);
    assert!(st.lost && !st.joined && st.next.full && st.next.owned.is_empty() && st.next.target.is_none());
    assert_eq!(st.member_id, "m-1", "the member id is kept for the member's life");
}

#[test]
fn member_ids_are_fresh_and_look_like_kafka_uuids() {
    let (a, b) = (new_member_id(), new_member_id());
    assert_ne!(a, b);
    assert_eq!(a.len(), 22);
    assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{a}");
}
