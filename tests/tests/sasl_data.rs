//! Records over SASL: produce and consume with every mechanism, a consumer group, and
//! the direct stream's word count over SASL_SSL — through `tests/sasl_frontend.py` in
//! proxy mode, which authenticates clients itself (scramp's SCRAM, PLAIN) and then
//! relays their requests to a one-broker mock cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::group::GroupConsumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_streaming::{Assign, DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::sasl_frontend::SaslFrontend;
use ferrokafka_tests::stunnel::testgen::{KeyType, Pki};
use ferrokafka_tests::stunnel::{Stunnel, TlsOptions};
use ferrokafka_tests::unique_topic;

const USERS: &[(&str, &str)] = &[("alice", "alice-secret-1")];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn sasl_pairs(addr: &str, protocol: &str, mechanism: &str) -> Vec<(String, String)> {
    [
        ("bootstrap.servers", addr),
        ("security.protocol", protocol),
        ("sasl.mechanism", mechanism),
        ("sasl.username", "alice"),
        ("sasl.password", "alice-secret-1"),
        ("fetch.max.wait.ms", "100"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

async fn produce(cfg: ClientConfig, topic: &str, partitions: i32, n: usize) {
    let p = Producer::new(cfg).await.unwrap();
    let mut fs = Vec::new();
    for i in 0..n {
        let part = (i % partitions as usize) as i32;
        fs.push(p.send(ProducerRecord::new(topic, format!("w{} w{}", i % 7, i % 3)).partition(part)).await.unwrap());
    }
    for f in fs {
        f.await.unwrap();
    }
    p.close().await;
}

/// Produce and consume with each mechanism, over SASL_PLAINTEXT and over SASL_SSL
/// (stunnel terminating TLS in front of the SASL proxy).
#[test]
fn produce_and_consume_with_every_mechanism() {
    let mut mock = MockCluster::start(1);
    let mechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];
    let plain = SaslFrontend::start_proxy(USERS, &mechanisms, mock.bootstrap(), None);
    Pki::remove_stale("sasl-data");
    let pki = Pki::new("sasl-data").unwrap();
    let server = pki.leaf("server", KeyType::Rsa, "IP:127.0.0.1,DNS:localhost").unwrap();
    let tls_port = ferrokafka_tests::free_port();
    let behind_tls = SaslFrontend::start_proxy(USERS, &mechanisms, mock.bootstrap(), Some(tls_port));
    let fe_port: u16 = behind_tls.addr().rsplit(':').next().unwrap().parse().unwrap();
    let opts = TlsOptions { cert: server.chain.clone(), key: server.key.clone(), ..Default::default() };
    let tls = Stunnel::try_start(&opts, tls_port, fe_port).unwrap();
    let ca = ("ssl.ca.location".to_owned(), pki.ca_cert.display().to_string());
    let rt = runtime();
    for (protocol, addr, fe) in [("SASL_PLAINTEXT", plain.addr(), &plain), ("SASL_SSL", tls.addr(), &behind_tls)] {
        for mechanism in mechanisms {
            let topic = unique_topic(&format!("sasl-{mechanism}"));
            mock.create_topic(&topic, 2);
            let pairs = |extra: &[(String, String)]| {
                let mut v = sasl_pairs(addr, protocol, mechanism);
                v.push(ca.clone());
                v.extend_from_slice(extra);
                ClientConfig::from_pairs(v).unwrap()
            };
            rt.block_on(async {
                produce(pairs(&[]), &topic, 2, 40).await;
                let mut c = Consumer::new(pairs(&[("auto.offset.reset".into(), "earliest".into())])).await.unwrap();
                c.assign((0..2).map(|p| TopicPartition::new(topic.as_str(), p)));
                let mut got = 0;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                while got < 40 {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{protocol} {mechanism}: {got} of 40\n{}",
                        fe.output()
                    );
                    got += c.poll(Duration::from_millis(500)).await.unwrap().iter().count();
                }
                assert_eq!(got, 40, "{protocol} {mechanism}");
                c.close().await;
            });
            assert!(fe.wait_count(&format!("authenticated alice {mechanism}"), 2) >= 2, "{}", fe.output());
        }
    }
}

#[test]
fn a_consumer_group_over_sasl_commits_and_reads_back() {
    let mut mock = MockCluster::start(1);
    let fe = SaslFrontend::start_proxy(USERS, &["SCRAM-SHA-512"], mock.bootstrap(), None);
    let topic = unique_topic("sasl-group");
    mock.create_topic(&topic, 3);
    let group = unique_topic("sasl-g");
    let pairs = |extra: &[(&str, &str)]| {
        let mut v = sasl_pairs(fe.addr(), "SASL_PLAINTEXT", "SCRAM-SHA-512");
        v.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        ClientConfig::from_pairs(v).unwrap()
    };
    runtime().block_on(async {
        produce(pairs(&[]), &topic, 3, 30).await;
        let cfg = pairs(&[
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
        ]);
        let mut c = GroupConsumer::new(cfg.clone()).await.unwrap();
        c.subscribe([topic.clone()]);
        let mut got = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while got < 30 {
            assert!(tokio::time::Instant::now() < deadline, "{got} of 30\n{}", fe.output());
            got += c.poll(Duration::from_millis(500)).await.unwrap().iter().count();
        }
        c.commit_sync(None).await.unwrap();
        let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(topic.as_str(), p)).collect();
        let committed = c.committed(&tps).await.unwrap();
        let offsets: BTreeMap<i32, i64> =
            committed.into_iter().map(|(tp, o)| (tp.partition, o.map_or(-1, |o| o.offset))).collect();
        assert_eq!(offsets, (0..3).map(|p| (p, 10)).collect::<BTreeMap<_, _>>(), "committed over SASL");
        c.close().await.unwrap();
    });
}

