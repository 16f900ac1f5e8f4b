//! Every response type the client decodes, at every version it may negotiate,
//! chosen by the first two bytes of the input.
#![no_main]
use bytes::Bytes;
use ferrokafka_protocol::frame::decode_response;
use kafka_protocol::messages::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let Some((&ver, body)) = rest.split_first() else { return };
    let frame = Bytes::copy_from_slice(body);
    let v = (ver % 16) as i16;
    macro_rules! try_decode {
        ($($t:ty => $api:expr),* $(,)?) => {{
            let apis = [$($api),*];
            let i = sel as usize % apis.len();
            let mut n = 0;
            $(
                if n == i {
                    let range = $api.valid_versions();
                    let v = range.min + v % (range.max - range.min + 1);
                    let _ = decode_response::<$t>(frame.clone(), $api, v);
                }
                n += 1;
            )*
            let _ = n;
        }};
    }
    try_decode!(
        ApiVersionsResponse => ApiKey::ApiVersions,
        MetadataResponse => ApiKey::Metadata,
        ProduceResponse => ApiKey::Produce,
        FetchResponse => ApiKey::Fetch,
        ListOffsetsResponse => ApiKey::ListOffsets,
        FindCoordinatorResponse => ApiKey::FindCoordinator,
        JoinGroupResponse => ApiKey::JoinGroup,
        SyncGroupResponse => ApiKey::SyncGroup,
        HeartbeatResponse => ApiKey::Heartbeat,
        LeaveGroupResponse => ApiKey::LeaveGroup,
        OffsetCommitResponse => ApiKey::OffsetCommit,
        OffsetFetchResponse => ApiKey::OffsetFetch,
        DescribeGroupsResponse => ApiKey::DescribeGroups,
        ListGroupsResponse => ApiKey::ListGroups,
        CreateTopicsResponse => ApiKey::CreateTopics,
        DeleteTopicsResponse => ApiKey::DeleteTopics,
    );
});
