//! Steering a capture within its budget, once per drain: reads the cost (`meter.rs`),
//! writes it to the file as `overhead` events, hands it and the requests that turned slow
//! (`trigger.rs`) to the controller (`budget.rs`), and makes the controller's changes
//! (`windows.rs`). With `--budget off` only the measuring and its record remain.

use std::fs::File;
use std::time::{Duration, Instant};

use anyhow::Result;
use gcap_format::{coverage_cause, Event, EventData, KeyValue, Writer};
use gcap_slo::Slo;

use super::attach::Group;
use super::budget::{Budget, Change, Controller, Sample};
use super::host::monotonic_ns;
use super::meter::{Meter, Reading};
use super::process::Proc;
use super::trigger::SlowRequests;
use super::windows::Windows;
use crate::probes::{GroupSet, TrapCost, DRAIN_INTERVAL};
use crate::translate::Translator;

/// How often the cost is written to the file.
const OVERHEAD_EVERY: Duration = Duration::from_secs(1);
/// How often the cost is read and the controller asked (reading costs gcap ~100 µs: every
/// drain would be a noticeable share of a small budget).
const STEP_EVERY: Duration = Duration::from_millis(100);

/// What a capture's budget did, for the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct CostSummary {
    pub budget: Budget,
    /// gcap's measured cost as a share of the targets' CPU.
    pub ratio: f64,
    /// Lifecycle windows opened, and the share of the capture's time they covered.
    pub lifecycle_windows: u64,
    pub lifecycle_share: f64,
    /// The calibrated cost of one probe hit.
    pub trap: TrapCost,
    /// The budget as a share of the targets' CPU once its floor is counted, when the floor
    /// raised it.
    pub floor: Option<f64>,
}

/// The budget's moving parts during a capture.
pub(crate) struct Steer {
    budget: Budget,
    pub(crate) meter: Meter,
    pub(crate) windows: Windows,
    control: Option<(Controller, SlowRequests)>,
    last: Reading,
    last_read: Option<Instant>,
    /// When the last step read the meter (CLOCK_MONOTONIC, ns).
    last_tick: u64,
    last_written: Instant,
    started: u64,
    /// Records dropped because they fell outside their group's windows.
    pub(crate) outside: u64,
    warned: Vec<String>,
}

impl Steer {
    /// `available`: the groups the targets' probes make up; `started`: when the first
    /// groups were attached.
    pub(crate) fn new(
        budget: Budget,
        meter: Meter,
        available: GroupSet,
        test_period: Option<Duration>,
        slos: Vec<Slo>,
    ) -> Steer {
        let control = match budget {
            Budget::Off => None,
            Budget::Share(share) => Some((
                Controller::new(
                    share,
                    available.intersect(GroupSet::SPANS),
                    available.minus(GroupSet::SPANS),
                    test_period.map(|d| d.as_nanos() as u64),
                ),
                SlowRequests::new(slos),
            )),
        };
        Steer {
            budget,
            meter,
            windows: Windows::new(control.is_some()),
            control,
            last: Reading::default(),
            last_read: None,
            last_tick: 0,
            last_written: Instant::now(),
            started: monotonic_ns(),
            outside: 0,
            warned: Vec::new(),
        }
    }

    /// The groups to attach at the start, of those `available`: all of them without a
    /// budget, else the spans (the controller opens the first window).
    pub(crate) fn initial_groups(budget: Budget, available: GroupSet) -> GroupSet {
        match budget {
            Budget::Off => available,
            Budget::Share(_) => available.intersect(GroupSet::SPANS),
        }
    }

    /// Records the start: `groups` attached at `ts` to `targets`.
    pub(crate) fn start(
        &mut self,
        w: &mut Writer<File>,
        targets: &[u32],
        ts: u64,
        groups: GroupSet,
    ) -> Result<()> {
        self.started = ts;
        self.windows.change(
            w,
            targets.iter().copied(),
            ts,
            groups,
            coverage_cause::START,
        )
    }

