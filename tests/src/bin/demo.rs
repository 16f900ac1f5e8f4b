//! The main job until the streaming layer lands: start a local tansu broker,
//! produce a few batches (one per codec) through the protocol crate, fetch them
//! back and print each batch with its offset range.
//!
//! Run: `scripts/demo.sh` (installs tansu first), or
//! `cargo run -p ferrokafka-tests --bin demo` when tansu is installed.

use bytes::BytesMut;
use ferrokafka_protocol::records::{DecodeOptions, NewRecord, RecordBatchBuilder, RecordSet};
use ferrokafka_protocol::Compression;
use ferrokafka_tests::raw::RawConnection;
use ferrokafka_tests::tansu::Tansu;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Tansu::start();
    println!("tansu broker on {}", broker.addr());
    let mut conn = RawConnection::connect(broker.addr())?;
    let topic = "ferrokafka-demo";
    conn.create_topic(topic, 2)?;
    let codecs = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
    for (i, codec) in codecs.into_iter().enumerate() {
        let mut b = RecordBatchBuilder::new(codec);
        for j in 0..(5 + i * 3) {
            let value = format!("{codec} record {j}");
            b.push(&NewRecord { key: Some(b"demo"), value: Some(value.as_bytes()), headers: &[], timestamp: 0 })?;
        }
        let mut out = BytesMut::new();
        b.finish(&mut out)?;
        conn.produce(topic, (i % 2) as i32, out.freeze())?;
    }
    for partition in 0..2 {
        let (high_watermark, data) = conn.fetch(topic, partition, 0)?;
        println!("partition {partition}: high watermark {high_watermark}");
        for batch in RecordSet::new(data, DecodeOptions::default()) {
            let batch = batch?;
            let first = batch.records().next().transpose()?.and_then(|r| r.value);
            println!(
                "  batch  topic: {topic} partition: {partition} offsets: {} to {} count: {}  codec: {:<6} first value: {:?}",
                batch.base_offset,
                batch.last_offset + 1,
                batch.record_count,
                batch.compression.name(),
                first.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default()
            );
        }
    }
    Ok(())
}
