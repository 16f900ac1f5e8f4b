//! Statistics an operator watches, as librdkafka's statistics JSON and the Java
//! client's metrics give them: per broker (connections, requests, bytes, round trips)
//! and per partition (positions, watermarks, lag).
//!
//! Where they are recorded: a connection counts its requests, bytes and round trips in
//! its broker's `BrokerCounters` (shared by the broker's general, produce, fetch and
//! group connections; `conn/mod.rs`), the cluster counts connects when it opens one
//! (`cluster.rs`), and the consumer reads its partition state when asked. Counting is
//! a few relaxed atomic adds per request, never per record.
//!
//! The same figures go to the [`metrics`] facade, for Prometheus or OpenTelemetry
//! exporters: `ferrokafka_broker_connects_total`, `…_requests_total`,
//! `…_request_failures_total`, `…_bytes_sent_total`, `…_bytes_received_total` (counters),
//! `ferrokafka_broker_requests_in_flight` (gauge) and `ferrokafka_broker_rtt_seconds`
//! (histogram), each labelled `broker="host:port"`; `ferrokafka_consumer_lag` (gauge,
//! `topic`, `partition`), set when a fetch moves a partition. The handles are made once
//! per broker and partition; without an installed recorder they do nothing.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::metadata::TopicPartition;

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
    requests: AtomicU64,
    responses: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicI64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    rtt_us_sum: AtomicU64,
    rtt_us_max: AtomicU64,
}

impl BrokerCounters {
    /// Counters of `broker`, also reported to the metrics facade.
    pub(crate) fn exported(broker: &str) -> BrokerCounters {
        BrokerCounters { exported: Some(Exported::new(broker)), ..BrokerCounters::default() }
    }

    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = &self.exported {
            e.connects.increment(1);
        }
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
            requests: self.requests.load(Ordering::Relaxed),
            responses,
            failed_requests: self.failed.load(Ordering::Relaxed),
            in_flight: u64::try_from(self.in_flight.load(Ordering::Relaxed)).unwrap_or(0),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            rtt_avg: Duration::from_micros(self.rtt_us_sum.load(Ordering::Relaxed).checked_div(responses).unwrap_or(0)),
            rtt_max: Duration::from_micros(self.rtt_us_max.load(Ordering::Relaxed)),
        }
    }
}

/// One broker's statistics (librdkafka's `brokers.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerStatistics {
    /// `host:port`.
    pub broker: String,
    /// Connections opened (`connects`).
    pub connects: u64,
    /// Requests sent (`tx`).
    pub requests: u64,
    /// Answers received (`rx`).
    pub responses: u64,
    /// Requests that got no answer: timed out or cut by a closed connection (`txerrs`).
    pub failed_requests: u64,
    /// Requests awaiting their answer now (`waitresp_cnt`).
    pub in_flight: u64,
    /// Request bytes written (`txbytes`).
    pub bytes_sent: u64,
    /// Answer bytes read (`rxbytes`).
    pub bytes_received: u64,
    /// Mean round trip, request queued to answer read (`rtt.avg`).
    pub rtt_avg: Duration,
    /// Longest round trip (`rtt.max`).
    pub rtt_max: Duration,
}

/// One assigned partition's statistics (librdkafka's `topics.*.partitions.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionStatistics {
    /// The partition.
    pub partition: TopicPartition,
    /// The next offset the application consumes (`app_offset`; `None` before it is known).
    pub position: Option<i64>,
    /// The high watermark last seen (`hi_offset`, -1 before the first fetch).
    pub high_watermark: i64,
    /// The last stable offset last seen (`ls_offset`, -1 before the first fetch).
    pub last_stable_offset: i64,
    /// Records between the position and the end (`consumer_lag`; the last stable
    /// offset under `read_committed`).
    pub lag: Option<i64>,
    /// Paused by the application.
    pub paused: bool,
}

/// A producer's queue (librdkafka's top-level `msg_cnt`, `msg_size`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerStatistics {
    /// Records accepted by `send` and not yet delivered or failed (`msg_cnt`).
    pub queued_records: u64,
    /// The bytes they hold, bounded by `buffer.memory` (`msg_size`).
    pub queued_bytes: u64,
    /// `send` calls waiting for room in `buffer.memory` now.
    pub blocked_sends: u64,
}

/// A group member (librdkafka's `cgrp`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupStatistics {
    /// `group.id`.
    pub group_id: String,
    /// The member id ("" before joining).
    pub member_id: String,
    /// `classic` or `consumer` (KIP-848).
    pub protocol: &'static str,
    /// The generation (classic) or member epoch (KIP-848); -1 or 0 before joining.
    pub generation: i32,
    /// `up` in a generation with an assignment, `joining` otherwise (`state`).
    pub state: &'static str,
    /// Assignments taken so far (`rebalance_cnt`).
    pub rebalances: u64,
    /// Partitions assigned now (`assignment_size`).
    pub assignment_size: usize,
}

