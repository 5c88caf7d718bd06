//! What a capture covered and what it cost: when each group of probes was attached for each
//! target (its windows, from the `coverage` records), the share of the capture's time each
//! group covered, and gcap's measured cost (the last `overhead` record of each target).
//!
//! A target without `coverage` records (every capture written before budgets, and targets a
//! capture never toggled) is covered for the whole capture by the groups its capture level
//! implies: `spans` gives spans only, `lifecycle` and `full` give every group. Time a group
//! did not cover is unknown for that group: reconstruction never counts it as running,
//! blocked or idle (see `goroutine::builder`).

use gcap_format::{probe_group, Capture, EventData, EventKind, BUDGET_FLOOR_NS_PER_S};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::capture_set::Ns;
use crate::units::fmt_ns;

/// The contract's `coverage` object: the fraction (0..1) of the capture's time during which
/// spans and goroutine lifecycles were recorded (for at least one target), and how many
/// separate lifecycle windows there were.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Coverage {
    pub spans: f64,
    pub lifecycle: f64,
    pub windows: u64,
}

/// The contract's `overhead` object, of a capture that measured its cost: the budget asked
/// for (a fraction of the targets' CPU; None: `--budget off`) and gcap's measured cost as a
/// fraction of the targets' CPU. A capture without a measurement (one that predates budgets)
/// has none: `overhead` is null.
///
/// A budget never allows less than gcap's floor ([`BUDGET_FLOOR_NS_PER_S`]), so a nearly idle
/// target can see a cost far above its budget's share: `floor` says so (and is left out of
/// JSON when false).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Overhead {
    pub budget: Option<f64>,
    pub measured: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub floor: bool,
    #[serde(skip)]
    pub cost_ns: u64,
    #[serde(skip)]
    pub target_cpu_ns: u64,
}

/// The last `overhead` record of a target: (time, budget ppm, cost ns, target CPU ns).
type OverheadRecord = (Ns, u32, u64, u64);

/// The `coverage` and `overhead` records of one capture file, as read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Records {
    /// (target, time, groups attached from then on), in any order.
    changes: Vec<(u32, Ns, u32)>,
    /// Per target, its latest record.
    overhead: FxHashMap<u32, OverheadRecord>,
}

impl Records {
    /// Whether events of this kind are records this module reads.
    #[inline]
    pub(crate) fn wants(kind: u8) -> bool {
        kind == EventKind::Coverage as u8 || kind == EventKind::Overhead as u8
    }

    /// Takes a `coverage` or `overhead` event of `target` at `t` (others are ignored).
    pub(crate) fn add(&mut self, target: u32, t: Ns, data: &EventData) {
        match *data {
            EventData::Coverage { groups, .. } => self.changes.push((target, t, groups)),
            EventData::Overhead {
                budget_ppm,
                cost_ns,
                target_cpu_ns,
                ..
            } => {
                let e =
                    self.overhead
                        .entry(target)
                        .or_insert((t, budget_ppm, cost_ns, target_cpu_ns));
                // Cumulative: the latest one counts (the later one of equal times).
                if t >= e.0 {
                    *e = (t, budget_ppm, cost_ns, target_cpu_ns);
                }
            }
            _ => {}
        }
    }

    /// Adds another block's records.
    pub(crate) fn merge(&mut self, other: Records) {
        self.changes.extend(other.changes);
        for (target, r) in other.overhead {
            let e = self.overhead.entry(target).or_insert(r);
            if r.0 >= e.0 {
                *e = r;
            }
        }
    }
}

/// The groups a capture level records, for targets without `coverage` records.
fn implied_groups(level: &str) -> u32 {
    match level {
        "spans" => probe_group::SPANS,
        _ => u32::MAX,
    }
}

/// Time intervals [start, end), sorted and apart.
type Windows = Vec<(Ns, Ns)>;

