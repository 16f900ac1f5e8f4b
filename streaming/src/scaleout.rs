//! Scale-out across processes: several processes run a direct stream with the same
//! `group.id` and share the topics' partitions through Kafka's group protocol.
//!
//! Each process advertises its executors (id and host) in its subscription's user data;
//! the group leader runs [`ExecutorAssignor`], which places every partition on one
//! executor of the whole group with the same balanced, stable placement as
//! [`PreferConsistent`](crate::PreferConsistent) — each executor gets its share ±1,
//! executors on more hosts and more executors in a process mean more partitions for it, and
//! when a process joins or leaves only the partitions that must move do. A process then
//! reads the partitions of its own executors.
//!
//! Offsets: a process that loses a partition stops reading it at a batch boundary; the
//! new owner starts where the group's committed offsets (or your transactional store's,
//! through starting offsets) say. The stream commits queued `commit_async` offsets before
//! it takes part in a rebalance, so with `commit_async` after every batch's output no
//! record is processed twice and none is skipped.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use ferrokafka_client::group::assignor::{Assignor, MemberAssignment, MemberSubscription};
use ferrokafka_client::ClientError;

use crate::location::{place_by_host, Executor};
use crate::offset_range::TopicPartition;

/// The protocol name of [`ExecutorAssignor`] in JoinGroup.
pub const EXECUTOR_ASSIGNOR: &str = "ferrokafka-executors";

/// User-data format version.
const VERSION: i16 = 0;

/// The location-aware assignor of scale-out streams (see the module docs).
#[derive(Debug, Clone)]
pub struct ExecutorAssignor {
    executors: Vec<Executor>,
}

impl ExecutorAssignor {
    /// An assignor advertising this process's `executors`.
    pub fn new(executors: Vec<Executor>) -> Self {
        ExecutorAssignor { executors }
    }
}

fn put_str(buf: &mut BytesMut, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    buf.put_i16(bytes.len() as i16);
    buf.put_slice(bytes);
}

/// Encodes executors: version (i16), count (i32), then (id, host) as i16-length strings.
pub(crate) fn encode(executors: &[Executor]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(VERSION);
    buf.put_i32(executors.len() as i32);
    for e in executors {
        put_str(&mut buf, &e.id);
        put_str(&mut buf, &e.host);
    }
    buf.freeze()
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err(format!("needs {n} more bytes, {} left", self.0.len()));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, String> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = usize::try_from(self.i16()?).map_err(|_| "negative string length".to_owned())?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "string is not UTF-8".to_owned())
    }
}

/// Decodes [`encode`]'s format; every count and length is checked against the bytes left.
pub(crate) fn decode(data: &[u8]) -> Result<Vec<Executor>, String> {
    let mut r = Reader(data);
    let version = r.i16()?;
    if version != VERSION {
        return Err(format!("unknown executor user-data version {version}"));
    }
    let count = r.take(4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))?;
    let count = usize::try_from(count).map_err(|_| "negative executor count".to_owned())?;
    if count > r.0.len() / 4 {
        return Err(format!("{count} executors cannot fit in {} bytes", r.0.len()));
    }
    (0..count).map(|_| Ok(Executor::new(r.string()?, r.string()?))).collect()
}

impl Assignor for ExecutorAssignor {
    fn name(&self) -> &str {
        EXECUTOR_ASSIGNOR
    }

