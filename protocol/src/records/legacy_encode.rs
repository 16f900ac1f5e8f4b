//! A legacy (magic 0/1) message-set encoder, for tests only (feature
//! `test-encoders`): clients have produced v2 batches since Kafka 0.11, so the library
//! never writes this format; the tests use it to serve old formats to the decoder.

use bytes::{BufMut, BytesMut};

use crate::compression::{compress, Compression};
use crate::error::{ProtocolError, Result};

/// A legacy message to encode (tests and fake brokers use these to serve old formats).
#[derive(Clone, Debug)]
pub struct LegacyMessage<'a> {
    /// Offset written in the entry (absolute, or relative inside a magic 1 wrapper).
    pub offset: i64,
    /// Timestamp (ignored for magic 0).
    pub timestamp: i64,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub value: Option<&'a [u8]>,
}

/// Appends one legacy entry with the given magic, attributes and fields.
fn put_entry(out: &mut BytesMut, magic: i8, attrs: i8, m: &LegacyMessage<'_>) -> Result<()> {
    let field_len = |b: Option<&[u8]>| 4 + b.map_or(0, <[u8]>::len);
    let size = 4 + 2 + if magic == 1 { 8 } else { 0 } + field_len(m.key) + field_len(m.value);
    let size = i32::try_from(size).map_err(|_| ProtocolError::Unencodable("message too large"))?;
    out.put_i64(m.offset);
    out.put_i32(size);
    let crc_at = out.len();
    out.put_u32(0);
    out.put_i8(magic);
    out.put_i8(attrs);
    if magic == 1 {
        out.put_i64(m.timestamp);
    }
    for field in [m.key, m.value] {
        match field {
            None => out.put_i32(-1),
            Some(b) => {
                out.put_i32(b.len() as i32);
                out.put_slice(b);
            }
        }
    }
    let crc = crc32fast::hash(&out[crc_at + 4..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Appends a legacy message set: the messages as they are when `codec` is none,
/// else one compressed wrapper at `wrapper_offset` holding them.
pub fn encode_legacy_message(
    out: &mut BytesMut,
    magic: i8,
    codec: Compression,
    wrapper_offset: i64,
    messages: &[LegacyMessage<'_>],
) -> Result<()> {
    if !(0..=1).contains(&magic) || codec == Compression::Zstd {
        return Err(ProtocolError::Unencodable("legacy sets have magic 0 or 1 and no zstd"));
    }
    if codec == Compression::None {
        return messages.iter().try_for_each(|m| put_entry(out, magic, 0, m));
    }
    let mut inner = BytesMut::new();
    for m in messages {
        put_entry(&mut inner, magic, 0, m)?;
    }
    let value = compress(codec, &inner)?;
    let ts = messages.iter().map(|m| m.timestamp).max().unwrap_or(-1);
    let wrapper = LegacyMessage { offset: wrapper_offset, timestamp: ts, key: None, value: Some(&value) };
    put_entry(out, magic, codec.id() as i8, &wrapper)
}
