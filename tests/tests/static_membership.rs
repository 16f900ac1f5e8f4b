//! Static membership (KIP-345), our side of it, on the wire against a real broker: a member
//! with `group.instance.id` sends the id in JoinGroup (v5+), SyncGroup (v3+), Heartbeat (v3+)
//! and OffsetCommit (v7+), and does not send LeaveGroup when it closes, so that a restart
//! within the session timeout can keep its partitions. A dynamic member in the same run does
//! send LeaveGroup, which shows the recording would catch one.
//!
//! Whether the broker then skips the rebalance is the broker's half: neither test broker here
//! implements it (librdkafka 2.0.2's mock ignores the instance id; tansu 0.6 rebalances).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::group::GroupConsumer;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_tests::fake::{FakeCluster, Request as Recorded};
use ferrokafka_tests::raw::RawConnection;
use ferrokafka_tests::unique_topic;
use kafka_protocol::messages::{
    ApiKey, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, SyncGroupRequest,
};

const RECORDS: usize = 20;

fn config(bootstrap: &str, group: &str, instance: Option<&str>) -> ClientConfig {
    let mut pairs = vec![
        ("bootstrap.servers", bootstrap),
        ("group.id", group),
        ("fetch.max.wait.ms", "100"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "200"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ];
    if let Some(id) = instance {
        pairs.push(("group.instance.id", id));
    }
    ClientConfig::from_pairs(pairs).unwrap()
}

/// Joins, reads `expect` records (those after the group's committed offsets), stays a
/// while (heartbeats), commits and closes.
async fn member_session(cfg: ClientConfig, topic: &str, expect: usize, what: &str) {
    let mut c = GroupConsumer::new(cfg).await.unwrap();
    c.subscribe([topic]);
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen < expect || c.assignment().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "{what}: {seen} of {expect} records, assignment {:?} after 60 s",
            c.assignment()
        );
        seen += c.poll(Duration::from_millis(200)).await.unwrap().iter().count();
    }
    assert_eq!(seen, expect, "{what}: records after the committed offsets");
    let linger = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < linger {
        let _ = c.poll(Duration::from_millis(200)).await.unwrap();
    }
    c.commit_sync(None).await.unwrap();
    c.close().await.unwrap();
}

fn group_of<T>(r: &Recorded, group: impl Fn(&T) -> String) -> String
where
    T: kafka_protocol::protocol::Decodable,
{
    group(&r.decode::<T>())
}

#[test]
fn static_member_sends_its_instance_id_and_never_leave_group() {
    let (proxy, tansu) = FakeCluster::proxy_with_tansu();
    let bootstrap = proxy.addr();
    let topic = unique_topic("static");
    RawConnection::connect(tansu.addr()).unwrap().create_topic(&topic, 2).unwrap();
    let (static_group, dynamic_group) = (unique_topic("static-group"), unique_topic("dynamic-group"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", bootstrap.as_str())]).unwrap())
            .await
            .unwrap();
        let mut fs = Vec::new();
        for i in 0..RECORDS {
            fs.push(
                p.send(ProducerRecord::new(topic.as_str(), format!("v{i}")).partition(i as i32 % 2)).await.unwrap(),
            );
        }
        for f in fs {
            f.await.unwrap();
        }
        p.close().await;
        // The static member runs twice (a restart), the dynamic one once.
        let static_cfg = || config(&bootstrap, &static_group, Some("instance-1"));
        member_session(static_cfg(), &topic, RECORDS, "static member").await;
        member_session(static_cfg(), &topic, 0, "static member restarted").await;
        member_session(config(&bootstrap, &dynamic_group, None), &topic, RECORDS, "dynamic member").await;
    });

    let joins: Vec<(String, JoinGroupRequest, i16)> = proxy
        .requests_of(ApiKey::JoinGroup)
        .iter()
        .map(|r| {
            let j: JoinGroupRequest = r.decode();
            (j.group_id.to_string(), j, r.version)
        })
        .collect();
    let static_joins: Vec<_> = joins.iter().filter(|(g, _, _)| *g == static_group).collect();
    assert!(static_joins.len() >= 2, "the static member joined {} times, expected one per session", static_joins.len());
    for (_, j, v) in &static_joins {
        assert!(*v >= 5, "JoinGroup v{v}: the broker must allow v5+ for this test to mean anything");
        assert_eq!(j.group_instance_id.as_deref().map(|s| s.to_string()), Some("instance-1".to_owned()));
    }
    for (_, j, _) in joins.iter().filter(|(g, _, _)| *g == dynamic_group) {
        assert_eq!(j.group_instance_id, None, "a dynamic member sent an instance id");
    }

    let syncs: Vec<_> = proxy
        .requests_of(ApiKey::SyncGroup)
        .into_iter()
        .filter(|r| r.version >= 3)
        .map(|r| r.decode::<SyncGroupRequest>())
        .filter(|s| s.group_id.to_string() == static_group)
        .collect();
    assert!(!syncs.is_empty(), "no SyncGroup v3+ from the static member");
    assert!(syncs.iter().all(|s| s.group_instance_id.as_deref().map(|i| i.to_string()) == Some("instance-1".into())));

    let beats: Vec<_> = proxy
        .requests_of(ApiKey::Heartbeat)
        .into_iter()
        .filter(|r| r.version >= 3)
        .map(|r| r.decode::<HeartbeatRequest>())
        .filter(|h| h.group_id.to_string() == static_group)
        .collect();
    assert!(!beats.is_empty(), "no Heartbeat v3+ from the static member in 2 × 1.2 s at a 200 ms interval");
    assert!(beats.iter().all(|h| h.group_instance_id.as_deref().map(|i| i.to_string()) == Some("instance-1".into())));

    let commits: Vec<_> = proxy
        .requests_of(ApiKey::OffsetCommit)
        .into_iter()
        .filter(|r| r.version >= 7)
        .map(|r| r.decode::<OffsetCommitRequest>())
        .filter(|c| c.group_id.to_string() == static_group)
        .collect();
    assert!(!commits.is_empty(), "no OffsetCommit v7+ from the static member");
    assert!(commits.iter().all(|c| c.group_instance_id.as_deref().map(|i| i.to_string()) == Some("instance-1".into())));

    let leaves: Vec<String> = proxy
        .requests_of(ApiKey::LeaveGroup)
        .iter()
        .map(|r| group_of::<LeaveGroupRequest>(r, |l| l.group_id.to_string()))
        .collect();
    assert!(!leaves.contains(&static_group), "the static member sent LeaveGroup: {leaves:?}");
    assert!(leaves.contains(&dynamic_group), "the dynamic member's LeaveGroup was not seen: {leaves:?}");
}
