//! kafkaParams: the Kafka-style string map a stream is created with, its
//! validation, and the executor-side fix-ups Spark applies.

use std::collections::BTreeMap;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::serde::{deserializer_for_class, ClassDeserializer, Deserialized, Deserializer};
use ferrokafka_protocol::records::Record;

use crate::error::{Result, StreamingError};

/// Prefix of the group id executor consumers use (Spark: `spark-executor-`).
pub const EXECUTOR_GROUP_PREFIX: &str = "spark-executor-";
/// Smallest socket receive buffer executors use (Spark raises it to 65536).
const MIN_RECEIVE_BUFFER: u64 = 65_536;
/// In-flight requests per connection for executors unless set (see `executor_params`).
const EXECUTOR_MAX_IN_FLIGHT: u32 = 64;

/// A validated kafkaParams map.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaParams {
    map: BTreeMap<String, String>,
}

impl std::fmt::Debug for KafkaParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client configuration's Debug redacts secrets.
        match ClientConfig::from_pairs(&self.map) {
            Ok(c) => f.debug_struct("KafkaParams").field("config", &c).finish(),
            Err(_) => f.write_str("KafkaParams { .. }"),
        }
    }
}

impl KafkaParams {
    /// Validates the map: every key must be known to the client (or to a layer), and
    /// the deserializer class names, if given, must map to built-in deserializers.
    pub fn new<I, K, V>(pairs: I) -> Result<KafkaParams>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let map: BTreeMap<String, String> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        ClientConfig::from_pairs(&map).map_err(|e| StreamingError::Client(e.into()))?;
        for key in ["key.deserializer", "value.deserializer"] {
            if let Some(class) = map.get(key) {
                deserializer_for_class(class).map_err(|e| StreamingError::Client(e.into()))?;
            }
        }
        Ok(KafkaParams { map })
    }

    /// The deserializers named by `key.deserializer` and `value.deserializer` (Java
    /// class names, full or simple); bytes when a key is absent.
    pub fn deserializers(&self) -> Result<Deserializers> {
        let get = |key: &str| -> Result<ClassDeserializer> {
            match self.map.get(key) {
                Some(class) => deserializer_for_class(class).map_err(|e| StreamingError::Client(e.into())),
                None => Ok(ClassDeserializer::Bytes),
            }
        };
        Ok(Deserializers { key: get("key.deserializer")?, value: get("value.deserializer")? })
    }

    /// The raw value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// `group.id`, which a stream requires (Spark only logs its absence).
    pub fn group_id(&self) -> Result<&str> {
        match self.get("group.id").map(str::trim) {
            Some(g) if !g.is_empty() => Ok(g),
            _ => Err(StreamingError::Params(
                "group.id is required for a stream: the consumer cache and committed offsets are keyed by it".into(),
            )),
        }
    }

    /// The configuration of the driver's consumer: the user's params as they are.
    pub fn driver_config(&self) -> Result<ClientConfig> {
        ClientConfig::from_pairs(&self.map).map_err(|e| StreamingError::Client(e.into()))
    }

    /// The executors' params: `enable.auto.commit=false`, `auto.offset.reset=none`,
    /// `group.id` prefixed with [`EXECUTOR_GROUP_PREFIX`], `receive.buffer.bytes >= 65536`
    /// (Spark writes 65536 when the key is unset, the Java default; here an unset key
    /// means the OS's autotuned buffer, which is not smaller, so only explicit values
    /// below 64 KiB are raised),
    /// and (ferrokafka's own, unless set) `max.in.flight.requests.per.connection = 64`: an
    /// executor reads each partition with its own consumer, as Spark does, and those consumers
    /// share one connection per broker, so their fetches must pipeline instead of queueing
    /// behind the producer-oriented default of 5.
    pub fn executor_params(&self) -> Result<KafkaParams> {
        let mut map = self.map.clone();
        map.insert("enable.auto.commit".into(), "false".into());
        map.insert("auto.offset.reset".into(), "none".into());
        if let Some(g) = self.get("group.id") {
            if !g.starts_with(EXECUTOR_GROUP_PREFIX) {
                map.insert("group.id".into(), format!("{EXECUTOR_GROUP_PREFIX}{g}"));
            }
        }
        let rb = map.get("receive.buffer.bytes").and_then(|v| v.trim().parse::<i64>().ok());
        if rb.is_some_and(|v| v > 0 && (v as u64) < MIN_RECEIVE_BUFFER) {
            map.insert("receive.buffer.bytes".into(), MIN_RECEIVE_BUFFER.to_string());
        }
        if !map.contains_key("max.in.flight.requests.per.connection") && !map.contains_key("max.in.flight") {
            map.insert("max.in.flight.requests.per.connection".into(), EXECUTOR_MAX_IN_FLIGHT.to_string());
        }
        Ok(KafkaParams { map })
    }

    /// The same params with `client.rack` set to `rack` (an executor in that rack).
    pub(crate) fn with_rack(&self, rack: &str) -> KafkaParams {
        let mut map = self.map.clone();
        map.insert("client.rack".into(), rack.to_owned());
        KafkaParams { map }
    }

    /// Rejects executor params that would break exact ranges (Spark's KafkaRDD checks).
    pub fn validate_for_executors(&self) -> Result<()> {
        if self.get("enable.auto.commit").map(str::trim) != Some("false") {
            return Err(StreamingError::Params(
                "enable.auto.commit must be set to false for executor kafka params".into(),
            ));
        }
        if self.get("auto.offset.reset").map(str::trim) != Some("none") {
            return Err(StreamingError::Params(
                "auto.offset.reset must be set to none for executor kafka params".into(),
            ));
        }
        Ok(())
    }

    /// The configuration executors' consumers use.
    pub fn executor_config(&self) -> Result<ClientConfig> {
        self.executor_params()?.driver_config()
    }
}

