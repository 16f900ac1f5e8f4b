//! Record batches (magic 2), and the [`Batch`] type shared with legacy message sets.

use bytes::Bytes;

use super::layout::{
    ControlMarker, ATTR_CODEC_MASK, ATTR_CONTROL, ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL, V2_CRC_START, V2_HEADER_LEN,
};
use super::record::{skip_headers, Headers, Record, TimestampType};
use super::DecodeOptions;
use crate::compression::{decompress, Compression};
use crate::error::{ProtocolError, Result};
use crate::varint::Cursor;

/// One batch of records: a v2 record batch, or one (possibly compressed) legacy message.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record (`base_offset + lastOffsetDelta`).
    pub last_offset: i64,
    /// Leader epoch stamped by the broker (-1 before magic 2).
    pub partition_leader_epoch: i32,
    /// Format: 0, 1 or 2.
    pub magic: i8,
    /// Codec the batch was compressed with.
    pub compression: Compression,
    /// What record timestamps mean.
    pub timestamp_type: TimestampType,
    /// Part of a transaction.
    pub is_transactional: bool,
    /// A control batch (transaction commit/abort marker); not application data.
    pub is_control: bool,
    /// Timestamp of the first record (v2 `baseTimestamp`).
    pub first_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id (-1 if none).
    pub producer_id: i64,
    /// Producer epoch (-1 if none).
    pub producer_epoch: i16,
    /// Sequence number of the first record (-1 if none).
    pub base_sequence: i32,
    /// Number of records the batch declares.
    pub record_count: u32,
    pub(crate) body: Body,
}

#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// The (decompressed) records section of a v2 batch.
    V2(Bytes),
    /// Records of a legacy message or wrapper, already parsed.
    Legacy(Vec<Record>),
}

impl Batch {
    /// Bytes this batch holds beyond the fetched buffer it came in: the decompressed
    /// records of a compressed batch (0 for an uncompressed one, whose records are
    /// slices of the fetched buffer).
    pub fn decompressed_len(&self) -> usize {
        match (&self.body, self.compression) {
            (_, Compression::None) => 0,
            (Body::V2(data), _) => data.len(),
            (Body::Legacy(records), _) => records
                .iter()
                .map(|r| r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()))
                .sum(),
        }
    }

    /// Iterates all records of the batch.
    pub fn records(&self) -> BatchRecords {
        self.records_from(i64::MIN)
    }

    /// Iterates the records whose offset is at least `min_offset`: a fetch may
    /// return a batch that starts before the offset asked for.
    pub fn records_from(&self, min_offset: i64) -> BatchRecords {
        let inner = match &self.body {
            Body::V2(data) => Inner::V2 { data: data.clone(), pos: 0, index: 0 },
            Body::Legacy(records) => Inner::Legacy { records: records.clone().into_iter() },
        };
        BatchRecords { batch: Meta::of(self), inner, min_offset, failed: false }
    }

    /// The marker of a control batch (`None` for data batches or unreadable keys).
    pub fn control_marker(&self) -> Option<ControlMarker> {
        if !self.is_control {
            return None;
        }
        let record = self.records().next()?.ok()?;
        let key = record.key?;
        let ty = i16::from_be_bytes(key.get(2..4)?.try_into().ok()?);
        Some(ControlMarker::from_type(ty))
    }
}

/// The batch fields a record iterator needs.
#[derive(Clone, Copy, Debug)]
struct Meta {
    base_offset: i64,
    first_timestamp: i64,
    max_timestamp: i64,
    timestamp_type: TimestampType,
    count: u32,
}

impl Meta {
    fn of(b: &Batch) -> Self {
        Meta {
            base_offset: b.base_offset,
            first_timestamp: b.first_timestamp,
            max_timestamp: b.max_timestamp,
            timestamp_type: b.timestamp_type,
            count: b.record_count,
        }
    }
}

#[derive(Debug)]
enum Inner {
    V2 { data: Bytes, pos: usize, index: u32 },
    Legacy { records: std::vec::IntoIter<Record> },
}

/// Iterator over the records of one [`Batch`]; stops after the first error.
#[derive(Debug)]
pub struct BatchRecords {
    batch: Meta,
    inner: Inner,
    min_offset: i64,
    failed: bool,
}

impl Iterator for BatchRecords {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if self.failed {
                return None;
            }
            let next = match &mut self.inner {
                Inner::Legacy { records } => records.next().map(Ok),
                Inner::V2 { data, pos, index } => {
                    if *index == self.batch.count {
                        if *pos != data.len() {
                            self.failed = true;
                            let m = &self.batch;
                            return Some(Err(corrupt(m, *index, "bytes left after the last record")));
                        }
                        None
                    } else {
                        let r = decode_record(data, pos, *index, &self.batch);
                        *index += 1;
                        Some(r)
                    }
                }
            };
            match next {
                Some(Ok(r)) if r.offset < self.min_offset => continue,
                Some(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                other => return other,
            }
        }
    }
}