    fn subscription_user_data(&self, _topics: &[String], _owned: &[TopicPartition], _generation: i32) -> Option<Bytes> {
        Some(encode(&self.executors))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> ferrokafka_client::Result<BTreeMap<String, MemberAssignment>> {
        // Every member's executors, renamed "member/executor" so ids are unique in the group.
        // A member without readable user data counts as one executor on an unknown host.
        let mut owner: BTreeMap<String, String> = BTreeMap::new();
        let mut out: BTreeMap<String, MemberAssignment> = BTreeMap::new();
        let mut by_topic: BTreeMap<&str, Vec<Executor>> = BTreeMap::new();
        for m in members {
            out.insert(m.member_id.clone(), MemberAssignment::default());
            let execs = match m.user_data.as_deref().map(decode) {
                Some(Ok(e)) if !e.is_empty() => e,
                Some(Err(e)) => {
                    return Err(ClientError::Assignor {
                        assignor: EXECUTOR_ASSIGNOR.to_owned(),
                        reason: format!("member {} sent unreadable user data: {e}", m.member_id),
                    })
                }
                _ => vec![Executor::new("0", "")],
            };
            for e in execs {
                let e = Executor::new(format!("{}/{}", m.member_id, e.id), e.host);
                owner.insert(e.id.clone(), m.member_id.clone());
                for t in &m.topics {
                    by_topic.entry(t.as_str()).or_default().push(e.clone());
                }
            }
        }
        for (topic, execs) in by_topic {
            let count = partitions_per_topic.get(topic).copied().unwrap_or(0);
            let tps: Vec<TopicPartition> = (0..count).map(|p| TopicPartition::new(topic, p)).collect();
            for (tp, e) in place_by_host(&tps, &execs, |_| None, &std::collections::HashMap::new()) {
                if let Some(a) = owner.get(&e.id).and_then(|m| out.get_mut(m)) {
                    a.partitions.push(tp);
                }
            }
        }
        for a in out.values_mut() {
            a.partitions.sort();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, executors: &[(&str, &str)]) -> MemberSubscription {
        let execs: Vec<Executor> = executors.iter().map(|(i, h)| Executor::new(*i, *h)).collect();
        MemberSubscription {
            member_id: id.into(),
            group_instance_id: None,
            topics: vec!["t".into()],
            user_data: Some(encode(&execs)),
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }

    fn counts(a: &BTreeMap<String, MemberAssignment>) -> Vec<usize> {
        a.values().map(|m| m.partitions.len()).collect()
    }

    #[test]
    fn user_data_round_trips_and_bad_data_is_refused() {
        let execs = vec![Executor::new("0", "host-a"), Executor::new("1", "")];
        assert_eq!(decode(&encode(&execs)).unwrap(), execs);
        let mut huge = BytesMut::new();
        huge.put_i16(0);
        huge.put_i32(i32::MAX);
        assert!(decode(&huge).unwrap_err().contains("cannot fit"));
        assert!(decode(&[0, 1]).is_err());
        let data = encode(&execs);
        for cut in 0..data.len() {
            assert!(decode(&data[..cut]).is_err(), "truncated at {cut}");
        }
    }

    #[test]
    fn partitions_follow_executor_counts_and_move_little() {
        let parts = BTreeMap::from([("t".to_owned(), 12)]);
        let a = ExecutorAssignor::new(Vec::new());
        let two = [member("m1", &[("0", "h1"), ("1", "h1")]), member("m2", &[("0", "h2")])];
        let before = a.assign(&parts, &two).unwrap();
        assert_eq!(counts(&before), [8, 4], "shares follow the executors: 2 + 1");
        let all: Vec<_> = before.values().flat_map(|m| m.partitions.clone()).collect();
        assert_eq!(all.len(), 12);
        // m2 leaves: everything goes to m1; m3 joins instead: only some of m1's move.
        let alone = a.assign(&parts, &two[..1]).unwrap();
        assert_eq!(counts(&alone), [12]);
        let three = [two[0].clone(), two[1].clone(), member("m3", &[("0", "h3")])];
        let after = a.assign(&parts, &three).unwrap();
        assert_eq!(counts(&after), [6, 3, 3]);
        let kept = |m: &str| after[m].partitions.iter().filter(|p| before[m].partitions.contains(p)).count();
        assert_eq!(kept("m1") + kept("m2"), 9, "only the 3 partitions m3 takes move");
    }

    #[test]
    fn unreadable_user_data_is_an_error() {
        let mut bad = member("m1", &[("0", "h")]);
        bad.user_data = Some(Bytes::from_static(&[0, 9, 0, 0]));
        let err = ExecutorAssignor::new(Vec::new()).assign(&BTreeMap::from([("t".to_owned(), 1)]), &[bad]).unwrap_err();
        assert!(err.to_string().contains("unreadable"), "{err}");
    }
}
