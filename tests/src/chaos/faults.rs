//! The seeded fault schedule: what to break next, for how long, and the undoing of
//! timed faults (a broker back up, a round trip back to normal).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::mock::MockCluster;

use super::proxy::Relays;
use super::PARTITIONS;

/// Per-API error codes injected (API, Kafka's code and name, how many requests get it).
const ERRORS: &[(&str, i16, &str, u32)] = &[
    ("Produce", 6, "NOT_LEADER_OR_FOLLOWER", 3),
    ("Produce", 7, "REQUEST_TIMED_OUT", 2),
    ("Produce", 13, "NETWORK_EXCEPTION", 2),
    ("Fetch", 6, "NOT_LEADER_OR_FOLLOWER", 3),
    ("Fetch", 13, "NETWORK_EXCEPTION", 2),
    ("Fetch", 1, "OFFSET_OUT_OF_RANGE", 1),
    ("FindCoordinator", 15, "COORDINATOR_NOT_AVAILABLE", 2),
    ("OffsetCommit", 16, "NOT_COORDINATOR", 2),
    ("OffsetCommit", 15, "COORDINATOR_NOT_AVAILABLE", 2),
    ("Heartbeat", 27, "REBALANCE_IN_PROGRESS", 1),
    ("Heartbeat", 25, "UNKNOWN_MEMBER_ID", 1),
    ("JoinGroup", 15, "COORDINATOR_NOT_AVAILABLE", 1),
    ("SyncGroup", 27, "REBALANCE_IN_PROGRESS", 1),
];

/// One fault.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    /// A partition's leadership moves to another broker.
    LeaderMove { partition: u32, broker: u32 },
    /// A broker goes down for a while.
    BrokerDown { broker: u32, for_ms: u64 },
    /// The next requests of one API get an error code.
    Error(usize),
    /// A broker answers slowly for a while.
    RttSpike { broker: u32, ms: u32, for_ms: u64 },
    /// The next Fetch or Produce answer (from any broker) is cut in the middle, its
    /// connection closed.
    CutResponse,
    /// A group member dies (no LeaveGroup) and a new one starts.
    KillMember(usize),
    /// The stream process dies and restarts from its store.
    KillStream,
}

impl Fault {
    fn kind(&self) -> &'static str {
        match self {
            Fault::LeaderMove { .. } => "leader moves",
            Fault::BrokerDown { .. } => "broker down/up",
            Fault::Error(_) => "error codes",
            Fault::RttSpike { .. } => "RTT spikes",
            Fault::CutResponse => "answers cut mid-way",
            Fault::KillMember(_) => "member kills",
            Fault::KillStream => "stream kills",
        }
    }
}

/// The schedule: a seeded generator and the faults still to undo.
pub(crate) struct Schedule {
    rng: fastrand::Rng,
    topic: String,
    counts: BTreeMap<&'static str, u64>,
    /// Error codes injected, by name.
    injected: BTreeMap<&'static str, u64>,
    /// Broker → when it comes back up.
    down: BTreeMap<u32, Instant>,
    /// Broker → when its round trip goes back to 0.
    slow: BTreeMap<u32, Instant>,
}

impl Schedule {
    pub(crate) fn new(seed: u64, topic: &str) -> Schedule {
        Schedule {
            rng: fastrand::Rng::with_seed(seed),
            topic: topic.to_owned(),
            counts: BTreeMap::new(),
            injected: BTreeMap::new(),
            down: BTreeMap::new(),
            slow: BTreeMap::new(),
        }
    }

    /// The next fault (recorded in the counts).
    pub(crate) fn next_fault(&mut self) -> Fault {
        let broker = self.rng.u32(1..=3);
        let fault = match self.rng.u32(0..13) {
            0..=2 => Fault::LeaderMove { partition: self.rng.u32(0..PARTITIONS), broker },
            // One broker down at a time (the cluster keeps a majority), never the groups'
            // coordinator.
            3 | 4 if self.down.is_empty() => {
                let broker = if broker == super::COORDINATOR { 2 + broker % 2 } else { broker };
                Fault::BrokerDown { broker, for_ms: self.rng.u64(1000..4000) }
            }
            3..=7 => Fault::Error(self.rng.usize(0..ERRORS.len())),
            8 => Fault::RttSpike { broker, ms: self.rng.u32(200..1500), for_ms: self.rng.u64(1000..3000) },
            9 | 10 => Fault::KillMember(self.rng.usize(0..3)),
            11 => Fault::CutResponse,
            _ => Fault::KillStream,
        };
        *self.counts.entry(fault.kind()).or_default() += 1;
        fault
    }

    /// How long until the next fault.
    pub(crate) fn pause(&mut self) -> Duration {
        Duration::from_millis(self.rng.u64(1500..4000))
    }

    /// Injects a broker-side fault.
    /// Returns the name of the error code it injected, if it injected one.
    pub(crate) fn apply(&mut self, mock: &mut MockCluster, relays: &Relays, fault: Fault) -> Option<&'static str> {
        let now = Instant::now();
        match fault {
            Fault::LeaderMove { partition, broker } => {
                mock.must(&format!("leader {} {partition} {broker}", self.topic));
            }
            Fault::BrokerDown { broker, for_ms } => {
                mock.must(&format!("down {broker}"));
                self.down.insert(broker, now + Duration::from_millis(for_ms));
            }
            Fault::Error(i) => {
                let (api, code, name, count) = ERRORS[i];
                mock.must(&format!("error {api} {code} {count}"));
                *self.injected.entry(name).or_default() += 1;
                return Some(name);
            }
            Fault::RttSpike { broker, ms, for_ms } => {
                mock.must(&format!("rtt {broker} {ms}"));
                self.slow.insert(broker, now + Duration::from_millis(for_ms));
            }
            Fault::CutResponse => relays.cut_next(),
            Fault::KillMember(_) | Fault::KillStream => {}
        }
        None
    }

    /// Undoes timed faults that are due.
    pub(crate) fn tick(&mut self, mock: &mut MockCluster) {
        let now = Instant::now();
        let up: Vec<u32> = self.down.iter().filter(|(_, t)| **t <= now).map(|(b, _)| *b).collect();
        for b in up {
            mock.must(&format!("up {b}"));
            self.down.remove(&b);
        }
        let fast: Vec<u32> = self.slow.iter().filter(|(_, t)| **t <= now).map(|(b, _)| *b).collect();
        for b in fast {
            mock.must(&format!("rtt {b} 0"));
            self.slow.remove(&b);
        }
    }

    /// Undoes every fault: brokers up, round trips normal, queued error codes cleared.
    pub(crate) fn heal(&mut self, mock: &mut MockCluster) {
        for b in 1..=3 {
            mock.must(&format!("up {b}"));
            mock.must(&format!("rtt {b} 0"));
        }
        self.down.clear();
        self.slow.clear();
        for (api, _, _, _) in ERRORS {
            mock.must(&format!("clear_errors {api}"));
        }
    }

    /// Error codes injected, by name.
    pub(crate) fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.injected.clone()
    }

    /// Faults injected, by kind.
    pub(crate) fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts.clone()
    }
}
