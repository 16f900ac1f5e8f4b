//! `ConsumerProtocol` bytes: subscriptions (JoinGroup member metadata) and
//! assignments (SyncGroup), plus the user data of the sticky assignors.
//!
//! Encoding goes through kafka-protocol's generated `ConsumerProtocolSubscription`
//! and `ConsumerProtocolAssignment`. Decoding is done here, over a bounds-checked
//! reader: the bytes come from other group members, and kafka-protocol reserves
//! memory for an array's announced length before reading it.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use ferrokafka_protocol::ProtocolError;
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedTopic,
};
use kafka_protocol::messages::consumer_protocol_subscription::{
    ConsumerProtocolSubscription, TopicPartition as OwnedTopic,
};
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::{java_str_cmp, MemberAssignment, MemberSubscription};
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// The newest `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment` version
/// known; newer versions are read as this one (their additions are trailing bytes).
const LATEST_VERSION: i16 = 3;

/// Encodes a subscription (JoinGroup protocol metadata) at `version` (0–3; a newer
/// version is written as 3, as the Java client does). Topics are written sorted,
/// owned partitions grouped by topic. Fields the version lacks are left out:
/// `owned` before v1, `generation_id` before v2, `rack_id` before v3.
pub fn encode_subscription(
    topics: &[String],
    user_data: Option<Bytes>,
    owned: &[TopicPartition],
    generation_id: i32,
    rack_id: Option<&str>,
    version: i16,
) -> Result<Bytes> {
    let version = encode_version(version, ApiKey::JoinGroup, "ConsumerProtocolSubscription")?;
    let mut sorted: Vec<&str> = topics.iter().map(String::as_str).collect();
    sorted.sort_by(|a, b| java_str_cmp(a, b));
    sorted.dedup();
    let mut data = ConsumerProtocolSubscription::default()
        .with_topics(sorted.into_iter().map(|t| StrBytes::from_string(t.to_owned())).collect())
        .with_user_data(user_data);
    if version >= 1 {
        let owned = group_by_topic(owned)
            .into_iter()
            .map(|(topic, partitions)| OwnedTopic::default().with_topic(topic_name(topic)).with_partitions(partitions))
            .collect();
        data = data.with_owned_partitions(owned);
    }
    if version >= 2 {
        data = data.with_generation_id(generation_id);
    }
    if version >= 3 {
        data = data.with_rack_id(rack_id.map(|r| StrBytes::from_string(r.to_owned())));
    }
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    data.encode(&mut buf, version)
        .map_err(|e| encode_error(ApiKey::JoinGroup, version, "ConsumerProtocolSubscription", e))?;
    Ok(buf.freeze())
}

/// Decodes the protocol metadata a member sent in JoinGroup. A version above 3 is
/// read as v3 and trailing bytes are ignored (forward compatibility, as in Java);
/// an empty rack id reads as `None`. Malformed bytes are a
/// [`ClientError::Protocol`] naming the member.
pub fn decode_subscription(
    member_id: &str,
    group_instance_id: Option<&str>,
    metadata: Bytes,
) -> Result<MemberSubscription> {
    let mut r = Reader::new(&metadata);
    let fail = |version: i16, message: String| ClientError::Protocol {
        broker: None,
        partition: None,
        source: ProtocolError::Decode {
            api: ApiKey::JoinGroup,
            version,
            message: format!("metadata of member {member_id} (ConsumerProtocolSubscription v{version}): {message}"),
        },
    };
    let version = decode_version(&mut r).map_err(|m| fail(-1, m))?;
    let body = |r: &mut Reader<'_>| -> std::result::Result<MemberSubscription, String> {
        let n = r.array_len("topics", 2)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(r.string("topic")?);
        }
        let user_data = r.nullable_bytes("user data")?;
        let owned_partitions = if version >= 1 { r.topic_partitions("owned partitions")? } else { Vec::new() };
        let generation_id = if version >= 2 { r.i32("generation id")? } else { -1 };
        let rack_id = if version >= 3 { r.nullable_string("rack id")?.filter(|s| !s.is_empty()) } else { None };
        Ok(MemberSubscription {
            member_id: member_id.to_owned(),
            group_instance_id: group_instance_id.map(str::to_owned),
            topics,
            user_data,
            owned_partitions,
            generation_id,
            rack_id,
        })
    };
    body(&mut r).map_err(|m| fail(version, m))
}

