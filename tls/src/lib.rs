//! rustls client configuration from Kafka-style `ssl.*` keys (being written).
