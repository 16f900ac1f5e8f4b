//! Rate limiting and backpressure: Spark's `DirectKafkaInputDStream.maxMessagesPerPartition`
//! and `PIDRateEstimator`, with the same arithmetic (same operations in the same order, so the
//! same `f64` results), minus the NaN Spark relies on when no partition lags.
//!
//! Per batch: [`PidRateEstimator::compute`] runs when a batch completes (Spark's
//! `RateController.onBatchCompleted`), and [`max_messages_per_partition`] caps how many
//! records of each partition the next batch reads.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::error::{Result, StreamingError};
use crate::offset_range::TopicPartition;

/// Spark's PIDRateEstimator (defaults proportional 1.0, integral 0.2, derivative 0.0, min_rate 100).
///
/// A proportional-integral-derivative controller on the ingestion rate (records/s): the error
/// is the difference between the rate it last estimated and the processing rate measured on
/// the latest batch; the integral term is the backlog implied by the scheduling delay.
#[derive(Clone, Debug)]
pub struct PidRateEstimator {
    batch_interval_ms: f64,
    proportional: f64,
    integral: f64,
    derivative: f64,
    min_rate: f64,
    /// Time of the latest batch taken into account (`None` before the first).
    latest_time: Option<i64>,
    /// Spark's `latestRate`: the processing rate after the first batch, then each estimate.
    latest_rate: f64,
    latest_error: f64,
    /// The latest estimate returned by `compute`.
    published: Option<f64>,
}

impl PidRateEstimator {
    /// Spark's `spark.streaming.backpressure.pid.proportional` default.
    pub const DEFAULT_PROPORTIONAL: f64 = 1.0;
    /// Spark's `spark.streaming.backpressure.pid.integral` default.
    pub const DEFAULT_INTEGRAL: f64 = 0.2;
    /// Spark's `spark.streaming.backpressure.pid.derived` default.
    pub const DEFAULT_DERIVATIVE: f64 = 0.0;
    /// Spark's `spark.streaming.backpressure.pid.minRate` default (records/s).
    pub const DEFAULT_MIN_RATE: f64 = 100.0;

    /// An estimator, validated like Spark: interval > 0, proportional, integral and derivative
    /// >= 0, min_rate > 0 (all finite). The error names the Spark setting.
    pub fn new(
        batch_interval: Duration,
        proportional: f64,
        integral: f64,
        derivative: f64,
        min_rate: f64,
    ) -> Result<Self> {
        if batch_interval.is_zero() {
            return Err(StreamingError::Params(format!(
                "the batch interval of the PID rate estimator must be > 0 (got {batch_interval:?})"
            )));
        }
        let settings = [
            ("spark.streaming.backpressure.pid.proportional", proportional),
            ("spark.streaming.backpressure.pid.integral", integral),
            ("spark.streaming.backpressure.pid.derived", derivative),
        ];
        for (name, value) in settings {
            if !(value.is_finite() && value >= 0.0) {
                return Err(StreamingError::Params(format!("{name} must be a finite number >= 0 (got {value})")));
            }
        }
        if !(min_rate.is_finite() && min_rate > 0.0) {
            return Err(StreamingError::Params(format!(
                "spark.streaming.backpressure.pid.minRate must be a finite number > 0 (got {min_rate})"
            )));
        }
        Ok(Self::unchecked(batch_interval, proportional, integral, derivative, min_rate))
    }

    /// An estimator with Spark's defaults (a zero interval is raised to 1 ms).
    pub fn with_defaults(batch_interval: Duration) -> Self {
        Self::unchecked(
            batch_interval.max(Duration::from_millis(1)),
            Self::DEFAULT_PROPORTIONAL,
            Self::DEFAULT_INTEGRAL,
            Self::DEFAULT_DERIVATIVE,
            Self::DEFAULT_MIN_RATE,
        )
    }

    fn unchecked(batch_interval: Duration, proportional: f64, integral: f64, derivative: f64, min_rate: f64) -> Self {
        PidRateEstimator {
            // Spark uses whole milliseconds; identical for whole milliseconds.
            batch_interval_ms: batch_interval.as_nanos() as f64 / 1e6,
            proportional,
            integral,
            derivative,
            min_rate,
            latest_time: None,
            latest_rate: -1.0,
            latest_error: -1.0,
            published: None,
        }
    }

