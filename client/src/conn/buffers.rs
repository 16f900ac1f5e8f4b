//! The connection reader's receive buffer, with large allocations reused.
//!
//! Answers are read into one `BytesMut` and split off as frozen frames that the
//! caller keeps (a Fetch answer's records are slices of it, never copies). When the
//! next answer does not fit, `BytesMut::reserve` would allocate afresh, and every
//! page of a fresh multi-megabyte allocation is a page fault: profiled, about a
//! quarter of a consumer's CPU. Instead the buffer being replaced is kept as a
//! spare, and reused once every frame cut from it has been dropped.
//!
//! Memory: the buffer and at most [`SPARES`] spares per connection, each at most 1.25
//! times the largest answer received (itself bounded by `max_frame_size`); they go with
//! the connection. While a caller holds frames, their buffers would be held anyway.

use bytes::BytesMut;

/// Spare buffers kept per connection: one answer being read while the caller still
/// holds the previous one or two (a consumer's pipelined fetch).
const SPARES: usize = 2;
/// The smallest buffer allocated; answers smaller than this fit without rotating.
const POOLED_FROM: usize = 64 * 1024;
/// Room kept free before each read from the socket.
const MIN_READ: usize = 4096;

#[derive(Debug)]
pub(crate) struct ReadBuffer {
    pub(crate) buf: BytesMut,
    /// Capacity of `buf`'s allocation (a shared `BytesMut` shows only what is left of it).
    alloc: usize,
    /// Buffers replaced while frames cut from them were still held, with their capacity.
    spares: Vec<(BytesMut, usize)>,
}

impl ReadBuffer {
    pub(crate) fn new() -> Self {
        ReadBuffer { buf: BytesMut::with_capacity(POOLED_FROM), alloc: POOLED_FROM, spares: Vec::new() }
    }

    /// Before a read from the socket: room for at least [`MIN_READ`] bytes, so that
    /// `BytesMut` never allocates on its own.
    pub(crate) fn before_read(&mut self) {
        let room = self.buf.capacity() - self.buf.len();
        // The rest of a frame whose room was made already fits as it is.
        let fits = self.pending(usize::MAX).is_some_and(|total| self.buf.capacity() >= total);
        if room >= MIN_READ || (fits && room > 0) || self.buf.try_reclaim(MIN_READ) {
            return;
        }
        self.rotate(self.buf.len() + MIN_READ);
    }

    /// The whole size (prefix included) of the frame starting the buffer, if its prefix
    /// is there and the size is at most `max_frame_size`.
    fn pending(&self, max_frame_size: usize) -> Option<usize> {
        let prefix = self.buf.get(..4)?;
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        usize::try_from(size).ok().filter(|s| *s <= max_frame_size).map(|s| s + 4)
    }

    /// Makes room for the frame whose size prefix starts the buffer: in its own
    /// buffer when nobody holds that any more, else in a released spare, else in a
    /// fresh buffer. Sizes above `max_frame_size` are left for the frame decoder to refuse.
    pub(crate) fn make_room(&mut self, max_frame_size: usize) {
        let Some(total) = self.pending(max_frame_size) else { return };
        if self.buf.capacity() >= total || self.buf.try_reclaim(total - self.buf.len()) {
            return;
        }
        self.rotate(total);
    }

    /// Moves the bytes read so far into a buffer with room for `need`, and keeps the
    /// one replaced as a spare.
    fn rotate(&mut self, need: usize) {
        let mut reused = None;
        for i in 0..self.spares.len() {
            if self.spares[i].1 >= need && self.spares[i].0.try_reclaim(need) {
                reused = Some(self.spares.swap_remove(i));
                break;
            }
        }
        let (mut next, alloc) = reused.unwrap_or_else(|| {
            // A quarter more, so that the next answer of about the same size fits too.
            let alloc = need.max(POOLED_FROM);
            let alloc = alloc.saturating_add(alloc / 4);
            (BytesMut::with_capacity(alloc), alloc)
        });
        next.extend_from_slice(&self.buf);
        let mut old = std::mem::replace(&mut self.buf, next);
        let old_alloc = std::mem::replace(&mut self.alloc, alloc);
        old.clear();
        if self.spares.len() == SPARES {
            // Keep the larger ones.
            if let Some((i, _)) = self.spares.iter().enumerate().min_by_key(|(_, (_, cap))| *cap) {
                self.spares.swap_remove(i);
            }
        }
        self.spares.push((old, old_alloc));
    }

    #[cfg(test)]
    fn spares(&self) -> usize {
        self.spares.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer arrives as the reader sees it: its size prefix first (room is made
    /// then), its body later; then it is cut off as a frame.
    fn arrive(r: &mut ReadBuffer, len: usize, fill: u8) -> bytes::Bytes {
        r.before_read();
        r.buf.extend_from_slice(&(len as i32).to_be_bytes());
        r.make_room(64 << 20);
        assert!(r.buf.capacity() >= len + 4);
        r.buf.extend(std::iter::repeat_n(fill, len));
        let _ = r.buf.split_to(4);
        r.buf.split_to(len).freeze()
    }

    #[test]
    fn large_answers_reuse_a_released_buffer() {
        let mut r = ReadBuffer::new();
        // A 1 MiB answer: a new buffer, the old one kept.
        let first = arrive(&mut r, 1 << 20, 1);
        assert!(first.len() == 1 << 20 && first.iter().all(|b| *b == 1));
        let first_ptr = first.as_ptr();
        assert_eq!(r.spares(), 1);
        // The next answer comes while the first is held: another buffer.
        let second = arrive(&mut r, 1 << 20, 2);
        assert_ne!(second.as_ptr(), first_ptr);
        // The first is dropped: the third answer lands in its buffer, the second's bytes intact.
        drop(first);
        let third = arrive(&mut r, 1 << 20, 3);
        assert_eq!(third.as_ptr(), first_ptr, "the released buffer is reused");
        assert!(third.iter().all(|b| *b == 3) && second.iter().all(|b| *b == 2));
        assert!(r.spares() <= SPARES);
    }

    #[test]
    fn held_buffers_are_never_reused_and_spares_stay_bounded() {
        let mut r = ReadBuffer::new();
        let mut held = Vec::new();
        for i in 0..6u8 {
            held.push(arrive(&mut r, (1 << 20) + usize::from(i), i));
            assert!(r.spares() <= SPARES);
        }
        for (i, f) in held.iter().enumerate() {
            assert!(f.iter().all(|b| usize::from(*b) == i), "frame {i} overwritten");
        }
    }

    #[test]
    fn small_and_refused_sizes_are_left_alone() {
        let mut r = ReadBuffer::new();
        let f = arrive(&mut r, 100, 9);
        assert_eq!(f.len(), 100);
        assert_eq!(r.spares(), 0);
        r.buf.extend_from_slice(&(-1i32).to_be_bytes());
        r.make_room(64 << 20);
        r.buf.clear();
        r.buf.extend_from_slice(&(100i32 << 20).to_be_bytes());
        let cap = r.buf.capacity();
        r.make_room(64 << 20);
        assert_eq!(r.buf.capacity(), cap, "a frame above the maximum allocates nothing");
    }
}
