//! Unit tests of the configuration: redaction of secrets, and property tests
//! that parsing arbitrary maps never panics nor leaks a secret.

use proptest::prelude::*;

use super::{is_secret, ClientConfig, ConfigError};
use crate::ClientError;

/// Parses the bootstrap key plus `pairs`.
fn parse(pairs: &[(&str, &str)]) -> Result<ClientConfig, ConfigError> {
    ClientConfig::from_pairs([("bootstrap.servers", "localhost:9092")].iter().chain(pairs).copied())
}

#[test]
fn debug_redacts_secrets() {
    let c = parse(&[
        ("ssl.truststore.password", "hunter2"),
        ("ssl.key.password", "hunter3"),
        ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----"),
        ("sasl.jaas.config", "PlainLoginModule required username=\"u\" password=\"hunter4\";"),
        ("sasl.password", "hunter5"),
        ("ssl.truststore.location", "/etc/visible.jks"),
    ])
    .unwrap();
    let debug = format!("{c:?}");
    let pretty = format!("{c:#?}");
    for secret in ["hunter", "PRIVATE KEY", "username"] {
        assert!(!debug.contains(secret) && !pretty.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("\"ssl.truststore.password\": [redacted]"), "{debug}");
    assert!(debug.contains("/etc/visible.jks") && debug.contains("localhost:9092"), "{debug}");
    // The values are still there for the layers.
    assert_eq!(c.layer_value("ssl.truststore.password"), Some("hunter2"));
}

#[test]
fn errors_never_show_secrets() {
    let err = ConfigError::invalid_value("ssl.keystore.password", "hunter2", "a password of the keystore");
    for text in [err.to_string(), format!("{err:?}"), ClientError::from(err.clone()).to_string()] {
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("ssl.keystore.password") && text.contains("[redacted]"), "{text}");
    }
    assert_eq!(
        err.to_string(),
        "invalid value [redacted] for configuration key \"ssl.keystore.password\": expected a password of the keystore"
    );
    // A misspelt secret key is unknown; its value is never shown.
    let err = parse(&[("sasl_password", "hunter2")]).unwrap_err();
    assert!(!err.to_string().contains("hunter2") && !format!("{err:?}").contains("hunter2"), "{err}");
    assert_eq!(err, ConfigError::UnknownKey { key: "sasl_password".into(), suggestion: Some("sasl.password".into()) });
    assert!(is_secret("sasl.jaas.config") && is_secret("ssl.truststore.password") && !is_secret("group.id"));
    // A non-secret value is shown.
    let err = ConfigError::invalid_value("ssl.truststore.type", "XYZ", "JKS, PKCS12 or PEM");
    assert!(err.to_string().contains("\"XYZ\""), "{err}");
}

/// Keys the property tests draw from: typed keys, aliases, layer keys, secrets, noise.
fn any_key() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => prop::sample::select(vec![
            "bootstrap.servers",
            "metadata.broker.list",
            "fetch.min.bytes",
            "fetch.max.bytes",
            "max.partition.fetch.bytes",
            "receive.message.max.bytes",
            "fetch.max.wait.ms",
            "fetch.wait.max.ms",
            "request.timeout.ms",
            "linger.ms",
            "queue.buffering.max.ms",
            "delivery.timeout.ms",
            "acks",
            "enable.idempotence",
            "retries",
            "reconnect.backoff.ms",
            "auto.offset.reset",
            "compression.type",
            "receive.buffer.bytes",
            "group.id",
            "ssl.key.password",
        ])
        .prop_map(String::from),
        1 => "[a-z._]{0,24}",
        1 => any::<String>(),
    ]
}

fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<i64>().prop_map(|n| n.to_string()),
        6 => (0u32..200_000).prop_map(|n| n.to_string()),
        2 => "(h|\\[::1\\]|[a-z]{1,5}):[0-9]{1,6}([, ][a-z]:[0-9]{1,5}){0,2}",
        2 => prop::sample::select(vec!["true", "FALSE", "all", "-1", "earliest", "zstd", ""]).prop_map(String::from),
        1 => any::<String>(),
    ]
}

proptest! {
    #[test]
    fn parsing_never_panics(pairs in prop::collection::vec((any_key(), any_value()), 0..8)) {
        // A valid bootstrap first, so that some maps parse; a later one replaces it.
        let bootstrap = ("bootstrap.servers".to_owned(), "h:1".to_owned());
        match ClientConfig::from_pairs(std::iter::once(bootstrap).chain(pairs)) {
            Ok(c) => {
                prop_assert!(c.fetch_min_bytes() <= c.fetch_max_bytes());
                prop_assert!(c.fetch_max_bytes() <= c.receive_message_max_bytes());
                prop_assert!(c.reconnect_backoff() <= c.reconnect_backoff_max());
                prop_assert!(!c.bootstrap_servers().is_empty());
                let _ = format!("{c:?}");
            }
            Err(e) => {
                let _ = (e.to_string(), format!("{e:?}"));
            }
        }
    }

    #[test]
    fn secrets_never_leak(
        secret in "[A-Za-z0-9]{6,16}",
        pairs in prop::collection::vec((any_key(), any_value()), 0..6),
    ) {
        let secret = format!("S3CR3T-{secret}");
        let pairs = pairs.into_iter().chain([
            ("ssl.truststore.password".to_owned(), secret.clone()),
            ("sasl.jaas.config".to_owned(), secret.clone()),
        ]);
        let text = match ClientConfig::from_pairs(pairs) {
            Ok(c) => format!("{c:?}"),
            Err(e) => format!("{e} {e:?}"),
        };
        prop_assert!(!text.contains(&secret), "{}", text);
    }
}
