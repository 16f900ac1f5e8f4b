//! Graceful and hard stops: a graceful stop commits what `commit_async` queued and waits
//! for the result (better than Spark, SPARK-20050); a hard stop drops the queue, so the
//! next run starts at the last commit that was flushed (librdkafka's mock cluster). The
//! stream's per-partition lag follows the log end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_streaming::{
    Assign, ConsumerStrategy, DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig,
    TopicPartition,
};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::unique_topic;

async fn committed(params: &KafkaParams, parts: &[TopicPartition]) -> BTreeMap<TopicPartition, i64> {
    let mut a = Assign::new(parts.to_vec(), params.clone(), BTreeMap::new()).unwrap();
    a.start().await.unwrap();
    let c = a.committed(parts).await.unwrap();
    a.stop().await.unwrap();
    c
}

#[test]
fn graceful_stop_flushes_commits_hard_stop_drops_them() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("stop");
    mock.create_topic(&topic, 2);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", b.as_str())]).unwrap()).await.unwrap();
        for i in 0..20 {
            p.send(ProducerRecord::new(topic.as_str(), format!("v{i}")).partition(i % 2)).await.unwrap();
        }
        p.close().await;
        let parts: Vec<TopicPartition> = (0..2).map(|i| TopicPartition::new(topic.as_str(), i)).collect();
        for graceful in [false, true] {
            let params = KafkaParams::new([
                ("bootstrap.servers", b.as_str()),
                ("group.id", unique_topic("stop-g").as_str()),
                ("auto.offset.reset", "earliest"),
                ("enable.auto.commit", "false"),
            ])
            .unwrap();
            let strategy = Assign::new(parts.clone(), params.clone(), BTreeMap::new()).unwrap();
            let cfg = StreamConfig { batch_interval: Duration::from_millis(100), ..Default::default() };
            let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await.unwrap();
            let batch = stream.next_batch().await.unwrap();
            assert_eq!(batch.record_count_hint(), 20);
            // Per-partition lag: latest offset minus the stream's position.
            let caught_up: BTreeMap<TopicPartition, i64> = parts.iter().map(|tp| (tp.clone(), 0)).collect();
            assert_eq!(stream.lag().await.unwrap(), caught_up);
            if graceful {
                let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", b.as_str())]).unwrap())
                    .await
                    .unwrap();
                for i in 0..3 {
                    p.send(ProducerRecord::new(topic.as_str(), format!("late{i}")).partition(1)).await.unwrap();
                }
                p.close().await;
                let lag = stream.lag().await.unwrap();
                assert_eq!((lag[&parts[0]], lag[&parts[1]]), (0, 3), "{lag:?}");
            }
            let results = Arc::new(Mutex::new(Vec::new()));
            let r = results.clone();
            stream.commit_queue().commit_async_with(batch.offset_ranges(), move |offsets, result| {
                r.lock().unwrap().push((offsets.clone(), result.is_ok()));
            });
            stream.stop(graceful).await.unwrap();
            let stored = committed(&params, &parts).await;
            if graceful {
                let want: BTreeMap<TopicPartition, i64> = parts.iter().map(|tp| (tp.clone(), 10)).collect();
                assert_eq!(stored, want, "a graceful stop commits the queue");
                let reported = results.lock().unwrap().clone();
                assert_eq!(reported, [(want, true)], "and reports the result before it returns");
            } else {
                assert!(stored.is_empty(), "a hard stop drops queued commits: {stored:?}");
                assert!(results.lock().unwrap().is_empty(), "no callback for dropped commits");
            }
        }
    });
}
