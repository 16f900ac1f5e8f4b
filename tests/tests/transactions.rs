//! The transactional producer against real coordinators: tansu 0.6 (markers, a last
//! stable offset below the high watermark for an open transaction) and librdkafka's
//! mock cluster (coordinator errors injected). Readers: our consumer and
//! confluent-kafka (librdkafka 2.16) in `read_committed`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use ferrokafka_client::cluster::Cluster;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::group::{admin, CommitIdentity, OffsetAndMetadata};
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_client::{admin as topics, ClientError};
use ferrokafka_tests::fake::FakeCluster;
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::tansu::Tansu;
use ferrokafka_tests::unique_topic;

const PARTITIONS: i32 = 2;

fn config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut pairs = vec![("bootstrap.servers", bootstrap), ("linger.ms", "5"), ("fetch.max.wait.ms", "100")];
    pairs.extend_from_slice(extra);
    ClientConfig::from_pairs(pairs).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn transactional(bootstrap: &str, id: &str) -> Producer {
    let p = Producer::new(config(bootstrap, &[("transactional.id", id)])).await.unwrap();
    p.init_transactions().await.unwrap();
    p
}

/// Sends `values` round-robin over the partitions and waits for each delivery.
async fn send_all(p: &Producer, topic: &str, values: &[String]) {
    let mut futures = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let rec = ProducerRecord::new(topic, v.clone()).partition(i as i32 % PARTITIONS);
        futures.push(p.send(rec).await.unwrap());
    }
    for f in futures {
        tokio::time::timeout(Duration::from_secs(30), f).await.expect("delivered").unwrap();
    }
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Every value in the topic, read from the beginning to the end, then until `idle`
/// passes without one.
async fn read_all(bootstrap: &str, topic: &str, isolation: &str, idle: Duration) -> Vec<String> {
    read_all_with(bootstrap, topic, &[("isolation.level", isolation)], idle).await
}

async fn read_all_with(bootstrap: &str, topic: &str, extra: &[(&str, &str)], idle: Duration) -> Vec<String> {
    let mut c = Consumer::new(config(bootstrap, extra)).await.unwrap();
    let tps: Vec<_> = (0..PARTITIONS).map(|p| TopicPartition::new(topic, p)).collect();
    c.assign(tps.clone());
    for tp in &tps {
        c.seek(tp, 0).unwrap();
    }
    let mut out = Vec::new();
    ferrokafka_tests::read_to_end(&mut c, &tps, idle, |r| {
        out.push(String::from_utf8(r.record.value.clone().unwrap().to_vec()).unwrap());
    })
    .await;
    c.close().await;
    out
}

/// confluent-kafka (librdkafka 2.16) in read_committed.
fn confluent_read_committed(bootstrap: &str, topic: &str) -> Vec<String> {
    ferrokafka_tests::peers::ck_read_committed(bootstrap, topic, PARTITIONS).unwrap()
}

/// tansu with a fresh topic of PARTITIONS partitions.
fn tansu_with_topic(prefix: &str) -> (Tansu, String) {
    let tansu = Tansu::start();
    let topic = unique_topic(prefix);
    runtime().block_on(async {
        let cluster = Cluster::connect(config(tansu.addr(), &[])).await.unwrap();
        topics::create_topic(&cluster, &topic, PARTITIONS, 1).await.unwrap();
    });
    (tansu, topic)
}

fn sorted(v: Vec<String>) -> BTreeSet<String> {
    v.into_iter().collect()
}

