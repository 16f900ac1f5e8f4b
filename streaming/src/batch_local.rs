//! [`Batch::foreach_partition_local`]: partitions processed on the calling task, so
//! the closure may borrow (Spark's closures capture by value; Rust's need not).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::batch::{Batch, BatchPartition};
use crate::error::Result;

type Local<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

impl Batch {
    /// Like [`foreach_partition`](Self::foreach_partition), but every partition's `f`
    /// runs on the calling task — concurrently, not in parallel — so `f` may borrow
    /// from the caller and neither it nor its future needs to be `Send` or `'static`.
    /// Fetching and decoding still run on the executors' tasks. Returns the results in
    /// partition order; the first error (in partition order) wins.
    pub async fn foreach_partition_local<'a, F, Fut, T>(&'a self, f: F) -> Result<Vec<T>>
    where
        F: Fn(BatchPartition) -> Fut + 'a,
        Fut: Future<Output = Result<T>> + 'a,
        T: 'a,
    {
        let f = &f;
        let mut futures: Vec<Local<'_, T>> = Vec::with_capacity(self.ranges.len());
        for (index, s) in self.start_all()?.into_iter().enumerate() {
            let range = self.ranges[index].clone();
            let executor = self.placed(index, &range)?.clone();
            let deserializers = self.pool.deserializers;
            futures.push(Box::pin(async move {
                let out = f(BatchPartition { index, range, executor, records: s.records, deserializers }).await;
                s.keep.finish();
                out
            }));
        }
        join_all(futures).await.into_iter().collect()
    }
}

/// Polls every future until all are done; results in order.
async fn join_all<T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut done: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}
