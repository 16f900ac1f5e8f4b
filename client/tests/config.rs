//! Tests of `ClientConfig` parsing: defaults, aliases, errors, conflicts, redaction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use ferrokafka_client::config::{
    Acks, AutoOffsetReset, ClientConfig, ConfigError, IsolationLevel, Partitioner, SecurityProtocol,
};
use ferrokafka_client::ClientError;
use ferrokafka_protocol::Compression;

const BOOTSTRAP: (&str, &str) = ("bootstrap.servers", "localhost:9092");

/// Parses the bootstrap key plus `pairs`.
fn parse(pairs: &[(&str, &str)]) -> Result<ClientConfig, ConfigError> {
    ClientConfig::from_pairs(std::iter::once(BOOTSTRAP).chain(pairs.iter().copied()))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn defaults() {
    let c = ClientConfig::new("localhost:9092").unwrap();
    assert_eq!(c.bootstrap_servers(), ["localhost:9092"]);
    assert_eq!(c.client_id(), "ferrokafka");
    assert_eq!(c.request_timeout(), ms(30_000));
    assert_eq!(c.connection_setup_timeout(), ms(10_000));
    assert_eq!(c.fetch_min_bytes(), 1);
    assert_eq!(c.fetch_max_wait(), ms(500));
    assert_eq!(c.fetch_max_bytes(), 52_428_800);
    assert_eq!(c.max_partition_fetch_bytes(), 1_048_576);
    assert_eq!(c.auto_offset_reset(), AutoOffsetReset::Latest);
    assert_eq!(c.isolation_level(), IsolationLevel::ReadUncommitted);
    assert!(c.check_crcs());
    assert_eq!(c.acks(), Acks::All);
    assert_eq!(c.linger(), ms(5));
    assert_eq!(c.batch_size(), 16_384);
    assert_eq!(c.compression(), Compression::None);
    assert_eq!(c.retries(), i32::MAX as u32);
    assert_eq!(c.retry_backoff(), ms(100));
    assert_eq!(c.reconnect_backoff(), ms(50));
    assert_eq!(c.reconnect_backoff_max(), ms(1000));
    assert_eq!(c.metadata_max_age(), ms(300_000));
    assert!(!c.allow_auto_create_topics());
    assert_eq!(c.security_protocol(), SecurityProtocol::Plaintext);
    assert_eq!(c.receive_message_max_bytes(), 100_000_000);
    assert_eq!(c.max_in_flight_requests_per_connection(), 5);
    assert!(!c.enable_idempotence());
    assert_eq!(c.delivery_timeout(), ms(120_000));
    assert_eq!(c.max_poll_records(), 500);
    assert_eq!(c.receive_buffer_bytes(), None, "OS default, as librdkafka");
    assert_eq!(c.send_buffer_bytes(), None);
    assert_eq!(c.partitioner(), Partitioner::Default);
    assert_eq!(c.layer_keys().count(), 0);
}

#[test]
fn every_key_is_set() {
    let c = parse(&[
        ("client.id", " app "),
        ("request.timeout.ms", "40000"),
        ("socket.connection.setup.timeout.ms", "2000"),
        ("fetch.min.bytes", "0"),
        ("fetch.max.wait.ms", "0"),
        ("fetch.max.bytes", "1000"),
        ("max.partition.fetch.bytes", "999"),
        ("auto.offset.reset", "none"),
        ("isolation.level", "read_committed"),
        ("check.crcs", "FALSE"),
        ("acks", "1"),
        ("linger.ms", "0"),
        ("batch.size", "0"),
        ("compression.type", "ZSTD"),
        ("retries", "0"),
        ("retry.backoff.ms", "7"),
        ("reconnect.backoff.ms", "8"),
        ("reconnect.backoff.max.ms", "9"),
        ("metadata.max.age.ms", "10"),
        ("allow.auto.create.topics", "True"),
        ("security.protocol", "sasl_ssl"),
        ("receive.message.max.bytes", "1000"),
        ("max.in.flight.requests.per.connection", "1"),
        ("enable.idempotence", "false"),
        ("delivery.timeout.ms", "40000"),
        ("max.poll.records", "1"),
        ("receive.buffer.bytes", "-1"),
        ("send.buffer.bytes", "0"),
        ("partitioner.class", "org.apache.kafka.clients.producer.internals.DefaultPartitioner"),
    ])
    .unwrap();
    assert_eq!(c.client_id(), "app");
    assert_eq!((c.request_timeout(), c.connection_setup_timeout()), (ms(40_000), ms(2000)));
    assert_eq!((c.fetch_min_bytes(), c.fetch_max_wait(), c.fetch_max_bytes()), (0, ms(0), 1000));
    assert_eq!(c.max_partition_fetch_bytes(), 999);
    assert_eq!(c.auto_offset_reset(), AutoOffsetReset::None);
    assert_eq!(c.isolation_level(), IsolationLevel::ReadCommitted);
    assert!(!c.check_crcs());
    assert_eq!(c.acks(), Acks::Leader);
    assert_eq!((c.linger(), c.batch_size(), c.compression()), (ms(0), 0, Compression::Zstd));
    assert_eq!((c.retries(), c.retry_backoff()), (0, ms(7)));
    assert_eq!((c.reconnect_backoff(), c.reconnect_backoff_max(), c.metadata_max_age()), (ms(8), ms(9), ms(10)));
    assert!(c.allow_auto_create_topics());
    assert_eq!(c.security_protocol(), SecurityProtocol::SaslSsl);
    assert!(c.security_protocol().uses_tls() && c.security_protocol().uses_sasl());
    assert_eq!((c.receive_message_max_bytes(), c.max_in_flight_requests_per_connection()), (1000, 1));
    assert_eq!((c.delivery_timeout(), c.max_poll_records()), (ms(40_000), 1));
    assert_eq!((c.receive_buffer_bytes(), c.send_buffer_bytes()), (None, None));
}

#[test]
fn aliases() {
    type Check = fn(&ClientConfig) -> bool;
    let cases: &[(&str, &str, &str, Check)] = &[
        ("bootstrap.servers", "metadata.broker.list", "a:1,b:2", |c| c.bootstrap_servers() == ["a:1", "b:2"]),
        ("fetch.max.wait.ms", "fetch.wait.max.ms", "77", |c| c.fetch_max_wait() == ms(77)),
        ("max.partition.fetch.bytes", "fetch.message.max.bytes", "4096", |c| c.max_partition_fetch_bytes() == 4096),
        ("acks", "request.required.acks", "-1", |c| c.acks() == Acks::All),
        ("linger.ms", "queue.buffering.max.ms", "12", |c| c.linger() == ms(12)),
        ("compression.type", "compression.codec", "lz4", |c| c.compression() == Compression::Lz4),
        ("retries", "message.send.max.retries", "3", |c| c.retries() == 3),
        ("metadata.max.age.ms", "topic.metadata.refresh.interval.ms", "60000", |c| c.metadata_max_age() == ms(60_000)),
        ("max.in.flight.requests.per.connection", "max.in.flight", "2", |c| {
            c.max_in_flight_requests_per_connection() == 2
        }),
        ("receive.buffer.bytes", "socket.receive.buffer.bytes", "1024", |c| c.receive_buffer_bytes() == Some(1024)),
        ("send.buffer.bytes", "socket.send.buffer.bytes", "2048", |c| c.send_buffer_bytes() == Some(2048)),
        ("partitioner.class", "partitioner", "murmur2_random", |c| c.partitioner() == Partitioner::Default),
    ];
    for &(canonical, alias, value, check) in cases {
        let host = ("bootstrap.servers", "h:1");
        let base: Vec<(&str, &str)> = if canonical == "bootstrap.servers" { vec![] } else { vec![host] };
        for pairs in [vec![(alias, value)], vec![(canonical, value), (alias, value)]] {
            let c = ClientConfig::from_pairs(base.iter().copied().chain(pairs)).unwrap();
            assert!(check(&c), "{canonical} / {alias}");
        }
        // The same setting written differently is no conflict.
        if let Ok(n) = value.parse::<u64>() {
            let padded = format!(" 0{n} ");
            let pairs = base.iter().copied().chain([(canonical, value), (alias, padded.as_str())]);
            assert!(ClientConfig::from_pairs(pairs).is_ok(), "{canonical}");
        }
        let pairs = base.iter().copied().chain([(canonical, value), (alias, "x:9")]);
        match ClientConfig::from_pairs(pairs).unwrap_err() {
            ConfigError::Conflict { first, second, .. } if canonical == "bootstrap.servers" => {
                assert_eq!((first.as_str(), second.as_str()), (canonical, alias));
            }
            ConfigError::InvalidValue { key, .. } => assert_eq!(key, alias),
            other => panic!("{canonical}: {other}"),
        }
    }
}

#[test]
fn alias_conflicts_name_both_keys_and_values() {
    let err = ClientConfig::from_pairs([("bootstrap.servers", "a:1"), ("metadata.broker.list", "b:2")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "conflicting configuration keys \"bootstrap.servers\" and \"metadata.broker.list\": \
         the same setting given two different values (\"a:1\" and \"b:2\")"
    );
    let err = parse(&[("linger.ms", "5"), ("queue.buffering.max.ms", "10")]).unwrap_err();
    assert!(matches!(err, ConfigError::Conflict { ref first, ref second, .. }
        if first == "linger.ms" && second == "queue.buffering.max.ms"));
    // Values equal once parsed do not conflict.
    parse(&[("acks", "all"), ("request.required.acks", "-1")]).unwrap();
    parse(&[("auto.offset.reset", "earliest")]).unwrap();
    ClientConfig::from_pairs([("bootstrap.servers", "a:1 b:2"), ("metadata.broker.list", "a:01,b:2")]).unwrap();
}

#[test]
fn enum_values() {
    let reset = |v| parse(&[("auto.offset.reset", v)]).unwrap().auto_offset_reset();
    for v in ["earliest", "smallest", "beginning", "EARLIEST"] {
        assert_eq!(reset(v), AutoOffsetReset::Earliest, "{v}");
    }
    for v in ["latest", "largest", "end"] {
        assert_eq!(reset(v), AutoOffsetReset::Latest, "{v}");
    }
    for v in ["none", "error"] {
        assert_eq!(reset(v), AutoOffsetReset::None, "{v}");
    }
    let acks = |v| parse(&[("acks", v)]).unwrap().acks();
    assert_eq!([acks("0"), acks("1"), acks("all"), acks("-1")], [Acks::None, Acks::Leader, Acks::All, Acks::All]);
    assert_eq!([Acks::None.as_i16(), Acks::Leader.as_i16(), Acks::All.as_i16()], [0, 1, -1]);
    let codec = |v| parse(&[("compression.type", v)]).unwrap().compression();
    for c in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        assert_eq!(codec(c.name()), c);
    }
    let protocol = |v| parse(&[("security.protocol", v)]).unwrap().security_protocol();
    for p in [SecurityProtocol::Plaintext, SecurityProtocol::Ssl, SecurityProtocol::SaslPlaintext] {
        assert_eq!(protocol(p.as_str()), p);
    }
    assert_eq!(IsolationLevel::ReadCommitted.as_i8(), 1);
    assert_eq!(AutoOffsetReset::Earliest.to_string(), "earliest");
}

#[test]
fn bootstrap_lists() {
    let servers = |v| ClientConfig::new(v).map(|c| c.bootstrap_servers().to_vec());
    assert_eq!(servers("a:1,b:2").unwrap(), ["a:1", "b:2"]);
    assert_eq!(servers(" a:1 ,  b:2,,c:3 \n").unwrap(), ["a:1", "b:2", "c:3"]);
    assert_eq!(servers("a:1 b:2").unwrap(), ["a:1", "b:2"]);
    assert_eq!(servers("[::1]:9092").unwrap(), ["[::1]:9092"]);
    for bad in ["", " , ", "localhost", "a:0", "a:65536", ":1", "a:1,b", "a:x", "h:1:2", "PLAINTEXT://h:1"] {
        let err = servers(bad).unwrap_err();
        assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "bootstrap.servers"), "{bad}: {err}");
    }
    let err = servers("a:1,b").unwrap_err().to_string();
    assert!(err.contains("\"a:1,b\"") && err.contains("\"b\" is not"), "{err}");
    let err = ClientConfig::from_pairs([("client.id", "x")]).unwrap_err();
    assert_eq!(err, ConfigError::Missing { key: "bootstrap.servers".into() });
    assert_eq!(err.to_string(), "missing required configuration key \"bootstrap.servers\"");
}

