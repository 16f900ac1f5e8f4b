//! A stream's statistics: what Spark's streaming UI and `StreamingListener` show for
//! a direct stream (batches, records per batch, processing time, scheduling delay,
//! the backpressure rate), plus planning time and the executors' consumer caches.
//!
//! Recorded by [`DirectStream`](crate::DirectStream): planning around its `compute`,
//! processing when a batch completes, the rest when a batch is handed out. Also on the
//! metrics facade, labelled `group`: `ferrokafka_stream_batches_total`,
//! `ferrokafka_stream_batch_records`, `ferrokafka_stream_planning_seconds`,
//! `ferrokafka_stream_processing_seconds` (histograms) and
//! `ferrokafka_stream_backpressure_rate` (gauge, records per second).

use std::time::Duration;

use crate::cache::CacheStatistics;

/// A snapshot of a stream's statistics ([`DirectStream::statistics`](crate::DirectStream::statistics)).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamStatistics {
    /// Batches handed out (restored ones included).
    pub batches: u64,
    /// Records in them, summed (offset counts: compacted or transactional topics
    /// hold fewer).
    pub records: u64,
    /// Records in the last batch (Spark UI's "Input Size").
    pub last_batch_records: u64,
    /// Time to plan the last batch: partitions, latest offsets, rate caps.
    pub planning_last: Duration,
    /// The longest planning so far.
    pub planning_max: Duration,
    /// Processing time of the last completed batch (Spark's `processingDelay`).
    pub processing_last: Duration,
    /// Mean processing time of completed batches.
    pub processing_avg: Duration,
    /// Batches completed.
    pub completed: u64,
    /// How late the last completed batch started after its interval began (Spark's
    /// `schedulingDelay`).
    pub scheduling_delay_last: Duration,
    /// The backpressure estimator's rate, records per second (`None`: backpressure
    /// off, or no estimate yet). The next batch is capped to it.
    pub backpressure_rate: Option<f64>,
    /// The executors' consumer caches, summed.
    pub cache: CacheStatistics,
}

/// What the stream records as it goes.
#[derive(Debug)]
pub(crate) struct StreamCounters {
    now: StreamStatistics,
    processing_sum: Duration,
    batches: metrics::Counter,
    batch_records: metrics::Histogram,
    planning: metrics::Histogram,
    processing: metrics::Histogram,
    rate: metrics::Gauge,
}

impl StreamCounters {
    pub(crate) fn new(group: &str) -> StreamCounters {
        let g = group.to_owned();
        StreamCounters {
            now: StreamStatistics::default(),
            processing_sum: Duration::ZERO,
            batches: metrics::counter!("ferrokafka_stream_batches_total", "group" => g.clone()),
            batch_records: metrics::histogram!("ferrokafka_stream_batch_records", "group" => g.clone()),
            planning: metrics::histogram!("ferrokafka_stream_planning_seconds", "group" => g.clone()),
            processing: metrics::histogram!("ferrokafka_stream_processing_seconds", "group" => g.clone()),
            rate: metrics::gauge!("ferrokafka_stream_backpressure_rate", "group" => g),
        }
    }

    /// A batch was planned in `took`.
    pub(crate) fn planned(&mut self, took: Duration) {
        self.now.planning_last = took;
        self.now.planning_max = self.now.planning_max.max(took);
        self.planning.record(took.as_secs_f64());
    }

    /// A batch of `records` was handed out.
    pub(crate) fn handed_out(&mut self, records: i64) {
        let records = u64::try_from(records).unwrap_or(0);
        self.now.batches += 1;
        self.now.records += records;
        self.now.last_batch_records = records;
        self.batches.increment(1);
        self.batch_records.record(records as f64);
    }

    /// A batch completed after `processing`, `delay` after its interval began; the
    /// estimator's rate is now `rate`.
    pub(crate) fn completed(&mut self, processing: Duration, delay: Duration, rate: Option<f64>) {
        self.now.completed += 1;
        self.now.processing_last = processing;
        self.processing_sum += processing;
        self.now.processing_avg = self.processing_sum / u32::try_from(self.now.completed).unwrap_or(u32::MAX);
        self.now.scheduling_delay_last = delay;
        self.now.backpressure_rate = rate;
        self.processing.record(processing.as_secs_f64());
        if let Some(r) = rate {
            self.rate.set(r);
        }
    }

    pub(crate) fn snapshot(&self, cache: CacheStatistics) -> StreamStatistics {
        StreamStatistics { cache, ..self.now.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_planning_processing_and_rate() {
        let mut c = StreamCounters::new("g");
        c.planned(Duration::from_millis(5));
        c.handed_out(100);
        c.completed(Duration::from_millis(40), Duration::from_millis(3), None);
        c.planned(Duration::from_millis(2));
        c.handed_out(50);
        c.completed(Duration::from_millis(20), Duration::from_millis(1), Some(2500.0));
        let s = c.snapshot(CacheStatistics { hits: 1, ..CacheStatistics::default() });
        assert_eq!((s.batches, s.records, s.last_batch_records, s.completed), (2, 150, 50, 2));
        assert_eq!((s.planning_last, s.planning_max), (Duration::from_millis(2), Duration::from_millis(5)));
        assert_eq!((s.processing_last, s.processing_avg), (Duration::from_millis(20), Duration::from_millis(30)));
        assert_eq!(
            (s.scheduling_delay_last, s.backpressure_rate, s.cache.hits),
            (Duration::from_millis(1), Some(2500.0), 1)
        );
    }
}
