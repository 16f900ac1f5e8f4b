//! Produce requests written as parts, their record batches not copied.
//!
//! [`encode_request`](crate::frame::encode_request) writes a whole request into one
//! buffer: for a Produce request, that copies megabytes of record batches the producer
//! has already encoded. [`encode_produce`] writes the same frame as a list of parts
//! instead. Each partition's record batches are a part of their own, the caller's
//! `Bytes` (shared, not copied); everything around them (size prefix, request header,
//! the fields, lengths and counts between the batches) is written into one small buffer
//! allocated at its exact size, cut into the parts between the batches. Written one
//! after another (a vectored write), the parts are byte for byte the frame
//! `encode_request` makes of the equivalent
//! [`ProduceRequest`](kafka_protocol::messages::ProduceRequest).
//!
//! The body is written here rather than by kafka-protocol, after the schema
//! (`ProduceRequest.json`, versions 3 to 9):
//!
//! ```text
//! TransactionalId  nullable string   (v3+)
//! Acks             int16
//! TimeoutMs        int32
//! TopicData        [Name string, PartitionData [Index int32, Records nullable bytes]]
//! ```
//!
//! Versions 3 to 8 write strings with an int16 length, arrays with an int32 count and
//! bytes with an int32 length. Version 9 is flexible: those lengths and counts are
//! unsigned varints of the value plus one (0 meaning null), and each partition, each
//! topic and the body end with a tagged-field section, here always empty (one 0 byte).
//! The request header (version 1, or 2 with its own tagged fields from Produce v9) is
//! kafka-protocol's `RequestHeader`, as in [`frame`](crate::frame).

use std::ops::RangeInclusive;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Encodable;

use crate::error::{ProtocolError, Result};
use crate::frame::RequestMeta;

/// The Produce versions [`encode_produce`] writes: those the client negotiates.
pub const PRODUCE_VERSIONS: RangeInclusive<i16> = 3..=9;

/// The first flexible Produce version (KIP-482).
const FLEXIBLE_FROM: i16 = 9;

/// The largest frame, size prefix included: the prefix is an int32.
const MAX_FRAME: u64 = 4 + i32::MAX as u64;

/// One topic of a Produce request.
#[derive(Clone, Debug)]
pub struct ProduceTopic<'a> {
    /// The topic name.
    pub name: &'a str,
    /// Per partition, in the order written: its index and its record batches, already
    /// encoded. Records are never null here (a producer always sends some); an empty
    /// `Bytes` is written as an empty field.
    pub partitions: Vec<(i32, Bytes)>,
}

