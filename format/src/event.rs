//! FORMAT.md §5.1 "Event kinds": what happened, when, to which goroutine.
//!
//! On disk every event is a kind byte, a timestamp, a goroutine id and a kind-specific list of
//! unsigned integers ("args"). The number of args of each kind is declared in every events block
//! (its *schema*), so a reader can skip kinds it does not know: new kinds never break old
//! readers. [`Event`] is the typed view; [`RawEvent`] is the on-disk shape.

pub use crate::recent_list::ArgCoding;

/// A string id into the capture's string table. `0` is the empty string ("none").
pub type StrId = u32;
/// A stack id into the capture's stack table (per target). `0` is the empty stack ("none").
pub type StackId = u32;

/// The most args a known kind has; unknown kinds may declare more (the rest are skipped).
pub const MAX_ARGS: usize = 10;

/// Every event kind this version knows. The numbers are part of the file format.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    GoCreate = 1,
    GoStart = 2,
    GoStop = 3,
    GoBlock = 4,
    GoUnblock = 5,
    SyscallEnter = 6,
    SyscallExit = 7,
    GoExit = 8,
    GcStart = 9,
    GcEnd = 10,
    StwStart = 11,
    StwEnd = 12,
    ThreadOff = 13,
    ThreadOn = 14,
    SpanStart = 15,
    SpanEnd = 16,
    CpuSample = 17,
    Lost = 18,
    ProcExit = 19,
    GoInfo = 20,
    Coverage = 21,
    GoSnapshot = 22,
    SnapshotEnd = 23,
    Overhead = 24,
}

impl EventKind {
    /// All known kinds, in numeric order.
    pub const ALL: [EventKind; 24] = [
        EventKind::GoCreate,
        EventKind::GoStart,
        EventKind::GoStop,
        EventKind::GoBlock,
        EventKind::GoUnblock,
        EventKind::SyscallEnter,
        EventKind::SyscallExit,
        EventKind::GoExit,
        EventKind::GcStart,
        EventKind::GcEnd,
        EventKind::StwStart,
        EventKind::StwEnd,
        EventKind::ThreadOff,
        EventKind::ThreadOn,
        EventKind::SpanStart,
        EventKind::SpanEnd,
        EventKind::CpuSample,
        EventKind::Lost,
        EventKind::ProcExit,
        EventKind::GoInfo,
        EventKind::Coverage,
        EventKind::GoSnapshot,
        EventKind::SnapshotEnd,
        EventKind::Overhead,
    ];

    /// The kind with this number, if this version knows it.
    pub fn from_u8(v: u8) -> Option<EventKind> {
        match v {
            1..=24 => Some(Self::ALL[v as usize - 1]),
            _ => None,
        }
    }

    /// How many args this kind writes (its entry in a block's schema).
    pub const fn arity(self) -> u8 {
        match self {
            EventKind::GoCreate => 3,
            EventKind::GoStart => 1,
            EventKind::GoStop => 1,
            EventKind::GoBlock => 2,
            EventKind::GoUnblock => 1,
            EventKind::SyscallEnter => 2,
            EventKind::SyscallExit => 1,
            EventKind::GoExit => 0,
            EventKind::GcStart => 1,
            EventKind::GcEnd => 1,
            EventKind::StwStart => 1,
            EventKind::StwEnd => 0,
            EventKind::ThreadOff => 2,
            EventKind::ThreadOn => 2,
            EventKind::SpanStart => 10,
            EventKind::SpanEnd => 3,
            EventKind::CpuSample => 2,
            EventKind::Lost => 2,
            EventKind::ProcExit => 1,
            EventKind::GoInfo => 3,
            EventKind::Coverage => 2,
            EventKind::GoSnapshot => 8,
            EventKind::SnapshotEnd => 3,
            EventKind::Overhead => 4,
        }
    }

