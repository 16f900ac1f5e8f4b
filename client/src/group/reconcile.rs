//! The application's side of a KIP-848 member (`group.protocol=consumer`): inside
//! `poll`, hand the subscription to the heartbeat task and reconcile the target
//! assignment it brought back (see `kip848.rs` for the task's side).

use std::collections::BTreeSet;

use tokio::time::Instant;

use super::coordinator::join_timeout;
use super::kip848::{IdAssignment, Subscribed, JOIN};
use super::{GroupConsumer, Subscription};
use crate::error::{ClientError, Result};
use crate::metadata::{Metadata, TopicPartition};

/// The target's partitions by name, and the part of the target (by id) they are;
/// topic ids unknown to `md` are left out.
fn resolve(md: &Metadata, target: &IdAssignment) -> (BTreeSet<TopicPartition>, IdAssignment) {
    let mut names = BTreeSet::new();
    let mut ids = IdAssignment::new();
    for (id, parts) in target {
        let Some(topic) = md.topic_by_id(*id) else { continue };
        names.extend(parts.iter().map(|p| TopicPartition::new(topic.name.clone(), *p)));
        ids.push((*id, parts.clone()));
    }
    (names, ids)
}

/// The regex sent to the broker for a pattern subscription compiled as `^(?:p)$`:
/// `^(p)$`, which RE2/J (Kafka) and POSIX ERE (librdkafka's mock) both read, and which
/// matches whole topic names as the Java client's pattern does.
fn broker_regex(anchored: &str) -> String {
    let raw = anchored.strip_prefix("^(?:").and_then(|r| r.strip_suffix(")$")).unwrap_or(anchored);
    format!("^({raw})$")
}

impl GroupConsumer {
    /// Brings the member up to date: reports the subscription, gives up lost
    /// partitions, reconciles a new target, and, when `wait` is set, waits (up to the
    /// rebalance timeout) for the first assignment.
    pub(super) async fn reconcile(&mut self, wait: bool) -> Result<()> {
        let subscribed = match &self.subscription {
            Some(Subscription::Topics) if self.topics.is_empty() => return self.unsubscribe().await,
            Some(Subscription::Topics) => Subscribed::Topics(self.topics.clone()),
            Some(Subscription::Pattern(re)) => Subscribed::Pattern(broker_regex(re.as_str())),
            None => return Err(ClientError::NotSubscribed),
        };
        let wake = {
            let mut st = self.membership.lock();
            let mut wake = st.generation_id == JOIN; // (re)joining: do not wait for the interval
            if st.next.subscription.as_ref() != Some(&subscribed) {
                st.next.subscription = Some(subscribed);
                st.next.want_full();
                wake = true;
            }
            if st.next.halted && st.fatal.is_none() {
                // The application polls again after a fatal error: start over.
                st.next.halted = false;
                wake = true;
            }
            wake
        };
        if wake {
            self.membership.signals.heartbeat_now.notify_one();
        }
        let deadline = Instant::now() + join_timeout(&self.membership.cfg);
        loop {
            let (fatal, lost, target, joined) = {
                let mut st = self.membership.lock();
                (st.fatal.take(), std::mem::take(&mut st.lost), st.next.target.take(), st.joined)
            };
            if let Some(e) = fatal {
                return Err(e);
            }
            if lost && !self.assigned.is_empty() {
                let gone = std::mem::take(&mut self.assigned);
                self.give_up(&gone, true).await;
                self.consumer.assign(Vec::new());
            }
            let complete = match target {
                Some(target) => match self.apply_target(target.clone()).await {
                    Ok(complete) => complete,
                    Err(e) => {
                        self.membership.lock().next.target.get_or_insert(target);
                        return Err(e);
                    }
                },
                None => joined,
            };
            if complete || !wait {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let group = self.membership.cfg.group_id.clone();
                return Err(ClientError::JoinTimeout { group, after: join_timeout(&self.membership.cfg) });
            }
            let wait = left.min(self.membership.cluster.retry_backoff().max(std::time::Duration::from_millis(100)));
            let _ = tokio::time::timeout(wait, self.membership.signals.answered.notified()).await;
        }
    }

    /// `subscribe([])`: as in Java, an unsubscribe. What is owned is revoked, and the
    /// member leaves (the heartbeat task stops: there is nothing to join with).
    async fn unsubscribe(&mut self) -> Result<()> {
        if !self.assigned.is_empty() {
            let gone = std::mem::take(&mut self.assigned);
            self.give_up(&gone, false).await;
            self.consumer.assign(Vec::new());
        }
        let in_group = {
            let mut st = self.membership.lock();
            st.next.subscription = None;
            st.next.target = None;
            st.generation_id > JOIN
        };
        if in_group {
            let conn = self.membership.coordinator().await?;
            super::kip848::send_leave(&conn, &self.membership.cfg, self.membership.state()).await?;
            super::kip848::fenced(&mut self.membership.lock());
            self.membership.lock().lost = false;
        }
        Ok(())
    }

    /// Moves to `target`: revokes, assigns, then has the heartbeat task acknowledge
    /// it. Partitions of topic ids not in metadata yet are left for later (the target
    /// stays pending, looked up again at most once a second); `Ok(true)` when the
    /// whole target is reconciled.
    async fn apply_target(&mut self, target: IdAssignment) -> Result<bool> {
        let cluster = self.consumer.cluster().clone();
        let (mut new, mut ids) = resolve(&cluster.metadata(), &target);
        let due = self.membership.lock().next.lookup_after.is_none_or(|t| t <= Instant::now());
        if ids.len() < target.len() && due {
            // A topic this member did not name (a regex subscription, or metadata not
            // fetched yet): look the ids up among all topics.
            self.membership.lock().next.lookup_after = Some(Instant::now() + std::time::Duration::from_secs(1));
            let all = cluster.describe(None).await?;
            let names: Vec<String> =
                target.iter().filter_map(|(id, _)| all.topic_by_id(*id)).map(|t| t.name.to_string()).collect();
            cluster.track_topics(names.iter().map(String::as_str));
            let md = cluster.refresh_metadata().await?;
            (new, ids) = resolve(&md, &target);
        }
        let complete = ids.len() == target.len();
        if !complete {
            tracing::debug!(group = %self.membership.cfg.group_id, "some assigned topic ids are not in metadata yet");
        }
        let changed = self.assigned.iter().cloned().collect::<BTreeSet<_>>() != new;
        let revoked = self.adopt(new).await?;
        if changed {
            self.rebalances.rebalanced();
        }
        let epoch = {
            let mut st = self.membership.lock();
            if !st.lost {
                // (Unless fenced meanwhile: then nothing is owned, and `lost` says so.)
                st.next.owned = ids;
                st.next.owned_version += 1;
                st.joined = true;
                if !complete {
                    st.next.target.get_or_insert(target);
                }
            }
            st.generation_id
        };
        self.membership.signals.heartbeat_now.notify_one();
        tracing::info!(group = %self.membership.cfg.group_id, epoch, assigned = ?self.assigned, ?revoked, "reconciled");
        Ok(complete)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pattern_subscriptions_reach_the_broker_anchored_without_perl_groups() {
        let re = super::super::topic_pattern("orders-.*|audit").unwrap();
        assert_eq!(super::broker_regex(re.as_str()), "^(orders-.*|audit)$");
    }
}