/// When each group of probes was attached for each target of one capture file.
#[derive(Clone, Debug)]
pub struct FileCoverage {
    start: Ns,
    end: Ns,
    /// Groups of targets without records.
    implied: u32,
    /// Per target with records: (target, spans windows, lifecycle windows).
    targets: Vec<(u32, Windows, Windows)>,
    /// Whether some target of the capture has no records (the level's groups cover it).
    implied_targets: bool,
    overhead: Vec<OverheadRecord>,
}

impl FileCoverage {
    /// The coverage of a capture of `level` with targets `ids` that ran from `start` to
    /// `end`, from its records.
    pub(crate) fn new(
        level: &str,
        ids: &[u32],
        start: Ns,
        end: Ns,
        records: Records,
    ) -> FileCoverage {
        let mut per: FxHashMap<u32, Vec<(Ns, u32)>> = FxHashMap::default();
        for (target, t, groups) in records.changes {
            per.entry(target).or_default().push((t, groups));
        }
        let mut targets: Vec<_> = per
            .into_iter()
            .map(|(target, mut changes)| {
                // Stable: two records at one instant keep their file order (the last wins).
                changes.sort_by_key(|c| c.0);
                (
                    target,
                    windows_of(&changes, probe_group::SPANS),
                    windows_of(&changes, probe_group::LIFECYCLE),
                )
            })
            .collect();
        targets.sort_by_key(|t| t.0);
        let implied_targets =
            targets.is_empty() || ids.iter().any(|id| !targets.iter().any(|t| t.0 == *id));
        let mut overhead: Vec<OverheadRecord> = records.overhead.into_values().collect();
        overhead.sort_unstable();
        FileCoverage {
            start,
            end,
            implied: implied_groups(level),
            targets,
            implied_targets,
            overhead,
        }
    }

    /// Reads the records of a capture (its blocks in parallel; blocks without such records
    /// are skipped without decoding their events) on its monotonic clock: what `info` needs
    /// without an analysis. `start` and `end` are the capture's, on that clock.
    pub fn of_capture(cap: &Capture, start: u64, end: u64) -> FileCoverage {
        let per_block = cap.par_map_blocks(|p| {
            let a = p.block();
            let mut r = Records::default();
            let has = |k: EventKind| a.schema.get(k as usize).is_some_and(|&n| n > 0);
            if !has(EventKind::Coverage) && !has(EventKind::Overhead) {
                return Ok(r);
            }
            let target = a.target;
            // A damaged block counts as far as it is intact (the analysis warns about it).
            let _ = a.for_each_raw(|raw| {
                if Records::wants(raw.kind) {
                    if let Some(ev) = raw.to_event() {
                        r.add(target, raw.ts as Ns, &ev.data);
                    }
                }
            });
            Ok(r)
        });
        let mut records = Records::default();
        for r in per_block.into_iter().flatten() {
            records.merge(r);
        }
        let level = cap.meta().map_or("", |m| m.level.as_str());
        let ids: Vec<u32> = cap.targets().iter().map(|t| t.id).collect();
        FileCoverage::new(level, &ids, start as Ns, end as Ns, records)
    }

    /// Whether the capture recorded when its probes were attached (a budgeted capture, or one
    /// that says it covered everything); false for captures that predate budgets.
    pub fn windowed(&self) -> bool {
        !self.targets.is_empty()
    }

    /// The lifecycle windows of a target (None: covered for the whole capture).
    pub(crate) fn lifecycle(&self, target: u32) -> Option<&[(Ns, Ns)]> {
        match self.targets.iter().find(|t| t.0 == target) {
            Some((_, _, lifecycle)) => Some(lifecycle),
            None if self.implied & probe_group::LIFECYCLE != 0 => None,
            None => Some(&[]),
        }
    }

    /// Whether the lifecycle probes were attached for `target` from `a` to `b`, throughout.
    pub(crate) fn lifecycle_covers(&self, target: u32, a: Ns, b: Ns) -> bool {
        match self.lifecycle(target) {
            None => true,
            Some(w) => inside(w, a, b),
        }
    }

