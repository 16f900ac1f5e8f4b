//! The LZ4 frame format, decoded straight into the caller's buffer.
//!
//! Kafka compresses batches as LZ4 frames (magic, descriptor, blocks, end mark,
//! optional content checksum). lz4_flex's `FrameDecoder` is a `Read`er: it allocates
//! its block buffers for every frame and copies each block out of them. Here each
//! block is decoded by lz4_flex's block decoder directly into the output buffer (a
//! linked block finds its dictionary right before it there), so a batch costs no
//! allocation when the output buffer is reused. Checksums (header, blocks, content)
//! are verified as lz4_flex verifies them; the header checksum may also be the one
//! old Kafka clients computed over the magic too (KAFKA-3160).

use twox_hash::XxHash32;

const MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
/// A linked block may refer back this far into what precedes it.
const WINDOW: usize = 64 * 1024;

/// Why decoding stopped.
pub(crate) enum Lz4Error {
    Corrupt(String),
    TooBig,
}

fn corrupt(m: &str) -> Lz4Error {
    Lz4Error::Corrupt(m.to_owned())
}

/// Appends the frames in `input` to `out`, which may not grow past `limit` bytes.
pub(crate) fn decompress_frames(mut input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), Lz4Error> {
    if input.is_empty() {
        return Err(corrupt("empty lz4 data"));
    }
    while !input.is_empty() {
        input = frame(input, limit, out)?;
    }
    Ok(())
}

fn take<'a>(input: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], Lz4Error> {
    if input.len() < n {
        return Err(Lz4Error::Corrupt(format!("lz4 {what} truncated")));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn u32_le(input: &mut &[u8], what: &str) -> Result<u32, Lz4Error> {
    let b = take(input, 4, what)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decodes one frame; returns the input after it.
fn frame<'a>(mut input: &'a [u8], limit: usize, out: &mut Vec<u8>) -> Result<&'a [u8], Lz4Error> {
    let whole = input;
    if take(&mut input, 4, "frame header")? != MAGIC {
        return Err(corrupt("not an lz4 frame (bad magic)"));
    }
    let descriptor = take(&mut input, 2, "frame header")?;
    let (flg, bd) = (descriptor[0], descriptor[1]);
    if flg >> 6 != 1 {
        return Err(corrupt("unsupported lz4 frame version"));
    }
    if flg & 0x02 != 0 || bd & 0x8f != 0 {
        return Err(corrupt("reserved lz4 frame bits set"));
    }
    let independent = flg & 0x20 != 0;
    let block_checksums = flg & 0x10 != 0;
    let content_checksum = flg & 0x04 != 0;
    let max_block = match (bd >> 4) & 0x7 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        _ => return Err(corrupt("unsupported lz4 block size")),
    };
    let mut content_size = None;
    if flg & 0x08 != 0 {
        let b = take(&mut input, 8, "content size")?;
        content_size = Some(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
    }
    if flg & 0x01 != 0 {
        return Err(corrupt("lz4 frames with a dictionary id are not supported"));
    }
    let descriptor_end = whole.len() - input.len();
    let hc = take(&mut input, 1, "header checksum")?[0];
    let hash = |b: &[u8]| (XxHash32::oneshot(0, b) >> 8) as u8;
    if hc != hash(&whole[4..descriptor_end]) && hc != hash(&whole[..descriptor_end]) {
        return Err(corrupt("lz4 frame header checksum mismatch"));
    }
    let start = out.len();
    if let Some(size) = content_size {
        // Only a hint: capped by the limit and by the most LZ4 can expand this frame to.
        let most = whole.len().saturating_mul(255);
        out.reserve(usize::try_from(size).unwrap_or(usize::MAX).min(limit.saturating_sub(start)).min(most));
    }
    loop {
        let word = u32_le(&mut input, "block size")?;
        if word == 0 {
            break;
        }
        let len = (word & 0x7fff_ffff) as usize;
        if len > max_block {
            return Err(corrupt("lz4 block larger than the frame's block size"));
        }
        let data = take(&mut input, len, "block")?;
        if block_checksums && u32_le(&mut input, "block checksum")? != XxHash32::oneshot(0, data) {
            return Err(corrupt("lz4 block checksum mismatch"));
        }
        if word & 0x8000_0000 != 0 {
            if out.len() + len > limit {
                return Err(Lz4Error::TooBig);
            }
            out.extend_from_slice(data);
            continue;
        }
        // Room for a whole block, or for one byte past the limit (to tell an output
        // that reaches the limit from one that exceeds it).
        let at = out.len();
        let under_limit = limit.saturating_add(1).saturating_sub(at);
        let room = max_block.min(under_limit);
        out.resize(at + room, 0);
        let (before, block) = out.split_at_mut(at);
        let decoded = if independent {
            lz4_flex::block::decompress_into(data, block)
        } else {
            // A linked block refers back at most 64 KiB, and never before its frame.
            let dict = &before[start.max(at.saturating_sub(WINDOW))..];
            lz4_flex::block::decompress_into_with_dict(data, block, dict)
        };
        let n = match decoded {
            Ok(n) => n,
            // The room was cut by the limit: the block may simply not fit under it.
            Err(_) if room == under_limit => return Err(Lz4Error::TooBig),
            Err(e) => return Err(Lz4Error::Corrupt(format!("lz4 block: {e}"))),
        };
        out.truncate(at + n);
        if out.len() > limit {
            return Err(Lz4Error::TooBig);
        }
    }
    if content_checksum && u32_le(&mut input, "content checksum")? != XxHash32::oneshot(0, &out[start..]) {
        return Err(corrupt("lz4 content checksum mismatch"));
    }
    if let Some(size) = content_size {
        if size != (out.len() - start) as u64 {
            return Err(corrupt("lz4 content size does not match the frame's"));
        }
    }
    Ok(input)
}
