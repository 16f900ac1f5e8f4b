//! A batch's zstd data made of several frames: ferrokafka reads it as C libzstd's
//! `ZSTD_decompress` does (librdkafka and the JVM's zstd-jni decode with it): frames back
//! to back decode as their concatenation, skippable frames are skipped, anything else
//! after a frame is refused, and the size limit counts every frame.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferrokafka_protocol::compression::{compress, decompress};
use ferrokafka_protocol::{Compression, ProtocolError};

#[path = "common/rng.rs"]
mod rng;

use rng::Rng;

const LIMIT: usize = 1 << 20;

fn ours(data: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    decompress(Compression::Zstd, data, LIMIT, 0)
}

fn c_libzstd(data: &[u8]) -> Result<Vec<u8>, String> {
    zstd::bulk::decompress(data, LIMIT).map_err(|e| e.to_string())
}

/// Text that compresses: words from a small vocabulary.
fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: [&[u8]; 6] = [b"kafka ", b"record ", b"batch ", b"offset ", b"{\"id\":", b"zstd "];
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(WORDS.len())]);
    }
    out.truncate(len);
    out
}

/// A C libzstd frame, with or without a content checksum.
fn c_frame(data: &[u8], level: i32, checksum: bool) -> Vec<u8> {
    let mut c = zstd::bulk::Compressor::new(level).unwrap();
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(checksum)).unwrap();
    c.compress(data).unwrap()
}

fn skippable(magic_low: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x50 | (magic_low & 0x0f), 0x2a, 0x4d, 0x18];
    f.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
    f.extend_from_slice(payload);
    f
}

#[test]
fn frames_back_to_back_decode_as_their_concatenation() {
    let mut rng = Rng(7);
    let (a, b, c) = (text(&mut rng, 5000), text(&mut rng, 1), text(&mut rng, 70_000));
    let mut data = compress(Compression::Zstd, &a).unwrap();
    data.extend(c_frame(&b, 3, true));
    data.extend(c_frame(&c, 1, false));
    let whole = [a, b, c].concat();
    assert_eq!(c_libzstd(&data).unwrap(), whole);
    assert_eq!(ours(&data).unwrap(), whole);
}

#[test]
fn skippable_frames_are_skipped() {
    let mut rng = Rng(11);
    let (a, b) = (text(&mut rng, 3000), text(&mut rng, 3000));
    let mut data = skippable(0, b"metadata");
    data.extend(c_frame(&a, 3, false));
    data.extend(skippable(0xf, b""));
    data.extend(compress(Compression::Zstd, &b).unwrap());
    let whole = [a, b].concat();
    assert_eq!(c_libzstd(&data).unwrap(), whole);
    assert_eq!(ours(&data).unwrap(), whole);
    // Only a skippable frame: nothing, in both.
    assert_eq!(c_libzstd(&skippable(3, b"x")).unwrap(), b"");
    assert_eq!(ours(&skippable(3, b"x")).unwrap(), b"");
}

#[test]
fn what_follows_a_frame_must_be_a_frame() {
    let mut rng = Rng(13);
    let frame = c_frame(&text(&mut rng, 2000), 3, false);
    let junk = [frame.clone(), vec![1, 2, 3, 4, 5]].concat();
    let cut = [frame.clone(), frame[..frame.len() - 3].to_vec()].concat();
    let mut overlong = [frame.clone(), skippable(0, b"abc")].concat();
    overlong.pop();
    for (case, data) in [("junk", junk), ("a cut frame", cut), ("a skippable frame past the end", overlong)] {
        assert!(c_libzstd(&data).is_err(), "{case}: C accepts it");
        let err = ours(&data).expect_err(case);
        assert!(matches!(err, ProtocolError::Decompress { codec: Compression::Zstd, .. }), "{case}: {err}");
    }
}

#[test]
fn a_later_frame_is_checked_like_the_first() {
    let mut rng = Rng(19);
    let good = c_frame(&text(&mut rng, 3000), 3, false);
    let second = text(&mut rng, 3000);
    // A damaged content checksum (the frame's last four bytes).
    let mut checksum = c_frame(&second, 3, true);
    let n = checksum.len();
    checksum[n - 1] ^= 0x40;
    // A damaged content size: the field follows the descriptor and, without the
    // single-segment flag, the window descriptor (no dictionary id at level 3).
    let mut size = c_frame(&second, 3, false);
    let fhd = size[4];
    assert!(fhd >> 6 != 0 || fhd & 0x20 != 0, "C writes the content size");
    size[5 + usize::from(fhd & 0x20 == 0)] ^= 1;
    for (case, bad, says) in [("checksum", checksum, "checksum"), ("content size", size, "announces")] {
        let data = [good.clone(), bad].concat();
        assert!(c_libzstd(&data).is_err(), "{case}: C accepts it");
        let err = ours(&data).expect_err(case).to_string();
        assert!(err.contains(says), "{case}: {err}");
    }
}

#[test]
fn no_frame_at_all_is_no_content() {
    assert_eq!(c_libzstd(b"").unwrap(), b"");
    assert_eq!(ours(b"").unwrap(), b"");
}

#[test]
fn the_limit_counts_every_frame() {
    let mut rng = Rng(17);
    let (a, b) = (text(&mut rng, 600), text(&mut rng, 600));
    let data = [c_frame(&a, 3, false), c_frame(&b, 3, false)].concat();
    let err = decompress(Compression::Zstd, &data, 1000, 42).expect_err("1,200 bytes past a limit of 1,000");
    assert!(matches!(err, ProtocolError::DecompressLimit { limit: 1000, offset: 42, .. }), "{err}");
    assert_eq!(decompress(Compression::Zstd, &data, 1200, 42).unwrap(), [a, b].concat());
}

/// Random sequences of frames (ruzstd's, C's at several levels, with and without a
/// checksum), skippable frames, cut frames and junk: ferrokafka accepts what C accepts,
/// with the same bytes, and refuses what C refuses.
#[test]
fn sequences_of_frames_agree_with_c_libzstd() {
    let mut rng = Rng(0x5eed);
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..1500 {
        let mut data = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let len = rng.below(20_000);
            let content = text(&mut rng, len);
            let piece = match rng.below(10) {
                0..=2 => compress(Compression::Zstd, &content).unwrap(),
                3..=6 => c_frame(&content, [1, 3, 9][rng.below(3)], rng.below(2) == 0),
                7 => skippable(rng.below(16) as u8, &content[..len.min(40)]),
                8 => {
                    let f = c_frame(&content, 3, false);
                    f[..rng.below(f.len())].to_vec()
                }
                _ => (0..1 + rng.below(6)).map(|_| rng.next() as u8).collect(),
            };
            data.extend(piece);
        }
        match (c_libzstd(&data), ours(&data)) {
            (Ok(c), Ok(o)) => {
                assert_eq!(o, c, "case {case}: different bytes");
                accepted += 1;
            }
            (Err(_), Err(_)) => refused += 1,
            (c, o) => panic!("case {case}: C {:?}, ferrokafka {:?}", c.map(|v| v.len()), o.map(|v| v.len())),
        }
    }
    println!("accepted by both: {accepted}, refused by both: {refused}");
    assert!(accepted > 200 && refused > 200, "both kinds of case: {accepted} / {refused}");
}
