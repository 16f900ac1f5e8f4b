//! A batch's gzip data of several members reads as Java's `GZIPInputStream` reads it
//! (each case checked with Java 17 when this was written): members back to back decode
//! as their concatenation, bytes after a member whose header does not parse are ignored,
//! a later member whose header parses must decode whole, and the size limit counts every
//! member. Where this differs from Java 17 (a header with reserved flags; 18 or fewer
//! trailing bytes holding a whole header), `compression.rs` says so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferrokafka_protocol::compression::{compress, decompress};
use ferrokafka_protocol::{Compression, ProtocolError};

fn gz(data: &[u8]) -> Vec<u8> {
    compress(Compression::Gzip, data).unwrap()
}

fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, ProtocolError> {
    decompress(Compression::Gzip, data, limit, 7)
}

#[test]
fn members_back_to_back_decode_as_their_concatenation() {
    let data = [gz(b"hello "), gz(b""), gz(b"world")].concat();
    assert_eq!(gunzip(&data, 1 << 20).unwrap(), b"hello world");
}

#[test]
fn bytes_after_a_member_whose_header_does_not_parse_are_ignored() {
    for tail in [&b"xyz"[..], &[0x1f, 0x8b, 0x08], &[0x1f, 0x8b, 0x08, 0, 0]] {
        let data = [gz(b"hello "), tail.to_vec()].concat();
        assert_eq!(gunzip(&data, 1 << 20).unwrap(), b"hello ", "{tail:?}");
        // After an empty member too.
        let data = [gz(b""), tail.to_vec()].concat();
        assert_eq!(gunzip(&data, 1 << 20).unwrap(), b"", "{tail:?}");
    }
    // Java reads a member with reserved header flags; flate2 refuses its header, so it
    // is ignored here (compression.rs).
    let mut reserved = gz(b"world");
    reserved[3] |= 0xe0;
    assert_eq!(gunzip(&[gz(b"hello "), reserved].concat(), 1 << 20).unwrap(), b"hello ");
}

#[test]
fn a_first_member_that_does_not_parse_is_an_error() {
    for data in [&b"xyz"[..], &[0x1f, 0x8b, 0x08]] {
        let err = gunzip(data, 1 << 20).expect_err("no member");
        assert!(matches!(err, ProtocolError::Decompress { codec: Compression::Gzip, .. }), "{err}");
    }
}

#[test]
fn a_cut_member_is_an_error() {
    let second = gz(b"world");
    let data = [gz(b"hello "), second[..second.len() - 5].to_vec()].concat();
    let err = gunzip(&data, 1 << 20).expect_err("a cut second member");
    assert!(matches!(err, ProtocolError::Decompress { codec: Compression::Gzip, offset: 7, .. }), "{err}");
}

#[test]
fn the_limit_counts_every_member() {
    let data = [gz(&[b'a'; 600]), gz(&[b'b'; 600])].concat();
    let err = gunzip(&data, 1000).expect_err("1,200 bytes past a limit of 1,000");
    assert!(matches!(err, ProtocolError::DecompressLimit { limit: 1000, .. }), "{err}");
    assert_eq!(gunzip(&data, 1200).unwrap().len(), 1200);
}
