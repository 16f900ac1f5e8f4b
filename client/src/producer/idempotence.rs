//! The idempotent producer's part: a producer id from the cluster, and batches stamped
//! with it and their partition's sequence numbers when first sent.

use bytes::BytesMut;
use ferrokafka_protocol::records::{stamp_producer, stamp_transactional};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tokio::time::Instant;

use super::{PartQueue, SealedBatch, Shared};
use crate::cluster::Cluster;
use crate::error::Subject;
use crate::error::{ClientError, Result};

/// Asks the cluster for a producer id and epoch, retrying retriable failures until
/// `delivery.timeout.ms`; on failure for good the producer turns fatal, and every
/// record queued or sent later fails with the reason.
pub(crate) async fn init(cluster: &Cluster, shared: &Shared) {
    let deadline = Instant::now() + cluster.config().delivery_timeout();
    let mut attempts = 0u32;
    let cause = loop {
        attempts += 1;
        match init_producer_id(cluster).await {
            Ok(id) => {
                tracing::debug!(producer_id = id.0, epoch = id.1, "idempotent producer id");
                shared.lock().producer = Some(id);
                shared.wake.notify_one();
                return;
            }
            Err(e) if e.is_retriable() && Instant::now() < deadline && !shared.lock().closed => {
                tracing::debug!(error = %e, attempts, "InitProducerId failed, retrying");
                tokio::time::sleep(cluster.retry_backoff()).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, attempts, "no producer id for enable.idempotence=true");
                break e;
            }
        }
    };
    shared.lock().fatal = Some(ClientError::ProducerFatal { partition: None, cause: Box::new(cause) });
    shared.wake.notify_one();
}

/// KIP-360: after a batch failed for good, and with nothing in flight, asks for a new
/// epoch of the same producer id (InitProducerId v3+ with the current id and epoch; an
/// older broker gives a new id), then restarts every partition's sequence at 0 and
/// re-stamps the batches not yet acknowledged. As in the Java client, a batch whose
/// earlier attempt may have been stored (its answer was lost) is sent again under the
/// new epoch, which the broker cannot recognize as a duplicate.
pub(crate) async fn bump_epoch(cluster: &Cluster, shared: &Shared) {
    let current = shared.lock().producer;
    let deadline = Instant::now() + cluster.config().delivery_timeout();
    let cause = loop {
        match request_producer_id(cluster, current).await {
            Ok(id) => {
                tracing::debug!(producer_id = id.0, epoch = id.1, "producer epoch bumped");
                let mut acc = shared.lock();
                acc.producer = Some(id);
                acc.bump_epoch = false;
                for q in acc.parts.values_mut() {
                    q.next_sequence = 0;
                    for b in q.ready.iter_mut() {
                        b.sequence = None;
                    }
                }
                drop(acc);
                shared.wake.notify_one();
                return;
            }
            Err(e) if e.is_retriable() && Instant::now() < deadline && !shared.lock().closed => {
                tokio::time::sleep(cluster.retry_backoff()).await;
            }
            Err(e) => break e,
        }
    };
    tracing::warn!(error = %cause, "no new producer epoch: the producer stops");
    shared.lock().fatal = Some(ClientError::ProducerFatal { partition: None, cause: Box::new(cause) });
    shared.wake.notify_one();
}

async fn init_producer_id(cluster: &Cluster) -> Result<(i64, i16)> {
    request_producer_id(cluster, None).await
}

async fn request_producer_id(cluster: &Cluster, current: Option<(i64, i16)>) -> Result<(i64, i16)> {
    let conn = cluster.any_connection().await?;
    let version = conn.version(ApiKey::InitProducerId)?;
    // KIP-360 (v3+): the current id and epoch ask for the next epoch of the same id.
    let (id, epoch) = current.filter(|_| version >= 3).unwrap_or((-1, -1));
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(i32::MAX)
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch);
    let resp: InitProducerIdResponse = conn.call_at(version, &req, None).await?;
    match ResponseError::try_from_code(resp.error_code) {
        None => Ok((resp.producer_id.0, resp.producer_epoch)),
        Some(error) => Err(ClientError::broker(ApiKey::InitProducerId, error, Subject::Request)),
    }
}

/// Gives a batch about to be sent for the first time its base sequence (and the
/// producer id and epoch). A retried batch keeps the sequence it was first sent with.
pub(crate) fn stamp(q: &mut PartQueue, batch: &mut SealedBatch, (id, epoch): (i64, i16), txn: bool) -> Result<()> {
    if batch.sequence.is_some() {
        return Ok(());
    }
    let sequence = q.next_sequence;
    let mut data = BytesMut::from(std::mem::take(&mut batch.data));
    let stamp = if txn { stamp_transactional } else { stamp_producer };
    stamp(&mut data, id, epoch, sequence).map_err(|source| ClientError::Protocol {
        broker: None,
        partition: None,
        source,
    })?;
    batch.data = data.freeze();
    batch.sequence = Some(sequence);
    q.next_sequence = next_sequence(sequence, batch.delivery.len());
    Ok(())
}

/// The sequence after `records` records from `sequence`: wraps from `i32::MAX` to 0, as
/// brokers expect.
pub(crate) fn next_sequence(sequence: i32, records: usize) -> i32 {
    let next = (i64::from(sequence) + records as i64) % (i64::from(i32::MAX) + 1);
    next as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resent_batches_go_back_to_their_place() {
        let batch = |ordinal| SealedBatch {
            data: bytes::Bytes::new(),
            capacity: 0,
            buffers: ferrokafka_protocol::records::OutputBuffers::new(),
            delivery: super::super::BatchDelivery::new(),
            created: Instant::now(),
            attempts: 0,
            reserved: 0,
            ordinal,
            sequence: None,
        };
        let mut q = PartQueue::default();
        q.ready.extend([batch(6), batch(7)]);
        // Answers of batches 2..=5 come back in any order.
        for ordinal in [4, 2, 5, 3] {
            q.requeue(batch(ordinal));
        }
        assert_eq!(q.ready.iter().map(|b| b.ordinal).collect::<Vec<_>>(), [2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn sequences_wrap_like_the_java_client() {
        assert_eq!(next_sequence(0, 5), 5);
        assert_eq!(next_sequence(i32::MAX - 2, 2), i32::MAX);
        assert_eq!(next_sequence(i32::MAX - 2, 3), 0);
        assert_eq!(next_sequence(i32::MAX, 10), 9);
    }
}
