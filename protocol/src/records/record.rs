//! The record view handed to applications.

use bytes::Bytes;

use super::view::{HeaderViews, HeaderViewsIter};
use crate::varint::Cursor;

/// What a record's timestamp means (attribute bit 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Magic 0 data has no timestamp; `timestamp` is -1.
    NotAvailable,
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when it appended the batch.
    LogAppendTime,
}

/// One record, as a zero-copy view into fetched bytes.
///
/// `key`, `value` and the headers are slices of the response buffer (or of the
/// batch's decompressed buffer); cloning a `Record` copies no payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset in the partition.
    pub offset: i64,
    /// Timestamp in milliseconds since the epoch (-1 when not available).
    pub timestamp: i64,
    /// What `timestamp` means.
    pub timestamp_type: TimestampType,
    /// The key, `None` for a null key.
    pub key: Option<Bytes>,
    /// The value, `None` for a null value (a tombstone).
    pub value: Option<Bytes>,
    /// The record headers (empty before magic 2).
    pub headers: Headers,
}

impl Record {
    /// The value as UTF-8 text (Java's `StringDeserializer`): `None` for a null value.
    pub fn value_str(&self) -> Option<Result<&str, std::str::Utf8Error>> {
        self.value.as_deref().map(std::str::from_utf8)
    }

    /// The key as UTF-8 text: `None` for a null key.
    pub fn key_str(&self) -> Option<Result<&str, std::str::Utf8Error>> {
        self.key.as_deref().map(std::str::from_utf8)
    }
}

/// A record's headers, parsed lazily from the record bytes.
///
/// The header section was validated when the record was decoded, so iteration
/// cannot fail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    data: Bytes,
    count: u32,
}

impl Headers {
    pub(crate) fn new(data: Bytes, count: u32) -> Self {
        Headers { data, count }
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterates the headers in order.
    pub fn iter(&self) -> HeadersIter<'_> {
        HeadersIter { data: &self.data, inner: self.as_views().iter() }
    }

    /// The value of the last header named `key`, if any (`Some(None)` for a null value).
    pub fn last(&self, key: &str) -> Option<Option<Bytes>> {
        self.iter().filter(|h| h.key == key.as_bytes()).last().map(|h| h.value)
    }

    /// The headers as views borrowing this record's bytes.
    pub fn as_views(&self) -> HeaderViews<'_> {
        HeaderViews { data: &self.data, count: self.count }
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = Header;
    type IntoIter = HeadersIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One record header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Header name (UTF-8 by convention, not checked).
    pub key: Bytes,
    /// Header value, `None` for null.
    pub value: Option<Bytes>,
}

impl Header {
    /// The name as text, if it is valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }
}

/// Iterator over [`Headers`].
#[derive(Debug)]
pub struct HeadersIter<'a> {
    data: &'a Bytes,
    inner: HeaderViewsIter<'a>,
}

impl Iterator for HeadersIter<'_> {
    type Item = Header;

    fn next(&mut self) -> Option<Header> {
        let h = self.inner.next()?;
        Some(Header { key: self.data.slice_ref(h.key), value: h.value.map(|v| self.data.slice_ref(v)) })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// Validates `count` headers starting at the cursor; returns false if malformed.
pub(crate) fn skip_headers(c: &mut Cursor<'_>, count: u32) -> bool {
    for _ in 0..count {
        match c.nullable_bytes() {
            Some(Some(_)) => {}
            _ => return false,
        }
        if c.nullable_bytes().is_none() {
            return false;
        }
    }
    true
}
