//! The key table: canonical names and their librdkafka aliases, the keys kept for
//! other layers, secret detection, and "did you mean" suggestions.

/// Every key parsed into a typed field: the canonical (Java client) name first,
/// then the aliases accepted for it (librdkafka names).
pub(crate) const TYPED_KEYS: &[&[&str]] = &[
    &["bootstrap.servers", "metadata.broker.list"],
    &["client.id"],
    &["client.rack"],
    &["request.timeout.ms"],
    &["socket.connection.setup.timeout.ms"],
    &["fetch.min.bytes"],
    &["fetch.max.wait.ms", "fetch.wait.max.ms"],
    &["fetch.max.bytes"],
    &["max.partition.fetch.bytes", "fetch.message.max.bytes"],
    &["auto.offset.reset"],
    &["isolation.level"],
    &["check.crcs"],
    &["acks", "request.required.acks"],
    &["linger.ms", "queue.buffering.max.ms"],
    &["batch.size"],
    &["compression.type", "compression.codec"],
    &["retries", "message.send.max.retries"],
    &["retry.backoff.ms"],
    &["reconnect.backoff.ms"],
    &["reconnect.backoff.max.ms"],
    &["metadata.max.age.ms", "topic.metadata.refresh.interval.ms"],
    &["allow.auto.create.topics"],
    &["security.protocol"],
    &["receive.message.max.bytes"],
    &["max.in.flight.requests.per.connection", "max.in.flight"],
    &["enable.idempotence"],
    &["transactional.id"],
    &["transaction.timeout.ms"],
    &["delivery.timeout.ms"],
    &["buffer.memory"],
    &["max.block.ms"],
    &["max.poll.records"],
    &["receive.buffer.bytes", "socket.receive.buffer.bytes"],
    &["send.buffer.bytes", "socket.send.buffer.bytes"],
    &["partitioner.class", "partitioner"],
    &["statistics.interval.ms"],
];

/// Keys that belong to other layers (consumer groups, serialization, TLS): kept
/// verbatim, for those layers to validate.
const LAYER_KEYS: &[&str] = &[
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "partition.assignment.strategy",
    "group.protocol",
    "group.remote.assignor",
    "key.deserializer",
    "value.deserializer",
    "key.serializer",
    "value.serializer",
    "enable.ssl.certificate.verification",
];

/// Prefixes of key families that belong to other layers (TLS and SASL).
const LAYER_PREFIXES: &[&str] = &["ssl.", "sasl."];

/// Lower-case fragments that mark a key whose value must never be shown.
const SECRET_MARKERS: &[&str] = &[
    "pass", // password, passwd, passphrase, and typos such as "pasword"
    "pwd",
    "secret",
    "jaas",
    "credential",
    "token",
    "private",
    "oauthbearer.config",
    "ssl.key",
    "ssl_key",
    "keystore.key",
    "certificate.chain",
    "truststore.certificates",
    ".pem",
];

/// What a configuration key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// A typed key, with the spelling it was given in (canonical or alias).
    Typed(&'static str),
    /// A key kept verbatim for another layer.
    Layer,
    /// Not a key of ferrokafka.
    Unknown,
}

/// Classifies `key` (exact, case-sensitive match, as Kafka does).
pub(crate) fn classify(key: &str) -> Class {
    if let Some(spelling) = TYPED_KEYS.iter().flat_map(|row| row.iter()).find(|name| **name == key) {
        return Class::Typed(spelling);
    }
    let is_layer = LAYER_KEYS.contains(&key)
        || LAYER_PREFIXES.iter().any(|prefix| key.len() > prefix.len() && key.starts_with(prefix));
    if is_layer {
        Class::Layer
    } else {
        Class::Unknown
    }
}

/// The spellings of a canonical key: itself, then its aliases.
pub(crate) fn spellings(canonical: &str) -> &'static [&'static str] {
    let row = TYPED_KEYS.iter().find(|row| row.first() == Some(&canonical));
    debug_assert!(row.is_some(), "{canonical} is missing from TYPED_KEYS");
    row.copied().unwrap_or(&[])
}

/// Whether the value of `key` may be a secret (a password, a private key, a JAAS
/// config, a token...) that must never be printed.
///
/// The test is deliberately broad: it matches any key containing `pass`, `pwd`,
/// `secret`, `jaas`, `credential`, `token`, `private` or `.pem`, and the private-key
/// and keystore/truststore-content keys of the Java client and librdkafka
/// (`ssl.key.*`, `ssl.keystore.key`, `ssl.keystore.certificate.chain`,
/// `ssl.truststore.certificates`, `sasl.oauthbearer.config`), case-insensitively.
/// Redacting a harmless value costs less than printing a secret.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_MARKERS.iter().any(|marker| key.contains(marker))
}

