//! Decoding fetched partitions: batches to deliver, the next fetch offset, the bytes held.
//! Compressed partitions of one response are decoded in parallel, off the async workers.

use bytes::Bytes;
use ferrokafka_protocol::records::{
    AbortedTransaction, AbortedTransactions, Batch, DecodeOptions, OutputBuffers, RecordSet,
};

use crate::config::IsolationLevel;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// One partition's answer, to decode.
pub(crate) struct Work {
    pub(crate) tp: TopicPartition,
    pub(crate) offset: i64,
    pub(crate) epoch: u64,
    pub(crate) records: Bytes,
    pub(crate) aborted: Vec<AbortedTransaction>,
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
}

/// What [`decode`] returns.
pub(crate) type Decoded = Result<(Vec<Batch>, i64, usize)>;

/// Whether the first batch of `records` is a compressed v2 batch (magic at byte 16,
/// attributes at bytes 21–22, codec in the low three bits).
fn compressed(records: &[u8]) -> bool {
    records.len() > 22 && records[16] == 2 && i16::from_be_bytes([records[21], records[22]]) & 0x7 != 0
}

/// Decodes every partition of a response, in order. When two or more partitions hold
/// compressed data they are decoded concurrently on blocking threads (decompression is
/// the expensive part); otherwise inline, which for uncompressed data is cheaper than a
/// thread hand-off.
pub(crate) async fn decode_all(
    work: Vec<Work>,
    opts: DecodeOptions,
    isolation: IsolationLevel,
    buffers: Option<&OutputBuffers>,
) -> Vec<(Work, Decoded)> {
    if work.iter().filter(|w| compressed(&w.records)).count() < 2 {
        return work
            .into_iter()
            .map(|mut w| {
                let r = decode(
                    &w.tp,
                    std::mem::take(&mut w.records),
                    (opts, buffers),
                    w.offset,
                    isolation,
                    std::mem::take(&mut w.aborted),
                );
                (w, r)
            })
            .collect();
    }
    let mut tasks = Vec::with_capacity(work.len());
    for mut w in work {
        let (records, aborted) = (std::mem::take(&mut w.records), std::mem::take(&mut w.aborted));
        let (tp, offset) = (w.tp.clone(), w.offset);
        let buffers = buffers.cloned();
        let task = tokio::task::spawn_blocking(move || {
            decode(&tp, records, (opts, buffers.as_ref()), offset, isolation, aborted)
        });
        tasks.push((w, task));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for (w, task) in tasks {
        let r = task.await.unwrap_or_else(|e| {
            Err(ClientError::TaskFailed {
                task: "record decoding",
                reason: format!("{} at offset {}: {e}", w.tp, w.offset),
            })
        });
        out.push((w, r));
    }
    out
}

/// Decodes a partition's records: the batches to deliver, the next fetch offset
/// (past control batches and aborted data too) and the bytes held.
pub(crate) fn decode(
    tp: &TopicPartition,
    records: Bytes,
    (opts, buffers): (DecodeOptions, Option<&OutputBuffers>),
    offset: i64,
    isolation: IsolationLevel,
    aborted: Vec<AbortedTransaction>,
) -> Decoded {
    let size = records.len();
    let mut set = RecordSet::new(records, opts);
    if let Some(buffers) = buffers {
        set = set.with_buffers(buffers);
    }
    let mut filter = AbortedTransactions::new(aborted);
    let mut next = offset;
    let mut batches = Vec::new();
    for b in set.by_ref() {
        let b = b.map_err(|source| ClientError::Protocol { broker: None, partition: Some(tp.clone()), source })?;
        if b.last_offset < offset {
            continue;
        }
        next = next.max(b.last_offset + 1);
        let keep = match isolation {
            IsolationLevel::ReadCommitted => filter.retain(&b),
            IsolationLevel::ReadUncommitted => !b.is_control,
        };
        if keep {
            batches.push(b);
        }
    }
    if next == offset && set.truncated() {
        let size = set.truncated_batch_size().unwrap_or(0);
        return Err(ClientError::BatchTooLarge { partition: tp.clone(), offset, size });
    }
    Ok((batches, next, size))
}
