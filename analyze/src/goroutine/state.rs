//! What a goroutine is doing over an interval: its [`State`] (kind, thread, wait reason,
//! stack, why it became runnable), and how a state reads in a sentence.

use gcap_format::StackId;

use super::GoroutineKey;
use crate::capture_set::{LoadedCapture, Ns};

/// The state of a goroutine over an interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum StateKind {
    Running,
    Runnable,
    Blocked,
    Syscall,
    /// Running, but the OS thread it runs on was descheduled by the kernel.
    OffCpu,
    /// Not known: the capture did not cover this time (outside its lifecycle windows), and
    /// no snapshot said what the goroutine was doing, or events of the goroutine were lost
    /// then (cause [`Cause::Lost`]). Never counted as running, blocked or idle.
    Unknown,
}

impl StateKind {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            StateKind::Running => "running",
            StateKind::Runnable => "runnable",
            StateKind::Blocked => "blocked",
            StateKind::Syscall => "syscall",
            StateKind::OffCpu => "off_cpu",
            StateKind::Unknown => "unknown",
        }
    }
}

/// Why a goroutine became runnable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Cause {
    Created,
    /// Unblocked by this goroutine (0: the runtime, network poller or a timer).
    Woken(u64),
    Preempted,
    Yielded,
    /// Runnable before the capture started.
    Unknown,
    /// Runnable when a snapshot read it (at the start of a lifecycle window).
    Snapshot,
    /// Of an unknown state: the goroutine's events disagree there (one says it was running,
    /// the next that it was woken), in a capture that lost events.
    Lost,
}

impl Cause {
    pub(crate) fn describe(self) -> String {
        match self {
            Cause::Created => "created".into(),
            Cause::Woken(0) => "woken by the runtime".into(),
            Cause::Woken(g) => format!("woken by goroutine {g}"),
            Cause::Preempted => "preempted".into(),
            Cause::Yielded => "yielded".into(),
            Cause::Unknown => "before the capture".into(),
            Cause::Snapshot => "as the snapshot read it".into(),
            Cause::Lost => "events lost".into(),
        }
    }
}

/// One interval of a goroutine's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    pub(crate) start: Ns,
    pub(crate) end: Ns,
    pub(crate) kind: StateKind,
    /// The OS thread (running, syscall, off_cpu); 0 when unknown.
    pub(crate) tid: u32,
    /// Blocked: Go's wait-reason number (None: blocked since before the capture).
    pub(crate) reason: Option<u8>,
    /// Blocked or syscall: the stack where it happened (0: none recorded).
    pub(crate) stack: StackId,
    /// Runnable: why.
    pub(crate) cause: Cause,
}

impl State {
    pub(crate) fn duration(&self) -> u64 {
        (self.end - self.start).max(0) as u64
    }
}

/// How unknown time reads: what the capture did not see.
pub(crate) const UNCOVERED: &str = "unknown (outside the capture's lifecycle windows)";

/// How unknown time reads where the goroutine's events were lost.
pub(crate) const LOST: &str = "unknown (events of the goroutine were lost while capturing)";

impl State {
    /// How this state reads when it is unknown: why it is.
    pub(crate) fn unknown_why(&self) -> &'static str {
        if self.cause == Cause::Lost {
            LOST
        } else {
            UNCOVERED
        }
    }
}

/// The blocked-time key for goroutines blocked since before the capture started.
pub(crate) const UNKNOWN_REASON: &str = "unknown (blocked before the capture)";

/// Go's name of a wait reason of a target ([`UNKNOWN_REASON`] for None: blocked since before
/// the capture).
pub(crate) fn reason_name(f: &LoadedCapture, target: u32, reason: Option<u8>) -> &str {
    reason.map_or(UNKNOWN_REASON, |r| f.wait_reason(target, r))
}

/// "blocked: chan receive at main.f (f.go:3)", "running on thread 12", ...
pub(crate) fn describe_state(f: &LoadedCapture, key: GoroutineKey, s: &State) -> String {
    match s.kind {
        StateKind::Blocked => format!(
            "blocked: {} at {}",
            reason_name(f, key.target, s.reason),
            f.where_(key.target, s.stack)
        ),
        StateKind::Syscall => format!("syscall at {}", f.where_(key.target, s.stack)),
        StateKind::Runnable => format!("runnable ({})", s.cause.describe()),
        StateKind::Running => format!("running on thread {}", s.tid),
        StateKind::OffCpu => format!("off cpu (thread {} descheduled)", s.tid),
        StateKind::Unknown => s.unknown_why().into(),
    }
}
