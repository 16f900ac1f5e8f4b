//! Record compression codecs, all pure Rust, with a bound on decompressed size.
//!
//! Kafka compresses a whole batch (v2) or a wrapper message's value (v0/v1). The
//! decoders here never trust a size the data announces: output is read through a
//! limit, so a few kilobytes of crafted input cannot make us allocate gigabytes.

use std::io::{Read, Write};

use crate::error::{ProtocolError, Result};

pub use crate::codec::Compression;

/// The 8-byte magic that starts xerial-framed snappy data.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// Decompresses `input` (the data of the batch or message at `offset`), refusing
/// output larger than `limit` bytes.
pub fn decompress(codec: Compression, input: &[u8], limit: usize, offset: i64) -> Result<Vec<u8>> {
    decompress_into(codec, input, limit, offset, Vec::new())
}

/// [`decompress`] into `out`, which is cleared first: a buffer reused from an earlier
/// batch saves the allocation and its page faults.
pub fn decompress_into(codec: Compression, input: &[u8], limit: usize, offset: i64, out: Vec<u8>) -> Result<Vec<u8>> {
    let mut out = decompress_unshrunk(codec, input, limit, offset, out)?;
    // The output lives as long as any record of its batch: a small batch must not pin
    // a large buffer (a reused one, or LZ4's room for a whole block). Past 4 times
    // what it holds (and 4 KiB), it is copied into one of its own size.
    if out.capacity() > out.len().saturating_mul(4).saturating_add(4096) {
        out.shrink_to_fit();
    }
    Ok(out)
}

fn decompress_unshrunk(
    codec: Compression,
    input: &[u8],
    limit: usize,
    offset: i64,
    mut out: Vec<u8>,
) -> Result<Vec<u8>> {
    let fail = |message: String| ProtocolError::Decompress { codec, offset, message };
    let too_big = ProtocolError::DecompressLimit { codec, offset, limit };
    out.clear();
    let out = if out.capacity() == 0 { Vec::with_capacity(default_capacity(input.len(), limit)) } else { out };
    match codec {
        Compression::None => {
            let mut out = out;
            out.extend_from_slice(input);
            Ok(out)
        }
        Compression::Gzip => gzip_members(input, limit, out).map_err(|e| e.map_err(fail, too_big)),
        Compression::Lz4 => {
            let mut out = out;
            match crate::lz4::decompress_frames(input, limit, &mut out) {
                Ok(()) => Ok(out),
                Err(crate::lz4::Lz4Error::TooBig) => Err(too_big),
                Err(crate::lz4::Lz4Error::Corrupt(m)) => Err(fail(m)),
            }
        }
        Compression::Zstd => ZSTD_DECODER.with(|cell| {
            // A decoder per thread, reset for each frame: its window and tables are
            // allocated once instead of once per batch.
            let mut frame_decoder = cell.borrow_mut();
            let mut out = out;
            let mut rest = input;
            // Frames back to back decode as their concatenation and skippable frames are
            // skipped; anything else is refused; no frame at all is no content. That is how
            // C libzstd's ZSTD_decompress (librdkafka, the JVM's zstd-jni) reads a batch's data.
            while !rest.is_empty() {
                match skippable_frame_len(rest) {
                    Some(len) => {
                        rest = rest.get(len..).ok_or_else(|| fail("zstd skippable frame runs past the data".into()))?;
                    }
                    None => out = zstd_frame(&mut rest, &mut frame_decoder, out, limit, (&fail, &too_big))?,
                }
            }
            Ok(out)
        }),
        Compression::Snappy => {
            if input.starts_with(&XERIAL_MAGIC) {
                xerial_decompress(input, limit, out).map_err(|e| e.map_err(fail, too_big))
            } else {
                snappy_raw(input, limit, out).map_err(|e| e.map_err(fail, too_big))
            }
        }
    }
}

