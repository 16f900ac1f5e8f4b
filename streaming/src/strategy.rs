//! Consumer strategies: where the driver's partitions come from (Spark's
//! `ConsumerStrategies`): `Subscribe`, `SubscribePattern`, `Assign`, each with
//! optional starting offsets, and a trait for custom ones.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ferrokafka_client::cluster::Cluster;
use ferrokafka_client::group::assignor::Assignor;
use ferrokafka_client::group::offsets::{commit, fetch_committed, CommitIdentity, OffsetAndMetadata};
use ferrokafka_client::group::{GroupConfig, GroupConsumer};

use crate::error::{Result, StreamingError};
use crate::location::Executor;
use crate::offset_range::TopicPartition;
use crate::params::KafkaParams;
use crate::scaleout::ExecutorAssignor;

/// A boxed future, as the strategy trait returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Offsets kept outside Kafka (e.g. in your transactional store), read each time a
/// [`Subscribe`] stream is given partitions: see [`Subscribe::offsets_from`] and
/// [`crate::store::store_offsets`].
pub type OffsetSource = Arc<dyn Fn() -> BoxFuture<'static, Result<BTreeMap<TopicPartition, i64>>> + Send + Sync>;

/// Where a stream's partitions and starting offsets come from.
pub trait ConsumerStrategy: Send {
    /// The user's kafkaParams.
    fn params(&self) -> &KafkaParams;

    /// Brings the driver side up (e.g. joins the group and waits for an assignment).
    fn start(&mut self) -> BoxFuture<'_, Result<()>>;

    /// The partitions to read now. Called before every batch; may process a rebalance.
    fn partitions(&mut self) -> BoxFuture<'_, Result<Vec<TopicPartition>>>;

    /// Starting offsets given explicitly by the user.
    fn explicit_offsets(&self) -> &BTreeMap<TopicPartition, i64>;

    /// Offsets committed to Kafka for `partitions` (missing: nothing committed).
    fn committed<'a>(
        &'a mut self,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, i64>>>;

    /// Commits offsets to Kafka (the `commit_async` queue drains through here).
    fn commit<'a>(&'a mut self, offsets: &'a BTreeMap<TopicPartition, i64>) -> BoxFuture<'a, Result<()>>;

    /// Leaves the group, if any.
    fn stop(&mut self) -> BoxFuture<'_, Result<()>>;

    /// Whether partitions may move to other processes while the stream runs (scale-out):
    /// the stream then stops reading a partition it lost instead of failing with
    /// [`StreamingError::Revoked`]. Default: false.
    fn shares_partitions(&self) -> bool {
        false
    }

    /// The stream's executors, given before [`start`](Self::start); a scale-out strategy
    /// advertises them to the group. Default: ignored.
    fn set_executors(&mut self, _executors: &[Executor]) {}
}

impl<S: ConsumerStrategy + ?Sized> ConsumerStrategy for Box<S> {
    fn params(&self) -> &KafkaParams {
        (**self).params()
    }
    fn start(&mut self) -> BoxFuture<'_, Result<()>> {
        (**self).start()
    }
    fn partitions(&mut self) -> BoxFuture<'_, Result<Vec<TopicPartition>>> {
        (**self).partitions()
    }
    fn explicit_offsets(&self) -> &BTreeMap<TopicPartition, i64> {
        (**self).explicit_offsets()
    }
    fn committed<'a>(
        &'a mut self,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, i64>>> {
        (**self).committed(partitions)
    }
    fn commit<'a>(&'a mut self, offsets: &'a BTreeMap<TopicPartition, i64>) -> BoxFuture<'a, Result<()>> {
        (**self).commit(offsets)
    }
    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        (**self).stop()
    }
    fn shares_partitions(&self) -> bool {
        (**self).shares_partitions()
    }
    fn set_executors(&mut self, executors: &[Executor]) {
        (**self).set_executors(executors)
    }
}

enum Topics {
    List(Vec<String>),
    Pattern(String),
}

