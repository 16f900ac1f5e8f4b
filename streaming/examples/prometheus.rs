//! Monitoring a direct stream with Prometheus: ferrokafka reports through the
//! [`metrics`](https://docs.rs/metrics) facade, so any exporter plugs in. Here
//! `metrics-exporter-prometheus` serves `/metrics`; the stream runs a few batches, then
//! the example scrapes its own endpoint and prints the `ferrokafka_*` series.
//!
//! Java users read the same figures from the client's JMX metrics (`request-total`,
//! `outgoing-byte-total`, `request-latency-avg`, `records-lag`); librdkafka users from
//! the statistics JSON (`brokers.*.tx`, `txbytes`, `rtt`, `consumer_lag`).
//!
//! Environment: `FERROKAFKA_BOOTSTRAP` (localhost:9092), `FERROKAFKA_TOPICS` (topicA),
//! `FERROKAFKA_GROUP`, `FERROKAFKA_METRICS_ADDR` (127.0.0.1:9464), `FERROKAFKA_BATCHES` (3).
//!
//! ```text
//! FERROKAFKA_TOPICS=events cargo run -p ferrokafka-streaming --example prometheus
//! curl -s 127.0.0.1:9464/metrics | grep ferrokafka_
//! ```

use std::io::{Read, Write};
use std::time::Duration;

use ferrokafka_streaming::{DirectStream, KafkaParams, PreferConsistent, StreamConfig, Subscribe};

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// GET /metrics from the exporter, over a plain socket.
fn scrape(addr: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let metrics_addr = env_or("FERROKAFKA_METRICS_ADDR", "127.0.0.1:9464");
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(metrics_addr.parse::<std::net::SocketAddr>()?)
        .install()?;

    let topics: Vec<String> = env_or("FERROKAFKA_TOPICS", "topicA").split(',').map(str::to_owned).collect();
    let params = KafkaParams::new([
        ("bootstrap.servers", env_or("FERROKAFKA_BOOTSTRAP", "localhost:9092")),
        ("group.id", env_or("FERROKAFKA_GROUP", "prometheus-example")),
        ("auto.offset.reset", "earliest".to_owned()),
        ("enable.auto.commit", "false".to_owned()),
    ])?;
    let cfg = StreamConfig { batch_interval: Duration::from_millis(200), ..Default::default() };
    let mut stream =
        DirectStream::create(Subscribe::new(topics, params, Default::default())?, PreferConsistent, cfg).await?;
    let batches: usize = env_or("FERROKAFKA_BATCHES", "3").parse()?;
    for _ in 0..batches {
        let batch = stream.next_batch().await?;
        println!("batch of {} records", batch.count().await?);
    }
    stream.stop(ferrokafka_streaming::StopMode::Graceful).await?;

    let page = tokio::task::spawn_blocking(move || scrape(&metrics_addr)).await??;
    for line in page.lines().filter(|l| l.starts_with("ferrokafka_")) {
        println!("{line}");
    }
    Ok(())
}
