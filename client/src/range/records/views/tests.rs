//! `for_each_view` against `next`: the same records, the same outcome and the same
//! remainder, on ranges over random partitions (gaps, batches that start before the
//! fetch position, compressed batches, a record that does not decode, a fetch that
//! fails), with chunks still arriving while the range is read, read whole by either or
//! begun by `next`, and for a second range continuing from the first one's remainder.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use ferrokafka_protocol::records::{Batch, DecodeOptions, NewRecord, RecordBatchBuilder, RecordSet};
use ferrokafka_protocol::{Compression, ProtocolError};
use proptest::prelude::*;
use tokio::sync::mpsc;

use super::super::{Chunk, PartitionRecords, RemainderSink};
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// One batch: its first offset, offset deltas (increasing), whether zstd.
type Spec = (i64, Vec<i32>, bool);

/// Length of a v2 batch header: the first record starts there.
const HEADER: usize = 61;

/// How the fetch loop delivers a partition: batches per chunk, a record that does not
/// decode (batch, record; in an uncompressed batch), a fetch that fails after that many
/// chunks, how far past its last record each chunk's next position lies (a compacted
/// tail, filtered control or aborted batches), and whether an empty chunk (a fetch that
/// gave only such batches) follows each.
#[derive(Clone, Copy, Debug)]
struct Feed {
    per_chunk: usize,
    corrupt: Option<(usize, usize)>,
    fail_after: Option<usize>,
    tail: i64,
    empty: bool,
}

/// Encodes a batch; with `corrupt`, that record's length is made negative (the CRC is
/// not checked, so the batch decodes and the record does not).
fn encode((base, deltas, zstd): &Spec, corrupt: Option<usize>) -> Batch {
    let compression = if *zstd { Compression::Zstd } else { Compression::None };
    let mut b = RecordBatchBuilder::new(compression).base_offset(*base);
    for d in deltas {
        let value = format!("v{}", base + i64::from(*d));
        let r = NewRecord { key: Some(b"k"), value: Some(value.as_bytes()), headers: &[], timestamp: 0 };
        b.push_at(*d, &r).expect("push");
    }
    let mut out = BytesMut::new();
    b.finish(&mut out).expect("finish");
    if let (Some(k), false) = (corrupt, zstd) {
        let mut pos = HEADER;
        for _ in 0..k % deltas.len() {
            // Each record is short: its length is one zig-zag varint byte.
            assert!(out[pos] < 0x80 && out[pos].is_multiple_of(2), "a one-byte length");
            pos += 1 + usize::from(out[pos] / 2);
        }
        out[pos] = 0x01;
    }
    let opts = DecodeOptions { check_crcs: false, ..DecodeOptions::default() };
    let mut set = RecordSet::new(out.freeze(), opts);
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

fn feeds() -> impl Strategy<Value = Feed> {
    let corrupt = prop::option::weighted(0.25, (0usize..8, 0usize..6));
    let fail = prop::option::weighted(0.25, 0usize..4);
    let tail = prop_oneof![3 => Just(0i64), 1 => 1i64..3];
    (1usize..4, corrupt, fail, tail, prop::bool::weighted(0.2))
        .prop_map(|(per_chunk, corrupt, fail_after, tail, empty)| Feed { per_chunk, corrupt, fail_after, tail, empty })
}

fn last_offset((base, deltas, _): &Spec) -> i64 {
    base + i64::from(*deltas.last().expect("records"))
}

/// How a read ended, when not at the range's end.
#[derive(Debug, PartialEq)]
enum Ended {
    /// `NonConsecutive`: expected, got.
    Gap(i64, i64),
    /// A record that did not decode: its batch's base offset and its index.
    Corrupt(i64, u32),
    /// The fetch loop's error, passed on.
    FetchFailed,
}

/// What a read gave: each record's offset and value, how it ended, and the offsets
/// left in its remainder.
#[derive(Debug, PartialEq)]
struct Outcome {
    records: Vec<(i64, Bytes)>,
    error: Option<Ended>,
    remainder: Option<(i64, Vec<i64>)>,
}

/// The fetch loop's side (`reader.rs`) for a range read from `from` to `until`: the
/// chunks of the batches whose last offset is at least `from`, up to the first whose
/// next position reaches `until`, sent one at a time by a task of their own while the
/// range is read (the channel holds one), then perhaps a failed fetch. Run inside a
/// runtime.
fn fetch(specs: &[Spec], (from, until): (i64, i64), feed: Feed) -> mpsc::Receiver<Result<Chunk>> {
    let corrupt = feed.corrupt.map(|(b, r)| (b % specs.len(), r));
    let batches: Vec<(usize, &Spec)> = specs.iter().enumerate().filter(|(_, s)| last_offset(s) >= from).collect();
    let mut chunks = Vec::new();
    let mut start = from;
    for group in batches.chunks(feed.per_chunk) {
        if start >= until {
            break;
        }
        let next = (last_offset(group.last().expect("a batch").1) + 1 + feed.tail).max(start);
        let encoded = group.iter().map(|(i, s)| encode(s, corrupt.filter(|c| c.0 == *i).map(|c| c.1))).collect();
        chunks.push(Chunk { batches: encoded, start, next, reservation: None });
        start = next;
        if feed.empty && start < until {
            chunks.push(Chunk { batches: Vec::new(), start, next: start + 1, reservation: None });
            start += 1;
        }
    }
    let fail_after = feed.fail_after.map(|n| n.min(chunks.len()));
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        for (i, chunk) in chunks.into_iter().enumerate() {
            if fail_after == Some(i) {
                break;
            }
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        if fail_after.is_some() {
            let reason = "the fetch failed".to_owned();
            let _ = tx.send(Err(ClientError::Disconnected { broker: "b".into(), reason })).await;
        }
    });
    rx
}

