//! The embedded offset store: one local file, kept by the pure-Rust `redb` database.
//!
//! Offsets live in the table [`OFFSETS_TABLE`] of the application's own redb database, so a
//! batch's results (in the application's tables) and its offsets commit in one redb write
//! transaction. redb allows one write transaction at a time: [`TransactionalStore::begin`]
//! waits (on a blocking thread, not on the runtime) while another one is open, so concurrent
//! writers of a partition are serialized and all but the first see an
//! [`StreamingError::OffsetMismatch`].
//!
//! Entries of [`OFFSETS_TABLE`] are raw bytes, decoded with checks: a damaged entry is an
//! error, never a panic. Key: `u32` big-endian length of the group, the group (UTF-8), `u32`
//! big-endian length of the topic, the topic (UTF-8), the partition as big-endian `i32` with
//! the sign bit flipped (so keys sort by group, topic, partition). Value: the next offset to
//! read, little-endian `i64`.

/// The `redb` crate this store is built on (use it to declare the results' tables).
pub use ::redb;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError, WriteTransaction};

use super::{store_error, Abort, Mismatch, StoreTransaction, TransactionalStore};
use crate::error::{Result, StreamingError};
use crate::offset_range::{OffsetRange, TopicPartition};

/// The name of the table holding the offsets.
pub const OFFSETS_TABLE: &str = "ferrokafka_offsets";

const OFFSETS: TableDefinition<&[u8], &[u8]> = TableDefinition::new(OFFSETS_TABLE);

/// Offsets kept in a redb database file, next to the application's results.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the database file at `path`, creating it if missing (blocking file I/O).
    ///
    /// A redb file can be open once at a time; opening it again while open fails.
    ///
    /// redb keeps a page cache of up to 1 GiB by default; to bound the memory lower,
    /// build the database with `redb::Builder::new().set_cache_size(bytes)` and hand it
    /// to [`from_database`](Self::from_database).
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore> {
        let path = path.as_ref();
        let db = Database::create(path).map_err(|e| store_error(&format!("redb: open {}", path.display()), &e))?;
        Ok(RedbStore::from_database(db))
    }

    /// Keeps offsets in an already open database.
    pub fn from_database(db: Database) -> RedbStore {
        RedbStore { db: Arc::new(db) }
    }

    /// The database, to read the results outside of a batch.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

impl TransactionalStore for RedbStore {
    type Txn<'a> = RedbTransaction;

    async fn load_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let read = self.db.begin_read().map_err(|e| store_error("redb: begin read", &e))?;
        let table = match read.open_table(OFFSETS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
            Err(e) => return Err(store_error(&format!("redb: open table {OFFSETS_TABLE}"), &e)),
        };
        let prefix = group_prefix(group)?;
        let mut offsets = BTreeMap::new();
        let range = table.range::<&[u8]>(prefix.as_slice()..).map_err(|e| store_error("redb: read offsets", &e))?;
        for entry in range {
            let (key, value) = entry.map_err(|e| store_error("redb: read offsets", &e))?;
            let key = key.value();
            let Some(rest) = key.strip_prefix(prefix.as_slice()) else { break };
            let tp = decode_topic_partition(key, rest)?;
            offsets.insert(tp, decode_offset(key, value.value())?);
        }
        Ok(offsets)
    }

    async fn begin(&self) -> Result<RedbTransaction> {
        let db = Arc::clone(&self.db);
        // begin_write blocks while another write transaction is open.
        let txn = tokio::task::spawn_blocking(move || db.begin_write())
            .await
            .map_err(|e| store_error("redb: begin write", &e))?
            .map_err(|e| store_error("redb: begin write", &e))?;
        Ok(RedbTransaction { txn, aborted: None })
    }
}

/// An open redb write transaction of a batch; dropping it without commit rolls it back.
pub struct RedbTransaction {
    txn: WriteTransaction,
    aborted: Option<Abort>,
}

impl std::fmt::Debug for RedbTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbTransaction").field("aborted", &self.aborted).finish_non_exhaustive()
    }
}

impl RedbTransaction {
    /// The write transaction, to write the batch's results (open your tables with it).
    pub fn redb(&self) -> &WriteTransaction {
        &self.txn
    }