/// Compresses `input` the way Kafka expects for `codec`.
pub fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>> {
    let fail = |message: String| ProtocolError::Compress { codec, message };
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(input).map_err(|e| fail(e.to_string()))?;
            enc.finish().map_err(|e| fail(e.to_string()))
        }
        // Raw snappy, as librdkafka writes it: every reader accepts it (Java brokers,
        // librdkafka, kafka-python, kafka-protocol), while some read no xerial framing.
        Compression::Snappy => snap::raw::Encoder::new().compress_vec(input).map_err(|e| fail(e.to_string())),
        Compression::Lz4 => {
            // Independent 64 KiB blocks: the only layout Kafka's Java reader accepts.
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(input).map_err(|e| fail(e.to_string()))?;
            enc.finish().map_err(|e| fail(e.to_string()))
        }
        Compression::Zstd => Ok(ruzstd::encoding::compress_to_vec(input, ruzstd::encoding::CompressionLevel::Fastest)),
    }
}

/// Why a bounded read stopped.
enum LimitedError {
    Codec(String),
    TooBig,
}

impl LimitedError {
    fn map_err(self, fail: impl FnOnce(String) -> ProtocolError, too_big: ProtocolError) -> ProtocolError {
        match self {
            LimitedError::Codec(m) => fail(m),
            LimitedError::TooBig => too_big,
        }
    }
}

thread_local! {
    static ZSTD_DECODER: std::cell::RefCell<ruzstd::decoding::FrameDecoder> =
        std::cell::RefCell::new(ruzstd::decoding::FrameDecoder::new());
}

fn default_capacity(input_len: usize, limit: usize) -> usize {
    input_len.saturating_mul(4).min(limit).max(64)
}

/// Gzip members back to back decode as their concatenation, as Java's
/// `GZIPInputStream` reads a batch (the Java producer writes one member). Like it, bytes
/// after a member whose header does not parse are ignored; a later member whose header
/// parses must decode whole. Two differences from Java 17, both on bytes no producer
/// writes: a member with reserved header flags is ignored here (flate2 refuses such a
/// header, Java reads the member), and 18 or fewer trailing bytes holding a whole header
/// are refused here (Java 17 does not look at them).
fn gzip_members(input: &[u8], limit: usize, mut out: Vec<u8>) -> Result<Vec<u8>, LimitedError> {
    let mut rest = input;
    let mut first = true;
    loop {
        let before = out.len();
        let remaining = limit.saturating_sub(before);
        let mut member = flate2::bufread::GzDecoder::new(rest);
        match read_limited(&mut member, &mut out, remaining) {
            Ok(()) => {}
            Err(LimitedError::Codec(_)) if !first && member.header().is_none() => {
                out.truncate(before);
                return Ok(out);
            }
            Err(e) => return Err(e),
        }
        rest = member.into_inner();
        if rest.is_empty() {
            return Ok(out);
        }
        first = false;
    }
}

