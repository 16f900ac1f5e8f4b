//! The Spark Kafka 0-10 direct stream in Rust (being written).
