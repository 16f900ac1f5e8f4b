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

/// The target's partitions by name; `None` while a topic id is unknown to `md`.
fn resolve(md: &Metadata, target: &IdAssignment) -> Option<BTreeSet<TopicPartition>> {
    let mut out = BTreeSet::new();
    for (id, parts) in target {
        let topic = md.topic_by_id(*id)?;
        out.extend(parts.iter().map(|p| TopicPartition::new(topic.name.clone(), *p)));
    }
    Some(out)
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
            Some(Subscription::Topics) => Subscribed::Topics(self.topics.clone()),
            Some(Subscription::Pattern(re)) => Subscribed::Pattern(broker_regex(re.as_str())),
            None => return Err(ClientError::NotSubscribed),
        };
        let wake = {
            let mut st = self.membership.lock();
            let mut wake = false;
            if st.next.subscription.as_ref() != Some(&subscribed) {
                st.next.subscription = Some(subscribed);
                st.next.full = true;
                wake = true;
            }
            if st.next.halted && st.fatal.is_none() {
                // The application polls again after a fatal error: start over.
                st.next.halted = false;
                st.next.full = true;
                st.generation_id = JOIN;
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
            if let Some(target) = target {
                match self.apply_target(target.clone()).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => {
                        self.membership.lock().next.target.get_or_insert(target);
                        return Err(e);
                    }
                }
            } else if joined || !wait {
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

    /// Moves to `target`: revokes, assigns, then has the heartbeat task acknowledge
    /// it. `Ok(false)` when a topic id is not known yet (the target stays pending).
    async fn apply_target(&mut self, target: IdAssignment) -> Result<bool> {
        let cluster = self.consumer.cluster().clone();
        let mut wanted = resolve(&cluster.metadata(), &target);
        if wanted.is_none() {
            // A topic this member did not name (a regex subscription, or metadata not
            // fetched yet): look the ids up among all topics.
            let all = cluster.describe(None).await?;
            let names: Vec<String> =
                target.iter().filter_map(|(id, _)| all.topic_by_id(*id)).map(|t| t.name.to_string()).collect();
            cluster.track_topics(names.iter().map(String::as_str));
            let md = cluster.refresh_metadata().await?;
            wanted = resolve(&md, &target);
        }
        let Some(new) = wanted else {
            tracing::debug!(group = %self.membership.cfg.group_id, "assigned topic ids not in metadata yet");
            let mut st = self.membership.lock();
            st.next.target.get_or_insert(target);
            return Ok(false);
        };
        let revoked = self.adopt(new).await?;
        let epoch = {
            let mut st = self.membership.lock();
            if !st.lost {
                // (Unless fenced meanwhile: then nothing is owned, and `lost` says so.)
                st.next.owned = target;
                st.next.owned_version += 1;
                st.joined = true;
            }
            st.generation_id
        };
        self.membership.signals.heartbeat_now.notify_one();
        tracing::info!(group = %self.membership.cfg.group_id, epoch, assigned = ?self.assigned, ?revoked, "reconciled");
        Ok(true)
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
