//! SCRAM against a broker that checks the credentials itself: tansu 0.6.0 built with
//! its SQLite engine (the only one that stores SCRAM users; DESIGN.md), users created
//! before authentication is turned on. Records are produced and consumed over each
//! SCRAM mechanism, kafka-python uses the same users on the same broker, and a wrong
//! password is refused by the broker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ferrokafka_client::cluster::Cluster;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_client::ClientError;
use ferrokafka_tests::tansu_scram::ScramTansu;
use ferrokafka_tests::unique_topic;

fn config(addr: &str, mechanism: &str, password: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut pairs = vec![
        ("bootstrap.servers", addr),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", mechanism),
        ("sasl.username", "alice"),
        ("sasl.password", password),
    ];
    pairs.extend_from_slice(extra);
    ClientConfig::from_pairs(pairs).unwrap()
}

#[test]
fn tansu_authenticates_scram_users_and_serves_records() {
    let topic = unique_topic("tansu-scram");
    let broker = ScramTansu::start(&[("alice", "tansu-pw-3")], &[&topic]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut want = Vec::new();
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        rt.block_on(async {
            let p = Producer::new(config(broker.addr(), mechanism, "tansu-pw-3", &[])).await.unwrap();
            for i in 0..5 {
                let v = format!("{mechanism}-{i}");
                p.send(ProducerRecord::new(topic.as_str(), v.clone()).partition(0)).await.unwrap().await.unwrap();
                want.push(v);
            }
            p.close().await;
        });
    }
    // kafka-python, with the same user on the same broker.
    let script = r#"
import sys
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=sys.argv[1], security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                  sasl_plain_username="alice", sasl_plain_password="tansu-pw-3")
p.send(sys.argv[2], b"kafka-python-0", partition=0).get(timeout=30)
p.close()
"#;
    let out = std::process::Command::new("python3").args(["-c", script, broker.addr(), &topic]).output().unwrap();
    assert!(out.status.success(), "kafka-python over SCRAM to tansu: {}", String::from_utf8_lossy(&out.stderr));
    want.push("kafka-python-0".into());
    rt.block_on(async {
        let cfg = config(broker.addr(), "SCRAM-SHA-256", "tansu-pw-3", &[("auto.offset.reset", "earliest")]);
        let mut c = Consumer::new(cfg).await.unwrap();
        c.assign([TopicPartition::new(topic.as_str(), 0)]);
        let mut got: Vec<String> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while got.len() < want.len() {
            assert!(tokio::time::Instant::now() < deadline, "{got:?}");
            for r in &c.poll(Duration::from_millis(500)).await.unwrap() {
                got.push(String::from_utf8(r.unwrap().record.value.unwrap().to_vec()).unwrap());
            }
        }
        assert_eq!(got, want);
        c.close().await;
    });
    // The broker refuses a wrong password (its own check, not ours).
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let err = rt.block_on(Cluster::connect(config(broker.addr(), mechanism, "not-the-pw", &[]))).unwrap_err();
        assert!(matches!(err, ClientError::Authentication { .. }), "{mechanism}: {err:?}");
        assert!(!err.to_string().contains("not-the-pw") && !err.to_string().contains("tansu-pw-3"));
    }
}