fn sink() -> RemainderSink {
    Arc::new(Mutex::new(None))
}

/// A fresh range's records, fetched from its start.
fn fresh(specs: &[Spec], range: (i64, i64), gaps: bool, feed: Feed, sink: &RemainderSink) -> PartitionRecords {
    let rx = (range.0 < range.1).then(|| fetch(specs, range, feed));
    let mut r = PartitionRecords::new(TopicPartition::new("t", 0), range, gaps, rx, None, None, None);
    r.keep_remainder_in(sink.clone());
    r
}

/// Reads `first` records with `next`, then the rest with `for_each_view` when
/// `views`, else with `next`.
async fn read(mut r: PartitionRecords, sink: &RemainderSink, first: usize, views: bool) -> Outcome {
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
        ClientError::NonConsecutive { expected, got, .. } => Ended::Gap(expected, got),
        ClientError::Protocol { source: ProtocolError::CorruptRecord { offset, index, .. }, .. } => {
            Ended::Corrupt(offset, index)
        }
        ClientError::Disconnected { .. } => Ended::FetchFailed,
        other => panic!("unexpected error {other}"),
    });
    let served = sink.lock().expect("sink").as_ref().map(|rest| rest.served_until);
    Outcome { records, error, remainder: served.map(|s| (s, Vec::new())) }
}

