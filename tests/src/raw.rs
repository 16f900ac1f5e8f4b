//! A blocking, single-connection Kafka client built only from the protocol crate.
//!
//! Integration tests use it to talk to brokers "through the protocol crate over a
//! plain socket": every byte it sends is encoded by `ferrokafka-protocol`, and
//! every byte it receives is framed and decoded by it.

use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferrokafka_protocol::frame::{decode_response, encode_request, peek_correlation_id, FrameDecoder, RequestMeta};
use ferrokafka_protocol::versions::{
    api_versions_request, parse_api_versions, ApiVersionsReply, BrokerVersions, API_VERSIONS_MAX,
};
use ferrokafka_protocol::ProtocolError;
use kafka_protocol::messages::{
    create_topics_request::CreatableTopic,
    fetch_request::{FetchPartition, FetchTopic},
    metadata_request::MetadataRequestTopic,
    produce_request::{PartitionProduceData, TopicProduceData},
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, MetadataRequest,
    MetadataResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// What went wrong on a raw connection.
#[derive(Debug)]
pub enum RawError {
    /// Socket error (including a read timeout).
    Io(std::io::Error),
    /// The peer closed the connection (mid-frame if `partial` bytes were buffered).
    Closed {
        /// Bytes of an incomplete frame that were buffered.
        partial: usize,
    },
    /// The protocol crate rejected the bytes.
    Protocol(ProtocolError),
    /// The broker answered with a Kafka error code.
    Broker(String),
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for RawError {}

impl From<std::io::Error> for RawError {
    fn from(e: std::io::Error) -> Self {
        RawError::Io(e)
    }
}
impl From<ProtocolError> for RawError {
    fn from(e: ProtocolError) -> Self {
        RawError::Protocol(e)
    }
}

/// One blocking connection with negotiated versions.
pub struct RawConnection {
    stream: TcpStream,
    buf: BytesMut,
    frames: FrameDecoder,
    next_id: i32,
    /// The broker's announced ranges.
    pub versions: BrokerVersions,
    /// The ApiVersions versions sent during negotiation, in order.
    pub api_versions_sent: Vec<i16>,
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

impl RawConnection {
    /// Connects and negotiates versions.
    pub fn connect(addr: &str) -> Result<Self, RawError> {
        let mut c = Self::connect_with(addr, FrameDecoder::default())?;
        c.negotiate()?;
        Ok(c)
    }

    /// Connects without negotiating, with a custom frame decoder.
    pub fn connect_with(addr: &str, frames: FrameDecoder) -> Result<Self, RawError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(RawConnection {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            frames,
            next_id: 1,
            versions: BrokerVersions::default(),
            api_versions_sent: Vec::new(),
        })
    }

    /// Runs ApiVersions, falling back to older versions as the broker asks.
    pub fn negotiate(&mut self) -> Result<(), RawError> {
        let mut version = API_VERSIONS_MAX;
        for _ in 0..4 {
            self.api_versions_sent.push(version);
            let id = self.send(ApiKey::ApiVersions, version, &api_versions_request(version))?;
            let frame = self.recv_for(id)?;
            match parse_api_versions(frame, version)? {
                ApiVersionsReply::Supported(v) => {
                    self.versions = v;
                    return Ok(());
                }
                ApiVersionsReply::RetryWith(v) => version = v,
            }
        }
        Err(RawError::Broker("ApiVersions negotiation did not converge".into()))
    }

    /// The negotiated version of `api`.
    pub fn version(&self, api: ApiKey) -> Result<i16, RawError> {
        Ok(self.versions.negotiate(api)?)
    }

    /// Sends one request; returns its correlation id.
    pub fn send<R: Encodable>(&mut self, api: ApiKey, version: i16, body: &R) -> Result<i32, RawError> {
        let id = self.next_id;
        self.next_id += 1;
        let meta = RequestMeta {
            api,
            version,
            correlation_id: id,
            client_id: Some(StrBytes::from_static_str("ferrokafka-tests")),
        };
        let mut out = BytesMut::new();
        encode_request(&mut out, &meta, body)?;
        self.stream.write_all(&out)?;
        Ok(id)
    }

    /// Reads the next frame.
    pub fn recv_frame(&mut self) -> Result<Bytes, RawError> {
        loop {
            if let Some(frame) = self.frames.decode(&mut self.buf)? {
                return Ok(frame);
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(RawError::Closed { partial: self.buf.len() });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads the next frame and checks that it answers request `id`.
    pub fn recv_for(&mut self, id: i32) -> Result<Bytes, RawError> {
        let frame = self.recv_frame()?;
        let actual = peek_correlation_id(&frame).ok_or(ProtocolError::Decode {
            api: ApiKey::ApiVersions,
            version: 0,
            message: "response shorter than its correlation id".into(),
        })?;
        if actual != id {
            return Err(ProtocolError::CorrelationMismatch { expected: id, actual }.into());
        }
        Ok(frame)
    }

    /// Sends a request at the negotiated version and decodes its response.
    pub fn call<Req: Encodable, Resp: Decodable>(&mut self, api: ApiKey, body: &Req) -> Result<Resp, RawError> {
        let version = self.version(api)?;
        self.call_at(api, version, body)
    }

    /// Sends a request at `version` and decodes its response.
    pub fn call_at<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Result<Resp, RawError> {
        let id = self.send(api, version, body)?;
        let frame = self.recv_for(id)?;
        Ok(decode_response::<Resp>(frame, api, version)?.1)
    }

    /// Metadata for `topics` (all topics when empty).
    pub fn metadata(&mut self, topics: &[&str]) -> Result<MetadataResponse, RawError> {
        let mut req = MetadataRequest::default();
        req.topics = if topics.is_empty() {
            None
        } else {
            Some(topics.iter().map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t)))).collect())
        };
        let version = self.version(ApiKey::Metadata)?;
        // The field exists from v4; earlier versions behave as if it were true (its default).
        req.allow_auto_topic_creation = version < 4;
        self.call_at(ApiKey::Metadata, version, &req)
    }

    /// Creates a topic (CreateTopics) and fails on any error but "already exists".
    pub fn create_topic(&mut self, name: &str, partitions: i32) -> Result<(), RawError> {
        let topic = CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1);
        let req = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(10_000);
        let resp: CreateTopicsResponse = self.call(ApiKey::CreateTopics, &req)?;
        match resp.topics.first().map(|t| t.error_code) {
            Some(0) | Some(36) => Ok(()),
            other => Err(RawError::Broker(format!("CreateTopics {name}: error {other:?}"))),
        }
    }

    /// Produces `records` (encoded batches) to one partition with acks=1; returns the base offset.
    pub fn produce(&mut self, topic: &str, partition: i32, records: Bytes) -> Result<i64, RawError> {
        let data = PartitionProduceData::default().with_index(partition).with_records(Some(records));
        let req = ProduceRequest::default().with_acks(1).with_timeout_ms(10_000).with_topic_data(vec![
            TopicProduceData::default().with_name(topic_name(topic)).with_partition_data(vec![data]),
        ]);
        let resp: ProduceResponse = self.call(ApiKey::Produce, &req)?;
        let p = resp
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .ok_or_else(|| RawError::Broker("empty Produce response".into()))?;
        if p.error_code != 0 {
            return Err(RawError::Broker(format!("Produce {topic}/{partition}: error {}", p.error_code)));
        }
        Ok(p.base_offset)
    }

    /// Fetches from one partition at `offset`; returns (high watermark, records bytes).
    pub fn fetch(&mut self, topic: &str, partition: i32, offset: i64) -> Result<(i64, Bytes), RawError> {
        let p = FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(1 << 20)
            .with_log_start_offset(-1)
            .with_current_leader_epoch(-1);
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(4 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default().with_topic(topic_name(topic)).with_partitions(vec![p])]);
        let resp: FetchResponse = self.call(ApiKey::Fetch, &req)?;
        let part = resp
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| RawError::Broker("empty Fetch response".into()))?;
        if part.error_code != 0 {
            return Err(RawError::Broker(format!("Fetch {topic}/{partition}@{offset}: error {}", part.error_code)));
        }
        Ok((part.high_watermark, part.records.clone().unwrap_or_default()))
    }
}
