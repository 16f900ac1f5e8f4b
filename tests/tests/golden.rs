//! Golden fixtures written by kafka-python and kcat/librdkafka decode byte for byte
//! to what those peers' own decoders read (see tests/fixtures/records/README.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use ferrokafka_protocol::records::{Batch, DecodeOptions, Record, RecordSet, TimestampType};
use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn opt_hex(v: &Value) -> Option<Vec<u8>> {
    v.as_str().map(hex)
}

/// Expected records, expanding `record_rule` where the fixture uses one.
fn expected_records(j: &Value) -> Vec<Value> {
    if let Some(rule) = j.get("record_rule") {
        let n = rule["count"].as_u64().unwrap();
        let (mul, len, every) = (
            rule["value_mul"].as_u64().unwrap(),
            rule["value_len"].as_u64().unwrap(),
            rule["header_every"].as_u64().unwrap(),
        );
        return (0..n)
            .map(|i| {
                let value: Vec<u8> = (0..len).map(|j| ((i * mul + j) % 256) as u8).collect();
                let value_hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
                let key_hex: String = format!("key-{i:05}").bytes().map(|b| format!("{b:02x}")).collect();
                let headers = if i % every == 0 {
                    let v: String = i.to_string().bytes().map(|b| format!("{b:02x}")).collect();
                    serde_json::json!([[rule["header_name"], v]])
                } else {
                    serde_json::json!([])
                };
                serde_json::json!({
                    "offset": rule["base_offset"].as_i64().unwrap() + i as i64,
                    "timestamp": rule["timestamp_base"].as_i64().unwrap() + (i * rule["timestamp_step"].as_u64().unwrap()) as i64,
                    "key": key_hex, "value": value_hex, "headers": headers,
                })
            })
            .collect();
    }
    j["records"].as_array().unwrap().clone()
}

fn check_record(name: &str, got: &Record, want: &Value) {
    let ctx = format!("{name} offset {}", got.offset);
    assert_eq!(got.offset, want["offset"].as_i64().unwrap(), "{ctx}");
    assert_eq!(got.timestamp, want["timestamp"].as_i64().unwrap_or(-1), "{ctx}: timestamp");
    assert_eq!(got.key.as_deref().map(<[u8]>::to_vec), opt_hex(&want["key"]), "{ctx}: key");
    assert_eq!(got.value.as_deref().map(<[u8]>::to_vec), opt_hex(&want["value"]), "{ctx}: value");
    let headers: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        got.headers.iter().map(|h| (h.key.to_vec(), h.value.map(|v| v.to_vec()))).collect();
    let want_headers: Vec<(Vec<u8>, Option<Vec<u8>>)> = want["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().as_bytes().to_vec(), opt_hex(&h[1])))
        .collect();
    assert_eq!(headers, want_headers, "{ctx}: headers");
}

fn check_batch(name: &str, got: &Batch, want: &Value) {
    let ctx = format!("{name} batch at {}", got.base_offset);
    let codec = want["codec"].as_str().unwrap();
    assert_eq!(got.compression.name(), codec, "{ctx}: codec");
    assert_eq!(i64::from(got.magic), want["magic"].as_i64().unwrap(), "{ctx}: magic");
    if got.magic == 2 {
        assert_eq!(got.base_offset, want["base_offset"].as_i64().unwrap(), "{ctx}");
        assert_eq!(got.last_offset - got.base_offset, want["last_offset_delta"].as_i64().unwrap(), "{ctx}");
        assert_eq!(got.producer_id, want["producer_id"].as_i64().unwrap(), "{ctx}: producer id");
        assert_eq!(i64::from(got.producer_epoch), want["producer_epoch"].as_i64().unwrap(), "{ctx}");
        assert_eq!(i64::from(got.base_sequence), want["base_sequence"].as_i64().unwrap(), "{ctx}");
        assert_eq!(i64::from(got.partition_leader_epoch), want["partition_leader_epoch"].as_i64().unwrap(), "{ctx}");
        assert_eq!(got.is_transactional, want["is_transactional"].as_bool().unwrap(), "{ctx}");
        assert_eq!(got.is_control, want["is_control"].as_bool().unwrap(), "{ctx}");
        assert_eq!(i64::from(got.record_count), want["record_count"].as_i64().unwrap(), "{ctx}");
        let tt = if got.timestamp_type == TimestampType::LogAppendTime { "log_append" } else { "create" };
        assert_eq!(tt, want["timestamp_type"].as_str().unwrap(), "{ctx}: timestamp type");
    } else {
        // A legacy entry's offset is that of its last (inner) message.
        assert_eq!(got.last_offset, want["offset"].as_i64().unwrap(), "{ctx}: wrapper offset");
    }
}

#[test]
fn every_fixture_decodes_as_its_writer_intended() {
    let dir = ferrokafka_tests::repo_root().join("tests/fixtures/records");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 25, "expected the full fixture set in {}, found {names:?}", dir.display());
    let mut total_records = 0;
    for name in &names {
        let j: Value = serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
        let data = Bytes::from(std::fs::read(dir.join(format!("{name}.bin"))).unwrap());
        let want_batches: Vec<&Value> =
            j["batches"].as_array().unwrap().iter().filter(|b| !b["truncated"].as_bool().unwrap_or(false)).collect();
        let expect_truncated =
            j["batches"].as_array().unwrap().iter().any(|b| b["truncated"].as_bool().unwrap_or(false));
        let mut set = RecordSet::new(data, DecodeOptions::default());
        let mut got_records = Vec::new();
        let mut got_batches = 0;
        for batch in set.by_ref() {
            let batch = batch.unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Some(want) = want_batches.get(got_batches) {
                check_batch(name, &batch, want);
            }
            got_batches += 1;
            for r in batch.records() {
                got_records.push(r.unwrap_or_else(|e| panic!("{name}: {e}")));
            }
        }
        assert_eq!(set.truncated(), expect_truncated, "{name}: truncation");
        assert_eq!(got_batches, want_batches.len(), "{name}: batch count");
        let want_records = expected_records(&j);
        assert_eq!(got_records.len(), want_records.len(), "{name}: record count");
        for (g, w) in got_records.iter().zip(&want_records) {
            check_record(name, g, w);
        }
        total_records += got_records.len();
    }
    assert!(total_records > 300, "decoded only {total_records} records");
}
