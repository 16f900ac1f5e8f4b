//! The commands.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokafka_client::admin::{list_offsets, OffsetSpec};
use ferrokafka_client::cluster::Cluster;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{DeliveryFuture, Producer, ProducerRecordRef};
use ferrokafka_client::range::RangeReader;
use ferrokafka_client::ClientError;

use crate::error::io_err;
use crate::error::{CliError, Result};

use crate::args::{Args, Mode, StartOffset};
use crate::format::Output;
use crate::input::{read_message, unescape};

pub async fn run(args: Args) -> Result<()> {
    let mut pairs = args.config.clone();
    if let Some(g) = &args.group {
        pairs.insert("group.id".into(), g.clone());
    }
    let config = ClientConfig::from_pairs(&pairs).map_err(ClientError::from)?;
    if args.mode == Mode::GroupConsume {
        return crate::group::consume(config, &args).await;
    }
    let cluster = Cluster::connect(config).await?;
    match args.mode {
        Mode::Group => crate::group::admin(&cluster, &args).await,
        Mode::GroupConsume => Ok(()),
        Mode::List => list(&cluster, &args).await,
        Mode::Produce => produce(cluster, &args).await,
        Mode::Consume => consume(cluster, &args).await,
        Mode::Query => query(&cluster, &args).await,
        Mode::ReadRange => read_range(cluster, &args).await,
    }
}