/// The kafkaParams' `key.deserializer` and `value.deserializer`, applied to records
/// (Spark's `ConsumerRecord[K, V]`): `p.value(&record)?` is a
/// [`Deserialized::String`] with `StringDeserializer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deserializers {
    /// For keys.
    pub key: ClassDeserializer,
    /// For values.
    pub value: ClassDeserializer,
}

impl Deserializers {
    /// The record's key, deserialized.
    pub fn key(&self, record: &Record) -> Result<Deserialized> {
        self.key.deserialize(record.key.as_deref()).map_err(|e| deserialize_error("key", record, e))
    }

    /// The record's value, deserialized.
    pub fn value(&self, record: &Record) -> Result<Deserialized> {
        self.value.deserialize(record.value.as_deref()).map_err(|e| deserialize_error("value", record, e))
    }
}

fn deserialize_error(what: &str, record: &Record, e: ferrokafka_client::serde::DeserializeError) -> StreamingError {
    StreamingError::Params(format!("the {what} of the record at offset {} cannot be deserialized: {e}", record.offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(extra: &[(&str, &str)]) -> Result<KafkaParams> {
        let mut v = vec![("bootstrap.servers", "localhost:9092")];
        v.extend_from_slice(extra);
        KafkaParams::new(v.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())))
    }

    #[test]
    fn executor_fixups_follow_spark() {
        let p =
            params(&[("group.id", "g"), ("enable.auto.commit", "true"), ("auto.offset.reset", "earliest")]).unwrap();
        let e = p.executor_params().unwrap();
        assert_eq!(e.get("group.id"), Some("spark-executor-g"));
        assert_eq!(e.get("enable.auto.commit"), Some("false"));
        assert_eq!(e.get("auto.offset.reset"), Some("none"));
        assert_eq!(e.get("receive.buffer.bytes"), None, "unset: the OS's autotuned buffer");
        let small = params(&[("group.id", "g"), ("receive.buffer.bytes", "4096")]).unwrap().executor_params().unwrap();
        assert_eq!(small.get("receive.buffer.bytes"), Some("65536"), "raised to Spark's minimum");
        let os = params(&[("group.id", "g"), ("receive.buffer.bytes", "-1")]).unwrap().executor_params().unwrap();
        assert_eq!(os.get("receive.buffer.bytes"), Some("-1"));
        assert_eq!(e.get("max.in.flight.requests.per.connection"), Some("64"));
        let mine = params(&[("group.id", "g"), ("max.in.flight", "2")]).unwrap().executor_params().unwrap();
        assert_eq!((mine.get("max.in.flight"), mine.get("max.in.flight.requests.per.connection")), (Some("2"), None));
        mine.executor_config().unwrap();
        e.validate_for_executors().unwrap();
        assert!(p
            .validate_for_executors()
            .unwrap_err()
            .to_string()
            .contains("enable.auto.commit must be set to false"));
        // Idempotent: fixing up executor params again changes nothing.
        assert_eq!(e.executor_params().unwrap(), e);
        let big = params(&[("group.id", "g"), ("receive.buffer.bytes", "1048576")]).unwrap().executor_params().unwrap();
        assert_eq!(big.get("receive.buffer.bytes"), Some("1048576"));
    }

    #[test]
    fn missing_group_and_bad_values_are_errors() {
        assert!(params(&[]).unwrap().group_id().unwrap_err().to_string().contains("group.id is required"));
        assert!(params(&[("bootstrap.server", "x:1")]).unwrap_err().to_string().contains("did you mean"));
        assert!(params(&[("value.deserializer", "com.acme.Nope")]).is_err());
        params(&[("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer")]).unwrap();
        let dbg = format!("{:?}", params(&[("ssl.truststore.password", "hunter2")]).unwrap());
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }
}
