//! Windows: attaching and detaching probe groups on every target at once, when each group
//! was completely attached, and the file's record of it.
//!
//! A group's window runs from the moment its probes are all attached to the moment their
//! detach starts. Records of a group stamped outside its windows are dropped (attaching and
//! detaching take time, and a half-attached group would describe a half-observed program);
//! every change is written to each target as a `coverage` event with the groups now
//! attached and why. Records come out of the ring buffers after the change that bounds
//! them, so the changes of the last few seconds are kept to judge them.

use std::collections::VecDeque;
use std::fs::File;
use std::time::Instant;

use anyhow::Result;
use gcap_format::{Event, EventData, Writer};

use super::attach::Group;
use super::budget::Change;
use super::host::monotonic_ns;
use crate::probes::{GroupSet, ProbeId};

/// How long changes are kept to judge late records: records wait at most a drain interval
/// in the ring, far less than this.
const HORIZON_NS: u64 = 10_000_000_000;

/// How long after an attach or detach the targets still run slower (text pages the
/// probes changed are faulted in again), ns.
const SETTLE_NS: u64 = 50_000_000;

/// The windows of a capture.
#[derive(Debug)]
pub(crate) struct Windows {
    /// (time, groups completely attached from then on), oldest first.
    changes: VecDeque<(u64, GroupSet)>,
    /// Whether records outside windows are dropped (not with `--budget off`, whose
    /// records, as before budgets, include those of the attach itself).
    filter: bool,
    /// Lifecycle windows opened, and the time they covered (ns), for the summary.
    pub(crate) lifecycle_windows: u64,
    pub(crate) lifecycle_ns: u64,
    /// Wall time of each attach of groups, and of each binary's release of a detached
    /// group (from the detach's start until its last link is gone), ns.
    pub(crate) attach_ns: Vec<u64>,
    pub(crate) detach_ns: Vec<u64>,
    /// When gcap disturbed the targets, oldest first: while it attached or detached probes,
    /// and from the attach of probes beyond the spans to the end of their detach (u64::MAX:
    /// still there). Requests then ran slower because of gcap.
    disturbed: VecDeque<(u64, u64)>,
}

impl Windows {
    /// No group attached yet; `filter`: drop records outside windows.
    pub(crate) fn new(filter: bool) -> Windows {
        Windows {
            changes: VecDeque::new(),
            filter,
            lifecycle_windows: 0,
            lifecycle_ns: 0,
            attach_ns: Vec::new(),
            detach_ns: Vec::new(),
            disturbed: VecDeque::new(),
        }
    }

    /// The groups completely attached now.
    pub(crate) fn now(&self) -> GroupSet {
        self.changes.back().map_or(GroupSet::NONE, |c| c.1)
    }

    /// From `ts` on, `groups` are the groups completely attached: writes a `coverage` event
    /// with `cause` to each of `targets`.
    pub(crate) fn change(
        &mut self,
        w: &mut Writer<File>,
        targets: impl Iterator<Item = u32>,
        ts: u64,
        groups: GroupSet,
        cause: u8,
    ) -> Result<()> {
        if let Some(&(since, was)) = self.changes.back() {
            if was.contains(GroupSet::LIFECYCLE) {
                self.lifecycle_ns += ts.saturating_sub(since);
            }
        }
        if groups.minus(self.now()).contains(GroupSet::LIFECYCLE) {
            self.lifecycle_windows += 1;
        }
        self.changes.push_back((ts, groups));
        while self.changes.len() > 2 && self.changes[1].0 + HORIZON_NS < ts {
            self.changes.pop_front();
        }
        for target in targets {
            w.push(
                target,
                Event {
                    ts,
                    goid: 0,
                    data: EventData::Coverage {
                        groups: groups.0,
                        cause,
                    },
                },
            )?;
        }
        Ok(())
    }

    /// Makes `change` on every binary group: first detaches what it removes (its windows
    /// end when the detach starts), then attaches what it adds (theirs start once every
    /// probe is in place), and writes the coverage events to `targets`. A failed attach is
    /// undone and returned as a message; the capture goes on with what was attached.
    pub(crate) fn apply(
        &mut self,
        w: &mut Writer<File>,
        groups: &mut [Group],
        targets: &[u32],
        change: Change,
    ) -> Result<Option<String>> {
        let old = self.now();
        let kept = old.intersect(change.groups);
        if kept != old || change.groups == old {
            self.change(
                w,
                targets.iter().copied(),
                monotonic_ns(),
                kept,
                change.cause,
            )?;
            let from = monotonic_ns();
            for g in groups.iter_mut() {
                // Detaching cannot fail (links are closed). It returns once the closes have
                // started; `released` learns when they end.
                let _ = g.probes.set_groups(kept);
            }
            if kept != old {
                self.disturb(from, monotonic_ns(), kept, windowed(old.minus(kept)));
            }
        }
        if change.groups == kept {
            return Ok(None);
        }
        let t = Instant::now();
        let from = monotonic_ns();
        let attached = groups
            .iter_mut()
            .try_for_each(|g| g.probes.set_groups(change.groups));
        if let Err(e) = attached {
            for g in groups.iter_mut() {
                let _ = g.probes.set_groups(kept);
            }
            self.disturb(from, monotonic_ns(), kept, true);
            return Ok(Some(format!(
                "could not attach the {} probes for a window ({e}); the capture goes on without them",
                change.groups.minus(kept)
            )));
        }
        self.attach_ns.push(t.elapsed().as_nanos() as u64);
        let heavy = windowed(change.groups.minus(kept));
        self.disturb(from, monotonic_ns(), change.groups, heavy);
        self.change(
            w,
            targets.iter().copied(),
            monotonic_ns(),
            change.groups,
            change.cause,
        )?;
        Ok(None)
    }

