//! Client configuration: a Kafka-style string map parsed into a typed, validated
//! [`ClientConfig`].
//!
//! Key names are the Java client's; the librdkafka aliases in the table are
//! accepted too (giving a key and its alias different values is a
//! [`ConfigError::Conflict`]). Values are trimmed (those of other layers' keys are
//! kept verbatim). Integers are plain decimal (no `+`, no fractions); booleans are
//! `true` or `false` in any case; enum values are matched in any case, except the
//! Java class name of `partitioner.class`.
//!
//! | key | librdkafka alias | accepts | default |
//! |---|---|---|---|
//! | `bootstrap.servers` | `metadata.broker.list` | `host:port` or `[ipv6]:port`, comma or space separated | required |
//! | `client.id` | | any string | `ferrokafka` |
//! | `client.rack` | | any string | none |
//! | `request.timeout.ms` | | 1..=2³¹−1 | 30000 |
//! | `socket.connection.setup.timeout.ms` | | 1..=2³¹−1 | 10000 |
//! | `fetch.min.bytes` | | 0..=2³¹−1 | 1 |
//! | `fetch.max.wait.ms` | `fetch.wait.max.ms` | 0..=2³¹−1 | 500 |
//! | `fetch.max.bytes` | | 0..=2³¹−1 | 52428800 |
//! | `max.partition.fetch.bytes` | `fetch.message.max.bytes` | 0..=2³¹−1 | 1048576 |
//! | `auto.offset.reset` | | `earliest`/`smallest`/`beginning`, `latest`/`largest`/`end`, `none`/`error` | `latest` |
//! | `isolation.level` | | `read_uncommitted`, `read_committed` | `read_uncommitted` |
//! | `check.crcs` | | boolean | `true` |
//! | `acks` | `request.required.acks` | `0`, `1`, `all`, `-1` | `all` |
//! | `linger.ms` | `queue.buffering.max.ms` | 0..=2³¹−1 | 5 |
//! | `batch.size` | | 0..=2³¹−1 | 16384 |
//! | `compression.type` | `compression.codec` | `none`, `gzip`, `snappy`, `lz4`, `zstd` | `none` |
//! | `retries` | `message.send.max.retries` | 0..=2³¹−1 | 2³¹−1 |
//! | `retry.backoff.ms` | | 0..=2³¹−1 | 100 |
//! | `reconnect.backoff.ms` | | 0..=2³¹−1 | 50 |
//! | `reconnect.backoff.max.ms` | | 0..=2³¹−1 | 1000 |
//! | `metadata.max.age.ms` | `topic.metadata.refresh.interval.ms` | 0..=2³¹−1 | 300000 |
//! | `allow.auto.create.topics` | | boolean | `false` |
//! | `security.protocol` | | `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL` | `PLAINTEXT` |
//! | `receive.message.max.bytes` | | 1000..=2³¹−1 | 100000000 |
//! | `max.in.flight.requests.per.connection` | `max.in.flight` | 1..=2³¹−1 | 5 |
//! | `enable.idempotence` | | boolean | `false` (`true` with `transactional.id`) |
//! | `transactional.id` | | any string | none |
//! | `transaction.timeout.ms` | | 1..=2³¹−1 | 60000 |
//! | `delivery.timeout.ms` | | 1..=2³¹−1 | 120000 |
//! | `buffer.memory` | | 1..=2⁶³−1 | 33554432 |
//! | `max.block.ms` | | 0..=2³¹−1 | 60000 |
//! | `max.poll.records` | | 1..=2³¹−1 | 500 |
//! | `receive.buffer.bytes` | `socket.receive.buffer.bytes` | −1..=2³¹−1 (−1 and 0: OS default) | OS default¹ |
//! | `send.buffer.bytes` | `socket.send.buffer.bytes` | −1..=2³¹−1 (−1 and 0: OS default) | OS default¹ |
//! | `partitioner.class` | `partitioner` | `…internals.DefaultPartitioner`, `murmur2_random` | the Java default |
//! | `statistics.interval.ms` | | 0..=86400000 (0: off) | 0 |
//!
//! ¹ The socket buffers (`SO_RCVBUF`/`SO_SNDBUF`, set before connecting) default to the
//! operating system's autotuned sizes, as librdkafka's do (`socket.*.buffer.bytes=0`). The
//! Java client fixes them at 64 KiB / 128 KiB, which caps a connection's throughput at
//! about one window per round trip on distant brokers; set the Java values explicitly to
//! get Java's behaviour.
//!
//! Keys of other layers are kept verbatim, unvalidated, in
//! [`ClientConfig::layer_keys`]: `group.id`, `group.instance.id`,
//! `enable.auto.commit`, `auto.commit.interval.ms`, `session.timeout.ms`,
//! `heartbeat.interval.ms`, `max.poll.interval.ms`, `partition.assignment.strategy`,
//! `group.protocol`, `group.remote.assignor`, `key.deserializer`, `value.deserializer`, `key.serializer`, `value.serializer`,
//! `enable.ssl.certificate.verification`, and every `ssl.*` and `sasl.*` key. Any
//! other key is a [`ConfigError::UnknownKey`].
//!
//! Cross-key rules ([`ConfigError::Conflict`]): `fetch.min.bytes` ≤
//! `fetch.max.bytes`; `fetch.max.bytes` and `max.partition.fetch.bytes` ≤
//! `receive.message.max.bytes`; `reconnect.backoff.ms` ≤ `reconnect.backoff.max.ms`;
//! `fetch.max.wait.ms` < `request.timeout.ms`; `delivery.timeout.ms` ≥ `linger.ms` +
//! `request.timeout.ms` (when `delivery.timeout.ms` is not given, it is raised to
//! that sum, as the Java client does); `enable.idempotence=true` needs `acks=all`,
//! `retries` ≥ 1 and `max.in.flight.requests.per.connection` ≤ 5; `transactional.id`
//! needs idempotence (it turns it on unless `enable.idempotence=false` is given, which
//! is refused, as in the Java client).
//!
//! ```
//! use ferrokafka_client::config::{AutoOffsetReset, ClientConfig};
//!
//! let config = ClientConfig::from_pairs([
//!     ("metadata.broker.list", "127.0.0.1:9092, [::1]:9093"),
//!     ("auto.offset.reset", "smallest"),
//!     ("group.id", "demo"),
//! ])?;
//! assert_eq!(config.bootstrap_servers(), ["127.0.0.1:9092", "[::1]:9093"]);
//! assert_eq!(config.auto_offset_reset(), AutoOffsetReset::Earliest);
//! assert_eq!(config.layer_value("group.id"), Some("demo"));
//! # Ok::<(), ferrokafka_client::config::ConfigError>(())
//! ```

