//! Transactional offset stores: a stream's offsets kept in the same transaction as its results.
//!
//! This is Spark's "Your own data store" way of storing offsets. The stream starts from the
//! offsets read from the store ([`TransactionalStore::load_offsets`], given to `Assign` as its
//! starting offsets), and each batch writes its results and advances its offsets in one
//! transaction. A partition's offset moves only where the stored offset equals the range's
//! `from_offset`; anything else (a repeated batch, a skipped range) aborts the transaction with
//! [`StreamingError::OffsetMismatch`], so no result is ever counted twice or lost.
//!
//! Three stores are provided:
//! - [`RedbStore`] (embedded, the default): one local file, via the pure-Rust `redb` database.
//! - [`PostgresStore`]: a PostgreSQL table, via the pure-Rust `tokio-postgres` client.
//! - [`KafkaStore`]: Kafka itself: results written to output topics and the input
//!   offsets committed to the consumer group in one Kafka transaction (exactly once for
//!   `read_committed` readers of the output).
//!
//! Applications write their results through the concrete transaction: [`RedbTransaction::redb`]
//! gives the `redb::WriteTransaction`, [`PostgresTransaction::sql`] a client whose statements
//! run inside the batch's transaction.
//!
//! ```no_run
//! # async fn example(ranges: Vec<ferrokafka_streaming::OffsetRange>) -> ferrokafka_streaming::Result<()> {
//! use ferrokafka_streaming::store::{commit_batch, RedbStore, TransactionalStore};
//! use ferrokafka_streaming::store::redb::redb::{ReadableTable, TableDefinition};
//! use ferrokafka_streaming::StreamingError;
//!
//! const COUNTS: TableDefinition<&str, u64> = TableDefinition::new("counts");
//! let store = RedbStore::open("offsets.redb")?;
//! // Begin from the offsets committed to the store (give them to `Assign`).
//! let from_offsets = store.load_offsets("my-group").await?;
//! # let _ = from_offsets;
//! // For each batch: results and offsets in one transaction.
//! let records: u64 = ranges.iter().map(|r| r.count() as u64).sum();
//! commit_batch(&store, "my-group", &ranges, async |txn| {
//!     let mut table = txn.redb().open_table(COUNTS).map_err(|e| StreamingError::store(e.to_string()))?;
//!     let seen = table.get("records").map_err(|e| StreamingError::store(e.to_string()))?.map(|v| v.value());
//!     table.insert("records", seen.unwrap_or(0) + records).map_err(|e| StreamingError::store(e.to_string()))?;
//!     Ok(())
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```

pub mod kafka;
pub mod postgres;
pub mod redb;

use std::collections::BTreeMap;
use std::future::Future;

use crate::error::{Result, StreamingError};
use crate::offset_range::{OffsetRange, TopicPartition};

pub use self::kafka::{KafkaStore, KafkaTransaction};
pub use self::postgres::{PostgresStore, PostgresTransaction};
pub use self::redb::{RedbStore, RedbTransaction};

/// A store that keeps a stream's offsets together with its results.
///
/// Offsets are kept per consumer group (`group.id`) and partition, as the next offset to read
/// (the `until_offset` of the last committed range).
pub trait TransactionalStore: Send + Sync {
    /// One open transaction. Dropping it without [`StoreTransaction::commit`] rolls it back.
    type Txn<'a>: StoreTransaction + Send
    where
        Self: 'a;

    /// Offsets stored for `group` (partition → next offset to read). Empty when none.
    fn load_offsets(&self, group: &str) -> impl Future<Output = Result<BTreeMap<TopicPartition, i64>>> + Send;

    /// Opens a transaction. Waits while another transaction of this store is open where the
    /// store allows only one at a time (redb; one PostgreSQL connection).
    fn begin(&self) -> impl Future<Output = Result<Self::Txn<'_>>> + Send;
}

/// One open transaction of a [`TransactionalStore`].
pub trait StoreTransaction {
    /// Advances the offsets of `group` by `ranges`: for each range (each is validated first),
    /// the stored offset of its partition must equal `from_offset` (when nothing is stored for
    /// the partition, any `from_offset` is accepted: the first batch), and becomes
    /// `until_offset`.
    ///
    /// A mismatch returns [`StreamingError::OffsetMismatch`] and aborts the transaction: a later
    /// [`commit`](StoreTransaction::commit) fails with the same error, and dropping the
    /// transaction rolls back everything written in it. Any other error (an invalid range, the
    /// store failing) aborts it too. Calling this before writing results fails fast and, in
    /// stores with row locks, serializes concurrent writers of a partition; calling it after
    /// works the same (the order within the transaction does not matter).
    fn advance_offsets(&mut self, group: &str, ranges: &[OffsetRange]) -> impl Future<Output = Result<()>> + Send;

    /// Makes the results and offsets written in this transaction durable together.
    fn commit(self) -> impl Future<Output = Result<()>> + Send;
}

/// An [`OffsetSource`](crate::strategy::OffsetSource) reading `group`'s offsets from
/// `store`: `Subscribe::new(…)?.scale_out().offsets_from(store_offsets(store, group))`.
pub fn store_offsets<S: TransactionalStore + 'static>(
    store: std::sync::Arc<S>,
    group: impl Into<String>,
) -> crate::strategy::OffsetSource {
    let group: std::sync::Arc<str> = group.into().into();
    std::sync::Arc::new(move || {
        let (store, group) = (store.clone(), group.clone());
        Box::pin(async move { store.load_offsets(&group).await })
    })
}

/// One batch in one transaction: begins, advances `group`'s offsets by `ranges`, runs
/// `write_results` in the same transaction, and commits. Any error (an
/// [`StreamingError::OffsetMismatch`] included) rolls everything back and is returned.
///
/// An `OffsetMismatch` whose `stored` equals the range's `until_offset` means this batch was
/// already committed (e.g. the commit succeeded but its acknowledgement was lost): restart the
/// stream from [`TransactionalStore::load_offsets`].
///
/// With [`RedbStore`] and [`PostgresStore`], whose transactions own what they hold (no borrow of
/// the store), the returned future is `Send` and can run on a spawned task.
pub async fn commit_batch<'a, S, T, F>(store: &'a S, group: &str, ranges: &[OffsetRange], write_results: F) -> Result<T>
where
    S: TransactionalStore,
    F: AsyncFnOnce(&mut S::Txn<'a>) -> Result<T>,
{
    let mut txn = store.begin().await?;
    txn.advance_offsets(group, ranges).await?;
    let value = write_results(&mut txn).await?;
    txn.commit().await?;
    Ok(value)
}

/// The refusal of a range whose start is not the stored offset.
#[derive(Clone, Debug)]
pub(crate) struct Mismatch {
    topic: String,
    partition: i32,
    stored: Option<i64>,
    from: i64,
}

impl Mismatch {
    /// Checks `range` against the stored offset of its partition.
    pub(crate) fn check(range: &OffsetRange, stored: Option<i64>) -> std::result::Result<(), Mismatch> {
        match stored {
            Some(s) if s != range.from_offset => Err(Mismatch {
                topic: range.topic.to_string(),
                partition: range.partition,
                stored,
                from: range.from_offset,
            }),
            _ => Ok(()),
        }
    }

    /// The typed error.
    pub(crate) fn error(&self) -> StreamingError {
        StreamingError::OffsetMismatch {
            topic: self.topic.clone(),
            partition: self.partition,
            stored: self.stored,
            from: self.from,
        }
    }
}

/// Why a transaction was aborted (kept so that a later commit fails the same way).
#[derive(Clone, Debug)]
pub(crate) enum Abort {
    /// A range did not start at the stored offset.
    Mismatch(Mismatch),
    /// The store failed while advancing offsets: the error and its chain of causes.
    Failed(ErrorSnapshot),
}

impl Abort {
    /// The error a commit of the aborted transaction returns.
    pub(crate) fn error(&self) -> StreamingError {
        match self {
            Abort::Mismatch(m) => m.error(),
            Abort::Failed(first) => StreamingError::store(AbortedBy(first.clone())),
        }
    }

    /// Records `e` (an error of `advance_offsets`) as the reason of the abort.
    pub(crate) fn from_error(e: &StreamingError) -> Abort {
        match e {
            StreamingError::OffsetMismatch { topic, partition, stored, from } => {
                Abort::Mismatch(Mismatch { topic: topic.clone(), partition: *partition, stored: *stored, from: *from })
            }
            other => Abort::Failed(ErrorSnapshot::of(other)),
        }
    }
}

/// A copy of an error and its chain of causes (their messages, level by level), for
/// an error that must be reported again after the original was returned.
#[derive(Clone, Debug)]
pub(crate) struct ErrorSnapshot {
    message: String,
    source: Option<Box<ErrorSnapshot>>,
}

impl ErrorSnapshot {
    pub(crate) fn of(e: &(dyn std::error::Error + 'static)) -> ErrorSnapshot {
        ErrorSnapshot { message: e.to_string(), source: e.source().map(|s| Box::new(ErrorSnapshot::of(s))) }
    }
}

impl std::fmt::Display for ErrorSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorSnapshot {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

/// The error of a commit after an earlier error aborted the transaction; its source is
/// that earlier error.
#[derive(Debug, thiserror::Error)]
#[error("the transaction was aborted by an earlier error")]
pub(crate) struct AbortedBy(#[source] ErrorSnapshot);

/// A store error that keeps the whole chain of causes (`what: error: cause: cause…`).
pub(crate) fn store_error(what: &str, e: &(dyn std::error::Error + 'static)) -> StreamingError {
    let mut msg = format!("{what}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    StreamingError::store(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("db error")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn store_errors_keep_their_causes() {
        let e = store_error("commit", &Outer(std::io::Error::other("disk full")));
        assert_eq!(e.to_string(), "offset store: commit: db error: disk full");
        assert!(e.is_retriable());
    }

    #[test]
    fn mismatch_accepts_first_batch_and_equal_start_only() {
        let r = OffsetRange::new("t", 1, 10, 20).unwrap();
        assert!(Mismatch::check(&r, None).is_ok());
        assert!(Mismatch::check(&r, Some(10)).is_ok());
        let e = Mismatch::check(&r, Some(20)).unwrap_err().error();
        assert!(matches!(e, StreamingError::OffsetMismatch { stored: Some(20), from: 10, partition: 1, .. }), "{e}");
    }

    #[test]
    fn a_later_commit_reports_the_aborting_error_with_its_causes() {
        let first = StreamingError::store(Outer(std::io::Error::other("disk full")));
        let again = Abort::from_error(&first).error();
        assert!(again.to_string().contains("aborted by an earlier error"), "{again}");
        let mut chain = Vec::new();
        let mut source = std::error::Error::source(&again);
        while let Some(s) = source {
            chain.push(s.to_string());
            source = s.source();
        }
        assert_eq!(chain.iter().filter(|m| m.as_str() == "disk full").count(), 1, "{chain:?}");
        assert!(chain.iter().any(|m| m.contains("db error")), "{chain:?}");
    }
}
