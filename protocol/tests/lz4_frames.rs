//! Our LZ4 frame decoder against lz4_flex's `FrameDecoder`, on every frame layout
//! lz4_flex writes, and on damaged frames.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};

use ferrokafka_protocol::compression::{decompress, decompress_into};
use ferrokafka_protocol::Compression;
use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};
use proptest::prelude::*;

/// Data that compresses (runs and repeats) with some noise.
fn data() -> impl Strategy<Value = Vec<u8>> {
    (proptest::collection::vec((any::<u8>(), 1usize..400, any::<bool>()), 0..1200)).prop_map(|parts| {
        let mut out = Vec::new();
        for (b, n, noise) in parts {
            if noise {
                out.extend((0..n).map(|i| b.wrapping_mul(31).wrapping_add(i as u8 ^ 0x5a)));
            } else {
                out.extend(std::iter::repeat_n(b, n));
            }
        }
        out
    })
}

fn info() -> impl Strategy<Value = FrameInfo> {
    let size = prop_oneof![
        Just(BlockSize::Max64KB),
        Just(BlockSize::Max256KB),
        Just(BlockSize::Max1MB),
        Just(BlockSize::Max4MB)
    ];
    let mode = prop_oneof![Just(BlockMode::Independent), Just(BlockMode::Linked)];
    (size, mode, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(size, mode, bc, cc, cs)| {
        FrameInfo::new()
            .block_size(size)
            .block_mode(mode)
            .block_checksums(bc)
            .content_checksum(cc)
            .content_size(None)
            .content_size(if cs { Some(0) } else { None })
    })
}

fn encode(info: FrameInfo, data: &[u8]) -> Vec<u8> {
    let info = if info.content_size.is_some() { info.content_size(Some(data.len() as u64)) } else { info };
    let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn reference(frame: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    FrameDecoder::new(frame).read_to_end(&mut out).ok().map(|_| out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_layout_decodes_as_lz4_flex_decodes_it(data in data(), info in info()) {
        let frame = encode(info, &data);
        prop_assert_eq!(reference(&frame), Some(data.clone()));
        prop_assert_eq!(decompress(Compression::Lz4, &frame, data.len(), 0).unwrap(), data.clone());
        // Into a reused buffer holding other bytes: they are cleared first.
        let reused = decompress_into(Compression::Lz4, &frame, data.len(), 0, vec![7; 100]).unwrap();
        prop_assert_eq!(&reused, &data);
        // One byte under the output's size is over the limit, never a wrong answer.
        if !data.is_empty() {
            let err = decompress(Compression::Lz4, &frame, data.len() - 1, 0).unwrap_err();
            prop_assert!(err.to_string().contains("limit"), "{}", err);
        }
    }

    #[test]
    fn damaged_frames_fail_cleanly_or_agree(data in data(), info in info(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut frame = encode(info, &data);
        let i = at.index(frame.len());
        frame[i] = byte;
        let ours = decompress(Compression::Lz4, &frame, 8 << 20, 0);
        if let (Ok(ours), Some(theirs)) = (&ours, reference(&frame)) {
            prop_assert_eq!(ours, &theirs);
        }
        // Cut short anywhere: an error, never a panic.
        let cut = &frame[..i];
        prop_assert!(decompress(Compression::Lz4, cut, 8 << 20, 0).is_err() || cut.is_empty() && data.is_empty());
    }
}

/// Several frames back to back decode as their concatenation (as `lz4 -d` reads
/// them; lz4_flex's reader and Java's stop after the first, and no Kafka producer
/// writes more than one), and anything else after a frame is an error, not ignored.
#[test]
fn concatenated_frames() {
    let mut frames = encode(FrameInfo::new(), b"first ");
    frames.extend(encode(FrameInfo::new().block_mode(BlockMode::Linked), b"second"));
    assert_eq!(decompress(Compression::Lz4, &frames, 64, 0).unwrap(), b"first second");
    frames.extend_from_slice(b"junk");
    assert!(decompress(Compression::Lz4, &frames, 64, 0).is_err());
}

/// A small batch does not pin a large buffer: not LZ4's room for a whole 4 MiB block,
/// nor a large reused buffer it was decoded into.
#[test]
fn small_outputs_keep_small_buffers() {
    let frame = encode(FrameInfo::new().block_size(BlockSize::Max4MB), &[42u8; 1000]);
    let out = decompress(Compression::Lz4, &frame, 64 << 20, 0).unwrap();
    assert_eq!(out.len(), 1000);
    assert!(out.capacity() <= 4 * 1000 + 4096, "capacity {}", out.capacity());
    let out = decompress_into(Compression::Lz4, &frame, 64 << 20, 0, Vec::with_capacity(8 << 20)).unwrap();
    assert!(out.capacity() <= 4 * 1000 + 4096, "reused: capacity {}", out.capacity());
    // A limit under the block size still decodes what fits under it.
    assert_eq!(decompress(Compression::Lz4, &frame, 1000, 0).unwrap().len(), 1000);
    assert!(decompress(Compression::Lz4, &frame, 999, 0).unwrap_err().to_string().contains("limit"));
}
