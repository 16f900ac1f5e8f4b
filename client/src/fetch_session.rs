//! Incremental fetch sessions (KIP-227), the client's half, without I/O.
//!
//! A consumer of many partitions would otherwise name every partition in every Fetch.
//! With a session, the first Fetch to a broker is full and asks for a session (id 0,
//! epoch 0); the broker answers with a session id, and later Fetches (epoch 1, 2, …)
//! carry only the partitions whose fetch offset changed or that joined, plus the
//! partitions to forget; the broker answers only for partitions with news. A broker
//! that answers id 0 keeps no session: every Fetch stays full. A session the broker
//! lost (FETCH_SESSION_ID_NOT_FOUND) or an epoch it refused (INVALID_FETCH_SESSION_EPOCH)
//! starts a new one; no position moves, since positions live in the consumer, not in
//! the session.
//!
//! One session per broker, one Fetch in flight per broker (the fetcher's rule), so a
//! request and its answer pair up: [`FetchSession::request`] says what to send and
//! [`FetchSession::answered`] / [`FetchSession::failed`] move the session on.

use std::collections::HashMap;

use crate::metadata::TopicPartition;

/// FETCH_SESSION_ID_NOT_FOUND: the broker evicted (or never had) the session.
pub(crate) const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// INVALID_FETCH_SESSION_EPOCH: the epoch is not the one the broker expects.
pub(crate) const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

/// What one Fetch request carries for the session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SessionRequest {
    pub(crate) session_id: i32,
    pub(crate) epoch: i32,
    /// The partitions to name, with their fetch offsets (all of them when full).
    pub(crate) partitions: Vec<(TopicPartition, i64)>,
    /// Partitions the session holds that this fetch no longer wants.
    pub(crate) forgotten: Vec<TopicPartition>,
    /// What the session holds once the broker accepts this request.
    held: HashMap<TopicPartition, i64>,
}

impl SessionRequest {
    /// Whether every wanted partition is named (no session yet).
    pub(crate) fn is_full(&self) -> bool {
        self.epoch == 0
    }
}

/// One broker's session as the client keeps it.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    /// The broker's session id; 0 while there is none.
    id: i32,
    /// The epoch of the next incremental request (1, 2, …, wrapping to 1).
    epoch: i32,
    /// Partition → the fetch offset the broker holds for it.
    held: HashMap<TopicPartition, i64>,
    /// A session given up after an error, to close with the next full request (its id
    /// with epoch 0: "close it and open a new one"), so it does not hold a slot in the
    /// broker's cache until evicted.
    closing: i32,
}

impl FetchSession {
    /// The session's part of a Fetch for `wanted` (partition, fetch offset).
    pub(crate) fn request(&self, wanted: &[(TopicPartition, i64)]) -> SessionRequest {
        let held: HashMap<TopicPartition, i64> = wanted.iter().cloned().collect();
        if self.id == 0 {
            return SessionRequest {
                session_id: self.closing,
                epoch: 0,
                partitions: wanted.to_vec(),
                forgotten: Vec::new(),
                held,
            };
        }
        let partitions = wanted.iter().filter(|(tp, o)| self.held.get(tp) != Some(o)).cloned().collect();
        let mut forgotten: Vec<TopicPartition> =
            self.held.keys().filter(|tp| !held.contains_key(*tp)).cloned().collect();
        forgotten.sort();
        SessionRequest { session_id: self.id, epoch: self.epoch, partitions, forgotten, held }
    }

    /// The broker answered `sent` with top-level `error_code` and `session_id`.
    /// Returns `false` when the answer is a session error: nothing was fetched, the
    /// session starts over, and the same partitions should be fetched again at once.
    pub(crate) fn answered(&mut self, sent: SessionRequest, error_code: i16, session_id: i32) -> bool {
        if error_code == FETCH_SESSION_ID_NOT_FOUND {
            *self = FetchSession::default();
            return false;
        }
        if error_code != 0 {
            self.failed();
            return error_code != INVALID_FETCH_SESSION_EPOCH;
        }
        if !sent.is_full() && session_id == 0 {
            // The broker closed the session: the next request opens a new one.
            *self = FetchSession::default();
            return true;
        }
        self.closing = 0;
        if sent.is_full() {
            if session_id == 0 {
                // The broker keeps no session (disabled, or a version before 7).
                *self = FetchSession::default();
                return true;
            }
            self.id = session_id;
            self.epoch = 1;
        } else {
            self.epoch = if self.epoch == i32::MAX { 1 } else { self.epoch + 1 };
        }
        self.held = sent.held;
        true
    }

