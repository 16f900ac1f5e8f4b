//! TLS against a real broker: tansu behind stunnel, with stores written by keytool
//! and openssl at test time. Produce and consume over TLS and mutual TLS with every
//! store type and key type; each refusal comes back as its typed error; and
//! kafka-python, given the same PEM files, works against the same broker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_client::{admin, ClientError};
use ferrokafka_tests::stunnel::{TlsBroker, TlsOptions};
use ferrokafka_tests::testgen::{KeyType, Leaf, Pki, KEY_PASSWORD, STORE_PASSWORD};
use ferrokafka_tests::unique_topic;
use ferrokafka_tls::TlsError;

const LOCAL: &str = "IP:127.0.0.1,DNS:localhost";

struct Stores {
    pki: Pki,
    other_ca: Pki,
    server_rsa: Leaf,
    server_ec: Leaf,
    server_wrong_name: Leaf,
    server_expired: Leaf,
    client_rsa: Leaf,
    client_ec: Leaf,
    trust_jks: PathBuf,
    trust_p12: PathBuf,
    jks_rsa: PathBuf,
    jks_ec: PathBuf,
    p12_keytool_ec: PathBuf,
    p12_keytool_rsa: PathBuf,
    p12_openssl_rsa: PathBuf,
    pem_keystore_ec: PathBuf,
    rsa_pbes2: PathBuf,
    ec_3des: PathBuf,
}

/// The stores, written once per test binary.
fn stores() -> &'static Stores {
    static S: OnceLock<Stores> = OnceLock::new();
    S.get_or_init(|| {
        Pki::remove_stale("it");
        Pki::remove_stale("it-other");
        let pki = Pki::new("it").expect("CA");
        let client_rsa = pki.leaf("client-rsa", KeyType::Rsa, LOCAL).unwrap();
        let client_ec = pki.leaf("client-ec", KeyType::Ec, LOCAL).unwrap();
        Stores {
            server_rsa: pki.leaf("server-rsa", KeyType::Rsa, LOCAL).unwrap(),
            server_ec: pki.leaf("server-ec", KeyType::Ec, LOCAL).unwrap(),
            server_wrong_name: pki.leaf("server-wrong-name", KeyType::Rsa, "DNS:kafka.invalid").unwrap(),
            server_expired: pki.expired_leaf("server-expired", KeyType::Rsa, LOCAL).unwrap(),
            trust_jks: pki.truststore("JKS", "trust.jks").unwrap(),
            trust_p12: pki.truststore("PKCS12", "trust.p12").unwrap(),
            jks_rsa: pki.keytool_keystore("kt-rsa", KeyType::Rsa, "JKS", KEY_PASSWORD, LOCAL).unwrap(),
            jks_ec: pki.keytool_keystore("kt-ec", KeyType::Ec, "JKS", STORE_PASSWORD, LOCAL).unwrap(),
            p12_keytool_ec: pki.keytool_keystore("kt-ec", KeyType::Ec, "PKCS12", STORE_PASSWORD, LOCAL).unwrap(),
            p12_keytool_rsa: pki.keytool_keystore("kt-rsa", KeyType::Rsa, "PKCS12", STORE_PASSWORD, LOCAL).unwrap(),
            p12_openssl_rsa: pki.openssl_pkcs12(&client_rsa, STORE_PASSWORD, false, "client-rsa.p12").unwrap(),
            pem_keystore_ec: pki.pem_keystore(&client_ec, "client-ec-keystore.pem").unwrap(),
            rsa_pbes2: pki.encrypted_key(&client_rsa, true, KEY_PASSWORD, "client-rsa-pbes2.pem").unwrap(),
            ec_3des: pki.encrypted_key(&client_ec, false, KEY_PASSWORD, "client-ec-3des.pem").unwrap(),
            client_rsa,
            client_ec,
            other_ca: Pki::new("it-other").expect("other CA"),
            pki,
        }
    })
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn broker(server: &Leaf, mutual: bool, max_version: Option<&'static str>) -> TlsBroker {
    TlsBroker::start(&TlsOptions {
        cert: server.chain.clone(),
        key: server.key.clone(),
        client_ca: mutual.then(|| stores().pki.ca_cert.clone()),
        max_version,
    })
}

