//! Spark's DirectKafkaStreamSuite `maxMessagesPerPartition` cases and PIDRateEstimatorSuite,
//! with the expected values rebuilt from the formulas, plus property tests.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::*;

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new("maxMessagesPerPartition", partition)
}

fn lags(values: &[i64]) -> BTreeMap<TopicPartition, i64> {
    values.iter().enumerate().map(|(i, lag)| (tp(i as i32), *lag)).collect()
}

fn caps(values: &[i64]) -> Option<BTreeMap<TopicPartition, i64>> {
    Some(lags(values))
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn limits(max_rate: f64, backpressure: bool) -> RateLimits {
    RateLimits { max_rate_per_partition: max_rate, backpressure, ..RateLimits::default() }
}

// ---- DirectKafkaStreamSuite ----

#[test]
fn backpressure_disabled() {
    // maxRatePerPartition 100, batch 100 ms: 0.1 s × 100/s = 10 per partition.
    let l = limits(100.0, false);
    assert_eq!(max_messages_per_partition(&l, None, &lags(&[50, 50]), ms(100)), caps(&[10, 10]));
    // An estimate is ignored without backpressure.
    assert_eq!(max_messages_per_partition(&l, Some(1.0), &lags(&[50, 50]), ms(100)), caps(&[10, 10]));
    // No maximum: no cap.
    assert_eq!(max_messages_per_partition(&limits(0.0, false), None, &lags(&[50, 50]), ms(100)), None);
}

#[test]
fn backpressure_with_no_lag_has_no_cap() {
    // Spark: lag / totalLag.toDouble = 0 / 0.0 = NaN, NaN sums are not > 0, so None. Here
    // the zero total lag is a special case, with or without a maximum rate.
    for max in [100.0, 0.0] {
        let l = limits(max, true);
        assert_eq!(max_messages_per_partition(&l, Some(100.0), &lags(&[0, 0]), ms(100)), None);
        assert_eq!(max_messages_per_partition(&l, Some(100.0), &BTreeMap::new(), ms(100)), None);
    }
    // Negative lags (an end offset behind the position) count as zero.
    assert_eq!(max_messages_per_partition(&limits(100.0, true), Some(100.0), &lags(&[-5, 0]), ms(100)), None);
}

#[test]
fn backpressure_respects_max_rate() {
    // Rate 1000 split by equal lags: 500/s each; maxima 50 and 100: min(500, 50) = 50,
    // min(500, 100) = 100; × 0.1 s = 5 and 10.
    let mut l = limits(100.0, true);
    l.per_partition_max.insert(tp(0), 50.0);
    assert_eq!(max_messages_per_partition(&l, Some(1000.0), &lags(&[1000, 1000]), ms(100)), caps(&[5, 10]));
}

#[test]
fn backpressure_uses_the_estimated_rate() {
    // Spark's "using rate controller": maxRatePerPartition 100, batch 500 ms, one partition;
    // estimates 100, 50, 20 give batches of 0.5 × min(rate, 100) = 50, 25, 10.
    let l = limits(100.0, true);
    for (rate, expected) in [(100.0, 50), (50.0, 25), (20.0, 10)] {
        assert_eq!(max_messages_per_partition(&l, Some(rate), &lags(&[5000]), ms(500)), caps(&[expected]));
    }
}

#[test]
fn initial_rate_before_the_first_estimate() {
    // Spark's backpressure.initialRate tests, batch 500 ms, one partition lagging 1000:
    // initial 500 under maximum 1000: 0.5 × 500 = 250; initial 1000 over maximum 300: 0.5 × 300 = 150.
    for (max, initial, expected) in [(1000.0, 500.0, 250), (300.0, 1000.0, 150)] {
        let l = RateLimits { initial_rate: initial, ..limits(max, true) };
        assert_eq!(max_messages_per_partition(&l, None, &lags(&[1000]), ms(500)), caps(&[expected]));
    }
    // An estimate replaces the initial rate; one below 1 record/s is published as 0 by
    // Spark's RateController (toLong) and does not.
    let l = RateLimits { initial_rate: 500.0, ..limits(1000.0, true) };
    assert_eq!(max_messages_per_partition(&l, Some(100.0), &lags(&[1000]), ms(500)), caps(&[50]));
    assert_eq!(max_messages_per_partition(&l, Some(0.7), &lags(&[1000]), ms(500)), caps(&[250]));
    // No estimate, no initial rate: back to the maximum rate, 0.5 × 1000.
    assert_eq!(max_messages_per_partition(&limits(1000.0, true), None, &lags(&[1000]), ms(500)), caps(&[500]));
}

#[test]
fn zero_offsets_get_the_minimum_rate() {
    // Spark's "maxMessagesPerPartition with zero offset and rate equal to the specified
    // minimum": batch 60 s, maxRatePerPartition 100, minRatePerPartition 5, estimate 1/s,
    // lags 0, 100, 200, 300 (total 600): shares 0, 1/6, 2/6, 3/6 records/s; × 60 s =
    // 0, 10, 20, 30; the minimum lifts the first to 5.
    let l = RateLimits { min_rate_per_partition: 5, ..limits(100.0, true) };
    assert_eq!(
        max_messages_per_partition(&l, Some(1.0), &lags(&[0, 100, 200, 300]), ms(60_000)),
        caps(&[5, 10, 20, 30])
    );
}

// ---- Our additions ----

#[test]
fn estimates_are_truncated_to_whole_records_per_second() {
    // 1.9/s is published as 1/s (Spark's toLong); one partition, 10 s: 10, not 19.
    let l = limits(0.0, true);
    assert_eq!(max_messages_per_partition(&l, Some(1.9), &lags(&[100]), Duration::from_secs(10)), caps(&[10]));
    // Rates are split before the per-batch truncation: 3/s over lags 1:2 for 1 s = 1 and 2.
    assert_eq!(max_messages_per_partition(&l, Some(3.0), &lags(&[10, 20]), Duration::from_secs(1)), caps(&[1, 2]));
}

#[test]
fn partitions_without_a_maximum_are_not_capped() {
    // Without an estimate, p1 has no maximum: absent from the caps, i.e. unlimited (Spark
    // would cap it at minRatePerPartition, 1 per batch).
    let mut l = limits(0.0, false);
    l.per_partition_max.insert(tp(0), 50.0);
    assert_eq!(max_messages_per_partition(&l, None, &lags(&[100, 100]), Duration::from_secs(1)), caps(&[50]));
    // An override of 0 removes the global maximum for that partition.
    let mut l = limits(20.0, false);
    l.per_partition_max.insert(tp(1), 0.0);
    assert_eq!(max_messages_per_partition(&l, None, &lags(&[100, 100]), Duration::from_secs(1)), caps(&[20]));
    // Not-a-number or infinite maxima mean none.
    for bad in [f64::NAN, f64::INFINITY, -3.0] {
        assert_eq!(max_messages_per_partition(&limits(bad, false), None, &lags(&[100]), ms(100)), None);
    }
}

#[test]
fn minimum_is_per_batch_and_applies_to_idle_partitions() {
    // 0.1 s × 20/s = 2 < minimum 7 per batch.
    let l = RateLimits { min_rate_per_partition: 7, ..limits(20.0, false) };
    assert_eq!(max_messages_per_partition(&l, None, &lags(&[100, 0]), ms(100)), caps(&[7, 7]));
}

#[test]
fn huge_rates_saturate() {
    let l = limits(0.0, true);
    let c = max_messages_per_partition(&l, Some(1e300), &lags(&[i64::MAX, i64::MAX]), Duration::from_secs(3600));
    assert_eq!(c, caps(&[i64::MAX, i64::MAX]));
    // An infinite estimate is published as i64::MAX records/s (Scala's toLong saturates too).
    let expected = (0.001 * i64::MAX as f64) as i64;
    assert_eq!(max_messages_per_partition(&l, Some(f64::INFINITY), &lags(&[1]), ms(1)), caps(&[expected]));
}

#[test]
fn sub_millisecond_batches() {
    // 0.5 ms × 10 000/s = 5.
    assert_eq!(
        max_messages_per_partition(&limits(10_000.0, false), None, &lags(&[100]), Duration::from_micros(500)),
        caps(&[5])
    );
}

/// splitmix64 for the property tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// 0 half the time, else uniform in 0..max (with fractions).
    fn rate(&mut self, max: u64) -> f64 {
        if self.below(2) == 0 {
            0.0
        } else {
            self.below(max * 100) as f64 / 100.0
        }
    }
}