    /// When the span probes of `target` were detached after `t`, if they were before the
    /// capture ended: a span started at `t` and not seen to end may have ended after that
    /// (its end was not recorded), so it is known to have lasted until then, no longer.
    pub(crate) fn spans_detached_after(&self, target: u32, t: Ns) -> Option<Ns> {
        let (_, spans, _) = self.targets.iter().find(|x| x.0 == target)?;
        let i = spans.partition_point(|w| w.1 < t);
        spans
            .get(i)
            .filter(|w| w.0 <= t)
            .map(|w| w.1)
            .filter(|&end| end < self.end)
    }

    /// The union over the targets of a group's windows, clipped to the capture.
    fn union(&self, group: u32) -> Windows {
        let mut all = Windows::new();
        // Targets without records: the implied groups, for the whole capture.
        if self.implied & group != 0 && self.implied_targets {
            all.push((self.start, self.end));
        }
        for (_, spans, lifecycle) in &self.targets {
            let w = if group == probe_group::SPANS {
                spans
            } else {
                lifecycle
            };
            all.extend(
                w.iter()
                    .map(|&(a, b)| (a.max(self.start), b.min(self.end)))
                    .filter(|(a, b)| b > a),
            );
        }
        all.sort_unstable();
        let mut out = Windows::new();
        for (a, b) in all {
            match out.last_mut() {
                Some(l) if a <= l.1 => l.1 = l.1.max(b),
                _ => out.push((a, b)),
            }
        }
        out
    }

    /// The contract's `coverage`.
    pub fn coverage(&self) -> Coverage {
        let dur = (self.end - self.start).max(0);
        let share = |group: u32| {
            let u = self.union(group);
            if dur == 0 {
                // A capture of no length: covered when the group was on at its start.
                let on = u.iter().any(|&(a, b)| a <= self.start && self.start <= b)
                    || (self.implied & group != 0 && self.implied_targets);
                return if on { 1.0 } else { 0.0 };
            }
            u.iter().map(|(a, b)| b - a).sum::<Ns>() as f64 / dur as f64
        };
        let windows = if dur == 0 {
            (share(probe_group::LIFECYCLE) > 0.0) as u64
        } else {
            self.union(probe_group::LIFECYCLE).len() as u64
        };
        Coverage {
            spans: share(probe_group::SPANS),
            lifecycle: share(probe_group::LIFECYCLE),
            windows,
        }
    }

    /// The contract's `overhead`: the budget of the targets' latest records, and the cost
    /// summed over the targets against their CPU time summed (None: no records).
    pub fn overhead(&self) -> Option<Overhead> {
        if self.overhead.is_empty() {
            return None;
        }
        let ppm = self.overhead.iter().map(|o| o.1).max().unwrap_or(0);
        let cost: u64 = self.overhead.iter().map(|o| o.2).sum();
        let cpu: u64 = self.overhead.iter().map(|o| o.3).sum();
        let budget = (ppm > 0).then(|| ppm as f64 / 1e6);
        let measured = if cpu > 0 {
            cost as f64 / cpu as f64
        } else {
            0.0
        };
        let floor_ns =
            BUDGET_FLOOR_NS_PER_S as f64 * self.end.saturating_sub(self.start) as f64 / 1e9;
        Some(Overhead {
            budget,
            measured,
            floor: budget.is_some_and(|b| measured > b && b * (cpu as f64) < floor_ns),
            cost_ns: cost,
            target_cpu_ns: cpu,
        })
    }
}

/// The windows during which `group` was attached, from a target's (time, groups) changes in
/// time order; the last one stays open (ends at `Ns::MAX`).
fn windows_of(changes: &[(Ns, u32)], group: u32) -> Windows {
    let mut out = Windows::new();
    let mut open: Option<Ns> = None;
    for &(t, groups) in changes {
        match (open, groups & group != 0) {
            (None, true) => open = Some(t),
            (Some(a), false) => {
                if t > a {
                    out.push((a, t));
                }
                open = None;
            }
            _ => {}
        }
    }
    if let Some(a) = open {
        out.push((a, Ns::MAX));
    }
    out
}

