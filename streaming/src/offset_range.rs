//! `OffsetRange` and the `HasOffsetRanges` contract.

use std::fmt;
use std::sync::Arc;

pub use ferrokafka_client::metadata::TopicPartition;

use crate::error::{Result, StreamingError};

/// A range of offsets of one partition: `from_offset` inclusive, `until_offset` exclusive.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffsetRange {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// First offset (inclusive).
    pub from_offset: i64,
    /// Offset after the last one (exclusive).
    pub until_offset: i64,
}

impl OffsetRange {
    /// A validated range: offsets non-negative and `from <= until`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32, from_offset: i64, until_offset: i64) -> Result<OffsetRange> {
        let r = OffsetRange { topic: topic.into(), partition, from_offset, until_offset };
        r.validate()?;
        Ok(r)
    }

    /// Checks the invariants (ranges built by hand skip them until a batch is made).
    pub fn validate(&self) -> Result<()> {
        if self.from_offset < 0 || self.until_offset < 0 {
            return Err(StreamingError::NegativeOffset {
                topic: self.topic.to_string(),
                partition: self.partition,
                from: self.from_offset,
                until: self.until_offset,
            });
        }
        if self.from_offset > self.until_offset {
            return Err(StreamingError::InvalidRange {
                topic: self.topic.to_string(),
                partition: self.partition,
                from: self.from_offset,
                until: self.until_offset,
            });
        }
        Ok(())
    }

    /// Number of offsets in the range (`until - from`).
    pub fn count(&self) -> i64 {
        self.until_offset - self.from_offset
    }

    /// The range's topic and partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition { topic: self.topic.clone(), partition: self.partition }
    }
}

impl fmt::Display for OffsetRange {
    /// Spark's description line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "topic: {} partition: {} offsets: {} to {} count: {}",
            self.topic,
            self.partition,
            self.from_offset,
            self.until_offset,
            self.count()
        )
    }
}

/// Something whose partition `i` reads exactly `offset_ranges()[i]` (Spark's `HasOffsetRanges`).
pub trait HasOffsetRanges {
    /// The ranges, in partition order.
    fn offset_ranges(&self) -> &[OffsetRange];
}

/// Spark's batch description: non-empty ranges, largest first, one per line.
pub fn describe(ranges: &[OffsetRange]) -> String {
    let mut v: Vec<&OffsetRange> = ranges.iter().filter(|r| r.count() > 0).collect();
    v.sort_by(|a, b| b.count().cmp(&a.count()).then_with(|| a.cmp(b)));
    v.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_and_description() {
        assert_eq!(OffsetRange::new("t", 0, 5, 10).unwrap().count(), 5);
        let e = OffsetRange::new("t", 3, 10, 5).unwrap_err();
        assert_eq!(e.to_string(), "Beginning offset 10 is after the ending offset 5 for topic t partition 3");
        assert!(matches!(OffsetRange::new("t", 0, -1, 5), Err(StreamingError::NegativeOffset { .. })));
        let ranges = [
            OffsetRange::new("a", 0, 0, 3).unwrap(),
            OffsetRange::new("a", 1, 7, 7).unwrap(),
            OffsetRange::new("b", 0, 10, 20).unwrap(),
        ];
        assert_eq!(
            describe(&ranges),
            "topic: b partition: 0 offsets: 10 to 20 count: 10\ntopic: a partition: 0 offsets: 0 to 3 count: 3"
        );
    }
}