/// A snapshot of a client's statistics; [`Statistics::to_json`] writes librdkafka's
/// statistics layout (its key names) for the parts ferrokafka has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Every broker the client has talked to.
    pub brokers: Vec<BrokerStatistics>,
    /// Assigned partitions (consumers).
    pub partitions: Vec<PartitionStatistics>,
    /// The producer's queue (producers).
    pub producer: Option<ProducerStatistics>,
    /// The group membership (group consumers).
    pub group: Option<GroupStatistics>,
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Statistics {
    /// One line of JSON: `{"brokers":{"host:port":{…}},"topics":{"t":{"partitions":{"0":{…}}}}}`,
    /// round trips in microseconds, as librdkafka writes them.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        if let Some(p) = &self.producer {
            let _ = write!(out, "\"msg_cnt\":{},\"msg_size\":{},", p.queued_records, p.queued_bytes);
        }
        if let Some(g) = &self.group {
            out.push_str("\"cgrp\":{\"group_id\":");
            json_str(&mut out, &g.group_id);
            out.push_str(",\"member_id\":");
            json_str(&mut out, &g.member_id);
            let _ = write!(
                out,
                ",\"protocol\":\"{}\",\"generation\":{},\"state\":\"{}\",\"rebalance_cnt\":{},\"assignment_size\":{}}},",
                g.protocol, g.generation, g.state, g.rebalances, g.assignment_size
            );
        }
        out.push_str("\"brokers\":{");
        for (i, b) in self.brokers.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_str(&mut out, &b.broker);
            let _ = write!(
                out,
                ":{{\"connects\":{},\"tx\":{},\"rx\":{},\"txerrs\":{},\"waitresp_cnt\":{},\"txbytes\":{},\"rxbytes\":{},\"rtt\":{{\"avg\":{},\"max\":{}}}}}",
                b.connects,
                b.requests,
                b.responses,
                b.failed_requests,
                b.in_flight,
                b.bytes_sent,
                b.bytes_received,
                b.rtt_avg.as_micros(),
                b.rtt_max.as_micros()
            );
        }
        out.push_str("},\"topics\":{");
        let mut topics: std::collections::BTreeMap<&str, Vec<&PartitionStatistics>> = Default::default();
        for p in &self.partitions {
            topics.entry(&p.partition.topic).or_default().push(p);
        }
        for (i, (t, parts)) in topics.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_str(&mut out, t);
            out.push_str(":{\"partitions\":{");
            for (j, p) in parts.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                let _ = write!(
                    out,
                    "\"{}\":{{\"app_offset\":{},\"hi_offset\":{},\"ls_offset\":{},\"consumer_lag\":{},\"fetch_state\":\"{}\"}}",
                    p.partition.partition,
                    p.position.unwrap_or(-1001),
                    p.high_watermark,
                    p.last_stable_offset,
                    p.lag.unwrap_or(-1),
                    if p.paused { "paused" } else { "active" }
                );
            }
            out.push_str("}}");
        }
        out.push_str("}}");
        out
    }

    /// The summed lag of every partition whose lag is known.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_json_follow_librdkafkas_names() {
        let c = BrokerCounters::default();
        c.connected();
        c.sent(100);
        c.sent(50);
        c.answered(Some((1000, Duration::from_micros(300))));
        c.answered(None);
        c.sent(10);
        let b = c.snapshot("h:9092");
        assert_eq!((b.connects, b.requests, b.responses, b.failed_requests, b.in_flight), (1, 3, 1, 1, 1));
        assert_eq!((b.bytes_sent, b.bytes_received), (160, 1000));
        assert_eq!((b.rtt_avg, b.rtt_max), (Duration::from_micros(300), Duration::from_micros(300)));
        let s = Statistics {
            producer: None,
            group: None,
            brokers: vec![b],
            partitions: vec![
                PartitionStatistics {
                    partition: TopicPartition::new("t\"1", 0),
                    position: Some(5),
                    high_watermark: 9,
                    last_stable_offset: 9,
                    lag: Some(4),
                    paused: false,
                },
                PartitionStatistics {
                    partition: TopicPartition::new("t\"1", 1),
                    position: None,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    lag: None,
                    paused: true,
                },
            ],
        };
        let json = s.to_json();
        assert_eq!(
            json,
            "{\"brokers\":{\"h:9092\":{\"connects\":1,\"tx\":3,\"rx\":1,\"txerrs\":1,\"waitresp_cnt\":1,\"txbytes\":160,\
             \"rxbytes\":1000,\"rtt\":{\"avg\":300,\"max\":300}}},\"topics\":{\"t\\\"1\":{\"partitions\":{\"0\":{\
             \"app_offset\":5,\"hi_offset\":9,\"ls_offset\":9,\"consumer_lag\":4,\"fetch_state\":\"active\"},\"1\":{\
             \"app_offset\":-1001,\"hi_offset\":-1,\"ls_offset\":-1,\"consumer_lag\":-1,\"fetch_state\":\"paused\"}}}}}"
        );
        assert_eq!(s.total_lag(), 4);

        let with_more = Statistics {
            producer: Some(ProducerStatistics { queued_records: 3, queued_bytes: 90, blocked_sends: 0 }),
            group: Some(GroupStatistics {
                group_id: "g".into(),
                member_id: "m".into(),
                protocol: "consumer",
                generation: 4,
                state: "up",
                rebalances: 2,
                assignment_size: 6,
            }),
            ..Statistics::default()
        };
        assert_eq!(
            with_more.to_json(),
            "{\"msg_cnt\":3,\"msg_size\":90,\"cgrp\":{\"group_id\":\"g\",\"member_id\":\"m\",\"protocol\":\"consumer\",\
             \"generation\":4,\"state\":\"up\",\"rebalance_cnt\":2,\"assignment_size\":6},\"brokers\":{},\"topics\":{}}"
        );
    }
}
