//! Goroutine lifecycles: from the events of one goroutine to the sequence of its states.
//!
//! A goroutine is, at any moment, in one of five states ([`StateKind`]): running on an OS
//! thread, runnable (wanting a P), blocked (parked with one of Go's wait reasons), in a
//! system call, or running but with its thread descheduled by the kernel (`off_cpu`, from the
//! ThreadOff/ThreadOn events of the thread it runs on). Events move it between them:
//!
//! | event | new state |
//! |---|---|
//! | GoCreate | runnable (cause: created) |
//! | GoStart{tid} | running on tid |
//! | GoStop | runnable (preempted or yielded) |
//! | GoBlock{reason, stack} | blocked (reason, where) |
//! | GoUnblock{waker} | runnable (woken by waker; 0 = the runtime or network poller) |
//! | SyscallEnter{tid, stack} / SyscallExit{tid} | syscall / running on tid |
//! | GoExit | gone |
//!
//! Every event sets the new state whatever the previous one was, so a lost event costs one
//! wrong interval, never the rest of the goroutine (the mismatch is counted in `anomalies`).
//! A goroutine whose first event is not GoCreate existed before the capture: its state from
//! the capture start to its first event is inferred from that event (GoStart: it was
//! runnable; GoUnblock: blocked, reason unknown; SyscallExit: in a syscall; anything else:
//! running).

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use gcap_format::StackId;
use serde::Serialize;

use crate::analysis::{FastMap, IdHasher};
use crate::capture_set::{CaptureSet, LoadedCapture, Ns};

/// Identifies a goroutine within a set: which file, which target of it, which goid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GoroutineKey {
    pub file: u32,
    pub target: u32,
    pub goid: u64,
}

/// The state of a goroutine over an interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKind {
    Running,
    Runnable,
    Blocked,
    Syscall,
    /// Running, but the OS thread it runs on was descheduled by the kernel.
    OffCpu,
}

impl StateKind {
    pub const fn name(self) -> &'static str {
        match self {
            StateKind::Running => "running",
            StateKind::Runnable => "runnable",
            StateKind::Blocked => "blocked",
            StateKind::Syscall => "syscall",
            StateKind::OffCpu => "off_cpu",
        }
    }
}

/// Why a goroutine became runnable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    Created,
    /// Unblocked by this goroutine (0: the runtime, network poller or a timer).
    Woken(u64),
    Preempted,
    Yielded,
    /// Runnable before the capture started.
    Unknown,
}

impl Cause {
    pub fn describe(self) -> String {
        match self {
            Cause::Created => "created".into(),
            Cause::Woken(0) => "woken by the runtime".into(),
            Cause::Woken(g) => format!("woken by goroutine {g}"),
            Cause::Preempted => "preempted".into(),
            Cause::Yielded => "yielded".into(),
            Cause::Unknown => "before the capture".into(),
        }
    }
}

/// One interval of a goroutine's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    pub start: Ns,
    pub end: Ns,
    pub kind: StateKind,
    /// The OS thread (running, syscall, off_cpu); 0 when unknown.
    pub tid: u32,
    /// Blocked: Go's wait-reason number (None: blocked since before the capture).
    pub reason: Option<u8>,
    /// Blocked or syscall: the stack where it happened (0: none recorded).
    pub stack: StackId,
    /// Runnable: why.
    pub cause: Cause,
}

impl State {
    pub fn duration(&self) -> u64 {
        (self.end - self.start).max(0) as u64
    }
}

/// A [`State`] as stored: 24 bytes instead of 48 (tens of millions of them in a large
/// capture). The end is implicit: states tile a goroutine's life, so a state ends where the
/// next one starts, and the last one where [`States::end`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Packed {
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

const KINDS: [StateKind; 5] = [
    StateKind::Running,
    StateKind::Runnable,
    StateKind::Blocked,
    StateKind::Syscall,
    StateKind::OffCpu,
];

/// `Packed::kind` of [`Goroutine::last`] when the goroutine has no state.
const NO_KIND: u8 = u8::MAX;

impl Packed {
    const NONE: Packed = Packed {
        start: 0,
        x: 0,
        kind: NO_KIND,
        reason: 0,
        flags: 0,
    };

