//! Records as views that borrow from their batch: no refcount touched per record.
//!
//! A [`RecordView`] holds `&[u8]` slices of the batch's buffer (the fetched bytes,
//! or the batch's decompressed buffer). It lives as long as the borrow of the
//! [`Batch`](super::Batch) it came from. A caller that wants to keep a key or value
//! past that asks for it as `Bytes` ([`RecordView::key_bytes`],
//! [`RecordView::to_record`]): still no copy, one refcount increment then.

use std::fmt;

use bytes::Bytes;

use super::record::{Headers, Record, TimestampType};
use crate::varint::Cursor;

/// One record, borrowed from its batch.
///
/// Copying a view is free: it is a handful of integers and slices. Java's
/// `ConsumerRecord` and librdkafka's `rd_kafka_message_t` hand out the same fields;
/// here nothing is allocated or reference-counted until [`key_bytes`](Self::key_bytes),
/// [`value_bytes`](Self::value_bytes) or [`to_record`](Self::to_record) is called.
#[derive(Clone, Copy)]
pub struct RecordView<'a> {
    /// Absolute offset in the partition.
    pub offset: i64,
    /// Timestamp in milliseconds since the epoch (-1 when not available).
    pub timestamp: i64,
    /// What `timestamp` means.
    pub timestamp_type: TimestampType,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: HeaderViews<'a>,
    owner: Owner<'a>,
}

/// Where the slices of a view live, so they can be turned into `Bytes` without a copy.
#[derive(Clone, Copy)]
pub(crate) enum Owner<'a> {
    /// A v2 batch's records section.
    Buffer(&'a Bytes),
    /// A record decoded already (legacy message sets, or [`Record::view`]).
    Record(&'a Record),
}

impl<'a> RecordView<'a> {
    pub(crate) fn new(
        offset: i64,
        timestamp: i64,
        timestamp_type: TimestampType,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        headers: HeaderViews<'a>,
        owner: Owner<'a>,
    ) -> Self {
        RecordView { offset, timestamp, timestamp_type, key, value, headers, owner }
    }

    /// The key, `None` for a null key.
    #[inline]
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// The value, `None` for a null value (a tombstone).
    #[inline]
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }

    /// The key as UTF-8 text: `None` for a null key.
    pub fn key_str(&self) -> Option<Result<&'a str, std::str::Utf8Error>> {
        self.key.map(std::str::from_utf8)
    }

    /// The value as UTF-8 text (Java's `StringDeserializer`): `None` for a null value.
    pub fn value_str(&self) -> Option<Result<&'a str, std::str::Utf8Error>> {
        self.value.map(std::str::from_utf8)
    }

    /// The record's headers (empty before magic 2).
    #[inline]
    pub fn headers(&self) -> HeaderViews<'a> {
        self.headers
    }

    /// The key as `Bytes` sharing the batch's buffer (no copy), to keep past the batch.
    pub fn key_bytes(&self) -> Option<Bytes> {
        match self.owner {
            Owner::Buffer(b) => self.key.map(|k| b.slice_ref(k)),
            Owner::Record(r) => r.key.clone(),
        }
    }

    /// The value as `Bytes` sharing the batch's buffer (no copy), to keep past the batch.
    pub fn value_bytes(&self) -> Option<Bytes> {
        match self.owner {
            Owner::Buffer(b) => self.value.map(|v| b.slice_ref(v)),
            Owner::Record(r) => r.value.clone(),
        }
    }

    /// An owned [`Record`] whose key, value and headers share the batch's buffer.
    #[inline]
    pub fn to_record(&self) -> Record {
        match self.owner {
            Owner::Record(r) => r.clone(),
            Owner::Buffer(b) => Record {
                offset: self.offset,
                timestamp: self.timestamp,
                timestamp_type: self.timestamp_type,
                key: self.key.map(|k| b.slice_ref(k)),
                value: self.value.map(|v| b.slice_ref(v)),
                headers: if self.headers.count == 0 {
                    Headers::default()
                } else {
                    Headers::new(b.slice_ref(self.headers.data), self.headers.count)
                },
            },
        }
    }
}

impl fmt::Debug for RecordView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordView")
            .field("offset", &self.offset)
            .field("timestamp", &self.timestamp)
            .field("timestamp_type", &self.timestamp_type)
            .field("key", &self.key.map(Escaped))
            .field("value", &self.value.map(Escaped))
            .field("headers", &self.headers.len())
            .finish()
    }
}

/// Prints bytes as `b"…"` with escapes, as `Bytes`' `Debug` does.
struct Escaped<'a>(&'a [u8]);

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl Record {
    /// This record as a view (for code written against [`RecordView`]).
    pub fn view(&self) -> RecordView<'_> {
        RecordView {
            offset: self.offset,
            timestamp: self.timestamp,
            timestamp_type: self.timestamp_type,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: self.headers.as_views(),
            owner: Owner::Record(self),
        }
    }
}

/// A record's headers, borrowed from its batch. The header section was validated
/// when the record was decoded, so iteration cannot fail.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeaderViews<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) count: u32,
}

impl<'a> HeaderViews<'a> {
    /// Number of headers.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterates the headers in order.
    pub fn iter(&self) -> HeaderViewsIter<'a> {
        HeaderViewsIter { data: self.data, pos: 0, left: self.count }
    }

    /// The value of the last header named `key`, if any (`Some(None)` for a null value).
    pub fn last(&self, key: &str) -> Option<Option<&'a [u8]>> {
        self.iter().filter(|h| h.key == key.as_bytes()).last().map(|h| h.value)
    }
}

impl<'a> IntoIterator for HeaderViews<'a> {
    type Item = HeaderView<'a>;
    type IntoIter = HeaderViewsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One header, borrowed from its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderView<'a> {
    /// Header name (UTF-8 by convention, not checked).
    pub key: &'a [u8],
    /// Header value, `None` for null.
    pub value: Option<&'a [u8]>,
}

/// Iterator over [`HeaderViews`].
#[derive(Clone, Debug)]
pub struct HeaderViewsIter<'a> {
    data: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> Iterator for HeaderViewsIter<'a> {
    type Item = HeaderView<'a>;

    fn next(&mut self) -> Option<HeaderView<'a>> {
        if self.left == 0 {
            return None;
        }
        let mut c = Cursor::new(self.data, self.pos);
        let key = c.nullable_bytes()??;
        let value = c.nullable_bytes()?;
        self.pos = c.pos;
        self.left -= 1;
        let value = match value {
            Some(r) => Some(self.data.get(r)?),
            None => None,
        };
        Some(HeaderView { key: self.data.get(key)?, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}