#[test]
fn unknown_keys() {
    let err = ClientConfig::from_pairs([("bootstrap.server", "h:1")]).unwrap_err();
    assert_eq!(err.to_string(), "unknown configuration key \"bootstrap.server\"; did you mean \"bootstrap.servers\"?");
    let suggestion = |key: &str| match parse(&[(key, "1")]).unwrap_err() {
        ConfigError::UnknownKey { suggestion, .. } => suggestion,
        other => panic!("{key}: {other}"),
    };
    assert_eq!(suggestion("bootstrap_servers").as_deref(), Some("bootstrap.servers"));
    assert_eq!(suggestion("linger_ms").as_deref(), Some("linger.ms"));
    assert_eq!(suggestion("fetch.max.wait").as_deref(), Some("fetch.max.wait.ms"));
    assert_eq!(suggestion("enable.auto.comit").as_deref(), Some("enable.auto.commit"));
    assert_eq!(suggestion("spark.streaming.kafka.consumer.poll.ms"), None);
    assert_eq!(suggestion("totally.unrelated.key"), None);
    let err = parse(&[("spark.kafka.x", "1")]).unwrap_err();
    assert_eq!(err.to_string(), "unknown configuration key \"spark.kafka.x\"");
    // Of several unknown keys, the smallest is reported, whatever the map order.
    let map: HashMap<String, String> =
        [("zz", "1"), ("bootstrap.servers", "h:1"), ("aa", "1"), ("mm", "1")].map(|(k, v)| (k.into(), v.into())).into();
    assert!(matches!(ClientConfig::from_pairs(&map).unwrap_err(), ConfigError::UnknownKey { key, .. } if key == "aa"));
    // Layers can build the same error over their own keys.
    let err = ConfigError::unknown_key("ssl.truststore.loction", &["ssl.truststore.location", "ssl.ca.location"]);
    assert!(matches!(err, ConfigError::UnknownKey { suggestion: Some(s), .. } if s == "ssl.truststore.location"));
}

