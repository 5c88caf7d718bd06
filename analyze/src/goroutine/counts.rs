//! Compact counts per key (a goroutine's blocked time per wait reason, its wake-ups per
//! waker): inline while tiny, a vector while small, a hash map when large.

use rustc_hash::FxHashMap;
use serde::Serialize;

/// A map that is a vector while small: most goroutines have a handful of wait reasons and
/// wakers (millions of goroutines make a tree map's node each expensive, and even a vector's
/// allocation shows), while a few (an accept loop woken by every handler) have millions,
/// which a hash map handles. Up to two entries live inline, keys apart from counts (a
/// one-byte key takes no padding), and the rarer vector and hash map are boxed, so that a
/// goroutine's wait-reason counts take 24 bytes, not 40.
#[derive(Clone, Debug)]
pub(crate) enum Counts<K: std::hash::Hash + Eq> {
    Inline(u8, [K; INLINE], [u64; INLINE]),
    // Boxed on purpose: a bare Vec would make every goroutine's counts 8 bytes larger.
    #[allow(clippy::box_collection)]
    Small(Box<Vec<(K, u64)>>),
    Big(Box<FxHashMap<K, u64>>),
}

const INLINE: usize = 2;

impl<K: std::hash::Hash + Eq + Copy + Default> Default for Counts<K> {
    fn default() -> Self {
        Counts::Inline(0, [K::default(); INLINE], [0; INLINE])
    }
}

const SMALL: usize = 16;

impl<K: std::hash::Hash + Eq + Copy + Ord + Default> Counts<K> {
    /// Adds `n` to the count of `k`.
    #[inline]
    pub(crate) fn add(&mut self, k: K, n: u64) {
        match self {
            Counts::Inline(len, ks, ns) => {
                let l = *len as usize;
                if let Some(j) = (0..l).find(|&j| ks[j] == k) {
                    ns[j] += n;
                } else if l < INLINE {
                    ks[l] = k;
                    ns[l] = n;
                    *len += 1;
                } else {
                    let mut v = Vec::with_capacity(INLINE * 2);
                    v.extend(ks.iter().copied().zip(ns.iter().copied()));
                    v.push((k, n));
                    *self = Counts::Small(Box::new(v));
                }
            }
            Counts::Small(v) => {
                if let Some(e) = v.iter_mut().find(|e| e.0 == k) {
                    e.1 += n;
                } else if v.len() < SMALL {
                    v.push((k, n));
                } else {
                    let mut m: FxHashMap<K, u64> = v.drain(..).collect();
                    m.insert(k, n);
                    *self = Counts::Big(Box::new(m));
                }
            }
            Counts::Big(m) => *m.entry(k).or_insert(0) += n,
        }
    }

    /// The count of `k` (the analysis only adds and lists; tests look counts up).
    #[cfg(test)]
    pub(crate) fn get(&self, k: &K) -> Option<&u64> {
        match self {
            Counts::Inline(len, ks, ns) => {
                (0..*len as usize).find(|&j| ks[j] == *k).map(|j| &ns[j])
            }
            Counts::Small(v) => v.iter().find(|e| e.0 == *k).map(|e| &e.1),
            Counts::Big(m) => m.get(k),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Counts::Inline(len, _, _) => *len as usize,
            Counts::Small(v) => v.len(),
            Counts::Big(m) => m.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sum of the counts.
    pub(crate) fn total(&self) -> u64 {
        match self {
            Counts::Inline(len, _, ns) => ns[..*len as usize].iter().sum(),
            Counts::Small(v) => v.iter().map(|e| e.1).sum(),
            Counts::Big(m) => m.values().sum(),
        }
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &u64)> {
        let mut v: Vec<(&K, &u64)> = match self {
            Counts::Inline(len, ks, ns) => ks[..*len as usize].iter().zip(ns.iter()).collect(),
            Counts::Small(v) => v.iter().map(|e| (&e.0, &e.1)).collect(),
            Counts::Big(m) => m.iter().collect(),
        };
        v.sort_by_key(|e| *e.0);
        v.into_iter()
    }

    /// Calls `f` for every entry, in no particular order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(K, u64)) {
        match self {
            Counts::Inline(len, ks, ns) => {
                for j in 0..*len as usize {
                    f(ks[j], ns[j]);
                }
            }
            Counts::Small(v) => v.iter().for_each(|e| f(e.0, e.1)),
            Counts::Big(m) => m.iter().for_each(|(k, n)| f(*k, *n)),
        }
    }

    /// Calls `f` for every entry in key order, without allocating for small maps.
    pub(crate) fn for_each_sorted(&self, mut f: impl FnMut(K, u64)) {
        match self {
            Counts::Inline(len, ks, ns) => {
                let l = *len as usize;
                if l == 2 && ks[1] < ks[0] {
                    f(ks[1], ns[1]);
                    f(ks[0], ns[0]);
                } else {
                    for j in 0..l {
                        f(ks[j], ns[j]);
                    }
                }
            }
            _ => {
                for (k, n) in self.iter() {
                    f(*k, *n);
                }
            }
        }
    }
}

impl<K: std::hash::Hash + Eq + Copy + Ord + Default> PartialEq for Counts<K> {
    fn eq(&self, o: &Self) -> bool {
        self.len() == o.len() && self.iter().eq(o.iter())
    }
}

impl<K: std::hash::Hash + Eq + Copy + Ord + Default> Eq for Counts<K> {}

/// A map in key order (integer keys are JSON strings: `{"12": 3}`).
impl<K: std::hash::Hash + Eq + Copy + Ord + Default + Serialize> Serialize for Counts<K> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.len()))?;
        let mut r = Ok(());
        self.for_each_sorted(|k, n| {
            if r.is_ok() {
                r = m.serialize_entry(&k, &n);
            }
        });
        r?;
        m.end()
    }
}
