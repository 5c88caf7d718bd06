//! What is known about one goroutine once its events are replayed: its key, origin, states,
//! totals, samples and how its record ends.

use gcap_format::StackId;
use serde::Serialize;

use super::counts::Counts;
use super::name::Name;
use super::state::State;
use super::states::{Packed, States};
use crate::capture_set::Ns;

/// Identifies a goroutine within a set: which file, which target of it, which goid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GoroutineKey {
    pub(crate) file: u32,
    pub(crate) target: u32,
    pub(crate) goid: u64,
}

/// How a goroutine's record ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EndedBy {
    /// It exited (GoExit).
    Exit,
    /// Its process exited.
    ProcessExit,
    /// It was still alive when the capture stopped.
    CaptureEnd,
    /// It exited while the capture did not cover it: a later snapshot no longer had it.
    ExitedUnseen,
}

/// Time per state, wake-ups per waker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) running_ns: u64,
    pub(crate) runnable_ns: u64,
    pub(crate) syscall_ns: u64,
    pub(crate) off_cpu_ns: u64,
    /// Blocked time per wait-reason number (None: blocked since before the capture).
    pub(crate) blocked_ns: Counts<Option<u8>>,
    /// Wake-ups per waking goroutine (0: the runtime).
    pub(crate) wakeups_by: Counts<u64>,
}

impl Totals {
    pub(crate) fn blocked_total(&self) -> u64 {
        self.blocked_ns.total()
    }
}

/// Everything reconstructed about one goroutine.
#[derive(Clone, Debug)]
pub struct Goroutine {
    pub(crate) key: GoroutineKey,
    pub(crate) pid: u32,
    pub(crate) parent: Option<u64>,
    pub(crate) creation_stack: StackId,
    pub(crate) start_stack: StackId,
    /// "pkg.Func (file.go:LINE)" of the `go` statement ("unknown" when created before the
    /// capture).
    pub(crate) creation_site: Name,
    /// The start function, e.g. "main.worker".
    pub(crate) start_function: Name,
    /// Created during the capture (at `first_seen`): see [`Goroutine::created`].
    pub(super) was_created: bool,
    /// Created, or the capture start for goroutines that existed before it.
    pub(crate) first_seen: Ns,
    /// When it joined the goroutines the capture knows of, in µs after its file's start
    /// (4 bytes, not 8: a goroutine is kept small): created, 0 for one there from the start,
    /// else when first seen (one created while the lifecycle probes were off). How leak
    /// suspects tell a pile growing during the capture from one already there. Saturates
    /// after 71 minutes: a later arrival still counts as one after the start.
    pub(crate) arrived_us: u32,
    pub(crate) end: Ns,
    pub(crate) ended_by: EndedBy,
    /// The states in time order (empty when the analysis was run without them).
    pub states: States,
    /// The state it ended in (always kept; its end is `states.end`): see [`Goroutine::last`].
    pub(super) last: Packed,
    pub(crate) totals: Totals,
    /// CPU samples: (time, tid, stack).
    pub(crate) samples: Box<[(Ns, u32, StackId)]>,
    /// Transitions that did not follow from the previous state (lost or reordered events).
    pub(crate) anomalies: u32,
    /// Parked at one place in every snapshot that could have seen it, and never seen to
    /// move since (the leak suspects' evidence when the capture has snapshots).
    pub(crate) parked: Option<Box<Parked>>,
}

/// Where a goroutine stayed parked across snapshots, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parked {
    /// The earliest time it is known to have been parked there.
    pub(crate) since: Ns,
    /// Go's wait-reason number.
    pub(crate) reason: u8,
    pub(crate) stack: StackId,
}

impl Goroutine {
    /// The state it ended in (kept even when the states are not).
    #[inline]
    pub(crate) fn last(&self) -> Option<State> {
        (!self.last.is_none()).then(|| self.last.unpack(self.states.end))
    }

    /// When it was created (None: before the capture).
    #[inline]
    pub(crate) fn created(&self) -> Option<Ns> {
        self.was_created.then_some(self.first_seen)
    }

    /// When it exited (None: alive at the end of the capture or of its process, or exited at
    /// a time the capture did not cover).
    #[inline]
    pub(crate) fn exited(&self) -> Option<Ns> {
        (self.ended_by == EndedBy::Exit).then_some(self.end)
    }

    /// Time outside the capture's lifecycle windows that no snapshot explained, or whose
    /// events were lost (see `StateKind::Unknown`): the rest of its life (its states tile it from `first_seen` on, so the known totals and this add
    /// up to its length; not stored, as every byte of a goroutine counts).
    pub(crate) fn unknown_ns(&self) -> u64 {
        if self.last.is_none() {
            return 0;
        }
        let t = &self.totals;
        let known = t.running_ns + t.runnable_ns + t.syscall_ns + t.off_cpu_ns + t.blocked_total();
        ((self.states.end - self.first_seen).max(0) as u64).saturating_sub(known)
    }

    pub(crate) fn alive_at_end(&self) -> bool {
        self.ended_by == EndedBy::CaptureEnd
    }
}
