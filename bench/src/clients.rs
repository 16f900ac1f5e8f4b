//! The in-process clients, each run as its own process so its CPU time is its own.

use std::time::Duration;

use bytes::Bytes;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecordRef};
use rskafka::client::partition::UnknownTopicHandling;

pub fn run(mode: &str, args: &[String]) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (boot, topic) = (&args[0], &args[1]);
    let partitions: i32 = args[2].parse().expect("partitions");
    let n = match mode {
        "consume-ferrokafka" => rt.block_on(consume_ferrokafka(boot, topic, partitions, args[3].parse().expect("n"))),
        "consume-rskafka" => rt.block_on(consume_rskafka(boot, topic, partitions, args[3].parse().expect("n"))),
        "produce-ferrokafka" => rt.block_on(produce_ferrokafka(boot, topic, &args[3])),
        other => panic!("unknown mode {other}"),
    };
    println!("{n}");
}

async fn consume_ferrokafka(boot: &str, topic: &str, partitions: i32, n: usize) -> usize {
    let cfg =
        ClientConfig::from_pairs([("bootstrap.servers", boot), ("auto.offset.reset", "earliest")]).expect("config");
    let mut consumer = Consumer::new(cfg).await.expect("consumer");
    consumer.assign((0..partitions).map(|p| TopicPartition::new(topic, p)));
    let (mut count, mut bytes) = (0usize, 0usize);
    while count < n {
        let records = consumer.poll(Duration::from_secs(10)).await.expect("poll");
        assert!(!records.is_empty(), "no records for 10 s after {count}");
        for r in records.views() {
            let r = r.expect("record");
            bytes += r.record.value().map_or(0, <[u8]>::len) + r.record.key().map_or(0, <[u8]>::len);
            count += 1;
        }
    }
    assert!(bytes > 0);
    count
}

async fn consume_rskafka(boot: &str, topic: &str, partitions: i32, n: usize) -> usize {
    let client = rskafka::client::ClientBuilder::new(vec![boot.to_owned()]).build().await.expect("rskafka client");
    let mut tasks = Vec::new();
    for p in 0..partitions {
        let pc = client.partition_client(topic, p, UnknownTopicHandling::Retry).await.expect("partition client");
        tasks.push(tokio::spawn(async move {
            let mut offset = 0;
            let mut count = 0;
            loop {
                let (records, hw) = pc.fetch_records(offset, 1..1_048_576, 500).await.expect("fetch");
                for r in &records {
                    offset = r.offset + 1;
                    count += 1;
                }
                if offset >= hw {
                    return count;
                }
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    assert_eq!(total, n, "rskafka read everything");
    total
}

async fn produce_ferrokafka(boot: &str, topic: &str, input: &str) -> usize {
    let cfg = ClientConfig::from_pairs([
        ("bootstrap.servers", boot),
        ("linger.ms", "50"),
        ("batch.size", "1000000"),
        ("acks", "1"),
        ("buffer.memory", crate::BUFFER_MEMORY),
    ])
    .expect("config");
    let producer = Producer::new(cfg).await.expect("producer");
    let data = Bytes::from(std::fs::read(input).expect("input"));
    // Finished deliveries are collected oldest first; `send` waits when buffer.memory
    // is full.
    let mut pending = std::collections::VecDeque::with_capacity(100_000);
    let mut n = 0;
    let mut start = 0;
    while start < data.len() {
        let end = data[start..].iter().position(|b| *b == b'\n').map_or(data.len(), |i| start + i);
        let line = data.slice(start..end);
        start = end + 1;
        let colon = line.iter().position(|b| *b == b':').unwrap_or(0);
        let rec = ProducerRecordRef {
            topic,
            key: Some(&line[..colon]),
            value: Some(&line[colon + 1..]),
            ..Default::default()
        };
        pending.push_back(producer.send_ref(rec).await.expect("send"));
        n += 1;
        while let Some(d) = pending.pop_front_if(|d| d.is_finished()) {
            d.await.expect("delivery");
        }
    }
    for d in pending {
        d.await.expect("delivery");
    }
    producer.close().await;
    n
}
