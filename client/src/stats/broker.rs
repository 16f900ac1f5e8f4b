//! A broker's live counters, over all its connections, and their facade handles.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::BrokerStatistics;

/// The facade's handles of one broker (made once, labelled with its address).
#[derive(Debug)]
struct Exported {
    connects: metrics::Counter,
    requests: metrics::Counter,
    failed: metrics::Counter,
    bytes_sent: metrics::Counter,
    bytes_received: metrics::Counter,
    in_flight: metrics::Gauge,
    rtt: metrics::Histogram,
}

impl Exported {
    fn new(broker: &str) -> Exported {
        let b = broker.to_owned();
        Exported {
            connects: metrics::counter!("ferrokafka_broker_connects_total", "broker" => b.clone()),
            requests: metrics::counter!("ferrokafka_broker_requests_total", "broker" => b.clone()),
            failed: metrics::counter!("ferrokafka_broker_request_failures_total", "broker" => b.clone()),
            bytes_sent: metrics::counter!("ferrokafka_broker_bytes_sent_total", "broker" => b.clone()),
            bytes_received: metrics::counter!("ferrokafka_broker_bytes_received_total", "broker" => b.clone()),
            in_flight: metrics::gauge!("ferrokafka_broker_requests_in_flight", "broker" => b.clone()),
            rtt: metrics::histogram!("ferrokafka_broker_rtt_seconds", "broker" => b),
        }
    }
}

/// Live counters of one broker, over all its connections.
#[derive(Debug, Default)]
pub(crate) struct BrokerCounters {
    exported: Option<Exported>,
    connects: AtomicU64,
    /// Connections whose task runs now (`None` of them ever: the broker is new).
    open: AtomicI64,
    ever_opened: std::sync::atomic::AtomicBool,
    requests: AtomicU64,
    responses: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicI64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    rtt_us_sum: AtomicU64,
    rtt_us_max: AtomicU64,
    /// Error codes this broker answered, by API and code.
    pub(crate) errors: super::ErrorCounts,
}

impl BrokerCounters {
    /// Counters of `broker`, also reported to the metrics facade.
    pub(crate) fn exported(broker: &str) -> BrokerCounters {
        BrokerCounters {
            exported: Some(Exported::new(broker)),
            errors: super::ErrorCounts::of(broker),
            ..BrokerCounters::default()
        }
    }

    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = &self.exported {
            e.connects.increment(1);
        }
    }

    /// A connection's task started.
    pub(crate) fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.ever_opened.store(true, Ordering::Relaxed);
    }

    /// A connection's task ended (the socket closed or failed).
    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn sent(&self, bytes: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        if let Some(e) = &self.exported {
            e.requests.increment(1);
            e.in_flight.increment(1.0);
            e.bytes_sent.increment(bytes as u64);
        }
    }

    /// A request the broker does not answer (Produce with `acks=0`): counted as sent,
    /// never in flight.
    pub(crate) fn sent_unanswered(&self, bytes: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        if let Some(e) = &self.exported {
            e.requests.increment(1);
            e.bytes_sent.increment(bytes as u64);
        }
    }

    /// An answer of `bytes` after `rtt`, or (`None`) no answer: a timeout, a closed
    /// connection, a caller that stopped waiting.
    pub(crate) fn answered(&self, answer: Option<(usize, Duration)>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(e) = &self.exported {
            e.in_flight.decrement(1.0);
        }
        match answer {
            Some((bytes, rtt)) => {
                self.responses.fetch_add(1, Ordering::Relaxed);
                self.bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
                let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
                self.rtt_us_sum.fetch_add(us, Ordering::Relaxed);
                self.rtt_us_max.fetch_max(us, Ordering::Relaxed);
                if let Some(e) = &self.exported {
                    e.bytes_received.increment(bytes as u64);
                    e.rtt.record(rtt.as_secs_f64());
                }
            }
            None => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Some(e) = &self.exported {
                    e.failed.increment(1);
                }
            }
        }
    }

    pub(crate) fn snapshot(&self, broker: &str) -> BrokerStatistics {
        let responses = self.responses.load(Ordering::Relaxed);
        BrokerStatistics {
            broker: broker.to_owned(),
            connects: self.connects.load(Ordering::Relaxed),
            state: match (self.open.load(Ordering::Relaxed), self.ever_opened.load(Ordering::Relaxed)) {
                (n, _) if n > 0 => "UP",
                (_, true) => "DOWN",
                _ => "INIT",
            },
            connections: u64::try_from(self.open.load(Ordering::Relaxed)).unwrap_or(0),
            requests: self.requests.load(Ordering::Relaxed),
            responses,
            failed_requests: self.failed.load(Ordering::Relaxed),
            in_flight: u64::try_from(self.in_flight.load(Ordering::Relaxed)).unwrap_or(0),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            rtt_avg: Duration::from_micros(self.rtt_us_sum.load(Ordering::Relaxed).checked_div(responses).unwrap_or(0)),
            rtt_max: Duration::from_micros(self.rtt_us_max.load(Ordering::Relaxed)),
            errors: self.errors.snapshot(),
        }
    }
}
