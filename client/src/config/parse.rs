//! Parsing a string map into a [`ClientConfig`]: key classification, value
//! parsers, alias conflicts and cross-key rules.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ferrokafka_protocol::Compression;

use super::error::{shown, ConfigError};
use super::keys::{self, Class};
use super::values::{Acks, AutoOffsetReset, IsolationLevel, Partitioner, SecurityProtocol};
use super::{ClientConfig, LayerKeys};

/// The largest value of the Java client's `int` keys.
const INT_MAX: i64 = i32::MAX as i64;

/// A value parser: the typed value, or a description of what is accepted.
type Parser<T> = Box<dyn Fn(&str) -> Result<T, String>>;

impl ClientConfig {
    /// A configuration with `bootstrap.servers` set and every other key at its default.
    pub fn new(bootstrap_servers: &str) -> Result<Self, ConfigError> {
        Self::from_pairs([("bootstrap.servers", bootstrap_servers)])
    }

    /// Parses and validates key/value pairs (a `HashMap<String, String>`, a slice
    /// of `(&str, &str)`, ...). When a key is given twice, the last value wins.
    ///
    /// Errors are reported in a fixed order whatever the iteration order of the
    /// map: unknown keys first (the smallest), then `bootstrap.servers` missing
    /// or values invalid (in a fixed key order), then cross-key conflicts.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut raw = Raw::default();
        let mut layer = BTreeMap::new();
        let mut unknown: Option<String> = None;
        for (key, value) in pairs {
            let (key, value) = (key.as_ref(), value.as_ref());
            match keys::classify(key) {
                Class::Typed(spelling) => {
                    raw.0.insert(spelling, value.to_owned());
                }
                Class::Layer => {
                    layer.insert(key.to_owned(), value.to_owned());
                }
                Class::Unknown => {
                    if unknown.as_deref().is_none_or(|smallest| key < smallest) {
                        unknown = Some(key.to_owned());
                    }
                }
            }
        }
        if let Some(key) = unknown {
            let suggestion = keys::suggest_known(&key);
            return Err(ConfigError::UnknownKey { key, suggestion });
        }
        let delivery_timeout = raw.take("delivery.timeout.ms", millis(1))?;
        let idempotence = raw.take("enable.idempotence", boolean())?;
        let transactional_id = raw.take("transactional.id", Box::new(|v| Ok(v.to_owned())))?;
        let mut config = ClientConfig {
            bootstrap_servers: raw
                .take("bootstrap.servers", Box::new(servers))?
                .ok_or_else(|| ConfigError::Missing { key: "bootstrap.servers".into() })?,
            client_id: raw.take("client.id", Box::new(|v| Ok(v.to_owned())))?.unwrap_or_else(|| "ferrokafka".into()),
            client_rack: raw.take("client.rack", Box::new(|v| Ok(v.to_owned())))?.filter(|r| !r.is_empty()),
            request_timeout: raw.take("request.timeout.ms", millis(1))?.unwrap_or(Duration::from_millis(30_000)),
            connection_setup_timeout: raw
                .take("socket.connection.setup.timeout.ms", millis(1))?
                .unwrap_or(Duration::from_millis(10_000)),
            fetch_min_bytes: raw.take("fetch.min.bytes", int(0, INT_MAX))?.unwrap_or(1),
            fetch_max_wait: raw.take("fetch.max.wait.ms", millis(0))?.unwrap_or(Duration::from_millis(500)),
            fetch_max_bytes: raw.take("fetch.max.bytes", int(0, INT_MAX))?.unwrap_or(52_428_800),
            max_partition_fetch_bytes: raw.take("max.partition.fetch.bytes", int(0, INT_MAX))?.unwrap_or(1_048_576),
            auto_offset_reset: raw
                .take("auto.offset.reset", named(AutoOffsetReset::parse, AutoOffsetReset::EXPECTED))?
                .unwrap_or_default(),
            isolation_level: raw
                .take("isolation.level", named(IsolationLevel::parse, IsolationLevel::EXPECTED))?
                .unwrap_or_default(),
            check_crcs: raw.take("check.crcs", boolean())?.unwrap_or(true),
            acks: raw.take("acks", named(Acks::parse, Acks::EXPECTED))?.unwrap_or_default(),
            linger: raw.take("linger.ms", millis(0))?.unwrap_or(Duration::from_millis(5)),
            batch_size: raw.take("batch.size", int(0, INT_MAX))?.unwrap_or(16_384),
            compression: raw.take("compression.type", named(compression, COMPRESSION_EXPECTED))?.unwrap_or_default(),
            retries: raw.take("retries", int(0, INT_MAX))?.unwrap_or(i32::MAX.unsigned_abs()),
            retry_backoff: raw.take("retry.backoff.ms", millis(0))?.unwrap_or(Duration::from_millis(100)),
            reconnect_backoff: raw.take("reconnect.backoff.ms", millis(0))?.unwrap_or(Duration::from_millis(50)),
            reconnect_backoff_max: raw
                .take("reconnect.backoff.max.ms", millis(0))?
                .unwrap_or(Duration::from_millis(1000)),
            metadata_max_age: raw.take("metadata.max.age.ms", millis(0))?.unwrap_or(Duration::from_millis(300_000)),
            allow_auto_create_topics: raw.take("allow.auto.create.topics", boolean())?.unwrap_or(false),
            security_protocol: raw
                .take("security.protocol", named(SecurityProtocol::parse, SecurityProtocol::EXPECTED))?
                .unwrap_or_default(),
            receive_message_max_bytes: raw
                .take("receive.message.max.bytes", int(1000, INT_MAX))?
                .unwrap_or(100_000_000),
            max_in_flight_requests_per_connection: raw
                .take("max.in.flight.requests.per.connection", int(1, INT_MAX))?
                .unwrap_or(5),
            enable_idempotence: idempotence.unwrap_or(transactional_id.is_some()),
            transaction_timeout: raw
                .take("transaction.timeout.ms", millis(1))?
                .unwrap_or(Duration::from_millis(60_000)),
            transactional_id: transactional_id.clone(),
            delivery_timeout: delivery_timeout.unwrap_or(Duration::from_millis(120_000)),
            buffer_memory: raw.take("buffer.memory", int(1, i64::MAX))?.unwrap_or(33_554_432),
            max_block: raw.take("max.block.ms", millis(0))?.unwrap_or(Duration::from_millis(60_000)),
            max_poll_records: raw.take("max.poll.records", int(1, INT_MAX))?.unwrap_or(500),
            receive_buffer_bytes: raw.take("receive.buffer.bytes", socket_buffer())?.unwrap_or(None),
            send_buffer_bytes: raw.take("send.buffer.bytes", socket_buffer())?.unwrap_or(None),
            partitioner: raw
                .take("partitioner.class", named(Partitioner::parse, Partitioner::EXPECTED))?
                .unwrap_or_default(),
            statistics_interval: raw.take("statistics.interval.ms", statistics_millis())?.unwrap_or(Duration::ZERO),
            layer_keys: LayerKeys(layer),
        };
        if transactional_id.is_some() && idempotence == Some(false) {
            return Err(ConfigError::Conflict {
                first: "transactional.id".into(),
                second: "enable.idempotence".into(),
                reason: "a transactional producer is idempotent: remove enable.idempotence=false".into(),
            });
        }
        if delivery_timeout.is_none() {
            config.delivery_timeout = config.delivery_timeout.max(config.linger + config.request_timeout);
        }
        config.check_rules()?;
        Ok(config)
    }

    /// The cross-key rules of the module documentation.
    fn check_rules(&self) -> Result<(), ConfigError> {
        let ms = |d: Duration| d.as_millis();
        let rules = [
            (
                self.fetch_min_bytes > self.fetch_max_bytes,
                ("fetch.min.bytes", "fetch.max.bytes"),
                format!("fetch.min.bytes={} exceeds fetch.max.bytes={}", self.fetch_min_bytes, self.fetch_max_bytes),
            ),
            (
                self.fetch_max_bytes > self.receive_message_max_bytes,
                ("fetch.max.bytes", "receive.message.max.bytes"),
                format!(
                    "fetch.max.bytes={} exceeds receive.message.max.bytes={}, the frame size limit",
                    self.fetch_max_bytes, self.receive_message_max_bytes
                ),
            ),
            (
                self.max_partition_fetch_bytes > self.receive_message_max_bytes,
                ("max.partition.fetch.bytes", "receive.message.max.bytes"),
                format!(
                    "max.partition.fetch.bytes={} exceeds receive.message.max.bytes={}, the frame size limit",
                    self.max_partition_fetch_bytes, self.receive_message_max_bytes
                ),
            ),
            (
                self.reconnect_backoff > self.reconnect_backoff_max,
                ("reconnect.backoff.ms", "reconnect.backoff.max.ms"),
                format!(
                    "reconnect.backoff.ms={} exceeds reconnect.backoff.max.ms={}",
                    ms(self.reconnect_backoff),
                    ms(self.reconnect_backoff_max)
                ),
            ),
            (
                self.fetch_max_wait >= self.request_timeout,
                ("fetch.max.wait.ms", "request.timeout.ms"),
                format!(
                    "fetch.max.wait.ms={} must be less than request.timeout.ms={}, or waiting fetches time out",
                    ms(self.fetch_max_wait),
                    ms(self.request_timeout)
                ),
            ),
            (
                self.delivery_timeout < self.linger + self.request_timeout,
                ("delivery.timeout.ms", "request.timeout.ms"),
                format!(
                    "delivery.timeout.ms={} must be at least linger.ms + request.timeout.ms = {}",
                    ms(self.delivery_timeout),
                    ms(self.linger + self.request_timeout)
                ),
            ),
            (
                self.enable_idempotence && self.acks != Acks::All,
                ("enable.idempotence", "acks"),
                format!("the idempotent producer needs acks=all, not acks={}", self.acks),
            ),
            (
                self.enable_idempotence && self.retries == 0,
                ("enable.idempotence", "retries"),
                "the idempotent producer needs retries of at least 1".to_owned(),
            ),
            (
                self.enable_idempotence && self.max_in_flight_requests_per_connection > 5,
                ("enable.idempotence", "max.in.flight.requests.per.connection"),
                format!(
                    "the idempotent producer needs max.in.flight.requests.per.connection of at most 5, not {}",
                    self.max_in_flight_requests_per_connection
                ),
            ),
        ];
        match rules.into_iter().find(|(broken, _, _)| *broken) {
            Some((_, (first, second), reason)) => {
                Err(ConfigError::Conflict { first: first.into(), second: second.into(), reason })
            }
            None => Ok(()),
        }
    }
}