    /// Spark's `compute(time, numElements, processingDelay, schedulingDelay)`: `Some(new rate)`
    /// or `None` (the first call only records the processing rate; no estimate when there are
    /// no elements, no processing delay, or the time does not increase).
    ///
    /// `time_ms`: when the batch finished processing; `elements`: records in the batch;
    /// delays in milliseconds. Calls that estimate nothing (non-positive elements or
    /// processing delay, time not after the previous call's) change nothing. The estimate is
    /// never below `min_rate`. The first call accepts any time (Spark's needs `time >= 0`,
    /// which epoch milliseconds are).
    pub fn compute(
        &mut self,
        time_ms: i64,
        elements: i64,
        processing_delay_ms: i64,
        scheduling_delay_ms: i64,
    ) -> Option<f64> {
        let after_latest = self.latest_time.is_none_or(|t| time_ms > t);
        if !(after_latest && elements > 0 && processing_delay_ms > 0) {
            return None;
        }
        // In seconds, close to the batch interval (unused on the first call, where Spark
        // measures from time -1).
        let delay_since_update = (i128::from(time_ms) - i128::from(self.latest_time.unwrap_or(-1))) as f64 / 1000.0;
        // Records/s.
        let processing_rate = elements as f64 / processing_delay_ms as f64 * 1000.0;
        // The desired rate is the latest estimate.
        let error = self.latest_rate - processing_rate;
        // The backlog: a scheduling delay s means s × processingRate records overflowed,
        // to be absorbed over one batch interval.
        let historical_error = scheduling_delay_ms as f64 * processing_rate / self.batch_interval_ms;
        // Records/s².
        let d_error = (error - self.latest_error) / delay_since_update;
        let new_rate = (self.latest_rate
            - self.proportional * error
            - self.integral * historical_error
            - self.derivative * d_error)
            .max(self.min_rate);
        let first = self.latest_time.is_none();
        self.latest_time = Some(time_ms);
        if first {
            self.latest_rate = processing_rate;
            self.latest_error = 0.0;
            None
        } else {
            self.latest_rate = new_rate;
            self.latest_error = error;
            self.published = Some(new_rate);
            Some(new_rate)
        }
    }

    /// The latest estimate `compute` returned (records/s), `None` before the first one —
    /// what Spark's `RateController.getLatestRate` publishes (it publishes `-1` before).
    pub fn latest_rate(&self) -> Option<f64> {
        self.published
    }
}

/// The rate settings of a stream (Spark's `spark.streaming.kafka.maxRatePerPartition`,
/// `minRatePerPartition`, `spark.streaming.backpressure.enabled`, `backpressure.initialRate`;
/// per-partition maxima like Spark's `PerPartitionConfig`).
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimits {
    /// Maximum records per second read from each partition; 0 (or any value that is not a
    /// positive finite number) = no maximum. Spark's `spark.streaming.kafka.maxRatePerPartition`.
    pub max_rate_per_partition: f64,
    /// Minimum records per *batch* read from each partition when a cap applies (default 1).
    /// Spark's `spark.streaming.kafka.minRatePerPartition`.
    pub min_rate_per_partition: i64,
    /// Whether the estimator's rate limits batches. Spark's `spark.streaming.backpressure.enabled`.
    pub backpressure: bool,
    /// Rate (records/s, whole stream) before the estimator's first estimate; 0 = none.
    /// Spark's `spark.streaming.backpressure.initialRate`.
    pub initial_rate: f64,
    /// `max_rate_per_partition` overrides (Spark's `PerPartitionConfig.maxRatePerPartition`).
    pub per_partition_max: HashMap<TopicPartition, f64>,
}

impl Default for RateLimits {
    /// No maximum, minimum 1 per batch, no backpressure, no initial rate, no overrides.
    fn default() -> Self {
        RateLimits {
            max_rate_per_partition: 0.0,
            min_rate_per_partition: 1,
            backpressure: false,
            initial_rate: 0.0,
            per_partition_max: HashMap::new(),
        }
    }
}

