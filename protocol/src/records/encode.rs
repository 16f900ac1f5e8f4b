//! Encoding v2 record batches for Produce requests.

use bytes::{BufMut, BytesMut};

pub use super::layout::ControlMarker;
use super::layout::{ATTR_CONTROL, ATTR_TRANSACTIONAL, V2_CRC_START, V2_HEADER_LEN};
use crate::compression::{compress, Compression};
use crate::error::{ProtocolError, Result};
use crate::varint::{put_varint, put_varlong, varint_len, varlong_len};

/// A header of a record to be produced.
#[derive(Clone, Copy, Debug)]
pub struct NewHeader<'a> {
    /// Header name.
    pub key: &'a str,
    /// Header value (`None` for null).
    pub value: Option<&'a [u8]>,
}

/// A record to be produced.
#[derive(Clone, Copy, Debug, Default)]
pub struct NewRecord<'a> {
    /// Key (`None` for null).
    pub key: Option<&'a [u8]>,
    /// Value (`None` for a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a [NewHeader<'a>],
    /// Create time in milliseconds since the epoch.
    pub timestamp: i64,
}

/// Builds one v2 record batch.
///
/// Records are serialised as they are pushed; [`RecordBatchBuilder::finish`]
/// compresses the section, writes the header and computes the CRC32C.
#[derive(Debug)]
pub struct RecordBatchBuilder {
    compression: Compression,
    records: BytesMut,
    count: i32,
    last_delta: i32,
    first_timestamp: i64,
    max_timestamp: i64,
    base_offset: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: i16,
}

impl RecordBatchBuilder {
    /// A builder for a batch compressed with `compression`.
    pub fn new(compression: Compression) -> Self {
        Self::with_buffer(compression, BytesMut::new())
    }

    /// A builder writing into `buffer` (cleared first; its capacity is kept), such as
    /// one from [`OutputBuffers`](super::OutputBuffers): a producer reuses the buffers
    /// of acknowledged batches instead of allocating (and page-faulting) new ones.
    pub fn with_buffer(compression: Compression, mut buffer: BytesMut) -> Self {
        buffer.clear();
        // Room for the batch header, written in front by `finish`: an uncompressed
        // batch is then finished without copying its records.
        buffer.resize(V2_HEADER_LEN, 0);
        RecordBatchBuilder {
            compression,
            records: buffer,
            count: 0,
            last_delta: -1,
            first_timestamp: 0,
            max_timestamp: -1,
            base_offset: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
        }
    }

    /// Sets the base offset (brokers assign offsets; fakes and fixtures set them).
    pub fn base_offset(mut self, offset: i64) -> Self {
        self.base_offset = offset;
        self
    }