/// The typed keys as given: spelling (canonical or alias) to raw value.
#[derive(Default)]
struct Raw(HashMap<&'static str, String>);

impl Raw {
    /// Parses the value of `canonical` or of its aliases; a key and an alias with
    /// values that parse differently conflict.
    fn take<T: PartialEq>(&mut self, canonical: &str, parse: Parser<T>) -> Result<Option<T>, ConfigError> {
        let mut found: Option<(&str, String, T)> = None;
        for &spelling in keys::spellings(canonical) {
            let Some(value) = self.0.remove(spelling) else { continue };
            let parsed =
                parse(value.trim()).map_err(|expected| ConfigError::invalid_value(spelling, &value, expected))?;
            match &found {
                Some((first, first_value, earlier)) if *earlier != parsed => {
                    return Err(ConfigError::Conflict {
                        first: (*first).to_owned(),
                        second: spelling.to_owned(),
                        reason: format!(
                            "the same setting given two different values ({} and {})",
                            shown(first, first_value),
                            shown(spelling, &value)
                        ),
                    });
                }
                Some(_) => {}
                None => found = Some((spelling, value, parsed)),
            }
        }
        Ok(found.map(|(_, _, parsed)| parsed))
    }
}

/// A decimal integer in `min..=max`, converted to `T`.
fn int<T: TryFrom<i64> + 'static>(min: i64, max: i64) -> Parser<T> {
    Box::new(move |value| {
        let expected = || format!("an integer in {min}..={max}");
        let n = decimal(value).filter(|n| (min..=max).contains(n)).ok_or_else(expected)?;
        T::try_from(n).map_err(|_| expected())
    })
}

