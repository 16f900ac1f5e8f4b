//! The vendored ruzstd (vendor/ruzstd/PATCHED.md: a faster Huffman literal decoder)
//! against the unpatched 0.8.3 release and C libzstd (dev-dependencies only).
//!
//! - Valid frames, from C libzstd at several levels and from ruzstd's encoder, over data
//!   chosen to give every Huffman table width (1 to 11 bits), one- and four-stream
//!   literal sections, and sizes around the four streams' segment boundaries: all three
//!   decoders give back the input.
//! - Damaged frames (bits flipped, bytes replaced, frames cut short), anywhere in the
//!   frame or aimed at the Huffman streams and their jump table: the vendored decoder
//!   gives exactly what the release gives, output or error message.
//!
//! - Damaged frames that carry a content checksum: where C libzstd accepts one,
//!   ferrokafka's zstd path gives the same bytes, and it refuses what C refuses.
//!
//! C libzstd is not an oracle for damaged frames: without a checksum, the release and
//! C libzstd can both accept a frame whose jump table was moved and give different
//! bytes (the release cuts the four streams where their bits end, C at fixed segment
//! sizes). The vendored decoder keeps the release's behaviour; Kafka's batch CRC
//! refuses such data before it is decompressed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ferrokafka_protocol::compression::compress;
use ferrokafka_protocol::Compression;

#[path = "common/realistic.rs"]
mod realistic;
#[path = "common/rng.rs"]
mod rng;

use rng::Rng;

const LIMIT: usize = 1 << 22;

type Outcome = Result<Vec<u8>, String>;

/// A decoder function over one ruzstd crate (the two share their API): the frame
/// decoded through `StreamingDecoder`, at most `LIMIT` bytes, a panic as an outcome.
macro_rules! ruzstd_decoder {
    ($name:ident, $krate:ident) => {
        fn $name(frame: &[u8]) -> Outcome {
            catch_unwind(AssertUnwindSafe(|| {
                let mut decoder = $krate::decoding::FrameDecoder::new();
                let mut out = Vec::new();
                $krate::decoding::StreamingDecoder::new_with_decoder(frame, &mut decoder)
                    .map_err(|e| e.to_string())?
                    .take(LIMIT as u64)
                    .read_to_end(&mut out)
                    .map_err(|e| e.to_string())?;
                Ok(out)
            }))
            .unwrap_or_else(|_| Err("panic".into()))
        }
    };
}

ruzstd_decoder!(vendored, ruzstd);
ruzstd_decoder!(upstream, ruzstd_upstream);

fn c_libzstd(frame: &[u8]) -> Outcome {
    zstd::bulk::decompress(frame, LIMIT).map_err(|e| e.to_string())
}

/// `len` bytes over an alphabet of `symbols`, each symbol about twice as likely as the
/// next (`skew`) or all equally likely: skewed alphabets give long codes (up to the
/// 11-bit limit), small flat ones short codes.
fn symbols(rng: &mut Rng, len: usize, symbols: usize, skew: bool) -> Vec<u8> {
    (0..len)
        .map(|_| {
            let s = if skew { (rng.next().leading_zeros() as usize).min(symbols - 1) } else { rng.below(symbols) };
            (s * 251 / symbols.max(1)) as u8 ^ 0x5a
        })
        .collect()
}

fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut out = vec![
        ("realistic 8800 records".to_string(), realistic::records_section(8_800, 7)),
        ("realistic 100 records".to_string(), realistic::records_section(100, 11)),
        ("realistic 9 records".to_string(), realistic::records_section(9, 13)),
    ];
    for len in [0, 1, 7, 100, 255, 256, 257, 1_000, 1_023, 1_024, 1_025, 1_026, 1_027, 4_099, 65_536, 131_075, 300_001]
    {
        for (alphabet, skew) in [(2, false), (3, true), (5, false), (16, true), (62, false), (200, true), (256, false)]
        {
            out.push((
                format!("{len} bytes over {alphabet} symbols, skew {skew}"),
                symbols(&mut rng, len, alphabet, skew),
            ));
        }
    }
    out
}

