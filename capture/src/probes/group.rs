//! Probe groups: the probes gcap attaches and detaches together when a budgeted capture
//! opens and closes windows. A group's bit is its `gcap_format::probe_group` bit, the one
//! the file's `coverage` events name.

use gcap_format::probe_group;

use super::plan::ProbeId;

/// A set of probe groups (`gcap_format::probe_group` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GroupSet(pub u32);

impl GroupSet {
    pub const NONE: GroupSet = GroupSet(0);
    /// HTTP and SQL spans.
    pub const SPANS: GroupSet = GroupSet(probe_group::SPANS);
    /// Goroutine create, start, stop, block, unblock, exit, GC and stop-the-world.
    pub const LIFECYCLE: GroupSet = GroupSet(probe_group::LIFECYCLE);
    /// `sched_switch`.
    pub const SCHED: GroupSet = GroupSet(probe_group::SCHED);
    /// CPU samples.
    pub const SAMPLES: GroupSet = GroupSet(probe_group::SAMPLES);
    /// System call entry and exit.
    pub const SYSCALLS: GroupSet = GroupSet(probe_group::SYSCALLS);
    /// Every group.
    pub const ALL: GroupSet = GroupSet(
        probe_group::SPANS
            | probe_group::LIFECYCLE
            | probe_group::SCHED
            | probe_group::SAMPLES
            | probe_group::SYSCALLS,
    );

    /// The group `probe` belongs to; `None` for probes that are always attached (the
    /// process-exit tracepoint: gcap must notice a target leave).
    pub fn of(probe: ProbeId) -> Option<GroupSet> {
        if probe.family().is_some() {
            return Some(GroupSet::SPANS);
        }
        Some(match probe {
            ProbeId::ProcessExit => return None,
            ProbeId::SchedSwitch => GroupSet::SCHED,
            ProbeId::CpuSample => GroupSet::SAMPLES,
            ProbeId::Reentersyscall | ProbeId::Entersyscallblock | ProbeId::Exitsyscall => {
                GroupSet::SYSCALLS
            }
            _ => GroupSet::LIFECYCLE,
        })
    }

    /// Whether `probe` is attached when this set is: always for probes outside any group.
    pub fn attaches(self, probe: ProbeId) -> bool {
        GroupSet::of(probe).is_none_or(|g| self.contains(g))
    }

    pub fn contains(self, other: GroupSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: GroupSet) -> GroupSet {
        GroupSet(self.0 | other.0)
    }

    pub fn minus(self, other: GroupSet) -> GroupSet {
        GroupSet(self.0 & !other.0)
    }

    pub fn intersect(self, other: GroupSet) -> GroupSet {
        GroupSet(self.0 & other.0)
    }

    /// Each group of the set on its own, lowest bit first.
    pub fn each(self) -> impl Iterator<Item = GroupSet> {
        (0..32)
            .map(|b| 1u32 << b)
            .filter(move |bit| self.0 & bit != 0)
            .map(GroupSet)
    }
}

impl std::fmt::Display for GroupSet {
    /// "spans+lifecycle", or "none".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self
            .each()
            .map(|g| match g.0 {
                probe_group::SPANS => "spans",
                probe_group::LIFECYCLE => "lifecycle",
                probe_group::SCHED => "sched",
                probe_group::SAMPLES => "samples",
                probe_group::SYSCALLS => "syscalls",
                _ => "unknown",
            })
            .collect();
        f.write_str(&names.join("+"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_has_its_group() {
        assert_eq!(GroupSet::of(ProbeId::ProcessExit), None);
        assert_eq!(GroupSet::of(ProbeId::Gopark), Some(GroupSet::LIFECYCLE));
        assert_eq!(GroupSet::of(ProbeId::GcStart), Some(GroupSet::LIFECYCLE));
        assert_eq!(GroupSet::of(ProbeId::HttpServe), Some(GroupSet::SPANS));
        assert_eq!(GroupSet::of(ProbeId::SqlExecRet), Some(GroupSet::SPANS));
        assert_eq!(GroupSet::of(ProbeId::Exitsyscall), Some(GroupSet::SYSCALLS));
        assert_eq!(GroupSet::of(ProbeId::SchedSwitch), Some(GroupSet::SCHED));
        assert_eq!(GroupSet::of(ProbeId::CpuSample), Some(GroupSet::SAMPLES));
        for p in ProbeId::ALL {
            assert!(GroupSet::ALL.attaches(p), "{p:?}");
        }
        assert!(GroupSet::NONE.attaches(ProbeId::ProcessExit));
        assert!(!GroupSet::SPANS.attaches(ProbeId::Execute));
    }

    #[test]
    fn sets() {
        let s = GroupSet::SPANS.union(GroupSet::LIFECYCLE);
        assert_eq!(s.to_string(), "spans+lifecycle");
        assert_eq!(s.minus(GroupSet::SPANS), GroupSet::LIFECYCLE);
        assert_eq!(GroupSet::NONE.to_string(), "none");
        assert_eq!(GroupSet::ALL.each().count(), 5);
    }
}
