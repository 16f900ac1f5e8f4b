//! A batch's gzip data of several members reads as Java's `GZIPInputStream` reads it
//! (checked with Java 17 when this was written): members back to back decode as their
//! concatenation, bytes after a member that do not start another are ignored, a cut
//! member is an error, and the size limit counts every member.

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
fn bytes_after_a_member_that_are_no_member_are_ignored() {
    let data = [gz(b"hello "), b"xyz".to_vec()].concat();
    assert_eq!(gunzip(&data, 1 << 20).unwrap(), b"hello ");
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
