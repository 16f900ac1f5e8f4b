//! Record batches (magic 2), and the [`Batch`] type shared with legacy message sets.

use bytes::Bytes;

use super::buffers::OutputBuffers;
use super::layout::{
    ControlMarker, ATTR_CODEC_MASK, ATTR_CONTROL, ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL, V2_CRC_START, V2_HEADER_LEN,
};
use super::record::{skip_headers, Record, TimestampType};
use super::view::{HeaderViews, Owner, RecordView};
use super::DecodeOptions;
use crate::compression::{decompress, decompress_into, Compression};
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

    /// Iterates all records of the batch as owned [`Record`]s (each key and value a
    /// `Bytes` slice: a refcount increment each). [`views`](Self::views) is cheaper.
    pub fn records(&self) -> BatchRecords {
        self.records_from(i64::MIN)
    }

    /// Iterates the records whose offset is at least `min_offset`: a fetch may
    /// return a batch that starts before the offset asked for.
    pub fn records_from(&self, min_offset: i64) -> BatchRecords {
        BatchRecords { body: self.body.clone(), walk: Walk::new(self, min_offset) }
    }

    /// Iterates all records as [`RecordView`]s borrowing from this batch: nothing is
    /// allocated or reference-counted per record.
    pub fn views(&self) -> BatchViews<'_> {
        self.views_from(i64::MIN)
    }

    /// [`views`](Self::views) from the first record at or after `min_offset`.
    pub fn views_from(&self, min_offset: i64) -> BatchViews<'_> {
        BatchViews { body: &self.body, walk: Walk::new(self, min_offset) }
    }

    /// The marker of a control batch (`None` for data batches or unreadable keys).
    pub fn control_marker(&self) -> Option<ControlMarker> {
        if !self.is_control {
            return None;
        }
        let record = self.views().next()?.ok()?;
        let key = record.key()?;
        let ty = i16::from_be_bytes(key.get(2..4)?.try_into().ok()?);
        Some(ControlMarker::from_type(ty))
    }
}

/// Where a record iterator is in its batch; shared by [`BatchRecords`] and [`BatchViews`].
#[derive(Clone, Copy, Debug)]
struct Walk {
    base_offset: i64,
    first_timestamp: i64,
    max_timestamp: i64,
    timestamp_type: TimestampType,
    count: u32,
    min_offset: i64,
    pos: usize,
    index: u32,
    failed: bool,
}

impl Walk {
    fn new(b: &Batch, min_offset: i64) -> Self {
        Walk {
            base_offset: b.base_offset,
            first_timestamp: b.first_timestamp,
            max_timestamp: b.max_timestamp,
            timestamp_type: b.timestamp_type,
            count: b.record_count,
            min_offset,
            pos: 0,
            index: 0,
            failed: false,
        }
    }

    #[inline(always)]
    fn next<'a>(&mut self, body: &'a Body) -> Option<Result<RecordView<'a>>> {
        loop {
            if self.failed {
                return None;
            }
            let next = match body {
                Body::Legacy(records) => {
                    let r = records.get(self.index as usize)?;
                    self.index += 1;
                    Ok(r.view())
                }
                Body::V2(data) => {
                    if self.index == self.count {
                        if self.pos == data.len() {
                            return None;
                        }
                        Err(self.corrupt("bytes left after the last record"))
                    } else {
                        let r = self.decode(data);
                        self.index += 1;
                        r
                    }
                }
            };
            match next {
                Ok(r) if r.offset < self.min_offset => continue,
                Ok(r) => return Some(Ok(r)),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }

    #[cold]
    fn corrupt(&self, reason: &'static str) -> ProtocolError {
        ProtocolError::CorruptRecord { offset: self.base_offset, index: self.index, reason }
    }

    /// Decodes the record at `pos` of a v2 records section and advances `pos`.
    #[inline(always)]
    fn decode<'a>(&mut self, data: &'a Bytes) -> Result<RecordView<'a>> {
        let bytes: &'a [u8] = data;
        let mut c = Cursor::new(bytes, self.pos);
        let len = c.varint().ok_or_else(|| self.corrupt("bad record length varint"))?;
        let len = usize::try_from(len).map_err(|_| self.corrupt("negative record length"))?;
        let end = c
            .pos
            .checked_add(len)
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| self.corrupt("record extends past its batch"))?;
        let record = &bytes[..end];
        let mut c = Cursor::new(record, c.pos);
        c.i8().ok_or_else(|| self.corrupt("missing attributes"))?;
        let ts_delta = c.varlong().ok_or_else(|| self.corrupt("bad timestamp delta"))?;
        let offset_delta = c.varint().ok_or_else(|| self.corrupt("bad offset delta"))?;
        let key = c.nullable_bytes().ok_or_else(|| self.corrupt("bad key"))?;
        let value = c.nullable_bytes().ok_or_else(|| self.corrupt("bad value"))?;
        let header_count = c.varint().ok_or_else(|| self.corrupt("bad header count"))?;
        let header_count = u32::try_from(header_count).map_err(|_| self.corrupt("negative header count"))?;
        let headers_start = c.pos;
        if header_count != 0 && !skip_headers(&mut c, header_count) {
            return Err(self.corrupt("malformed header"));
        }
        if c.pos != end {
            return Err(self.corrupt("record length does not match its fields"));
        }
        self.pos = end;
        let timestamp = match self.timestamp_type {
            TimestampType::LogAppendTime => self.max_timestamp,
            _ => self.first_timestamp.wrapping_add(ts_delta),
        };
        let headers = HeaderViews { data: record.get(headers_start..).unwrap_or_default(), count: header_count };
        Ok(RecordView::new(
            self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp,
            self.timestamp_type,
            key.and_then(|r| record.get(r)),
            value.and_then(|r| record.get(r)),
            headers,
            Owner::Buffer(data),
        ))
    }
}

/// Iterator over the records of one [`Batch`] as owned [`Record`]s; stops after the
/// first error.
#[derive(Debug)]
pub struct BatchRecords {
    body: Body,
    walk: Walk,
}

impl Iterator for BatchRecords {
    type Item = Result<Record>;

    #[inline]
    fn next(&mut self) -> Option<Result<Record>> {
        self.walk.next(&self.body).map(|r| r.map(|v| v.to_record()))
    }
}

/// Iterator over the records of one [`Batch`] as [`RecordView`]s borrowing from it;
/// stops after the first error.
#[derive(Debug)]
pub struct BatchViews<'a> {
    body: &'a Body,
    walk: Walk,
}

impl<'a> Iterator for BatchViews<'a> {
    type Item = Result<RecordView<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Result<RecordView<'a>>> {
        self.walk.next(self.body)
    }
}

/// Decodes one complete v2 batch (`bytes` spans exactly the batch).
pub(crate) fn decode_v2(bytes: Bytes, opts: &DecodeOptions, buffers: Option<&OutputBuffers>) -> Result<Batch> {
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
    let records = match (compression, buffers) {
        (Compression::None, _) => section,
        (codec, None) => Bytes::from(decompress(codec, &section, opts.max_decompressed_bytes, base_offset)?),
        (codec, Some(pool)) => {
            let out = decompress_into(codec, &section, opts.max_decompressed_bytes, base_offset, pool.take())?;
            let capacity = out.capacity();
            let out = Bytes::from(out);
            pool.keep(&out, capacity);
            out
        }
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
