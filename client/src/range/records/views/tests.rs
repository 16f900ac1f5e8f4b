//! `for_each_view` against `next`: the same records, the same outcome and the same
//! remainder, on ranges over random partitions (gaps, batches that start before the
//! fetch position, compressed batches), read whole by either or begun by `next`.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use ferrokafka_protocol::records::{Batch, DecodeOptions, NewRecord, RecordBatchBuilder, RecordSet};
use ferrokafka_protocol::Compression;
use proptest::prelude::*;
use tokio::sync::mpsc;

use super::super::{Chunk, PartitionRecords, RemainderSink};
use crate::error::ClientError;
use crate::metadata::TopicPartition;

/// One batch: its first offset, offset deltas (increasing), whether zstd.
type Spec = (i64, Vec<i32>, bool);

fn encode((base, deltas, zstd): &Spec) -> Batch {
    let compression = if *zstd { Compression::Zstd } else { Compression::None };
    let mut b = RecordBatchBuilder::new(compression).base_offset(*base);
    for d in deltas {
        let value = format!("v{}", base + i64::from(*d));
        let r = NewRecord { key: Some(b"k"), value: Some(value.as_bytes()), headers: &[], timestamp: 0 };
        b.push_at(*d, &r).expect("push");
    }
    let mut out = BytesMut::new();
    b.finish(&mut out).expect("finish");
    let mut set = RecordSet::new(out.freeze(), DecodeOptions::default());
    set.next().expect("one batch").expect("valid")
}

/// Batches with gaps between and inside them, from offset 0.
fn partition() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec((0i64..3, prop::collection::vec(1i32..3, 1..6), any::<bool>()), 1..8).prop_map(|raw| {
        let mut next = 0;
        raw.into_iter()
            .map(|(skip, steps, zstd)| {
                let base = next + skip;
                let mut d = 0;
                let deltas: Vec<i32> = steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        if i > 0 {
                            d += s;
                        }
                        d
                    })
                    .collect();
                next = base + i64::from(d) + 1;
                (base, deltas, zstd)
            })
            .collect()
    })
}

fn last_offset((base, deltas, _): &Spec) -> i64 {
    base + i64::from(*deltas.last().expect("records"))
}

/// What a read gave: each record's offset and value, how it ended, and the offsets
/// left in its remainder.
#[derive(Debug, PartialEq)]
struct Outcome {
    records: Vec<(i64, Bytes)>,
    error: Option<(i64, i64)>,
    remainder: Option<(i64, Vec<i64>)>,
}

/// The chunks a fetch loop starting at `from` would deliver: the batches whose last
/// offset is at least `from`, `per_chunk` at a time.
fn records(specs: &[Spec], range: (i64, i64), gaps: bool, per_chunk: usize) -> (PartitionRecords, RemainderSink) {
    let batches: Vec<&Spec> = specs.iter().filter(|s| last_offset(s) >= range.0).collect();
    let (tx, rx) = mpsc::channel(batches.len().max(1));
    let mut start = range.0;
    for group in batches.chunks(per_chunk) {
        let next = last_offset(group.last().expect("a batch")) + 1;
        let chunk = Chunk { batches: group.iter().map(|s| encode(s)).collect(), start, next, reservation: None };
        tx.try_send(Ok(chunk)).expect("room");
        start = next;
    }
    drop(tx);
    let tp = TopicPartition::new("t", 0);
    let mut r = PartitionRecords::new(tp, range, gaps, Some(rx), None, None, None);
    let sink: RemainderSink = Arc::new(Mutex::new(None));
    r.keep_remainder_in(sink.clone());
    (r, sink)
}

/// Reads `first` records with `next`, then the rest with `for_each_view` when
/// `views`, else with `next`.
async fn read(mut r: PartitionRecords, sink: RemainderSink, first: usize, views: bool) -> Outcome {
    let mut records = Vec::new();
    let mut result = Ok(());
    for _ in 0..first {
        match r.next().await {
            Some(Ok(rec)) => records.push((rec.offset, rec.value.expect("value"))),
            Some(Err(e)) => {
                result = Err(e);
                break;
            }
            None => break,
        }
    }
    if result.is_ok() {
        if views {
            let before = records.len();
            result = r
                .for_each_view(|v| records.push((v.offset, v.value_bytes().expect("value"))))
                .await
                .map(|n| assert_eq!(n as usize, records.len() - before, "count"));
        } else {
            while let Some(rec) = r.next().await {
                match rec {
                    Ok(rec) => records.push((rec.offset, rec.value.expect("value"))),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
    }
    assert!(r.next().await.is_none(), "the range is over");
    let error = result.err().map(|e| match e {
        ClientError::NonConsecutive { expected, got, .. } => (expected, got),
        other => panic!("unexpected error {other}"),
    });
    let remainder = sink.lock().expect("sink").take().map(|mut rest| {
        let mut left = Vec::new();
        while let Some(rec) = rest.cursor.next_record() {
            left.push(rec.expect("valid").offset);
        }
        (rest.served_until, left)
    });
    Outcome { records, error, remainder }
}

fn run(specs: &[Spec], range: (i64, i64), gaps: bool, per_chunk: usize, first: usize) -> (Outcome, Outcome) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async {
        let (r, sink) = records(specs, range, gaps, per_chunk);
        let owned = read(r, sink, usize::MAX, false).await;
        let (r, sink) = records(specs, range, gaps, per_chunk);
        let viewed = read(r, sink, first, true).await;
        (owned, viewed)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn views_read_what_next_reads(
        specs in partition(),
        a in 0i64..40,
        len in 0i64..40,
        gaps: bool,
        per_chunk in 1usize..4,
        first in 0usize..6,
    ) {
        let (owned, viewed) = run(&specs, (a, a + len), gaps, per_chunk, first);
        prop_assert_eq!(owned, viewed);
    }
}

/// The checks above compare against `next`; this pins what both must give on a known
/// partition, so that a fault shared by both would show.
#[test]
fn a_known_range_reads_its_records_and_leaves_the_rest() {
    // Offsets 0, 1, 2 | 4, 5 (zstd) | 6, 8.
    let specs = vec![(0, vec![0, 1, 2], false), (4, vec![0, 1], true), (6, vec![0, 2], false)];
    let (owned, viewed) = run(&specs, (1, 6), true, 2, 1);
    assert_eq!(owned, viewed);
    let offsets: Vec<i64> = viewed.records.iter().map(|r| r.0).collect();
    assert_eq!(offsets, [1, 2, 4, 5]);
    assert_eq!(viewed.records[2].1, Bytes::from_static(b"v4"));
    assert_eq!(viewed.error, None);
    // The chunk of batches 2 and 3 is left from offset 6.
    assert_eq!(viewed.remainder, Some((6, vec![6, 8])));

    let (owned, viewed) = run(&specs, (1, 6), false, 2, 0);
    assert_eq!(owned, viewed);
    assert_eq!(viewed.records.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(viewed.error, Some((3, 4)));
}