#[test]
fn invalid_values() {
    let message = |key, value| parse(&[(key, value)]).unwrap_err().to_string();
    assert_eq!(
        message("fetch.min.bytes", "-1"),
        "invalid value \"-1\" for configuration key \"fetch.min.bytes\": expected an integer in 0..=2147483647"
    );
    assert_eq!(
        message("check.crcs", "yes"),
        "invalid value \"yes\" for configuration key \"check.crcs\": expected true or false"
    );
    assert_eq!(
        message("acks", "2"),
        "invalid value \"2\" for configuration key \"acks\": expected one of 0, 1, all, -1"
    );
    let m = message("fetch.wait.max.ms", "1.5");
    assert!(m.contains("\"fetch.wait.max.ms\"") && m.contains("\"1.5\"") && m.contains("milliseconds"), "{m}");
    for (key, value) in [
        ("request.timeout.ms", "0"),
        ("request.timeout.ms", "2147483648"),
        ("linger.ms", "+5"),
        ("linger.ms", "-5"),
        ("batch.size", "16k"),
        ("batch.size", ""),
        ("retries", "-1"),
        ("receive.message.max.bytes", "999"),
        ("max.in.flight.requests.per.connection", "0"),
        ("max.poll.records", "0"),
        ("receive.buffer.bytes", "-2"),
        ("check.crcs", "1"),
        ("enable.idempotence", "on"),
        ("allow.auto.create.topics", ""),
        ("auto.offset.reset", "first"),
        ("isolation.level", "committed"),
        ("compression.type", "brotli"),
        ("compression.codec", "inherit"),
        ("security.protocol", "TLS"),
        ("partitioner", "consistent_random"),
        ("partitioner.class", "com.example.MyPartitioner"),
    ] {
        match parse(&[(key, value)]).unwrap_err() {
            ConfigError::InvalidValue { key: k, value: v, expected, .. } => {
                assert_eq!((k.as_str(), v.as_str()), (key, value));
                assert!(!expected.is_empty());
            }
            other => panic!("{key}={value}: {other}"),
        }
    }
}

