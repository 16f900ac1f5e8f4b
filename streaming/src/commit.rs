//! `commit_async`: offsets queued by the application after its output, committed to
//! Kafka by the driver when the next batch is computed (Spark's CanCommitOffsets).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Result;
use crate::offset_range::{OffsetRange, TopicPartition};

/// Called with the result of the commit that included the queued ranges.
pub type CommitCallback = Box<dyn FnOnce(&BTreeMap<TopicPartition, i64>, Result<()>) + Send>;

#[derive(Default)]
struct Queue {
    ranges: Vec<OffsetRange>,
    callback: Option<CommitCallback>,
}

/// A thread-safe handle to a stream's commit queue; cheap to clone.
#[derive(Clone, Default)]
pub struct CommitQueue {
    inner: Arc<Mutex<Queue>>,
}

impl std::fmt::Debug for CommitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitQueue").field("queued", &self.lock().ranges.len()).finish()
    }
}

impl CommitQueue {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues ranges whose output is done. Only queues: nothing is sent now.
    pub fn commit_async(&self, ranges: &[OffsetRange]) {
        self.lock().ranges.extend_from_slice(ranges);
    }

    /// Queues ranges with a callback; only the latest callback is kept, as in Spark.
    pub fn commit_async_with(
        &self,
        ranges: &[OffsetRange],
        callback: impl FnOnce(&BTreeMap<TopicPartition, i64>, Result<()>) + Send + 'static,
    ) {
        let mut q = self.lock();
        q.ranges.extend_from_slice(ranges);
        q.callback = Some(Box::new(callback));
    }

    /// Whether ranges are waiting.
    pub fn is_empty(&self) -> bool {
        self.lock().ranges.is_empty()
    }

    /// Takes the queue: per partition the largest `until`, and the latest callback.
    pub(crate) fn drain(&self) -> Option<(BTreeMap<TopicPartition, i64>, Option<CommitCallback>)> {
        let mut q = self.lock();
        if q.ranges.is_empty() {
            return None;
        }
        let mut offsets: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for r in q.ranges.drain(..) {
            let e = offsets.entry(r.topic_partition()).or_insert(r.until_offset);
            *e = (*e).max(r.until_offset);
        }
        Some((offsets, q.callback.take()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_keeps_the_max_until_and_the_latest_callback() {
        let q = CommitQueue::default();
        assert!(q.drain().is_none());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s1 = seen.clone();
        q.commit_async_with(&[OffsetRange::new("t", 0, 0, 10).unwrap()], move |_, _| s1.lock().unwrap().push(1));
        let s2 = seen.clone();
        q.commit_async_with(
            &[OffsetRange::new("t", 0, 10, 20).unwrap(), OffsetRange::new("t", 1, 0, 5).unwrap()],
            move |_, _| s2.lock().unwrap().push(2),
        );
        q.commit_async(&[OffsetRange::new("t", 0, 5, 15).unwrap()]);
        let (offsets, cb) = q.drain().unwrap();
        assert_eq!(offsets, BTreeMap::from([(TopicPartition::new("t", 0), 20), (TopicPartition::new("t", 1), 5)]));
        cb.unwrap()(&offsets, Ok(()));
        assert_eq!(*seen.lock().unwrap(), [2]);
        assert!(q.is_empty());
    }
}
