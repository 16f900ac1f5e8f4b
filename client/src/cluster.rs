//! The cluster view shared by producers, consumers and admin calls: bootstrap,
//! metadata cache, and one connection per (broker, purpose) with reconnect backoff.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ferrokafka_tls::TlsConnector;
use kafka_protocol::messages::{
    metadata_request::MetadataRequestTopic, ApiKey, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::config::{ClientConfig, ConfigError};
use crate::conn::{Connection, ConnectionOptions};
use crate::error::{ClientError, Result};
use crate::metadata::{BrokerInfo, Metadata};

/// What a connection is used for. Fetches (which wait at the broker), produce
/// requests (megabytes each) and group traffic get their own sockets, so metadata,
/// admin and offset calls never queue behind them (franz-go keeps the same split).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnKind {
    /// Metadata, admin, offsets.
    General,
    /// Produce requests.
    Produce,
    /// Fetch requests.
    Fetch,
    /// Consumer group coordination.
    Group,
}

struct Slot {
    conn: Option<Connection>,
    backoff: Backoff,
    next_attempt: Instant,
}

/// One (broker, kind) connection slot, locked while (re)connecting.
type SharedSlot = Arc<Mutex<Slot>>;

struct Inner {
    config: ClientConfig,
    opts: ConnectionOptions,
    /// SASL for every connection (`SASL_PLAINTEXT`, `SASL_SSL`).
    sasl: Option<Arc<crate::sasl::SaslConfig>>,
    metadata: RwLock<Arc<Metadata>>,
    /// Bumped each time `metadata` is replaced: lets hot paths keep what they read from
    /// it until it changes.
    generation: std::sync::atomic::AtomicU64,
    /// Topics whose metadata is kept fresh.
    topics: RwLock<BTreeSet<String>>,
    slots: std::sync::Mutex<HashMap<(i32, ConnKind), SharedSlot>>,
    bootstrap: Mutex<Option<Connection>>,
    refresh: Mutex<()>,
    /// Wakes the cluster's refresh loop; requests made while it works coalesce into
    /// one more refresh.
    refresh_wanted: Arc<tokio::sync::Notify>,
    /// Set when the last handle is gone: the refresh loop ends.
    gone: Arc<std::sync::atomic::AtomicBool>,
    /// Statistics per broker address, shared by its connections (`crate::stats`).
    counters: std::sync::Mutex<BTreeMap<String, Arc<crate::stats::BrokerCounters>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.gone.store(true, std::sync::atomic::Ordering::Relaxed);
        self.refresh_wanted.notify_one();
    }
}

/// The cluster's one background metadata refresher (franz-go's metadata loop): every
/// component asks it with [`Cluster::request_refresh`] instead of spawning its own
/// refresh; a burst of requests is one refresh, and refreshes are at least
/// `retry.backoff.ms` apart (the Java client's minimum between metadata updates). It
/// holds the cluster only while refreshing.
async fn refresh_loop(
    inner: std::sync::Weak<Inner>,
    wanted: Arc<tokio::sync::Notify>,
    gone: Arc<std::sync::atomic::AtomicBool>,
) {
    loop {
        wanted.notified().await;
        if gone.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let Some(inner) = inner.upgrade() else { return };
        let cluster = Cluster { inner };
        if let Err(e) = cluster.refresh_metadata().await {
            tracing::debug!(error = %e, "background metadata refresh failed");
        }
        let pause = cluster.retry_backoff();
        drop(cluster);
        tokio::time::sleep(pause).await;
    }
}

/// A handle to the cluster; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("bootstrap", &self.inner.config.bootstrap_servers()).finish()
    }
}

impl Cluster {
    /// Connects to the first reachable bootstrap broker and loads metadata.
    ///
    /// With `security.protocol` `SSL`, the TLS connector is built first from the
    /// `ssl.*` keys, so a bad key or store fails here, before any connection.
    pub async fn connect(config: ClientConfig) -> Result<Cluster> {
        Self::connect_inner(config, None).await
    }