#[test]
fn cross_key_conflicts() {
    let conflict = |pairs: &[(&str, &str)]| match parse(pairs).unwrap_err() {
        ConfigError::Conflict { first, second, reason } => (first, second, reason),
        other => panic!("{pairs:?}: {other}"),
    };
    let (first, second, reason) = conflict(&[("enable.idempotence", "true"), ("acks", "1")]);
    assert_eq!((first.as_str(), second.as_str()), ("enable.idempotence", "acks"));
    assert!(reason.contains("acks=all"), "{reason}");
    assert_eq!(conflict(&[("enable.idempotence", "true"), ("retries", "0")]).1, "retries");
    let (_, second, _) = conflict(&[("enable.idempotence", "true"), ("max.in.flight", "6")]);
    assert_eq!(second, "max.in.flight.requests.per.connection");
    parse(&[("enable.idempotence", "true"), ("acks", "-1"), ("max.in.flight", "5")]).unwrap();
    let (first, second, reason) = conflict(&[("fetch.min.bytes", "100"), ("fetch.max.bytes", "99")]);
    assert_eq!((first.as_str(), second.as_str()), ("fetch.min.bytes", "fetch.max.bytes"));
    assert!(reason.contains("100") && reason.contains("99"), "{reason}");
    parse(&[("fetch.min.bytes", "100"), ("fetch.max.bytes", "100")]).unwrap();
    let (first, second, _) = conflict(&[("reconnect.backoff.ms", "2000")]);
    assert_eq!((first.as_str(), second.as_str()), ("reconnect.backoff.ms", "reconnect.backoff.max.ms"));
    let (first, _, _) = conflict(&[
        ("max.partition.fetch.bytes", "2000"),
        ("fetch.max.bytes", "0"),
        ("fetch.min.bytes", "0"),
        ("receive.message.max.bytes", "1999"),
    ]);
    assert_eq!(first, "max.partition.fetch.bytes");
    let (first, _, _) = conflict(&[("receive.message.max.bytes", "1000000")]);
    assert_eq!(first, "fetch.max.bytes");
    let (first, _, _) = conflict(&[("fetch.max.wait.ms", "30000")]);
    assert_eq!(first, "fetch.max.wait.ms");
    let (first, _, reason) = conflict(&[("delivery.timeout.ms", "30000")]);
    assert_eq!(first, "delivery.timeout.ms");
    assert!(reason.contains("30005"), "{reason}");
    // Without an explicit delivery.timeout.ms, it is raised as the Java client does.
    let c = parse(&[("request.timeout.ms", "200000"), ("linger.ms", "1000")]).unwrap();
    assert_eq!(c.delivery_timeout(), ms(201_000));
}

