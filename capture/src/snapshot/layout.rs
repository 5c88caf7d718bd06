//! Where one target binary keeps what a snapshot reads: `allgs`, the `runtime.g` fields,
//! the status numbers of its Go version, and `runtime.goexit`.

use std::collections::BTreeSet;

use crate::inspect::allgs::{self, AllgAddrs};
use crate::inspect::offsets::GOffsets;
use crate::inspect::{GoBinary, GoOffsets};

use super::{Limits, SnapshotError};

/// Statuses of a goroutine that exists (by their `runtime._G*` names): the ones a snapshot
/// records. `_Gleaked` is Go 1.26+.
pub const LIVE_STATUSES: &[&str] = &[
    "runnable",
    "running",
    "syscall",
    "waiting",
    "copystack",
    "preempted",
    "leaked",
];

/// Statuses of a `g` that holds no goroutine (skipped). `_Gdeadextra` is Go 1.26+.
pub(crate) const FREE_STATUSES: &[&str] = &["idle", "dead", "deadextra"];

/// What `take` needs to know about one target binary.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) allgs: AllgAddrs,
    pub(crate) g: GOffsets,
    /// Statuses of live goroutines (recorded); other statuses are dead/idle or impossible.
    pub(crate) live: BTreeSet<u32>,
    /// Statuses of `g`s that hold no goroutine: idle, dead, deadextra.
    pub(crate) free: BTreeSet<u32>,
    pub(crate) waiting: u32,
    pub(crate) scan: u32,
    /// `runtime.goexit`'s `[entry, end)`: the outermost frame of every goroutine.
    pub(crate) goexit: (u64, u64),
    /// The bytes of a `g` read: `[window.0, window.1)`.
    pub(crate) window: (u64, u64),
    pub(crate) limits: Limits,
}

impl Layout {
    /// Finds `allgs` and checks the offsets snapshots need.
    pub(crate) fn new(binary: &GoBinary, offsets: &GoOffsets) -> Result<Layout, SnapshotError> {
        let status = |name: &str| {
            offsets.g_status_value(name).ok_or_else(|| {
                SnapshotError::Layout(format!(
                    "no value for runtime.{name} in the offsets of {}; update inspect::offsets",
                    offsets.go_version
                ))
            })
        };
        // Versions that lack a status (leaked, deadextra before 1.26) never show it.
        let known = |names: &[&str]| -> BTreeSet<u32> {
            names
                .iter()
                .filter_map(|n| offsets.g_status_value(n))
                .collect()
        };
        let waiting = status("_Gwaiting")?;
        status("_Gdead")?;
        let live = known(LIVE_STATUSES);
        let free = known(FREE_STATUSES);
        let goexit = binary.function("runtime.goexit")?;
        let o = offsets.g;
        let fields = [
            o.stack_lo,
            o.stack_hi,
            o.goid,
            o.atomicstatus,
            o.waitreason,
            o.waitsince,
            o.tracking_seq,
            o.gopc,
            o.startpc,
            o.sched_sp,
            o.sched_pc,
            o.sched_bp,
        ];
        let all = fields.iter().chain(o.parent_goid.iter());
        let lo = all.clone().copied().min().unwrap_or(0);
        let hi = all.copied().max().unwrap_or(0) + 8;
        Ok(Layout {
            allgs: allgs::locate(binary)?,
            g: o,
            live,
            free,
            waiting,
            scan: status("_Gscan")?,
            goexit: (goexit.entry, goexit.end),
            window: (lo, hi),
            limits: Limits::default(),
        })
    }
}
