//! When the kernel had descheduled the targets' OS threads: off-CPU intervals per thread,
//! paired from ThreadOff/ThreadOn events, and the lookups the state machine makes in them to
//! split a goroutine's running time.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::capture_set::{CaptureSet, Ns};

/// Off-CPU intervals of OS threads, per (file, target, tid), sorted and disjoint.
pub(crate) type ThreadOff = FxHashMap<(u32, u32, u32), Vec<(Ns, Ns)>>;

/// Pairs each thread's (time, switched on) events into off-CPU intervals; one still open at
/// the end lasts until its capture's end.
pub(crate) fn intervals(
    set: &CaptureSet,
    events: FxHashMap<(u32, u32, u32), Vec<(Ns, bool)>>,
) -> ThreadOff {
    events
        .into_par_iter()
        .map(|(k, mut v)| {
            v.sort_by_key(|x| x.0);
            let end = set.files[k.0 as usize].end;
            let mut iv = Vec::new();
            let mut off: Option<Ns> = None;
            for (t, on) in v {
                match (on, off) {
                    (false, None) => off = Some(t),
                    (true, Some(a)) => {
                        iv.push((a, t));
                        off = None;
                    }
                    _ => {}
                }
            }
            if let Some(a) = off {
                iv.push((a, end.max(a)));
            }
            (k, iv)
        })
        .collect()
}

/// Where the last lookups in a few threads' off-CPU intervals ended: goroutines are built in
/// goid order, roughly creation order, so the next lookup is usually close by.
#[derive(Default)]
pub(crate) struct Hints<'a>([Hint<'a>; HINTS]);

/// A thread's off-CPU intervals and the index a lookup in them ended at.
#[derive(Clone, Copy, Default)]
struct Hint<'a> {
    key: (u32, u32, u32),
    iv: &'a [(Ns, Ns)],
    at: usize,
}

const HINTS: usize = 4;

impl<'a> Hints<'a> {
    /// The off-CPU intervals of thread `key` and the index of the first one that ends after
    /// `t`; None when the thread was never descheduled.
    pub(crate) fn find(
        &mut self,
        threads: &'a ThreadOff,
        key: (u32, u32, u32),
        t: Ns,
    ) -> Option<(&'a [(Ns, Ns)], usize)> {
        let hints = &mut self.0;
        let h = match hints.iter().position(|h| h.key == key) {
            Some(h) => h,
            None => {
                let iv = threads.get(&key)?;
                // Forget the least recently used.
                hints.rotate_right(1);
                hints[0] = Hint { key, iv, at: 0 };
                0
            }
        };
        let iv = hints[h].iv;
        let i = first_ending_after(iv, t, hints[h].at);
        hints[h].at = i;
        Some((iv, i))
    }
}

/// The first interval of `iv` (sorted, disjoint) that ends after `t`, searching outwards
/// from `hint`.
fn first_ending_after(iv: &[(Ns, Ns)], t: Ns, hint: usize) -> usize {
    let n = iv.len();
    let h = hint.min(n);
    let (lo, hi) = if h < n && iv[h].1 <= t {
        // Forwards: the answer is past h.
        let mut step = 1;
        let mut lo = h + 1;
        loop {
            let j = h + step;
            if j >= n {
                break (lo, n);
            }
            if iv[j].1 > t {
                break (lo, j);
            }
            lo = j + 1;
            step *= 2;
        }
    } else {
        // Backwards: the answer is at or before h.
        let mut step = 1;
        let mut hi = h;
        loop {
            if step > h {
                break (0, hi);
            }
            let j = h - step;
            if iv[j].1 <= t {
                break (j + 1, hi);
            }
            hi = j;
            step *= 2;
        }
    };
    lo + iv[lo..hi].partition_point(|&(_, e)| e <= t)
}
