//! Goroutine key -> goroutine, for the lookups the critical-path walks make constantly.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use crate::goroutine::{Goroutine, GoroutineKey};

/// Goroutine key -> index in a slice of goroutines: an open-addressing table of indices only
/// (4 bytes a slot instead of a map's 24-byte entries); a probe compares the goroutine's own
/// key, which the caller reads next anyway.
pub(super) struct KeyIndex {
    /// A power of two of them; a key's first slot is the low bits of its hash (where
    /// `FxHasher` puts the bits that vary most).
    slots: Vec<u32>,
}

impl KeyIndex {
    const EMPTY: u32 = u32::MAX;

    fn first_slot(&self, key: &GoroutineKey) -> usize {
        FxBuildHasher.hash_one(key) as usize & (self.slots.len() - 1)
    }

    pub(super) fn new(gs: &[Goroutine]) -> KeyIndex {
        // At most 2/3 full.
        let n = (gs.len() * 3 / 2 + 1).next_power_of_two().max(2);
        let mut ix = KeyIndex {
            slots: vec![Self::EMPTY; n],
        };
        let mask = n - 1;
        for (i, g) in gs.iter().enumerate() {
            let mut p = ix.first_slot(&g.key);
            while ix.slots[p] != Self::EMPTY {
                p = (p + 1) & mask;
            }
            ix.slots[p] = i as u32;
        }
        ix
    }

    pub(super) fn get<'g>(&self, gs: &'g [Goroutine], key: &GoroutineKey) -> Option<&'g Goroutine> {
        let mask = self.slots.len() - 1;
        let mut p = self.first_slot(key);
        loop {
            let i = self.slots[p];
            if i == Self::EMPTY {
                return None;
            }
            let g = &gs[i as usize];
            if g.key == *key {
                return Some(g);
            }
            p = (p + 1) & mask;
        }
    }
}
