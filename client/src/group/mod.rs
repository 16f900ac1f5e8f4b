//! Consumer groups (classic protocol): membership, assignors, committed offsets.
//!
//! [`GroupConsumer`] subscribes to topics (or a pattern), joins the group named by
//! `group.id`, and consumes the partitions the group assigns it. A background task
//! heartbeats; rebalances happen inside [`GroupConsumer::poll`], where a
//! [`RebalanceListener`] runs before the consumer moves on, so an application can
//! commit or flush there.

pub mod admin;
pub mod assignor;
mod config;
pub(crate) mod coordinator;
mod join;
mod kip848;
mod moves;
pub mod offsets;
mod reconcile;
mod stats;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use tokio::time::Instant;

pub use self::config::{GroupConfig, GroupProtocol};
pub use offsets::{CommitIdentity, OffsetAndMetadata};

use self::assignor::{assignors_from_config, Assignor, RebalanceProtocol};
use self::coordinator::Membership;
use crate::cluster::Cluster;
use crate::config::ClientConfig;
use crate::consumer::{Consumer, ConsumerRecords};
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// A boxed future returned by [`RebalanceListener`] callbacks.
pub type ListenerFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Callbacks around rebalances. They run inside `poll`, before the consumer goes on.
pub trait RebalanceListener: Send + Sync {
    /// Partitions are about to be taken away; their positions can still be committed.
    fn on_partitions_revoked<'a>(
        &'a mut self,
        group: &'a GroupContext<'a>,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a>;

    /// Partitions were assigned; the consumer has not fetched from them yet.
    fn on_partitions_assigned<'a>(
        &'a mut self,
        _group: &'a GroupContext<'a>,
        _partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async {})
    }

    /// Partitions were lost (the member was removed from the group): committing
    /// their offsets is no longer possible. Defaults to doing nothing.
    fn on_partitions_lost<'a>(
        &'a mut self,
        _group: &'a GroupContext<'a>,
        _partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async {})
    }
}

/// What a rebalance listener can see and do.
pub struct GroupContext<'a> {
    consumer: &'a Consumer,
    membership: &'a Membership,
}

impl GroupContext<'_> {
    /// The next offset the application would have consumed.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.consumer.position(tp)
    }

    /// Commits offsets synchronously in the current generation.
    pub async fn commit(&self, offsets: &[(TopicPartition, OffsetAndMetadata)]) -> Result<()> {
        commit_with_retries(self.membership, offsets).await
    }

    /// The member's generation.
    pub fn generation_id(&self) -> i32 {
        self.membership.lock().generation_id
    }
}

enum Subscription {
    /// An explicit list, kept in `GroupConsumer::topics`.
    Topics,
    Pattern(Regex),
}

/// A consumer that takes part in a consumer group.
pub struct GroupConsumer {
    consumer: Consumer,
    membership: Membership,
    assignors: Vec<Arc<dyn Assignor>>,
    protocol: RebalanceProtocol,
    subscription: Option<Subscription>,
    topics: Vec<String>,
    listener: Option<Box<dyn RebalanceListener>>,
    assigned: Vec<TopicPartition>,
    last_auto_commit: Instant,
    last_pattern_check: Option<Instant>,
    /// Assignments taken (statistics and the metrics facade).
    rebalances: crate::stats::GroupCounters,
    /// The application's statistics callback, served by `poll`.
    statistics_cb: Option<crate::stats::Scheduled>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.membership.cfg.group_id)
            .field("assigned", &self.assigned)
            .finish()
    }
}

impl GroupConsumer {
    /// Connects; `group.id` is required, the other group keys are validated here.
    pub async fn new(config: ClientConfig) -> Result<GroupConsumer> {
        let group = GroupConfig::from_client(&config)?;
        let assignors = assignors_from_config(group.assignment_strategy.as_deref())?;
        Self::with_assignors(Cluster::connect(config).await?, group, assignors)
    }

    /// A group consumer with explicit assignors (e.g. a custom [`Assignor`]).
    pub fn with_assignors(
        cluster: Cluster,
        group: GroupConfig,
        assignors: Vec<Arc<dyn Assignor>>,
    ) -> Result<GroupConsumer> {
        if assignors.is_empty() {
            return Err(ClientError::Config(crate::config::ConfigError::invalid_value(
                "partition.assignment.strategy",
                "",
                "at least one assignor",
            )));
        }
        let protocol = join::common_protocol(&assignors);
        let rebalances = crate::stats::GroupCounters::new(&group.group_id);
        Ok(GroupConsumer {
            consumer: Consumer::with_cluster(cluster.clone()),
            membership: Membership::new(cluster, group),
            assignors,
            protocol,
            subscription: None,
            topics: Vec::new(),
            listener: None,
            assigned: Vec::new(),
            last_auto_commit: Instant::now(),
            last_pattern_check: None,
            rebalances,
            statistics_cb: None,
        })
    }