    #[inline]
    fn pack(s: &State) -> Packed {
        let (cause, x) = match s.cause {
            Cause::Created => (CAUSE_CREATED, 0),
            // Only runnable states have a cause other than Unknown, and those have neither a
            // thread nor a stack (see `Builder::build`), so the waker can take their place.
            Cause::Woken(w) => (CAUSE_WOKEN, w),
            Cause::Preempted => (CAUSE_PREEMPTED, 0),
            Cause::Yielded => (CAUSE_YIELDED, 0),
            Cause::Unknown => (CAUSE_UNKNOWN, 0),
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

    #[inline]
    fn unpack(&self, end: Ns) -> State {
        let cause = match self.flags >> 1 {
            CAUSE_CREATED => Cause::Created,
            CAUSE_WOKEN => Cause::Woken(self.x),
            CAUSE_PREEMPTED => Cause::Preempted,
            CAUSE_YIELDED => Cause::Yielded,
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

/// A goroutine's states in time order, stored compactly ([`Packed`]); read them as [`State`]
/// values with [`States::get`], [`States::iter`] and friends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct States {
    /// Exactly as many as there are (built in a reused scratch vector, then copied into one
    /// allocation of the right size: no growth, no spare capacity).
    v: Box<[Packed]>,
    /// The end of the last state (set even when the states are not kept: it is the end of
    /// [`Goroutine::last`]).
    end: Ns,
}

impl States {
    fn from_packed(v: &[Packed], end: Ns) -> States {
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
    pub fn get(&self, i: usize) -> Option<State> {
        self.v.get(i).map(|p| p.unpack(self.end_of(i)))
    }

    /// The state at `i` (panics past the end, like indexing a slice).
    #[inline]
    pub fn at(&self, i: usize) -> State {
        self.v[i].unpack(self.end_of(i))
    }

    pub fn first(&self) -> Option<State> {
        self.get(0)
    }

    pub fn last(&self) -> Option<State> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// Every state, in time order.
    pub fn iter(&self) -> StatesIter<'_> {
        self.iter_from(0)
    }

    /// The states from index `i` on.
    pub fn iter_from(&self, i: usize) -> StatesIter<'_> {
        StatesIter {
            s: self,
            i: i.min(self.len()),
            j: self.len(),
        }
    }

    /// The index of the first state for which `pred` is false, assuming it is true for a
    /// prefix and false after it (as [`slice::partition_point`]).
    pub fn partition_point(&self, mut pred: impl FnMut(&State) -> bool) -> usize {
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
    pub fn intervals(&self, kind: StateKind) -> impl Iterator<Item = (Ns, Ns)> + '_ {
        let k = kind as u8;
        (0..self.v.len())
            .filter(move |&i| self.v[i].kind == k)
            .map(|i| (self.v[i].start, self.end_of(i)))
    }

    /// The states as a vector.
    pub fn to_vec(&self) -> Vec<State> {
        self.iter().collect()
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

/// A symbolized name shared by every goroutine that has it: one allocation per distinct
/// name instead of one per goroutine, and "unknown" without any. Reads as a `&str`.
#[derive(Clone, Default)]
pub struct Name(Option<Arc<Box<str>>>);

impl Name {
    /// "unknown".
    pub const UNKNOWN: Name = Name(None);

    pub fn new(s: &str) -> Name {
        if s == "unknown" {
            Name(None)
        } else {
            // A thin pointer (8 bytes, not a 16-byte `Arc<str>`): two per goroutine and four
            // per span, read once per row.
            Name(Some(Arc::new(s.into())))
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_deref().map_or("unknown", |s| s)
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Name {
    fn eq(&self, o: &Name) -> bool {
        self.as_str() == o.as_str()
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, o: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Name {
    fn cmp(&self, o: &Name) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How a goroutine's record ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// It exited (GoExit).
    Exit,
    /// Its process exited.
    ProcessExit,
    /// It was still alive when the capture stopped.
    CaptureEnd,
}

/// A map that is a vector while small: most goroutines have a handful of wait reasons and
/// wakers (millions of goroutines make a tree map's node each expensive, and even a vector's
/// allocation shows), while a few (an accept loop woken by every handler) have millions,
/// which a hash map handles. Up to two entries live inline, keys apart from counts (a
/// one-byte key takes no padding), and the rarer vector and hash map are boxed, so that a
/// goroutine's wait-reason counts take 24 bytes, not 40.
#[derive(Clone, Debug)]
pub enum Counts<K: std::hash::Hash + Eq> {
    Inline(u8, [K; INLINE], [u64; INLINE]),
    Small(Box<Vec<(K, u64)>>),
    Big(Box<HashMap<K, u64, BuildHasherDefault<IdHasher>>>),
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
    pub fn add(&mut self, k: K, n: u64) {
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
                    let mut m: HashMap<K, u64, BuildHasherDefault<IdHasher>> =
                        v.drain(..).collect();
                    m.insert(k, n);
                    *self = Counts::Big(Box::new(m));
                }
            }
            Counts::Big(m) => *m.entry(k).or_insert(0) += n,
        }
    }

    pub fn get(&self, k: &K) -> Option<&u64> {
        match self {
            Counts::Inline(len, ks, ns) => {
                (0..*len as usize).find(|&j| ks[j] == *k).map(|j| &ns[j])
            }
            Counts::Small(v) => v.iter().find(|e| e.0 == *k).map(|e| &e.1),
            Counts::Big(m) => m.get(k),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Counts::Inline(len, _, _) => *len as usize,
            Counts::Small(v) => v.len(),
            Counts::Big(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn values(&self) -> Box<dyn Iterator<Item = &u64> + '_> {
        match self {
            Counts::Inline(len, _, ns) => Box::new(ns[..*len as usize].iter()),
            Counts::Small(v) => Box::new(v.iter().map(|e| &e.1)),
            Counts::Big(m) => Box::new(m.values()),
        }
    }

    /// The sum of the counts.
    pub fn total(&self) -> u64 {
        match self {
            Counts::Inline(len, _, ns) => ns[..*len as usize].iter().sum(),
            Counts::Small(v) => v.iter().map(|e| e.1).sum(),
            Counts::Big(m) => m.values().sum(),
        }
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &u64)> {
        let mut v: Vec<(&K, &u64)> = match self {
            Counts::Inline(len, ks, ns) => ks[..*len as usize].iter().zip(ns.iter()).collect(),
            Counts::Small(v) => v.iter().map(|e| (&e.0, &e.1)).collect(),
            Counts::Big(m) => m.iter().collect(),
        };
        v.sort_by_key(|e| *e.0);
        v.into_iter()
    }

    /// Calls `f` for every entry, in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(K, u64)) {
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
    pub fn for_each_sorted(&self, mut f: impl FnMut(K, u64)) {
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

/// Time per state, wake-ups per waker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub running_ns: u64,
    pub runnable_ns: u64,
    pub syscall_ns: u64,
    pub off_cpu_ns: u64,
    /// Blocked time per wait-reason number (None: blocked since before the capture).
    pub blocked_ns: Counts<Option<u8>>,
    /// Wake-ups per waking goroutine (0: the runtime).
    pub wakeups_by: Counts<u64>,
}

impl Totals {
    pub fn blocked_total(&self) -> u64 {
        self.blocked_ns.total()
    }
}

/// Everything reconstructed about one goroutine.
#[derive(Clone, Debug)]
pub struct Goroutine {
    pub key: GoroutineKey,
    pub pid: u32,
    pub parent: Option<u64>,
    pub creation_stack: StackId,
    pub start_stack: StackId,
    /// "pkg.Func (file.go:LINE)" of the `go` statement ("unknown" when created before the
    /// capture).
    pub creation_site: Name,
    /// The start function, e.g. "main.worker".
    pub start_function: Name,
    /// Created during the capture (at `first_seen`): see [`Goroutine::created`].
    was_created: bool,
    /// Created, or the capture start for goroutines that existed before it.
    pub first_seen: Ns,
    pub end: Ns,
    pub ended_by: EndedBy,
    /// The states in time order (empty when the analysis was run without them).
    pub states: States,
    /// The state it ended in (always kept; its end is `states.end`): see [`Goroutine::last`].
    last: Packed,
    pub totals: Totals,
    /// CPU samples: (time, tid, stack).
    pub samples: Box<[(Ns, u32, StackId)]>,
    /// Transitions that did not follow from the previous state (lost or reordered events).
    pub anomalies: u32,
}

impl Goroutine {
    /// The state it ended in (kept even when the states are not).
    #[inline]
    pub fn last(&self) -> Option<State> {
        (self.last.kind != NO_KIND).then(|| self.last.unpack(self.states.end))
    }

    /// When it was created (None: before the capture).
    #[inline]
    pub fn created(&self) -> Option<Ns> {
        self.was_created.then_some(self.first_seen)
    }

    /// When it exited (None: alive at the end of the capture or of its process).
    #[inline]
    pub fn exited(&self) -> Option<Ns> {
        (self.ended_by == EndedBy::Exit).then_some(self.end)
    }

    pub fn alive_at_end(&self) -> bool {
        self.ended_by == EndedBy::CaptureEnd
    }

    /// The contract's row, borrowed from the goroutine and its capture.
    pub fn row<'a>(&'a self, set: &'a CaptureSet) -> GoroutineRow<'a> {
        let f = &set.files[self.key.file as usize];
        GoroutineRow {
            pid: self.pid,
            goid: self.key.goid,
            parent_goid: self.parent,
            start_function: self.start_function.as_str(),
            creation_site: self.creation_site.as_str(),
            created_ns: self.created().map(|t| set.rel(t)),
            exited_ns: self.exited().map(|t| set.rel(t)),
            running_ns: self.totals.running_ns,
            runnable_ns: self.totals.runnable_ns,
            syscall_ns: self.totals.syscall_ns,
            blocked_ns: BlockedNs {
                f,
                target: self.key.target,
                counts: &self.totals.blocked_ns,
            },
            wakeups_by: &self.totals.wakeups_by,
            off_cpu_ns: self.totals.off_cpu_ns,
            blocked_total_ns: self.totals.blocked_total(),
            end_ns: set.rel(self.end),
            ended_by: self.ended_by,
            state_at_end: self.alive_at_end().then(|| {
                self.last().map_or_else(
                    || "unknown".to_string(),
                    |s| describe_state(f, self.key, &s),
                )
            }),
            samples: self.samples.len() as u64,
            anomalies: self.anomalies,
            file: &f.name,
        }
    }
}

/// The blocked-time key for goroutines blocked since before the capture started.
pub const UNKNOWN_REASON: &str = "unknown (blocked before the capture)";

/// "blocked: chan receive at main.f (f.go:3)", "running on thread 12", ...
pub fn describe_state(f: &LoadedCapture, key: GoroutineKey, s: &State) -> String {
    match s.kind {
        StateKind::Blocked => format!(
            "blocked: {} at {}",
            s.reason
                .map_or(UNKNOWN_REASON, |r| f.wait_reason(key.target, r)),
            f.where_(key.target, s.stack)
        ),
        StateKind::Syscall => format!("syscall at {}", f.where_(key.target, s.stack)),
        StateKind::Runnable => format!("runnable ({})", s.cause.describe()),
        StateKind::Running => format!("running on thread {}", s.tid),
        StateKind::OffCpu => format!("off cpu (thread {} descheduled)", s.tid),
    }
}

/// The contract's `goroutines --format json` object (extra fields after the required ones),
/// borrowed from the analysis ([`Goroutine::row`]): what the JSON, CSV, text and Parquet
/// listings are made of.
#[derive(Clone, Debug, Serialize)]
pub struct GoroutineRow<'a> {
    pub pid: u32,
    pub goid: u64,
    pub parent_goid: Option<u64>,
    pub start_function: &'a str,
    pub creation_site: &'a str,
    pub created_ns: Option<i64>,
    pub exited_ns: Option<i64>,
    pub running_ns: u64,
    pub runnable_ns: u64,
    pub syscall_ns: u64,
    pub blocked_ns: BlockedNs<'a>,
    /// Wake-ups by waking goroutine id (0: the runtime or network poller).
    pub wakeups_by: &'a Counts<u64>,
    /// Running time during which the kernel had descheduled its thread (not in running_ns).
    pub off_cpu_ns: u64,
    pub blocked_total_ns: u64,
    pub end_ns: i64,
    pub ended_by: EndedBy,
    /// For goroutines alive at the end: what they were doing.
    pub state_at_end: Option<String>,
    pub samples: u64,
    pub anomalies: u32,
    pub file: &'a str,
}

/// Blocked time by Go's name of the wait reason (the contract's `blocked_ns`), named from
/// the analysis' counts per reason number as it is listed.
#[derive(Clone, Copy)]
pub struct BlockedNs<'a> {
    f: &'a LoadedCapture,
    target: u32,
    counts: &'a Counts<Option<u8>>,
}

impl<'a> BlockedNs<'a> {
    /// Calls `f` with the (reason, ns) entries in name order, reasons with the same name
    /// summed; on the stack for the usual handful of reasons.
    fn with_entries<R>(&self, f: impl FnOnce(&[(&'a str, u64)]) -> R) -> R {
        let mut stack = [("", 0); 8];
        let mut heap = Vec::new();
        let v = if self.counts.len() <= stack.len() {
            &mut stack[..self.counts.len()]
        } else {
            heap.resize(self.counts.len(), ("", 0));
            &mut heap[..]
        };
        let mut n = 0;
        self.counts.for_each(|r, ns| {
            v[n] = (
                r.map_or(UNKNOWN_REASON, |r| self.f.wait_reason(self.target, r)),
                ns,
            );
            n += 1;
        });
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut m = 0;
        for i in 0..n {
            if m > 0 && v[m - 1].0 == v[i].0 {
                v[m - 1].1 += v[i].1;
            } else {
                v[m] = v[i];
                m += 1;
            }
        }
        f(&v[..m])
    }

    /// (reason, ns) in name order; reasons with the same name are one entry.
    pub fn entries(&self) -> Vec<(&'a str, u64)> {
        self.with_entries(<[_]>::to_vec)
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

impl Serialize for BlockedNs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.with_entries(|v| s.collect_map(v.iter().copied()))
    }
}

impl std::fmt::Debug for BlockedNs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.entries()).finish()
    }
}

/// One goroutine event as reconstruction reads it (see `analysis::Slot` for how it is stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GEv {
    pub t: Ns,
    /// Create / info: the parent; unblock: the waker.
    pub a: u64,
    /// Create / info: the creation stack; start, syscall, sample: the thread; block: the stack.
    pub b: u32,
    /// Create / info: the start stack; stop, block: the reason; syscall enter, sample: the stack.
    pub c: u32,
    pub kind: u8,
}

/// Off-CPU intervals of OS threads, per (file, target, tid), sorted and disjoint.
pub(crate) type ThreadOff = FastMap<(u32, u32, u32), Vec<(Ns, Ns)>>;

/// Symbolizes every goroutine's creation site and start function, each distinct stack once;
/// goroutines with the same one share it ([`Name`]).
pub(crate) fn symbolize(set: &CaptureSet, goroutines: &mut [Goroutine]) {
    let mut names: FastMap<(u32, u32, StackId, bool), Name> = FastMap::default();
    // Goroutines created during the capture, and those created before it whose origin gcap
    // read when it first saw them run (go_info: a start stack but no creation time).
    let known = |g: &Goroutine| g.was_created || g.start_stack != 0;
    // One pass, on one thread: the work per goroutine is a hash lookup and a reference-count
    // increment, and two threads incrementing the same few counts would fight over them.
    type Origin = (u32, u32, StackId, StackId);
    let mut last: Option<(Origin, (Name, Name))> = None;
    for g in goroutines.iter_mut().filter(|g| known(g)) {
        let (file, t) = (g.key.file, g.key.target);
        let k = (file, t, g.creation_stack, g.start_stack);
        if let Some((lk, (site, func))) = &last {
            if *lk == k {
                g.creation_site = site.clone();
                g.start_function = func.clone();
                continue;
            }
        }
        let f = &set.files[file as usize];
        let site = names
            .entry((file, t, g.creation_stack, true))
            .or_insert_with(|| Name::new(&f.site(t, g.creation_stack)))
            .clone();
        let func = names
            .entry((file, t, g.start_stack, false))
            .or_insert_with(|| Name::new(&f.function(t, g.start_stack)))
            .clone();
        g.creation_site = site.clone();
        g.start_function = func.clone();
        last = Some((k, (site, func)));
    }
}

pub(crate) struct Builder<'a> {
    pub threads: &'a ThreadOff,
    pub keep_states: bool,
    /// Where the last lookups in each thread's off-CPU intervals ended: goroutines are built
    /// in goid order, roughly creation order, so the next lookup is usually close by.
    pub hints: std::cell::RefCell<[Hint<'a>; HINTS]>,
    /// The states of the goroutine being built (reused from one goroutine to the next).
    pub scratch: std::cell::RefCell<Vec<Packed>>,
}

/// A thread's off-CPU intervals and the index a lookup in them ended at.
#[derive(Clone, Copy, Default)]
pub(crate) struct Hint<'a> {
    key: (u32, u32, u32),
    iv: &'a [(Ns, Ns)],
    at: usize,
}

pub(crate) const HINTS: usize = 4;

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

struct Open {
    kind: StateKind,
    start: Ns,
    tid: u32,
    reason: Option<u8>,
    stack: StackId,
    cause: Cause,
}

/// The kind bytes of goroutine events, as `match` patterns (decode and the state machine).
pub(crate) mod kind {
    use gcap_format::EventKind;

    pub(crate) const CREATE: u8 = EventKind::GoCreate as u8;
    pub(crate) const INFO: u8 = EventKind::GoInfo as u8;
    pub(crate) const START: u8 = EventKind::GoStart as u8;
    pub(crate) const STOP: u8 = EventKind::GoStop as u8;
    pub(crate) const BLOCK: u8 = EventKind::GoBlock as u8;
    pub(crate) const UNBLOCK: u8 = EventKind::GoUnblock as u8;
    pub(crate) const SYS_IN: u8 = EventKind::SyscallEnter as u8;
    pub(crate) const SYS_OUT: u8 = EventKind::SyscallExit as u8;
    pub(crate) const EXIT: u8 = EventKind::GoExit as u8;
    pub(crate) const SAMPLE: u8 = EventKind::CpuSample as u8;
}
use kind::*;

impl<'a> Builder<'a> {
    /// Builds a goroutine from its events (sorted by time); `len` is about how many there
    /// are (to size the states).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        &self,
        f: &LoadedCapture,
        key: GoroutineKey,
        pid: u32,
        events: impl Iterator<Item = GEv>,
        len: usize,
        proc_exit: Option<Ns>,
    ) -> Goroutine {
        let mut g = Goroutine {
            key,
            pid,
            parent: None,
            creation_stack: 0,
            start_stack: 0,
            creation_site: Name::UNKNOWN,
            start_function: Name::UNKNOWN,
            was_created: false,
            first_seen: f.start,
            end: f.end,
            ended_by: EndedBy::CaptureEnd,
            states: States::default(),
            last: Packed::NONE,
            totals: Totals::default(),
            samples: Box::default(),
            anomalies: 0,
        };
        let mut st = std::mem::take(&mut *self.scratch.borrow_mut());
        st.clear();
        if self.keep_states {
            st.reserve(len + 1);
        }
        let mut samples = Vec::new();
        // Thread splits apply only when the capture has kernel scheduling events.
        let threads = (!self.threads.is_empty()).then_some(self.threads);
        let stop_at = proc_exit.unwrap_or(Ns::MAX);
        let mut cur: Option<Open> = None;
        for (i, e) in events.enumerate() {
            if e.t > stop_at {
                break;
            }
            if g.ended_by == EndedBy::Exit {
                // Events after the goroutine exited: lost or reordered events.
                g.anomalies += 1;
                continue;
            }
            let kind = e.kind;
            if kind == INFO {
                // Facts about a goroutine created before the capture (gcap reads them when it
                // first sees it run): no state change, and no creation time.
                if !g.was_created {
                    g.parent = Some(e.a);
                    g.creation_stack = e.b;
                    g.start_stack = e.c;
                }
                if i == 0 {
                    let start = f.start.min(e.t);
                    g.first_seen = start;
                    cur = Some(open(StateKind::Runnable, start));
                }
                continue;
            }
            if i == 0 && kind != CREATE {
                // Existed before the capture: infer the state it was in.
                let start = f.start.min(e.t);
                g.first_seen = start;
                cur = match kind {
                    START => Some(open(StateKind::Runnable, start)),
                    UNBLOCK => Some(Open {
                        reason: None,
                        ..open(StateKind::Blocked, start)
                    }),
                    SYS_OUT => Some(Open {
                        tid: e.b,
                        ..open(StateKind::Syscall, start)
                    }),
                    SYS_IN | SAMPLE => Some(Open {
                        tid: e.b,
                        ..open(StateKind::Running, start)
                    }),
                    _ => Some(open(StateKind::Running, start)),
                };
            }
            let prev = cur.as_ref().map(|c| c.kind);
            let next = match kind {
                CREATE => {
                    if i == 0 {
                        g.was_created = true;
                        g.first_seen = e.t;
                        g.parent = Some(e.a);
                        g.creation_stack = e.b;
                        g.start_stack = e.c;
                        Some(Open {
                            cause: Cause::Created,
                            ..open(StateKind::Runnable, e.t)
                        })
                    } else {
                        g.anomalies += 1;
                        continue;
                    }
                }
                START => {
                    if prev != Some(StateKind::Runnable) {
                        g.anomalies += 1;
                    }
                    Some(Open {
                        tid: e.b,
                        ..open(StateKind::Running, e.t)
                    })
                }
                STOP => {
                    if prev != Some(StateKind::Running) {
                        g.anomalies += 1;
                    }
                    Some(Open {
                        cause: if e.c == gcap_format::stop_reason::YIELD as u32 {
                            Cause::Yielded
                        } else {
                            Cause::Preempted
                        },
                        ..open(StateKind::Runnable, e.t)
                    })
                }
                BLOCK => {
                    if prev != Some(StateKind::Running) {
                        g.anomalies += 1;
                    }
                    Some(Open {
                        reason: Some(e.c as u8),
                        stack: e.b,
                        ..open(StateKind::Blocked, e.t)
                    })
                }
                UNBLOCK => {
                    if prev != Some(StateKind::Blocked) {
                        g.anomalies += 1;
                    }
                    g.totals.wakeups_by.add(e.a, 1);
                    Some(Open {
                        cause: Cause::Woken(e.a),
                        ..open(StateKind::Runnable, e.t)
                    })
                }
                SYS_IN => {
                    if prev != Some(StateKind::Running) {
                        g.anomalies += 1;
                    }
                    Some(Open {
                        tid: e.b,
                        stack: e.c,
                        ..open(StateKind::Syscall, e.t)
                    })
                }
                SYS_OUT => {
                    if prev != Some(StateKind::Syscall) {
                        g.anomalies += 1;
                    }
                    Some(Open {
                        tid: e.b,
                        ..open(StateKind::Running, e.t)
                    })
                }
                EXIT => {
                    g.end = e.t;
                    g.ended_by = EndedBy::Exit;
                    None
                }
                SAMPLE => {
                    samples.push((e.t, e.b, e.c));
                    continue;
                }
                _ => continue,
            };
            if let Some(c) = cur.take() {
                self.close(&mut g, &mut st, threads, c, e.t);
            }
            cur = next;
        }
        if g.ended_by != EndedBy::Exit {
            if let Some(t) = proc_exit {
                g.end = t;
                g.ended_by = EndedBy::ProcessExit;
            }
        }
        if let Some(c) = cur.take() {
            let end = g.end;
            self.close(&mut g, &mut st, threads, c, end);
        }
        if !st.is_empty() {
            g.states = States::from_packed(&st, g.states.end);
        }
        *self.scratch.borrow_mut() = st;
        g.samples = samples.into_boxed_slice();
        g
    }

    #[inline]
    fn close(
        &self,
        g: &mut Goroutine,
        st: &mut Vec<Packed>,
        threads: Option<&ThreadOff>,
        c: Open,
        end: Ns,
    ) {
        let s = State {
            start: c.start,
            end: end.max(c.start),
            kind: c.kind,
            tid: c.tid,
            reason: c.reason,
            stack: c.stack,
            cause: c.cause,
        };
        if let (StateKind::Running, Some(_)) = (s.kind, threads) {
            if s.tid != 0 && self.split(g, st, s) {
                return;
            }
        }
        self.push(g, st, s);
    }

    /// Splits a running state where its thread was descheduled; false when it never was.
    fn split(&self, g: &mut Goroutine, st: &mut Vec<Packed>, s: State) -> bool {
        let key = (g.key.file, g.key.target, s.tid);
        let mut hints = self.hints.borrow_mut();
        let h = match hints.iter().position(|h| h.key == key) {
            Some(h) => h,
            None => {
                let Some(iv) = self.threads.get(&key) else {
                    return false;
                };
                // Forget the least recently used.
                hints.rotate_right(1);
                hints[0] = Hint { key, iv, at: 0 };
                0
            }
        };
        let iv = hints[h].iv;
        let mut i = first_ending_after(iv, s.start, hints[h].at);
        hints[h].at = i;
        drop(hints);
        let mut at = s.start;
        let mut split = false;
        while i < iv.len() && iv[i].0 < s.end {
            let (a, b) = (iv[i].0.max(s.start), iv[i].1.min(s.end));
            if b > a {
                if a > at {
                    self.push(
                        g,
                        st,
                        State {
                            start: at,
                            end: a,
                            ..s
                        },
                    );
                }
                self.push(
                    g,
                    st,
                    State {
                        start: a,
                        end: b,
                        kind: StateKind::OffCpu,
                        ..s
                    },
                );
                at = b;
                split = true;
            }
            i += 1;
        }
        if split && at < s.end {
            self.push(g, st, State { start: at, ..s });
        }
        split
    }

    #[inline]
    fn push(&self, g: &mut Goroutine, st: &mut Vec<Packed>, s: State) {
        let d = s.duration();
        match s.kind {
            StateKind::Running => g.totals.running_ns += d,
            StateKind::Runnable => g.totals.runnable_ns += d,
            StateKind::Syscall => g.totals.syscall_ns += d,
            StateKind::OffCpu => g.totals.off_cpu_ns += d,
            StateKind::Blocked => g.totals.blocked_ns.add(s.reason, d),
        }
        // The states tile the goroutine's life: each starts where the previous one ended.
        debug_assert!(g.last.kind == NO_KIND || g.states.end == s.start);
        let p = Packed::pack(&s);
        if self.keep_states {
            st.push(p);
        }
        g.last = p;
        g.states.end = s.end;
    }
}

fn open(kind: StateKind, start: Ns) -> Open {
    Open {
        kind,
        start,
        tid: 0,
        reason: None,
        stack: 0,
        cause: Cause::Unknown,
    }
}

/// When a goroutine alive at the end counts as leaked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakParams {
    /// Blocked at least this long at the end of the capture (default 1 s) ...
    pub min_blocked_ns: u64,
    /// ... and for at least this fraction of its capture's duration (default 0.5).
    pub min_fraction: f64,
}

impl Default for LeakParams {
    fn default() -> Self {
        LeakParams {
            min_blocked_ns: 1_000_000_000,
            min_fraction: 0.5,
        }
    }
}

/// Goroutines alive at the end, blocked for long, grouped by creation site and place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeakSuspect {
    pub pid: u32,
    pub creation_site: String,
    pub start_function: String,
    pub count: u64,
    /// Go's wait reason, e.g. "chan receive".
    pub blocked_on: String,
    /// Where they block: "pkg.Func (file.go:LINE)".
    #[serde(rename = "where")]
    pub where_: String,
    /// The longest and shortest time blocked at the end.
    pub max_blocked_ns: u64,
    pub min_blocked_ns: u64,
    /// Up to 10 of their goroutine ids.
    pub goids: Vec<u64>,
}

/// Leak suspects, most numerous first.
pub fn leak_suspects(
    set: &CaptureSet,
    goroutines: &[Goroutine],
    params: &LeakParams,
) -> Vec<LeakSuspect> {
    let mut groups: BTreeMap<(u32, String, String, String), LeakSuspect> = BTreeMap::new();
    for g in goroutines {
        let Some(last) = g.last() else { continue };
        if !g.alive_at_end() || last.kind != StateKind::Blocked {
            continue;
        }
        let f = &set.files[g.key.file as usize];
        let span = (f.end - f.start).max(0) as f64;
        let blocked = last.duration();
        if blocked < params.min_blocked_ns || (blocked as f64) < params.min_fraction * span {
            continue;
        }
        let reason = last.reason.map_or_else(
            || UNKNOWN_REASON.to_string(),
            |r| f.wait_reason(g.key.target, r).to_string(),
        );
        let where_ = f.where_(g.key.target, last.stack);
        let e = groups
            .entry((
                g.pid,
                g.creation_site.to_string(),
                reason.clone(),
                where_.clone(),
            ))
            .or_insert_with(|| LeakSuspect {
                pid: g.pid,
                creation_site: g.creation_site.to_string(),
                start_function: g.start_function.to_string(),
                count: 0,
                blocked_on: reason,
                where_,
                max_blocked_ns: 0,
                min_blocked_ns: u64::MAX,
                goids: Vec::new(),
            });
        e.count += 1;
        e.max_blocked_ns = e.max_blocked_ns.max(blocked);
        e.min_blocked_ns = e.min_blocked_ns.min(blocked);
        if e.goids.len() < 10 {
            e.goids.push(g.key.goid);
        }
    }
    let mut v: Vec<LeakSuspect> = groups.into_values().collect();
    v.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.creation_site.cmp(&b.creation_site))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{scenario, CaptureBuilder};
    use crate::{Analysis, CaptureSet, Options};
    use gcap_format::EventData;

    #[test]
    fn record_sizes() {
        // Hundreds of thousands of goroutines per capture, tens of millions of states: every
        // byte is memory the kernel zeroes on first touch.
        eprintln!(
            "Goroutine {} Totals {} Counts<Option<u8>> {} Counts<u64> {} Name {} States {}",
            std::mem::size_of::<Goroutine>(),
            std::mem::size_of::<Totals>(),
            std::mem::size_of::<Counts<Option<u8>>>(),
            std::mem::size_of::<Counts<u64>>(),
            std::mem::size_of::<Name>(),
            std::mem::size_of::<States>(),
        );
        assert_eq!(std::mem::size_of::<Packed>(), 24);
        assert_eq!(std::mem::size_of::<Name>(), 8);
        assert_eq!(std::mem::size_of::<Counts<Option<u8>>>(), 24);
        assert!(std::mem::size_of::<Goroutine>() <= 256);
    }

    fn analyse(bytes: Vec<u8>) -> (CaptureSet, Analysis) {
        let set = CaptureSet::from_bytes("t.gcap", bytes).unwrap();
        let a = Analysis::run(&set, &Options::default());
        (set, a)
    }

    fn get(a: &Analysis, goid: u64) -> &Goroutine {
        a.goroutines.iter().find(|g| g.key.goid == goid).unwrap()
    }

    #[test]
    fn lifecycle_known_answers() {
        for reverse in [false, true] {
            let (set, a) = analyse(scenario::lifecycle(reverse));
            assert_eq!(a.goroutines.len(), 3, "reverse={reverse}");
            let g1 = get(&a, 1);
            assert_eq!(g1.created(), None);
            assert_eq!(g1.parent, None);
            assert_eq!(g1.totals.runnable_ns, 70);
            assert_eq!(g1.totals.running_ns, 380);
            assert_eq!(g1.totals.off_cpu_ns, 50);
            assert_eq!(g1.totals.blocked_ns.get(&Some(19)), Some(&500));
            assert_eq!(g1.totals.wakeups_by.get(&3), Some(&1));
            assert!(g1.alive_at_end());
            assert_eq!(g1.anomalies, 0);
            let g2 = get(&a, 2);
            assert_eq!(g2.parent, Some(1));
            assert_eq!(g2.creation_site, "main.main (main.go:10)");
            assert_eq!(g2.start_function, "main.worker");
            assert_eq!((g2.totals.runnable_ns, g2.totals.running_ns), (110, 210));
            assert_eq!(g2.exited().map(|t| set.rel(t)), Some(420));
            let g3 = get(&a, 3);
            assert_eq!(g3.totals.runnable_ns, 200);
            assert_eq!(g3.totals.running_ns, 170);
            assert_eq!(g3.totals.syscall_ns, 100);
            assert_eq!(g3.totals.blocked_ns.get(&Some(22)), Some(&90));
            assert_eq!(g3.totals.wakeups_by.get(&2), Some(&1));
            assert_eq!(g3.anomalies, 0);

            let row = g3.row(&set);
            assert_eq!(
                serde_json::to_value(row.blocked_ns).unwrap(),
                serde_json::json!({"sync.Mutex.Lock": 90})
            );
            assert_eq!(row.created_ns, Some(150));
            assert_eq!(row.exited_ns, Some(710));
            let blocked = g3
                .states
                .iter()
                .find(|s| s.kind == StateKind::Blocked)
                .unwrap();
            assert_eq!(
                set.files[0].where_(0, blocked.stack),
                "main.worker (main.go:25)"
            );
            assert_eq!(
                describe_state(&set.files[0], g3.key, &blocked),
                "blocked: sync.Mutex.Lock at main.worker (main.go:25)"
            );
            // The runnable state after the unblock names its waker.
            assert!(g3
                .states
                .iter()
                .any(|s| s.kind == StateKind::Runnable && s.cause == Cause::Woken(2)));
            // States tile the lifetime.
            for g in &a.goroutines {
                let mut at = g.first_seen;
                for s in &g.states {
                    assert_eq!(s.start, at, "goroutine {}", g.key.goid);
                    at = s.end;
                }
                assert_eq!(at, g.end);
            }
        }
    }

    #[test]
    fn off_cpu_splits_running() {
        let (_, a) = analyse(scenario::lifecycle(false));
        let g1 = get(&a, 1);
        let kinds: Vec<_> = g1
            .states
            .iter()
            .filter(|s| s.tid == 11)
            .map(|s| (s.kind, s.duration()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (StateKind::Running, 30),
                (StateKind::OffCpu, 50),
                (StateKind::Running, 200)
            ]
        );
    }

    #[test]
    fn existing_goroutines_have_inferred_first_states() {
        let mut b = CaptureBuilder::new(1, "/x");
        b.ev(100, 9, EventData::GoUnblock { waker: 0 });
        b.ev(150, 9, EventData::GoStart { tid: 1 });
        b.ev(200, 8, EventData::SyscallExit { tid: 2 });
        b.ev(300, 8, EventData::GoExit);
        b.end(400);
        let (set, a) = analyse(b.finish());
        let g9 = get(&a, 9);
        assert_eq!(g9.totals.blocked_ns.get(&None), Some(&100));
        assert_eq!(g9.totals.runnable_ns, 50);
        assert_eq!(g9.totals.running_ns, 250);
        assert_eq!(
            g9.row(&set).blocked_ns.entries(),
            vec![(UNKNOWN_REASON, 100)]
        );
        assert_eq!(g9.row(&set).created_ns, None);
        let g8 = get(&a, 8);
        assert_eq!((g8.totals.syscall_ns, g8.totals.running_ns), (200, 100));
        assert_eq!(g8.totals.wakeups_by.len(), 0);
        assert_eq!(g9.totals.wakeups_by.get(&0), Some(&1));
    }

    #[test]
    fn leak_suspects_need_long_blocks() {
        let (set, a) = analyse(scenario::leak());
        let l = a.leak_suspects(&set, &LeakParams::default());
        assert_eq!(l.len(), 1, "{l:?}");
        assert_eq!(l[0].count, 1);
        assert_eq!(l[0].goids, vec![5]);
        assert_eq!(l[0].creation_site, "main.startWorkers (leak.go:5)");
        assert_eq!(l[0].blocked_on, "chan receive");
        assert_eq!(l[0].where_, "main.leaky (leak.go:7)");
        assert_eq!(l[0].max_blocked_ns, 3_000_000_000 - 20);
        // A looser threshold catches g6 too, in the same group.
        let loose = LeakParams {
            min_blocked_ns: 100_000_000,
            min_fraction: 0.1,
        };
        let l = a.leak_suspects(&set, &loose);
        assert_eq!((l.len(), l[0].count), (1, 2));
    }

    #[test]
    fn lost_events_do_not_derail_the_rest() {
        // GoBlock missing: the unblock arrives while "running"; the goroutine recovers.
        let mut b = CaptureBuilder::new(1, "/x");
        b.ev(0, 4, EventData::GoStart { tid: 1 });
        b.ev(100, 4, EventData::GoUnblock { waker: 5 });
        b.ev(150, 4, EventData::GoStart { tid: 1 });
        b.ev(200, 4, EventData::GoExit);
        b.ev(250, 4, EventData::GoStart { tid: 1 });
        let (_, a) = analyse(b.finish());
        let g = get(&a, 4);
        assert_eq!(g.anomalies, 2);
        assert_eq!(g.totals.running_ns, 150);
        assert_eq!(g.totals.runnable_ns, 50);
        assert_eq!(g.ended_by, EndedBy::Exit);
    }

    #[test]
    fn process_exit_ends_goroutines() {
        let mut b = CaptureBuilder::new(1, "/x");
        b.ev(0, 4, EventData::GoStart { tid: 1 });
        b.ev(100, 0, EventData::ProcExit { code: 2 });
        b.end(500);
        let (_, a) = analyse(b.finish());
        let g = get(&a, 4);
        assert_eq!(g.ended_by, EndedBy::ProcessExit);
        assert_eq!(g.totals.running_ns, 100);
        assert!(!g.alive_at_end());
    }
}
