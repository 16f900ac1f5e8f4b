//! The enumerated values of the configuration: offset reset, isolation level,
//! acks, security protocol and partitioner.
//!
//! Values are matched case-insensitively, as the Java client does for most enums.

use std::fmt;

/// Where a consumer starts when it has no valid position: `auto.offset.reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AutoOffsetReset {
    /// The log start offset (`earliest`; librdkafka `smallest`, `beginning`).
    Earliest,
    /// The high watermark (`latest`; librdkafka `largest`, `end`).
    #[default]
    Latest,
    /// Fail with an out-of-range error (`none`; librdkafka `error`).
    None,
}

impl AutoOffsetReset {
    /// What the error message lists as accepted.
    pub(crate) const EXPECTED: &'static str =
        "one of earliest, latest, none (or librdkafka's smallest, beginning, largest, end, error)";

    /// The canonical (Java) value.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoOffsetReset::Earliest => "earliest",
            AutoOffsetReset::Latest => "latest",
            AutoOffsetReset::None => "none",
        }
    }

    /// Parses a value, canonical or librdkafka.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        Some(match value.to_ascii_lowercase().as_str() {
            "earliest" | "smallest" | "beginning" => AutoOffsetReset::Earliest,
            "latest" | "largest" | "end" => AutoOffsetReset::Latest,
            "none" | "error" => AutoOffsetReset::None,
            _ => return None,
        })
    }
}

/// Which records a consumer sees: `isolation.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// Every record up to the high watermark, aborted transactions included.
    #[default]
    ReadUncommitted,
    /// Records up to the last stable offset, without aborted transactions.
    ReadCommitted,
}

impl IsolationLevel {
    /// What the error message lists as accepted.
    pub(crate) const EXPECTED: &'static str = "one of read_uncommitted, read_committed";

    /// The configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }

    /// The value of a Fetch or ListOffsets request's `isolation_level` field.
    pub fn as_i8(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }

    /// Parses a value.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "read_uncommitted" => Some(IsolationLevel::ReadUncommitted),
            "read_committed" => Some(IsolationLevel::ReadCommitted),
            _ => None,
        }
    }
}

/// How many replicas must have a produced batch before the leader answers: `acks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `0`: the broker sends no response at all.
    None,
    /// `1`: the leader has written the batch.
    Leader,
    /// `all` or `-1`: every in-sync replica has the batch.
    #[default]
    All,
}

impl Acks {
    /// What the error message lists as accepted.
    pub(crate) const EXPECTED: &'static str = "one of 0, 1, all, -1";

    /// The canonical configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }

    /// The value of a Produce request's `acks` field.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// Parses a value.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "0" => Some(Acks::None),
            "1" => Some(Acks::Leader),
            "all" | "-1" => Some(Acks::All),
            _ => None,
        }
    }
}

/// How connections are secured: `security.protocol`. Applying it is the TLS and
/// SASL layers' job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// `PLAINTEXT`: plain TCP.
    #[default]
    Plaintext,
    /// `SSL`: TLS.
    Ssl,
    /// `SASL_PLAINTEXT`: SASL authentication over plain TCP.
    SaslPlaintext,
    /// `SASL_SSL`: SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// What the error message lists as accepted.
    pub(crate) const EXPECTED: &'static str = "one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL";

    /// The canonical (upper-case) value.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }

    /// Parses a value (any case, like both the Java client and librdkafka).
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }
}

/// How the producer picks a partition: `partitioner.class` (librdkafka
/// `partitioner`). Only the Java client's default is supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Partitioner {
    /// The Java default: murmur2 of the key, made positive, modulo the partition
    /// count; records without a key are spread by the producer. Configured as
    /// `org.apache.kafka.clients.producer.internals.DefaultPartitioner` or
    /// librdkafka's `murmur2_random`.
    #[default]
    Default,
}

impl Partitioner {
    /// The Java class name of the default partitioner.
    const JAVA_DEFAULT: &'static str = "org.apache.kafka.clients.producer.internals.DefaultPartitioner";

    /// What the error message lists as accepted.
    pub(crate) const EXPECTED: &'static str =
        "org.apache.kafka.clients.producer.internals.DefaultPartitioner or murmur2_random (the only one supported)";

    /// The canonical value.
    pub fn as_str(self) -> &'static str {
        match self {
            Partitioner::Default => Self::JAVA_DEFAULT,
        }
    }

    /// Parses a value (exact: Java class names are case-sensitive).
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            Self::JAVA_DEFAULT | "murmur2_random" => Some(Partitioner::Default),
            _ => None,
        }
    }
}

/// `Display` as the canonical configuration value.
macro_rules! display_as_str {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

display_as_str!(AutoOffsetReset, IsolationLevel, Acks, SecurityProtocol, Partitioner);
