//! Exact-range reads: "the records at offsets `[from, until)` of this partition".
//!
//! This is what a batch of the streaming layer reads. It never returns a record
//! outside the range, steps over gaps (compaction, transaction markers, aborted
//! records), and fails with [`ClientError::RangeUnavailable`] when the range is
//! not in the log (below the log start, or past the high watermark).

use std::time::Duration;

use ferrokafka_protocol::messages::{ApiKey, FetchResponse};
use ferrokafka_protocol::records::{AbortedTransactions, DecodeOptions, Record, RecordSet};
use ferrokafka_protocol::ResponseError;
use tokio::time::Instant;

use crate::cluster::{Cluster, ConnKind};
use crate::config::IsolationLevel;
use crate::error::{ClientError, Result};
use crate::fetch::{aborted_transactions, fetch_request};
use crate::metadata::TopicPartition;

/// Reads one partition's offsets `[from, until)`, fetch by fetch.
#[derive(Debug)]
pub struct RangeReader {
    cluster: Cluster,
    tp: TopicPartition,
    from: i64,
    until: i64,
    next: i64,
    poll_timeout: Duration,
}

impl RangeReader {
    /// A reader of `[from, until)`; `poll_timeout` bounds the wait for data that
    /// should be there (Spark's `spark.streaming.kafka.consumer.poll.ms`).
    pub fn new(cluster: Cluster, tp: TopicPartition, from: i64, until: i64, poll_timeout: Duration) -> Result<Self> {
        if from < 0 || until < from {
            return Err(ClientError::InvalidState(format!(
                "invalid range for {tp}: from {from} must be non-negative and not after until {until}"
            )));
        }
        Ok(RangeReader { cluster, tp, from, until, next: from, poll_timeout })
    }

    /// Whether every offset of the range has been passed.
    pub fn is_done(&self) -> bool {
        self.next >= self.until
    }

    /// The next records of the range (never empty), or `None` once the range is read.
    pub async fn next_records(&mut self) -> Result<Option<Vec<Record>>> {
        let deadline = Instant::now() + self.poll_timeout;
        let mut attempt_err = None;
        while !self.is_done() {
            if Instant::now() >= deadline {
                return Err(attempt_err.unwrap_or_else(|| self.unavailable(-1, -1)));
            }
            match self.fetch_once().await {
                Ok(records) if !records.is_empty() => return Ok(Some(records)),
                Ok(_) => {}
                Err(e) if e.is_retriable() => {
                    if e.needs_metadata_refresh() {
                        let _ = self.cluster.refresh_metadata().await;
                    }
                    tokio::time::sleep(self.cluster.retry_backoff()).await;
                    attempt_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Reads the whole range.
    pub async fn read_all(mut self) -> Result<Vec<Record>> {
        let mut out = Vec::with_capacity(usize::try_from(self.until - self.from).unwrap_or(0).min(1 << 20));
        while let Some(mut chunk) = self.next_records().await? {
            out.append(&mut chunk);
        }
        Ok(out)
    }

    fn unavailable(&self, log_start: i64, high_watermark: i64) -> ClientError {
        ClientError::RangeUnavailable {
            topic: self.tp.topic.to_string(),
            partition: self.tp.partition,
            from: self.from,
            until: self.until,
            log_start,
            high_watermark,
        }
    }

    async fn fetch_once(&mut self) -> Result<Vec<Record>> {
        let cfg = self.cluster.config();
        let (_, conn) = self.cluster.leader(&self.tp, ConnKind::Fetch).await?;
        let version = conn.version(ApiKey::Fetch)?;
        let req = fetch_request(cfg, version, 1, [(&self.tp, self.next)]);
        let resp: FetchResponse = conn.call_at(ApiKey::Fetch, version, &req, Some(cfg.fetch_max_wait())).await?;
        let mut pd = resp
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == self.tp.partition)
            .ok_or_else(|| ClientError::InvalidState(format!("Fetch response without {}", self.tp)))?;
        let end = match cfg.isolation_level() {
            IsolationLevel::ReadCommitted if pd.last_stable_offset >= 0 => pd.last_stable_offset,
            _ => pd.high_watermark,
        };
        if let Some(error) = ResponseError::try_from_code(pd.error_code) {
            return Err(match error {
                ResponseError::OffsetOutOfRange => self.unavailable(pd.log_start_offset, end),
                error => ClientError::Broker {
                    api: ApiKey::Fetch,
                    error,
                    topic: self.tp.topic.to_string(),
                    partition: self.tp.partition,
                },
            });
        }
        if self.until > end || (pd.log_start_offset >= 0 && self.from < pd.log_start_offset) {
            return Err(self.unavailable(pd.log_start_offset, end));
        }
        let mut filter = AbortedTransactions::new(aborted_transactions(&mut pd));
        let opts = DecodeOptions { check_crcs: cfg.check_crcs(), ..DecodeOptions::default() };
        let mut out = Vec::new();
        let start = self.next;
        for batch in RecordSet::new(pd.records.unwrap_or_default(), opts) {
            let batch = batch.map_err(|source| ClientError::Protocol { broker: conn.addr().to_owned(), source })?;
            if batch.last_offset < start {
                continue;
            }
            let keep = match cfg.isolation_level() {
                IsolationLevel::ReadCommitted => filter.retain(&batch),
                IsolationLevel::ReadUncommitted => !batch.is_control,
            };
            if keep {
                for r in batch.records_from(start) {
                    let r = r.map_err(|source| ClientError::Protocol { broker: conn.addr().to_owned(), source })?;
                    if r.offset >= self.until {
                        break;
                    }
                    out.push(r);
                }
            }
            self.next = self.next.max(batch.last_offset + 1);
            if self.next >= self.until {
                break;
            }
        }
        Ok(out)
    }
}