/// Whether [a, b] lies inside one of the sorted, apart `windows`.
pub(crate) fn inside(windows: &[(Ns, Ns)], a: Ns, b: Ns) -> bool {
    let i = windows.partition_point(|w| w.1 < b);
    windows.get(i).is_some_and(|w| w.0 <= a && b <= w.1)
}

/// "lifecycle 3.1% of the time in 12 windows, spans 100%": a capture's coverage in words.
pub fn describe(c: &Coverage) -> String {
    format!(
        "lifecycle {} of the time in {} window{}, spans {}",
        percent(c.lifecycle),
        c.windows,
        if c.windows == 1 { "" } else { "s" },
        percent(c.spans)
    )
}

/// "1.5% of the targets' CPU (budget 2%)": gcap's measured cost in words (None: the capture
/// holds no measurement).
pub fn describe_overhead(o: Option<Overhead>) -> Option<String> {
    let o = o?;
    if o.floor {
        // A share of a nearly idle target's CPU means nothing: say what was spent.
        return Some(format!(
            "{} of CPU while the targets used {} (budget {}, raised to its floor of {} of CPU a second)",
            fmt_ns(o.cost_ns),
            fmt_ns(o.target_cpu_ns),
            percent(o.budget.unwrap_or(0.0)),
            fmt_ns(BUDGET_FLOOR_NS_PER_S)
        ));
    }
    Some(format!(
        "{} of the targets' CPU ({})",
        percent(o.measured),
        o.budget.map_or_else(
            || "no budget".to_string(),
            |b| format!("budget {}", percent(b))
        )
    ))
}

