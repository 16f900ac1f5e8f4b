//! The protocol's names that errors carry: which API a request was ([`Api`]) and
//! which error code a broker answered ([`ErrorCode`]). Both are ferrokafka's own
//! types, so the codec underneath can change without changing them.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

use crate::code_names::NAMES;

/// A Kafka API: the kind of a request (`Produce`, `Fetch`, `JoinGroup`, …), numbered
/// as in the protocol guide. Compare with the constants, or by [`Api::key`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Api(ApiKey);

impl std::hash::Hash for Api {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

macro_rules! apis {
    ($($(#[$doc:meta])* $name:ident = $variant:ident;)*) => {
        impl Api {
            $($(#[$doc])* pub const $name: Api = Api(ApiKey::$variant);)*
        }
    };
}

apis! {
    /// Produce (0).
    PRODUCE = Produce;
    /// Fetch (1).
    FETCH = Fetch;
    /// ListOffsets (2).
    LIST_OFFSETS = ListOffsets;
    /// Metadata (3).
    METADATA = Metadata;
    /// OffsetCommit (8).
    OFFSET_COMMIT = OffsetCommit;
    /// OffsetFetch (9).
    OFFSET_FETCH = OffsetFetch;
    /// FindCoordinator (10).
    FIND_COORDINATOR = FindCoordinator;
    /// JoinGroup (11).
    JOIN_GROUP = JoinGroup;
    /// Heartbeat (12).
    HEARTBEAT = Heartbeat;
    /// LeaveGroup (13).
    LEAVE_GROUP = LeaveGroup;
    /// SyncGroup (14).
    SYNC_GROUP = SyncGroup;
    /// DescribeGroups (15).
    DESCRIBE_GROUPS = DescribeGroups;
    /// ListGroups (16).
    LIST_GROUPS = ListGroups;
    /// SaslHandshake (17).
    SASL_HANDSHAKE = SaslHandshake;
    /// ApiVersions (18).
    API_VERSIONS = ApiVersions;
    /// CreateTopics (19).
    CREATE_TOPICS = CreateTopics;
    /// DeleteTopics (20).
    DELETE_TOPICS = DeleteTopics;
    /// InitProducerId (22).
    INIT_PRODUCER_ID = InitProducerId;
    /// AddPartitionsToTxn (24).
    ADD_PARTITIONS_TO_TXN = AddPartitionsToTxn;
    /// AddOffsetsToTxn (25).
    ADD_OFFSETS_TO_TXN = AddOffsetsToTxn;
    /// EndTxn (26).
    END_TXN = EndTxn;
    /// TxnOffsetCommit (28).
    TXN_OFFSET_COMMIT = TxnOffsetCommit;
    /// SaslAuthenticate (36).
    SASL_AUTHENTICATE = SaslAuthenticate;
    /// ConsumerGroupHeartbeat (68, KIP-848).
    CONSUMER_GROUP_HEARTBEAT = ConsumerGroupHeartbeat;
}

impl Api {
    /// The API key, as in the protocol guide (`Produce` is 0).
    pub fn key(self) -> i16 {
        self.0 as i16
    }

    pub(crate) const fn of(key: ApiKey) -> Api {
        Api(key)
    }
}

impl std::fmt::Display for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// An error code a broker answered with: Java's `Errors` constants, librdkafka's
/// `RD_KAFKA_RESP_ERR_*` (positive ones). `Display` gives the name and number, as
/// `NOT_LEADER_OR_FOLLOWER (code 6)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(i16);

impl ErrorCode {
    /// The code as a number (`NOT_LEADER_OR_FOLLOWER` is 6).
    pub fn code(self) -> i16 {
        self.0
    }

    /// Kafka's name for the code (`"NOT_LEADER_OR_FOLLOWER"`), or `"UNKNOWN"` for one
    /// newer than this client.
    pub fn name(self) -> &'static str {
        NAMES.binary_search_by_key(&self.0, |&(c, _)| c).map_or("UNKNOWN", |i| NAMES[i].1)
    }

    /// Whether Kafka classifies the code as retriable (its exception extends
    /// `RetriableException`).
    pub fn is_retriable(self) -> bool {
        match ResponseError::try_from_code(self.0) {
            // Retriable since Kafka 3.4 (KAFKA-14417).
            Some(ResponseError::ConcurrentTransactions) => true,
            // Codes newer than the codec: SHARE_SESSION_NOT_FOUND,
            // INVALID_SHARE_SESSION_EPOCH, SHARE_SESSION_LIMIT_REACHED (KIP-932).
            Some(ResponseError::Unknown(122 | 123 | 133)) => true,
            Some(e) => e.is_retriable(),
            None => false,
        }
    }

    /// The code of a codec error.
    pub(crate) fn of(error: ResponseError) -> ErrorCode {
        ErrorCode(error.code())
    }

    /// The code as the codec's error (for matching inside the crate).
    pub(crate) fn response(self) -> ResponseError {
        ResponseError::try_from_code(self.0).unwrap_or(ResponseError::Unknown(0))
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> ErrorCode {
        ErrorCode(code)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.name(), self.0)
    }
}

impl std::fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_for_the_binary_search_and_cover_the_codec() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        for code in -1..=136 {
            let c = ErrorCode(code);
            assert_ne!(c.name(), "UNKNOWN", "code {code}");
        }
        assert_eq!(ErrorCode(6).to_string(), "NOT_LEADER_OR_FOLLOWER (code 6)");
        assert_eq!(ErrorCode(999).name(), "UNKNOWN");
        assert_eq!(Api::PRODUCE.key(), 0);
        assert_eq!(Api::SASL_AUTHENTICATE.to_string(), "SaslAuthenticate");
    }
}
