//! Legacy message sets (magic 0 and 1), as returned by brokers older than 0.11 or
//! for data written in the old format.

use bytes::Bytes;

use super::batch::{Batch, Body};
use super::record::{Headers, Record, TimestampType};
use super::DecodeOptions;
use crate::compression::{decompress, Compression};
use crate::error::{ProtocolError, Result};
use crate::varint::Cursor;

const ATTR_CODEC_MASK: i8 = 0x07;
const ATTR_LOG_APPEND_TIME: i8 = 0x08;
/// offset (8) + size (4).
const ENTRY_PREFIX: usize = 12;
/// Where the CRC-covered part starts (the magic byte).
const CRC_START: usize = 16;

/// One parsed legacy message, before offsets of compressed sets are resolved.
struct Message {
    offset: i64,
    magic: i8,
    attrs: i8,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

fn corrupt(offset: i64, reason: &'static str) -> ProtocolError {
    ProtocolError::CorruptBatch { offset, reason }
}

/// Parses one complete entry (`bytes` spans offset, size and message).
fn parse_message(bytes: &Bytes, opts: &DecodeOptions) -> Result<Message> {
    let mut c = Cursor::new(bytes, 0);
    let offset = c.i64().ok_or(corrupt(-1, "message shorter than its header"))?;
    let short = || corrupt(offset, "message shorter than its header");
    c.i32().ok_or_else(short)?;
    let stored = c.u32().ok_or_else(short)?;
    if opts.check_crcs {
        let computed = crc32fast::hash(bytes.get(CRC_START..).unwrap_or_default());
        if computed != stored {
            return Err(ProtocolError::CrcMismatch { offset, stored, computed });
        }
    }
    let magic = c.i8().ok_or_else(short)?;
    let attrs = c.i8().ok_or_else(short)?;
    let timestamp = match magic {
        0 => -1,
        1 => c.i64().ok_or_else(short)?,
        magic => return Err(ProtocolError::UnsupportedMagic { offset, magic }),
    };
    let mut bytes_field = |what| -> Result<Option<Bytes>> {
        let len = c.i32().ok_or(corrupt(offset, what))?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| corrupt(offset, what))?;
        let r = c.range(len).ok_or(corrupt(offset, what))?;
        Ok(Some(bytes.slice(r)))
    };
    let key = bytes_field("bad key length")?;
    let value = bytes_field("bad value length")?;
    if c.remaining() != 0 {
        return Err(corrupt(offset, "message size does not match its fields"));
    }
    Ok(Message { offset, magic, attrs, timestamp, key, value })
}

fn ts_type(m: &Message) -> TimestampType {
    match (m.magic, m.attrs & ATTR_LOG_APPEND_TIME != 0) {
        (0, _) => TimestampType::NotAvailable,
        (_, true) => TimestampType::LogAppendTime,
        (_, false) => TimestampType::CreateTime,
    }
}

fn to_record(m: Message, offset: i64, timestamp: i64, tt: TimestampType) -> Record {
    Record { offset, timestamp, timestamp_type: tt, key: m.key, value: m.value, headers: Headers::default() }
}

/// Decodes one complete legacy entry into a [`Batch`] of one record, or of all the
/// records of a compressed wrapper.
pub(crate) fn decode_entry(bytes: Bytes, opts: &DecodeOptions) -> Result<Batch> {
    let wrapper = parse_message(&bytes, opts)?;
    let codec_id = (wrapper.attrs & ATTR_CODEC_MASK) as u8;
    let compression = match Compression::from_id(codec_id) {
        Some(Compression::Zstd) => return Err(corrupt(wrapper.offset, "zstd needs magic 2")),
        Some(c) => c,
        None => return Err(ProtocolError::UnknownCodec { offset: wrapper.offset, codec: codec_id }),
    };
    let (magic, wrapper_offset, wrapper_ts, tt) = (wrapper.magic, wrapper.offset, wrapper.timestamp, ts_type(&wrapper));
    let records = if compression == Compression::None {
        vec![to_record(wrapper, wrapper_offset, wrapper_ts, tt)]
    } else {
        let data = wrapper.value.ok_or(corrupt(wrapper_offset, "compressed wrapper has a null value"))?;
        let inner = decompress(compression, &data, opts.max_decompressed_bytes, wrapper_offset)?;
        let inner = Bytes::from(inner);
        let mut messages = Vec::new();
        let mut pos = 0;
        while pos < inner.len() {
            let mut c = Cursor::new(&inner, pos + 8);
            let size = c.i32().ok_or(corrupt(wrapper_offset, "truncated inner message"))?;
            let end = usize::try_from(size)
                .ok()
                .and_then(|s| (pos + ENTRY_PREFIX).checked_add(s))
                .filter(|e| *e <= inner.len())
                .ok_or(corrupt(wrapper_offset, "truncated inner message"))?;
            let m = parse_message(&inner.slice(pos..end), opts)?;
            if m.attrs & ATTR_CODEC_MASK != 0 {
                return Err(corrupt(wrapper_offset, "nested compressed message"));
            }
            messages.push(m);
            pos = end;
        }
        let last_inner = messages.last().ok_or(corrupt(wrapper_offset, "empty compressed wrapper"))?.offset;
        // Magic 1 wrappers carry the absolute offset of their last inner message, and
        // inner offsets are relative; magic 0 inner offsets are already absolute.
        let base = if magic > 0 { Some(wrapper_offset.wrapping_sub(last_inner)) } else { None };
        messages
            .into_iter()
            .map(|m| {
                let offset = base.map_or(m.offset, |b| b.wrapping_add(m.offset));
                let (ts, t) = match tt {
                    TimestampType::LogAppendTime => (wrapper_ts, tt),
                    _ => (m.timestamp, ts_type(&m)),
                };
                to_record(m, offset, ts, t)
            })
            .collect::<Vec<_>>()
    };
    let (first, last) = match (records.first(), records.last()) {
        (Some(f), Some(l)) => (f.clone(), l.offset),
        _ => return Err(corrupt(wrapper_offset, "empty message")),
    };
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
    Ok(Batch {
        base_offset: first.offset,
        last_offset: last,
        partition_leader_epoch: -1,
        magic,
        compression,
        timestamp_type: tt,
        is_transactional: false,
        is_control: false,
        first_timestamp: first.timestamp,
        max_timestamp: max_ts,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: records.len() as u32,
        body: Body::Legacy(records),
    })
}