#[test]
fn layer_keys_pass_through() {
    let layer = [
        ("group.id", "g"),
        ("group.instance.id", "i"),
        ("enable.auto.commit", "false"),
        ("auto.commit.interval.ms", "5000"),
        ("session.timeout.ms", "45000"),
        ("heartbeat.interval.ms", "3000"),
        ("max.poll.interval.ms", "300000"),
        ("partition.assignment.strategy", "range"),
        ("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer"),
        ("value.deserializer", "v"),
        ("key.serializer", "k"),
        ("value.serializer", "v"),
        ("enable.ssl.certificate.verification", "false"),
        ("ssl.truststore.location", "/etc/ts.jks"),
        ("ssl.endpoint.identification.algorithm", ""),
        ("sasl.mechanism", "PLAIN"),
        ("sasl.anything.at.all", " kept verbatim "),
    ];
    let c = parse(&layer).unwrap();
    let mut expected = layer.to_vec();
    expected.sort();
    assert_eq!(c.layer_keys().collect::<Vec<_>>(), expected);
    assert_eq!(c.layer_value("sasl.anything.at.all"), Some(" kept verbatim "));
    assert_eq!(c.layer_value("group.id"), Some("g"));
    assert_eq!(c.layer_value("bootstrap.servers"), None);
    // A key given twice: the last value wins.
    let c = parse(&[("group.id", "a"), ("group.id", "b"), ("linger.ms", "1"), ("linger.ms", "2")]).unwrap();
    assert_eq!((c.layer_value("group.id"), c.linger()), (Some("b"), ms(2)));
}

#[test]
fn converts_into_client_error() {
    fn build() -> Result<ClientConfig, ClientError> {
        Ok(ClientConfig::new("nohost")?)
    }
    let err = build().unwrap_err();
    assert!(matches!(err, ClientError::Config(ConfigError::InvalidValue { .. })));
    assert!(!err.is_retriable());
}