    /// Subscribes to a list of topics (replacing any previous subscription).
    pub fn subscribe<S: Into<String>>(&mut self, topics: impl IntoIterator<Item = S>) {
        let mut topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        topics.sort();
        topics.dedup();
        self.consumer.cluster().track_topics(topics.iter().map(String::as_str));
        self.topics = topics;
        self.subscription = Some(Subscription::Topics);
        self.membership.lock().rejoin = true;
    }

    /// Subscribes to every topic whose whole name matches `pattern` (re-evaluated on
    /// metadata refresh, every `metadata.max.age.ms`). As in the Java client
    /// (`Pattern.matcher(topic).matches()`), the pattern is anchored at both ends:
    /// `pat\d` subscribes `pat9`, not `xpat9` nor `pat10`.
    pub fn subscribe_pattern(&mut self, pattern: &str) -> Result<()> {
        let re = topic_pattern(pattern)?;
        self.subscription = Some(Subscription::Pattern(re));
        self.topics.clear();
        self.last_pattern_check = None;
        self.membership.lock().rejoin = true;
        Ok(())
    }

    /// Installs the rebalance listener.
    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = Some(Box::new(listener));
    }

    /// The partitions currently assigned to this member.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned.clone()
    }

    /// The member's generation (-1 before joining).
    pub fn generation_id(&self) -> i32 {
        self.membership.lock().generation_id
    }

    /// Java's `groupMetadata()`: who this member is now, for
    /// [`crate::producer::Producer::send_offsets_to_transaction`] (the coordinator
    /// refuses offsets from a member of an older generation: a zombie is fenced).
    pub fn group_metadata(&self) -> CommitIdentity {
        self.membership.identity()
    }

    /// The member id the coordinator gave this member ("" before joining).
    pub fn member_id(&self) -> String {
        self.membership.lock().member_id.clone()
    }

    /// The underlying assign-mode consumer (positions, lag, pause/resume).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// Joins the group (if needed) and waits for an assignment, without fetching:
    /// the explicit "join and wait for assignment" step a stream takes before its first batch.
    pub async fn join(&mut self) -> Result<Vec<TopicPartition>> {
        self.membership.lock().last_poll = Instant::now();
        self.ensure_membership(true).await?;
        Ok(self.assigned.clone())
    }

    /// Rebalances if needed, then waits up to `timeout` for records.
    pub async fn poll(&mut self, timeout: Duration) -> Result<ConsumerRecords> {
        self.membership.lock().last_poll = Instant::now();
        self.ensure_membership(false).await?;
        self.maybe_auto_commit().await;
        let records = self.consumer.poll(timeout).await;
        self.serve_statistics();
        records
    }

    /// The current positions of every assigned partition, as offsets to commit.
    pub fn positions(&self) -> Vec<(TopicPartition, OffsetAndMetadata)> {
        self.assigned
            .iter()
            .filter_map(|tp| self.consumer.position(tp).map(|o| (tp.clone(), OffsetAndMetadata::new(o))))
            .collect()
    }

    /// Commits `offsets` (or, with `None`, the current positions) and waits for the result.
    /// A commit from a stale generation fails with [`ClientError::CommitFailed`] and
    /// makes the next poll rejoin.
    pub async fn commit_sync(&mut self, offsets: Option<Vec<(TopicPartition, OffsetAndMetadata)>>) -> Result<()> {
        let offsets = offsets.unwrap_or_else(|| self.positions());
        commit_with_retries(&self.membership, &offsets).await
    }

    /// Commits in the background; the returned future yields the result (awaiting it is optional).
    pub fn commit_async(
        &self,
        offsets: Option<Vec<(TopicPartition, OffsetAndMetadata)>>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let offsets = offsets.unwrap_or_else(|| self.positions());
        let identity = self.membership.identity();
        let conn = self.membership.lock().coordinator.clone();
        let cluster = self.membership.cluster.clone();
        let state = self.membership.state_handle();
        let task = tokio::spawn(async move {
            let conn = match conn.filter(|c| !c.is_closed()) {
                Some(c) => c,
                None => coordinator::find_coordinator(&cluster, &identity.group_id).await?,
            };
            offsets::commit(&conn, &identity, &offsets).await?;
            coordinator::note_committed(&state, &offsets);
            Ok(())
        });
        async move {
            task.await.unwrap_or_else(|e| Err(ClientError::TaskFailed { task: "offset commit", reason: e.to_string() }))
        }
    }

    /// The committed offsets of `partitions` (`None` where nothing was committed).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndMetadata>>> {
        let conn = self.membership.coordinator().await?;
        offsets::fetch_committed(&conn, &self.membership.cfg.group_id, partitions).await
    }

    /// Commits (when auto-commit is on), leaves the group and stops fetching.
    pub async fn close(mut self) -> Result<()> {
        if self.membership.cfg.enable_auto_commit && self.membership.lock().joined {
            if let Err(e) = self.commit_sync(None).await {
                tracing::warn!(error = %e, "final auto-commit failed");
            }
        }
        let left = self.membership.leave().await;
        self.rebalances.assignment(0);
        self.consumer.close().await;
        left
    }

    async fn maybe_auto_commit(&mut self) {
        let cfg = &self.membership.cfg;
        if !cfg.enable_auto_commit || self.last_auto_commit.elapsed() < cfg.auto_commit_interval {
            return;
        }
        self.last_auto_commit = Instant::now();
        let commit = self.commit_async(None);
        tokio::spawn(async move {
            if let Err(e) = commit.await {
                tracing::debug!(error = %e, "auto-commit failed");
            }
        });
    }

    /// Re-evaluates a pattern subscription against all topics (on age).
    async fn check_pattern(&mut self) -> Result<()> {
        let Some(Subscription::Pattern(re)) = &self.subscription else { return Ok(()) };
        let due =
            self.last_pattern_check.is_none_or(|t| t.elapsed() >= self.consumer.cluster().config().metadata_max_age());
        if !due {
            return Ok(());
        }
        self.last_pattern_check = Some(Instant::now());
        let md = self.consumer.cluster().describe(None).await?;
        let mut topics: Vec<String> = md
            .topics
            .values()
            .filter(|t| t.error_code == 0 && !t.is_internal)
            .map(|t| t.name.to_string())
            .filter(|n| re.is_match(n))
            .collect();
        topics.sort();
        if topics != self.topics {
            tracing::info!(?topics, "pattern subscription changed");
            self.consumer.cluster().track_topics(topics.iter().map(String::as_str));
            self.topics = topics;
            self.membership.lock().rejoin = true;
        }
        Ok(())
    }

    /// Joins or rebalances as needed. A KIP-848 member waits for its first assignment
    /// only when `wait_for_assignment` (`join`); `poll` goes on and fetches what it has.
    async fn ensure_membership(&mut self, wait_for_assignment: bool) -> Result<()> {
        if self.subscription.is_none() {
            return Err(ClientError::NotSubscribed);
        }
        if self.membership.cfg.protocol == GroupProtocol::Consumer {
            return self.reconcile(wait_for_assignment).await;
        }
        self.check_pattern().await?;
        loop {
            let (needed, fatal) = {
                let mut st = self.membership.lock();
                (st.rejoin || !st.joined, st.fatal.take())
            };
            if let Some(e) = fatal {
                return Err(e);
            }
            if !needed {
                return Ok(());
            }
            self.rebalance().await?;
        }
    }
}

