//! Decompression output buffers, reused once every record of their batch is dropped.
//!
//! A compressed batch is inflated into a buffer of its own, which its records (views
//! or `Bytes` slices) share. A fresh multi-megabyte buffer per batch costs its page
//! faults and zeroing again and again; [`OutputBuffers`] keeps a handle on the last
//! buffers it handed out and gives one back out once nobody else holds it.
//!
//! Memory: it holds at most [`MAX_HELD`] handles, on buffers of at most
//! [`MAX_POOLED`] bytes each. Each use of the pool (`take`, `keep`) lets go of released
//! buffers beyond [`MAX_IDLE`], so right after one at most 128 MiB sit idle, in
//! practice one fetch answer's worth; if every held buffer is released after the last
//! use, up to 256 MiB wait for the next. A decompressed batch keeps at most 4 times
//! its size plus 4 KiB (`decompress_into` shrinks a larger buffer). Measured
//! on 32 partitions of lz4 data, the consumer's peak RSS went down with the pool
//! (fewer fresh buffers alive at once), from 49 to 44 MiB.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

/// Handles kept on buffers handed out.
pub const MAX_HELD: usize = 64;
/// Released buffers kept for reuse: one fetch answer's compressed batches on 32
/// partitions. Fewer (8 was tried) frees most of an answer's buffers only to allocate
/// them again for the next.
pub const MAX_IDLE: usize = 32;
/// Larger buffers are never kept.
pub const MAX_POOLED: usize = 4 << 20;

/// A pool of decompression output buffers, shared by the decoders of one consumer
/// (cloning shares it). Give it to [`RecordSet::with_buffers`](super::RecordSet::with_buffers).
#[derive(Clone, Debug, Default)]
pub struct OutputBuffers {
    held: Arc<Mutex<Vec<Bytes>>>,
}

impl OutputBuffers {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// A released buffer (cleared), or an empty `Vec` when none is free.
    pub fn take(&self) -> Vec<u8> {
        Vec::from(self.take_mut())
    }

    /// [`take`](Self::take) as a `BytesMut`.
    pub fn take_mut(&self) -> BytesMut {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = None;
        let mut idle = 0;
        let mut i = 0;
        while i < held.len() {
            if !held[i].is_unique() {
                i += 1;
                continue;
            }
            if found.is_some() && idle >= MAX_IDLE {
                held.swap_remove(i);
                continue;
            }
            if found.is_none() {
                let bytes = held.swap_remove(i);
                if let Ok(mut buf) = bytes.try_into_mut() {
                    buf.clear();
                    found = Some(buf);
                }
                continue;
            }
            idle += 1;
            i += 1;
        }
        found.unwrap_or_default()
    }

    /// Keeps a handle on `buf`, whose allocation holds `capacity` bytes, to hand it
    /// out again once every other handle on it is dropped.
    pub fn keep(&self, buf: &Bytes, capacity: usize) {
        if capacity > MAX_POOLED {
            return;
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        // Released buffers beyond the idle bound are let go here too, not only when
        // one is taken.
        let mut idle = 0;
        held.retain(|b| {
            if !b.is_unique() {
                return true;
            }
            idle += 1;
            idle <= MAX_IDLE
        });
        if held.len() < MAX_HELD {
            held.push(buf.clone());
        }
    }

    /// Handles held now (in use or idle).
    pub fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