#[test]
fn committed_and_aborted_transactions_read_as_confluent_kafka_reads_them_on_tansu() {
    let (tansu, topic) = tansu_with_topic("txn");
    let rt = runtime();
    rt.block_on(async {
        let p = transactional(tansu.addr(), &unique_topic("tid")).await;
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("commit1", 10)).await;
        p.commit_transaction().await.unwrap();
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("abort", 10)).await;
        p.abort_transaction().await.unwrap();
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("commit2", 6)).await;
        p.commit_transaction().await.unwrap();
        p.close().await;
    });
    // tansu 0.6 keeps no aborted-transaction index (DESIGN.md, broker quirks): a
    // read_committed reader sees the aborted records too, confluent-kafka as well as
    // ours. What it does keep, the markers and commits, both read alike.
    let committed = rt.block_on(read_all(tansu.addr(), &topic, "read_committed", Duration::from_secs(3)));
    assert_eq!(committed.len(), 26, "every data record once, never a marker: {committed:?}");
    for v in values("commit1", 10).into_iter().chain(values("commit2", 6)) {
        assert!(committed.contains(&v), "{v} committed");
    }
    assert_eq!(sorted(confluent_read_committed(tansu.addr(), &topic)), sorted(committed));
}

#[test]
fn an_open_transaction_is_hidden_until_it_commits_on_tansu() {
    let (tansu, topic) = tansu_with_topic("open");
    let rt = runtime();
    rt.block_on(async {
        let p = transactional(tansu.addr(), &unique_topic("tid")).await;
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("open", 8)).await;
        // Delivered (stored), not committed: read_committed stops at the last stable offset.
        let hidden = read_all(tansu.addr(), &topic, "read_committed", Duration::from_secs(2)).await;
        assert!(hidden.is_empty(), "an open transaction's records are not stable: {hidden:?}");
        let visible = read_all(tansu.addr(), &topic, "read_uncommitted", Duration::from_secs(2)).await;
        assert_eq!(visible.len(), 8);
        p.commit_transaction().await.unwrap();
        let committed = read_all(tansu.addr(), &topic, "read_committed", Duration::from_secs(2)).await;
        assert_eq!(sorted(committed), sorted(values("open", 8)));
        p.close().await;
    });
}

/// Two producers with one transactional id: the second's init fences the first, whose
/// commit and sends then fail for good.
fn zombie_is_fenced(bootstrap: &str, topic: &str, filters_aborted: bool) {
    let rt = runtime();
    rt.block_on(async {
        let id = unique_topic("zombie");
        let zombie = transactional(bootstrap, &id).await;
        zombie.begin_transaction().unwrap();
        send_all(&zombie, topic, &values("zombie", 4)).await;
        let successor = transactional(bootstrap, &id).await;
        // The zombie's next record carries the old epoch: the broker refuses it, and the
        // producer can do nothing more.
        let late = zombie.send(ProducerRecord::new(topic, "late").partition(0)).await.unwrap();
        let late = tokio::time::timeout(Duration::from_secs(30), late).await.expect("settled");
        assert!(late.is_err(), "a fenced producer's record is refused");
        let err = zombie.commit_transaction().await.unwrap_err();
        assert!(matches!(err, ClientError::ProducerFatal { .. }), "the zombie is fenced: {err}");
        let code = match &err {
            ClientError::ProducerFatal { cause, .. } => cause.code().map(|c| c.name()),
            _ => None,
        };
        assert!(matches!(code, Some("PRODUCER_FENCED" | "INVALID_PRODUCER_EPOCH")), "{err}");
        let again = zombie.begin_transaction().unwrap_err();
        assert!(matches!(again, ClientError::ProducerFatal { .. }), "{again}");
        successor.begin_transaction().unwrap();
        send_all(&successor, topic, &values("successor", 4)).await;
        successor.commit_transaction().await.unwrap();
        successor.close().await;
    });
    let read = rt.block_on(read_all(bootstrap, topic, "read_committed", Duration::from_secs(3)));
    if filters_aborted {
        assert_eq!(sorted(read), sorted(values("successor", 4)), "the zombie's transaction was aborted");
    } else {
        assert!(sorted(values("successor", 4)).is_subset(&sorted(read.clone())), "{read:?}");
    }
}

#[test]
fn a_zombie_producer_is_fenced_on_tansu() {
    let (tansu, topic) = tansu_with_topic("zombie");
    zombie_is_fenced(tansu.addr(), &topic, false);
}

