//! The PostgreSQL offset store, over the pure-Rust `tokio-postgres` client.
//!
//! Offsets live in the table [`OFFSETS_TABLE`] (created if missing):
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS ferrokafka_offsets (
//!     group_id    TEXT    NOT NULL,
//!     topic       TEXT    NOT NULL,
//!     partition   INTEGER NOT NULL,
//!     next_offset BIGINT  NOT NULL CHECK (next_offset >= 0),
//!     PRIMARY KEY (group_id, topic, partition)
//! )
//! ```
//!
//! A [`PostgresStore`] owns one connection; a transaction holds it from `BEGIN` to `COMMIT`
//! (or to the `ROLLBACK` sent when it is dropped), so transactions of one store run one after
//! the other. Advancing a partition locks its row (`SELECT … FOR UPDATE`) in the batch's
//! transaction, so of concurrent writers of a partition (other stores, other processes) exactly
//! one commits and the others see [`StreamingError::OffsetMismatch`]; a first batch (no row
//! yet) inserts with `ON CONFLICT DO NOTHING` and looks again when another writer got there
//! first. The transaction runs at the server's default isolation level (READ COMMITTED unless
//! configured); at stricter levels, conflicts surface as serialization failures
//! ([`StreamingError::Store`], retriable).

/// The `tokio-postgres` crate this store is built on.
pub use ::tokio_postgres;

use std::collections::BTreeMap;
use std::sync::Arc;

use ::tokio_postgres::error::SqlState;
use ::tokio_postgres::{Client, NoTls};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{store_error, Abort, Mismatch, StoreTransaction, TransactionalStore};
use crate::error::{Result, StreamingError};
use crate::offset_range::{OffsetRange, TopicPartition};

/// The name of the table holding the offsets.
pub const OFFSETS_TABLE: &str = "ferrokafka_offsets";

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS ferrokafka_offsets (
    group_id    TEXT    NOT NULL,
    topic       TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset BIGINT  NOT NULL CHECK (next_offset >= 0),
    PRIMARY KEY (group_id, topic, partition)
)";
const SELECT_GROUP: &str = "SELECT topic, partition, next_offset FROM ferrokafka_offsets WHERE group_id = $1";
const LOCK_ROW: &str =
    "SELECT next_offset FROM ferrokafka_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3 FOR UPDATE";
const UPDATE_ROW: &str =
    "UPDATE ferrokafka_offsets SET next_offset = $4 WHERE group_id = $1 AND topic = $2 AND partition = $3";
const INSERT_ROW: &str = "INSERT INTO ferrokafka_offsets (group_id, topic, partition, next_offset) \
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

/// The store's connection and whether a transaction is left open on it.
struct Conn {
    client: Client,
    /// `BEGIN` was sent and neither `COMMIT` nor `ROLLBACK` succeeded since.
    in_transaction: bool,
}

impl Conn {
    /// Rolls back a transaction left open by a dropped [`PostgresTransaction`].
    async fn settle(&mut self) -> Result<()> {
        if self.in_transaction {
            self.client.batch_execute("ROLLBACK").await.map_err(|e| pg_error("rollback", &e))?;
            self.in_transaction = false;
        }
        Ok(())
    }
}

/// Offsets kept in a PostgreSQL table, next to the application's results.
///
/// It does not reconnect: once its connection is lost, every call fails with a
/// [`StreamingError::Store`] naming the cause; make a new store.
pub struct PostgresStore {
    conn: Arc<Mutex<Conn>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects without TLS (`config` is a libpq-style string or URL, e.g.
    /// `host=127.0.0.1 port=5432 user=app dbname=app`), drives the connection on a spawned
    /// task, and creates the offsets table if missing.
    pub async fn connect(config: &str) -> Result<PostgresStore> {
        let (client, connection) =
            ::tokio_postgres::connect(config, NoTls).await.map_err(|e| pg_error("connect", &e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "offset store: PostgreSQL connection ended with an error");
            }
        });
        PostgresStore::new(client).await
    }

    /// Uses a connected client (whose connection the caller drives, e.g. one set up with TLS)
    /// and creates the offsets table if missing.
    pub async fn new(client: Client) -> Result<PostgresStore> {
        if let Err(e) = client.batch_execute(CREATE_TABLE).await {
            // Two sessions creating the table at once: the loser sees a duplicate.
            let raced =
                matches!(e.code(), Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::DUPLICATE_TABLE);
            if !raced {
                return Err(pg_error(&format!("create table {OFFSETS_TABLE}"), &e));
            }
        }
        Ok(PostgresStore { conn: Arc::new(Mutex::new(Conn { client, in_transaction: false })) })
    }
}

impl TransactionalStore for PostgresStore {
    type Txn<'a> = PostgresTransaction;