impl RateLimits {
    /// The maximum rate of `tp` in records/s (its override, else `max_rate_per_partition`);
    /// 0 when there is none.
    pub fn max_rate_for(&self, tp: &TopicPartition) -> f64 {
        let rate = self.per_partition_max.get(tp).copied().unwrap_or(self.max_rate_per_partition);
        if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            0.0
        }
    }

    /// The minimum records per batch of `tp` when it is capped.
    pub fn min_rate_for(&self, _tp: &TopicPartition) -> i64 {
        self.min_rate_per_partition
    }
}

/// Per-partition caps (records per batch) for one batch, or `None` for "no cap".
/// `latest_rate` = the estimator's latest rate (used when backpressure is on), `lags` = end
/// offset − current offset per partition.
///
/// - Backpressure on and an estimate — `latest_rate` truncated to whole records/s as Spark's
///   `RateController` publishes it, if > 0, else `initial_rate` if > 0: the rate is split by
///   lag share (`lag / total_lag × rate`, negative lags counting as 0), each share capped by
///   the partition's maximum rate when it has one.
/// - Otherwise each partition's maximum rate (Spark's no-backpressure path).
///
/// The cap is `max(trunc(secs_per_batch × rate), min_rate_per_partition)`. `None` when every
/// lag is zero (or `lags` is empty) under backpressure, or when the rates sum to zero — where
/// Spark goes through a NaN (`0 / 0.0`) to the same `None`.
///
/// Without an estimate, a partition with no maximum is absent from the map: it is not capped.
/// (Spark caps such a partition at `minRatePerPartition` whenever another partition has a
/// maximum, which only a custom `PerPartitionConfig` can cause.) A cap can be as large as
/// `i64::MAX`: add it to an offset with `saturating_add`.
pub fn max_messages_per_partition(
    limits: &RateLimits,
    latest_rate: Option<f64>,
    lags: &BTreeMap<TopicPartition, i64>,
    batch_interval: Duration,
) -> Option<BTreeMap<TopicPartition, i64>> {
    let rates = effective_rates(limits, latest_rate, lags)?;
    // Spark: batchDuration.milliseconds / 1000; identical for whole milliseconds.
    let secs_per_batch = batch_interval.as_nanos() as f64 / 1e9;
    Some(
        rates
            .into_iter()
            .map(|(tp, rate)| {
                // `as` truncates toward zero and saturates, like Scala's Double.toLong.
                let cap = ((secs_per_batch * rate) as i64).max(limits.min_rate_for(tp));
                (tp.clone(), cap)
            })
            .collect(),
    )
}

/// The rate (records/s) of each capped partition, or `None` for no cap at all.
fn effective_rates<'a>(
    limits: &RateLimits,
    latest_rate: Option<f64>,
    lags: &'a BTreeMap<TopicPartition, i64>,
) -> Option<BTreeMap<&'a TopicPartition, f64>> {
    let rates: BTreeMap<&TopicPartition, f64> = match estimated_rate(limits, latest_rate) {
        Some(rate) => {
            let total_lag = lags.values().fold(0i64, |sum, lag| sum.saturating_add((*lag).max(0)));
            if total_lag == 0 {
                return None;
            }
            lags.iter()
                .map(|(tp, lag)| {
                    let backpressure_rate = (*lag).max(0) as f64 / total_lag as f64 * rate;
                    let max = limits.max_rate_for(tp);
                    (tp, if max > 0.0 { backpressure_rate.min(max) } else { backpressure_rate })
                })
                .collect()
        }
        None => lags.keys().map(|tp| (tp, limits.max_rate_for(tp))).filter(|(_, max)| *max > 0.0).collect(),
    };
    (rates.values().sum::<f64>() > 0.0).then_some(rates)
}

/// The whole stream's rate under backpressure: the latest estimate as whole records/s if
/// positive, else the initial rate if positive.
fn estimated_rate(limits: &RateLimits, latest_rate: Option<f64>) -> Option<f64> {
    if !limits.backpressure {
        return None;
    }
    // Spark's RateController stores `rate.toLong` and reads it back: truncation, saturating.
    let published = latest_rate.map(|r| r as i64).filter(|r| *r > 0).map(|r| r as f64);
    published.or((limits.initial_rate.is_finite() && limits.initial_rate > 0.0).then_some(limits.initial_rate))
}

#[cfg(test)]
mod tests;