/// Milliseconds in `min..=i32::MAX`, as a `Duration`.
fn millis(min: i64) -> Parser<Duration> {
    let int = int::<u64>(min, INT_MAX);
    Box::new(move |value| int(value).map(Duration::from_millis).map_err(|e| format!("{e} (milliseconds)")))
}

/// `statistics.interval.ms`: librdkafka's range, up to a day.
fn statistics_millis() -> Parser<Duration> {
    let int = int::<u64>(0, 86_400_000);
    Box::new(move |value| int(value).map(Duration::from_millis).map_err(|e| format!("{e} (milliseconds)")))
}

/// A socket buffer size: `-1` or `0` for the OS default, else bytes.
fn socket_buffer() -> Parser<Option<usize>> {
    let int = int::<i64>(-1, INT_MAX);
    Box::new(move |value| {
        let n = int(value).map_err(|e| format!("{e} (-1 or 0 for the OS default)"))?;
        Ok(usize::try_from(n).ok().filter(|n| *n > 0))
    })
}

/// `true` or `false`, in any case.
fn boolean() -> Parser<bool> {
    Box::new(|value| match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("true or false".into()),
    })
}

/// A value of a fixed set, parsed by `parse`.
fn named<T: 'static>(parse: fn(&str) -> Option<T>, expected: &'static str) -> Parser<T> {
    Box::new(move |value| parse(value).ok_or_else(|| expected.to_owned()))
}

