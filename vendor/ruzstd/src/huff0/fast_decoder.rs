//! ferrokafka's patch (PATCHED.md): Huffman-coded literals decoded four streams at a
//! time, five symbols per refill.
//!
//! The reference loop (`literals_section_decoder`) decodes one symbol at a time: a
//! bounds-checked table lookup, a bit read that checks for a refill, and a `Vec::push`,
//! with the four streams of a section one after another. Here, as in zstd's
//! `HUF_decompress4X1` fast loop:
//!
//! - the four streams are decoded together, their windows in locals, so that their
//!   lookups overlap;
//! - each 64-bit window is refilled once per round and then gives five symbols (a code is
//!   at most 11 bits; after a refill at most 7 bits are used, and 5 × 11 ≤ 57);
//! - the bits used since a refill are counted by a marker bit (trailing zeros), so a
//!   stream's state is its window and its position;
//! - the number of rounds that need no bounds check is computed ahead;
//! - symbols go straight into each stream's segment of the pre-sized output;
//! - the table is widened to 2,048 entries, indexed by a window's top 11 bits.
//!
//! Near the start of a stream (fewer than 8 bytes left to load), and for single-stream
//! sections (under 1 KiB of literals), a careful loop reads exactly what the reference
//! reader reads: zero bits past the stream's first byte.
//!
//! The decoder gives up (returns `false`) on anything it does not decode exactly as the
//! reference does: a stream that is empty or whose last byte has no end mark, a stream
//! that ends before or after its segment (four-stream sections: every stream but the
//! last carries `(n + 3) / 4` literals), a table not built. The caller then runs the
//! reference loop on the same input, which gives its own result or error. So output and
//! errors are the reference's in every case, which `protocol/tests/zstd_vendored.rs`
//! checks against the unpatched release.

use super::huff0_decoder::{HuffmanTable, MAX_MAX_NUM_BITS};
use core::convert::{TryFrom, TryInto};

const TABLE_SIZE: usize = 1 << MAX_MAX_NUM_BITS;
const MASK: usize = TABLE_SIZE - 1;
/// Symbols decoded per stream between refills.
const PER_REFILL: usize = 5;

/// A Huffman-coded literals section's `N` streams (1 or 4) decoded into `out`, whose
/// length is the section's regenerated size. `false` when the caller must use the
/// reference loop. The streams lie end to end in `source`: stream `i` starts at
/// `starts[i]` and ends where the next starts (the last at the end of `source`).
pub(crate) fn decode<const N: usize>(
    table: &HuffmanTable,
    source: &[u8],
    starts: [usize; N],
    out: &mut [u8],
) -> bool {
    let Some(lookup) = widen(table) else {
        return false;
    };
    let mut streams = [Stream::EMPTY; N];
    for i in 0..N {
        let end = if i + 1 < N {
            starts[i + 1]
        } else {
            source.len()
        };
        match source
            .get(starts[i]..end)
            .and_then(|src| Stream::new(src, starts[i]))
        {
            Some(s) => streams[i] = s,
            None => return false,
        }
    }
    let seg = if N == 1 {
        out.len()
    } else {
        (out.len() + 3) / 4
    };
    if seg * (N - 1) > out.len() {
        return false;
    }
    let mut done = 0;
    if N == 4 && streams.iter().all(|s| s.fast) {
        if let (Ok(four), [o0, o1, o2, o3]) = (
            <&mut [Stream; 4]>::try_from(&mut streams[..]),
            segments4(out, seg),
        ) {
            done = fast4(&lookup, source, four, [o0, o1, o2, o3]);
        }
    }
    // Four-stream sections: every stream must end exactly at its segment's end (the
    // reference checks the bit count, and would otherwise cut the segments elsewhere).
    // A single stream may read past its first byte on its last code, as the reference
    // allows.
    for (i, s) in streams.iter().enumerate() {
        let seg_end = if i + 1 == N { out.len() } else { seg * (i + 1) };
        let Some(rest) = out.get_mut(seg * i + done..seg_end) else {
            return false;
        };
        if !careful(&lookup, &source[s.start..s.end], s.hi(), rest, N > 1) {
            return false;
        }
    }
    true
}