/// Encodes a whole Produce request frame (size prefix, header, body) as parts whose
/// concatenation is the frame.
///
/// Every non-empty record field is a part of its own, a clone of the `Bytes` in `topics`
/// (same allocation, nothing copied); the bytes between them come from one buffer. No
/// part is empty. `meta.api` must be [`ApiKey::Produce`] and `meta.version` one of
/// [`PRODUCE_VERSIONS`].
///
/// # Errors
///
/// [`ProtocolError::Encode`] for another API or version, a transactional id or topic
/// name longer than an int16 length allows (v3 to v8), or a frame over 2 GiB.
pub fn encode_produce(
    meta: &RequestMeta,
    transactional_id: Option<&str>,
    acks: i16,
    timeout_ms: i32,
    topics: &[ProduceTopic<'_>],
) -> Result<Vec<Bytes>> {
    let version = meta.version;
    if meta.api != ApiKey::Produce {
        return Err(ProtocolError::Encode { api: meta.api, version, message: "not a Produce request".into() });
    }
    let layout = Layout { version, flexible: version >= FLEXIBLE_FROM };
    if !PRODUCE_VERSIONS.contains(&version) {
        return Err(layout.error(format!("Produce v{version} is not written by encode_produce (v3 to v9 are)")));
    }
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(version)
        .with_correlation_id(meta.correlation_id)
        .with_client_id(meta.client_id.clone());
    let header_version = ApiKey::Produce.request_header_version(version);
    let header_size = header.compute_size(header_version).map_err(|e| layout.error(e.to_string()))?;

    // Sizes first: the frame's size goes in front, and the buffer for the bytes between
    // the batches is allocated once, at its exact size. `glue` counts those bytes (the
    // size prefix included), `records` the bytes of the batches.
    let too_large = || layout.error("request over 2 GiB");
    let mut glue = 4 + header_size as u64 + layout.string_size(transactional_id) + 2 + 4;
    glue += layout.length_size(topics.len());
    let mut records = 0u64;
    let mut batches = 0;
    for topic in topics {
        glue += layout.string_size(Some(topic.name)) + layout.length_size(topic.partitions.len());
        for (_, batch) in &topic.partitions {
            glue += 4 + layout.length_size(batch.len()) + layout.tags_size();
            records += batch.len() as u64;
            batches += usize::from(!batch.is_empty());
            // Checked as it grows: a `Bytes` shared by many partitions counts each time.
            if glue + records > MAX_FRAME {
                return Err(too_large());
            }
        }
        glue += layout.tags_size();
    }
    glue += layout.tags_size();
    // Every count and length written below is at most the frame's size, so within an
    // int32 (and a compact length plus one within a u32) once the frame is.
    let size = i32::try_from(glue + records - 4).map_err(|_| too_large())?;
    let capacity = usize::try_from(glue).map_err(|_| too_large())?;

    let mut buf = BytesMut::with_capacity(capacity);
    let mut parts = Vec::with_capacity(2 * batches + 1);
    buf.put_i32(size);
    header.encode(&mut buf, header_version).map_err(|e| layout.error(e.to_string()))?;
    layout.put_string(&mut buf, transactional_id)?;
    buf.put_i16(acks);
    buf.put_i32(timeout_ms);
    layout.put_length(&mut buf, topics.len())?;
    for topic in topics {
        layout.put_string(&mut buf, Some(topic.name))?;
        layout.put_length(&mut buf, topic.partitions.len())?;
        for (index, batch) in &topic.partitions {
            buf.put_i32(*index);
            layout.put_length(&mut buf, batch.len())?;
            if !batch.is_empty() {
                // `split` hands out what was written so far (never empty: the index at
                // least) and keeps the rest of the allocation for what follows.
                parts.push(buf.split().freeze());
                parts.push(batch.clone());
            }
            layout.put_tags(&mut buf);
        }
        layout.put_tags(&mut buf);
    }
    layout.put_tags(&mut buf);
    if !buf.is_empty() {
        parts.push(buf.freeze());
    }
    debug_assert_eq!(parts.iter().map(|p| p.len() as u64).sum::<u64>(), glue + records, "Produce v{version} sizes");
    Ok(parts)
}

/// How one version writes lengths, counts and tagged fields.
#[derive(Clone, Copy)]
struct Layout {
    version: i16,
    /// Compact lengths and tagged fields (v9).
    flexible: bool,
}

impl Layout {
    fn error(self, message: impl Into<String>) -> ProtocolError {
        ProtocolError::Encode { api: ApiKey::Produce, version: self.version, message: message.into() }
    }

    /// Bytes a nullable string takes, its length included.
    fn string_size(self, s: Option<&str>) -> u64 {
        let len = s.map_or(0, |s| s.len() as u64);
        match (self.flexible, s) {
            (true, None) => 1,
            (true, Some(_)) => uvarint_size(len + 1) + len,
            (false, _) => 2 + len,
        }
    }

    /// Bytes the count of an array, or the length of a (non-null) byte field, takes.
    fn length_size(self, n: usize) -> u64 {
        if self.flexible {
            uvarint_size(n as u64 + 1)
        } else {
            4
        }
    }

    /// Bytes an empty tagged-field section takes.
    fn tags_size(self) -> u64 {
        u64::from(self.flexible)
    }

    /// A nullable string: int16 length (-1 for null), or compact (varint length plus one, 0 for null).
    fn put_string(self, buf: &mut BytesMut, s: Option<&str>) -> Result<()> {
        match (self.flexible, s) {
            (true, None) => buf.put_u8(0),
            (false, None) => buf.put_i16(-1),
            (true, Some(s)) => {
                put_uvarint(buf, s.len() as u64 + 1);
                buf.put_slice(s.as_bytes());
            }
            (false, Some(s)) => {
                let len = i16::try_from(s.len()).map_err(|_| {
                    self.error(format!("string of {} bytes is too long for Produce v{}", s.len(), self.version))
                })?;
                buf.put_i16(len);
                buf.put_slice(s.as_bytes());
            }
        }
        Ok(())
    }

    /// The count of an array, or the length of a (non-null) byte field: int32, or a varint
    /// of the value plus one.
    fn put_length(self, buf: &mut BytesMut, n: usize) -> Result<()> {
        if self.flexible {
            put_uvarint(buf, n as u64 + 1);
        } else {
            buf.put_i32(i32::try_from(n).map_err(|_| self.error("request over 2 GiB"))?);
        }
        Ok(())
    }

    /// An empty tagged-field section (flexible versions only).
    fn put_tags(self, buf: &mut BytesMut) {
        if self.flexible {
            buf.put_u8(0);
        }
    }
}

/// Bytes `v` takes as an unsigned varint.
fn uvarint_size(v: u64) -> u64 {
    u64::from((u64::BITS - v.leading_zeros()).max(1).div_ceil(7))
}

/// Appends `v` as an unsigned varint (7 bits a byte, least significant first).
fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

#[cfg(test)]
mod tests;