    /// How each of this kind's args is coded in the blocks this version writes (recorded in
    /// each block's schema; FORMAT.md §5). One entry per arg.
    pub const fn arg_codings(self) -> &'static [ArgCoding] {
        use ArgCoding::{Goroutine as G, Id as I, Plain as P, Thread as T};
        match self {
            EventKind::GoCreate | EventKind::GoInfo => &[G, P, P],
            EventKind::GoUnblock => &[G],
            EventKind::GoStart | EventKind::SyscallExit => &[T],
            EventKind::SyscallEnter
            | EventKind::ThreadOff
            | EventKind::ThreadOn
            | EventKind::CpuSample => &[T, P],
            EventKind::GoExit | EventKind::StwEnd => &[],
            EventKind::GoStop
            | EventKind::GcStart
            | EventKind::GcEnd
            | EventKind::StwStart
            | EventKind::ProcExit => &[P],
            EventKind::GoBlock | EventKind::Lost | EventKind::Coverage => &[P, P],
            EventKind::SpanEnd | EventKind::SnapshotEnd => &[P, P, P],
            EventKind::Overhead => &[P, P, P, P],
            // Trace id (two halves) and the traceparent span id: random 64-bit values, in
            // the block's fixed-width id column, once each per block.
            EventKind::SpanStart => &[P, P, P, P, P, P, I, I, I, P],
            EventKind::GoSnapshot => &[P, P, P, P, P, P, P, P],
        }
    }

    /// A short stable name, used in summaries and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::GoCreate => "go_create",
            EventKind::GoStart => "go_start",
            EventKind::GoStop => "go_stop",
            EventKind::GoBlock => "go_block",
            EventKind::GoUnblock => "go_unblock",
            EventKind::SyscallEnter => "syscall_enter",
            EventKind::SyscallExit => "syscall_exit",
            EventKind::GoExit => "go_exit",
            EventKind::GcStart => "gc_start",
            EventKind::GcEnd => "gc_end",
            EventKind::StwStart => "stw_start",
            EventKind::StwEnd => "stw_end",
            EventKind::ThreadOff => "thread_off",
            EventKind::ThreadOn => "thread_on",
            EventKind::SpanStart => "span_start",
            EventKind::SpanEnd => "span_end",
            EventKind::CpuSample => "cpu_sample",
            EventKind::Lost => "lost",
            EventKind::ProcExit => "proc_exit",
            EventKind::GoInfo => "go_info",
            EventKind::Coverage => "coverage",
            EventKind::GoSnapshot => "go_snapshot",
            EventKind::SnapshotEnd => "snapshot_end",
            EventKind::Overhead => "overhead",
        }
    }
}

/// Why a running goroutine stopped without blocking ([`EventData::GoStop`]).
pub mod stop_reason {
    /// Preempted by the scheduler (sysmon or async preemption).
    pub const PREEMPTED: u8 = 0;
    /// `runtime.Gosched` or another voluntary yield.
    pub const YIELD: u8 = 1;
}

/// Groups of probes that gcap attaches and detaches together ([`EventData::Coverage`]'s
/// `groups`, a bit set). A group's events are complete only while its bit is set.
pub mod probe_group {
    /// HTTP and SQL spans.
    pub const SPANS: u32 = 1;
    /// Goroutine create, start, stop, block, unblock, exit, GC and stop-the-world.
    pub const LIFECYCLE: u32 = 2;
    /// The kernel's view: threads switched off and on their CPUs.
    pub const SCHED: u32 = 4;
    /// CPU samples.
    pub const SAMPLES: u32 = 8;
    /// System call entry and exit.
    pub const SYSCALLS: u32 = 16;
}

/// Why the attached probe groups changed ([`EventData::Coverage`]'s `cause`).
pub mod coverage_cause {
    /// The capture started (or the target was first seen).
    pub const START: u8 = 0;
    /// The budget's duty cycle opened or closed a window.
    pub const DUTY_CYCLE: u8 = 1;
    /// Slow requests opened a window.
    pub const TRIGGER: u8 = 2;
    /// The budget ran out: groups were detached early.
    pub const BUDGET: u8 = 3;
    /// The capture stopped.
    pub const STOP: u8 = 4;
}

/// The kind of a span ([`EventData::SpanStart`]).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    HttpServer = 1,
    HttpClient = 2,
    Sql = 3,
}

impl SpanKind {
    pub fn from_u8(v: u8) -> Option<SpanKind> {
        match v {
            1 => Some(SpanKind::HttpServer),
            2 => Some(SpanKind::HttpClient),
            3 => Some(SpanKind::Sql),
            _ => None,
        }
    }

