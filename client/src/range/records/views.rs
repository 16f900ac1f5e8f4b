//! [`PartitionRecords::for_each_view`]: a range's records as views that borrow from
//! their fetched chunk, with no refcount touched per record.

use ferrokafka_protocol::records::RecordView;

use super::{Cursor, Judged, PartitionRecords};
use crate::error::Result;

impl PartitionRecords {
    /// Calls `f` with each remaining record of the range, in offset order, as a
    /// [`RecordView`] borrowing from the fetched chunk; returns how many it handed out.
    ///
    /// Nothing is allocated or reference-counted per record, where each owned
    /// [`Record`](ferrokafka_protocol::records::Record) of [`next`](Self::next) costs
    /// two refcount updates. A view lives for the call of `f`; keep a key or value past
    /// it with [`RecordView::key_bytes`] / [`RecordView::value_bytes`] (no copy) or
    /// [`RecordView::to_record`].
    ///
    /// The range's rules are [`next`](Self::next)'s: never past `until`, a gap in the
    /// offsets is an error unless allowed, and what is left of the last chunk goes to
    /// the [`keep_remainder_in`](Self::keep_remainder_in) sink. It awaits only between
    /// chunks. It may follow calls of `next` on the same range, and after an error (or a
    /// panic in `f`) the range is over (`next` returns `None`).
    ///
    /// Spark's `iter.foreach { record => … }` over a `KafkaRDD` partition, without the
    /// per-record `ConsumerRecord`:
    ///
    /// ```no_run
    /// # async fn f(mut p: ferrokafka_client::range::PartitionRecords) -> ferrokafka_client::Result<()> {
    /// let mut bytes = 0;
    /// let n = p.for_each_view(|r| bytes += r.value().map_or(0, <[u8]>::len)).await?;
    /// println!("{n} records, {bytes} value bytes");
    /// # Ok(()) }
    /// ```
    pub async fn for_each_view<F>(&mut self, mut f: F) -> Result<u64>
    where
        F: FnMut(RecordView<'_>),
    {
        let mut n = 0;
        loop {
            if self.finished {
                return Ok(n);
            }
            if self.complete() {
                self.finish();
                return Ok(n);
            }
            if let Some(cur) = self.current.take() {
                // Should `f` panic mid-chunk, the range is over: read on, it would
                // miss the rest of this chunk.
                self.finished = true;
                if !self.walk(cur, &mut f, &mut n)? {
                    self.finished = false;
                }
                continue;
            }
            if !std::future::poll_fn(|cx| self.poll_chunk(cx)).await? {
                return Ok(n);
            }
        }
    }

    /// Hands `f` the records of a chunk; whether the range finished. At the range's end
    /// the cursor is put back, positioned at the first record not handed out.
    fn walk<F>(&mut self, mut cur: Cursor, f: &mut F, n: &mut u64) -> Result<bool>
    where
        F: FnMut(RecordView<'_>),
    {
        // A batch that `next` began (or looked into) is walked again from its start,
        // skipping what is below the position, as its owned iterator would have.
        let first = if cur.records.is_some() || cur.peeked.is_some() { cur.batch - 1 } else { cur.batch };
        cur.records = None;
        cur.peeked = None;
        for i in first..cur.chunk.batches.len() {
            let stop = {
                let mut stop = None;
                for v in cur.chunk.batches[i].views_from(cur.chunk.start) {
                    let v = v.map_err(|source| self.corrupt(source))?;
                    match self.judge(v.offset) {
                        Judged::Skip => continue,
                        Judged::Take => {
                            f(v);
                            *n += 1;
                        }
                        Judged::Past => {
                            stop = Some(v.offset);
                            break;
                        }
                        Judged::Gap(e) => return Err(e),
                    }
                    if self.complete() {
                        stop = Some(self.expected);
                        break;
                    }
                }
                stop
            };
            if let Some(at) = stop {
                cur.records = Some(cur.chunk.batches[i].records_from(at.max(cur.chunk.start)));
                cur.batch = i + 1;
                self.current = Some(cur);
                self.finish();
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests;