#[test]
fn valid_frames_decode_to_their_input_in_all_three() {
    let mut frames = 0;
    for (name, data) in inputs() {
        let mut made = vec![("ruzstd fastest".to_string(), compress(Compression::Zstd, &data).unwrap())];
        for level in [-5, 1, 3, 9, 19] {
            if data.len() > 70_000 && level > 9 {
                continue; // slow to make, and level 9 already covers the long inputs
            }
            made.push((format!("C level {level}"), zstd::bulk::compress(&data, level).unwrap()));
        }
        for (how, frame) in made {
            frames += 1;
            let want = Ok(data.clone());
            assert!(vendored(&frame) == want, "vendored ruzstd: {name}, {how}");
            assert!(upstream(&frame) == want, "ruzstd 0.8.3: {name}, {how}");
            assert!(c_libzstd(&frame) == want, "C libzstd: {name}, {how}");
        }
    }
    assert!(frames > 600, "{frames} frames");
}

#[test]
fn damaged_frames_give_what_the_release_gives() {
    let mut rng = Rng(0xfeed_f00d_dead_beef);
    let mut bases = Vec::new();
    for (_, data) in inputs().into_iter().filter(|(_, d)| (256..=20_000).contains(&d.len())) {
        bases.push(zstd::bulk::compress(&data, 3).unwrap());
        bases.push(compress(Compression::Zstd, &data).unwrap());
    }
    bases.push(zstd::bulk::compress(&realistic::records_section(120, 5), 1).unwrap());
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..2_500 {
        let mut frame = bases[case % bases.len()].clone();
        // Past the frame header (about 6 bytes), where the literals and sequences are.
        let at = 6 + rng.below(frame.len().saturating_sub(6));
        match rng.below(4) {
            0 => frame[at] ^= 1 << rng.below(8),
            1 => frame[at] = rng.next() as u8,
            2 => frame.truncate(at),
            _ => {
                frame[at] ^= 1 << rng.below(8);
                let again = 6 + rng.below(frame.len() - 6);
                frame[again] = rng.next() as u8;
            }
        }
        let ours = vendored(&frame);
        assert!(ours == upstream(&frame), "case {case}: the vendored decoder differs from the release");
        match ours {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(accepted > 100 && refused > 100, "accepted {accepted}, refused {refused}");
}

/// The byte range of the first block's Huffman-coded literal streams, jump table
/// included (RFC 8878, 3.1.1 and 3.1.1.3.1), when that block has them.
fn literal_streams(frame: &[u8]) -> Option<std::ops::Range<usize>> {
    let fhd = *frame.get(4)?;
    let single_segment = fhd >> 5 & 1 == 1;
    let mut at = 5 + usize::from(!single_segment) + [0, 1, 2, 4][usize::from(fhd & 3)];
    at += match fhd >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let block = u32::from_le_bytes([*frame.get(at)?, *frame.get(at + 1)?, *frame.get(at + 2)?, 0]);
    if block >> 1 & 3 != 2 {
        return None; // not a compressed block
    }
    at += 3;
    let b0 = *frame.get(at)?;
    if b0 & 3 != 2 {
        return None; // raw, RLE or treeless literals
    }
    let mut word = [0u8; 8];
    let header = match b0 >> 2 & 3 {
        0 | 1 => 3,
        2 => 4,
        _ => 5,
    };
    word[..header].copy_from_slice(frame.get(at..at + header)?);
    let v = u64::from_le_bytes(word);
    let size_bits = [10, 10, 14, 18][usize::from(b0 >> 2 & 3)];
    let compressed = (v >> (4 + size_bits) & ((1 << size_bits) - 1)) as usize;
    let start = at + header;
    let h = *frame.get(start)?;
    let tree = if h < 128 { 1 + usize::from(h) } else { 1 + (usize::from(h) - 127).div_ceil(2) };
    let range = start + tree..start + compressed;
    (range.end <= frame.len() && range.start < range.end).then_some(range)
}

#[test]
fn damaged_huffman_streams_give_what_the_release_gives() {
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let mut bases = Vec::new();
    for (_, data) in inputs().into_iter().filter(|(_, d)| (256..=40_000).contains(&d.len())) {
        for frame in [zstd::bulk::compress(&data, 3).unwrap(), compress(Compression::Zstd, &data).unwrap()] {
            if let Some(streams) = literal_streams(&frame) {
                bases.push((frame, streams));
            }
        }
    }
    assert!(bases.len() > 40, "{} frames with Huffman-coded literals", bases.len());
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..3_000 {
        let (base, streams) = &bases[case % bases.len()];
        let mut frame = base.clone();
        let at = streams.start + rng.below(streams.len());
        match rng.below(4) {
            // A jump table entry (when there are four streams) moved by a little.
            0 if streams.len() > 6 => {
                let j = streams.start + 2 * rng.below(3);
                let v = u16::from_le_bytes([frame[j], frame[j + 1]]);
                let d = 1 + rng.below(3) as u16;
                let v = if rng.below(2) == 0 { v.wrapping_add(d) } else { v.wrapping_sub(d) };
                frame[j..j + 2].copy_from_slice(&v.to_le_bytes());
            }
            1 => frame[at] = rng.next() as u8,
            _ => frame[at] ^= 1 << rng.below(8),
        }
        let ours = vendored(&frame);
        assert!(ours == upstream(&frame), "case {case}: the vendored decoder differs from the release");
        match ours {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(accepted > 100 && refused > 100, "accepted {accepted}, refused {refused}");
}

/// One whole frame that carries a content checksum (RFC 8878, 3.1.1.1.1): only then
/// does C libzstd accepting it vouch for its output.
fn one_checksummed_frame(frame: &[u8]) -> bool {
    frame.len() > 4
        && frame[..4] == [0x28, 0xb5, 0x2f, 0xfd]
        && frame[4] & 4 != 0
        && zstd::zstd_safe::find_frame_compressed_size(frame) == Ok(frame.len())
}

/// Damaged frames that carry a content checksum, through ferrokafka's zstd path (the
/// vendored decoder, then the checksum and content size checks) and C libzstd:
/// - where C accepts one, ferrokafka gives the same bytes;
/// - whatever ferrokafka accepts decodes to the undamaged frame's content. It is more
///   lenient than C in one way: it ignores the reserved bits of a sequences section
///   header, as the release does, where C refuses the frame. The content is intact
///   (the checksum vouches for it), so the difference is kept.
///
/// This found that a damaged content size field went unnoticed: the release does not
/// compare it with what it decoded; `compression.rs` now does, as C does.
#[test]
fn damaged_checksummed_frames_agree_with_c_libzstd() {
    let mut rng = Rng(0x5eed_c0de_0bad_f00d);
    let mut c = zstd::bulk::Compressor::new(3).unwrap();
    c.include_checksum(true).unwrap();
    let mut bases = Vec::new();
    let mut data: Vec<Vec<u8>> =
        inputs().into_iter().map(|(_, d)| d).filter(|d| (64..=20_000).contains(&d.len())).collect();
    data.push(realistic::records_section(120, 5));
    for d in data {
        let frame = c.compress(&d).unwrap();
        assert!(one_checksummed_frame(&frame));
        bases.push((frame, d));
    }
    let (mut same, mut lenient, mut refused) = (0, 0, 0);
    for case in 0..20_000 {
        let (base, content) = &bases[case % bases.len()];
        let mut frame = base.clone();
        let at = 6 + rng.below(frame.len().saturating_sub(6));
        match rng.below(3) {
            0 => frame[at] ^= 1 << rng.below(8),
            1 => frame[at] = rng.next() as u8,
            _ => frame.truncate(at),
        }
        if !one_checksummed_frame(&frame) {
            continue;
        }
        let ours = ferrokafka_protocol::compression::decompress(Compression::Zstd, &frame, LIMIT, 0);
        if let Ok(got) = &ours {
            assert!(got == content, "case {case}: ferrokafka accepts a damaged frame and gives other content");
        }
        match (c_libzstd(&frame), ours) {
            (Ok(want), Ok(got)) => {
                assert!(got == want, "case {case}: C libzstd and ferrokafka give different bytes");
                same += 1;
            }
            (Ok(_), Err(e)) => {
                panic!("case {case}: C libzstd accepts a checksummed frame that ferrokafka refuses: {e}")
            }
            (Err(_), Ok(_)) => lenient += 1,
            (Err(_), Err(_)) => refused += 1,
        }
    }
    eprintln!("same {same}, lenient {lenient}, refused {refused}");
    // Damage to a checksummed frame is nearly always refused: few cases are compared.
    assert!(same > 30 && refused > 10_000, "same {same}, lenient {lenient}, refused {refused}");
    // The reserved bits are one bit pair in a frame of hundreds of bytes.
    assert!(lenient <= same / 4, "same {same}, lenient {lenient}, refused {refused}");
}

/// A frame whose Frame_Content_Size field was changed decodes to its content all the
/// same (the release never compares the two); ferrokafka refuses it, as C does.
#[test]
fn a_wrong_content_size_is_refused() {
    let data = realistic::records_section(40, 9);
    let frame = zstd::bulk::compress(&data, 3).unwrap();
    let fhd = frame[4];
    assert!(fhd >> 6 != 0 || fhd & 0x20 != 0, "C writes the content size");
    // The field follows the descriptor and, without the single-segment flag, the window
    // descriptor; no dictionary id at level 3.
    let at = 5 + usize::from(fhd & 0x20 == 0);
    let mut bad = frame.clone();
    bad[at] ^= 1;
    assert_eq!(vendored(&bad), Ok(data.clone()), "ruzstd alone does not notice");
    assert!(c_libzstd(&bad).is_err());
    let err = ferrokafka_protocol::compression::decompress(Compression::Zstd, &bad, LIMIT, 7).unwrap_err().to_string();
    assert!(err.contains("announces"), "{err}");
    let ok = ferrokafka_protocol::compression::decompress(Compression::Zstd, &frame, LIMIT, 7).unwrap();
    assert_eq!(ok, data);
}

/// zstd-rs issue 116: two 128 KiB blocks of random bytes, the second the first shifted.
/// The release's encoder writes a match of 65,539 to 131,074 bytes 32,768 bytes short;
/// the vendored copy carries upstream's fix (9187c53). At the Fastest level (the only
/// one 0.8.3 has, and the producer's) the matcher's window is one 128 KiB slice, so no
/// match gets that long and this passes with or without the fix (checked): it guards
/// the producer's round trip on such data against an upgrade that widens the window.
#[test]
fn long_matches_round_trip_through_the_encoder() {
    let mut rng = Rng(0x5eed_0116);
    let first: Vec<u8> = (0..1 << 17).map(|_| rng.next() as u8).collect();
    for shift in [8, 1_000, 40_000] {
        let mut data = first.clone();
        data.extend_from_slice(&first[shift..]);
        data.extend_from_slice(&first[..shift]);
        let frame = compress(Compression::Zstd, &data).unwrap();
        assert!(c_libzstd(&frame) == Ok(data.clone()), "C libzstd, shift {shift}");
        assert!(vendored(&frame) == Ok(data.clone()), "vendored ruzstd, shift {shift}");
    }
}

/// ferrokafka's zstd path compares a frame's content checksum (when it has one) with the
/// output's, as C libzstd does: ruzstd computes it but leaves the comparison to callers.
#[test]
fn content_checksums_are_checked() {
    let data = realistic::records_section(300, 3);
    let mut c = zstd::bulk::Compressor::new(3).unwrap();
    c.include_checksum(true).unwrap();
    let frame = c.compress(&data).unwrap();
    let decompress = |f: &[u8]| ferrokafka_protocol::compression::decompress(Compression::Zstd, f, LIMIT, 42);
    assert_eq!(decompress(&frame).unwrap(), data);

    let mut bad = frame.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x40; // the stored checksum (the frame's last 4 bytes)
    assert!(vendored(&bad) == Ok(data.clone()), "ruzstd alone does not compare");
    assert!(c_libzstd(&bad).is_err());
    let err = decompress(&bad).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch") && err.contains("42"), "{err}");

    // Without a checksum (what Kafka's producers write) nothing is compared.
    let plain = zstd::bulk::compress(&data, 3).unwrap();
    assert_eq!(decompress(&plain).unwrap(), data);
}