/// A connection to the coordinator of `group` (standalone commits, admin tools).
pub async fn coordinator_connection(cluster: &Cluster, group: &str) -> Result<crate::conn::Connection> {
    coordinator::find_coordinator(cluster, group).await
}

/// Commits, rediscovering the coordinator on coordinator errors (bounded retries).
async fn commit_with_retries(membership: &Membership, offsets: &[(TopicPartition, OffsetAndMetadata)]) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let conn = membership.coordinator().await?;
        match offsets::commit(&conn, &membership.identity(), offsets).await {
            Ok(()) => {
                membership.note_committed(offsets);
                return Ok(());
            }
            Err(e @ ClientError::CommitFailed { .. }) => {
                membership.lock().rejoin = true;
                return Err(e);
            }
            // KIP-848: the member's epoch moved on since the identity was read; the
            // next attempt reads the current one (as the Java client retries).
            Err(e) if e.code().is_some_and(|c| c.code() == kip848::STALE_MEMBER_EPOCH) && attempt < 5 => {
                tokio::time::sleep(membership.cluster.retry_backoff()).await;
            }
            Err(e) if e.is_retriable() && attempt < 5 => {
                if e.needs_metadata_refresh() {
                    membership.coordinator_lost();
                }
                tokio::time::sleep(membership.cluster.retry_backoff()).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Compiles a topic subscription pattern that must match the whole topic name (Java's
/// `Pattern.matcher(topic).matches()`).
pub fn topic_pattern(pattern: &str) -> Result<Regex> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        ClientError::Config(crate::config::ConfigError::invalid_value("subscribe pattern", pattern, e.to_string()))
    })
}

#[cfg(test)]
mod pattern_tests {
    use super::topic_pattern;

    #[test]
    fn patterns_match_whole_topic_names() {
        let re = topic_pattern("pat\\d").unwrap();
        assert!(re.is_match("pat9"));
        for other in ["xpat9", "pat10", "pat9x", "pat"] {
            assert!(!re.is_match(other), "{other} must not match pat\\d");
        }
        let alt = topic_pattern("a|b").unwrap();
        assert!(alt.is_match("a") && alt.is_match("b") && !alt.is_match("ab") && !alt.is_match("xa"));
        assert!(topic_pattern("orders-.*").unwrap().is_match("orders-eu"));
        assert!(topic_pattern("(").is_err());
    }
}
