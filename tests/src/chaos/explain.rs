//! Why the group read a log position twice. Each pair of reads of one position must
//! have a cause the run saw between them: the first reader was killed, lost the
//! partition uncommitted, or had a commit fail (a rebalance then starts the partition
//! at the older committed offset), or an OFFSET_OUT_OF_RANGE was injected (a reset per
//! `auto.offset.reset`). Events are placed by how many records had been consumed when
//! they happened, so "between" is exact up to records consumed concurrently.

use std::collections::BTreeMap;

use super::Ledger;

/// The group's duplicates, classified.
pub(crate) struct Duplicates {
    /// Positions read again by the member that read them first.
    pub(crate) same_member: usize,
    /// Positions with a pair of reads that no event explains.
    pub(crate) unexplained: usize,
}

pub(crate) fn duplicates(l: &Ledger) -> Duplicates {
    // Position → (consumed index, member session) of each read, in order.
    let mut reads: BTreeMap<(i32, i64), Vec<(usize, u64)>> = BTreeMap::new();
    for (i, c) in l.consumed.iter().enumerate() {
        reads.entry((c.1, c.2)).or_default().push((i, c.0));
    }
    let between = |at: usize, first: usize, second: usize| first < at && at <= second;
    let explained = |partition: i32, (i1, s1): (usize, u64), (i2, _): (usize, u64)| {
        l.kills.iter().any(|&(s, at)| s == s1 && between(at, i1, i2))
            || l.lost.iter().any(|&(s, p, at)| s == s1 && p == partition && between(at, i1, i2))
            || l.failed_commits.iter().any(|&(s, at)| s == s1 && between(at, i1, i2))
            || l.resets.iter().any(|&at| between(at, i1, i2))
    };
    let (mut same_member, mut unexplained) = (0, 0);
    for ((partition, _), rs) in reads.iter().filter(|(_, rs)| rs.len() > 1) {
        if rs.iter().all(|r| r.1 == rs[0].1) {
            same_member += 1;
        }
        if rs.windows(2).any(|w| !explained(*partition, w[0], w[1])) {
            unexplained += 1;
        }
    }
    Duplicates { same_member, unexplained }
}

/// `CHAOS_DEBUG`: where a member's positions jumped back, and the errors seen.
pub(crate) fn dump(l: &Ledger) {
    let mut last: BTreeMap<(u64, i32), (i64, usize)> = BTreeMap::new();
    for (i, c) in l.consumed.iter().enumerate() {
        if let Some((prev, j)) = last.get(&(c.0, c.1)) {
            if c.2 <= *prev {
                eprintln!("jump back: session {} partition {} from {prev} (#{j}) to {} (#{i})", c.0, c.1, c.2);
            }
        }
        last.insert((c.0, c.1), (c.2, i));
    }
    eprintln!("poll errors: {:?}", l.poll_errors);
    eprintln!("commit errors: {:?}", l.commit_errors);
}
