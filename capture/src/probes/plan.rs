//! What to attach where: the probe catalogue, capture levels, and [`ProbePlan`], the plain
//! configuration [`super::Probes::load`] takes (filled from `inspect` by the caller).

use std::path::PathBuf;

/// One BPF program. The discriminant is `enum gcap_probe` in `bpf/gcap.h` (index of the
/// per-CPU hit counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ProbeId {
    Newproc1Ret = 0,
    Execute = 1,
    Gopark = 2,
    Ready = 3,
    Injectglist = 4,
    Gosched = 5,
    Goyield = 6,
    Reentersyscall = 7,
    Entersyscallblock = 8,
    Exitsyscall = 9,
    Goexit1 = 10,
    GcStart = 11,
    GcMarkTermination = 12,
    StopTheWorld = 13,
    StartTheWorld = 14,
    SchedSwitch = 15,
    ProcessExit = 16,
}

/// Where on its function a uprobe goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// After the stack-check prologue, at the `PUSHQ BP` (Go >= 1.21; 1.19/1.20 have no
    /// PUSHQ BP there: use the stack-check `JBE` itself, see [`ProbeSite::at_jbe`]).
    /// `nosplit` functions have no stack check: their first instruction. Never the first
    /// instruction of a function with a stack check (~10 us, double hits after morestack).
    Body,
    /// Every `RET` of the function (no uretprobes on Go).
    Returns,
    /// A kernel tracepoint: no offsets.
    Tracepoint,
}

impl ProbeId {
    pub const ALL: [ProbeId; 17] = [
        ProbeId::Newproc1Ret,
        ProbeId::Execute,
        ProbeId::Gopark,
        ProbeId::Ready,
        ProbeId::Injectglist,
        ProbeId::Gosched,
        ProbeId::Goyield,
        ProbeId::Reentersyscall,
        ProbeId::Entersyscallblock,
        ProbeId::Exitsyscall,
        ProbeId::Goexit1,
        ProbeId::GcStart,
        ProbeId::GcMarkTermination,
        ProbeId::StopTheWorld,
        ProbeId::StartTheWorld,
        ProbeId::SchedSwitch,
        ProbeId::ProcessExit,
    ];

    pub fn from_index(i: u8) -> Option<ProbeId> {
        ProbeId::ALL.get(i as usize).copied()
    }

    /// The Go function the probe is attached to (same name on Go 1.19-1.27), or the
    /// tracepoint.
    pub fn symbol(self) -> &'static str {
        match self {
            ProbeId::Newproc1Ret => "runtime.newproc1",
            ProbeId::Execute => "runtime.execute",
            ProbeId::Gopark => "runtime.gopark",
            ProbeId::Ready => "runtime.ready",
            ProbeId::Injectglist => "runtime.injectglist",
            ProbeId::Gosched => "runtime.goschedImpl",
            ProbeId::Goyield => "runtime.goyield_m",
            ProbeId::Reentersyscall => "runtime.reentersyscall",
            ProbeId::Entersyscallblock => "runtime.entersyscallblock",
            ProbeId::Exitsyscall => "runtime.exitsyscall",
            ProbeId::Goexit1 => "runtime.goexit1",
            ProbeId::GcStart => "runtime.gcBgMarkStartWorkers",
            ProbeId::GcMarkTermination => "runtime.gcMarkTermination",
            ProbeId::StopTheWorld => "runtime.stopTheWorldWithSema",
            ProbeId::StartTheWorld => "runtime.startTheWorldWithSema",
            ProbeId::SchedSwitch => "sched/sched_switch",
            ProbeId::ProcessExit => "sched/sched_process_exit",
        }
    }

    pub fn site(self) -> Site {
        match self {
            ProbeId::Newproc1Ret => Site::Returns,
            ProbeId::SchedSwitch | ProbeId::ProcessExit => Site::Tracepoint,
            _ => Site::Body,
        }
    }

    /// Lowest capture level that attaches this probe.
    pub fn min_level(self) -> Level {
        match self {
            ProbeId::ProcessExit => Level::Spans,
            ProbeId::Reentersyscall
            | ProbeId::Entersyscallblock
            | ProbeId::Exitsyscall
            | ProbeId::SchedSwitch => Level::Full,
            _ => Level::Lifecycle,
        }
    }

    /// Probes a level attaches.
    pub fn for_level(level: Level) -> impl Iterator<Item = ProbeId> {
        ProbeId::ALL
            .into_iter()
            .filter(move |p| p.min_level() <= level)
    }
}

impl std::fmt::Display for ProbeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Capture level (contract: lighter and richer levels are options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    /// No runtime probes: only process exit here (span probes live elsewhere).
    Spans,
    /// create / start / block (reason + stack) / unblock (waker) / preempt / exit, GC, STW.
    #[default]
    Lifecycle,
    /// Lifecycle + syscalls + kernel sched_switch + deeper block stacks.
    Full,
}

impl Level {
    /// Frames kept per block stack (the stack map's value size / 8; the kernel caps user
    /// stacks at `kernel.perf_event_max_stack`, 127 by default).
    pub fn stack_depth(self) -> u32 {
        match self {
            Level::Spans => 0,
            Level::Lifecycle => 32,
            Level::Full => 127,
        }
    }
}