#[test]
fn property_caps_are_bounded_and_never_negative() {
    let mut rng = Rng(42);
    let mut capped = 0;
    for _ in 0..20_000 {
        let n = rng.below(12) as i32;
        let mut l = RateLimits {
            max_rate_per_partition: rng.rate(5000),
            min_rate_per_partition: rng.below(12) as i64,
            backpressure: rng.below(4) != 0,
            initial_rate: rng.rate(20_000),
            per_partition_max: HashMap::new(),
        };
        let mut lag_map = BTreeMap::new();
        for p in 0..n {
            let lag = match rng.below(4) {
                0 => 0,
                1 => -(rng.below(100) as i64),
                _ => rng.below(1_000_000) as i64,
            };
            lag_map.insert(tp(p), lag);
            if rng.below(3) == 0 {
                l.per_partition_max.insert(tp(p), rng.rate(5000));
            }
        }
        let latest = match rng.below(3) {
            0 => None,
            _ => Some(rng.rate(50_000)),
        };
        let interval = ms(1 + rng.below(10_000));
        let secs = interval.as_millis() as f64 / 1000.0; // Spark's secsPerBatch
        let result = max_messages_per_partition(&l, latest, &lag_map, interval);
        let estimate = estimated_rate(&l, latest);
        let total_lag: i64 = lag_map.values().map(|v| (*v).max(0)).sum();
        let Some(result) = result else {
            // No cap only when there is nothing to split or no maximum at all.
            match estimate {
                Some(_) => assert_eq!(total_lag, 0),
                None => assert!(lag_map.keys().all(|p| l.max_rate_for(p) == 0.0)),
            }
            continue;
        };
        capped += 1;
        let rates = effective_rates(&l, latest, &lag_map).unwrap();
        let mut sum_caps = 0f64;
        for (p, cap) in &result {
            assert!(*cap >= 0 && *cap >= l.min_rate_for(p), "{cap}");
            let rate = rates[p];
            assert!(rate >= 0.0);
            assert_eq!(*cap, ((secs * rate) as i64).max(l.min_rate_for(p)));
            let max = l.max_rate_for(p);
            if max > 0.0 {
                assert!(rate <= max);
            }
            sum_caps += *cap as f64;
        }
        if let Some(rate) = estimate {
            // Every partition is capped, the shares add up to at most the estimated rate, and
            // the batch to at most its records plus the minimum per partition.
            assert_eq!(result.len(), lag_map.len());
            let sum: f64 = rates.values().sum();
            assert!(sum <= rate * (1.0 + 1e-12), "{sum} > {rate}");
            assert!(sum_caps <= secs * rate * (1.0 + 1e-12) + (l.min_rate_per_partition * n as i64) as f64);
        } else {
            assert!(result.keys().all(|p| l.max_rate_for(p) > 0.0));
        }
    }
    assert!(capped > 5_000, "{capped}");
}

