//! A producer's counters: batches sent, retried, delivered and failed, their size and
//! their delivery latency; and the facade's handles for them and for the queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::ProducerStatistics;

#[derive(Debug)]
struct Exported {
    queued_records: metrics::Gauge,
    queued_bytes: metrics::Gauge,
    batches: metrics::Counter,
    retries: metrics::Counter,
    delivered: metrics::Counter,
    failed: metrics::Counter,
    batch_bytes: metrics::Histogram,
    latency: metrics::Histogram,
}

/// Counted by the sender per batch (never per record); read by `Producer::statistics`.
#[derive(Debug)]
pub(crate) struct ProducerCounters {
    exported: Exported,
    batches: AtomicU64,
    batch_bytes_sum: AtomicU64,
    retries: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    acked_batches: AtomicU64,
    latency_us_sum: AtomicU64,
    latency_us_max: AtomicU64,
}

impl ProducerCounters {
    /// Counters of the producer with `client.id` `client_id` (the facade's label).
    pub(crate) fn new(client_id: &str) -> ProducerCounters {
        let c = client_id.to_owned();
        ProducerCounters {
            exported: Exported {
                queued_records: metrics::gauge!("ferrokafka_producer_queued_records", "client_id" => c.clone()),
                queued_bytes: metrics::gauge!("ferrokafka_producer_queued_bytes", "client_id" => c.clone()),
                batches: metrics::counter!("ferrokafka_producer_batches_total", "client_id" => c.clone()),
                retries: metrics::counter!("ferrokafka_producer_retries_total", "client_id" => c.clone()),
                delivered: metrics::counter!("ferrokafka_producer_records_delivered_total", "client_id" => c.clone()),
                failed: metrics::counter!("ferrokafka_producer_records_failed_total", "client_id" => c.clone()),
                batch_bytes: metrics::histogram!("ferrokafka_producer_batch_bytes", "client_id" => c.clone()),
                latency: metrics::histogram!("ferrokafka_producer_delivery_latency_seconds", "client_id" => c),
            },
            batches: AtomicU64::new(0),
            batch_bytes_sum: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            acked_batches: AtomicU64::new(0),
            latency_us_sum: AtomicU64::new(0),
            latency_us_max: AtomicU64::new(0),
        }
    }

    /// The queue now holds `records` records of `bytes` bytes.
    pub(crate) fn queue(&self, records: usize, bytes: usize) {
        self.exported.queued_records.set(records as f64);
        self.exported.queued_bytes.set(bytes as f64);
    }

    /// A batch of `bytes` goes out (a first attempt or a retry).
    pub(crate) fn batch_sent(&self, bytes: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batch_bytes_sum.fetch_add(bytes as u64, Ordering::Relaxed);
        self.exported.batches.increment(1);
        self.exported.batch_bytes.record(bytes as f64);
    }

    /// A batch is put back to be sent again.
    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.exported.retries.increment(1);
    }

    /// A batch of `records` was acknowledged `latency` after its first record.
    pub(crate) fn delivered(&self, records: usize, latency: Duration) {
        self.delivered.fetch_add(records as u64, Ordering::Relaxed);
        self.exported.delivered.increment(records as u64);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.acked_batches.fetch_add(1, Ordering::Relaxed);
        self.latency_us_sum.fetch_add(us, Ordering::Relaxed);
        self.latency_us_max.fetch_max(us, Ordering::Relaxed);
        self.exported.latency.record(latency.as_secs_f64());
    }

    /// A batch of `records` failed for good.
    pub(crate) fn failed(&self, records: usize) {
        self.failed.fetch_add(records as u64, Ordering::Relaxed);
        self.exported.failed.increment(records as u64);
    }

    /// The counters, with the queue's figures and `batch.size` (for the fill).
    pub(crate) fn snapshot(&self, queue: (usize, usize, usize), batch_size: usize) -> ProducerStatistics {
        let batches = self.batches.load(Ordering::Relaxed);
        let batch_bytes_avg = self.batch_bytes_sum.load(Ordering::Relaxed).checked_div(batches).unwrap_or(0);
        let acked = self.acked_batches.load(Ordering::Relaxed);
        ProducerStatistics {
            queued_records: queue.0 as u64,
            queued_bytes: queue.1 as u64,
            blocked_sends: queue.2 as u64,
            batches_sent: batches,
            retries: self.retries.load(Ordering::Relaxed),
            records_delivered: self.delivered.load(Ordering::Relaxed),
            records_failed: self.failed.load(Ordering::Relaxed),
            batch_bytes_avg,
            batch_fill_percent: (batch_bytes_avg * 100).checked_div(batch_size as u64).unwrap_or(0),
            delivery_latency_avg: Duration::from_micros(
                self.latency_us_sum.load(Ordering::Relaxed).checked_div(acked).unwrap_or(0),
            ),
            delivery_latency_max: Duration::from_micros(self.latency_us_max.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_fill_retries_and_latency() {
        let c = ProducerCounters::new("t");
        c.batch_sent(400);
        c.batch_sent(600);
        c.retried();
        c.delivered(10, Duration::from_millis(4));
        c.delivered(5, Duration::from_millis(8));
        c.failed(3);
        let s = c.snapshot((2, 100, 0), 1000);
        assert_eq!((s.batches_sent, s.retries, s.records_delivered, s.records_failed), (2, 1, 15, 3));
        assert_eq!((s.batch_bytes_avg, s.batch_fill_percent), (500, 50));
        assert_eq!(
            (s.delivery_latency_avg, s.delivery_latency_max),
            (Duration::from_millis(6), Duration::from_millis(8))
        );
        assert_eq!((s.queued_records, s.queued_bytes), (2, 100));
    }
}