/// `Subscribe` and `SubscribePattern`: the driver joins the group named by `group.id`.
pub struct Subscribe {
    params: KafkaParams,
    topics: Topics,
    offsets: BTreeMap<TopicPartition, i64>,
    consumer: Option<GroupConsumer>,
    /// Scale-out: this process's executors, advertised to the group (`None`: off).
    scale_out: Option<Vec<Executor>>,
    /// Where stored offsets come from instead of Kafka's commits.
    offset_source: Option<OffsetSource>,
}

impl Subscribe {
    /// Subscribes to a fixed list of topics, with optional starting offsets.
    pub fn new(
        topics: impl IntoIterator<Item = impl Into<String>>,
        params: KafkaParams,
        offsets: BTreeMap<TopicPartition, i64>,
    ) -> Result<Self> {
        params.group_id()?;
        Ok(Subscribe {
            params,
            topics: Topics::List(topics.into_iter().map(Into::into).collect()),
            offsets,
            consumer: None,
            scale_out: None,
            offset_source: None,
        })
    }

    /// Reads stored offsets from `source` instead of Kafka's committed offsets, whenever
    /// the stream is given partitions it has no position for (at start, and in scale-out
    /// mode when a partition moves here). With your own transactional store
    /// ([`crate::store::store_offsets`]), a partition handed over between processes
    /// continues exactly where the store says the previous owner stopped. Precedence is
    /// unchanged: checkpoint, then explicit offsets, then this source, then
    /// `auto.offset.reset`.
    pub fn offsets_from(mut self, source: OffsetSource) -> Self {
        self.offset_source = Some(source);
        self
    }

    /// Scale-out mode (see [`crate::scaleout`]): processes running a stream with the same
    /// `group.id` share the partitions, placed by [`ExecutorAssignor`] over every process's
    /// executors; a partition that moves away is no longer read (no `Revoked` error).
    /// Commit each batch's offsets (`commit_async` after its output, or your transactional
    /// store) so that the next owner starts where this process stopped.
    pub fn scale_out(mut self) -> Self {
        self.scale_out = Some(Vec::new());
        self
    }

    /// Subscribes to every topic whose whole name matches a regular expression
    /// (`SubscribePattern`; anchored at both ends as in Java: `pat\\d` takes `pat9`,
    /// not `xpat9` or `pat10`).
    pub fn pattern(pattern: &str, params: KafkaParams, offsets: BTreeMap<TopicPartition, i64>) -> Result<Self> {
        params.group_id()?;
        ferrokafka_client::group::topic_pattern(pattern)
            .map_err(|e| StreamingError::Params(format!("invalid pattern {pattern:?}: {e}")))?;
        Ok(Subscribe {
            params,
            topics: Topics::Pattern(pattern.to_owned()),
            offsets,
            consumer: None,
            scale_out: None,
            offset_source: None,
        })
    }

    fn consumer(&mut self) -> Result<&mut GroupConsumer> {
        self.consumer.as_mut().ok_or_else(|| StreamingError::Params("the strategy was not started".into()))
    }

    /// The driver consumer never fetches records: pause whatever it was given.
    fn pause_all(&self) {
        if let Some(c) = &self.consumer {
            for tp in c.assignment() {
                let _ = c.consumer().pause(&tp);
            }
        }
    }
}

impl ConsumerStrategy for Subscribe {
    fn params(&self) -> &KafkaParams {
        &self.params
    }

