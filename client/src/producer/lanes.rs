//! Per-leader dispatch. The sender hands each Produce request (a group of batches, at
//! most one per partition) to its leader's lane: one task per leader that puts the
//! requests on the connection in the order it got them and hands each answer back.
//! Two requests holding batches of one partition thus reach the broker in sequence
//! order (what an idempotent producer with several batches in flight needs), and a
//! slow or unreachable broker holds up only its own lane.

use std::collections::HashMap;
use std::future::Future;

use ferrokafka_protocol::produce::ProduceTopic;
use kafka_protocol::messages::ApiKey;
use tokio::sync::mpsc;

use super::SealedBatch;
use crate::cluster::{Cluster, ConnKind};
use crate::config::Acks;
use crate::error::Result;
use crate::metadata::TopicPartition;

/// Batches sent in one Produce request, at most one per partition.
pub(crate) type Group = Vec<(TopicPartition, SealedBatch)>;
/// Per partition: error code and base offset; `None` with `acks=0`.
pub(crate) type Answers = Option<HashMap<TopicPartition, (i16, i64)>>;
/// A request's batches and its outcome.
pub(crate) type Done = (Group, Result<Answers>);

pub(crate) struct Lanes {
    cluster: Cluster,
    lanes: HashMap<i32, mpsc::UnboundedSender<Group>>,
    done: mpsc::UnboundedSender<Done>,
}

impl Lanes {
    /// Outcomes go to `done`, one per group sent.
    pub(crate) fn new(cluster: Cluster, done: mpsc::UnboundedSender<Done>) -> Lanes {
        Lanes { cluster, lanes: HashMap::new(), done }
    }

    /// Queues `group` on `leader`'s lane (starting it if needed).
    pub(crate) fn send(&mut self, leader: i32, group: Group) {
        let group = match self.lanes.get(&leader) {
            Some(tx) => match tx.send(group) {
                Ok(()) => return,
                Err(mpsc::error::SendError(group)) => group,
            },
            None => group,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(lane(self.cluster.clone(), leader, rx, self.done.clone()));
        // The lane just started holds `rx`, so this cannot fail.
        let _ = tx.send(group);
        self.lanes.insert(leader, tx);
    }
}

async fn lane(
    cluster: Cluster,
    leader: i32,
    mut rx: mpsc::UnboundedReceiver<Group>,
    done: mpsc::UnboundedSender<Done>,
) {
    while let Some(group) = rx.recv().await {
        match enqueue(&cluster, leader, &group).await {
            Ok(None) => {
                let _ = done.send((group, Ok(None)));
            }
            Ok(Some(answer)) => {
                let done = done.clone();
                tokio::spawn(async move {
                    let result = answer.await.map(Some);
                    let _ = done.send((group, result));
                });
            }
            Err(e) => {
                let _ = done.send((group, Err(e)));
            }
        }
    }
}

/// Puts the group's Produce request on the leader's connection (its batches are written
/// from their own buffers, not copied into the request); returns the future of the
/// per-partition answers, or `None` with `acks=0` (no answer comes).
async fn enqueue(
    cluster: &Cluster,
    leader: i32,
    group: &Group,
) -> Result<Option<impl Future<Output = Result<HashMap<TopicPartition, (i16, i64)>>>>> {
    let cfg = cluster.config();
    let conn = cluster.broker(leader, ConnKind::Produce).await?;
    let version = conn.version(ApiKey::Produce)?;
    let mut topics: Vec<ProduceTopic<'_>> = Vec::new();
    for (tp, b) in group {
        let p = (tp.partition, b.data.clone());
        match topics.iter_mut().find(|t| t.name == &*tp.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(ProduceTopic { name: &tp.topic, partitions: vec![p] }),
        }
    }
    let acks: i16 = match cfg.acks() {
        Acks::None => 0,
        Acks::Leader => 1,
        Acks::All => -1,
    };
    let timeout_ms = i32::try_from(cfg.request_timeout().as_millis()).unwrap_or(i32::MAX);
    let Some(answer) = conn.enqueue_produce(version, cfg.transactional_id(), acks, timeout_ms, &topics).await? else {
        return Ok(None);
    };
    let counted = conn.clone();
    Ok(Some(async move {
        let resp = answer.await?;
        let mut out = HashMap::new();
        for t in &resp.responses {
            for p in &t.partition_responses {
                counted.note_error(crate::Api::PRODUCE, p.error_code);
                out.insert(TopicPartition::new(t.name.0.as_str(), p.index), (p.error_code, p.base_offset));
            }
        }
        Ok(out)
    }))
}