/// The offsets a remainder holds (it is used up).
fn rest_of(sink: &RemainderSink, outcome: &mut Outcome) {
    if let (Some(mut rest), Some(out)) = (sink.lock().expect("sink").take(), outcome.remainder.as_mut()) {
        while let Some(rec) = rest.cursor.next_record() {
            match rec {
                Ok(rec) => out.1.push(rec.offset),
                Err(_) => {
                    out.1.push(-1);
                    break;
                }
            }
        }
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
}

/// One range read all with `next`, and again with `first` by `next` and the rest by views.
fn one(specs: &[Spec], range: (i64, i64), gaps: bool, feed: Feed, first: usize) -> (Outcome, Outcome) {
    let once = |first, views| {
        block_on(async {
            let sink = sink();
            let mut out = read(fresh(specs, range, gaps, feed, &sink), &sink, first, views).await;
            rest_of(&sink, &mut out);
            out
        })
    };
    (once(usize::MAX, false), once(first, true))
}

/// Two ranges, the second starting where the first ended and continuing from its
/// remainder when `resume_at` allows, as `resume_ranges` does: the outcome of each and
/// whether the second was resumed.
async fn chain(
    specs: &[Spec],
    r1: (i64, i64),
    len2: i64,
    gaps: bool,
    feed: Feed,
    first: [usize; 2],
    views: bool,
) -> (Outcome, Outcome, bool) {
    let sink1 = sink();
    let one = read(fresh(specs, r1, gaps, feed, &sink1), &sink1, first[0], views).await;
    let r2 = (r1.1, r1.1 + len2);
    let rest = sink1.lock().expect("sink").take().and_then(|m| m.resume_at(r2.0, gaps));
    let sink2 = sink();
    let second = match rest {
        Some((cursor, next)) => {
            let rx = (r2.0 < r2.1 && next < r2.1).then(|| fetch(specs, (next, r2.1), feed));
            let mut r = PartitionRecords::new(TopicPartition::new("t", 0), r2, gaps, rx, Some(cursor), None, None);
            r.keep_remainder_in(sink2.clone());
            r
        }
        None => fresh(specs, r2, gaps, feed, &sink2),
    };
    let resumed = second.resumed();
    let mut two = read(second, &sink2, first[1], views).await;
    rest_of(&sink2, &mut two);
    (one, two, resumed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn views_read_what_next_reads(
        specs in partition(),
        a in 0i64..40,
        len in 0i64..40,
        gaps: bool,
        feed in feeds(),
        first in 0usize..6,
    ) {
        let (owned, viewed) = one(&specs, (a, a + len), gaps, feed, first);
        prop_assert_eq!(owned, viewed);
    }

    #[test]
    fn views_read_what_next_reads_in_a_resumed_range(
        specs in partition(),
        a in 0i64..30,
        len in 0i64..20,
        len2 in 0i64..20,
        gaps: bool,
        feed in feeds(),
        first in (0usize..4, 0usize..4),
    ) {
        let owned = block_on(chain(&specs, (a, a + len), len2, gaps, feed, [usize::MAX; 2], false));
        let viewed = block_on(chain(&specs, (a, a + len), len2, gaps, feed, [first.0, first.1], true));
        prop_assert_eq!(owned, viewed);
    }
}

const PLAIN: Feed = Feed { per_chunk: 2, corrupt: None, fail_after: None, tail: 0, empty: false };

/// Offsets 0, 1, 2 | 4, 5 (zstd) | 6, 8.
fn known() -> Vec<Spec> {
    vec![(0, vec![0, 1, 2], false), (4, vec![0, 1], true), (6, vec![0, 2], false)]
}

fn offsets(o: &Outcome) -> Vec<i64> {
    o.records.iter().map(|r| r.0).collect()
}

/// The checks above compare against `next`; these pin what both must give on a known
/// partition, so that a fault shared by both would show.
#[test]
fn a_known_range_reads_its_records_and_leaves_the_rest() {
    let (owned, viewed) = one(&known(), (1, 5), true, PLAIN, 1);
    assert_eq!(owned, viewed);
    assert_eq!(offsets(&viewed), [1, 2, 4]);
    assert_eq!(viewed.records[2].1, Bytes::from_static(b"v4"));
    assert_eq!(viewed.error, None);
    // The first chunk (batches 1 and 2, fetched up to 6) is left from offset 5.
    assert_eq!(viewed.remainder, Some((5, vec![5])));
    // A range that ends with its chunk leaves nothing.
    let (owned, viewed) = one(&known(), (1, 6), true, PLAIN, 1);
    assert_eq!(owned, viewed);
    assert_eq!((offsets(&viewed), viewed.remainder), (vec![1, 2, 4, 5], None));

    let (owned, viewed) = one(&known(), (1, 6), false, PLAIN, 0);
    assert_eq!(owned, viewed);
    assert_eq!(offsets(&viewed), [1, 2]);
    assert_eq!(viewed.error, Some(Ended::Gap(3, 4)));
}

#[test]
fn a_known_range_stops_at_a_broken_record_or_a_failed_fetch() {
    // The second record of the first batch (offset 1) does not decode.
    let broken = Feed { corrupt: Some((0, 1)), ..PLAIN };
    let (owned, viewed) = one(&known(), (0, 9), true, broken, 0);
    assert_eq!(owned, viewed);
    assert_eq!(offsets(&viewed), [0]);
    assert_eq!(viewed.error, Some(Ended::Corrupt(0, 1)));
    assert_eq!(viewed.remainder, None);

    // The second fetch fails: the first chunk's records, then its error.
    let failing = Feed { fail_after: Some(1), ..PLAIN };
    let (owned, viewed) = one(&known(), (0, 9), true, failing, 2);
    assert_eq!(owned, viewed);
    assert_eq!(offsets(&viewed), [0, 1, 2, 4, 5]);
    assert_eq!(viewed.error, Some(Ended::FetchFailed));
}

#[test]
fn a_known_second_range_continues_from_the_remainder() {
    let run = |first, views| block_on(chain(&known(), (1, 5), 4, true, PLAIN, first, views));
    let (one, two, resumed) = run([1, 1], true);
    assert_eq!((&one.error, &two.error), (&None, &None));
    assert_eq!(offsets(&one), [1, 2, 4]);
    // Record 5 comes from the first chunk, kept; 6 and 8 from a fetch at 6.
    assert!(resumed);
    assert_eq!(offsets(&two), [5, 6, 8]);
    assert_eq!(run([usize::MAX; 2], false), run([1, 1], true));
    assert_eq!(run([usize::MAX; 2], false), run([0, 0], true));
}