async fn list(cluster: &Cluster, args: &Args) -> Result<()> {
    let topics = if args.topics.is_empty() { None } else { Some(args.topics.clone()) };
    let md = cluster.describe(topics.as_deref()).await?;
    // Brokers by id, topics by name: the same listing on every run.
    let mut brokers: Vec<_> = md.brokers.values().collect();
    brokers.sort_by_key(|b| b.id);
    let mut topics: Vec<_> = md.topics.values().collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = serde_json::json!({
            "controllerid": md.controller_id,
            "brokers": brokers.iter().map(|b| serde_json::json!({"id": b.id, "name": b.addr()})).collect::<Vec<_>>(),
            "topics": topics.iter().map(|t| serde_json::json!({
                "topic": t.name.as_ref(),
                "error": t.error_code,
                "partitions": t.partitions.iter().map(|p| serde_json::json!({
                    "partition": p.id, "leader": p.leader, "error": p.error_code,
                    "replicas": p.replicas, "isrs": p.isr,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{v}").map_err(io_err)?;
        return Ok(());
    }
    writeln!(
        out,
        "Metadata for {}:",
        if args.topics.is_empty() { "all topics".into() } else { args.topics.join(", ") }
    )
    .map_err(io_err)?;
    writeln!(out, " {} brokers:", brokers.len()).map_err(io_err)?;
    for b in brokers {
        let ctl = if b.id == md.controller_id { " (controller)" } else { "" };
        writeln!(out, "  broker {} at {}{ctl}", b.id, b.addr()).map_err(io_err)?;
    }
    writeln!(out, " {} topics:", topics.len()).map_err(io_err)?;
    let ids = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    for t in topics {
        let err = if t.error_code != 0 { format!(", error {}", t.error_code) } else { String::new() };
        writeln!(out, "  topic \"{}\" with {} partitions{err}:", t.name, t.partitions.len()).map_err(io_err)?;
        for p in &t.partitions {
            writeln!(
                out,
                "    partition {}, leader {}, replicas: {}, isrs: {}",
                p.id,
                p.leader,
                ids(&p.replicas),
                ids(&p.isr)
            )
            .map_err(io_err)?;
        }
    }
    Ok(())
}

async fn partitions_of(cluster: &Cluster, topic: &str) -> Result<Vec<TopicPartition>> {
    cluster.track_topics([topic]);
    let md = cluster.refresh_metadata().await?;
    let t = md.topics.get(topic).filter(|t| t.error_code == 0 && !t.partitions.is_empty());
    let t = t.ok_or_else(|| ClientError::UnknownTopicOrPartition { topic: topic.to_owned(), partition: None })?;
    Ok(t.partitions.iter().map(|p| TopicPartition::new(topic, p.id)).collect())
}

async fn produce(cluster: Cluster, args: &Args) -> Result<()> {
    let topic = &args.topics[0];
    let producer = Producer::with_cluster(cluster)?;
    let headers: Vec<(String, Option<Bytes>)> =
        args.headers.iter().map(|(k, v)| (k.clone(), v.clone().map(Bytes::from))).collect();
    // Deliveries are collected oldest first as they finish, never waited for one by
    // one, so the producer keeps batching; `send` itself waits when buffer.memory is
    // full, which bounds this queue too.
    let mut pending = std::collections::VecDeque::new();
    // kcat's -l FILE, else stdin; split into messages the same way.
    let mut input: Box<dyn std::io::BufRead> = match &args.input_file {
        Some(path) => Box::new(std::io::BufReader::with_capacity(
            1 << 16,
            std::fs::File::open(path).map_err(|e| CliError::Io {
                what: "-l",
                source: std::io::Error::new(e.kind(), format!("{path}: {e}")),
            })?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut line = Vec::new();
    let mut sent = 0u64;
    // kcat's -D: the message delimiter, with \n, \t, \r and \xNN escapes.
    let delim = unescape(args.delimiter.as_deref().unwrap_or("\n"));
    let fixed_key = args.produce_key.as_ref().map(|k| k.as_bytes());
    // Each message is read into `line` (reused) and sent borrowed: the producer copies
    // it into its batch, so nothing is allocated per message.
    while read_message(&mut input, &delim, &mut line).map_err(io_err)? {
        let (key, value) = match &args.key_delimiter {
            Some(d) => match find(&line, d.as_bytes()) {
                Some(i) => (Some(&line[..i]), &line[i + d.len()..]),
                None => (None, &line[..]),
            },
            None => (None, &line[..]),
        };
        let rec = ProducerRecordRef {
            topic,
            partition: args.partition,
            key: key.or(fixed_key),
            value: Some(value),
            headers: &headers,
            timestamp: None,
        };
        pending.push_back(producer.send_ref(rec).await?);
        sent += 1;
        while pending.front().is_some_and(DeliveryFuture::is_finished) {
            if let Some(d) = pending.pop_front() {
                d.await?;
            }
        }
    }
    for d in pending {
        d.await?;
    }
    producer.close().await;
    if !args.quiet {
        eprintln!("% produced {sent} records to {topic}");
    }
    Ok(())
}

fn offset_of(map: &HashMap<TopicPartition, i64>, tp: &TopicPartition) -> Result<i64> {
    map.get(tp).copied().ok_or_else(|| {
        ClientError::UnknownTopicOrPartition { topic: tp.topic.to_string(), partition: Some(tp.partition) }.into()
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    // A byte search for the delimiter's first byte, then a comparison of the rest: the
    // windowed comparison called memcmp at every position (6% of producing 1M lines).
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = hay.get(from..)?.iter().position(|&b| b == first) {
        let at = from + i;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

async fn consume(cluster: Cluster, args: &Args) -> Result<()> {
    let mut tps = Vec::new();
    for t in &args.topics {
        for tp in partitions_of(&cluster, t).await? {
            if args.partition.is_none_or(|p| p == tp.partition) {
                tps.push(tp);
            }
        }
    }
    if tps.is_empty() {
        return Err(
            ClientError::UnknownTopicOrPartition { topic: args.topics.join(","), partition: args.partition }.into()
        );
    }
    let iso = cluster.config().isolation_level();
    let ends = list_offsets(&cluster, &tps, OffsetSpec::Latest, iso).await?;
    let starts: HashMap<TopicPartition, i64> = match args.offset {
        StartOffset::Beginning => list_offsets(&cluster, &tps, OffsetSpec::Earliest, iso).await?,
        StartOffset::End => ends.clone(),
        StartOffset::Absolute(o) => tps.iter().map(|tp| (tp.clone(), o)).collect(),
        StartOffset::FromEnd(n) => {
            let begin = list_offsets(&cluster, &tps, OffsetSpec::Earliest, iso).await?;
            let mut m = HashMap::new();
            for tp in &tps {
                m.insert(tp.clone(), (offset_of(&ends, tp)? - n).max(offset_of(&begin, tp)?));
            }
            m
        }
        StartOffset::Timestamp(ts) => {
            let found = list_offsets(&cluster, &tps, OffsetSpec::Timestamp(ts), iso).await?;
            let mut m = HashMap::new();
            for tp in &tps {
                let o = offset_of(&found, tp)?;
                m.insert(tp.clone(), if o < 0 { offset_of(&ends, tp)? } else { o });
            }
            m
        }
    };
    let mut consumer = Consumer::with_cluster(cluster);
    consumer.assign(tps.iter().cloned());
    for tp in &tps {
        consumer.seek(tp, offset_of(&starts, tp)?)?;
    }
    let output =
        Output::new(args.format.as_deref(), args.json, args.key_delimiter.as_deref(), args.delimiter.as_deref());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let progress = std::io::stderr().is_terminal() && !args.quiet;
    let (mut count, mut bytes, mut last_report, started) = (0u64, 0u64, Instant::now(), Instant::now());
    let mut last_stats = Instant::now();
    // Progress on a terminal: records, rate and lag, rewritten in place.
    let report = |c: &Consumer, count: u64, bytes: u64| {
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let lag: i64 = tps.iter().filter_map(|tp| c.lag(tp)).sum();
        eprint!(
            "\r% {count} records ({:.0}/s, {:.1} MB/s), lag {lag}   ",
            count as f64 / secs,
            bytes as f64 / secs / 1e6
        );
    };
    let at_end = |c: &Consumer| {
        args.exit_at_end && tps.iter().all(|tp| c.position(tp).is_some_and(|p| ends.get(tp).is_none_or(|e| p >= *e)))
    };
    'outer: while !at_end(&consumer) {
        let records = consumer.poll(Duration::from_millis(500)).await?;
        for r in records.views() {
            let r = r?;
            output.write_consumed(&mut out, &r).map_err(io_err)?;
            if args.unbuffered {
                out.flush().map_err(io_err)?;
            }
            count += 1;
            bytes += r.record.value().map_or(0, |v| v.len() as u64);
            if args.count.is_some_and(|c| count >= c) {
                break 'outer;
            }
        }
        if args.stats.is_some_and(|every| last_stats.elapsed() >= every) {
            eprintln!("stats: {}", consumer.statistics().to_json());
            last_stats = Instant::now();
        }
        if progress && last_report.elapsed() >= Duration::from_secs(1) {
            report(&consumer, count, bytes);
            last_report = Instant::now();
        }
    }
    out.flush().map_err(io_err)?;
    if progress {
        // The last figures, whatever the time since the last report (`-e`, `-c`).
        report(&consumer, count, bytes);
        eprintln!();
    }
    consumer.close().await;
    Ok(())
}

async fn query(cluster: &Cluster, args: &Args) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for spec in &args.topics {
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        let [ts, p, topic] = parts.as_slice() else {
            return Err(CliError::Usage(format!("-Q needs -t topic:partition:timestamp, got {spec:?}")));
        };
        let bad = |what: &str| CliError::Usage(format!("-Q: {what} in {spec:?} is not a number"));
        let tp = TopicPartition::new(*topic, p.parse().map_err(|_| bad("partition"))?);
        let ts: i64 = ts.parse().map_err(|_| bad("timestamp"))?;
        let offsets = list_offsets(
            cluster,
            std::slice::from_ref(&tp),
            OffsetSpec::Timestamp(ts),
            cluster.config().isolation_level(),
        )
        .await?;
        writeln!(out, "{} [{}] offset {}", tp.topic, tp.partition, offsets.get(&tp).copied().unwrap_or(-1))
            .map_err(io_err)?;
    }
    Ok(())
}

async fn read_range(cluster: Cluster, args: &Args) -> Result<()> {
    let Some((topic, partition, from, until)) = args.range.clone() else {
        return Err(CliError::Usage("read-range needs TOPIC PARTITION FROM UNTIL".into()));
    };
    let output =
        Output::new(args.format.as_deref(), args.json, args.key_delimiter.as_deref(), args.delimiter.as_deref());
    let tp = TopicPartition::new(topic.as_str(), partition);
    let mut reader = RangeReader::new(cluster, tp, from, until, Duration::from_secs(120))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    while let Some(r) = reader.next().await {
        output.write(&mut out, &topic, partition, &r?.view()).map_err(io_err)?;
    }
    out.flush().map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn find_matches_the_windowed_search() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"k1:v1", b":"),
            (b"k1:v1", b"::"),
            (b"a:b::c", b"::"),
            (b"ab:a:::x:::", b":::"),
            (b"no delimiter", b":"),
            (b"ends with:", b":"),
            (b"", b":"),
            (b"x", b""),
            (b"::", b":::"),
        ];
        for (hay, needle) in cases {
            let want = if needle.is_empty() { None } else { hay.windows(needle.len()).position(|w| w == *needle) };
            assert_eq!(find(hay, needle), want, "{:?} in {:?}", needle, hay);
        }
    }
}