    /// The contract's name for the kind.
    pub const fn name(self) -> &'static str {
        match self {
            SpanKind::HttpServer => "http_server",
            SpanKind::HttpClient => "http_client",
            SpanKind::Sql => "sql",
        }
    }
}

/// W3C trace context carried by a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TraceContext {
    /// The 16-byte trace id (big-endian, as printed in `traceparent`).
    pub trace_id: u128,
    /// The parent span id from the incoming `traceparent` (server) or the id the application
    /// put on the outgoing request (client).
    pub span_id: u64,
    /// The trace flags byte.
    pub flags: u8,
}

/// The kind-specific part of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventData {
    /// A goroutine was created. The event's goid is the new goroutine.
    GoCreate {
        parent: u64,
        /// Where the `go` statement is (a stack id; its first frame is the creation site).
        creation: StackId,
        /// The start function (a one-frame stack id holding its entry PC).
        start: StackId,
    },
    /// The goroutine started running on OS thread `tid`.
    GoStart { tid: u32 },
    /// The goroutine stopped running but stays runnable (see [`stop_reason`]).
    GoStop { reason: u8 },
    /// The goroutine blocked with Go's wait reason number `reason` (the target's wait-reason
    /// table maps it to Go's string) at `stack`.
    GoBlock { reason: u8, stack: StackId },
    /// The goroutine was made runnable by goroutine `waker` (0: the runtime, e.g. the network
    /// poller or a timer, with no goroutine to blame).
    GoUnblock { waker: u64 },
    /// The goroutine entered a system call on thread `tid`.
    SyscallEnter { tid: u32, stack: StackId },
    /// The goroutine returned from a system call.
    SyscallExit { tid: u32 },
    /// The goroutine exited.
    GoExit,
    /// A garbage collection cycle started.
    GcStart { cycle: u32 },
    /// A garbage collection cycle's mark phase ended.
    GcEnd { cycle: u32 },
    /// The world was stopped (Go's stwReason number).
    StwStart { reason: u8 },
    /// The world was restarted.
    StwEnd,
    /// The kernel switched OS thread `tid` off its CPU; `runnable` when it was preempted
    /// (still wanted the CPU) rather than sleeping.
    ThreadOff { tid: u32, runnable: bool },
    /// The kernel switched OS thread `tid` onto CPU `cpu`.
    ThreadOn { tid: u32, cpu: u32 },
    /// A span started on the event's goroutine.
    SpanStart {
        /// Capture-local span id, unique within the target.
        span: u64,
        kind: SpanKind,
        /// HTTP method, or the SQL verb.
        method: StrId,
        /// Host for client spans (0 otherwise).
        host: StrId,
        /// Path for HTTP, normalised query text for SQL.
        target: StrId,
        /// Request content length (u64::MAX when unknown).
        content_length: u64,
        trace: Option<TraceContext>,
    },
    /// A span ended.
    SpanEnd { span: u64, status: u32, error: bool },
    /// A CPU sample: the goroutine was on CPU on thread `tid` at `stack`.
    CpuSample { tid: u32, stack: StackId },
    /// `count` events were lost on CPU `cpu` before this point.
    Lost { cpu: u32, count: u64 },
    /// The target process exited (`code` is the exit status, or 128+signal).
    ProcExit { code: i32 },
    /// What is known of a goroutine that already existed when the capture started (seen
    /// running for the first time): the same facts as [`EventData::GoCreate`], but the
    /// event's time is when it was first seen, not when it was created.
    GoInfo {
        parent: u64,
        creation: StackId,
        start: StackId,
    },
    /// From this moment on, the probe groups in `groups` ([`probe_group`] bits) are attached
    /// for this target and no others. Time between two coverage events is covered only by
    /// the groups the first one names; a group's absence means its events are unknown there
    /// (not that nothing happened).
    Coverage { groups: u32, cause: u8 },
    /// One goroutine as read from the target's memory by snapshot number `snapshot`, without
    /// stopping it. The event's goid is the goroutine.
    GoSnapshot {
        /// Go's goroutine status (`_Grunnable` = 1, `_Grunning` = 2, `_Gsyscall` = 3,
        /// `_Gwaiting` = 4, ...; the scan bit removed).
        status: u8,
        /// Go's wait reason number (meaningful when waiting).
        reason: u8,
        /// How long it had been waiting at the snapshot's time (u64::MAX: unknown; Go only
        /// records it for some waits).
        waiting_ns: u64,
        parent: u64,
        /// As in [`EventData::GoCreate`].
        creation: StackId,
        start: StackId,
        /// Where a parked goroutine is parked (from its saved scheduling context).
        stack: StackId,
        snapshot: u32,
    },
    /// Snapshot `snapshot` is complete: `goroutines` were recorded and `torn` more were read
    /// while they changed and were left out.
    SnapshotEnd {
        snapshot: u32,
        goroutines: u32,
        torn: u32,
    },
    /// gcap's cost for this target up to this moment (cumulative, so the last one counts):
    /// `cost_ns` of probe and BPF time in the target's threads plus gcap's own CPU charged to
    /// it, against `target_cpu_ns` of the target's own CPU time since the capture started.
    Overhead {
        /// The budget asked for, in millionths of the target's CPU (0: no budget, every
        /// transition). A budget never allows less than [`BUDGET_FLOOR_NS_PER_S`].
        budget_ppm: u32,
        cost_ns: u64,
        target_cpu_ns: u64,
        /// Probe hits counted so far.
        hits: u64,
    },
}

