//! Every Kafka error code is retriable exactly when Kafka's own table says so, and a
//! broker's error code keeps that classification through `ClientError::is_retriable`.

use ferrokafka_client::{Api, ClientError, ErrorCode, Subject};

#[test]
fn retriable_flags_match_kafkas_table() {
    let table = include_str!("kafka_error_codes.txt");
    let mut checked = 0;
    for line in table.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut f = line.split_whitespace();
        let (code, name, retriable) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let code: i16 = code.parse().unwrap();
        let retriable: bool = retriable.parse().unwrap();
        let error = ErrorCode::from(code);
        assert_eq!(error.name(), name, "code {code}");
        assert_eq!(error.is_retriable(), retriable, "code {code} {name}");
        let e = ClientError::Broker { api: Api::PRODUCE, error, subject: Subject::Request };
        assert_eq!(e.is_retriable(), retriable, "code {code} {name}");
        assert_eq!(e.code().map(ErrorCode::code), Some(code));
        checked += 1;
    }
    assert!(checked > 130, "the whole table: {checked}");
}

#[test]
fn errors_clone_and_keep_their_context() {
    let io = ClientError::Io { broker: "b:9092".into(), source: std::sync::Arc::new(std::io::Error::other("reset")) };
    let copy = io.clone();
    assert_eq!(copy.to_string(), io.to_string());
    assert!(std::error::Error::source(&copy).is_some(), "the io::Error stays the source");
    let tp = ferrokafka_client::metadata::TopicPartition::new("t", 3);
    let broker =
        ClientError::Broker { api: Api::FETCH, error: ErrorCode::from(6), subject: Subject::Partition(tp.clone()) };
    assert_eq!(broker.to_string(), format!("Fetch failed for {tp}: NOT_LEADER_OR_FOLLOWER (code 6)"));
    let delivery = ClientError::Delivery { partition: tp, attempts: 3, last: Box::new(broker.clone()) };
    assert!(!delivery.is_retriable());
    assert!(delivery.to_string().contains("retries or delivery.timeout.ms exhausted"), "{delivery}");
    let source = std::error::Error::source(&delivery).map(ToString::to_string);
    assert_eq!(source, Some(broker.to_string()), "the last error is the source");
    let config = ClientError::from(ferrokafka_client::config::ConfigError::invalid_value("acks", "7", "all, 0 or 1"));
    assert!(config.is_config() && !config.is_retriable());
}