mod error;
mod keys;
mod parse;
#[cfg(test)]
mod tests;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use ferrokafka_protocol::Compression;

pub use error::ConfigError;
pub use keys::is_secret;
pub use values::{Acks, AutoOffsetReset, IsolationLevel, Partitioner, SecurityProtocol};

/// A validated client configuration. Build it with [`ClientConfig::from_pairs`]
/// or [`ClientConfig::new`]; see the [module documentation](self) for the keys.
///
/// `Debug` shows every value except those of [secret](is_secret) keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    bootstrap_servers: Vec<String>,
    client_id: String,
    client_rack: Option<String>,
    request_timeout: Duration,
    connection_setup_timeout: Duration,
    fetch_min_bytes: usize,
    fetch_max_wait: Duration,
    fetch_max_bytes: usize,
    max_partition_fetch_bytes: usize,
    auto_offset_reset: AutoOffsetReset,
    isolation_level: IsolationLevel,
    check_crcs: bool,
    acks: Acks,
    linger: Duration,
    batch_size: usize,
    compression: Compression,
    retries: u32,
    retry_backoff: Duration,
    reconnect_backoff: Duration,
    reconnect_backoff_max: Duration,
    metadata_max_age: Duration,
    allow_auto_create_topics: bool,
    security_protocol: SecurityProtocol,
    receive_message_max_bytes: usize,
    max_in_flight_requests_per_connection: usize,
    enable_idempotence: bool,
    transactional_id: Option<String>,
    transaction_timeout: Duration,
    delivery_timeout: Duration,
    buffer_memory: usize,
    max_block: Duration,
    max_poll_records: usize,
    receive_buffer_bytes: Option<usize>,
    send_buffer_bytes: Option<usize>,
    partitioner: Partitioner,
    statistics_interval: Duration,
    layer_keys: LayerKeys,
}

impl ClientConfig {
    /// `bootstrap.servers`: the `host:port` entries, in the order given.
    pub fn bootstrap_servers(&self) -> &[String] {
        &self.bootstrap_servers
    }

    /// `client.rack` (KIP-392): the rack (zone) this client runs in, sent with every
    /// Fetch so the broker can name a replica in the same rack to read from.
    pub fn client_rack(&self) -> Option<&str> {
        self.client_rack.as_deref()
    }

    /// `client.id`, sent in every request header.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `request.timeout.ms`: how long to wait for a response.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// `socket.connection.setup.timeout.ms`: how long a TCP (and TLS) connect may take.
    pub fn connection_setup_timeout(&self) -> Duration {
        self.connection_setup_timeout
    }

    /// `fetch.min.bytes`: the bytes a fetch waits for.
    pub fn fetch_min_bytes(&self) -> usize {
        self.fetch_min_bytes
    }

    /// `fetch.max.wait.ms`: how long the broker may hold a fetch for `fetch.min.bytes`.
    pub fn fetch_max_wait(&self) -> Duration {
        self.fetch_max_wait
    }

    /// `fetch.max.bytes`: the byte limit of one fetch response.
    pub fn fetch_max_bytes(&self) -> usize {
        self.fetch_max_bytes
    }

    /// `max.partition.fetch.bytes`: the byte limit per partition of one fetch.
    pub fn max_partition_fetch_bytes(&self) -> usize {
        self.max_partition_fetch_bytes
    }