fn config(addr: &str, ssl: &[(&str, &str)]) -> ClientConfig {
    let mut pairs = vec![
        ("bootstrap.servers", addr),
        ("security.protocol", "SSL"),
        ("fetch.max.wait.ms", "100"),
        ("auto.offset.reset", "earliest"),
        ("socket.connection.setup.timeout.ms", "10000"),
    ];
    pairs.extend_from_slice(ssl);
    ClientConfig::from_pairs(pairs).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Produces 20 records over TLS and reads them back.
async fn round_trip(cfg: ClientConfig, case: &str) {
    let topic = unique_topic("tls");
    let producer = Producer::new(cfg.clone()).await.unwrap_or_else(|e| panic!("{case}: producer: {e}"));
    admin::create_topic(producer.cluster(), &topic, 1, 1).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..20 {
        let value = format!("{case} #{i}");
        let delivery = producer.send(ProducerRecord::new(&*topic, value.clone()).partition(0)).await.unwrap();
        sent.push((tokio::time::timeout(Duration::from_secs(30), delivery).await.unwrap().unwrap().offset, value));
    }
    producer.close().await;
    let mut consumer = Consumer::new(cfg).await.unwrap_or_else(|e| panic!("{case}: consumer: {e}"));
    consumer.assign([TopicPartition::new(&*topic, 0)]);
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got.len() < sent.len() {
        assert!(tokio::time::Instant::now() < deadline, "{case}: {} of {} records", got.len(), sent.len());
        for r in &consumer.poll(Duration::from_millis(500)).await.unwrap() {
            let r = r.unwrap();
            got.push((r.record.offset, String::from_utf8(r.record.value.clone().unwrap().to_vec()).unwrap()));
        }
    }
    assert_eq!(got, sent, "{case}");
}

/// The TLS error a client fails with when it is built.
async fn tls_error(cfg: ClientConfig) -> TlsError {
    match Producer::new(cfg).await {
        Err(ClientError::Tls { source, .. }) => {
            eprintln!("refused as expected: {source}");
            source
        }
        Err(other) => panic!("expected a TLS error, got {other}"),
        Ok(_) => panic!("expected a TLS error, the client connected"),
    }
}

#[test]
fn tls_produce_consume_with_every_truststore_type() {
    let s = stores();
    let b = broker(&s.server_rsa, false, None);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("PEM truststore", vec![("ssl.truststore.location", p(&s.pki.ca_cert)), ("ssl.truststore.type", "PEM")]),
        ("JKS truststore without password", vec![("ssl.truststore.location", p(&s.trust_jks))]),
        (
            "JKS truststore",
            vec![("ssl.truststore.location", p(&s.trust_jks)), ("ssl.truststore.password", STORE_PASSWORD)],
        ),
        (
            "PKCS12 truststore from keytool",
            vec![
                ("ssl.truststore.location", p(&s.trust_p12)),
                ("ssl.truststore.password", STORE_PASSWORD),
                ("ssl.truststore.type", "PKCS12"),
            ],
        ),
        ("librdkafka ssl.ca.location", vec![("ssl.ca.location", p(&s.pki.ca_cert))]),
    ];
    runtime().block_on(async {
        for (case, ssl) in cases {
            round_trip(config(b.addr(), &ssl), case).await;
        }
    });
}

