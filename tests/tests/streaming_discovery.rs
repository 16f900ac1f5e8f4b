//! New topics matching a SubscribePattern stream's pattern are picked up while it runs
//! (DirectKafkaStreamSuite's pattern case), starting per `auto.offset.reset`, with every
//! record of both topics read once (librdkafka's mock cluster).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_streaming::{DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig, Subscribe};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::unique_topic;

async fn produce(bootstrap: &str, topic: &str, n: usize) {
    let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", bootstrap)]).unwrap()).await.unwrap();
    for i in 0..n {
        p.send(ProducerRecord::new(topic, format!("{topic}-{i}")).partition(0)).await.unwrap();
    }
    p.close().await;
}

#[test]
fn pattern_stream_picks_up_a_new_topic() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let prefix = unique_topic("disc");
    let (first, second) = (format!("{prefix}-one"), format!("{prefix}-two"));
    mock.create_topic(&first, 1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        produce(&b, &first, 10).await;
        let params = KafkaParams::new([
            ("bootstrap.servers", b.as_str()),
            ("group.id", unique_topic("disc-g").as_str()),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("metadata.max.age.ms", "500"),
            ("session.timeout.ms", "6000"),
        ])
        .unwrap();
        let strategy = Subscribe::pattern(&format!("^{prefix}-.*"), params, BTreeMap::new()).unwrap();
        let cfg = StreamConfig { batch_interval: Duration::from_millis(200), ..Default::default() };
        let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await.unwrap();
        let mut seen: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
        let mut values = Vec::new();
        let mut created = false;
        let deadline = Instant::now() + Duration::from_secs(60);
        while values.len() < 15 {
            assert!(Instant::now() < deadline, "only {} of 15 records within 60 s: {seen:?}", values.len());
            if values.len() == 10 && !created {
                mock.create_topic(&second, 1);
                produce(&b, &second, 5).await;
                created = true;
            }
            let batch = stream.next_batch().await.unwrap();
            for r in batch.offset_ranges().iter().filter(|r| r.count() > 0) {
                seen.entry(r.topic.to_string()).or_default().push((r.from_offset, r.until_offset));
            }
            let got = batch
                .foreach_partition(|p| async move {
                    Ok(p.records
                        .collect()
                        .await?
                        .iter()
                        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
                        .collect::<Vec<_>>())
                })
                .await
                .unwrap();
            values.extend(got.into_iter().flatten());
        }
        stream.stop(true).await.unwrap();
        let want: Vec<String> =
            (0..10).map(|i| format!("{first}-{i}")).chain((0..5).map(|i| format!("{second}-{i}"))).collect();
        values.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(values, want_sorted, "every record of both topics once");
        assert_eq!(seen[&second].first().map(|r| r.0), Some(0), "the new topic starts at earliest: {seen:?}");
    });
}