    /// How long the capture loop sleeps between drains: [`DRAIN_INTERVAL`], or four times
    /// that while a budgeted capture has nothing but spans attached (a few records a
    /// request, which the ring holds for seconds), so that gcap's own polling spends less
    /// of a small budget.
    pub(crate) fn drain_interval(&self) -> Duration {
        if let Some(flip) = self.control.as_ref().and_then(|(c, _)| c.test_flip()) {
            // Testing: on time for the next flip.
            let wait = Duration::from_nanos(flip.saturating_sub(monotonic_ns()));
            return wait.clamp(Duration::from_millis(1), DRAIN_INTERVAL);
        }
        let light = self.control.is_some() && self.windows.now().minus(GroupSet::SPANS).is_empty();
        let interval = if light {
            4 * DRAIN_INTERVAL
        } else {
            DRAIN_INTERVAL
        };
        match self.span_flip() {
            // On time for the spans' next window change.
            Some(flip) => Duration::from_nanos(flip.saturating_sub(monotonic_ns()))
                .clamp(Duration::from_millis(1), interval),
            None => interval,
        }
    }

    /// When the spans' own windows change next, if they are windowed.
    fn span_flip(&self) -> Option<u64> {
        let (c, _) = self.control.as_ref()?;
        c.span_flip(self.last_tick)
    }

    /// Whether the server requests the translator sees are needed (for the trigger).
    pub(crate) fn wants_requests(&self) -> bool {
        self.control.is_some()
    }

    /// One step: measure, record, decide, apply. Warnings go to `warnings` (once each).
    /// Returns whether a lifecycle window opened (the caller snapshots the goroutines).
    pub(crate) fn step(
        &mut self,
        w: &mut Writer<File>,
        groups: &mut [Group],
        procs: &[Proc],
        translator: &mut Translator,
        warnings: &mut Vec<String>,
    ) -> Result<bool> {
        // The drain interval jitters: a step is due a little early rather than a drain late.
        let due = STEP_EVERY - DRAIN_INTERVAL / 2;
        let testing = self
            .control
            .as_ref()
            .is_some_and(|(c, _)| c.test_flip().is_some());
        let flip_due = self.span_flip().is_some_and(|f| monotonic_ns() >= f);
        if !testing && !flip_due && self.last_read.is_some_and(|t| t.elapsed() < due) {
            return Ok(false);
        }
        self.last_read = Some(Instant::now());
        self.last = self.meter.read(groups.iter().map(|g| &g.probes));
        if self.last_written.elapsed() >= OVERHEAD_EVERY {
            self.last_written = Instant::now();
            self.write_overhead(w, procs, monotonic_ns())?;
        }
        let Some((controller, slow)) = &mut self.control else {
            return Ok(false);
        };
        let now = monotonic_ns();
        self.last_tick = now;
        let mut changes: Vec<Change> = Vec::new();
        changes.extend(controller.tick(Sample {
            now,
            cost: self.last.cost(),
            target_cpu: self.last.target_cpu() as f64,
            spans: self.last.spans_ns,
        }));
        // Requests gcap's own windows slowed down are no evidence.
        self.windows.released(groups);
        let windows = &self.windows;
        let spans = translator.spans();
        let mut requests = spans.take_requests();
        requests.retain(|r| windows.undisturbed(r.start, r.end));
        let ended = slow.ended(&requests);
        let stuck = || {
            // A request whose end fell after its span window closed is not running: its
            // end was not seen.
            spans.open_requests().any(|(target, endpoint, start)| {
                windows.undisturbed(start, now)
                    && windows.spans_on_since(start)
                    && slow.running(target, endpoint, start, now)
            })
        };
        if ended || stuck() {
            changes.extend(controller.slow_requests(now));
        }
        if let Some(msg) = controller.warning.take() {
            warnings.push(msg);
        }
        let targets: Vec<u32> = procs.iter().filter(|p| !p.exited).map(|p| p.id).collect();
        let had_lifecycle = self.windows.now().contains(GroupSet::LIFECYCLE);
        for change in changes {
            if let Some(msg) = self.windows.apply(w, groups, &targets, change)? {
                if !self.warned.contains(&msg) {
                    self.warned.push(msg.clone());
                    warnings.push(msg);
                }
            }
        }
        Ok(!had_lifecycle && self.windows.now().contains(GroupSet::LIFECYCLE))
    }

