//! A transactional producer that opens a transaction, writes records in it and then
//! waits forever without committing: the process the transaction tests kill with
//! SIGKILL mid-transaction.
//!
//! Usage: `txn_producer BOOTSTRAP TOPIC TRANSACTIONAL_ID COUNT`; prints `SENT` once the
//! records are acknowledged.

use std::io::Write;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, bootstrap, topic, id, count] = args.as_slice() else {
        return Err("usage: txn_producer BOOTSTRAP TOPIC TRANSACTIONAL_ID COUNT".into());
    };
    let config = ClientConfig::from_pairs([("bootstrap.servers", bootstrap.as_str()), ("transactional.id", id)])?;
    let producer = Producer::new(config).await?;
    producer.init_transactions().await?;
    producer.begin_transaction()?;
    let mut pending = Vec::new();
    for i in 0..count.parse::<usize>()? {
        pending.push(producer.send(ProducerRecord::new(topic.as_str(), format!("killed-{i}"))).await?);
    }
    for p in pending {
        p.await?;
    }
    println!("SENT");
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    Ok(())
}
