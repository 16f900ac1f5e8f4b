//! A small non-cryptographic hasher (the Fx hash of rustc and Firefox) for maps whose
//! keys the application itself supplies, looked up once per record: the producer's
//! partition queues. SipHash (std's default, resistant to chosen keys) and its string
//! comparison were a tenth of the CLI's CPU producing 1M records.

use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap<K, V, FxBuild>`.
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// Fx: for each word, rotate, xor, multiply.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::*;
    use crate::metadata::TopicPartition;

    /// Distinct topic-partitions hash apart (a map degenerating to one bucket would
    /// still be correct, only slow: this checks it does not).
    #[test]
    fn topic_partitions_spread() {
        let build = FxBuild::default();
        let mut seen = HashSet::new();
        for t in ["a", "b", "orders", "orders-eu", "k0000001", "a-much-longer-topic-name-than-eight-bytes"] {
            for p in 0..64 {
                seen.insert(build.hash_one(TopicPartition::new(t, p)));
            }
        }
        assert_eq!(seen.len(), 6 * 64);
    }
}
