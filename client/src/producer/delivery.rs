//! Delivery reports: one shared slot per batch instead of a channel per record.
//!
//! Every record of a batch shares its fate (the broker acknowledges or rejects the batch
//! as a whole), so the batch owns one [`BatchDelivery`] and each record's
//! [`DeliveryFuture`] holds a reference to it plus its index in the batch. Queuing a record
//! costs a reference-count increment, not an allocation.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use super::RecordMetadata;
use crate::error::{ClientError, Result};

enum Outcome {
    Done { partition: i32, base_offset: i64 },
    Failed(ClientError),
}

/// A batch's outcome, written once; read without a lock once written (a record's
/// future is polled and checked once per record, so that path takes no lock).
struct Slot {
    outcome: OnceLock<Outcome>,
    wakers: Mutex<Vec<Waker>>,
}

impl Slot {
    fn wakers(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sender's side of a batch's delivery reports. Completing it (or dropping it
/// unfinished, which reports [`ClientError::Closed`]) resolves every record's future.
pub(crate) struct BatchDelivery {
    slot: Arc<Slot>,
    count: usize,
}

impl BatchDelivery {
    pub(crate) fn new() -> Self {
        BatchDelivery { slot: Arc::new(Slot { outcome: OnceLock::new(), wakers: Mutex::new(Vec::new()) }), count: 0 }
    }

    /// The future of the next record appended to the batch.
    pub(crate) fn add(&mut self) -> DeliveryFuture {
        let index = self.count as i64;
        self.count += 1;
        DeliveryFuture { slot: self.slot.clone(), index }
    }

    /// Records in the batch.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The broker stored the batch at `base_offset` (-1 when unknown, as with `acks=0`).
    pub(crate) fn succeed(self, partition: i32, base_offset: i64) {
        self.finish(Outcome::Done { partition, base_offset });
    }

    /// The batch failed for good; each record reports a copy of `error`.
    pub(crate) fn fail(self, error: ClientError) {
        self.finish(Outcome::Failed(error));
    }

    fn finish(&self, outcome: Outcome) {
        if self.slot.outcome.set(outcome).is_err() {
            return;
        }
        // A future that found no outcome registered its waker under this lock before
        // looking again, so it is either in this list or sees the outcome.
        let wakers = std::mem::take(&mut *self.slot.wakers());
        for w in wakers {
            w.wake();
        }
    }
}

impl Drop for BatchDelivery {
    fn drop(&mut self) {
        self.finish(Outcome::Failed(ClientError::Closed));
    }
}

/// Resolves when the record is acknowledged (or failed for good).
pub struct DeliveryFuture {
    slot: Arc<Slot>,
    index: i64,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture").field("index", &self.index).finish_non_exhaustive()
    }
}

impl DeliveryFuture {
    /// Whether the outcome is known, so awaiting the future returns at once. Lets a
    /// caller that keeps deliveries in send order collect the finished ones without
    /// waiting on the rest.
    pub fn is_finished(&self) -> bool {
        self.slot.outcome.get().is_some()
    }

    fn ready(&self, outcome: &Outcome) -> Result<RecordMetadata> {
        match outcome {
            Outcome::Done { partition, base_offset } => {
                let offset = if *base_offset >= 0 { base_offset + self.index } else { -1 };
                Ok(RecordMetadata { partition: *partition, offset })
            }
            Outcome::Failed(error) => Err(error.clone()),
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = self.slot.outcome.get() {
            return Poll::Ready(self.ready(outcome));
        }
        let mut wakers = self.slot.wakers();
        // Looked at again under the lock `finish` takes after setting the outcome.
        if let Some(outcome) = self.slot.outcome.get() {
            return Poll::Ready(self.ready(outcome));
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_record_gets_its_offset_or_the_error() {
        let mut ok = BatchDelivery::new();
        let futs: Vec<_> = (0..3).map(|_| ok.add()).collect();
        assert_eq!(ok.len(), 3);
        let waiter = tokio::spawn(async move {
            let mut out = Vec::new();
            for f in futs {
                out.push(f.await.unwrap().offset);
            }
            out
        });
        tokio::task::yield_now().await;
        let probe = ok.add();
        assert!(!probe.is_finished());
        ok.succeed(4, 100);
        assert!(probe.is_finished());
        assert_eq!(waiter.await.unwrap(), [100, 101, 102]);

        let mut acks0 = BatchDelivery::new();
        let f = acks0.add();
        acks0.succeed(1, -1);
        assert_eq!(f.await.unwrap(), RecordMetadata { partition: 1, offset: -1 });

        let mut bad = BatchDelivery::new();
        let (a, b) = (bad.add(), bad.add());
        bad.fail(ClientError::NotSubscribed);
        assert!(matches!(a.await, Err(ClientError::NotSubscribed)));
        assert!(matches!(b.await, Err(ClientError::NotSubscribed)));
    }

    #[tokio::test]
    async fn a_batch_dropped_unfinished_reports_closed() {
        let mut d = BatchDelivery::new();
        let f = d.add();
        drop(d);
        assert!(matches!(f.await, Err(ClientError::Closed)));
    }
}