/// A budgeted capture may always spend this much CPU per second of capture, whatever its
/// share of the targets' CPU: gcap's own polling costs about 1.6 ms a second, so 2% of a
/// nearly idle target would pay for nothing, not even spans. A reader compares a cost above
/// the budget's share with this before calling the budget broken.
pub const BUDGET_FLOOR_NS_PER_S: u64 = 5_000_000;

/// One event: its time (nanoseconds on the capture's monotonic clock), the goroutine it is
/// about (0 when none) and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub ts: u64,
    pub goid: u64,
    pub data: EventData,
}

/// The on-disk shape of an event: kind, time, goroutine and up to [`MAX_ARGS`] args.
/// Unknown kinds come back as raw events whose extra args were skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub kind: u8,
    pub ts: u64,
    pub goid: u64,
    pub nargs: u8,
    pub args: [u64; MAX_ARGS],
}

impl Event {
    /// The kind of this event.
    pub fn kind(&self) -> EventKind {
        match self.data {
            EventData::GoCreate { .. } => EventKind::GoCreate,
            EventData::GoStart { .. } => EventKind::GoStart,
            EventData::GoStop { .. } => EventKind::GoStop,
            EventData::GoBlock { .. } => EventKind::GoBlock,
            EventData::GoUnblock { .. } => EventKind::GoUnblock,
            EventData::SyscallEnter { .. } => EventKind::SyscallEnter,
            EventData::SyscallExit { .. } => EventKind::SyscallExit,
            EventData::GoExit => EventKind::GoExit,
            EventData::GcStart { .. } => EventKind::GcStart,
            EventData::GcEnd { .. } => EventKind::GcEnd,
            EventData::StwStart { .. } => EventKind::StwStart,
            EventData::StwEnd => EventKind::StwEnd,
            EventData::ThreadOff { .. } => EventKind::ThreadOff,
            EventData::ThreadOn { .. } => EventKind::ThreadOn,
            EventData::SpanStart { .. } => EventKind::SpanStart,
            EventData::SpanEnd { .. } => EventKind::SpanEnd,
            EventData::CpuSample { .. } => EventKind::CpuSample,
            EventData::Lost { .. } => EventKind::Lost,
            EventData::ProcExit { .. } => EventKind::ProcExit,
            EventData::GoInfo { .. } => EventKind::GoInfo,
            EventData::Coverage { .. } => EventKind::Coverage,
            EventData::GoSnapshot { .. } => EventKind::GoSnapshot,
            EventData::SnapshotEnd { .. } => EventKind::SnapshotEnd,
            EventData::Overhead { .. } => EventKind::Overhead,
        }
    }