    /// Marks the batch as written by an idempotent or transactional producer.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32, transactional: bool) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        if transactional {
            self.attributes |= ATTR_TRANSACTIONAL;
        }
        self
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Uncompressed size of the records pushed so far.
    pub fn records_size(&self) -> usize {
        self.records.len() - V2_HEADER_LEN
    }

    /// Reserves room for at least `additional` more bytes of records.
    pub fn reserve(&mut self, additional: usize) {
        self.records.reserve(additional);
    }

    /// Appends a record at the offset after the previous record's.
    pub fn push(&mut self, r: &NewRecord<'_>) -> Result<()> {
        let next = self.last_delta.checked_add(1).ok_or(ProtocolError::Unencodable("offset delta overflow"))?;
        self.push_at(next, r)
    }

    /// Appends a record at `offset_delta` from the base offset, which must be above the
    /// previous record's: the gaps are what log compaction leaves behind (brokers write
    /// such batches; tests and fakes build them with this).
    pub fn push_at(&mut self, offset_delta: i32, r: &NewRecord<'_>) -> Result<()> {
        if offset_delta <= self.last_delta {
            return Err(ProtocolError::Unencodable("offset deltas must increase"));
        }
        if self.count == 0 {
            self.first_timestamp = r.timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(r.timestamp);
        let ts_delta = r.timestamp.wrapping_sub(self.first_timestamp);
        let len_of = |b: Option<&[u8]>| -> Result<i32> {
            b.map_or(Ok(-1), |b| i32::try_from(b.len()).map_err(|_| ProtocolError::Unencodable("field too large")))
        };
        let (key_len, value_len) = (len_of(r.key)?, len_of(r.value)?);
        let header_count =
            i32::try_from(r.headers.len()).map_err(|_| ProtocolError::Unencodable("too many headers"))?;

        let field = |len: i32| varint_len(len) + usize::try_from(len).unwrap_or(0);
        let mut body_len = 1 + varlong_len(ts_delta) + varint_len(offset_delta);
        body_len += field(key_len) + field(value_len) + varint_len(header_count);
        for h in r.headers {
            body_len += field(len_of(Some(h.key.as_bytes()))?) + field(len_of(h.value)?);
        }
        let body_len = i32::try_from(body_len).map_err(|_| ProtocolError::Unencodable("record too large"))?;
        let buf = &mut self.records;
        buf.reserve(varint_len(body_len) + body_len as usize);
        put_varint(buf, body_len);
        buf.put_i8(0);
        put_varlong(buf, ts_delta);
        put_varint(buf, offset_delta);
        put_bytes(buf, key_len, r.key);
        put_bytes(buf, value_len, r.value);
        put_varint(buf, header_count);
        for h in r.headers {
            let k = h.key.as_bytes();
            put_bytes(buf, k.len() as i32, Some(k));
            put_bytes(buf, len_of(h.value)?, h.value);
        }
        self.count = self.count.checked_add(1).ok_or(ProtocolError::Unencodable("too many records"))?;
        self.last_delta = offset_delta;
        Ok(())
    }

    /// Appends the batch to `out`. When `out` is empty and the batch is not
    /// compressed, `out` becomes the builder's own buffer: nothing is copied.
    pub fn finish(self, out: &mut BytesMut) -> Result<()> {
        let batch = self.finish_batch()?;
        if out.is_empty() {
            *out = batch;
        } else {
            out.extend_from_slice(&batch);
        }
        Ok(())
    }

    /// The encoded batch: header, (compressed) records, CRC32C.
    fn finish_batch(mut self) -> Result<BytesMut> {
        if self.count == 0 {
            return Err(ProtocolError::Unencodable("a record batch needs at least one record"));
        }
        let mut batch = match self.compression {
            Compression::None => std::mem::take(&mut self.records),
            codec => {
                let section = compress(codec, &self.records[V2_HEADER_LEN..])?;
                let mut batch = BytesMut::with_capacity(V2_HEADER_LEN + section.len());
                batch.resize(V2_HEADER_LEN, 0);
                batch.extend_from_slice(&section);
                batch
            }
        };
        let batch_len = i32::try_from(batch.len() - 12).map_err(|_| ProtocolError::Unencodable("batch too large"))?;
        let mut header = &mut batch[..V2_HEADER_LEN];
        header.put_i64(self.base_offset);
        header.put_i32(batch_len);
        header.put_i32(-1); // partition leader epoch: set by the broker
        header.put_i8(2);
        header.put_u32(0); // CRC, patched below
        header.put_i16(self.attributes | i16::from(self.compression.id()));
        header.put_i32(self.last_delta);
        header.put_i64(self.first_timestamp);
        header.put_i64(self.max_timestamp);
        header.put_i64(self.producer_id);
        header.put_i16(self.producer_epoch);
        header.put_i32(self.base_sequence);
        header.put_i32(self.count);
        let crc = crc32c::crc32c(&batch[V2_CRC_START..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(batch)
    }

    /// Appends a control batch holding one transaction marker for `producer_id`.
    pub fn control(
        out: &mut BytesMut,
        base_offset: i64,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlMarker,
        timestamp: i64,
    ) -> Result<()> {
        let mut b = RecordBatchBuilder::new(Compression::None).base_offset(base_offset).producer(
            producer_id,
            producer_epoch,
            -1,
            true,
        );
        b.attributes |= ATTR_CONTROL;
        let mut key = [0u8; 4];
        key[2..].copy_from_slice(&marker.type_id().to_be_bytes());
        // Value: version (0) + coordinator epoch (0), as brokers write it.
        let value = [0u8; 6];
        b.push(&NewRecord { key: Some(&key), value: Some(&value), headers: &[], timestamp })?;
        b.finish(out)
    }
}

/// Writes an idempotent producer's id, epoch and base sequence into an encoded v2
/// batch and recomputes its CRC. The producer stamps a batch when it first sends it,
/// so a retry carries the same sequence and the broker can drop the duplicate.
pub fn stamp_producer(batch: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Result<()> {
    stamp(batch, producer_id, producer_epoch, base_sequence, false)
}

/// [`stamp_producer`] for a transactional producer: also sets the batch's
/// transactional attribute, which makes the broker track it in the producer's open
/// transaction (hidden from `read_committed` readers until the commit marker).
pub fn stamp_transactional(batch: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Result<()> {
    stamp(batch, producer_id, producer_epoch, base_sequence, true)
}

fn stamp(batch: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32, txn: bool) -> Result<()> {
    let corrupt = |reason| ProtocolError::CorruptBatch { offset: -1, reason };
    if batch.len() < V2_HEADER_LEN {
        return Err(corrupt("batch shorter than a v2 header"));
    }
    if batch[16] != 2 {
        return Err(corrupt("only v2 batches carry producer state"));
    }
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    if txn {
        let attributes = i16::from_be_bytes([batch[21], batch[22]]) | ATTR_TRANSACTIONAL;
        batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    }
    let crc = crc32c::crc32c(&batch[V2_CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

fn put_bytes(buf: &mut BytesMut, len: i32, b: Option<&[u8]>) {
    put_varint(buf, len);
    if let Some(b) = b {
        buf.put_slice(b);
    }
}
