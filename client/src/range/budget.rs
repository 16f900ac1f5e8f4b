//! A byte budget shared by range reads: every fetched chunk holds a [`Reservation`]
//! until the reader is done with it, so the bytes held by a pool of readers never
//! pass the limit (one oversized record batch excepted, see [`MemoryBudget`]).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

type Reclaimer = Box<dyn Fn() + Send + Sync>;

/// The bytes a set of range reads may hold at once.
///
/// A fetch reserves `max.partition.fetch.bytes` (at most the whole limit) for each
/// partition it asks for, shrinks the reservation to the bytes that arrived (the
/// decoded size, for compressed data) and holds it until the records are consumed.
/// The one way past the limit: a broker returns a first record batch larger than
/// `max.partition.fetch.bytes` (KIP-74, bounded by the broker's `message.max.bytes`);
/// such a batch is accounted in full and further fetches wait until it is released.
pub struct MemoryBudget {
    limit: usize,
    state: Mutex<State>,
    freed: Notify,
    reclaimers: Mutex<Vec<Reclaimer>>,
}

#[derive(Default)]
struct State {
    used: usize,
    peak: usize,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget").field("limit", &self.limit).field("used", &self.used()).finish()
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes (at least 1).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit: limit.max(1),
            state: Mutex::new(State::default()),
            freed: Notify::new(),
            reclaimers: Mutex::new(Vec::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.lock().used
    }

    /// The most bytes ever reserved at once.
    pub fn peak(&self) -> usize {
        self.lock().peak
    }

    /// Registers a function that frees optional holdings (e.g. cached leftovers) when a
    /// reservation has to wait.
    pub fn on_pressure(&self, f: impl Fn() + Send + Sync + 'static) {
        self.reclaimers.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(f));
    }

    /// Reserves `bytes` (clamped to the limit) if they fit now.
    pub fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let bytes = bytes.min(self.limit);
        let mut st = self.lock();
        if st.used + bytes > self.limit {
            return None;
        }
        st.used += bytes;
        st.peak = st.peak.max(st.used);
        Some(Reservation { budget: self.clone(), bytes })
    }

    /// Reserves `bytes` (clamped to the limit), first asking the reclaimers to free
    /// what they can, then waiting for releases.
    pub async fn reserve(self: &Arc<Self>, bytes: usize) -> Reservation {
        let mut reclaimed = false;
        loop {
            let freed = self.freed.notified();
            if let Some(r) = self.try_reserve(bytes) {
                return r;
            }
            if !reclaimed {
                reclaimed = true;
                for f in self.reclaimers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                    f();
                }
                continue;
            }
            freed.await;
        }
    }

    fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut st = self.lock();
        st.used = st.used.saturating_sub(bytes);
        drop(st);
        self.freed.notify_waiters();
    }
}

/// Bytes held against a [`MemoryBudget`]; released on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Sets the held amount to `bytes`: shrinking releases the difference at once;
    /// growing (data that arrived larger than reserved) is accounted even past the limit.
    pub fn resize(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.budget.release(self.bytes - bytes);
        } else if bytes > self.bytes {
            let mut st = self.budget.lock();
            st.used += bytes - self.bytes;
            st.peak = st.peak.max(st.used);
        }
        self.bytes = bytes;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_stay_within_the_limit_and_wait_for_releases() {
        let b = MemoryBudget::new(100);
        let r1 = b.try_reserve(60).unwrap();
        assert!(b.try_reserve(60).is_none(), "60 + 60 > 100");
        let r2 = b.try_reserve(40).unwrap();
        assert_eq!(b.used(), 100);
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.reserve(50).await.bytes() });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(r1);
        assert_eq!(waiter.await.unwrap(), 50);
        drop(r2);
        assert_eq!(b.used(), 0);
        assert_eq!(b.peak(), 100);
    }

    #[tokio::test]
    async fn pressure_runs_reclaimers_and_resize_accounts_growth() {
        let b = MemoryBudget::new(10);
        let held = Arc::new(Mutex::new(Some(b.try_reserve(10).unwrap())));
        let h = held.clone();
        b.on_pressure(move || drop(h.lock().unwrap().take()));
        let r = b.reserve(8).await;
        assert!(held.lock().unwrap().is_none(), "the reclaimer freed the cached reservation");
        let mut r = r;
        r.resize(3);
        assert_eq!(b.used(), 3);
        r.resize(25);
        assert_eq!((b.used(), b.peak()), (25, 25), "growth past the limit is accounted");
        assert!(b.try_reserve(1).is_none());
        drop(r);
        assert_eq!(b.used(), 0);
        assert_eq!(b.try_reserve(1000).unwrap().bytes(), 10, "clamped to the limit");
    }
}