#[test]
fn a_zombie_producer_is_fenced_on_the_fake_cluster() {
    let fake = FakeCluster::start();
    let topic = unique_topic("zombie");
    fake.create_topic(&topic, PARTITIONS);
    zombie_is_fenced(&fake.addr(), &topic, true);
}

/// The fake cluster keeps Kafka's aborted-transaction index and last stable offset
/// (no test broker here does): committed records are read, aborted ones never, and an
/// open transaction's not yet, by our consumer and by confluent-kafka alike.
#[test]
fn aborted_and_open_transactions_are_never_read_committed_on_the_fake_cluster() {
    let fake = FakeCluster::start();
    let topic = unique_topic("txn");
    fake.create_topic(&topic, PARTITIONS);
    let rt = runtime();
    let open = rt.block_on(async {
        let p = transactional(&fake.addr(), "fake-txn").await;
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("commit1", 10)).await;
        p.commit_transaction().await.unwrap();
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("abort", 10)).await;
        p.abort_transaction().await.unwrap();
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("commit2", 6)).await;
        p.commit_transaction().await.unwrap();
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("open", 4)).await;
        p
    });
    let mut want = values("commit1", 10);
    want.extend(values("commit2", 6));
    let committed = rt.block_on(read_all(&fake.addr(), &topic, "read_committed", Duration::from_secs(2)));
    assert_eq!(committed.len(), want.len(), "no aborted or open record, none twice: {committed:?}");
    assert_eq!(sorted(committed), sorted(want.clone()));
    assert_eq!(sorted(confluent_read_committed(&fake.addr(), &topic)), sorted(want.clone()));
    let everything = rt.block_on(read_all(&fake.addr(), &topic, "read_uncommitted", Duration::from_secs(2)));
    assert_eq!(everything.len(), 30, "read_uncommitted: every data record, never a marker");
    rt.block_on(async {
        open.commit_transaction().await.unwrap();
        open.close().await;
    });
    want.extend(values("open", 4));
    let committed = rt.block_on(read_all(&fake.addr(), &topic, "read_committed", Duration::from_secs(2)));
    assert_eq!(sorted(committed), sorted(want));
}

/// Consumed offsets go with the transaction: stored when it commits, dropped when it
/// aborts.
fn offsets_follow_the_transaction(bootstrap: &str, topic: &str) {
    let rt = runtime();
    rt.block_on(async {
        let group = unique_topic("eos-group");
        let p = transactional(bootstrap, &unique_topic("tid")).await;
        let who = CommitIdentity::standalone(group.clone());
        let tp = TopicPartition::new(topic, 0);
        p.begin_transaction().unwrap();
        send_all(&p, topic, &values("out", 2)).await;
        p.send_offsets_to_transaction(&[(tp.clone(), OffsetAndMetadata::new(42))], &who).await.unwrap();
        p.abort_transaction().await.unwrap();
        let cluster = Cluster::connect(config(bootstrap, &[])).await.unwrap();
        let stored = admin::committed_offsets(&cluster, &group).await.unwrap();
        assert!(stored.get(&tp).is_none_or(|o| o.offset != 42), "aborted offsets are not stored: {stored:?}");
        p.begin_transaction().unwrap();
        send_all(&p, topic, &values("out", 2)).await;
        p.send_offsets_to_transaction(&[(tp.clone(), OffsetAndMetadata::new(7))], &who).await.unwrap();
        p.commit_transaction().await.unwrap();
        let stored = admin::committed_offsets(&cluster, &group).await.unwrap();
        assert_eq!(stored.get(&tp).map(|o| o.offset), Some(7), "committed with the transaction: {stored:?}");
        p.close().await;
    });
}

#[test]
fn offsets_commit_and_abort_with_the_transaction_on_tansu() {
    let (tansu, topic) = tansu_with_topic("offsets");
    offsets_follow_the_transaction(tansu.addr(), &topic);
}

