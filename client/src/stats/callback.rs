//! `statistics.interval.ms`: a callback given a snapshot at that interval, as
//! librdkafka's `stats_cb`.

use std::time::Duration;

use tokio::time::Instant;

use super::Statistics;

/// The application's statistics callback (librdkafka's `stats_cb`, Java's
/// `MetricsReporter`): called with a snapshot every `statistics.interval.ms`.
pub type StatisticsCallback = Box<dyn FnMut(&Statistics) + Send>;

/// A callback and when it is next due.
pub(crate) struct Scheduled {
    /// In a mutex only so that clients holding one stay `Sync` (the callback need not be).
    callback: std::sync::Mutex<StatisticsCallback>,
    interval: Duration,
    next: Instant,
}

impl std::fmt::Debug for Scheduled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatisticsCallback").field("interval", &self.interval).finish()
    }
}

impl Scheduled {
    /// `None` when `interval` is zero (statistics off, librdkafka's default).
    pub(crate) fn new(interval: Duration, callback: StatisticsCallback) -> Option<Scheduled> {
        (!interval.is_zero()).then(|| Scheduled {
            callback: std::sync::Mutex::new(callback),
            interval,
            next: Instant::now() + interval,
        })
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether a snapshot is due now.
    pub(crate) fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    /// Gives `snapshot` to the callback; the next one is due an interval from now.
    pub(crate) fn serve(&mut self, snapshot: &Statistics) {
        self.next = Instant::now() + self.interval;
        let callback = self.callback.get_mut().unwrap_or_else(|p| p.into_inner());
        callback(snapshot);
    }
}