/// Decodes the zstd frame `rest` starts with onto `out` (at most `limit` bytes in all),
/// and advances `rest` past it.
fn zstd_frame(
    rest: &mut &[u8],
    frame_decoder: &mut ruzstd::decoding::FrameDecoder,
    mut out: Vec<u8>,
    limit: usize,
    (fail, too_big): (&dyn Fn(String) -> ProtocolError, &ProtocolError),
) -> Result<Vec<u8>> {
    let frame = *rest;
    let before = out.len();
    let remaining = limit.saturating_sub(before);
    let decoder = ruzstd::decoding::StreamingDecoder::new_with_decoder(&mut *rest, &mut *frame_decoder)
        .map_err(|e| fail(e.to_string()))?;
    // The frame header's content size (when the producer wrote one) sizes the output
    // exactly. It is only a hint from the wire: capped by the limit and by 64× the
    // input, so a tiny frame announcing a huge size reserves nothing large.
    let announced = usize::try_from(decoder.decoder.content_size()).unwrap_or(usize::MAX);
    let cap = match announced {
        0 => default_capacity(frame.len(), remaining),
        n => n.min(remaining).min(frame.len().saturating_mul(64).max(1 << 16)),
    };
    out.reserve(cap);
    read_limited(decoder, &mut out, remaining).map_err(|e| e.map_err(fail, too_big.clone()))?;
    // A frame that announces its content size must hold exactly that much, as
    // C libzstd checks (a damaged size field is otherwise unnoticed).
    if declares_content_size(frame) && announced != out.len() - before {
        return Err(fail(format!("zstd frame announces {announced} bytes of content, holds {}", out.len() - before)));
    }
    // A frame with a content checksum (most producers write none; the batch CRC
    // covers the compressed bytes either way) is checked, as C libzstd checks it.
    if let (Some(stored), Some(computed)) =
        (frame_decoder.get_checksum_from_data(), frame_decoder.get_calculated_checksum())
    {
        if stored != computed {
            return Err(fail(format!("zstd content checksum mismatch: {stored:#010x}, computed {computed:#010x}")));
        }
    }
    Ok(out)
}

/// The whole length of the zstd skippable frame (RFC 8878, 3.1.2) `data` starts with,
/// if it starts with one.
fn skippable_frame_len(data: &[u8]) -> Option<usize> {
    match data {
        [m, 0x2a, 0x4d, 0x18, a, b, c, d, ..] if m & 0xf0 == 0x50 => {
            usize::try_from(u32::from_le_bytes([*a, *b, *c, *d])).ok().map(|n| n.saturating_add(8))
        }
        _ => None,
    }
}

/// Whether a zstd frame's header carries a Frame_Content_Size field (RFC 8878,
/// 3.1.1.1.1: its flag, or the single-segment flag, is set).
fn declares_content_size(frame: &[u8]) -> bool {
    match frame {
        [0x28, 0xb5, 0x2f, 0xfd, fhd, ..] => fhd >> 6 != 0 || fhd & 0x20 != 0,
        _ => false,
    }
}

/// Appends what `reader` gives to `out`, refusing more than `limit` bytes.
fn read_limited(reader: impl Read, out: &mut Vec<u8>, limit: usize) -> Result<(), LimitedError> {
    let read = reader
        .take((limit as u64).saturating_add(1))
        .read_to_end(out)
        .map_err(|e| LimitedError::Codec(e.to_string()))?;
    if read > limit {
        return Err(LimitedError::TooBig);
    }
    Ok(())
}

fn snappy_raw(input: &[u8], limit: usize, mut out: Vec<u8>) -> Result<Vec<u8>, LimitedError> {
    let len = snap::raw::decompress_len(input).map_err(|e| LimitedError::Codec(e.to_string()))?;
    if len > limit.saturating_sub(out.len()) {
        return Err(LimitedError::TooBig);
    }
    let start = out.len();
    out.resize(start + len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(input, &mut out[start..])
        .map_err(|e| LimitedError::Codec(e.to_string()))?;
    out.truncate(start + n);
    Ok(out)
}

fn xerial_decompress(input: &[u8], limit: usize, mut out: Vec<u8>) -> Result<Vec<u8>, LimitedError> {
    // magic (8) + version (4) + compatible version (4), then (i32 length, raw block)*.
    let mut rest = input.get(16..).ok_or_else(|| LimitedError::Codec("xerial header truncated".into()))?;
    while !rest.is_empty() {
        let (len, tail) =
            rest.split_first_chunk::<4>().ok_or_else(|| LimitedError::Codec("xerial block length truncated".into()))?;
        let len = usize::try_from(i32::from_be_bytes(*len))
            .map_err(|_| LimitedError::Codec("negative xerial block length".into()))?;
        let block = tail.get(..len).ok_or_else(|| LimitedError::Codec("xerial block truncated".into()))?;
        out = snappy_raw(block, limit, out)?;
        rest = &tail[len..];
    }
    Ok(out)
}
