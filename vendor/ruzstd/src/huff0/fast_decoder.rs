//! ferrokafka's patch (PATCHED.md): Huffman-coded literals decoded several streams at a
//! time, several symbols per refill.
//!
//! The reference loop (`literals_section_decoder`) decodes one symbol at a time: a
//! bounds-checked table lookup, a bit read that checks for a refill, and a `Vec::push`,
//! with the four streams of a section one after another. Here, as in zstd's
//! `HUF_decompress4X1`:
//!
//! - the streams are decoded together, their states in locals, so their lookups overlap;
//! - each stream's 64-bit window is refilled once per round, then gives five symbols
//!   (a code is at most 11 bits; after a refill at most 7 bits are used, and 5 × 11 ≤ 57);
//! - symbols go straight into the stream's own segment of a pre-sized output;
//! - the table is copied into a fixed 2,048-entry array, indexed under a mask.
//!
//! Near the start of a stream (fewer than 8 bytes left to load), a careful loop takes
//! over that reads exactly what the reference reader reads: zero bits past the stream's
//! first byte.
//!
//! The decoder gives up (returns `false`) on anything it does not decode exactly as the
//! reference does: a stream that is empty or whose last byte has no end mark, a stream
//! that ends before or after its segment (four-stream sections: every stream but the
//! last carries `(n + 3) / 4` literals), a table not built. The caller then runs the
//! reference loop on the same input, which gives its own result or error. So output and
//! errors are the reference's in every case, which `protocol/tests/zstd_vendored.rs`
//! checks against the unpatched release and C libzstd.

use super::huff0_decoder::{HuffmanTable, MAX_MAX_NUM_BITS};
use core::convert::TryInto;

const TABLE_SIZE: usize = 1 << MAX_MAX_NUM_BITS;
const MASK: usize = TABLE_SIZE - 1;
/// Symbols decoded per stream between refills.
const PER_REFILL: usize = 5;

/// Decodes a literals section's `N` streams (1 or 4) into `out`, whose length is the
/// section's regenerated size. `false` when the caller must use the reference loop.
pub(crate) fn decode<const N: usize>(table: &HuffmanTable, streams: [&[u8]; N], out: &mut [u8]) -> bool {
    let max_bits = u32::from(table.max_num_bits);
    let entries = table.entries();
    if max_bits == 0 || max_bits > u32::from(MAX_MAX_NUM_BITS) || entries.len() != 1 << max_bits {
        return false;
    }
    // Indexed by the window's top 11 bits whatever the table's width: entry = symbol
    // << 8 | code length.
    let mut lookup = [0u16; TABLE_SIZE];
    let scale = MAX_MAX_NUM_BITS as u32 - max_bits;
    for (i, slot) in lookup.iter_mut().enumerate() {
        let e = entries[i >> scale];
        *slot = u16::from(e.symbol) << 8 | u16::from(e.num_bits);
    }
    let Some(mut outs) = segments::<N>(out) else {
        return false;
    };
    // Each stream's window: `bits` holds `src[ip..ip + 8]` (little-endian) shifted left
    // by the bits used, with a marker bit below them, so that the bits used since the
    // load are its trailing zeros (zstd's fast loop). Bit 0 of the load is never read:
    // after a refill at most 7 + 4 × 11 bits are used before the last lookup of a round.
    let mut bits = [0u64; N];
    let mut ip = [0usize; N];
    let mut hi = [0isize; N];
    for i in 0..N {
        let src = streams[i];
        match src.last() {
            Some(&last) if last != 0 => {
                let used = last.leading_zeros() + 1;
                hi[i] = (src.len() * 8) as isize - used as isize;
                // Streams too short for the fast loop leave it all to the careful one.
                if let Some(at) = src.len().checked_sub(8) {
                    ip[i] = at;
                    bits[i] = (load(src, at) | 1) << used;
                }
            }
            _ => return false,
        }
    }
    let fast = streams.iter().all(|s| s.len() >= 8);
    let mut done = 0;
    while fast {
        // Rounds that need no check: each leaves at least 8 bytes to load (a round moves
        // a window down by at most 7) and room for 5 symbols per stream.
        let mut rounds = (outs[N - 1].len() - done) / PER_REFILL;
        for i in 0..N {
            rounds = rounds.min(ip[i] / 7);
        }
        if rounds == 0 {
            break;
        }
        for _ in 0..rounds {
            for k in 0..PER_REFILL {
                for i in 0..N {
                    let entry = lookup[(bits[i] >> (64 - MAX_MAX_NUM_BITS)) as usize];
                    bits[i] <<= entry & 0x3f;
                    if let Some(slot) = outs[i].get_mut(done + k) {
                        *slot = (entry >> 8) as u8;
                    }
                }
            }
            done += PER_REFILL;
            for i in 0..N {
                let used = bits[i].trailing_zeros();
                ip[i] -= (used >> 3) as usize;
                bits[i] = (load(streams[i], ip[i]) | 1) << (used & 7);
            }
        }
    }

    // Four-stream sections: every stream must end exactly at its segment's end (the
    // reference checks the bit count, and would otherwise cut the segments elsewhere).
    // A single stream may read past its first byte on its last code, as the reference
    // allows.
    let exact = N > 1;
    for i in 0..N {
        if fast {
            hi[i] = (ip[i] * 8 + 64) as isize - bits[i].trailing_zeros() as isize;
        }
        let Some(rest) = outs[i].get_mut(done..) else {
            return false;
        };
        if !careful(&lookup, streams[i], hi[i], rest, exact) {
            return false;
        }
    }
    true
}

/// `src[at..at + 8]`, little-endian (zero when out of range, which the callers rule out).
#[inline(always)]
fn load(src: &[u8], at: usize) -> u64 {
    match src.get(at..at + 8) {
        Some(b) => u64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
        None => 0,
    }
}

/// Splits `out` into the streams' segments: one, or four of which the first three hold
/// `(len + 3) / 4` literals.
fn segments<const N: usize>(out: &mut [u8]) -> Option<[&mut [u8]; N]> {
    let mut parts: [&mut [u8]; N] = core::array::from_fn(|_| &mut [][..]);
    let seg = if N == 1 { out.len() } else { (out.len() + 3) / 4 };
    if seg.checked_mul(N - 1)? > out.len() {
        return None;
    }
    let mut rest = out;
    for (i, part) in parts.iter_mut().enumerate() {
        let take = if i + 1 == N { rest.len() } else { seg };
        let (head, tail) = core::mem::take(&mut rest).split_at_mut(take);
        *part = head;
        rest = tail;
    }
    Some(parts)
}

/// Decodes `out.len()` symbols, bit by bit as the reference reader does, from a stream
/// with `hi` bits left. Each symbol must start before the stream's end; afterwards the
/// stream must be used up exactly (`exact`) or at least.
fn careful(table: &[u16; TABLE_SIZE], src: &[u8], mut hi: isize, out: &mut [u8], exact: bool) -> bool {
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