    /// Waits while a transaction of this store is open.
    async fn load_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let mut conn = self.conn.lock().await;
        conn.settle().await?;
        let rows = conn.client.query(SELECT_GROUP, &[&group]).await.map_err(|e| pg_error("load offsets", &e))?;
        let mut offsets = BTreeMap::new();
        for row in rows {
            let topic: &str = row.try_get(0).map_err(|e| pg_error("load offsets: topic", &e))?;
            let partition: i32 = row.try_get(1).map_err(|e| pg_error("load offsets: partition", &e))?;
            let offset = next_offset(&row, 2, topic, partition)?;
            offsets.insert(TopicPartition::new(topic, partition), offset);
        }
        Ok(offsets)
    }

    async fn begin(&self) -> Result<PostgresTransaction> {
        let mut conn = Arc::clone(&self.conn).lock_owned().await;
        conn.settle().await?;
        // Set before sending: if BEGIN's answer is lost, the next user rolls back (a ROLLBACK
        // outside a transaction is only a warning).
        conn.in_transaction = true;
        conn.client.batch_execute("BEGIN").await.map_err(|e| pg_error("begin", &e))?;
        Ok(PostgresTransaction { conn, aborted: None })
    }
}

/// An open PostgreSQL transaction of a batch; dropping it without commit rolls it back.
///
/// Run the batch's result statements with [`sql`](PostgresTransaction::sql): they run inside
/// this transaction. Do not send `BEGIN`, `COMMIT` or `ROLLBACK` yourself (savepoints are fine).
pub struct PostgresTransaction {
    conn: OwnedMutexGuard<Conn>,
    aborted: Option<Abort>,
}

impl std::fmt::Debug for PostgresTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTransaction").field("aborted", &self.aborted).finish_non_exhaustive()
    }
}

impl PostgresTransaction {
    /// The client, whose statements run in this transaction.
    pub fn sql(&self) -> &Client {
        &self.conn.client
    }

    async fn advance_one(&self, group: &str, range: &OffsetRange) -> Result<()> {
        let client = &self.conn.client;
        let topic: &str = &range.topic;
        let key: [&(dyn ::tokio_postgres::types::ToSql + Sync); 4] =
            [&group, &topic, &range.partition, &range.until_offset];
        // Twice at most: a concurrent first batch may insert the row between our look and insert.
        for _ in 0..2 {
            let row = client.query_opt(LOCK_ROW, &key[..3]).await.map_err(|e| pg_error("lock offset row", &e))?;
            if let Some(row) = row {
                let stored = next_offset(&row, 0, topic, range.partition)?;
                Mismatch::check(range, Some(stored)).map_err(|m| m.error())?;
                client.execute(UPDATE_ROW, &key).await.map_err(|e| pg_error("update offset", &e))?;
                return Ok(());
            }
            if client.execute(INSERT_ROW, &key).await.map_err(|e| pg_error("insert offset", &e))? == 1 {
                return Ok(());
            }
        }
        Err(StreamingError::store(format!(
            "postgres: the offset row of {topic} partition {} keeps appearing and disappearing (concurrent deletes?)",
            range.partition
        )))
    }
}

impl StoreTransaction for PostgresTransaction {
    async fn advance_offsets(&mut self, group: &str, ranges: &[OffsetRange]) -> Result<()> {
        if let Some(abort) = &self.aborted {
            return Err(abort.error());
        }
        let mut result = ranges.iter().try_for_each(OffsetRange::validate);
        for range in ranges {
            if result.is_err() {
                break;
            }
            result = self.advance_one(group, range).await;
        }
        if let Err(e) = &result {
            self.aborted = Some(Abort::from_error(e));
        }
        result
    }

    async fn commit(mut self) -> Result<()> {
        if let Some(abort) = &self.aborted {
            return Err(abort.error());
        }
        // COMMIT of a transaction in which a statement failed answers ROLLBACK without an
        // error: a statement first makes that failure visible.
        self.conn.client.batch_execute("SELECT 1").await.map_err(|e| pg_error("commit", &e))?;
        self.conn.client.batch_execute("COMMIT").await.map_err(|e| pg_error("commit", &e))?;
        self.conn.in_transaction = false;
        Ok(())
    }
}

impl Drop for PostgresTransaction {
    fn drop(&mut self) {
        if !self.conn.in_transaction {
            return;
        }
        // Release the row locks now rather than at the store's next use (which would roll
        // back anyway): the rollback takes the connection right after this guard.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let conn = Arc::clone(OwnedMutexGuard::mutex(&self.conn));
            runtime.spawn(async move {
                if let Err(e) = conn.lock().await.settle().await {
                    tracing::warn!(error = %e, "offset store: rolling back a dropped transaction failed");
                }
            });
        }
    }
}

/// A non-negative `next_offset` from column `idx` of `row`.
fn next_offset(row: &::tokio_postgres::Row, idx: usize, topic: &str, partition: i32) -> Result<i64> {
    let offset: i64 = row.try_get(idx).map_err(|e| pg_error("read next_offset", &e))?;
    if offset < 0 {
        return Err(StreamingError::store(format!(
            "postgres: {OFFSETS_TABLE} holds the negative offset {offset} for {topic} partition {partition}"
        )));
    }
    Ok(offset)
}

/// A store error with the whole cause (tokio-postgres puts the server's message in the source)
/// and the SQLSTATE code.
fn pg_error(what: &str, e: &::tokio_postgres::Error) -> StreamingError {
    let what = match e.code() {
        Some(code) => format!("postgres: {what} (SQLSTATE {})", code.code()),
        None => format!("postgres: {what}"),
    };
    store_error(&what, e)
}