/// Spark's DirectKafkaWordCount over SASL_SSL: stunnel terminates TLS in front of the
/// SASL proxy, which names stunnel's port in its metadata.
#[test]
fn streaming_word_count_over_sasl_ssl() {
    let mut mock = MockCluster::start(1);
    Pki::remove_stale("sasl-stream");
    let pki = Pki::new("sasl-stream").unwrap();
    let server = pki.leaf("server", KeyType::Ec, "IP:127.0.0.1,DNS:localhost").unwrap();
    let tls_port = ferrokafka_tests::free_port();
    let fe = SaslFrontend::start_proxy(USERS, &["SCRAM-SHA-256"], mock.bootstrap(), Some(tls_port));
    let fe_port: u16 = fe.addr().rsplit(':').next().unwrap().parse().unwrap();
    let opts = TlsOptions { cert: server.chain.clone(), key: server.key.clone(), ..Default::default() };
    let tls = Stunnel::try_start(&opts, tls_port, fe_port).unwrap();
    let topic = unique_topic("sasl-words");
    mock.create_topic(&topic, 2);
    let ca = pki.ca_cert.display().to_string();
    let mut pairs = sasl_pairs(tls.addr(), "SASL_SSL", "SCRAM-SHA-256");
    pairs.push(("ssl.ca.location".into(), ca));
    runtime().block_on(async {
        produce(ClientConfig::from_pairs(pairs.clone()).unwrap(), &topic, 2, 70).await;
        let mut params = pairs.clone();
        params.extend([
            ("group.id".to_owned(), unique_topic("wc")),
            ("auto.offset.reset".to_owned(), "earliest".to_owned()),
            ("enable.auto.commit".to_owned(), "false".to_owned()),
            ("value.deserializer".to_owned(), "org.apache.kafka.common.serialization.StringDeserializer".to_owned()),
        ]);
        let params = KafkaParams::new(params).unwrap();
        let parts: BTreeSet<ferrokafka_streaming::TopicPartition> =
            (0..2).map(|p| ferrokafka_streaming::TopicPartition::new(topic.as_str(), p)).collect();
        let strategy = Assign::new(parts, params, Default::default()).unwrap();
        let cfg = StreamConfig { batch_interval: Duration::from_millis(200), ..Default::default() };
        let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await.unwrap();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while counts.values().sum::<u64>() < 140 {
            assert!(tokio::time::Instant::now() < deadline, "{counts:?}\n{}", tls.log());
            let batch = stream.next_batch().await.unwrap();
            assert!(batch.offset_ranges().iter().all(|r| r.from_offset <= r.until_offset));
            let per = batch
                .foreach_partition(|mut p| async move {
                    let mut c: BTreeMap<String, u64> = BTreeMap::new();
                    while let Some(r) = p.records.next().await {
                        for w in r?.value_str().unwrap_or(Ok("")).unwrap_or("").split_whitespace() {
                            *c.entry(w.to_owned()).or_default() += 1;
                        }
                    }
                    Ok(c)
                })
                .await
                .unwrap();
            for c in per {
                for (w, n) in c {
                    *counts.entry(w).or_default() += n;
                }
            }
        }
        assert_eq!(counts.values().sum::<u64>(), 140, "{counts:?}");
        assert_eq!(counts["w0"], 10 + 24, "w0 comes from i % 7 == 0 (10 of 70) and i % 3 == 0 (24 of 70)");
        stream.stop(ferrokafka_streaming::StopMode::Graceful).await.unwrap();
    });
}

/// kafka-python, a real client, through the same server with the same credentials:
/// it produces over SCRAM-SHA-512 and we read its records, so the server is set up as
/// real clients expect (and not just as we do).
#[test]
fn kafka_python_and_ferrokafka_share_the_sasl_server() {
    let mut mock = MockCluster::start(1);
    let fe = SaslFrontend::start_proxy(USERS, &["SCRAM-SHA-512"], mock.bootstrap(), None);
    let topic = unique_topic("sasl-kpy");
    mock.create_topic(&topic, 1);
    let script = r#"
import sys
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=sys.argv[1], security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                  sasl_plain_username="alice", sasl_plain_password="alice-secret-1", acks=1)
for i in range(5):
    p.send(sys.argv[2], ("kpy-%d" % i).encode(), partition=0).get(timeout=20)
p.close()
"#;
    let out = std::process::Command::new("python3").args(["-c", script, fe.addr(), &topic]).output().unwrap();
    assert!(out.status.success(), "kafka-python: {}\n{}", String::from_utf8_lossy(&out.stderr), fe.output());
    assert!(fe.wait_count("authenticated alice SCRAM-SHA-512", 1) >= 1);
    runtime().block_on(async {
        let mut pairs = sasl_pairs(fe.addr(), "SASL_PLAINTEXT", "SCRAM-SHA-512");
        pairs.push(("auto.offset.reset".into(), "earliest".into()));
        let mut c = Consumer::new(ClientConfig::from_pairs(pairs).unwrap()).await.unwrap();
        c.assign([TopicPartition::new(topic.as_str(), 0)]);
        let mut values = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while values.len() < 5 {
            assert!(tokio::time::Instant::now() < deadline, "{values:?}");
            for r in &c.poll(Duration::from_millis(500)).await.unwrap() {
                values.push(String::from_utf8(r.unwrap().record.value.unwrap().to_vec()).unwrap());
            }
        }
        assert_eq!(values, (0..5).map(|i| format!("kpy-{i}")).collect::<Vec<_>>());
        c.close().await;
    });
}
