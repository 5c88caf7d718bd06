//! A running Go process to snapshot, on its own (without a capture): its executable
//! inspected once, then any number of snapshots, and each goroutine described by name the
//! way `runtime.Stack` prints it.

use crate::inspect::{Frame, GoBinary, GoOffsets};
use crate::session::process::load_bias;
use crate::target::pid_exe;
use crate::translate::symbols::{frames_of, Role};

use super::layout::FREE_STATUSES;
use super::{take, Goroutine, Layout, Limits, Snapshot, SnapshotError, LIVE_STATUSES};

/// One Go process, ready to be snapshotted.
pub struct Process {
    pid: u32,
    bias: u64,
    binary: GoBinary,
    offsets: GoOffsets,
    layout: Layout,
}

/// A goroutine by name: what `runtime.Stack` says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// Its status by name, as `runtime.Stack` prints it: one of [`LIVE_STATUSES`].
    pub status: String,
    /// Go's text for its wait reason ("chan receive"); empty when not waiting.
    pub wait_reason: String,
    /// The function it runs (through the wrapper of a `go f(x)` statement).
    pub start: Option<Frame>,
    /// The `go` statement that created it.
    pub creation: Option<Frame>,
    /// Where it is parked, innermost first, inlined calls as frames of their own.
    pub stack: Vec<Frame>,
}

impl Process {
    /// Inspects the executable process `pid` runs (through `/proc/PID/exe`) and finds where
    /// its runtime keeps its goroutines.
    pub fn open(pid: u32) -> Result<Process, SnapshotError> {
        let binary = GoBinary::open(pid_exe(pid)?)?;
        let offsets = binary.offsets()?;
        let layout = Layout::new(&binary, &offsets)?;
        let bias = load_bias(pid, &binary).ok_or(SnapshotError::NotMapped { pid })?;
        Ok(Process {
            pid,
            bias,
            binary,
            offsets,
            layout,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn limits(&self) -> Limits {
        self.layout.limits
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.layout.limits = limits;
    }

    /// Reads every goroutine now, without stopping the process.
    pub fn take(&self) -> Result<Snapshot, SnapshotError> {
        take(self.pid, self.bias, &self.binary, &self.layout)
    }

    /// `g` by name, from the binary's pclntab.
    pub fn describe(&self, g: &Goroutine) -> Description {
        let mut sym = self.binary.symbolizer();
        let mut first = |pc: u64, role: Role| {
            frames_of(&self.binary, &mut sym, pc, self.bias, role)
                .into_iter()
                .next()
        };
        let start = first(g.startpc, Role::Start);
        let creation = first(g.gopc, Role::Return);
        let stack = g
            .stack
            .iter()
            .enumerate()
            .flat_map(|(i, &pc)| {
                let role = if i == 0 && g.resumes_at_entry {
                    Role::Exact
                } else {
                    Role::Return
                };
                frames_of(&self.binary, &mut sym, pc, self.bias, role)
            })
            .collect();
        let status = LIVE_STATUSES
            .iter()
            .chain(FREE_STATUSES)
            .find(|n| self.offsets.g_status_value(n) == Some(u32::from(g.status)))
            .map_or_else(|| format!("status {}", g.status), |n| n.to_string());
        let wait_reason = if u32::from(g.status) == self.layout.waiting {
            self.offsets
                .wait_reason_text(g.wait_reason)
                .unwrap_or_default()
                .to_string()
        } else {
            String::new()
        };
        Description {
            status,
            wait_reason,
            start,
            creation,
            stack,
        }
    }
}