#[test]
fn tls_with_an_ec_broker_certificate_and_tls12() {
    let s = stores();
    let b = broker(&s.server_ec, false, None);
    let trust = ("ssl.truststore.location", p(&s.pki.ca_cert));
    runtime().block_on(async {
        round_trip(config(b.addr(), &[trust]), "EC broker").await;
        round_trip(config(b.addr(), &[trust, ("ssl.protocol", "TLSv1.2")]), "EC broker, TLS 1.2").await;
        let suites = ("ssl.cipher.suites", "TLS_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
        round_trip(config(b.addr(), &[trust, suites]), "EC broker, chosen suites").await;
    });
}

#[test]
fn mtls_produce_consume_with_every_keystore_type_and_key_type() {
    let s = stores();
    let b = broker(&s.server_rsa, true, None);
    let read = |path: &Path| std::fs::read_to_string(path).unwrap();
    let (inline_key, inline_chain) = (read(&s.rsa_pbes2), read(&s.client_rsa.chain));
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "JKS RSA, own key password",
            vec![
                ("ssl.keystore.location", p(&s.jks_rsa)),
                ("ssl.keystore.password", STORE_PASSWORD),
                ("ssl.key.password", KEY_PASSWORD),
            ],
        ),
        (
            "JKS EC (Java PKCS#8 without public key)",
            vec![("ssl.keystore.location", p(&s.jks_ec)), ("ssl.keystore.password", STORE_PASSWORD)],
        ),
        (
            "PKCS12 EC from keytool",
            vec![
                ("ssl.keystore.location", p(&s.p12_keytool_ec)),
                ("ssl.keystore.password", STORE_PASSWORD),
                ("ssl.keystore.type", "PKCS12"),
            ],
        ),
        (
            "PKCS12 RSA from keytool",
            vec![("ssl.keystore.location", p(&s.p12_keytool_rsa)), ("ssl.keystore.password", STORE_PASSWORD)],
        ),
        (
            "PKCS12 RSA from openssl",
            vec![("ssl.keystore.location", p(&s.p12_openssl_rsa)), ("ssl.keystore.password", STORE_PASSWORD)],
        ),
        ("PEM keystore EC", vec![("ssl.keystore.location", p(&s.pem_keystore_ec)), ("ssl.keystore.type", "PEM")]),
        (
            "librdkafka PEM RSA, PBES2-encrypted key",
            vec![
                ("ssl.certificate.location", p(&s.client_rsa.chain)),
                ("ssl.key.location", p(&s.rsa_pbes2)),
                ("ssl.key.password", KEY_PASSWORD),
            ],
        ),
        (
            "librdkafka PEM EC, PBE-SHA1-3DES key",
            vec![
                ("ssl.certificate.location", p(&s.client_ec.cert)),
                ("ssl.key.location", p(&s.ec_3des)),
                ("ssl.key.password", KEY_PASSWORD),
            ],
        ),
        (
            "inline PEM (ssl.keystore.key)",
            vec![
                ("ssl.keystore.key", inline_key.as_str()),
                ("ssl.keystore.certificate.chain", inline_chain.as_str()),
                ("ssl.key.password", KEY_PASSWORD),
            ],
        ),
    ];
    runtime().block_on(async {
        for (case, mut ssl) in cases {
            ssl.push(("ssl.truststore.location", p(&s.trust_jks)));
            round_trip(config(b.addr(), &ssl), case).await;
        }
    });
}

#[test]
fn mtls_without_a_client_certificate_is_refused() {
    let s = stores();
    let b = broker(&s.server_rsa, true, None);
    let trust = ("ssl.truststore.location", p(&s.pki.ca_cert));
    runtime().block_on(async {
        for version in ["TLSv1.3", "TLSv1.2"] {
            let e = tls_error(config(b.addr(), &[trust, ("ssl.enabled.protocols", version)])).await;
            assert!(matches!(e, TlsError::ClientCertificateRequired { .. }), "{version}: {e}");
            assert!(!e.is_retriable());
        }
    });
}

#[test]
fn broker_certificate_from_an_unknown_ca_is_refused() {
    let s = stores();
    let b = broker(&s.server_rsa, false, None);
    let e = runtime().block_on(tls_error(config(b.addr(), &[("ssl.truststore.location", p(&s.other_ca.ca_cert))])));
    assert!(matches!(e, TlsError::UnknownCa { .. }), "{e}");
}