/// The table widened to 2,048 entries, indexed by a window's top 11 bits whatever the
/// longest code: entry = symbol << 8 | code length.
fn widen(table: &HuffmanTable) -> Option<[u16; TABLE_SIZE]> {
    let max_bits = u32::from(table.max_num_bits);
    let entries = table.entries();
    if max_bits == 0 || max_bits > u32::from(MAX_MAX_NUM_BITS) || entries.len() != 1 << max_bits {
        return None;
    }
    let mut lookup = [0u16; TABLE_SIZE];
    let scale = u32::from(MAX_MAX_NUM_BITS) - max_bits;
    for (i, slot) in lookup.iter_mut().enumerate() {
        let e = entries[i >> scale];
        *slot = u16::from(e.symbol) << 8 | u16::from(e.num_bits);
    }
    Some(lookup)
}

/// One stream's reader. `bits` holds `source[ip..ip + 8]` (little-endian) shifted left
/// by the bits used, with a marker bit below them, so that the bits used since the load
/// are its trailing zeros (zstd's fast loop). Bit 0 of a load is never read: after a
/// refill at most 7 + 4 × 11 bits are used before the last lookup of a round.
#[derive(Clone, Copy)]
struct Stream {
    start: usize,
    end: usize,
    ip: usize,
    bits: u64,
    /// Bits to read, for a stream too short for the fast loop.
    short_hi: isize,
    /// At least 8 bytes long: `ip` and `bits` are set.
    fast: bool,
}

impl Stream {
    const EMPTY: Stream = Stream {
        start: 0,
        end: 0,
        ip: 0,
        bits: 0,
        short_hi: 0,
        fast: false,
    };

    /// Positioned after the end mark (the zero bits and the first one bit at the top of
    /// the last byte); `None` when there is none.
    fn new(src: &[u8], start: usize) -> Option<Stream> {
        let last = *src.last()?;
        if last == 0 {
            return None;
        }
        let used = last.leading_zeros() + 1;
        let mut s = Stream {
            start,
            end: start + src.len(),
            short_hi: (src.len() * 8) as isize - used as isize,
            ..Stream::EMPTY
        };
        if let Some(at) = src.len().checked_sub(8) {
            s.ip = start + at;
            s.bits = (load(src, at) | 1) << used;
            s.fast = true;
        }
        Some(s)
    }

    /// Bits left to read.
    fn hi(&self) -> isize {
        if self.fast {
            ((self.ip - self.start) * 8 + 64) as isize - self.bits.trailing_zeros() as isize
        } else {
            self.short_hi
        }
    }
}

/// The first three segments of `seg` bytes, and the rest.
fn segments4(out: &mut [u8], seg: usize) -> [&mut [u8]; 4] {
    let (o0, rest) = out.split_at_mut(seg);
    let (o1, rest) = rest.split_at_mut(seg);
    let (o2, o3) = rest.split_at_mut(seg);
    [o0, o1, o2, o3]
}