#[test]
fn coordinator_errors_are_retried_and_the_transaction_commits_on_the_mock() {
    let mut mock = MockCluster::start(3);
    let topic = unique_topic("txn-errors");
    mock.create_topic(&topic, PARTITIONS as u32);
    // Busy and moving coordinators on every transactional call, then a clean answer.
    mock.must("error InitProducerId COORDINATOR_LOAD_IN_PROGRESS 2");
    mock.must("error AddPartitionsToTxn CONCURRENT_TRANSACTIONS 2");
    mock.must("error AddPartitionsToTxn NOT_COORDINATOR 1");
    mock.must("error EndTxn COORDINATOR_NOT_AVAILABLE 1");
    mock.must("error EndTxn CONCURRENT_TRANSACTIONS 1");
    let bootstrap = mock.bootstrap().to_owned();
    let tid = unique_topic("tid");
    mock.must(&format!("coordinator transaction {tid} 1"));
    let rt = runtime();
    rt.block_on(async {
        let p = transactional(&bootstrap, &tid).await;
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("v", 10)).await;
        // The coordinator moves mid-transaction: the old one answers NOT_COORDINATOR.
        mock.must(&format!("coordinator transaction {tid} 3"));
        mock.must("broker_error 1 EndTxn NOT_COORDINATOR 1");
        p.commit_transaction().await.unwrap();
        // The coordinators' refusals are in the statistics, by API and code.
        let s = p.statistics();
        let count = |api, code: i16| -> u64 {
            s.errors.iter().filter(|e| e.api == api && e.code.code() == code).map(|e| e.count).sum()
        };
        assert!(count(ferrokafka_client::Api::END_TXN, 15) >= 1, "COORDINATOR_NOT_AVAILABLE: {:?}", s.errors);
        assert!(
            count(ferrokafka_client::Api::ADD_PARTITIONS_TO_TXN, 51) >= 1,
            "CONCURRENT_TRANSACTIONS: {:?}",
            s.errors
        );
        // A fatal answer: the id is not authorized.
        mock.must("error EndTxn TRANSACTIONAL_ID_AUTHORIZATION_FAILED 1");
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("w", 2)).await;
        let err = p.commit_transaction().await.unwrap_err();
        assert!(matches!(err, ClientError::ProducerFatal { .. }), "{err}");
        // Not transactional: every transactional call is refused by name.
        let plain = Producer::new(config(&bootstrap, &[])).await.unwrap();
        let e = plain.begin_transaction().unwrap_err();
        assert!(matches!(e, ClientError::TransactionState { operation: "begin_transaction", .. }), "{e}");
        plain.close().await;
    });
    // librdkafka 2.16's mock writes its transaction markers with a zero CRC (DESIGN.md,
    // broker quirks), so this read skips the CRC check.
    let read = rt.block_on(read_all_with(&bootstrap, &topic, &[("check.crcs", "false")], Duration::from_secs(2)));
    assert!(sorted(values("v", 10)).is_subset(&sorted(read)), "the committed transaction's records are stored");
}

#[test]
fn calls_out_of_order_are_refused_and_a_failed_record_makes_the_transaction_abortable() {
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("order");
    mock.create_topic(&topic, PARTITIONS as u32);
    let bootstrap = mock.bootstrap().to_owned();
    runtime().block_on(async {
        let p = Producer::new(config(&bootstrap, &[("transactional.id", "order"), ("retries", "1")])).await.unwrap();
        let e = p.begin_transaction().unwrap_err();
        assert!(matches!(e, ClientError::TransactionState { operation: "begin_transaction", .. }), "{e}");
        p.init_transactions().await.unwrap();
        let e = p.send(ProducerRecord::new(topic.as_str(), "x")).await.unwrap_err();
        assert!(matches!(e, ClientError::TransactionState { operation: "send", .. }), "outside a transaction: {e}");
        let e = p.commit_transaction().await.unwrap_err();
        assert!(matches!(e, ClientError::TransactionState { .. }), "{e}");
        // A record the broker refuses for good: the transaction can only abort.
        p.begin_transaction().unwrap();
        mock.must("error Produce 10 1");
        let f = p.send(ProducerRecord::new(topic.as_str(), "too big").partition(0)).await.unwrap();
        assert!(f.await.is_err());
        let e = p.commit_transaction().await.unwrap_err();
        assert!(matches!(e, ClientError::TransactionAbortable { .. }), "{e}");
        let e = p.send(ProducerRecord::new(topic.as_str(), "y")).await.unwrap_err();
        assert!(matches!(e, ClientError::TransactionAbortable { .. }), "{e}");
        p.abort_transaction().await.unwrap();
        // The producer goes on with a new epoch.
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("after", 4)).await;
        p.commit_transaction().await.unwrap();
        p.close().await;
    });
}

