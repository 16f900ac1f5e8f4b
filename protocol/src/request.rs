//! Typed requests: each request type names its API key and its response type, so a
//! caller picks neither by hand (`conn.call(&MetadataRequest…)` answers a
//! `MetadataResponse`, sent as ApiKey::Metadata).

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

/// A request the client sends, with its API key and its response type.
pub trait Request: Encodable + Send + Sync {
    /// The API.
    const API: ApiKey;
    /// What the broker answers.
    type Response: Decodable + Send;
}

macro_rules! requests {
    ($($api:ident => $req:ident, $resp:ident;)*) => {
        $(impl Request for $req {
            const API: ApiKey = ApiKey::$api;
            type Response = $resp;
        })*
    };
}

requests! {
    Produce => ProduceRequest, ProduceResponse;
    Fetch => FetchRequest, FetchResponse;
    ListOffsets => ListOffsetsRequest, ListOffsetsResponse;
    Metadata => MetadataRequest, MetadataResponse;
    OffsetCommit => OffsetCommitRequest, OffsetCommitResponse;
    OffsetFetch => OffsetFetchRequest, OffsetFetchResponse;
    FindCoordinator => FindCoordinatorRequest, FindCoordinatorResponse;
    JoinGroup => JoinGroupRequest, JoinGroupResponse;
    Heartbeat => HeartbeatRequest, HeartbeatResponse;
    LeaveGroup => LeaveGroupRequest, LeaveGroupResponse;
    SyncGroup => SyncGroupRequest, SyncGroupResponse;
    DescribeGroups => DescribeGroupsRequest, DescribeGroupsResponse;
    ListGroups => ListGroupsRequest, ListGroupsResponse;
    SaslHandshake => SaslHandshakeRequest, SaslHandshakeResponse;
    ApiVersions => ApiVersionsRequest, ApiVersionsResponse;
    CreateTopics => CreateTopicsRequest, CreateTopicsResponse;
    DeleteTopics => DeleteTopicsRequest, DeleteTopicsResponse;
    InitProducerId => InitProducerIdRequest, InitProducerIdResponse;
    AddPartitionsToTxn => AddPartitionsToTxnRequest, AddPartitionsToTxnResponse;
    AddOffsetsToTxn => AddOffsetsToTxnRequest, AddOffsetsToTxnResponse;
    EndTxn => EndTxnRequest, EndTxnResponse;
    TxnOffsetCommit => TxnOffsetCommitRequest, TxnOffsetCommitResponse;
    SaslAuthenticate => SaslAuthenticateRequest, SaslAuthenticateResponse;
    DeleteGroups => DeleteGroupsRequest, DeleteGroupsResponse;
    OffsetDelete => OffsetDeleteRequest, OffsetDeleteResponse;
    ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse;
}
