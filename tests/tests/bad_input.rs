//! A scripted fake broker feeds the protocol crate malformed responses over a real
//! socket; each case must end in its typed error, never a panic or a hang.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferrokafka_protocol::frame::FrameDecoder;
use ferrokafka_protocol::ProtocolError;
use ferrokafka_tests::fake::{frame, response_frame, FakeCluster, Step};
use ferrokafka_tests::raw::{RawConnection, RawError};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, MetadataRequest, MetadataResponse};

/// An ApiVersions v3 answer announcing `apis` as (key, min, max).
fn versions(apis: &'static [(ApiKey, i16, i16)]) -> Step {
    Step::reply(move |req| {
        let keys = apis
            .iter()
            .map(|&(k, min, max)| {
                ApiVersion::default().with_api_key(k as i16).with_min_version(min).with_max_version(max)
            })
            .collect();
        response_frame(
            ApiKey::ApiVersions,
            req.version,
            req.correlation_id,
            &ApiVersionsResponse::default().with_api_keys(keys),
        )
    })
}

const BASIC: &[(ApiKey, i16, i16)] = &[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12), (ApiKey::Produce, 0, 2)];

fn metadata(conn: &mut RawConnection) -> Result<MetadataResponse, RawError> {
    conn.call(ApiKey::Metadata, &MetadataRequest::default())
}

#[test]
fn oversized_length_prefix_is_rejected_before_reading_it() {
    let fake = FakeCluster::scripted(vec![
        versions(BASIC),
        Step::Read,
        Step::Raw(i32::MAX.to_be_bytes().to_vec()),
        Step::Close,
    ]);
    let mut conn = RawConnection::connect_with(&fake.addr(), FrameDecoder::new(1 << 20)).unwrap();
    conn.negotiate().unwrap();
    match metadata(&mut conn) {
        Err(RawError::Protocol(ProtocolError::FrameTooLarge { size, max })) => {
            assert_eq!((size, max), (i32::MAX as u64, 1 << 20))
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    fake.finish().unwrap();
}

#[test]
fn negative_length_prefix() {
    let fake = FakeCluster::scripted(vec![
        versions(BASIC),
        Step::Read,
        Step::Raw((-2i32).to_be_bytes().to_vec()),
        Step::Close,
    ]);
    let mut conn = RawConnection::connect(&fake.addr()).unwrap();
    assert!(matches!(metadata(&mut conn), Err(RawError::Protocol(ProtocolError::NegativeFrameSize(-2)))));
}

#[test]
fn wrong_correlation_id() {
    let fake = FakeCluster::scripted(vec![
        versions(BASIC),
        Step::reply(|req| {
            response_frame(ApiKey::Metadata, req.version, req.correlation_id + 7, &MetadataResponse::default())
        }),
        Step::Close,
    ]);
    let mut conn = RawConnection::connect(&fake.addr()).unwrap();
    match metadata(&mut conn) {
        Err(RawError::Protocol(e @ ProtocolError::CorrelationMismatch { expected: 2, actual: 9 })) => {
            assert!(e.is_retriable())
        }
        other => panic!("expected CorrelationMismatch, got {other:?}"),
    }
}

#[test]
fn truncated_response_then_close() {
    let fake = FakeCluster::scripted(vec![
        versions(BASIC),
        Step::reply(|req| {
            let full = response_frame(ApiKey::Metadata, req.version, req.correlation_id, &MetadataResponse::default());
            full[..full.len() / 2].to_vec()
        }),
        Step::Close,
    ]);
    let mut conn = RawConnection::connect(&fake.addr()).unwrap();
    match metadata(&mut conn) {
        Err(RawError::Closed { partial }) => assert!(partial > 0),
        other => panic!("expected Closed mid-frame, got {other:?}"),
    }
}

#[test]
fn malformed_body_names_the_api_and_trailing_bytes_are_ignored() {
    for body in [vec![0xff; 3], {
        let mut v = vec![0u8; 64];
        v[0] = 0x7f; // an absurd array length
        v
    }] {
        let fake = FakeCluster::scripted(vec![
            versions(BASIC),
            Step::reply(move |req| {
                let mut payload = req.correlation_id.to_be_bytes().to_vec();
                payload.push(0); // v9+ response header tagged fields
                payload.extend_from_slice(&body);
                frame(&payload)
            }),
            Step::Close,
        ]);
        let mut conn = RawConnection::connect(&fake.addr()).unwrap();
        match metadata(&mut conn) {
            Err(RawError::Protocol(ProtocolError::Decode { api: ApiKey::Metadata, version: 12, .. })) => {}
            other => panic!("expected a Metadata decode error, got {other:?}"),
        }
    }
    // Trailing bytes after a complete body are ignored, as the Java client and
    // librdkafka do (the mock cluster appends some to ListOffsets v5).
    let fake = FakeCluster::scripted(vec![
        versions(BASIC),
        Step::reply(|req| {
            let body = MetadataResponse::default().with_controller_id(kafka_protocol::messages::BrokerId(7));
            let mut f = response_frame(ApiKey::Metadata, req.version, req.correlation_id, &body);
            f.extend_from_slice(&[1, 2, 3]);
            let len = (f.len() - 4) as i32;
            f[..4].copy_from_slice(&len.to_be_bytes());
            f
        }),
        Step::Close,
    ]);
    let mut conn = RawConnection::connect(&fake.addr()).unwrap();
    assert_eq!(metadata(&mut conn).unwrap().controller_id.0, 7);
}

#[test]
fn no_common_version_names_the_api() {
    let fake = FakeCluster::scripted(vec![versions(BASIC), Step::Close]);
    let conn = RawConnection::connect(&fake.addr()).unwrap();
    match conn.version(ApiKey::Produce) {
        Err(RawError::Protocol(e @ ProtocolError::NoCommonVersion { api: ApiKey::Produce, .. })) => {
            let text = e.to_string();
            assert!(text.contains("Produce") && text.contains("0..2") && text.contains("3..9"), "{text}");
        }
        other => panic!("expected NoCommonVersion, got {other:?}"),
    }
    assert!(matches!(
        conn.version(ApiKey::Fetch),
        Err(RawError::Protocol(ProtocolError::NoCommonVersion { broker: None, .. }))
    ));
}

#[test]
fn api_versions_fallback_and_failure() {
    // A broker that only speaks ApiVersions v0..1 answers UNSUPPORTED_VERSION with its range.
    let fake = FakeCluster::scripted(vec![
        Step::reply(|req| {
            assert_eq!(req.version, 3);
            let keys = vec![ApiVersion::default().with_api_key(18).with_min_version(0).with_max_version(1)];
            response_frame(
                ApiKey::ApiVersions,
                0,
                req.correlation_id,
                &ApiVersionsResponse::default().with_error_code(35).with_api_keys(keys),
            )
        }),
        versions(BASIC),
        Step::Close,
    ]);
    let conn = RawConnection::connect(&fake.addr()).unwrap();
    assert_eq!(conn.api_versions_sent, [3, 1]);
    assert_eq!(fake.finish().unwrap().iter().map(|r| r.version).collect::<Vec<_>>(), [3, 1]);

    let fake = FakeCluster::scripted(vec![
        Step::reply(|req| {
            response_frame(
                ApiKey::ApiVersions,
                req.version,
                req.correlation_id,
                &ApiVersionsResponse::default().with_error_code(31),
            )
        }),
        Step::Close,
    ]);
    assert!(matches!(
        RawConnection::connect(&fake.addr()),
        Err(RawError::Protocol(ProtocolError::ApiVersionsFailed { code: 31 }))
    ));
}