    /// Ends the windows at `end_ns` (a budgeted capture records it) and writes the final
    /// cost.
    pub(crate) fn end(
        &mut self,
        w: &mut Writer<File>,
        groups: &[Group],
        procs: &[Proc],
        end_ns: u64,
    ) -> Result<()> {
        if self.control.is_some() {
            let targets = procs.iter().filter(|p| !p.exited).map(|p| p.id);
            self.windows
                .change(w, targets, end_ns, GroupSet::NONE, coverage_cause::STOP)?;
        }
        self.last = self.meter.read(groups.iter().map(|g| &g.probes));
        self.write_overhead(w, procs, end_ns)
    }

    /// One `overhead` event per target: its cost so far.
    fn write_overhead(&self, w: &mut Writer<File>, procs: &[Proc], ts: u64) -> Result<()> {
        for (i, p) in procs.iter().enumerate() {
            let (Some(cost), Some(cpu), Some(hits)) = (
                self.last.cost_ns.get(i),
                self.last.target_cpu_ns.get(i),
                self.last.hits.get(i),
            ) else {
                continue;
            };
            w.push(
                p.id,
                Event {
                    ts,
                    goid: 0,
                    data: EventData::Overhead {
                        budget_ppm: self.budget.ppm(),
                        cost_ns: cost.round() as u64,
                        target_cpu_ns: *cpu,
                        hits: *hits,
                    },
                },
            )?;
        }
        Ok(())
    }

    /// The budget's share of the targets' CPU when its floor raised it.
    fn floor_share(&self) -> Option<f64> {
        let (c, _) = self.control.as_ref()?;
        let cpu = self.last.target_cpu() as f64;
        let share = c.allowed() / cpu;
        let Budget::Share(b) = self.budget else {
            return None;
        };
        (cpu > 0.0 && share > b * 1.001).then_some(share)
    }

    /// What the budget did, once the capture ended at `end_ns`.
    pub(crate) fn summary(&self, end_ns: u64) -> CostSummary {
        let span = end_ns.saturating_sub(self.started).max(1);
        let lifecycle_share = if self.control.is_some() {
            self.windows.lifecycle_ns as f64 / span as f64
        } else {
            1.0
        };
        CostSummary {
            budget: self.budget,
            ratio: self.last.ratio(),
            lifecycle_windows: self.windows.lifecycle_windows,
            lifecycle_share,
            trap: self.meter.trap(),
            floor: self.floor_share(),
        }
    }

    /// Facts for the stats block: the budget, the calibration, the windows and their
    /// attach and detach times.
    pub(crate) fn stats(&self) -> Vec<KeyValue> {
        let kv = |key: &str, value: String| KeyValue {
            key: key.into(),
            value,
        };
        let trap = self.meter.trap();
        let ms = |v: &[u64], q: f64| -> String {
            let mut v = v.to_vec();
            v.sort_unstable();
            match v.len() {
                0 => "-".into(),
                n => format!("{:.3}", v[((n - 1) as f64 * q) as usize] as f64 / 1e6),
            }
        };
        let mut out = vec![
            kv("budget.ppm", self.budget.ppm().to_string()),
            kv(
                "budget.trap_emulated_ns",
                format!("{:.0}", trap.emulated_ns),
            ),
            kv("budget.trap_stepped_ns", format!("{:.0}", trap.stepped_ns)),
            kv("budget.cost_ns", format!("{:.0}", self.last.cost())),
            kv("budget.target_cpu_ns", self.last.target_cpu().to_string()),
            kv("budget.gcap_cpu_ns", format!("{:.0}", self.last.own_ns)),
            kv("budget.spans_ns", format!("{:.0}", self.last.spans_ns)),
            kv("budget.records_outside_windows", self.outside.to_string()),
            kv(
                "windows.lifecycle",
                self.windows.lifecycle_windows.to_string(),
            ),
            kv(
                "windows.lifecycle_ns",
                self.windows.lifecycle_ns.to_string(),
            ),
            kv("windows.attaches", self.windows.attach_ns.len().to_string()),
            kv("windows.attach_ms_median", ms(&self.windows.attach_ns, 0.5)),
            kv("windows.attach_ms_max", ms(&self.windows.attach_ns, 1.0)),
            kv("windows.detach_ms_median", ms(&self.windows.detach_ns, 0.5)),
            kv("windows.detach_ms_max", ms(&self.windows.detach_ns, 1.0)),
        ];
        if let Some((_, slow)) = &self.control {
            out.push(kv("budget.slow_requests", slow.slow.to_string()));
        }
        out
    }
}
