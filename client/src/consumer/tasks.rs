//! The fetch loop's tasks in flight.

use std::collections::HashMap;

use tokio::task::JoinSet;

use super::fetcher::{Answer, Planned};
use crate::error::ClientError;
use crate::metadata::TopicPartition;

/// The fetches in flight, one per leader. Each task's leader and partitions are kept
/// outside the task, so a task that panics (or is cancelled) still hands them back
/// and its leader is not left busy forever.
#[derive(Default)]
pub(crate) struct FetchTasks {
    set: JoinSet<(Planned, Answer)>,
    meta: HashMap<tokio::task::Id, (i32, Vec<TopicPartition>)>,
}

impl FetchTasks {
    /// Starts `fetch`, which hands back the partitions it fetched with its answer.
    pub(crate) fn spawn(
        &mut self,
        leader: i32,
        tps: Vec<TopicPartition>,
        fetch: impl std::future::Future<Output = (Planned, Answer)> + Send + 'static,
    ) {
        let handle = self.set.spawn(fetch);
        self.meta.insert(handle.id(), (leader, tps));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The next finished fetch: its leader, its partitions and its answer (an error
    /// for a task that panicked).
    pub(crate) async fn next(&mut self) -> Option<(i32, Planned, Answer)> {
        let joined = self.set.join_next_with_id().await?;
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let (leader, tps) = self.meta.remove(&id)?;
        Some(match joined {
            Ok((_, (parts, answer))) => (leader, parts, answer),
            Err(e) => {
                let parts = tps.into_iter().map(|tp| (tp, -1, 0)).collect();
                (leader, parts, Err(ClientError::TaskFailed { task: "fetch", reason: e.to_string() }))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ClientError;

    /// A fetch task that panics still hands back its leader and partitions, with an
    /// error, so the fetch loop frees the leader and fetches the partitions again.
    #[tokio::test]
    async fn a_panicking_fetch_frees_its_leader() {
        let mut tasks = FetchTasks::default();
        let parts: Planned = vec![(TopicPartition::new("t", 0), 5, 1), (TopicPartition::new("t", 1), 9, 1)];
        let tps = || parts.iter().map(|p| p.0.clone()).collect();
        tasks.spawn(7, tps(), async { panic!("decoder bug") });
        let (leader, back, answer) = tasks.next().await.expect("the task is reported");
        assert_eq!(leader, 7);
        assert_eq!(
            back.iter().map(|p| p.0.clone()).collect::<Vec<_>>(),
            [TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
        );
        assert!(matches!(answer, Err(ClientError::TaskFailed { task: "fetch", .. })), "{answer:?}");
        assert!(tasks.is_empty() && tasks.meta.is_empty());
        // And a task that finishes hands back what it fetched.
        let p2 = parts.clone();
        tasks.spawn(3, tps(), async move { (p2, Ok(Vec::new())) });
        let (leader, back, answer) = tasks.next().await.expect("reported");
        assert_eq!((leader, back, answer.map(|v| v.len()).ok()), (3, parts, Some(0)));
    }
}