/// The closest accepted key to an unknown `key` of ferrokafka's own table.
pub(crate) fn suggest_known(key: &str) -> Option<String> {
    let candidates = TYPED_KEYS.iter().flat_map(|row| row.iter()).chain(LAYER_KEYS).copied();
    suggest(key, |k| classify(k) != Class::Unknown, candidates)
}

/// The closest key to `key` among `candidates`: first the same key with `_`, `-`
/// or spaces for dots, in lower case, without a `kafka.` prefix (Spark's option
/// style, environment-variable style), if `accepted`; otherwise the candidate at
/// the smallest edit distance (transpositions count once), if that distance is
/// small for the candidate's length (at most 3).
pub(crate) fn suggest<'a>(
    key: &str,
    accepted: impl Fn(&str) -> bool,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let normalized: String =
        key.trim().chars().map(|c| if matches!(c, '_' | '-' | ' ') { '.' } else { c.to_ascii_lowercase() }).collect();
    let normalized = normalized.strip_prefix("kafka.").unwrap_or(&normalized);
    if normalized != key && accepted(normalized) {
        return Some(normalized.to_owned());
    }
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let limit = (candidate.len() / 4).clamp(1, 3);
        if normalized.len().abs_diff(candidate.len()) > limit {
            continue;
        }
        let distance = edit_distance(normalized, candidate);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate.to_owned())
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and
/// transpositions of adjacent characters each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("acks", "akcs"), 1);
        assert_eq!(edit_distance("bootstrap.server", "bootstrap.servers"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        let s = |key| suggest_known(key);
        assert_eq!(s("bootstrap.server").as_deref(), Some("bootstrap.servers"));
        assert_eq!(s("bootstrap_servers").as_deref(), Some("bootstrap.servers"));
        assert_eq!(s("BOOTSTRAP_SERVERS").as_deref(), Some("bootstrap.servers"));
        assert_eq!(s("KAFKA_BOOTSTRAP_SERVERS").as_deref(), Some("bootstrap.servers"));
        assert_eq!(s("kafka.bootstrap.servers").as_deref(), Some("bootstrap.servers"));
        assert_eq!(s("fetch.wait.max.m").as_deref(), Some("fetch.wait.max.ms"));
        assert_eq!(s("group.ld").as_deref(), Some("group.id"));
        assert_eq!(s("sasl_mechanism").as_deref(), Some("sasl.mechanism"));
        assert_eq!(s("retires").as_deref(), Some("retries"));
        assert_eq!(s("ack").as_deref(), Some("acks"));
        assert_eq!(s("spark.streaming.kafka.maxRatePerPartition"), None);
        assert_eq!(s("abc"), None);
        assert_eq!(s(""), None);
    }

    #[test]
    fn classification() {
        assert_eq!(classify("bootstrap.servers"), Class::Typed("bootstrap.servers"));
        assert_eq!(classify("metadata.broker.list"), Class::Typed("metadata.broker.list"));
        assert_eq!(classify("ssl.truststore.location"), Class::Layer);
        assert_eq!(classify("sasl.mechanism"), Class::Layer);
        assert_eq!(classify("group.id"), Class::Layer);
        assert_eq!(classify("ssl."), Class::Unknown);
        assert_eq!(classify("spark.kafka.foo"), Class::Unknown);
        assert_eq!(classify("Bootstrap.servers"), Class::Unknown);
        assert_eq!(spellings("linger.ms"), ["linger.ms", "queue.buffering.max.ms"]);
    }

    #[test]
    fn secrets() {
        for key in [
            "ssl.truststore.password",
            "ssl.keystore.password",
            "ssl.key.password",
            "ssl.key.pem",
            "ssl.keystore.key",
            "ssl.keystore.certificate.chain",
            "sasl.password",
            "sasl.jaas.config",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
            "SSL.TRUSTSTORE.PASSWORD",
            "ssl.keystore.pasword",
        ] {
            assert!(is_secret(key), "{key}");
        }
        for key in ["bootstrap.servers", "ssl.truststore.location", "sasl.mechanism", "group.id", "acks"] {
            assert!(!is_secret(key), "{key}");
        }
    }
}