// ---- PIDRateEstimatorSuite ----

/// The suite's default estimator: 20 ms, proportional 1, integral 0, derivative 0, min 10.
fn default_estimator() -> PidRateEstimator {
    PidRateEstimator::new(ms(20), 1.0, 0.0, 0.0, 10.0).unwrap()
}

#[test]
fn estimator_checks_ranges() {
    let params = |r: Result<PidRateEstimator>| match r {
        Err(StreamingError::Params(m)) => m,
        other => panic!("expected a Params error, got {other:?}"),
    };
    assert!(params(PidRateEstimator::new(ms(0), 1.0, 2.0, 3.0, 10.0)).contains("batch interval"));
    assert!(params(PidRateEstimator::new(ms(100), -1.0, 2.0, 3.0, 10.0)).contains("pid.proportional"));
    assert!(params(PidRateEstimator::new(ms(100), 0.0, -1.0, 3.0, 10.0)).contains("pid.integral"));
    assert!(params(PidRateEstimator::new(ms(100), 0.0, 0.0, -1.0, 10.0)).contains("pid.derived"));
    assert!(params(PidRateEstimator::new(ms(100), 0.0, 0.0, 0.0, 0.0)).contains("pid.minRate"));
    assert!(params(PidRateEstimator::new(ms(100), 0.0, 0.0, 0.0, -10.0)).contains("pid.minRate"));
    // Spark's require(x >= 0) also rejects NaN; we also reject infinities (they make NaN rates).
    assert!(params(PidRateEstimator::new(ms(100), f64::NAN, 0.0, 0.0, 1.0)).contains("pid.proportional"));
    assert!(params(PidRateEstimator::new(ms(100), 0.0, f64::INFINITY, 0.0, 1.0)).contains("pid.integral"));
    assert!(params(PidRateEstimator::new(ms(100), 0.0, 0.0, 0.0, f64::NAN)).contains("pid.minRate"));
    assert!(PidRateEstimator::new(ms(100), 0.0, 0.0, 0.0, 0.5).is_ok());
}