    /// The on-disk args of this event (FORMAT.md §5.1).
    pub fn to_raw(&self) -> RawEvent {
        let mut a = [0u64; MAX_ARGS];
        let kind = self.kind();
        match self.data {
            EventData::GoCreate {
                parent,
                creation,
                start,
            }
            | EventData::GoInfo {
                parent,
                creation,
                start,
            } => {
                a[0] = parent;
                a[1] = creation as u64;
                a[2] = start as u64;
            }
            EventData::GoStart { tid } => a[0] = tid as u64,
            EventData::GoStop { reason } => a[0] = reason as u64,
            EventData::GoBlock { reason, stack } => {
                a[0] = reason as u64;
                a[1] = stack as u64;
            }
            EventData::GoUnblock { waker } => a[0] = waker,
            EventData::SyscallEnter { tid, stack } => {
                a[0] = tid as u64;
                a[1] = stack as u64;
            }
            EventData::SyscallExit { tid } => a[0] = tid as u64,
            EventData::GoExit | EventData::StwEnd => {}
            EventData::GcStart { cycle } | EventData::GcEnd { cycle } => a[0] = cycle as u64,
            EventData::StwStart { reason } => a[0] = reason as u64,
            EventData::ThreadOff { tid, runnable } => {
                a[0] = tid as u64;
                a[1] = runnable as u64;
            }
            EventData::ThreadOn { tid, cpu } => {
                a[0] = tid as u64;
                a[1] = cpu as u64;
            }
            EventData::SpanStart {
                span,
                kind,
                method,
                host,
                target,
                content_length,
                trace,
            } => {
                a[0] = span;
                a[1] = kind as u64;
                a[2] = method as u64;
                a[3] = host as u64;
                a[4] = target as u64;
                // Stored +1 so that "unknown" (u64::MAX) is 0, one byte.
                a[5] = content_length.wrapping_add(1);
                if let Some(t) = trace {
                    a[6] = (t.trace_id >> 64) as u64;
                    a[7] = t.trace_id as u64;
                    a[8] = t.span_id;
                    a[9] = t.flags as u64 | 0x100; // bit 8: trace context present
                }
            }
            EventData::SpanEnd {
                span,
                status,
                error,
            } => {
                a[0] = span;
                a[1] = status as u64;
                a[2] = error as u64;
            }
            EventData::CpuSample { tid, stack } => {
                a[0] = tid as u64;
                a[1] = stack as u64;
            }
            EventData::Lost { cpu, count } => {
                a[0] = cpu as u64;
                a[1] = count;
            }
            EventData::ProcExit { code } => a[0] = code as u32 as u64,
            EventData::Coverage { groups, cause } => {
                a[0] = groups as u64;
                a[1] = cause as u64;
            }
            EventData::GoSnapshot {
                status,
                reason,
                waiting_ns,
                parent,
                creation,
                start,
                stack,
                snapshot,
            } => {
                // The first arg stays plain (not goroutine-coded) so that readers that do
                // not know this kind keep their goroutine list in step.
                a[0] = status as u64;
                a[1] = reason as u64;
                a[2] = waiting_ns.wrapping_add(1); // unknown (u64::MAX) is 0, one byte
                a[3] = parent;
                a[4] = creation as u64;
                a[5] = start as u64;
                a[6] = stack as u64;
                a[7] = snapshot as u64;
            }
            EventData::SnapshotEnd {
                snapshot,
                goroutines,
                torn,
            } => {
                a[0] = snapshot as u64;
                a[1] = goroutines as u64;
                a[2] = torn as u64;
            }
            EventData::Overhead {
                budget_ppm,
                cost_ns,
                target_cpu_ns,
                hits,
            } => {
                a[0] = budget_ppm as u64;
                a[1] = cost_ns;
                a[2] = target_cpu_ns;
                a[3] = hits;
            }
        }
        RawEvent {
            kind: kind as u8,
            ts: self.ts,
            goid: self.goid,
            nargs: kind.arity(),
            args: a,
        }
    }
}