    /// Like [`connect`](Self::connect), with OAUTHBEARER tokens from `provider` (your
    /// identity service; Java's login callback handler).
    pub async fn connect_with_token_provider(
        config: ClientConfig,
        provider: Arc<dyn crate::sasl::TokenProvider>,
    ) -> Result<Cluster> {
        Self::connect_inner(config, Some(provider)).await
    }

    async fn connect_inner(
        config: ClientConfig,
        provider: Option<Arc<dyn crate::sasl::TokenProvider>>,
    ) -> Result<Cluster> {
        let protocol = config.security_protocol();
        let sasl = if protocol.uses_sasl() {
            let mut sasl = crate::sasl::SaslConfig::from_keys(config.layer_keys())?;
            if let Some(settings) = sasl.oidc().cloned() {
                // The token endpoint is trusted like the brokers (`ssl.*`), else by the system's CAs.
                let tls = TlsConnector::from_keys("SSL", config.layer_keys())
                    .map_err(|source| ClientError::Tls { broker: Some(settings.endpoint.clone()), source })?;
                let oidc = crate::sasl::OidcProvider::new(settings, tls.map(Arc::new)).map_err(|e| {
                    ClientError::Config(ConfigError::invalid_value("sasl.oauthbearer.token.endpoint.url", "", e))
                })?;
                sasl = sasl.with_token_provider(Arc::new(oidc));
            }
            if let Some(p) = provider {
                sasl = sasl.with_token_provider(p);
            }
            if sasl.lacks_tokens() {
                return Err(ClientError::Config(ConfigError::Missing { key: "sasl.oauthbearer.config".into() }));
            }
            Some(Arc::new(sasl))
        } else {
            None
        };
        let tls = TlsConnector::from_keys(protocol.as_str(), config.layer_keys())
            .map_err(|source| ClientError::Tls { broker: None, source })?;
        let opts = ConnectionOptions {
            client_id: StrBytes::from_string(config.client_id().to_owned()),
            request_timeout: config.request_timeout(),
            connect_timeout: config.connection_setup_timeout(),
            max_in_flight: config.max_in_flight_requests_per_connection(),
            max_frame_size: config.receive_message_max_bytes(),
            tls: tls.map(Arc::new),
            receive_buffer: config.receive_buffer_bytes(),
            send_buffer: config.send_buffer_bytes(),
        };
        let cluster = Cluster {
            inner: Arc::new(Inner {
                config,
                opts,
                sasl,
                metadata: RwLock::new(Arc::new(Metadata::empty())),
                generation: std::sync::atomic::AtomicU64::new(0),
                topics: RwLock::new(BTreeSet::new()),
                slots: std::sync::Mutex::new(HashMap::new()),
                bootstrap: Mutex::new(None),
                refresh: Mutex::new(()),
                refresh_wanted: Arc::new(tokio::sync::Notify::new()),
                gone: Arc::new(std::sync::atomic::AtomicBool::new(false)),
                counters: std::sync::Mutex::new(BTreeMap::new()),
            }),
        };
        let (weak, wanted, gone) =
            (Arc::downgrade(&cluster.inner), cluster.inner.refresh_wanted.clone(), cluster.inner.gone.clone());
        tokio::spawn(refresh_loop(weak, wanted, gone));
        cluster.refresh_metadata().await?;
        Ok(cluster)
    }