    fn advance(&mut self, group: &str, ranges: &[OffsetRange]) -> Result<()> {
        let mut table =
            self.txn.open_table(OFFSETS).map_err(|e| store_error(&format!("redb: open table {OFFSETS_TABLE}"), &e))?;
        for range in ranges {
            let key = encode_key(group, &range.topic, range.partition)?;
            let stored = match table.get(key.as_slice()).map_err(|e| store_error("redb: read offset", &e))? {
                Some(value) => Some(decode_offset(&key, value.value())?),
                None => None,
            };
            Mismatch::check(range, stored).map_err(|m| m.error())?;
            let value = range.until_offset.to_le_bytes();
            table.insert(key.as_slice(), value.as_slice()).map_err(|e| store_error("redb: write offset", &e))?;
        }
        Ok(())
    }
}

impl StoreTransaction for RedbTransaction {
    async fn advance_offsets(&mut self, group: &str, ranges: &[OffsetRange]) -> Result<()> {
        if let Some(abort) = &self.aborted {
            return Err(abort.error());
        }
        let result = ranges.iter().try_for_each(OffsetRange::validate).and_then(|()| self.advance(group, ranges));
        if let Err(e) = &result {
            self.aborted = Some(Abort::from_error(e));
        }
        result
    }

    async fn commit(self) -> Result<()> {
        if let Some(abort) = &self.aborted {
            return Err(abort.error());
        }
        let txn = self.txn;
        // The commit writes and syncs the file.
        tokio::task::spawn_blocking(move || txn.commit())
            .await
            .map_err(|e| store_error("redb: commit", &e))?
            .map_err(|e| store_error("redb: commit", &e))
    }
}

fn push_str(out: &mut Vec<u8>, what: &str, s: &str) -> Result<()> {
    let len = u32::try_from(s.len()).map_err(|_| StreamingError::store(format!("redb: {what} is too long")))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn group_prefix(group: &str) -> Result<Vec<u8>> {
    let mut key = Vec::with_capacity(4 + group.len());
    push_str(&mut key, "group", group)?;
    Ok(key)
}

fn encode_key(group: &str, topic: &str, partition: i32) -> Result<Vec<u8>> {
    let mut key = group_prefix(group)?;
    push_str(&mut key, "topic", topic)?;
    key.extend_from_slice(&((partition as u32) ^ 0x8000_0000).to_be_bytes());
    Ok(key)
}

fn corrupt(key: &[u8], what: &str) -> StreamingError {
    StreamingError::store(format!("redb: damaged entry in {OFFSETS_TABLE} (key {key:02x?}): {what}"))
}

/// Decodes the topic and partition of `key`, whose group prefix is already removed (`rest`).
fn decode_topic_partition(key: &[u8], rest: &[u8]) -> Result<TopicPartition> {
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt(key, "no topic length"))?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() != len.saturating_add(4) {
        return Err(corrupt(
            key,
            &format!("topic length {len} does not match the key's {} remaining bytes", rest.len()),
        ));
    }
    let (topic, partition) = rest.split_at(len);
    let topic = std::str::from_utf8(topic).map_err(|e| corrupt(key, &format!("topic is not UTF-8: {e}")))?;
    let partition = <[u8; 4]>::try_from(partition).map_err(|_| corrupt(key, "no partition"))?;
    let partition = (u32::from_be_bytes(partition) ^ 0x8000_0000) as i32;
    Ok(TopicPartition::new(topic, partition))
}