    /// Takes note of the detaches that have ended: their durations, and the targets were
    /// disturbed until then (the probes were there until the release ended).
    pub(crate) fn released(&mut self, groups: &mut [Group]) {
        for (from, to) in groups.iter_mut().flat_map(|g| g.probes.released()) {
            self.detach_ns.push(to.saturating_sub(from));
            if windowed(self.now()) {
                continue; // disturbed until the window's detach anyway
            }
            if let Some(d) = self.disturbed.back_mut() {
                if d.1 >= from {
                    d.1 = d.1.max(to);
                }
            }
        }
    }

    /// Probes were attached or detached from `from` to `to`, and `groups` are attached
    /// now: the targets were disturbed from `from` until then, or, while probes beyond the
    /// spans stay attached, until they are gone. `heavy`: probes beyond the spans moved,
    /// and the targets run slower for a while after (their text pages faulted in again);
    /// the three span sites alone do not slow them measurably.
    fn disturb(&mut self, from: u64, to: u64, groups: GroupSet, heavy: bool) {
        let to = if windowed(groups) {
            u64::MAX
        } else if heavy {
            to + SETTLE_NS
        } else {
            to
        };
        match self.disturbed.back_mut() {
            // Still disturbed since an earlier attach (or settling from it).
            Some(d) if d.1 == u64::MAX || d.1 >= from => d.1 = to,
            _ => self.disturbed.push_back((from, to)),
        }
        while self.disturbed.len() > 1 && self.disturbed[0].1.saturating_add(HORIZON_NS) < from {
            self.disturbed.pop_front();
        }
    }

    /// Whether a request that ran from `start` to `end` ran with only the spans' probes in
    /// the targets (gcap's heavier probes slow requests down: such requests say nothing
    /// about the service's own latency).
    pub(crate) fn undisturbed(&self, start: u64, end: u64) -> bool {
        !self
            .disturbed
            .iter()
            .any(|&(from, to)| from <= end && start <= to)
    }

    /// Whether the spans have been attached to every target without a break since `ts`.
    pub(crate) fn spans_on_since(&self, ts: u64) -> bool {
        let i = self.changes.partition_point(|c| c.0 <= ts);
        let since = i.saturating_sub(1);
        self.changes
            .range(since..)
            .all(|&(_, groups)| groups.contains(GroupSet::SPANS))
    }

    /// Whether a record of `probe` stamped `ts` lies in a window of its group. Records of
    /// probes outside every group (process exit) always do. A window includes both ends.
    pub(crate) fn covers(&self, probe: Option<ProbeId>, ts: u64) -> bool {
        let Some(group) = probe.and_then(GroupSet::of) else {
            return true;
        };
        if !self.filter {
            return true;
        }
        // The last change at or before `ts`, and the one before it (a record stamped at the
        // very moment its group's detach started is still inside).
        let i = self.changes.partition_point(|c| c.0 <= ts);
        let Some(i) = i.checked_sub(1) else {
            return false;
        };
        let (at, groups) = self.changes[i];
        groups.contains(group) || (at == ts && i > 0 && self.changes[i - 1].1.contains(group))
    }
}

/// Whether `groups` has probes beyond the spans.
fn windowed(groups: GroupSet) -> bool {
    !groups.minus(GroupSet::SPANS).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(changes: &[(u64, GroupSet)]) -> Windows {
        let mut w = Windows::new(true);
        w.changes.extend(changes.iter().copied());
        w
    }

    #[test]
    fn records_inside_windows_are_kept() {
        let spans = GroupSet::SPANS;
        let both = spans.union(GroupSet::LIFECYCLE);
        let w = windows(&[(100, spans), (200, both), (300, spans)]);
        let gopark = Some(ProbeId::Gopark);
        let serve = Some(ProbeId::HttpServe);
        assert!(!w.covers(gopark, 99));
        assert!(!w.covers(serve, 99), "before the start: nothing attached");
        assert!(w.covers(serve, 100));
        assert!(!w.covers(gopark, 199));
        assert!(w.covers(gopark, 200));
        assert!(w.covers(gopark, 250));
        assert!(w.covers(gopark, 300), "the detach started at 300");
        assert!(!w.covers(gopark, 301));
        assert!(w.covers(serve, 1_000));
        assert!(w.covers(Some(ProbeId::ProcessExit), 0));
        assert!(w.covers(None, 0));
    }

    #[test]
    fn requests_during_windows_are_disturbed() {
        let mut w = Windows::new(true);
        w.disturbed.extend([(100, 200), (300, u64::MAX)]);
        assert!(w.undisturbed(0, 99));
        assert!(!w.undisturbed(50, 100));
        assert!(!w.undisturbed(150, 160));
        assert!(w.undisturbed(201, 299));
        assert!(!w.undisturbed(250, 1_000));
    }

    #[test]
    fn a_request_is_followed_only_while_spans_stay_on() {
        let spans = GroupSet::SPANS;
        let w = windows(&[(100, spans), (200, GroupSet::NONE), (300, spans)]);
        assert!(!w.spans_on_since(150), "spans went off at 200");
        assert!(!w.spans_on_since(250));
        assert!(w.spans_on_since(300));
        assert!(w.spans_on_since(1_000));
    }

    #[test]
    fn without_filter_everything_is_kept() {
        let mut w = windows(&[(100, GroupSet::SPANS)]);
        w.filter = false;
        assert!(w.covers(Some(ProbeId::Gopark), 50));
    }
}