    /// The client configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Changes whenever the metadata snapshot is replaced.
    pub(crate) fn metadata_generation(&self) -> u64 {
        self.inner.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current metadata snapshot.
    pub fn metadata(&self) -> Arc<Metadata> {
        self.inner.metadata.read().map(|m| m.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Adds topics to those whose metadata is fetched on refresh.
    pub fn track_topics<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        if let Ok(mut t) = self.inner.topics.write() {
            t.extend(topics.into_iter().map(str::to_owned));
        }
    }

    /// Refreshes metadata if the snapshot is older than `metadata.max.age.ms`.
    pub async fn metadata_fresh(&self) -> Result<Arc<Metadata>> {
        let m = self.metadata();
        if m.fetched_at.elapsed() < self.inner.config.metadata_max_age() && !m.brokers.is_empty() {
            return Ok(m);
        }
        self.refresh_metadata().await
    }

    /// Asks for a background refresh when the snapshot is older than `metadata.max.age.ms`.
    pub fn refresh_if_stale(&self) {
        if self.metadata().fetched_at.elapsed() >= self.inner.config.metadata_max_age() {
            self.request_refresh();
        }
    }

    /// Asks the cluster's refresh loop for a metadata refresh and returns at once.
    /// Requests made before the loop starts its next refresh are served by it.
    pub fn request_refresh(&self) {
        self.inner.refresh_wanted.notify_one();
    }

    /// Fetches metadata for the tracked topics (or only brokers when none is tracked).
    pub async fn refresh_metadata(&self) -> Result<Arc<Metadata>> {
        let started = Instant::now();
        let _guard = self.inner.refresh.lock().await;
        // Someone else refreshed while we waited: use theirs.
        let current = self.metadata();
        if current.fetched_at > started && !current.brokers.is_empty() {
            return Ok(current);
        }
        let topics: Vec<String> = self.inner.topics.read().map(|t| t.iter().cloned().collect()).unwrap_or_default();
        let resp = self.fetch_metadata(Some(&topics)).await?;
        let snapshot = Arc::new(Metadata::from_response(&resp, Some(&current)));
        tracing::debug!(brokers = snapshot.brokers.len(), topics = snapshot.topics.len(), "metadata refreshed");
        if let Ok(mut m) = self.inner.metadata.write() {
            *m = snapshot.clone();
            self.inner.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        Ok(snapshot)
    }

    /// The cluster as one broker sees it now: brokers, controller and the partitions of
    /// `topics` (of every topic when `None`), fetched for this call (the cached
    /// snapshot is not changed).
    pub async fn describe(&self, topics: Option<&[String]>) -> Result<Metadata> {
        Ok(Metadata::from_response(&self.fetch_metadata(topics).await?, None))
    }

    /// Sends a Metadata request (all topics when `None`) to any broker.
    pub(crate) async fn fetch_metadata(&self, topics: Option<&[String]>) -> Result<MetadataResponse> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::Metadata)?;
        let mut req = MetadataRequest::default();
        req.topics = topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.clone())))))
                .collect()
        });
        // v4+ can ask brokers not to auto-create; earlier versions always may.
        req.allow_auto_topic_creation = version < 4 || self.inner.config.allow_auto_create_topics();
        let result = conn.call_at(version, &req, None).await;
        if result.is_err() {
            self.forget_bootstrap().await;
        }
        result
    }

    async fn forget_bootstrap(&self) {
        *self.inner.bootstrap.lock().await = None;
    }

    /// A live connection to some broker: a known broker if possible, else the
    /// bootstrap list in order (re-resolving each host on every attempt).
    pub(crate) async fn any_connection(&self) -> Result<Connection> {
        let mut boot = self.inner.bootstrap.lock().await;
        if let Some(c) = boot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let known: Vec<String> = self.metadata().brokers.values().map(BrokerInfo::addr).collect();
        let mut last = None;
        let mut tls_failure = None;
        for addr in known.iter().chain(self.inner.config.bootstrap_servers()) {
            match self.open(addr).await {
                Ok(c) => {
                    *boot = Some(c.clone());
                    return Ok(c);
                }
                Err(e) => {
                    tracing::debug!(broker = %addr, error = %e, "bootstrap connection failed");
                    last = Some(Box::new(e.clone()));
                    // A refused certificate or refused credentials will not get better by
                    // retrying: report them as they are.
                    let fatal = matches!(
                        e,
                        ClientError::Tls { .. }
                            | ClientError::Authentication { .. }
                            | ClientError::SaslMechanismNotEnabled { .. }
                    );
                    if fatal && !e.is_retriable() && tls_failure.is_none() {
                        tls_failure = Some(e);
                    }
                }
            }
        }
        if let Some(e) = tls_failure {
            return Err(e);
        }
        Err(ClientError::NoBrokerReachable { bootstrap: self.inner.config.bootstrap_servers().join(","), last })
    }

    /// The connection of `kind` to broker `node`, (re)connecting with exponential
    /// backoff and jitter (`reconnect.backoff.ms` .. `reconnect.backoff.max.ms`).
    pub(crate) async fn broker(&self, node: i32, kind: ConnKind) -> Result<Connection> {
        let addr =
            self.metadata().brokers.get(&node).map(BrokerInfo::addr).ok_or(ClientError::UnknownBroker { node })?;
        let cfg = &self.inner.config;
        let slot = {
            let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .entry((node, kind))
                .or_insert_with(|| {
                    Arc::new(Mutex::new(Slot {
                        conn: None,
                        backoff: Backoff::new(cfg.reconnect_backoff(), cfg.reconnect_backoff_max()),
                        next_attempt: Instant::now(),
                    }))
                })
                .clone()
        };
        // One connect attempt per (broker, kind) at a time; other brokers are not held up.
        let mut slot = slot.lock().await;
        if let Some(c) = slot.conn.as_ref().filter(|c| !c.is_closed() && c.addr() == addr) {
            return Ok(c.clone());
        }
        tokio::time::sleep_until(slot.next_attempt).await;
        match self.open(&addr).await {
            Ok(c) => {
                slot.backoff.reset();
                slot.conn = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                tracing::debug!(broker = %addr, node, kind = ?kind, error = %e, "connection failed");
                slot.next_attempt = Instant::now() + slot.backoff.next_delay();
                slot.conn = None;
                Err(e)
            }
        }
    }

    /// A new connection to `addr`, authenticated (and kept so, KIP-368) when SASL is
    /// configured, before anyone else can use it.
    async fn open(&self, addr: &str) -> Result<Connection> {
        let counters = {
            let mut all = self.inner.counters.lock().unwrap_or_else(|p| p.into_inner());
            all.entry(addr.to_owned()).or_insert_with(|| Arc::new(crate::stats::BrokerCounters::exported(addr))).clone()
        };
        let conn = Connection::connect_counted(addr, &self.inner.opts, counters.clone()).await?;
        counters.connected();
        if let Some(sasl) = &self.inner.sasl {
            crate::sasl::reauth::authenticate_and_keep(&conn, sasl.clone()).await?;
        }
        Ok(conn)
    }

    /// The connection of `kind` to the leader of `tp`, refreshing metadata once if
    /// the leader is unknown.
    pub(crate) async fn leader(
        &self,
        tp: &crate::metadata::TopicPartition,
        kind: ConnKind,
    ) -> Result<(i32, Connection)> {
        let mut md = self.metadata();
        if md.leader(tp).is_none() {
            self.track_topics([&*tp.topic]);
            md = self.refresh_metadata().await?;
        }
        let leader = md.leader(tp).map(|b| b.id).ok_or_else(|| ClientError::UnknownTopicOrPartition {
            topic: tp.topic.to_string(),
            partition: Some(tp.partition),
        })?;
        Ok((leader, self.broker(leader, kind).await?))
    }

    /// Statistics of every broker this handle has connected to (requests, bytes,
    /// round trips, connects), sorted by address.
    pub fn statistics(&self) -> Vec<crate::stats::BrokerStatistics> {
        let all = self.inner.counters.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().map(|(addr, c)| c.snapshot(addr)).collect()
    }

    /// The error codes brokers answered this handle's users, by API and code, summed
    /// over the brokers.
    pub fn error_statistics(&self) -> Vec<crate::stats::ErrorStatistics> {
        let all = self.inner.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut sum = BTreeMap::new();
        for c in all.values() {
            c.errors.add_to(&mut sum);
        }
        sum.into_values().collect()
    }

    /// Counts an answer's error code from the broker at `addr` (0 is not counted).
    pub(crate) fn note_error(&self, addr: &str, api: crate::Api, code: i16) {
        if code == 0 {
            return;
        }
        let all = self.inner.counters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = all.get(addr) {
            c.errors.note(api, code);
        }
    }

    /// Pause between retries (`retry.backoff.ms`).
    pub fn retry_backoff(&self) -> Duration {
        self.inner.config.retry_backoff()
    }
}