#[test]
fn expired_broker_certificate_is_refused() {
    let s = stores();
    let b = broker(&s.server_expired, false, None);
    let e = runtime().block_on(tls_error(config(b.addr(), &[("ssl.truststore.location", p(&s.pki.ca_cert))])));
    assert!(matches!(e, TlsError::CertificateExpired { .. }), "{e}");
}

#[test]
fn host_name_mismatch_is_refused_unless_identification_is_off() {
    let s = stores();
    let b = broker(&s.server_wrong_name, false, None);
    let trust = ("ssl.truststore.location", p(&s.pki.ca_cert));
    runtime().block_on(async {
        let e = tls_error(config(b.addr(), &[trust])).await;
        match &e {
            TlsError::HostnameMismatch { host, detail, .. } => {
                assert_eq!(host, "127.0.0.1");
                assert!(detail.contains("kafka.invalid"), "{e}");
            }
            other => panic!("{other}"),
        }
        let off = ("ssl.endpoint.identification.algorithm", "");
        round_trip(config(b.addr(), &[trust, off]), "identification off").await;
        // Off means no name check, not no verification: an unknown CA still fails.
        let e = tls_error(config(b.addr(), &[("ssl.truststore.location", p(&s.other_ca.ca_cert)), off])).await;
        assert!(matches!(e, TlsError::UnknownCa { .. }), "{e}");
    });
}

#[test]
fn tls12_only_broker_with_only_tls13_enabled() {
    let s = stores();
    let b = broker(&s.server_rsa, false, Some("TLSv1.2"));
    let trust = ("ssl.truststore.location", p(&s.pki.ca_cert));
    runtime().block_on(async {
        let e = tls_error(config(b.addr(), &[trust, ("ssl.enabled.protocols", "TLSv1.3")])).await;
        assert!(matches!(e, TlsError::NoCommonVersion { .. }), "{e}");
        round_trip(config(b.addr(), &[trust]), "TLS 1.2-only broker, defaults").await;
    });
}

#[test]
fn store_errors_surface_when_the_client_is_built() {
    let s = stores();
    let dir = &s.pki.dir;
    let bytes = std::fs::read(&s.jks_rsa).unwrap();
    let (truncated, corrupted) = (dir.join("truncated.jks"), dir.join("corrupted.p12"));
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let mut p12 = std::fs::read(&s.p12_openssl_rsa).unwrap();
    let mid = p12.len() / 2;
    p12[mid] ^= 0xFF;
    std::fs::write(&corrupted, &p12).unwrap();
    let ks = |path: &Path, pw: &'static str, key_pw: Option<&'static str>| {
        let mut v = vec![("ssl.keystore.location", p(path).to_owned()), ("ssl.keystore.password", pw.to_owned())];
        if let Some(k) = key_pw {
            v.push(("ssl.key.password", k.to_owned()));
        }
        v
    };
    let cases = [
        ("wrong store password", ks(&s.jks_rsa, "wrong-password", Some(KEY_PASSWORD))),
        ("wrong key password", ks(&s.jks_rsa, STORE_PASSWORD, Some("wrong-password"))),
        ("wrong PKCS12 password", ks(&s.p12_openssl_rsa, "wrong-password", None)),
        ("truncated JKS", ks(&truncated, STORE_PASSWORD, Some(KEY_PASSWORD))),
        ("corrupted PKCS12", ks(&corrupted, STORE_PASSWORD, None)),
    ];
    runtime().block_on(async {
        for (case, ssl) in cases {
            let ssl: Vec<(&str, &str)> = ssl.iter().map(|(k, v)| (*k, v.as_str())).collect();
            // No broker is needed: the stores are read before any connection.
            let e = tls_error(config("127.0.0.1:1", &ssl)).await;
            let ok = match case {
                "wrong store password" | "wrong PKCS12 password" => matches!(e, TlsError::WrongPassword { .. }),
                "wrong key password" => matches!(e, TlsError::WrongKeyPassword { .. }),
                "truncated JKS" => matches!(e, TlsError::Corrupt { .. }),
                _ => matches!(e, TlsError::WrongPassword { .. } | TlsError::Corrupt { .. }),
            };
            assert!(ok, "{case}: {e}");
            assert!(!e.to_string().contains("wrong-password") && !format!("{e:?}").contains(STORE_PASSWORD), "{e:?}");
        }
    });
}