/// A share as a percentage: one decimal below 10% ("3.1%"), none above ("42%", "100%").
pub fn percent(x: f64) -> String {
    let p = x * 100.0;
    if p > 0.0 && p < 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gcap_format::probe_group::{LIFECYCLE, SPANS};

    /// A capture of targets `ids` from 0 to 1000 ns with these (target, time, groups) records.
    fn cov(ids: &[u32], changes: &[(u32, Ns, u32)]) -> FileCoverage {
        let mut r = Records::default();
        for &(target, t, groups) in changes {
            r.add(target, t, &EventData::Coverage { groups, cause: 0 });
        }
        FileCoverage::new("lifecycle", ids, 0, 1000, r)
    }

    #[test]
    fn captures_without_records_are_covered_by_their_level() {
        let c = FileCoverage::new("lifecycle", &[0], 0, 1000, Records::default());
        assert!(!c.windowed());
        assert_eq!(
            c.coverage(),
            Coverage {
                spans: 1.0,
                lifecycle: 1.0,
                windows: 1
            }
        );
        assert!(c.lifecycle_covers(0, -5, 5000));
        let s = FileCoverage::new("spans", &[0], 0, 1000, Records::default());
        assert_eq!(
            s.coverage(),
            Coverage {
                spans: 1.0,
                lifecycle: 0.0,
                windows: 0
            }
        );
        assert!(!s.lifecycle_covers(0, 10, 20));
        assert_eq!(c.overhead(), None);
    }

    #[test]
    fn windows_come_from_the_records() {
        let both = SPANS | LIFECYCLE;
        let c = cov(
            &[0],
            &[
                (0, 0, SPANS),
                (0, 100, both),
                (0, 150, both | 8), // samples on: still the same lifecycle window
                (0, 200, SPANS),
                (0, 600, both),
                (0, 900, 0),
            ],
        );
        assert!(c.windowed());
        assert_eq!(c.lifecycle(0), Some(&[(100, 200), (600, 900)][..]));
        let v = c.coverage();
        assert_eq!(v.windows, 2);
        assert!((v.lifecycle - 0.4).abs() < 1e-9);
        assert!((v.spans - 0.9).abs() < 1e-9);
        assert!(c.lifecycle_covers(0, 120, 200));
        assert!(
            !c.lifecycle_covers(0, 190, 210),
            "straddles the window's end"
        );
        assert!(!c.lifecycle_covers(0, 300, 400), "between windows");
        assert_eq!(
            describe(&v),
            "lifecycle 40% of the time in 2 windows, spans 90%"
        );
    }

    #[test]
    fn an_open_window_lasts_to_the_end_and_targets_are_united() {
        let records = [(0, 500, LIFECYCLE), (1, 0, LIFECYCLE), (1, 100, 0)];
        let c = cov(&[0, 1], &records);
        assert_eq!(c.lifecycle(0), Some(&[(500, Ns::MAX)][..]));
        let v = c.coverage();
        assert!((v.lifecycle - 0.6).abs() < 1e-9);
        assert_eq!(v.windows, 2);
        assert_eq!(v.spans, 0.0);
        // A target without records in a capture that has them: covered by the level.
        let c = cov(&[0, 1, 2], &records);
        assert!(c.lifecycle_covers(2, 0, 1000));
        assert_eq!(c.coverage().lifecycle, 1.0);
    }

    #[test]
    fn overhead_is_the_cost_over_the_targets_cpu_of_the_last_records() {
        let mut r = Records::default();
        let oh = |budget_ppm, cost_ns, target_cpu_ns| EventData::Overhead {
            budget_ppm,
            cost_ns,
            target_cpu_ns,
            hits: 0,
        };
        r.add(0, 10, &oh(20_000, 1, 100));
        r.add(0, 20, &oh(20_000, 30, 1000));
        let mut other = Records::default();
        other.add(1, 15, &oh(20_000, 10, 1000));
        other.add(0, 5, &oh(20_000, 999, 999));
        r.merge(other);
        let o = FileCoverage::new("lifecycle", &[0, 1], 0, 100, r)
            .overhead()
            .unwrap();
        assert_eq!(o.budget, Some(0.02));
        assert!((o.measured - 0.02).abs() < 1e-12);
        let mut off = Records::default();
        off.add(0, 10, &oh(0, 5, 0));
        let o = FileCoverage::new("lifecycle", &[0], 0, 100, off).overhead();
        assert_eq!(
            o,
            Some(Overhead {
                budget: None,
                measured: 0.0,
                floor: false,
                cost_ns: 5,
                target_cpu_ns: 0,
            })
        );
    }

    #[test]
    fn a_nearly_idle_target_is_held_to_the_floor_not_the_share() {
        let mut r = Records::default();
        // 1 s of capture: 3 ms of cost against 1 ms of the target's CPU, under a 2% budget.
        r.add(
            0,
            10,
            &EventData::Overhead {
                budget_ppm: 20_000,
                cost_ns: 3_000_000,
                target_cpu_ns: 1_000_000,
                hits: 0,
            },
        );
        let o = FileCoverage::new("lifecycle", &[0], 0, 1_000_000_000, r)
            .overhead()
            .unwrap();
        assert!(o.floor);
        assert_eq!(o.budget, Some(0.02));
        assert_eq!(
            describe_overhead(Some(o)).unwrap(),
            "3.00ms of CPU while the targets used 1.00ms (budget 2.0%, raised to its floor of 5.00ms of CPU a second)"
        );
        let json = serde_json::to_value(o).unwrap();
        assert_eq!(json["floor"], true);
    }

    #[test]
    fn overhead_in_words() {
        let o = Overhead {
            budget: Some(0.02),
            measured: 0.015,
            floor: false,
            cost_ns: 15,
            target_cpu_ns: 1000,
        };
        assert_eq!(
            describe_overhead(Some(o)).unwrap(),
            "1.5% of the targets' CPU (budget 2.0%)"
        );
        let off = Overhead {
            budget: None,
            measured: 0.25,
            floor: false,
            cost_ns: 250,
            target_cpu_ns: 1000,
        };
        assert_eq!(
            describe_overhead(Some(off)).unwrap(),
            "25% of the targets' CPU (no budget)"
        );
        assert_eq!(describe_overhead(None), None);
    }

    #[test]
    fn percentages_keep_a_decimal_when_small() {
        assert_eq!(percent(0.031), "3.1%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.425), "42%");
    }
}
