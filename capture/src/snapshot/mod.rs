//! A snapshot of every goroutine of a running Go program, read from its memory without
//! stopping it.
//!
//! A goroutine parked since before gcap attached never reaches a probe, so the probes
//! alone cannot show it. The runtime lists every `g` it ever allocated in `runtime.allgs`
//! (see `inspect::allgs`): a snapshot reads `allglen`, then `allgptr` (the order in which
//! `allgadd` publishes them, so the array is at least that long), then the pointers, then
//! each `g`: goid, status (scan bit removed), wait reason, `waitsince`, `gopc`, `startpc`,
//! `parentGoid` (1.21+), and for a waiting goroutine its stack from `g.sched` (see
//! `unwind`). Dead and idle `g`s (free for reuse) are skipped.
//!
//! **Torn reads.** The target keeps running, so a `g` can change while it is read: reused
//! for a new goroutine, woken, re-parked. Each `g` is read, its stack unwound, and the `g`
//! read again; a `g` whose goid, status, wait reason, creation or start PC, parent, stack
//! bounds, saved context or `trackingSeq` differ between the two reads, or whose status is
//! not a live goroutine status, or whose goid is 0, is counted as torn and left out.
//! `trackingSeq` matters: a goroutine that woke and parked again at the same place while
//! its stack was read has the same saved context, and the frames read may be another
//! call's; `casgstatus` increments `trackingSeq` on every switch out of running.
//!
//! **Bounds.** A huge or hostile target cannot make gcap use unbounded memory or time:
//! [`Limits`] caps the goroutines read, the frames per stack and in total, the bytes read
//! and the wall time; a snapshot that reaches one says so in [`Snapshot::truncated`]. Reads
//! go through `process_vm_readv` in batches (`memory`), which never writes the target.
//!
//! `take` returns PCs as runtime addresses (with the load bias), ready to be interned as
//! stacks; `record` writes a snapshot as `go_snapshot` and `snapshot_end` events (a capture
//! starts with one of each process it attaches to). [`Process`] snapshots a process on its
//! own and names its goroutines.

mod layout;
mod memory;
mod process;
mod read;
mod record;
mod unwind;

use std::time::Duration;

use crate::inspect::InspectError;

pub(crate) use layout::Layout;
pub use layout::LIVE_STATUSES;
pub use memory::MemoryError;
pub use process::{Description, Process};
pub(crate) use read::take;
pub(crate) use record::record;

/// Why a snapshot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Inspect(#[from] InspectError),
    #[error("{0}")]
    Layout(String),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("runtime.allglen/allgptr of process {pid} at {addr:#x} cannot be read: the load bias or the binary is not the process's; snapshot the process that runs this binary")]
    NoAllgs { pid: u32, addr: u64 },
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
    #[error("the executable of process {pid} is not mapped (yet): snapshot it once it runs")]
    NotMapped { pid: u32 },
}

/// How much one snapshot may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `g`s read (live or dead); the rest of `allgs` is left out.
    pub goroutines: usize,
    /// Frames per stack.
    pub depth: usize,
    /// Frames over all stacks; further stacks are left empty.
    pub frames: usize,
    /// Bytes read from the target.
    pub bytes: u64,
    /// Wall time; batches after it are left out.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            goroutines: 1 << 20,
            depth: 64,
            frames: 8 << 20,
            bytes: 1 << 30,
            time: Duration::from_secs(2),
        }
    }
}

/// Which bound ended a snapshot early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    Goroutines,
    Frames,
    Bytes,
    Time,
}

/// One goroutine as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goroutine {
    pub goid: u64,
    /// Go's status, scan bit removed (`_Grunnable` = 1, ..., `_Gwaiting` = 4, ...).
    pub status: u8,
    /// Go's wait reason number (meaningful when waiting).
    pub wait_reason: u8,
    /// How long it had been waiting when the snapshot began, when Go recorded the start
    /// (`g.waitsince` is set by the GC for goroutines waiting through a cycle).
    pub waiting_ns: Option<u64>,
    /// Goroutine that created it (0: unknown, and always on Go 1.19).
    pub parent: u64,
    /// Return address of the `go` statement's call into `newproc`.
    pub gopc: u64,
    /// Entry of the function the goroutine started with.
    pub startpc: u64,
    /// Where a waiting goroutine is parked, innermost first (empty when not waiting): the
    /// PC it resumes at (`g.sched.pc`), then return addresses.
    pub stack: Vec<u64>,
    /// The resume PC is a function's entry (Go 1.19's `systemstack_switch`), so it names
    /// that function itself, not the call before it as the other frames do.
    pub resumes_at_entry: bool,
}

/// Every goroutine of a process at one moment (modulo the reads' duration).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// CLOCK_MONOTONIC when reading began.
    pub taken_ns: u64,
    pub goroutines: Vec<Goroutine>,
    /// Live `g`s that changed while read, left out.
    pub torn: u32,
    /// Dead or idle `g`s skipped.
    pub dead: u32,
    /// `runtime.allglen` as read.
    pub allglen: u64,
    pub truncated: Option<Truncation>,
    pub bytes_read: u64,
    pub elapsed: Duration,
}