/// Byte offsets into `runtime.g` / `runtime.m` of one Go version (the subset the BPF
/// programs read). `g.schedlink` is always `goid + 8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeOffsets {
    pub g_goid: u64,
    pub g_m: u64,
    /// `None` on Go 1.19 (no `g.parentGoid`): the parent comes from `g0.m.curg`.
    pub g_parent_goid: Option<u64>,
    pub g_gopc: u64,
    pub g_startpc: u64,
    pub m_curg: u64,
}

impl RuntimeOffsets {
    /// The measured table (shared/reference/go-runtime-probe-map.md section 2) for Go
    /// `1.<minor>`; `None` for versions not measured (1.20, newer than 1.27). Prefer DWARF or
    /// `inspect`'s offsets when available; this is the fallback for stripped binaries.
    pub fn for_go_minor(minor: u32) -> Option<RuntimeOffsets> {
        let (g_goid, g_parent_goid, g_gopc, g_startpc, m_curg) = match minor {
            19 => (152, None, 296, 312, 192),
            21 | 22 => (152, Some(272), 280, 296, 192),
            23 | 24 => (160, Some(280), 288, 304, 192),
            25 => (152, Some(272), 280, 296, 184),
            26 | 27 => (152, Some(280), 288, 304, 184),
            _ => return None,
        };
        Some(RuntimeOffsets {
            g_goid,
            g_m: 48,
            g_parent_goid,
            g_gopc,
            g_startpc,
            m_curg,
        })
    }
}

/// Where one probe goes in the target binary: file offsets (not virtual addresses), so
/// PIE and non-PIE binaries are handled alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSite {
    pub probe: ProbeId,
    /// [`Site::Body`]: one offset (function file offset + prologue length).
    /// [`Site::Returns`]: one per RET.
    pub file_offsets: Vec<u64>,
    /// The offsets are the prologue's stack-check `JBE` rather than a `PUSHQ BP` (Go 1.19
    /// and 1.20 frames have none: `SUBQ $n, SP` follows the JBE, and the kernel would
    /// single-step it at ~20 us per hit). A Jcc is emulated (~0.8 us); the BPF program reads
    /// EFLAGS and drops the hit when the branch to morestack is taken (the function restarts
    /// from its entry and hits again). Only meaningful for [`Site::Body`].
    pub at_jbe: bool,
}

/// Everything [`super::Probes::load`] needs for one target binary.
#[derive(Debug, Clone)]
pub struct ProbePlan {
    /// The Go executable the uprobes go into (every attached pid must run this file).
    pub binary: PathBuf,
    /// Go minor version (19 for go1.19.x): selects register conventions.
    pub go_minor: u32,
    pub offsets: RuntimeOffsets,
    pub level: Level,
    /// Uprobe sites. Probes of the level without a site are reported by
    /// [`super::Probes::missing`]; sites of probes above the level are ignored.
    pub sites: Vec<ProbeSite>,
    /// Ring buffer size in bytes (power of two, >= 4096). 0 = default for the level.
    pub ringbuf_bytes: u32,
    /// Capture a user stack at every block.
    pub block_stacks: bool,
}

impl ProbePlan {
    pub fn new(
        binary: impl Into<PathBuf>,
        go_minor: u32,
        offsets: RuntimeOffsets,
        level: Level,
    ) -> Self {
        ProbePlan {
            binary: binary.into(),
            go_minor,
            offsets,
            level,
            sites: Vec::new(),
            ringbuf_bytes: 0,
            block_stacks: level >= Level::Lifecycle,
        }
    }

    pub fn site(&self, probe: ProbeId) -> Option<&ProbeSite> {
        self.sites.iter().find(|s| s.probe == probe)
    }

    /// Uprobes of the plan's level that have no site (not found in the binary).
    pub fn missing(&self) -> Vec<ProbeId> {
        ProbeId::for_level(self.level)
            .filter(|p| p.site() != Site::Tracepoint)
            .filter(|p| self.site(*p).is_none_or(|s| s.file_offsets.is_empty()))
            .collect()
    }

    pub(crate) fn validate(&self) -> Result<(), super::ProbeError> {
        let n = self.ringbuf_size();
        if !n.is_power_of_two() || n < 4096 {
            return Err(super::ProbeError::Plan(format!(
                "ring buffer size {n} is not a power of two >= 4096"
            )));
        }
        Ok(())
    }

    pub(crate) fn ringbuf_size(&self) -> u32 {
        match self.ringbuf_bytes {
            0 if self.level == Level::Full => 32 << 20,
            0 => 8 << 20,
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_ids_are_dense() {
        for (i, p) in ProbeId::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i);
            assert_eq!(ProbeId::from_index(i as u8), Some(*p));
        }
        assert_eq!(ProbeId::from_index(17), None);
    }

    #[test]
    fn levels_nest() {
        assert_eq!(
            ProbeId::for_level(Level::Spans).collect::<Vec<_>>(),
            [ProbeId::ProcessExit]
        );
        assert!(!ProbeId::for_level(Level::Lifecycle).any(|p| p == ProbeId::SchedSwitch));
        assert_eq!(ProbeId::for_level(Level::Full).count(), ProbeId::ALL.len());
    }

    #[test]
    fn offsets_table() {
        assert_eq!(RuntimeOffsets::for_go_minor(23).unwrap().g_goid, 160);
        assert_eq!(
            RuntimeOffsets::for_go_minor(19).unwrap().g_parent_goid,
            None
        );
        assert!(RuntimeOffsets::for_go_minor(20).is_none());
    }
}