impl RawEvent {
    /// The typed event, or `None` for kinds this version does not know (or args out of range,
    /// which only a damaged or hostile file has).
    pub fn to_event(&self) -> Option<Event> {
        let kind = EventKind::from_u8(self.kind)?;
        if self.nargs < kind.arity() {
            return None;
        }
        let a = &self.args;
        let u32_ = |v: u64| u32::try_from(v).ok();
        let u8_ = |v: u64| u8::try_from(v).ok();
        let data = match kind {
            EventKind::GoCreate => EventData::GoCreate {
                parent: a[0],
                creation: u32_(a[1])?,
                start: u32_(a[2])?,
            },
            EventKind::GoStart => EventData::GoStart { tid: u32_(a[0])? },
            EventKind::GoStop => EventData::GoStop { reason: u8_(a[0])? },
            EventKind::GoBlock => EventData::GoBlock {
                reason: u8_(a[0])?,
                stack: u32_(a[1])?,
            },
            EventKind::GoUnblock => EventData::GoUnblock { waker: a[0] },
            EventKind::SyscallEnter => EventData::SyscallEnter {
                tid: u32_(a[0])?,
                stack: u32_(a[1])?,
            },
            EventKind::SyscallExit => EventData::SyscallExit { tid: u32_(a[0])? },
            EventKind::GoExit => EventData::GoExit,
            EventKind::GcStart => EventData::GcStart { cycle: u32_(a[0])? },
            EventKind::GcEnd => EventData::GcEnd { cycle: u32_(a[0])? },
            EventKind::StwStart => EventData::StwStart { reason: u8_(a[0])? },
            EventKind::StwEnd => EventData::StwEnd,
            EventKind::ThreadOff => EventData::ThreadOff {
                tid: u32_(a[0])?,
                runnable: a[1] != 0,
            },
            EventKind::ThreadOn => EventData::ThreadOn {
                tid: u32_(a[0])?,
                cpu: u32_(a[1])?,
            },
            EventKind::SpanStart => EventData::SpanStart {
                span: a[0],
                kind: SpanKind::from_u8(u8_(a[1])?)?,
                method: u32_(a[2])?,
                host: u32_(a[3])?,
                target: u32_(a[4])?,
                content_length: a[5].wrapping_sub(1),
                trace: (a[9] & 0x100 != 0).then(|| TraceContext {
                    trace_id: ((a[6] as u128) << 64) | a[7] as u128,
                    span_id: a[8],
                    flags: a[9] as u8,
                }),
            },
            EventKind::SpanEnd => EventData::SpanEnd {
                span: a[0],
                status: u32_(a[1])?,
                error: a[2] != 0,
            },
            EventKind::CpuSample => EventData::CpuSample {
                tid: u32_(a[0])?,
                stack: u32_(a[1])?,
            },
            EventKind::Lost => EventData::Lost {
                cpu: u32_(a[0])?,
                count: a[1],
            },
            EventKind::ProcExit => EventData::ProcExit {
                code: u32_(a[0])? as i32,
            },
            EventKind::GoInfo => EventData::GoInfo {
                parent: a[0],
                creation: u32_(a[1])?,
                start: u32_(a[2])?,
            },
            EventKind::Coverage => EventData::Coverage {
                groups: u32_(a[0])?,
                cause: u8_(a[1])?,
            },
            EventKind::GoSnapshot => EventData::GoSnapshot {
                status: u8_(a[0])?,
                reason: u8_(a[1])?,
                waiting_ns: a[2].wrapping_sub(1),
                parent: a[3],
                creation: u32_(a[4])?,
                start: u32_(a[5])?,
                stack: u32_(a[6])?,
                snapshot: u32_(a[7])?,
            },
            EventKind::SnapshotEnd => EventData::SnapshotEnd {
                snapshot: u32_(a[0])?,
                goroutines: u32_(a[1])?,
                torn: u32_(a[2])?,
            },
            EventKind::Overhead => EventData::Overhead {
                budget_ppm: u32_(a[0])?,
                cost_ns: a[1],
                target_cpu_ns: a[2],
                hits: a[3],
            },
        };
        Some(Event {
            ts: self.ts,
            goid: self.goid,
            data,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A strategy producing any valid event (used by the block and file round-trip tests too).
    pub(crate) fn any_event() -> impl Strategy<Value = Event> {
        let trace = proptest::option::of((any::<u128>(), any::<u64>(), any::<u8>()).prop_map(
            |(trace_id, span_id, flags)| TraceContext {
                trace_id,
                span_id,
                flags,
            },
        ));
        let span_kind = prop_oneof![
            Just(SpanKind::HttpServer),
            Just(SpanKind::HttpClient),
            Just(SpanKind::Sql)
        ];
        let data = prop_oneof![
            (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(parent, creation, start)| {
                EventData::GoCreate {
                    parent,
                    creation,
                    start,
                }
            }),
            any::<u32>().prop_map(|tid| EventData::GoStart { tid }),
            any::<u8>().prop_map(|reason| EventData::GoStop { reason }),
            (any::<u8>(), any::<u32>())
                .prop_map(|(reason, stack)| EventData::GoBlock { reason, stack }),
            any::<u64>().prop_map(|waker| EventData::GoUnblock { waker }),
            (any::<u32>(), any::<u32>())
                .prop_map(|(tid, stack)| EventData::SyscallEnter { tid, stack }),
            any::<u32>().prop_map(|tid| EventData::SyscallExit { tid }),
            Just(EventData::GoExit),
            any::<u32>().prop_map(|cycle| EventData::GcStart { cycle }),
            any::<u32>().prop_map(|cycle| EventData::GcEnd { cycle }),
            any::<u8>().prop_map(|reason| EventData::StwStart { reason }),
            Just(EventData::StwEnd),
            (any::<u32>(), any::<bool>())
                .prop_map(|(tid, runnable)| EventData::ThreadOff { tid, runnable }),
            (any::<u32>(), any::<u32>()).prop_map(|(tid, cpu)| EventData::ThreadOn { tid, cpu }),
            (
                any::<u64>(),
                span_kind,
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<u64>(),
                trace
            )
                .prop_map(
                    |(span, kind, method, host, target, content_length, trace)| {
                        EventData::SpanStart {
                            span,
                            kind,
                            method,
                            host,
                            target,
                            content_length,
                            trace,
                        }
                    }
                ),
            (any::<u64>(), any::<u32>(), any::<bool>()).prop_map(|(span, status, error)| {
                EventData::SpanEnd {
                    span,
                    status,
                    error,
                }
            }),
            (any::<u32>(), any::<u32>())
                .prop_map(|(tid, stack)| EventData::CpuSample { tid, stack }),
            (any::<u32>(), any::<u64>()).prop_map(|(cpu, count)| EventData::Lost { cpu, count }),
            any::<i32>().prop_map(|code| EventData::ProcExit { code }),
            (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(parent, creation, start)| {
                EventData::GoInfo {
                    parent,
                    creation,
                    start,
                }
            }),
            (any::<u32>(), any::<u8>())
                .prop_map(|(groups, cause)| EventData::Coverage { groups, cause }),
            (
                (any::<u8>(), any::<u8>(), any::<u64>(), any::<u64>()),
                (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>())
            )
                .prop_map(
                    |((status, reason, waiting_ns, parent), (creation, start, stack, snapshot))| {
                        EventData::GoSnapshot {
                            status,
                            reason,
                            waiting_ns,
                            parent,
                            creation,
                            start,
                            stack,
                            snapshot,
                        }
                    }
                ),
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(snapshot, goroutines, torn)| {
                EventData::SnapshotEnd {
                    snapshot,
                    goroutines,
                    torn,
                }
            }),
            (any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
                |(budget_ppm, cost_ns, target_cpu_ns, hits)| EventData::Overhead {
                    budget_ppm,
                    cost_ns,
                    target_cpu_ns,
                    hits,
                }
            ),
        ];
        (any::<u64>(), any::<u64>(), data).prop_map(|(ts, goid, data)| Event { ts, goid, data })
    }

    proptest! {
        #[test]
        fn raw_roundtrip(ev in any_event()) {
            let raw = ev.to_raw();
            prop_assert_eq!(raw.nargs, ev.kind().arity());
            prop_assert_eq!(raw.to_event(), Some(ev));
        }
    }

    #[test]
    fn kinds_are_dense_and_named() {
        for (i, k) in EventKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i + 1);
            assert_eq!(EventKind::from_u8(*k as u8), Some(*k));
            assert!((k.arity() as usize) <= MAX_ARGS);
            assert_eq!(k.arg_codings().len(), k.arity() as usize, "{}", k.name());
            assert!(!k.name().is_empty());
        }
        assert_eq!(EventKind::from_u8(0), None);
        assert_eq!(EventKind::from_u8(200), None);
    }
}
