//! Frames on the fake's sockets: reading a request, building a response.

use std::io::Read;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// One request a client sent.
#[derive(Clone, Debug)]
pub struct Request {
    /// Which client connection (in accept order) sent it.
    pub connection: usize,
    /// Its API.
    pub api: ApiKey,
    /// Its version.
    pub version: i16,
    /// Its correlation id.
    pub correlation_id: i32,
    /// The body after the request header.
    pub body: Bytes,
    /// The fake's own port, for Metadata answers that point at itself (0 for a proxy).
    pub port: u16,
}

impl Request {
    /// Decodes the body as `T` (panics on a body the client should never have sent).
    pub fn decode<T: Decodable>(&self) -> T {
        T::decode(&mut self.body.clone(), self.version)
            .unwrap_or_else(|e| panic!("{:?} v{} body does not decode: {e}", self.api, self.version))
    }

    /// The response frame carrying `body`, at the request's version and correlation id.
    pub fn reply<B: Encodable>(&self, body: &B) -> Vec<u8> {
        response_frame(self.api, self.version, self.correlation_id, body)
    }
}

/// A size-prefixed response frame: header (for `api`/`version`) + encoded body.
pub fn response_frame<B: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &B) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut buf, api.response_header_version(version)).expect("encode response header");
    body.encode(&mut buf, version).expect("encode response body");
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

/// Wraps `payload` in a size prefix.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// An ApiVersions answer announcing `apis` as (key, min, max).
pub fn api_versions(req: &Request, apis: &[(ApiKey, i16, i16)]) -> Vec<u8> {
    let keys = apis
        .iter()
        .map(|&(k, min, max)| ApiVersion::default().with_api_key(k as i16).with_min_version(min).with_max_version(max))
        .collect();
    req.reply(&ApiVersionsResponse::default().with_api_keys(keys))
}

/// A Metadata answer in which the fake is broker 1 and leads every partition of
/// `topics` (name, partition count).
pub fn metadata(req: &Request, topics: &[(&str, i32)]) -> Vec<u8> {
    let topics = topics.iter().map(|&(name, count)| metadata_topic(name, count, 0)).collect();
    req.reply(&metadata_response(req.port, topics))
}

pub(crate) fn metadata_response(port: u16, topics: Vec<MetadataResponseTopic>) -> MetadataResponse {
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(1))
        .with_host(StrBytes::from_static_str("127.0.0.1"))
        .with_port(i32::from(port));
    MetadataResponse::default().with_brokers(vec![broker]).with_controller_id(BrokerId(1)).with_topics(topics)
}

/// One topic of a Metadata answer: broker 1 leads each of `count` partitions (none and
/// `error` when the topic is unknown).
pub(crate) fn metadata_topic(name: &str, count: i32, error: i16) -> MetadataResponseTopic {
    let partitions = (0..count)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(1))
                .with_replica_nodes(vec![BrokerId(1)])
                .with_isr_nodes(vec![BrokerId(1)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_error_code(error)
        .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
        .with_partitions(partitions)
}

/// One size-prefixed request frame (without its prefix); `None` at end of stream, on a
/// read error or on a size outside 8 bytes..100 MiB.
pub(crate) fn read_frame(sock: &mut impl Read) -> Option<Bytes> {
    let mut len = [0u8; 4];
    sock.read_exact(&mut len).ok()?;
    let size = usize::try_from(i32::from_be_bytes(len)).ok().filter(|s| (8..=100 << 20).contains(s))?;
    let mut frame = vec![0u8; size];
    sock.read_exact(&mut frame).ok()?;
    Some(Bytes::from(frame))
}

/// Splits a request frame into its header fields and body.
pub(crate) fn parse(mut frame: Bytes, port: u16, connection: usize) -> Option<Request> {
    let key = i16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
    let version = i16::from_be_bytes([*frame.get(2)?, *frame.get(3)?]);
    let api = ApiKey::try_from(key).ok()?;
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version)).ok()?;
    Some(Request { connection, api, version, correlation_id: header.correlation_id, body: frame, port })
}
