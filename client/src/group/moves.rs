//! Moving a member's assignment, for both protocols: the classic rebalance round, and
//! the steps both use — give up what leaves (listener, auto-commit), start what joins
//! (committed offsets, listener).

use std::collections::BTreeSet;

use super::assignor::RebalanceProtocol;
use super::{commit_with_retries, offsets, GroupConsumer, GroupContext, OffsetAndMetadata};
use crate::error::Result;
use crate::metadata::TopicPartition;

impl GroupConsumer {
    /// One classic round: eager (or lost) members give everything up first, then
    /// JoinGroup/SyncGroup, then the assignment moves; a cooperative member that gave
    /// partitions up rejoins so they can be reassigned.
    pub(super) async fn rebalance(&mut self) -> Result<()> {
        let lost = self.membership.lock().lost;
        let eager = self.protocol == RebalanceProtocol::Eager;
        if (eager || lost) && !self.assigned.is_empty() {
            let gone = std::mem::take(&mut self.assigned);
            self.give_up(&gone, lost).await;
            self.consumer.assign(Vec::new());
        }
        let owned = self.assigned.clone();
        let joined = self.membership.join(&self.topics, &owned, &self.assignors).await?;
        let new: BTreeSet<TopicPartition> = joined.partitions.into_iter().collect();
        let revoked = self.adopt(new).await?;
        self.rebalances.rebalanced();
        if !revoked.is_empty() {
            // Cooperative: what moved elsewhere was given up; rejoin so it can be reassigned.
            self.membership.lock().rejoin = true;
        }
        tracing::info!(group = %self.membership.cfg.group_id, generation = joined.generation_id, assigned = ?self.assigned, "joined");
        Ok(())
    }

    /// Moves the assignment to `new`: gives up what left it (listener, auto-commit),
    /// then starts what joined it (committed offsets, listener). Returns what was revoked.
    pub(super) async fn adopt(&mut self, new: BTreeSet<TopicPartition>) -> Result<Vec<TopicPartition>> {
        let old: BTreeSet<TopicPartition> = self.assigned.iter().cloned().collect();
        let revoked: Vec<TopicPartition> = old.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&old).cloned().collect();
        if !revoked.is_empty() {
            self.give_up(&revoked, false).await;
        }
        self.assigned = new.into_iter().collect();
        self.consumer.assign(self.assigned.iter().cloned());
        if !added.is_empty() {
            if let Err(e) = self.start_positions(&added).await {
                // Not started: take the new partitions back out, so the next attempt
                // finds them new again and starts them at their committed offsets.
                self.assigned.retain(|tp| !added.contains(tp));
                self.consumer.assign(self.assigned.iter().cloned());
                return Err(e);
            }
            if let Some(l) = self.listener.as_mut() {
                let ctx = GroupContext { consumer: &self.consumer, membership: &self.membership };
                l.on_partitions_assigned(&ctx, &added).await;
            }
        }
        Ok(revoked)
    }

    /// Revoked (commit allowed) or lost (no commit) partitions.
    pub(super) async fn give_up(&mut self, partitions: &[TopicPartition], lost: bool) {
        let ctx = GroupContext { consumer: &self.consumer, membership: &self.membership };
        if let Some(l) = self.listener.as_mut() {
            if lost {
                l.on_partitions_lost(&ctx, partitions).await;
            } else {
                l.on_partitions_revoked(&ctx, partitions).await;
            }
        }
        if !lost && self.membership.cfg.enable_auto_commit {
            let offsets: Vec<_> = partitions
                .iter()
                .filter_map(|tp| self.consumer.position(tp).map(|o| (tp.clone(), OffsetAndMetadata::new(o))))
                .collect();
            if let Err(e) = commit_with_retries(&self.membership, &offsets).await {
                tracing::warn!(error = %e, "commit on revocation failed");
            }
        }
    }

    /// Newly assigned partitions start at their committed offset; the others are
    /// reset per `auto.offset.reset` by the fetcher.
    pub(super) async fn start_positions(&mut self, added: &[TopicPartition]) -> Result<()> {
        let conn = self.membership.coordinator().await?;
        let committed = offsets::fetch_committed(&conn, &self.membership.cfg.group_id, added).await?;
        for tp in added {
            match committed.get(tp) {
                Some(Some(om)) => {
                    self.consumer.seek(tp, om.offset)?;
                    self.membership.note_committed(&[(tp.clone(), om.clone())]);
                }
                _ => {
                    self.membership.lock().committed.remove(tp);
                }
            }
        }
        Ok(())
    }
}