    fn start(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let cfg = self.params.driver_config()?;
            let mut c = match &self.scale_out {
                None => GroupConsumer::new(cfg).await?,
                Some(executors) => {
                    let group = ferrokafka_client::group::GroupConfig::from_client(&cfg)
                        .map_err(|e| StreamingError::Client(e.into()))?;
                    let assignor: Arc<dyn Assignor> = Arc::new(ExecutorAssignor::new(executors.clone()));
                    GroupConsumer::with_assignors(Cluster::connect(cfg).await?, group, vec![assignor])?
                }
            };
            match &self.topics {
                Topics::List(t) => c.subscribe(t.clone()),
                Topics::Pattern(p) => c.subscribe_pattern(p)?,
            }
            c.join().await?;
            self.consumer = Some(c);
            self.pause_all();
            Ok(())
        })
    }

    fn partitions(&mut self) -> BoxFuture<'_, Result<Vec<TopicPartition>>> {
        Box::pin(async move {
            let parts = self.consumer()?.join().await?;
            self.pause_all();
            Ok(parts)
        })
    }

    fn explicit_offsets(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.offsets
    }

    fn committed<'a>(
        &'a mut self,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, i64>>> {
        Box::pin(async move {
            if let Some(source) = &self.offset_source {
                let stored = source().await?;
                return Ok(stored.into_iter().filter(|(tp, _)| partitions.contains(tp)).collect());
            }
            let found = self.consumer()?.committed(partitions).await?;
            Ok(committed_offsets(found))
        })
    }

    fn commit<'a>(&'a mut self, offsets: &'a BTreeMap<TopicPartition, i64>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let list = offsets.iter().map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o))).collect();
            Ok(self.consumer()?.commit_sync(Some(list)).await?)
        })
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if let Some(c) = self.consumer.take() {
                c.close().await?;
            }
            Ok(())
        })
    }

    fn shares_partitions(&self) -> bool {
        self.scale_out.is_some()
    }

    fn set_executors(&mut self, executors: &[Executor]) {
        if let Some(mine) = &mut self.scale_out {
            *mine = executors.to_vec();
        }
    }
}

/// `Assign`: a fixed collection of partitions; commits go to the group standalone.
pub struct Assign {
    params: KafkaParams,
    partitions: Vec<TopicPartition>,
    offsets: BTreeMap<TopicPartition, i64>,
    cluster: Option<Cluster>,
}

impl Assign {
    /// Reads exactly `partitions`, with optional starting offsets.
    pub fn new(
        partitions: impl IntoIterator<Item = TopicPartition>,
        params: KafkaParams,
        offsets: BTreeMap<TopicPartition, i64>,
    ) -> Result<Self> {
        params.group_id()?;
        Ok(Assign { params, partitions: partitions.into_iter().collect(), offsets, cluster: None })
    }

    fn cluster(&self) -> Result<&Cluster> {
        self.cluster.as_ref().ok_or_else(|| StreamingError::Params("the strategy was not started".into()))
    }

    fn identity(&self) -> Result<CommitIdentity> {
        Ok(CommitIdentity {
            group_id: self.params.group_id()?.to_owned(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        })
    }
}

impl ConsumerStrategy for Assign {
    fn params(&self) -> &KafkaParams {
        &self.params
    }

    fn start(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let cluster = Cluster::connect(self.params.driver_config()?).await?;
            cluster.track_topics(self.partitions.iter().map(|tp| &*tp.topic));
            self.cluster = Some(cluster);
            Ok(())
        })
    }

    fn partitions(&mut self) -> BoxFuture<'_, Result<Vec<TopicPartition>>> {
        Box::pin(async move { Ok(self.partitions.clone()) })
    }

    fn explicit_offsets(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.offsets
    }

    fn committed<'a>(
        &'a mut self,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, i64>>> {
        Box::pin(async move {
            let group = self.params.group_id()?.to_owned();
            let conn = ferrokafka_client::group::coordinator_connection(self.cluster()?, &group).await?;
            let found = fetch_committed(&conn, &group, partitions).await?;
            Ok(committed_offsets(found))
        })
    }

    fn commit<'a>(&'a mut self, offsets: &'a BTreeMap<TopicPartition, i64>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let who = self.identity()?;
            let conn = ferrokafka_client::group::coordinator_connection(self.cluster()?, &who.group_id).await?;
            let list: Vec<_> = offsets.iter().map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o))).collect();
            Ok(commit(&conn, &who, &list).await?)
        })
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Keeps the partitions that have a committed offset, as plain offsets.
fn committed_offsets(
    found: impl IntoIterator<Item = (TopicPartition, Option<OffsetAndMetadata>)>,
) -> BTreeMap<TopicPartition, i64> {
    found.into_iter().filter_map(|(tp, om)| om.map(|o| (tp, o.offset))).collect()
}

/// Validates `group.id` settings for a driver (used by custom strategies too).
pub fn group_config(params: &KafkaParams) -> Result<GroupConfig> {
    GroupConfig::from_client(&params.driver_config()?).map_err(|e| StreamingError::Client(e.into()))
}
