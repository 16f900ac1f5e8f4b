//! Record data: the `records` field of a Fetch response, decoded without copying.
//!
//! A fetch returns a sequence of batches (magic 2) or message sets (magic 0/1).
//! [`RecordSet`] walks it batch by batch; each [`Batch`] yields [`Record`]s whose
//! keys, values and headers are `Bytes` slices of the fetched (or, for compressed
//! batches, the decompressed) buffer. Walking records allocates nothing per record.

mod batch;
mod buffers;
mod encode;
mod layout;
mod legacy;
#[cfg(feature = "test-encoders")]
mod legacy_encode;
mod record;
mod txn;
mod view;

pub use batch::{Batch, BatchRecords, BatchViews};
pub use buffers::{OutputBuffers, MAX_HELD, MAX_IDLE, MAX_POOLED};
pub use encode::{stamp_producer, stamp_transactional, ControlMarker, NewHeader, NewRecord, RecordBatchBuilder};
#[cfg(feature = "test-encoders")]
pub use legacy_encode::{encode_legacy_message, LegacyMessage};
pub use record::{Header, Headers, HeadersIter, Record, TimestampType};
pub use txn::{AbortedTransaction, AbortedTransactions};
pub use view::{HeaderView, HeaderViews, HeaderViewsIter, RecordView};

use bytes::Bytes;

use crate::error::{ProtocolError, Result};
use crate::varint::Cursor;

/// Limits and checks applied while decoding record data.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    /// Verify CRCs (`check.crcs`, default on).
    pub check_crcs: bool,
    /// Largest decompressed size of one batch or wrapper message (default 64 MiB).
    pub max_decompressed_bytes: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { check_crcs: true, max_decompressed_bytes: 64 * 1024 * 1024 }
    }
}

/// Length of the fields common to every format before the magic byte:
/// offset (8) + length (4) + leader epoch or CRC (4).
const PREFIX_LEN: usize = 12;
const MAGIC_POS: usize = 16;

/// An iterator over the batches in a Fetch response's `records` bytes.
///
/// A partial batch at the end is normal (the broker cuts the response at
/// `max.partition.fetch.bytes`): iteration ends there and [`RecordSet::truncated`]
/// reports it. After the first error the iterator yields nothing more.
#[derive(Debug, Clone)]
pub struct RecordSet {
    data: Bytes,
    pos: usize,
    opts: DecodeOptions,
    buffers: Option<OutputBuffers>,
    truncated: bool,
    failed: bool,
}

impl RecordSet {
    /// Starts walking `data` with the given options.
    pub fn new(data: Bytes, opts: DecodeOptions) -> Self {
        RecordSet { data, pos: 0, opts, buffers: None, truncated: false, failed: false }
    }

    /// Decompresses v2 batches into buffers from `buffers`, reused once their records
    /// are dropped.
    pub fn with_buffers(mut self, buffers: &OutputBuffers) -> Self {
        self.buffers = Some(buffers.clone());
        self
    }

    /// Whether iteration stopped at an incomplete trailing batch.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Size in bytes of the incomplete trailing batch, as announced by its header,
    /// if one was seen. A consumer whose fetch returned nothing but a truncated
    /// batch needs a larger `max.partition.fetch.bytes` than this.
    pub fn truncated_batch_size(&self) -> Option<u64> {
        if !self.truncated {
            return None;
        }
        let mut c = Cursor::new(&self.data, self.pos + 8);
        c.i32().and_then(|l| u64::try_from(l).ok()).map(|l| l + PREFIX_LEN as u64)
    }

    fn next_batch(&mut self) -> Result<Option<Batch>> {
        let rest = self.data.len() - self.pos;
        if rest == 0 {
            return Ok(None);
        }
        let mut c = Cursor::new(&self.data, self.pos);
        let (Some(offset), Some(len)) = (c.i64(), c.i32()) else {
            self.truncated = true;
            return Ok(None);
        };
        let Ok(len) = usize::try_from(len) else {
            return Err(ProtocolError::CorruptBatch { offset, reason: "negative batch length" });
        };
        let Some(total) = len.checked_add(PREFIX_LEN).filter(|t| *t <= rest) else {
            self.truncated = true;
            return Ok(None);
        };
        let magic = match self.data.get(self.pos + MAGIC_POS) {
            Some(m) => *m as i8,
            None => return Err(ProtocolError::CorruptBatch { offset, reason: "batch too short" }),
        };
        let bytes = self.data.slice(self.pos..self.pos + total);
        self.pos += total;
        match magic {
            2 => batch::decode_v2(bytes, &self.opts, self.buffers.as_ref()).map(Some),
            0 | 1 => legacy::decode_entry(bytes, &self.opts).map(Some),
            _ => Err(ProtocolError::UnsupportedMagic { offset, magic }),
        }
    }
}

impl Iterator for RecordSet {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = self.next_batch();
        if r.is_err() {
            self.failed = true;
        }
        r.transpose()
    }
}
