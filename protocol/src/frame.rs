//! Framing (4-byte size prefix) and request/response headers.
//!
//! Encoding writes a whole request frame into a caller-owned buffer; decoding is
//! incremental: [`FrameDecoder::decode`] answers `Ok(None)` until a whole frame
//! has arrived, and checks the announced size before reserving any memory.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::error::{ProtocolError, Result};

/// Default largest frame accepted, like the Java client's `receive.message.max.bytes`.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// Splits a byte stream into frames.
#[derive(Clone, Copy, Debug)]
pub struct FrameDecoder {
    max_frame_size: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder { max_frame_size: DEFAULT_MAX_FRAME_SIZE }
    }
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max_frame_size` bytes (excluding the prefix).
    pub fn new(max_frame_size: usize) -> Self {
        FrameDecoder { max_frame_size }
    }

    /// Takes one complete frame (without its size prefix) off the front of `src`.
    ///
    /// Returns `Ok(None)` when more bytes are needed; `src` then has room reserved
    /// for the rest of the frame (never more than the maximum).
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<Bytes>> {
        let Some(prefix) = src.get(..4) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let size = usize::try_from(size).map_err(|_| ProtocolError::NegativeFrameSize(size))?;
        if size > self.max_frame_size {
            return Err(ProtocolError::FrameTooLarge { size: size as u64, max: self.max_frame_size });
        }
        if src.len() - 4 < size {
            src.reserve(4 + size - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(size).freeze()))
    }
}

/// The header fields of a request.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// Which API.
    pub api: ApiKey,
    /// The negotiated version.
    pub version: i16,
    /// Correlation id the response will carry.
    pub correlation_id: i32,
    /// `client.id`, if any.
    pub client_id: Option<StrBytes>,
}

/// Appends one request frame (size prefix, header, body) to `dst`.
///
/// On error nothing is left in `dst` beyond what it held before.
pub fn encode_request<R: Encodable>(dst: &mut BytesMut, meta: &RequestMeta, body: &R) -> Result<()> {
    let start = dst.len();
    let result = encode_request_inner(dst, meta, body);
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

fn encode_request_inner<R: Encodable>(dst: &mut BytesMut, meta: &RequestMeta, body: &R) -> Result<()> {
    let enc = |e: anyhow::Error| ProtocolError::Encode { api: meta.api, version: meta.version, message: e.to_string() };
    let header = RequestHeader::default()
        .with_request_api_key(meta.api as i16)
        .with_request_api_version(meta.version)
        .with_correlation_id(meta.correlation_id)
        .with_client_id(meta.client_id.clone());
    let header_version = meta.api.request_header_version(meta.version);
    let start = dst.len();
    // One allocation of the right size: a Produce request carries megabytes of records,
    // and growing the buffer by doubling would copy them again and again.
    let size = header.compute_size(header_version).map_err(enc)? + body.compute_size(meta.version).map_err(enc)?;
    dst.reserve(4 + size);
    dst.put_i32(0);
    header.encode(dst, header_version).map_err(enc)?;
    body.encode(dst, meta.version).map_err(enc)?;
    let size = i32::try_from(dst.len() - start - 4).map_err(|_| ProtocolError::Encode {
        api: meta.api,
        version: meta.version,
        message: "request over 2 GiB".into(),
    })?;
    dst[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Reads the correlation id at the front of a response frame without consuming it.
pub fn peek_correlation_id(frame: &[u8]) -> Option<i32> {
    frame.get(..4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decodes a response frame of `api` at `version`: its header, then its body.
///
/// The body's byte fields (e.g. a Fetch response's `records`) stay slices of `frame`.
pub fn decode_response<R: Decodable>(mut frame: Bytes, api: ApiKey, version: i16) -> Result<(ResponseHeader, R)> {
    let dec = |e: anyhow::Error| ProtocolError::Decode { api, version, message: e.to_string() };
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version)).map_err(dec)?;
    let body = R::decode(&mut frame, version).map_err(dec)?;
    // Bytes after the body are ignored, as the Java client and librdkafka do: a
    // broker may add fields (librdkafka 2.0.2's mock appends 4 bytes to
    // ListOffsets v5). The body itself was fully validated.
    Ok((header, body))
}