/// A producer process killed (SIGKILL) in the middle of a transaction: its records
/// stay hidden from read_committed readers while the transaction is open, and the
/// next producer with the same transactional id aborts it, so they never appear.
#[test]
fn a_producer_killed_mid_transaction_leaves_nothing_visible() {
    use std::io::{BufRead, BufReader};
    let fake = FakeCluster::start();
    let topic = unique_topic("killed");
    fake.create_topic(&topic, PARTITIONS);
    let mut child = Command::new(env!("CARGO_BIN_EXE_txn_producer"))
        .args([fake.addr().as_str(), topic.as_str(), "killed-id", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("txn_producer starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "SENT", "the producer wrote its records");
    child.kill().unwrap();
    child.wait().unwrap();
    let rt = runtime();
    let stored = rt.block_on(read_all(&fake.addr(), &topic, "read_uncommitted", Duration::from_secs(2)));
    assert_eq!(stored.len(), 20, "the killed producer's records are in the log");
    let hidden = rt.block_on(read_all(&fake.addr(), &topic, "read_committed", Duration::from_secs(2)));
    assert!(hidden.is_empty(), "an open transaction is not stable: {hidden:?}");
    rt.block_on(async {
        let next = transactional(&fake.addr(), "killed-id").await;
        next.begin_transaction().unwrap();
        send_all(&next, &topic, &values("next", 4)).await;
        next.commit_transaction().await.unwrap();
        next.close().await;
    });
    let read = rt.block_on(read_all(&fake.addr(), &topic, "read_committed", Duration::from_secs(2)));
    assert_eq!(sorted(read), sorted(values("next", 4)), "the killed producer's transaction was aborted");
}

/// `transaction.timeout.ms` is what the coordinator is asked for (InitProducerId), and
/// the transactional id travels with every Produce request of the transaction.
#[test]
fn the_transaction_timeout_and_id_are_sent() {
    let fake = FakeCluster::start();
    let topic = unique_topic("timeout");
    fake.create_topic(&topic, PARTITIONS);
    runtime().block_on(async {
        let cfg = config(&fake.addr(), &[("transactional.id", "timeout-id"), ("transaction.timeout.ms", "12345")]);
        let p = Producer::new(cfg).await.unwrap();
        p.init_transactions().await.unwrap();
        p.begin_transaction().unwrap();
        send_all(&p, &topic, &values("t", 3)).await;
        p.commit_transaction().await.unwrap();
        p.close().await;
    });
    let inits = fake.requests_of(kafka_protocol::messages::ApiKey::InitProducerId);
    let init: kafka_protocol::messages::InitProducerIdRequest = inits[0].decode();
    assert_eq!(init.transaction_timeout_ms, 12345);
    assert_eq!(init.transactional_id.map(|t| t.0.to_string()).as_deref(), Some("timeout-id"));
    for r in fake.requests_of(kafka_protocol::messages::ApiKey::Produce) {
        let produce: kafka_protocol::messages::ProduceRequest = r.decode();
        assert_eq!(produce.transactional_id.map(|t| t.0.to_string()).as_deref(), Some("timeout-id"));
    }
}