fn corrupt(m: &Meta, index: u32, reason: &'static str) -> ProtocolError {
    ProtocolError::CorruptRecord { offset: m.base_offset, index, reason }
}

/// Decodes the record at `*pos` of a v2 records section and advances `pos`.
fn decode_record(data: &Bytes, pos: &mut usize, index: u32, m: &Meta) -> Result<Record> {
    let mut c = Cursor::new(data, *pos);
    let len = c.varint().ok_or_else(|| corrupt(m, index, "bad record length varint"))?;
    let len = usize::try_from(len).map_err(|_| corrupt(m, index, "negative record length"))?;
    let end = c
        .pos
        .checked_add(len)
        .filter(|e| *e <= data.len())
        .ok_or_else(|| corrupt(m, index, "record extends past its batch"))?;
    let mut c = Cursor::new(&data[..end], c.pos);
    let bad = |reason| corrupt(m, index, reason);
    c.i8().ok_or_else(|| bad("missing attributes"))?;
    let ts_delta = c.varlong().ok_or_else(|| bad("bad timestamp delta"))?;
    let offset_delta = c.varint().ok_or_else(|| bad("bad offset delta"))?;
    let key = c.nullable_bytes().ok_or_else(|| bad("bad key"))?;
    let value = c.nullable_bytes().ok_or_else(|| bad("bad value"))?;
    let header_count = c.varint().ok_or_else(|| bad("bad header count"))?;
    if header_count < 0 {
        return Err(bad("negative header count"));
    }
    let headers_start = c.pos;
    if !skip_headers(&mut c, header_count) {
        return Err(bad("malformed header"));
    }
    if c.pos != end {
        return Err(bad("record length does not match its fields"));
    }
    *pos = end;
    let timestamp = match m.timestamp_type {
        TimestampType::LogAppendTime => m.max_timestamp,
        _ => m.first_timestamp.wrapping_add(ts_delta),
    };
    let headers = if header_count == 0 {
        Headers::default()
    } else {
        Headers::new(data.slice(headers_start..end), header_count as u32)
    };
    Ok(Record {
        offset: m.base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp,
        timestamp_type: m.timestamp_type,
        key: key.map(|r| data.slice(r)),
        value: value.map(|r| data.slice(r)),
        headers,
    })
}

/// Decodes one complete v2 batch (`bytes` spans exactly the batch).
pub(crate) fn decode_v2(bytes: Bytes, opts: &DecodeOptions) -> Result<Batch> {
    let mut c = Cursor::new(&bytes, 0);
    let short = |offset| ProtocolError::CorruptBatch { offset, reason: "batch shorter than its header" };
    let base_offset = c.i64().ok_or(short(-1))?;
    if bytes.len() < V2_HEADER_LEN {
        return Err(short(base_offset));
    }
    let (_len, epoch, _magic) = (c.i32(), c.i32(), c.i8());
    let stored = c.u32().ok_or(short(base_offset))?;
    if opts.check_crcs {
        let computed = crc32c::crc32c(&bytes[V2_CRC_START..]);
        if computed != stored {
            return Err(ProtocolError::CrcMismatch { offset: base_offset, stored, computed });
        }
    }
    let attrs = c.i16().ok_or(short(base_offset))?;
    let last_delta = c.i32().ok_or(short(base_offset))?;
    let first_timestamp = c.i64().ok_or(short(base_offset))?;
    let max_timestamp = c.i64().ok_or(short(base_offset))?;
    let producer_id = c.i64().ok_or(short(base_offset))?;
    let producer_epoch = c.i16().ok_or(short(base_offset))?;
    let base_sequence = c.i32().ok_or(short(base_offset))?;
    let count = c.i32().ok_or(short(base_offset))?;
    let record_count = u32::try_from(count)
        .map_err(|_| ProtocolError::CorruptBatch { offset: base_offset, reason: "negative record count" })?;
    let codec_id = (attrs & ATTR_CODEC_MASK) as u8;
    let compression =
        Compression::from_id(codec_id).ok_or(ProtocolError::UnknownCodec { offset: base_offset, codec: codec_id })?;
    let section = bytes.slice(V2_HEADER_LEN..);
    let records = match compression {
        Compression::None => section,
        codec => Bytes::from(decompress(codec, &section, opts.max_decompressed_bytes, base_offset)?),
    };
    Ok(Batch {
        base_offset,
        last_offset: base_offset.wrapping_add(i64::from(last_delta)),
        partition_leader_epoch: epoch.unwrap_or(-1),
        magic: 2,
        compression,
        timestamp_type: if attrs & ATTR_LOG_APPEND_TIME != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        is_transactional: attrs & ATTR_TRANSACTIONAL != 0,
        is_control: attrs & ATTR_CONTROL != 0,
        first_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        record_count,
        body: Body::V2(records),
    })
}
