//! librdkafka's statistics JSON, written without a serializer (one line, its key names).

use std::fmt::Write;

use super::*;

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
            let _ = write!(
                out,
                "\"msg_cnt\":{},\"msg_size\":{},\"txmsgs\":{},\"producer\":{{\"batchcnt\":{},\"txretries\":{},\
                 \"failed\":{},\"batchsize_avg\":{},\"batch_fill_pct\":{},\"delivery_latency\":{{\"avg\":{},\"max\":{}}}}},",
                p.queued_records,
                p.queued_bytes,
                p.records_delivered,
                p.batches_sent,
                p.retries,
                p.records_failed,
                p.batch_bytes_avg,
                p.batch_fill_percent,
                p.delivery_latency_avg.as_micros(),
                p.delivery_latency_max.as_micros()
            );
        }
        if !self.errors.is_empty() {
            // {"errors":{"Fetch":{"NOT_LEADER_OR_FOLLOWER":3}}}: ferrokafka's own key.
            out.push_str("\"errors\":{");
            let mut last_api = None;
            for e in &self.errors {
                if last_api != Some(e.api) {
                    if last_api.is_some() {
                        out.push_str("},");
                    }
                    let _ = write!(out, "\"{}\":{{", e.api);
                    last_api = Some(e.api);
                } else {
                    out.push(',');
                }
                let _ = write!(out, "\"{}\":{}", e.code.name(), e.count);
            }
            out.push_str("}},");
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
                ":{{\"state\":\"{}\",\"connections\":{},\"connects\":{},\"tx\":{},\"rx\":{},\"txerrs\":{},\"waitresp_cnt\":{},\"txbytes\":{},\"rxbytes\":{},\"rtt\":{{\"avg\":{},\"max\":{}}}}}",
                b.state,
                b.connections,
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
                    "\"{}\":{{\"app_offset\":{},\"hi_offset\":{},\"ls_offset\":{},\"consumer_lag\":{},\"committed_offset\":{},\"consumed_offsets\":{},\"fetch_state\":\"{}\"}}",
                    p.partition.partition,
                    p.position.unwrap_or(-1001),
                    p.high_watermark,
                    p.last_stable_offset,
                    p.lag.unwrap_or(-1),
                    p.committed.unwrap_or(-1001),
                    p.consumed_offsets,
                    if p.paused { "paused" } else { "active" }
                );
            }
            out.push_str("}}");
        }
        out.push_str("}}");
        out
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
        c.opened();
        let b = c.snapshot("h:9092");
        assert_eq!((b.state, b.connections), ("UP", 1));
        assert_eq!((b.connects, b.requests, b.responses, b.failed_requests, b.in_flight), (1, 3, 1, 1, 1));
        assert_eq!((b.bytes_sent, b.bytes_received), (160, 1000));
        assert_eq!((b.rtt_avg, b.rtt_max), (Duration::from_micros(300), Duration::from_micros(300)));
        let s = Statistics {
            producer: None,
            errors: Vec::new(),
            group: None,
            brokers: vec![b],
            partitions: vec![
                PartitionStatistics {
                    partition: TopicPartition::new("t\"1", 0),
                    position: Some(5),
                    high_watermark: 9,
                    last_stable_offset: 9,
                    lag: Some(4),
                    committed: Some(3),
                    consumed_offsets: 5,
                    paused: false,
                },
                PartitionStatistics {
                    partition: TopicPartition::new("t\"1", 1),
                    position: None,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    lag: None,
                    committed: None,
                    consumed_offsets: 0,
                    paused: true,
                },
            ],
        };
        let json = s.to_json();
        assert_eq!(
            json,
            "{\"brokers\":{\"h:9092\":{\"state\":\"UP\",\"connections\":1,\"connects\":1,\"tx\":3,\"rx\":1,\"txerrs\":1,\"waitresp_cnt\":1,\"txbytes\":160,\
             \"rxbytes\":1000,\"rtt\":{\"avg\":300,\"max\":300}}},\"topics\":{\"t\\\"1\":{\"partitions\":{\"0\":{\
             \"app_offset\":5,\"hi_offset\":9,\"ls_offset\":9,\"consumer_lag\":4,\"committed_offset\":3,\"consumed_offsets\":5,\"fetch_state\":\"active\"},\"1\":{\
             \"app_offset\":-1001,\"hi_offset\":-1,\"ls_offset\":-1,\"consumer_lag\":-1,\"committed_offset\":-1001,\"consumed_offsets\":0,\"fetch_state\":\"paused\"}}}}}"
        );
        assert_eq!(s.total_lag(), 4);

        let with_more = Statistics {
            producer: Some(ProducerStatistics {
                queued_records: 3,
                queued_bytes: 90,
                records_delivered: 7,
                delivery_latency_max: Duration::from_micros(1500),
                ..ProducerStatistics::default()
            }),
            errors: vec![
                ErrorStatistics { api: crate::Api::FETCH, code: 1.into(), count: 1 },
                ErrorStatistics { api: crate::Api::FETCH, code: 6.into(), count: 2 },
                ErrorStatistics { api: crate::Api::PRODUCE, code: 6.into(), count: 3 },
            ],
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
            "{\"msg_cnt\":3,\"msg_size\":90,\"txmsgs\":7,\"producer\":{\"batchcnt\":0,\"txretries\":0,\"failed\":0,\
             \"batchsize_avg\":0,\"batch_fill_pct\":0,\"delivery_latency\":{\"avg\":0,\"max\":1500}},\
             \"errors\":{\"Fetch\":{\"OFFSET_OUT_OF_RANGE\":1,\"NOT_LEADER_OR_FOLLOWER\":2},\"Produce\":{\"NOT_LEADER_OR_FOLLOWER\":3}},\
             \"cgrp\":{\"group_id\":\"g\",\"member_id\":\"m\",\"protocol\":\"consumer\",\
             \"generation\":4,\"state\":\"up\",\"rebalance_cnt\":2,\"assignment_size\":6},\"brokers\":{},\"topics\":{}}"
        );
    }
}
