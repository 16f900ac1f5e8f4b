//! Zig-zag varints as used inside v2 records, and a bounds-checked byte cursor.
//!
//! Every read returns `None` when the input is short or malformed; callers turn
//! that into an error carrying the batch's offset.

use bytes::BufMut;

/// A read position over a byte slice. Reads never panic.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Self {
        Cursor { data, pos }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    #[inline]
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let end = self.pos.checked_add(N)?;
        let bytes: [u8; N] = self.data.get(self.pos..end)?.try_into().ok()?;
        self.pos = end;
        Some(bytes)
    }

    #[inline]
    pub(crate) fn i8(&mut self) -> Option<i8> {
        self.take::<1>().map(i8::from_be_bytes)
    }
    pub(crate) fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }
    pub(crate) fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_be_bytes)
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }

    /// An unsigned LEB128 value of at most `max_bytes` bytes.
    #[inline]
    fn uvarint(&mut self, max_bytes: usize) -> Option<u64> {
        // Most varints inside records (lengths, deltas, counts) take one byte.
        let first = *self.data.get(self.pos)?;
        if first < 0x80 {
            self.pos += 1;
            return Some(u64::from(first));
        }
        self.uvarint_long(max_bytes)
    }

    fn uvarint_long(&mut self, max_bytes: usize) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = *self.data.get(self.pos)?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A zig-zag varint (at most 5 bytes) as a signed 32-bit value.
    #[inline]
    pub(crate) fn varint(&mut self) -> Option<i32> {
        let raw = u32::try_from(self.uvarint(5)?).ok()?;
        Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zig-zag varlong (at most 10 bytes).
    #[inline]
    pub(crate) fn varlong(&mut self) -> Option<i64> {
        let raw = self.uvarint(10)?;
        Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A varint length (-1 for null) followed by that many bytes: the range they occupy.
    #[inline]
    pub(crate) fn nullable_bytes(&mut self) -> Option<Option<std::ops::Range<usize>>> {
        let len = self.varint()?;
        if len == -1 {
            return Some(None);
        }
        let len = usize::try_from(len).ok()?;
        self.range(len).map(Some)
    }

    /// The next `len` bytes as a range, if present.
    #[inline]
    pub(crate) fn range(&mut self, len: usize) -> Option<std::ops::Range<usize>> {
        let end = self.pos.checked_add(len)?;
        if end > self.data.len() {
            return None;
        }
        let r = self.pos..end;
        self.pos = end;
        Some(r)
    }
}

/// Appends `v` as a zig-zag varint.
pub fn put_varint(buf: &mut impl BufMut, v: i32) {
    put_uvarint(buf, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Appends `v` as a zig-zag varlong.
pub fn put_varlong(buf: &mut impl BufMut, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_uvarint(buf: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Reads a zig-zag varint from the front of `data`: `(value, bytes used)`.
pub fn read_varint(data: &[u8]) -> Option<(i32, usize)> {
    let mut c = Cursor::new(data, 0);
    c.varint().map(|v| (v, c.pos))
}

/// Reads a zig-zag varlong from the front of `data`: `(value, bytes used)`.
pub fn read_varlong(data: &[u8]) -> Option<(i64, usize)> {
    let mut c = Cursor::new(data, 0);
    c.varlong().map(|v| (v, c.pos))
}

/// Number of bytes `v` takes as a zig-zag varint.
pub fn varint_len(v: i32) -> usize {
    let raw = ((v << 1) ^ (v >> 31)) as u32;
    (32 - raw.leading_zeros() as usize).max(1).div_ceil(7)
}

/// Number of bytes `v` takes as a zig-zag varlong.
pub fn varlong_len(v: i64) -> usize {
    let raw = ((v << 1) ^ (v >> 63)) as u64;
    (64 - raw.leading_zeros() as usize).max(1).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        let cases: &[(i32, &[u8])] = &[
            (0, &[0]),
            (-1, &[1]),
            (1, &[2]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for (v, enc) in cases {
            let mut b = Vec::new();
            put_varint(&mut b, *v);
            assert_eq!(&b[..], *enc, "encoding {v}");
            assert_eq!(read_varint(enc), Some((*v, enc.len())));
            assert_eq!(varint_len(*v), enc.len());
        }
    }

    #[test]
    fn malformed_varints() {
        assert_eq!(read_varint(&[]), None);
        assert_eq!(read_varint(&[0x80]), None, "unterminated");
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), None, "6 bytes");
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f]), None, "over 32 bits");
        assert_eq!(read_varlong(&[0xff; 11]), None);
    }
}