    /// `auto.offset.reset`: where to start without a valid position.
    pub fn auto_offset_reset(&self) -> AutoOffsetReset {
        self.auto_offset_reset
    }

    /// `isolation.level`: whether aborted transactional records are skipped.
    pub fn isolation_level(&self) -> IsolationLevel {
        self.isolation_level
    }

    /// `check.crcs`: whether record batch checksums are verified.
    pub fn check_crcs(&self) -> bool {
        self.check_crcs
    }

    /// `acks`: the acknowledgement a produce request asks for.
    pub fn acks(&self) -> Acks {
        self.acks
    }

    /// `linger.ms`: how long the producer waits to fill a batch.
    pub fn linger(&self) -> Duration {
        self.linger
    }

    /// `batch.size`: the byte size at which a producer batch is sent.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// `compression.type`: the codec of produced batches.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// `retries`: how many times a failed produce is retried.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// `retry.backoff.ms`: the pause before retrying a failed request.
    pub fn retry_backoff(&self) -> Duration {
        self.retry_backoff
    }

    /// `reconnect.backoff.ms`: the first pause before reconnecting to a broker.
    pub fn reconnect_backoff(&self) -> Duration {
        self.reconnect_backoff
    }

    /// `reconnect.backoff.max.ms`: the largest pause before reconnecting.
    pub fn reconnect_backoff_max(&self) -> Duration {
        self.reconnect_backoff_max
    }

    /// `statistics.interval.ms` (librdkafka's key): how often a statistics callback
    /// set on a client is called; zero (the default) turns it off.
    pub fn statistics_interval(&self) -> Duration {
        self.statistics_interval
    }

    /// `metadata.max.age.ms`: how often metadata is refreshed without a reason.
    pub fn metadata_max_age(&self) -> Duration {
        self.metadata_max_age
    }

    /// `allow.auto.create.topics`: whether metadata requests may create topics.
    pub fn allow_auto_create_topics(&self) -> bool {
        self.allow_auto_create_topics
    }

    /// `security.protocol`: plain TCP, TLS, and/or SASL.
    pub fn security_protocol(&self) -> SecurityProtocol {
        self.security_protocol
    }

    /// `receive.message.max.bytes`: the largest response frame accepted.
    pub fn receive_message_max_bytes(&self) -> usize {
        self.receive_message_max_bytes
    }

    /// `max.in.flight.requests.per.connection`: unanswered requests per connection.
    pub fn max_in_flight_requests_per_connection(&self) -> usize {
        self.max_in_flight_requests_per_connection
    }

    /// `enable.idempotence`: whether the producer is idempotent.
    pub fn enable_idempotence(&self) -> bool {
        self.enable_idempotence
    }

    /// `transactional.id`: the producer's transactional id (a transactional producer).
    pub fn transactional_id(&self) -> Option<&str> {
        self.transactional_id.as_deref()
    }

    /// `transaction.timeout.ms`: how long the coordinator lets a transaction stay open
    /// before it aborts it.
    pub fn transaction_timeout(&self) -> Duration {
        self.transaction_timeout
    }

    /// `delivery.timeout.ms`: how long a produced record may take, retries included.
    pub fn delivery_timeout(&self) -> Duration {
        self.delivery_timeout
    }

    /// `buffer.memory`: the most record bytes the producer holds unacknowledged;
    /// `send` waits (up to `max.block.ms`) for room beyond it.
    pub fn buffer_memory(&self) -> usize {
        self.buffer_memory
    }

    /// `max.block.ms`: how long `send` waits for room in `buffer.memory`.
    pub fn max_block(&self) -> Duration {
        self.max_block
    }

    /// `max.poll.records`: the most records one poll returns.
    pub fn max_poll_records(&self) -> usize {
        self.max_poll_records
    }

    /// `receive.buffer.bytes`: the socket receive buffer; `None` leaves the OS default.
    pub fn receive_buffer_bytes(&self) -> Option<usize> {
        self.receive_buffer_bytes
    }

    /// `send.buffer.bytes`: the socket send buffer; `None` leaves the OS default.
    pub fn send_buffer_bytes(&self) -> Option<usize> {
        self.send_buffer_bytes
    }

    /// `partitioner.class`: how the producer picks partitions.
    pub fn partitioner(&self) -> Partitioner {
        self.partitioner
    }

    /// The keys kept for other layers (groups, serializers, `ssl.*`, `sasl.*`),
    /// unvalidated, sorted by key. Secret values are included: do not log them.
    pub fn layer_keys(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.layer_keys.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of one key kept for another layer.
    pub fn layer_value(&self, key: &str) -> Option<&str> {
        self.layer_keys.0.get(key).map(String::as_str)
    }
}

/// The keys kept for other layers; `Debug` redacts secret values.
#[derive(Clone, Default, PartialEq, Eq)]
struct LayerKeys(BTreeMap<String, String>);

impl fmt::Debug for LayerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Writes a string as given (the value is already quoted or redacted).
        struct Raw(String);
        impl fmt::Debug for Raw {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        f.debug_map().entries(self.0.iter().map(|(k, v)| (k, Raw(error::shown(k, v))))).finish()
    }
}