#[test]
fn first_estimate_is_none() {
    let mut p = default_estimator();
    assert_eq!(p.compute(0, 10, 10, 0), None);
    assert_eq!(p.latest_rate(), None);
}

#[test]
fn second_estimate_is_not_none() {
    let mut p = default_estimator();
    p.compute(0, 10, 10, 0);
    // 10 records in 10 ms = 1000/s; error = 1000 − 1000 = 0, so the rate stays 1000.
    assert_eq!(p.compute(10, 10, 10, 0), Some(1000.0));
    assert_eq!(p.latest_rate(), Some(1000.0));
}

#[test]
fn no_estimate_when_no_time_difference() {
    let mut p = default_estimator();
    p.compute(0, 10, 10, 0);
    assert!(p.compute(10, 10, 10, 0).is_some());
    assert_eq!(p.compute(10, 10, 10, 0), None);
    assert_eq!(p.compute(5, 10, 10, 0), None);
}

#[test]
fn no_estimate_when_no_records() {
    let mut p = default_estimator();
    p.compute(0, 10, 10, 0);
    assert_eq!(p.compute(10, 0, 10, 0), None);
    assert_eq!(p.compute(20, -10, 10, 0), None);
}

#[test]
fn no_estimate_when_no_processing_delay() {
    let mut p = default_estimator();
    p.compute(0, 10, 10, 0);
    assert_eq!(p.compute(10, 10, 0, 0), None);
    assert_eq!(p.compute(20, 10, -10, 0), None);
}

#[test]
fn skipped_calls_change_nothing() {
    let mut a = default_estimator();
    let mut b = default_estimator();
    a.compute(0, 10, 10, 0);
    b.compute(0, 10, 10, 0);
    assert_eq!(b.compute(5, 0, 10, 0), None);
    assert_eq!(a.compute(10, 30, 10, 0), b.compute(10, 30, 10, 0));
}

#[test]
fn estimate_is_never_less_than_min_rate() {
    // 20 ms batches of 1 record in 20 ms (50/s) with 100 ms scheduling delay. Second call:
    // error 50 − 50 = 0, historical error 100 × 50 / 20 = 250, 50 − 250 < 5: min rate 5.
    // Later: error 5 − 50 = −45, 5 + 45 − 250 < 5 again.
    let mut p = PidRateEstimator::new(ms(20), 1.0, 1.0, 0.0, 5.0).unwrap();
    let res: Vec<Option<f64>> = (0..50).map(|i| p.compute(i * 20, 1, 20, 100)).collect();
    assert_eq!(res[0], None);
    assert!(res[1..].iter().all(|r| *r == Some(5.0)), "{res:?}");
}

