//! Observability: a direct stream's batches show up as tracing spans — `plan_batch` while
//! the driver computes ranges, `batch` around a batch's processing and one `partition`
//! span per range (topic, partition, from, until, executor), children of their batch.
//! Its own test binary: it installs a global subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_streaming::{DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig, Subscribe};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::unique_topic;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the subscriber saw it open: name, fields, parent's name.
#[derive(Clone, Debug)]
struct Seen {
    name: &'static str,
    fields: BTreeMap<String, String>,
    parent: Option<&'static str>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = ctx.span(id).and_then(|s| s.parent()).map(|p| p.name());
        self.0.lock().unwrap().push(Seen { name: attrs.metadata().name(), fields, parent });
    }
}

#[test]
fn batches_and_partitions_are_spans() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(recorder.clone())).unwrap();

    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("spans");
    mock.create_topic(&topic, 2);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ranges = rt.block_on(async {
        let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", b.as_str())]).unwrap()).await.unwrap();
        for i in 0..10 {
            p.send(ProducerRecord::new(topic.as_str(), format!("v{i}")).partition(i % 2)).await.unwrap();
        }
        p.close().await;
        let params = KafkaParams::new([
            ("bootstrap.servers", b.as_str()),
            ("group.id", unique_topic("g").as_str()),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
        ])
        .unwrap();
        let strategy = Subscribe::new([topic.as_str()], params, Default::default()).unwrap();
        let cfg = StreamConfig { batch_interval: Duration::from_millis(200), ..Default::default() };
        let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await.unwrap();
        let batch = stream.next_batch().await.unwrap();
        let counts = batch.foreach_partition(|p| async move { Ok(p.records.count().await?) }).await.unwrap();
        assert_eq!(counts.iter().sum::<usize>(), 10);
        let ranges = batch.offset_ranges().to_vec();
        stream.stop(true).await.unwrap();
        ranges
    });

    let seen = recorder.0.lock().unwrap().clone();
    assert!(seen.iter().any(|s| s.name == "plan_batch"), "no plan_batch span: {seen:?}");
    let batches: Vec<&Seen> = seen.iter().filter(|s| s.name == "batch").collect();
    assert_eq!(batches.len(), 1, "{seen:?}");
    assert_eq!(batches[0].fields.get("partitions").map(String::as_str), Some("2"));
    assert_eq!(batches[0].fields.get("records").map(String::as_str), Some("10"));
    let parts: Vec<&Seen> = seen.iter().filter(|s| s.name == "partition").collect();
    assert_eq!(parts.len(), 2, "{seen:?}");
    for r in &ranges {
        let span = parts
            .iter()
            .find(|s| s.fields.get("partition") == Some(&r.partition.to_string()))
            .unwrap_or_else(|| panic!("no span for {r}: {parts:?}"));
        assert_eq!(span.parent, Some("batch"));
        assert_eq!(span.fields.get("topic"), Some(&r.topic.to_string()));
        assert_eq!(span.fields.get("from"), Some(&r.from_offset.to_string()));
        assert_eq!(span.fields.get("until"), Some(&r.until_offset.to_string()));
        assert!(span.fields.contains_key("executor"));
    }
}