/// What `compression.type` accepts.
const COMPRESSION_EXPECTED: &str = "one of none, gzip, snappy, lz4, zstd";

/// A `compression.type` value, in any case.
fn compression(value: &str) -> Option<Compression> {
    Compression::from_name(&value.to_ascii_lowercase())
}

/// An optional `-` and ASCII digits; nothing else (no `+`, no spaces, no `_`).
fn decimal(value: &str) -> Option<i64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// A `bootstrap.servers` list: entries separated by commas and/or whitespace.
fn servers(value: &str) -> Result<Vec<String>, String> {
    let entries: Vec<&str> = value.split(|c: char| c == ',' || c.is_whitespace()).filter(|e| !e.is_empty()).collect();
    if entries.is_empty() {
        return Err("a list of host:port separated by commas or spaces".into());
    }
    entries
        .into_iter()
        .map(|entry| {
            server(entry).ok_or_else(|| {
                format!(
                    "a list of host:port (or [ipv6]:port) with a port in 1..=65535 separated by commas or spaces; \
                     {entry:?} is not"
                )
            })
        })
        .collect()
}

/// One `host:port` or `[ipv6]:port`, normalized (port without leading zeros).
fn server(entry: &str) -> Option<String> {
    let (host, port) = entry.rsplit_once(':')?;
    let port: u16 = decimal(port).and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0)?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => {
            let (address, zone) = ipv6.split_once('%').unwrap_or((ipv6, "x"));
            address.contains(':')
                && address.chars().all(|c| c.is_ascii_hexdigit() || ":.".contains(c))
                && !zone.is_empty()
                && zone.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        }
        None => host.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)),
    };
    (!host.is_empty() && host_ok).then(|| format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_typed_key_is_parsed() {
        for row in keys::TYPED_KEYS {
            for &key in *row {
                if matches!(key, "client.id" | "client.rack" | "bootstrap.servers" | "transactional.id") {
                    continue;
                }
                let err = ClientConfig::from_pairs([("bootstrap.servers", "h:1"), (key, "x")]).unwrap_err();
                assert!(matches!(&err, ConfigError::InvalidValue { key: k, .. } if k == key), "{key}: {err}");
            }
        }
    }

    #[test]
    fn producer_buffer_keys() {
        let c = ClientConfig::from_pairs([("bootstrap.servers", "h:1")]).unwrap();
        assert_eq!((c.buffer_memory(), c.max_block()), (33_554_432, Duration::from_secs(60)));
        let c = ClientConfig::from_pairs([("bootstrap.servers", "h:1"), ("buffer.memory", "8589934592")]).unwrap();
        assert_eq!(c.buffer_memory(), 8 << 30, "more than 2 GiB may be asked for");
        let err = ClientConfig::from_pairs([("bootstrap.servers", "h:1"), ("buffer.memory", "0")]).unwrap_err();
        assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "buffer.memory"), "{err}");
    }

    #[test]
    fn decimal_is_strict() {
        assert_eq!(decimal("42"), Some(42));
        assert_eq!(decimal("-1"), Some(-1));
        for bad in ["", "-", "+1", "1_000", "1.5", "0x10", " 1", "1e3", "--1", "99999999999999999999"] {
            assert_eq!(decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn server_entries() {
        assert_eq!(server("localhost:9092").as_deref(), Some("localhost:9092"));
        assert_eq!(server("[::1]:09092").as_deref(), Some("[::1]:9092"));
        assert_eq!(server("[fe80::1%eth0]:1").as_deref(), Some("[fe80::1%eth0]:1"));
        assert_eq!(server("my_host.example-1.com:65535").as_deref(), Some("my_host.example-1.com:65535"));
        for bad in [
            "localhost",
            ":9092",
            "h:0",
            "h:65536",
            "h:",
            "h:-1",
            "::1:9092",
            "[]:1",
            "[h]:1",
            "[::1%]:1",
            "PLAINTEXT://h:1",
        ] {
            assert_eq!(server(bad), None, "{bad}");
        }
    }
}