#[test]
fn no_accumulated_or_positive_error_follows_the_processing_speed() {
    // Increasing records, constant 20 ms processing, no scheduling delay: new rate =
    // latest − (latest − speed) = speed = (x + 1) × 20 / 20 ms = (x + 1) × 1000/s.
    let mut p = PidRateEstimator::new(ms(20), 1.0, 1.0, 0.0, 10.0).unwrap();
    let res: Vec<Option<f64>> = (0..50).map(|x| p.compute(x * 20, (x + 1) * 20, 20, 0)).collect();
    assert_eq!(res[0], None);
    let expected: Vec<Option<f64>> = (1..50).map(|x| Some((x + 1) as f64 * 1000.0)).collect();
    assert_eq!(res[1..], expected[..]);
}

#[test]
fn no_accumulated_but_some_positive_error_follows_the_processing_speed() {
    let mut p = PidRateEstimator::new(ms(20), 1.0, 1.0, 0.0, 10.0).unwrap();
    let res: Vec<Option<f64>> = (0..50).map(|x| p.compute(x * 20, (50 - x) * 20, 20, 0)).collect();
    assert_eq!(res[0], None);
    let expected: Vec<Option<f64>> = (1..50).map(|x| Some((50 - x) as f64 * 1000.0)).collect();
    assert_eq!(res[1..], expected[..]);
}

#[test]
fn accumulated_error_stays_below_the_processing_speed() {
    // new = speed − 0.01 × sched × speed / 20 < speed whenever sched > 0. (Spark's version
    // draws 0 records sometimes, which estimates nothing; here at least 1.)
    let mut p = PidRateEstimator::new(ms(20), 1.0, 0.01, 0.0, 10.0).unwrap();
    let mut rng = Rng(7);
    for n in 0..50i64 {
        let elements = 1 + rng.below(999) as i64;
        let sched = rng.below(19) as i64;
        let speed = elements as f64 / 20.0 * 1000.0;
        let r = p.compute(n * 20, elements, 20, sched);
        if n == 0 {
            assert_eq!(r, None);
            continue;
        }
        let r = r.unwrap();
        assert!(r > 0.0);
        if sched > 0 {
            assert!(r < speed, "{r} >= {speed}");
        } else {
            assert_eq!(r, speed);
        }
    }
}

#[test]
fn integral_term_with_spark_defaults() {
    // 1 s batches; first batch 1000 records in 1000 ms: latest rate 1000. Second: 1000/s
    // again, 500 ms scheduling delay: historical error 500 × 1000 / 1000 = 500, new rate
    // 1000 − 0.2 × 500 = 900.
    let mut p = PidRateEstimator::with_defaults(Duration::from_secs(1));
    assert_eq!(p.compute(1_000, 1_000, 1_000, 0), None);
    assert_eq!(p.compute(2_000, 1_000, 1_000, 500), Some(900.0));
    assert_eq!(p.latest_rate(), Some(900.0));
    // Never below the default minimum of 100/s.
    assert_eq!(p.compute(3_000, 1, 1_000, 100_000), Some(100.0));
}

#[test]
fn derivative_term_uses_the_time_since_the_last_update() {
    // Derivative only (1 s batches). First: 100 records in 100 ms, latest rate 1000, error 0.
    // Second (1 s later): speed 500, error 1000 − 500 = 500, d = (500 − 0) / 1 s = 500,
    // new = 1000 − 500 = 500. Third (2 s later): speed 1000, error 500 − 1000 = −500,
    // d = (−500 − 500) / 2 s = −500, new = 500 + 500 = 1000.
    let mut p = PidRateEstimator::new(Duration::from_secs(1), 0.0, 0.0, 1.0, 1.0).unwrap();
    assert_eq!(p.compute(0, 100, 100, 0), None);
    assert_eq!(p.compute(1_000, 50, 100, 0), Some(500.0));
    assert_eq!(p.compute(3_000, 100, 100, 0), Some(1000.0));
}

#[test]
fn extreme_times_do_not_overflow() {
    let mut p = default_estimator();
    assert_eq!(p.compute(i64::MIN, 10, 10, 0), None);
    let r = p.compute(i64::MAX, 10, 10, 0);
    assert_eq!(r, Some(1000.0));
}
