//! `read_committed`: dropping records of aborted transactions and control batches.

use super::batch::Batch;
use super::layout::ControlMarker;

/// An entry of a Fetch response's `aborted_transactions` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// The producer whose transaction was aborted.
    pub producer_id: i64,
    /// First offset of the aborted transaction.
    pub first_offset: i64,
}

/// Decides, batch by batch in offset order, what a `read_committed` consumer sees.
///
/// Follows the Java consumer: a producer becomes "aborted" once a batch at or past
/// the first offset of one of its aborted transactions is reached; its
/// transactional batches are dropped until its ABORT marker. Control batches are
/// never delivered.
#[derive(Debug, Default)]
pub struct AbortedTransactions {
    /// Not yet reached, sorted by descending first offset (next one at the end).
    pending: Vec<AbortedTransaction>,
    /// Producers currently inside an aborted transaction.
    open: Vec<i64>,
}

impl AbortedTransactions {
    /// Starts from a fetch response's aborted list (any order).
    pub fn new(mut list: Vec<AbortedTransaction>) -> Self {
        list.sort_by_key(|t| std::cmp::Reverse(t.first_offset));
        AbortedTransactions { pending: list, open: Vec::new() }
    }

    /// Whether `batch`'s records should be delivered. Call for every batch, in order.
    pub fn retain(&mut self, batch: &Batch) -> bool {
        if batch.producer_id >= 0 {
            while let Some(t) = self.pending.last().copied() {
                if t.first_offset > batch.last_offset {
                    break;
                }
                self.pending.pop();
                if !self.open.contains(&t.producer_id) {
                    self.open.push(t.producer_id);
                }
            }
            if batch.is_control {
                if batch.control_marker() == Some(ControlMarker::Abort) {
                    self.open.retain(|p| *p != batch.producer_id);
                }
            } else if batch.is_transactional && self.open.contains(&batch.producer_id) {
                return false;
            }
        }
        !batch.is_control
    }
}