/// Encodes an assignment (SyncGroup) at `version` (0–3, all the same layout; a
/// newer version is written as 3). Partitions are grouped by topic, sorted.
pub fn encode_assignment(a: &MemberAssignment, version: i16) -> Result<Bytes> {
    let version = encode_version(version, ApiKey::SyncGroup, "ConsumerProtocolAssignment")?;
    let assigned = group_by_topic(&a.partitions)
        .into_iter()
        .map(|(topic, partitions)| AssignedTopic::default().with_topic(topic_name(topic)).with_partitions(partitions))
        .collect();
    let data =
        ConsumerProtocolAssignment::default().with_assigned_partitions(assigned).with_user_data(a.user_data.clone());
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    data.encode(&mut buf, version)
        .map_err(|e| encode_error(ApiKey::SyncGroup, version, "ConsumerProtocolAssignment", e))?;
    Ok(buf.freeze())
}

/// Decodes the assignment a member received in SyncGroup. Empty bytes are the empty
/// assignment; a version above 3 is read as v3 and trailing bytes are ignored.
/// Partitions are returned in the order they were written.
pub fn decode_assignment(data: Bytes) -> Result<MemberAssignment> {
    if data.is_empty() {
        return Ok(MemberAssignment::default());
    }
    let mut r = Reader::new(&data);
    let fail = |version: i16, message: String| ClientError::Protocol {
        broker: None,
        partition: None,
        source: ProtocolError::Decode {
            api: ApiKey::SyncGroup,
            version,
            message: format!("assignment (ConsumerProtocolAssignment v{version}): {message}"),
        },
    };
    let version = decode_version(&mut r).map_err(|m| fail(-1, m))?;
    let body = |r: &mut Reader<'_>| -> std::result::Result<MemberAssignment, String> {
        let partitions = r.topic_partitions("assigned partitions")?;
        let user_data = r.nullable_bytes("user data")?;
        Ok(MemberAssignment { partitions, user_data })
    };
    body(&mut r).map_err(|m| fail(version, m))
}

/// The Java `StickyAssignor`'s user data (`StickyAssignorUserData` v1, no version
/// prefix): the member's previous assignment and its generation.
pub(crate) fn encode_sticky_user_data(partitions: &[TopicPartition], generation: i32) -> Bytes {
    let groups: Vec<(&str, Vec<i32>)> =
        group_by_topic(partitions).into_iter().filter(|(t, _)| i16::try_from(t.len()).is_ok()).collect();
    let mut buf = BytesMut::new();
    buf.put_i32(i32::try_from(groups.len()).unwrap_or(i32::MAX));
    for (topic, parts) in &groups {
        buf.put_i16(i16::try_from(topic.len()).unwrap_or(i16::MAX));
        buf.put_slice(topic.as_bytes());
        buf.put_i32(i32::try_from(parts.len()).unwrap_or(i32::MAX));
        for p in parts {
            buf.put_i32(*p);
        }
    }
    buf.put_i32(generation);
    buf.freeze()
}

/// Reads `StickyAssignorUserData` v1, falling back to v0 (no generation), as Java
/// does. `None` when it cannot be parsed (Java then ignores the previous assignment).
pub(crate) fn decode_sticky_user_data(data: &Bytes) -> Option<(Vec<TopicPartition>, Option<i32>)> {
    let mut r = Reader::new(data);
    let partitions = r.topic_partitions("previous assignment").ok()?;
    let generation = r.i32("generation").ok();
    Some((partitions, generation))
}

/// The Java `CooperativeStickyAssignor`'s user data: the generation (int32).
pub(crate) fn encode_cooperative_user_data(generation: i32) -> Bytes {
    Bytes::copy_from_slice(&generation.to_be_bytes())
}

/// Reads the cooperative-sticky user data; `None` if it is not there or too short.
pub(crate) fn decode_cooperative_user_data(data: &Bytes) -> Option<i32> {
    Reader::new(data).i32("generation").ok()
}

/// Validates a version to encode at: negative is an error, above 3 becomes 3.
fn encode_version(version: i16, api: ApiKey, what: &str) -> Result<i16> {
    if version < 0 {
        return Err(ClientError::Protocol {
            broker: None,
            partition: None,
            source: ProtocolError::Encode { api, version, message: format!("{what}: negative version") },
        });
    }
    Ok(version.min(LATEST_VERSION))
}

fn encode_error(api: ApiKey, version: i16, what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol {
        broker: None,
        partition: None,
        source: ProtocolError::Encode { api, version, message: format!("{what}: {e}") },
    }
}