/// The fast loop over four streams; returns the symbols decoded per stream.
fn fast4(
    lookup: &[u16; TABLE_SIZE],
    source: &[u8],
    streams: &mut [Stream; 4],
    outs: [&mut [u8]; 4],
) -> usize {
    let [o0, o1, o2, o3] = outs;
    let [mut b0, mut b1, mut b2, mut b3] = streams.map(|s| s.bits);
    let [mut p0, mut p1, mut p2, mut p3] = streams.map(|s| s.ip);
    let mut done = 0;
    loop {
        // Rounds that need no check: each leaves at least 8 bytes to load (a round moves
        // a window down at most 7) and room for 5 symbols per stream (the last segment
        // is the shortest).
        let mut rounds = (o3.len() - done) / PER_REFILL;
        for (s, p) in streams.iter().zip([p0, p1, p2, p3]) {
            rounds = rounds.min((p - s.start) / 7);
        }
        if rounds == 0 {
            break;
        }
        for _ in 0..rounds {
            let (Some(d0), Some(d1), Some(d2), Some(d3)) = (
                chunk(o0, done),
                chunk(o1, done),
                chunk(o2, done),
                chunk(o3, done),
            ) else {
                break;
            };
            for k in 0..PER_REFILL {
                d0[k] = step(lookup, &mut b0);
                d1[k] = step(lookup, &mut b1);
                d2[k] = step(lookup, &mut b2);
                d3[k] = step(lookup, &mut b3);
            }
            done += PER_REFILL;
            refill(source, &mut p0, &mut b0);
            refill(source, &mut p1, &mut b1);
            refill(source, &mut p2, &mut b2);
            refill(source, &mut p3, &mut b3);
        }
    }
    for (s, (b, p)) in streams
        .iter_mut()
        .zip([(b0, p0), (b1, p1), (b2, p2), (b3, p3)])
    {
        s.bits = b;
        s.ip = p;
    }
    done
}

#[inline(always)]
fn chunk(out: &mut [u8], at: usize) -> Option<&mut [u8; PER_REFILL]> {
    out.get_mut(at..)?.first_chunk_mut::<PER_REFILL>()
}

/// One symbol from a window (a code is at most 11 bits, read from the top).
#[inline(always)]
fn step(lookup: &[u16; TABLE_SIZE], bits: &mut u64) -> u8 {
    let entry = lookup[(*bits >> (64 - MAX_MAX_NUM_BITS)) as usize];
    *bits <<= entry & 0x3f;
    (entry >> 8) as u8
}

/// Moves a window down by the whole bytes it used and reloads it.
#[inline(always)]
fn refill(source: &[u8], ip: &mut usize, bits: &mut u64) {
    let used = bits.trailing_zeros();
    *ip -= (used >> 3) as usize;
    *bits = (load(source, *ip) | 1) << (used & 7);
}

/// `src[at..at + 8]`, little-endian (zero when out of range, which the callers rule out).
#[inline(always)]
fn load(src: &[u8], at: usize) -> u64 {
    match src.get(at..at + 8) {
        Some(b) => u64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
        None => 0,
    }
}

/// Decodes `out.len()` symbols, bit by bit as the reference reader does, from a stream
/// with `hi` bits left. Each symbol must start before the stream's end; afterwards the
/// stream must be used up exactly (`exact`) or at least.
fn careful(
    table: &[u16; TABLE_SIZE],
    src: &[u8],
    mut hi: isize,
    out: &mut [u8],
    exact: bool,
) -> bool {
    for slot in out.iter_mut() {
        if hi <= 0 {
            return false;
        }
        let entry = table[peek(src, hi as usize) & MASK];
        *slot = (entry >> 8) as u8;
        hi -= (entry & 0x3f) as isize;
    }
    if exact {
        hi == 0
    } else {
        hi <= 0
    }
}

/// The 11 bits below bit `hi` of `src` read as a little-endian number, zero bits below
/// bit 0 (what the reference reader returns past the stream's first byte).
fn peek(src: &[u8], hi: usize) -> usize {
    let n = MAX_MAX_NUM_BITS as usize;
    let (lo, pad) = if hi >= n { (hi - n, 0) } else { (0, n - hi) };
    let byte = lo / 8;
    let mut word = 0u32;
    for (i, b) in src.iter().skip(byte).take(3).enumerate() {
        word |= u32::from(*b) << (8 * i);
    }
    let width = n - pad;
    (((word >> (lo % 8)) as usize) & ((1 << width) - 1)) << pad
}