    /// No answer came (the connection failed): the broker's state is unknown, so the
    /// next request starts a new session (closing this one).
    pub(crate) fn failed(&mut self) {
        let closing = if self.id != 0 { self.id } else { self.closing };
        *self = FetchSession { closing, ..FetchSession::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn full_then_incremental_then_a_lost_session_starts_over() {
        let mut s = FetchSession::default();
        let wanted = vec![(tp(0), 10), (tp(1), 20), (tp(2), 30)];
        let first = s.request(&wanted);
        assert!(first.is_full() && first.session_id == 0 && first.partitions.len() == 3);
        assert!(s.answered(first, 0, 77));
        assert_eq!((s.id, s.epoch), (77, 1));

        // Nothing changed: an empty incremental request.
        let idle = s.request(&wanted);
        assert_eq!((idle.session_id, idle.epoch), (77, 1));
        assert!(idle.partitions.is_empty() && idle.forgotten.is_empty());
        assert!(s.answered(idle, 0, 77));

        // Partition 1 got data (its offset moved), 2 is paused, 3 is new.
        let next = vec![(tp(0), 10), (tp(1), 25), (tp(3), 0)];
        let inc = s.request(&next);
        assert_eq!(inc.epoch, 2);
        assert_eq!(inc.partitions, vec![(tp(1), 25), (tp(3), 0)]);
        assert_eq!(inc.forgotten, vec![tp(2)]);
        assert!(s.answered(inc, 0, 77));
        assert_eq!(s.held.len(), 3);

        // The broker lost the session: start over with a full request.
        let lost = s.request(&next);
        assert!(!s.answered(lost, FETCH_SESSION_ID_NOT_FOUND, 0), "fetch again at once");
        let again = s.request(&next);
        assert!(again.is_full() && again.partitions.len() == 3 && again.forgotten.is_empty());
        assert!(s.answered(again, 0, 78));
        let epoch = s.request(&next);
        assert!(!s.answered(epoch, INVALID_FETCH_SESSION_EPOCH, 0));
        let reopen = s.request(&next);
        assert!(reopen.is_full());
        assert_eq!(reopen.session_id, 78, "the refused session is closed by the full request that replaces it");
        assert!(s.answered(reopen, 0, 79));
        assert_eq!(s.request(&next).session_id, 79);

        // An incremental answer without a session id: the broker closed it.
        let inc = s.request(&next);
        assert!(s.answered(inc, 0, 0));
        assert!(s.request(&next).is_full());
    }

    #[test]
    fn a_broker_without_sessions_gets_full_requests() {
        let mut s = FetchSession::default();
        let wanted = vec![(tp(0), 1)];
        for _ in 0..3 {
            let r = s.request(&wanted);
            assert!(r.is_full());
            assert!(s.answered(r, 0, 0));
        }
        assert_eq!(s.id, 0);
    }

    #[test]
    fn a_failed_fetch_or_another_error_ends_the_session_and_epochs_wrap() {
        let mut s = FetchSession { id: 5, epoch: i32::MAX, ..FetchSession::default() };
        let r = s.request(&[]);
        assert!(s.answered(r, 0, 5));
        assert_eq!(s.epoch, 1, "epochs wrap to 1, never 0 (0 opens a session)");
        s.failed();
        let r = s.request(&[(tp(0), 0)]);
        assert!(r.is_full() && r.session_id == 5, "the lost session is closed by the next full request");
        let mut s = FetchSession { id: 6, epoch: 3, ..FetchSession::default() };
        let r = s.request(&[]);
        assert!(s.answered(r, 3 /* UNKNOWN_TOPIC_OR_PARTITION */, 0), "not a session error: no refetch at once");
        assert_eq!((s.id, s.closing), (0, 6));
    }
}