/// The version prefix: negative is an error, above 3 reads as 3.
fn decode_version(r: &mut Reader<'_>) -> std::result::Result<i16, String> {
    let version = r.i16("version")?;
    if version < 0 {
        return Err(format!("unsupported version {version}"));
    }
    Ok(version.min(LATEST_VERSION))
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// Partitions grouped by topic, topics in Java order, partitions ascending.
fn group_by_topic(partitions: &[TopicPartition]) -> Vec<(&str, Vec<i32>)> {
    let mut sorted: Vec<&TopicPartition> = partitions.iter().collect();
    sorted.sort_by(|a, b| java_str_cmp(&a.topic, &b.topic).then(a.partition.cmp(&b.partition)));
    let mut out: Vec<(&str, Vec<i32>)> = Vec::new();
    for tp in sorted {
        match out.last_mut() {
            Some((topic, parts)) if *topic == &*tp.topic => parts.push(tp.partition),
            _ => out.push((&tp.topic, vec![tp.partition])),
        }
    }
    out
}

/// A bounds-checked reader over big-endian Kafka primitives. Errors are messages
/// naming the field and byte position.
struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a Bytes) -> Self {
        Reader { data, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes as a range of `data`.
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<std::ops::Range<usize>, String> {
        let start = self.pos;
        match start.checked_add(n) {
            Some(end) if end <= self.data.len() => {
                self.pos = end;
                Ok(start..end)
            }
            _ => Err(format!("{what} needs {n} bytes at byte {start}, {} left", self.remaining())),
        }
    }

    fn fixed<const N: usize>(&mut self, what: &str) -> std::result::Result<[u8; N], String> {
        let range = self.take(N, what)?;
        self.data.get(range).and_then(|s| <[u8; N]>::try_from(s).ok()).ok_or_else(|| format!("{what} out of bounds"))
    }

    fn i16(&mut self, what: &str) -> std::result::Result<i16, String> {
        self.fixed::<2>(what).map(i16::from_be_bytes)
    }

    fn i32(&mut self, what: &str) -> std::result::Result<i32, String> {
        self.fixed::<4>(what).map(i32::from_be_bytes)
    }

    /// A nullable string (int16 length, -1 for null), UTF-8.
    fn nullable_string(&mut self, what: &str) -> std::result::Result<Option<String>, String> {
        let at = self.pos;
        let len = self.i16(what)?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| format!("{what} has negative length {len} at byte {at}"))?;
        let range = self.take(len, what)?;
        let bytes = self.data.get(range).ok_or_else(|| format!("{what} out of bounds"))?;
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| format!("{what} at byte {at} is not UTF-8"))
    }

    /// A non-nullable string.
    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        let at = self.pos;
        self.nullable_string(what)?.ok_or_else(|| format!("{what} at byte {at} is null"))
    }

    /// Nullable bytes (int32 length, -1 for null), a slice of the input.
    fn nullable_bytes(&mut self, what: &str) -> std::result::Result<Option<Bytes>, String> {
        let at = self.pos;
        let len = self.i32(what)?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| format!("{what} has negative length {len} at byte {at}"))?;
        let range = self.take(len, what)?;
        Ok(Some(self.data.slice(range)))
    }

    /// A non-nullable array's length, checked against the bytes left (each entry
    /// takes at least `min_entry` bytes), so nothing is reserved for a bogus count.
    fn array_len(&mut self, what: &str, min_entry: usize) -> std::result::Result<usize, String> {
        let at = self.pos;
        let n = self.i32(what)?;
        let n = usize::try_from(n).map_err(|_| format!("{what} array at byte {at} has length {n}"))?;
        if n.saturating_mul(min_entry) > self.remaining() {
            return Err(format!("{what} array at byte {at} claims {n} entries, only {} bytes left", self.remaining()));
        }
        Ok(n)
    }

    /// `[topic string, [partition int32]]`, flattened.
    fn topic_partitions(&mut self, what: &str) -> std::result::Result<Vec<TopicPartition>, String> {
        let topics = self.array_len(what, 6)?;
        let mut out = Vec::new();
        for _ in 0..topics {
            let topic: Arc<str> = Arc::from(self.string("topic")?);
            let n = self.array_len("partitions", 4)?;
            out.reserve(n);
            for _ in 0..n {
                out.push(TopicPartition { topic: topic.clone(), partition: self.i32("partition")? });
            }
        }
        Ok(out)
    }
}
