//! API version negotiation (KIP-35 / KIP-511).
//!
//! A connection first sends ApiVersions at [`API_VERSIONS_MAX`]. A broker that
//! does not know that version answers UNSUPPORTED_VERSION in the v0 layout with
//! its own range for ApiVersions; [`parse_api_versions`] then says which version
//! to retry with. Afterwards every API is used at the highest version both sides
//! support ([`BrokerVersions::negotiate`]).

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

use crate::error::{ProtocolError, Result};
use crate::frame::decode_response;

/// Highest ApiVersions version this crate sends.
pub const API_VERSIONS_MAX: i16 = 3;
const UNSUPPORTED_VERSION: i16 = 35;

/// The versions of each API that ferrokafka implements.
///
/// Fetch goes down to v0 (brokers 0.10.x, legacy message sets); the others start
/// where their current request layout began.
const CLIENT_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    // v12 (flexible) is left out: tansu 0.6 puts a tagged field in v12 responses
    // that the schema only allows from v16, which strict decoders reject. v11 is
    // supported by every broker from 2.3 through 4.x.
    (ApiKey::Fetch, 0, 11),
    // v4+ is left out: librdkafka 2.0.2's mock cluster writes an extra int32 per
    // partition in v4/v5 responses (seen in the integration tests), and nothing
    // here uses the leader epoch those versions add. v3 is served by 0.11 to 4.x.
    (ApiKey::ListOffsets, 1, 3),
    (ApiKey::Metadata, 0, 12),
    // v9 is what a KIP-848 member must commit with (Kafka 4.0 refuses older versions
    // from consumer-protocol members); its layout is v8's.
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 4),
    // v6+ (flexible) and SyncGroup v4+ are left out: librdkafka 2.16's mock cluster
    // announces them and closes the connection on them (seen in the integration
    // tests). JoinGroup v5 / SyncGroup v3 carry static membership (KIP-345), are what
    // librdkafka's own consumer sends, and are served by 2.3 through 4.x; left out are
    // only the rebalance reason (v8, KIP-800) and skip-assignment (v9, KIP-814).
    (ApiKey::JoinGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    // v3+ is left out: librdkafka 2.16's mock answers v3 without the members array and
    // v4 (flexible) with a null one (seen in the integration tests). Only dynamic
    // members leave (a static member never sends LeaveGroup), one at a time, which v2
    // carries; the member batch of v3 (KIP-345) is not used.
    (ApiKey::LeaveGroup, 0, 2),
    (ApiKey::SyncGroup, 0, 3),
    // KIP-848 (group.protocol=consumer). v1 only: the client makes its member id
    // (KIP-1082) and may subscribe by regex; v0 was the early-access form of Kafka
    // 3.7–3.9. Kafka 4.0+ and librdkafka 2.16's mock serve v1.
    (ApiKey::ConsumerGroupHeartbeat, 1, 1),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, API_VERSIONS_MAX),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    // Transactions (KIP-98, KIP-447). AddPartitionsToTxn v4+ is the broker-to-broker
    // batch of KIP-890, and EndTxn v5 / TxnOffsetCommit v4+ belong to KIP-890's
    // "transactions v2" (epoch bumped on every commit): the versions here are the
    // classic protocol, which Kafka 0.11 through 4.x serve.
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// The versions of `api` this client implements, if it implements it at all.
pub fn client_versions(api: ApiKey) -> Option<VersionRange> {
    CLIENT_VERSIONS.iter().find(|(k, _, _)| *k == api).map(|&(_, min, max)| VersionRange { min, max })
}

/// The version ranges a broker announced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BrokerVersions {
    ranges: Vec<(i16, VersionRange)>,
}

impl BrokerVersions {
    /// Collects the ranges of an ApiVersions response.
    pub fn from_response(response: &ApiVersionsResponse) -> Self {
        let mut ranges: Vec<_> = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, VersionRange { min: k.min_version, max: k.max_version }))
            .collect();
        ranges.sort_by_key(|(k, _)| *k);
        BrokerVersions { ranges }
    }

    /// The range the broker announced for `api`.
    pub fn get(&self, api: ApiKey) -> Option<VersionRange> {
        let key = api as i16;
        self.ranges.binary_search_by_key(&key, |(k, _)| *k).ok().map(|i| self.ranges[i].1)
    }

    /// The highest version of `api` supported by both sides.
    pub fn negotiate(&self, api: ApiKey) -> Result<i16> {
        let client = client_versions(api).unwrap_or(VersionRange { min: 0, max: -1 });
        let broker = self.get(api);
        match broker.map(|b| b.intersect(&client)) {
            Some(common) if !common.is_empty() => Ok(common.max),
            _ => Err(ProtocolError::NoCommonVersion { api, client, broker }),
        }
    }
}

/// What to do with an ApiVersions answer.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiVersionsReply {
    /// The broker answered: these are its ranges.
    Supported(BrokerVersions),
    /// The broker does not know the version sent; send ApiVersions again at this one.
    RetryWith(i16),
}

/// Interprets the response frame to an ApiVersions request sent at `sent_version`.
pub fn parse_api_versions(frame: Bytes, sent_version: i16) -> Result<ApiVersionsReply> {
    // The error code is the first body field in every version, right after the
    // v0 response header (correlation id).
    let code = frame.get(4..6).map(|b| i16::from_be_bytes([b[0], b[1]]));
    if code == Some(UNSUPPORTED_VERSION) && sent_version > 0 {
        // Brokers answer in the v0 layout with their own range for ApiVersions. Some
        // (librdkafka 2.0.2's mock) send a layout that fits no version; like
        // librdkafka, fall back to v0 then, which every broker understands.
        let retry = decode_response::<ApiVersionsResponse>(frame, ApiKey::ApiVersions, 0)
            .ok()
            .and_then(|(_, body)| BrokerVersions::from_response(&body).get(ApiKey::ApiVersions))
            .map_or(0, |r| r.max.min(sent_version - 1).max(0));
        return Ok(ApiVersionsReply::RetryWith(retry));
    }
    let (_, body) = decode_response::<ApiVersionsResponse>(frame, ApiKey::ApiVersions, sent_version)?;
    if body.error_code != 0 {
        return Err(ProtocolError::ApiVersionsFailed { code: body.error_code });
    }
    Ok(ApiVersionsReply::Supported(BrokerVersions::from_response(&body)))
}

/// A request body for ApiVersions at `version`, naming this client (v3+).
pub fn api_versions_request(version: i16) -> kafka_protocol::messages::ApiVersionsRequest {
    use kafka_protocol::protocol::StrBytes;
    let mut req = kafka_protocol::messages::ApiVersionsRequest::default();
    if version >= 3 {
        req.client_software_name = StrBytes::from_static_str("ferrokafka");
        req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
    }
    req
}