fn decode_offset(key: &[u8], value: &[u8]) -> Result<i64> {
    let bytes = <[u8; 8]>::try_from(value)
        .map_err(|_| corrupt(key, &format!("offset has {} bytes instead of 8", value.len())))?;
    let offset = i64::from_le_bytes(bytes);
    if offset < 0 {
        return Err(corrupt(key, &format!("negative offset {offset}")));
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A database file path removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new() -> TempFile {
            static N: AtomicU32 = AtomicU32::new(0);
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
            let name =
                format!("ferrokafka-redb-{}-{}-{nanos}.redb", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
            TempFile(std::env::temp_dir().join(name))
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const RESULTS: TableDefinition<&str, u64> = TableDefinition::new("results");

    fn range(p: i32, from: i64, until: i64) -> OffsetRange {
        OffsetRange::new("events", p, from, until).unwrap()
    }

    fn results(store: &RedbStore) -> Option<u64> {
        let read = store.database().begin_read().unwrap();
        match read.open_table(RESULTS) {
            Ok(t) => t.get("n").unwrap().map(|v| v.value()),
            Err(TableError::TableDoesNotExist(_)) => None,
            Err(e) => panic!("{e}"),
        }
    }

    async fn batch(store: &RedbStore, ranges: &[OffsetRange]) -> Result<()> {
        let mut txn = store.begin().await?;
        txn.advance_offsets("g", ranges).await?;
        {
            let mut t = txn.redb().open_table(RESULTS).unwrap();
            let n = t.get("n").unwrap().map(|v| v.value()).unwrap_or(0);
            t.insert("n", n + ranges.iter().map(|r| r.count() as u64).sum::<u64>()).unwrap();
        }
        txn.commit().await
    }

    #[test]
    fn keys_round_trip_and_sort_by_partition() {
        for p in [0, 1, 7, i32::MAX, -1, i32::MIN] {
            let key = encode_key("grp", "tópic", p).unwrap();
            let prefix = group_prefix("grp").unwrap();
            let tp = decode_topic_partition(&key, &key[prefix.len()..]).unwrap();
            assert_eq!(tp, TopicPartition::new("tópic", p));
        }
        assert!(encode_key("g", "t", 2).unwrap() < encode_key("g", "t", 10).unwrap());
        assert!(encode_key("g", "t", -1).unwrap() < encode_key("g", "t", 0).unwrap());
        // A group that is a prefix of another does not see its offsets.
        assert!(!encode_key("gg", "t", 0).unwrap().starts_with(&group_prefix("g").unwrap()));
    }

    #[tokio::test]
    async fn offsets_and_results_commit_together_and_survive_reopen() {
        let file = TempFile::new();
        let store = RedbStore::open(&file.0).unwrap();
        assert!(store.load_offsets("g").await.unwrap().is_empty());
        batch(&store, &[range(0, 5, 10), range(1, 0, 3)]).await.unwrap();
        batch(&store, &[range(0, 10, 12), range(1, 3, 3)]).await.unwrap();
        // Dropped before commit: nothing changes.
        {
            let mut txn = store.begin().await.unwrap();
            txn.advance_offsets("g", &[range(0, 12, 20)]).await.unwrap();
            txn.redb().open_table(RESULTS).unwrap().insert("n", 1000).unwrap();
        }
        assert_eq!(results(&store), Some(10));
        drop(store);
        let store = RedbStore::open(&file.0).unwrap();
        let offsets = store.load_offsets("g").await.unwrap();
        let want: BTreeMap<_, _> =
            [(TopicPartition::new("events", 0), 12), (TopicPartition::new("events", 1), 3)].into_iter().collect();
        assert_eq!(offsets, want);
        assert!(store.load_offsets("other").await.unwrap().is_empty());
        assert_eq!(results(&store), Some(10));
    }

    #[tokio::test]
    async fn mismatch_aborts_and_a_later_commit_fails() {
        let file = TempFile::new();
        let store = RedbStore::open(&file.0).unwrap();
        batch(&store, &[range(0, 0, 10)]).await.unwrap();
        let mut txn = store.begin().await.unwrap();
        txn.redb().open_table(RESULTS).unwrap().insert("n", 999).unwrap();
        // The first range is fine, the second repeats a batch.
        let e = txn.advance_offsets("g", &[range(1, 0, 4), range(0, 0, 10)]).await.unwrap_err();
        assert!(matches!(&e, StreamingError::OffsetMismatch { stored: Some(10), from: 0, partition: 0, .. }), "{e}");
        assert!(!e.is_retriable());
        let e = txn.advance_offsets("g", &[range(2, 0, 1)]).await.unwrap_err();
        assert!(matches!(e, StreamingError::OffsetMismatch { .. }), "{e}");
        let e = txn.commit().await.unwrap_err();
        assert!(matches!(e, StreamingError::OffsetMismatch { .. }), "{e}");
        let offsets = store.load_offsets("g").await.unwrap();
        assert_eq!(offsets.len(), 1, "{offsets:?}");
        assert_eq!(results(&store), Some(10));
    }

    #[tokio::test]
    async fn invalid_ranges_are_refused_and_abort() {
        let file = TempFile::new();
        let store = RedbStore::open(&file.0).unwrap();
        let mut txn = store.begin().await.unwrap();
        let bad = OffsetRange { topic: "events".into(), partition: 0, from_offset: 9, until_offset: 3 };
        let e = txn.advance_offsets("g", &[range(1, 0, 1), bad]).await.unwrap_err();
        assert!(matches!(e, StreamingError::InvalidRange { .. }), "{e}");
        let e = txn.commit().await.unwrap_err();
        assert!(e.to_string().contains("aborted by an earlier error"), "{e}");
        let cause = std::error::Error::source(&e).and_then(std::error::Error::source).map(ToString::to_string);
        assert!(
            cause.as_deref().is_some_and(|c| c.contains("Beginning offset 9")),
            "the first error is the source: {cause:?}"
        );
        assert!(store.load_offsets("g").await.unwrap().is_empty());
    }

    async fn write_raw(store: &RedbStore, key: &[u8], value: &[u8]) {
        let txn = store.begin().await.unwrap();
        txn.redb().open_table(OFFSETS).unwrap().insert(key, value).unwrap();
        txn.commit().await.unwrap();
    }

    #[tokio::test]
    async fn damaged_entries_are_errors_not_panics() {
        let file = TempFile::new();
        let store = RedbStore::open(&file.0).unwrap();
        let key = encode_key("g", "events", 0).unwrap();
        write_raw(&store, &key, &[1, 2, 3]).await;
        let e = store.load_offsets("g").await.unwrap_err();
        assert!(
            matches!(&e, StreamingError::Store { .. }) && e.to_string().contains("offset has 3 bytes instead of 8"),
            "{e}"
        );
        let mut txn = store.begin().await.unwrap();
        let e = txn.advance_offsets("g", &[range(0, 0, 1)]).await.unwrap_err();
        assert!(matches!(&e, StreamingError::Store { .. }) && e.to_string().contains("3 bytes"), "{e}");
        drop(txn);

        write_raw(&store, &key, &(-5i64).to_le_bytes()).await;
        let e = store.load_offsets("g").await.unwrap_err();
        assert!(e.to_string().contains("negative offset -5"), "{e}");

        write_raw(&store, &key, &7i64.to_le_bytes()).await;
        assert_eq!(store.load_offsets("g").await.unwrap().get(&TopicPartition::new("events", 0)), Some(&7));

        for bad_key in [&key[..key.len() - 1], &key[..7], &[0, 0, 0, 1, b'g', 0xff, 0xff, 0xff, 0xff][..]] {
            let other = TempFile::new();
            let store = RedbStore::open(&other.0).unwrap();
            write_raw(&store, bad_key, &7i64.to_le_bytes()).await;
            let e = store.load_offsets("g").await.unwrap_err();
            assert!(e.to_string().contains("damaged entry"), "{e}");
        }
        let mut bad_utf8 = group_prefix("g").unwrap();
        bad_utf8.extend_from_slice(&[0, 0, 0, 1, 0xff, 0, 0, 0, 0]);
        let other = TempFile::new();
        let store = RedbStore::open(&other.0).unwrap();
        write_raw(&store, &bad_utf8, &7i64.to_le_bytes()).await;
        let e = store.load_offsets("g").await.unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }

    #[tokio::test]
    async fn a_table_of_another_type_is_an_error() {
        let file = TempFile::new();
        let store = RedbStore::open(&file.0).unwrap();
        let wrong: TableDefinition<u64, u64> = TableDefinition::new(OFFSETS_TABLE);
        let txn = store.begin().await.unwrap();
        txn.redb().open_table(wrong).unwrap().insert(1, 2).unwrap();
        txn.commit().await.unwrap();
        let e = store.load_offsets("g").await.unwrap_err();
        assert!(matches!(&e, StreamingError::Store { .. }) && e.to_string().contains(OFFSETS_TABLE), "{e}");
        let mut txn = store.begin().await.unwrap();
        assert!(txn.advance_offsets("g", &[range(0, 0, 1)]).await.is_err());
        assert!(txn.commit().await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_batch_runs_on_spawned_tasks() {
        let file = TempFile::new();
        let store = RedbStore::open(&file.0).unwrap();
        let task_store = store.clone();
        let n = tokio::spawn(async move {
            let ranges = [range(0, 0, 4)];
            crate::store::commit_batch(&task_store, "g", &ranges, async |txn| {
                let mut t = txn.redb().open_table(RESULTS).map_err(|e| StreamingError::store(e.to_string()))?;
                t.insert("n", 4).map_err(|e| StreamingError::store(e.to_string()))?;
                Ok(4u64)
            })
            .await
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(n, 4);
        assert_eq!(results(&store), Some(4));
    }

    #[test]
    fn opening_an_open_file_again_fails_with_the_reason() {
        let file = TempFile::new();
        let _store = RedbStore::open(&file.0).unwrap();
        let e = RedbStore::open(&file.0).unwrap_err();
        assert!(
            matches!(&e, StreamingError::Store { .. }) && e.to_string().starts_with("offset store: redb: open"),
            "{e}"
        );
        assert!(e.is_retriable());
    }
}