const KPY: &str = r#"
import json, sys, time
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
mode, boot, topic, ca, cert, key, password, n = sys.argv[1:9]
ssl = dict(security_protocol="SSL", ssl_cafile=ca, ssl_certfile=cert, ssl_keyfile=key, ssl_password=password,
           ssl_check_hostname=True, api_version_auto_timeout_ms=20000, request_timeout_ms=30000)
if mode == "produce":
    p = KafkaProducer(bootstrap_servers=boot, linger_ms=20, **ssl)
    for i in range(int(n)):
        p.send(topic, value=("kafka-python #%d" % i).encode(), partition=0)
    p.flush(30); p.close(10)
else:
    c = KafkaConsumer(bootstrap_servers=boot, group_id=None, enable_auto_commit=False, **ssl)
    tp = TopicPartition(topic, 0); c.assign([tp]); c.seek_to_beginning(tp)
    out, deadline = [], time.time() + 30
    while len(out) < int(n) and time.time() < deadline:
        for recs in c.poll(timeout_ms=500).values():
            out.extend(r.value.decode() for r in recs)
    c.close(); json.dump(out, sys.stdout)
"#;

fn kafka_python(mode: &str, addr: &str, topic: &str, n: usize) -> String {
    let s = stores();
    let out = Command::new("timeout")
        .args(["90", "python3", "-c", KPY, mode, addr, topic, p(&s.pki.ca_cert), p(&s.client_rsa.chain)])
        .args([p(&s.rsa_pbes2), KEY_PASSWORD, &n.to_string()])
        .output()
        .expect("python3");
    assert!(out.status.success(), "kafka-python {mode}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// kafka-python (OpenSSL) with the same PEM files against the same mTLS broker:
/// proof that the broker setup is right; records cross between the two clients.
#[test]
fn kafka_python_interop_over_mutual_tls() {
    let s = stores();
    let b = broker(&s.server_ec, true, None);
    let topic = unique_topic("tls-kpy");
    let cfg = config(
        b.addr(),
        &[
            ("ssl.ca.location", p(&s.pki.ca_cert)),
            ("ssl.certificate.location", p(&s.client_rsa.chain)),
            ("ssl.key.location", p(&s.rsa_pbes2)),
            ("ssl.key.password", KEY_PASSWORD),
        ],
    );
    let rt = runtime();
    rt.block_on(async {
        let producer = Producer::new(cfg.clone()).await.unwrap();
        admin::create_topic(producer.cluster(), &topic, 1, 1).await.unwrap();
        producer.close().await;
    });
    kafka_python("produce", b.addr(), &topic, 10);
    rt.block_on(async {
        let producer = Producer::new(cfg.clone()).await.unwrap();
        for i in 0..10 {
            let d = producer.send(ProducerRecord::new(&*topic, format!("ferrokafka #{i}")).partition(0)).await.unwrap();
            tokio::time::timeout(Duration::from_secs(30), d).await.unwrap().unwrap();
        }
        producer.close().await;
    });
    let seen: Vec<String> = serde_json::from_str(&kafka_python("consume", b.addr(), &topic, 20)).unwrap();
    let want: Vec<String> =
        (0..10).map(|i| format!("kafka-python #{i}")).chain((0..10).map(|i| format!("ferrokafka #{i}"))).collect();
    assert_eq!(seen, want);
}
