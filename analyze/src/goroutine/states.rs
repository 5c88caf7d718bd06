//! A goroutine's states stored compactly: 24 bytes a state ([`Packed`]) instead of 48, the
//! ends implicit, read back as [`State`] values.

use super::state::{Cause, State, StateKind};
use crate::capture_set::Ns;

/// A [`State`] as stored: 24 bytes instead of 48 (tens of millions of them in a large
/// capture). The end is implicit: states tile a goroutine's life, so a state ends where the
/// next one starts, and the last one where [`States::end`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Packed {
    start: Ns,
    /// Runnable and woken: the waker's goid. Otherwise tid | stack << 32.
    x: u64,
    kind: u8,
    reason: u8,
    /// Bit 0: `reason` is known; bits 1..4: the cause.
    flags: u8,
}

const CAUSE_CREATED: u8 = 0;
const CAUSE_WOKEN: u8 = 1;
const CAUSE_PREEMPTED: u8 = 2;
const CAUSE_YIELDED: u8 = 3;
const CAUSE_UNKNOWN: u8 = 4;
const CAUSE_SNAPSHOT: u8 = 5;
const CAUSE_LOST: u8 = 6;

const KINDS: [StateKind; 6] = [
    StateKind::Running,
    StateKind::Runnable,
    StateKind::Blocked,
    StateKind::Syscall,
    StateKind::OffCpu,
    StateKind::Unknown,
];

/// `Packed::kind` of [`Packed::NONE`].
const NO_KIND: u8 = u8::MAX;

impl Packed {
    /// No state (what [`Goroutine::last`](super::Goroutine::last) holds before the first).
    pub(super) const NONE: Packed = Packed {
        start: 0,
        x: 0,
        kind: NO_KIND,
        reason: 0,
        flags: 0,
    };

    #[inline]
    pub(super) fn pack(s: &State) -> Packed {
        let (cause, x) = match s.cause {
            Cause::Created => (CAUSE_CREATED, 0),
            // Only runnable states have a cause other than Unknown, and those have neither a
            // thread nor a stack (see `Builder::build`), so the waker can take their place.
            Cause::Woken(w) => (CAUSE_WOKEN, w),
            Cause::Preempted => (CAUSE_PREEMPTED, 0),
            Cause::Yielded => (CAUSE_YIELDED, 0),
            Cause::Unknown => (CAUSE_UNKNOWN, 0),
            Cause::Snapshot => (CAUSE_SNAPSHOT, 0),
            Cause::Lost => (CAUSE_LOST, 0),
        };
        debug_assert!(cause != CAUSE_WOKEN || (s.tid == 0 && s.stack == 0));
        let x = if cause == CAUSE_WOKEN {
            x
        } else {
            s.tid as u64 | (s.stack as u64) << 32
        };
        Packed {
            start: s.start,
            x,
            kind: s.kind as u8,
            reason: s.reason.unwrap_or(0),
            flags: s.reason.is_some() as u8 | cause << 1,
        }
    }

    /// Whether this is [`Packed::NONE`].
    #[inline]
    pub(super) fn is_none(&self) -> bool {
        self.kind == NO_KIND
    }

    #[inline]
    pub(super) fn unpack(&self, end: Ns) -> State {
        let cause = match self.flags >> 1 {
            CAUSE_CREATED => Cause::Created,
            CAUSE_WOKEN => Cause::Woken(self.x),
            CAUSE_PREEMPTED => Cause::Preempted,
            CAUSE_YIELDED => Cause::Yielded,
            CAUSE_SNAPSHOT => Cause::Snapshot,
            CAUSE_LOST => Cause::Lost,
            _ => Cause::Unknown,
        };
        let (tid, stack) = if self.flags >> 1 == CAUSE_WOKEN {
            (0, 0)
        } else {
            (self.x as u32, (self.x >> 32) as u32)
        };
        State {
            start: self.start,
            end,
            kind: KINDS[self.kind as usize],
            tid,
            reason: (self.flags & 1 != 0).then_some(self.reason),
            stack,
            cause,
        }
    }
}

/// A goroutine's states in time order, stored compactly (`Packed`); read them as [`State`]
/// values with `States::get`, `States::iter` and friends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct States {
    /// Exactly as many as there are (built in a reused scratch vector, then copied into one
    /// allocation of the right size: no growth, no spare capacity).
    v: Box<[Packed]>,
    /// The end of the last state (set even when the states are not kept: it is the end of
    /// [`Goroutine::last`](super::Goroutine::last)).
    pub(super) end: Ns,
}

impl States {
    pub(super) fn from_packed(v: &[Packed], end: Ns) -> States {
        States { v: v.into(), end }
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    #[inline]
    fn end_of(&self, i: usize) -> Ns {
        match self.v.get(i + 1) {
            Some(n) => n.start,
            None => self.end,
        }
    }

    /// The state at `i`, if any.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<State> {
        self.v.get(i).map(|p| p.unpack(self.end_of(i)))
    }

    /// The state at `i` (panics past the end, like indexing a slice).
    #[inline]
    pub(crate) fn at(&self, i: usize) -> State {
        self.v[i].unpack(self.end_of(i))
    }

    pub(crate) fn last(&self) -> Option<State> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// Every state, in time order.
    pub(crate) fn iter(&self) -> StatesIter<'_> {
        self.iter_from(0)
    }

    /// The states from index `i` on.
    pub(crate) fn iter_from(&self, i: usize) -> StatesIter<'_> {
        StatesIter {
            s: self,
            i: i.min(self.len()),
            j: self.len(),
        }
    }

    /// The index of the first state for which `pred` is false, assuming it is true for a
    /// prefix and false after it (as [`slice::partition_point`]).
    pub(crate) fn partition_point(&self, mut pred: impl FnMut(&State) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(&self.at(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// (start, end) of the states of this kind, in time order (without unpacking the rest).
    pub(crate) fn intervals(&self, kind: StateKind) -> impl Iterator<Item = (Ns, Ns)> + '_ {
        let k = kind as u8;
        (0..self.v.len())
            .filter(move |&i| self.v[i].kind == k)
            .map(|i| (self.v[i].start, self.end_of(i)))
    }
}

/// Iterates over [`States`] by value.
#[derive(Clone)]
pub struct StatesIter<'a> {
    s: &'a States,
    i: usize,
    j: usize,
}

impl Iterator for StatesIter<'_> {
    type Item = State;

    #[inline]
    fn next(&mut self) -> Option<State> {
        if self.i >= self.j {
            return None;
        }
        let s = self.s.at(self.i);
        self.i += 1;
        Some(s)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.j - self.i;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for StatesIter<'_> {
    fn next_back(&mut self) -> Option<State> {
        if self.i >= self.j {
            return None;
        }
        self.j -= 1;
        Some(self.s.at(self.j))
    }
}

impl ExactSizeIterator for StatesIter<'_> {}

impl<'a> IntoIterator for &'a States {
    type Item = State;
    type IntoIter = StatesIter<'a>;
    fn into_iter(self) -> StatesIter<'a> {
        self.iter()
    }
}
