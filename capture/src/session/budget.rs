//! The budget controller: which probe groups are attached, decided every drain from what
//! the capture has cost so far (`meter.rs`) against `--budget` of the targets' CPU.
//!
//! - A balance accrues the budget's share of the targets' CPU (at least [`MIN_RATE`] of
//!   one CPU) and pays every measured cost (probe traps and BPF time, gcap's own CPU).
//! - Spans stay attached while they fit. When their own probes cost more than the budget
//!   for a few seconds, they are attached in windows too, for the share of the time the
//!   budget pays for (and the capture warns).
//! - The other groups of the level (goroutine lifecycle; at `--level full` also syscalls,
//!   kernel scheduling and CPU samples) are attached in windows of [`WINDOW_NS`] whenever
//!   the balance pays for one; what a window costs is learnt from the windows before (the
//!   first is priced at the targets' own CPU rate). A window whose cost runs the balance
//!   below [`DUTY_FLOOR`] of its price closes early.
//! - Slow requests ([`Controller::slow_requests`]) open a window at once, even with no
//!   balance: it may overdraw up to [`OVERDRAFT_NS`] of budget, and triggered windows stay
//!   open at most [`TRIGGER_QUOTA_NS`] in any minute. The overdraft is paid back before the
//!   next window, so a capture of T seconds costs at most the budget over T + 10 s (plus
//!   the second or so it takes to learn what spans cost).
//! - When spans alone exceed the budget they take half of it, so that the other half pays
//!   for lifecycle windows.
//!
//! The controller only decides; the session attaches, detaches and records the windows.

use std::collections::VecDeque;

use gcap_format::coverage_cause;

use crate::probes::GroupSet;

/// The budget is never less than this much CPU per second of capture (5 ms a second, 0.5%
/// of one CPU; the file format states it, so readers know it too): gcap's own polling costs
/// about 1.6 ms a second (measured on 2 vCPUs), so 2% of a target that uses a few percent of
/// a CPU would pay for nothing, not even spans.
pub(crate) const MIN_RATE: f64 = gcap_format::BUDGET_FLOOR_NS_PER_S as f64 / 1e9;
/// Length of a duty-cycle window, ns.
pub(crate) const WINDOW_NS: u64 = 200_000_000;
/// A duty window closes early when the balance falls below this share of its price,
/// negated.
const DUTY_FLOOR: f64 = 0.25;
/// A triggered window stays open this long after the last slow request, ns.
const TRIGGER_NS: u64 = 1_000_000_000;
/// Triggered windows are open at most this long in any minute, ns.
pub(crate) const TRIGGER_QUOTA_NS: u64 = 5_000_000_000;
/// Triggered windows may overdraw the balance by this much of budget, ns of the budget's
/// rate (10 s: what the budget pays in 10 s).
pub(crate) const OVERDRAFT_NS: u64 = 10_000_000_000;
/// A triggered window needs at least this long a window's price within the overdraft.
const TRIGGER_MIN_NS: u64 = 100_000_000;
const MINUTE_NS: u64 = 60_000_000_000;
/// Span windows repeat with this period when spans alone exceed the budget, ns. The
/// trigger sees requests only through the spans: with windows every 2 s, slowness lasting
/// 2 s or more always meets one. Attaching and detaching the span probes costs gcap about
/// 1.5 ms of CPU (measured on 2 vCPUs), which the budget pays too: a shorter period would
/// spend a small budget on toggling.
const SPAN_PERIOD_NS: u64 = 2_000_000_000;
/// Spans are attached at least this share of the time, whatever they cost (50 ms a period:
/// requests of tens of ms end inside a window).
const SPANS_MIN_ON: f64 = 0.025;
/// Share of what the budget leaves after gcap's own work that windowed spans take, when
/// lifecycle windows need the rest.
const SPANS_SHARE: f64 = 0.5;

/// `--budget`: a share of the targets' CPU, or off (every probe for the whole capture).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    Off,
    /// A fraction of the targets' CPU time (0.02 for 2%).
    Share(f64),
}

impl Budget {
    /// The budget in millionths of the targets' CPU, as the file records it (0: off).
    pub fn ppm(self) -> u32 {
        match self {
            Budget::Off => 0,
            Budget::Share(f) => (f * 1e6).round() as u32,
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::Share(0.02)
    }
}

impl std::str::FromStr for Budget {
    type Err = String;

    /// `off`, or a percentage: `2`, `2%`, `0.5`.
    fn from_str(s: &str) -> Result<Budget, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("off") {
            return Ok(Budget::Off);
        }
        let pct: f64 = t
            .strip_suffix('%')
            .unwrap_or(t)
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a budget: give a percentage of the targets' CPU (e.g. 2 or 0.5%) or off"))?;
        if !(pct > 0.0 && pct <= 100.0) {
            return Err(format!(
                "{s:?}: the budget must be above 0% and at most 100% (or off)"
            ));
        }
        Ok(Budget::Share(pct / 100.0))
    }
}

/// What the meter says at one moment (cumulative since the capture started).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// CLOCK_MONOTONIC, ns.
    pub(crate) now: u64,
    /// Everything gcap cost, ns.
    pub(crate) cost: f64,
    /// The targets' CPU time, ns.
    pub(crate) target_cpu: f64,
    /// Of `cost`: the span probes' hits and run time, ns.
    pub(crate) spans: f64,
}

/// A change of the attached groups: attach `groups` (and detach the rest) because of
/// `cause` (`gcap_format::coverage_cause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) groups: GroupSet,
    pub(crate) cause: u8,
}

/// A window of the windowed groups.
#[derive(Debug, Clone, Copy)]
struct Window {
    opened: u64,
    until: u64,
    cause: u8,
    /// Cost when it opened, to learn its price once it closed.
    cost_at_open: f64,
    /// A triggered window closes when the balance falls below this: it spends half of what
    /// the balance and the overdraft hold, so that a later slow spell finds some left.
    spend_to: f64,
}

/// Spans attached in windows of their own (spans alone exceed the budget).
#[derive(Debug, Clone, Copy)]
struct SpanDuty {
    /// Share of each period the spans are attached.
    on: f64,
    period_start: u64,
}

/// Decides the windows of a budgeted capture.
#[derive(Debug)]
pub(crate) struct Controller {
    share: f64,
    /// Groups attached whenever the budget allows (spans).
    steady: GroupSet,
    /// Groups attached in windows.
    windowed: GroupSet,
    /// Cost still allowed, ns (negative: overdrawn).
    balance: f64,
    /// Cost allowed since the start, ns.
    allowed: f64,
    /// When the first reading was taken.
    start: Option<u64>,
    /// What the session has attached (the last change returned).
    attached: GroupSet,
    last: Option<Sample>,
    window: Option<Window>,
    /// A closed window whose cost is still being counted (records drain after it).
    settling: Option<(Window, u64)>,
    /// Cost per ns of window, beyond the base rate (learnt).
    window_rate: Option<f64>,
    /// Cost per ns of wall time with no window open.
    base_rate: f64,
    /// The targets' CPU per ns of wall time.
    cpu_rate: f64,
    cpu: Average,
    /// The span probes' cost per ns of wall time while they are attached.
    spans_rate: Average,
    /// Of it, the span probes' traps and run time alone (for the warning).
    probes_rate: Average,
    /// Everything else's cost per ns of wall time with no window open (gcap's own CPU,
    /// mostly): what the spans must leave room for.
    other_rate: Average,
    spans_duty: Option<SpanDuty>,
    /// Triggered windows of the last minute: (opened, closed or planned close).
    triggers: VecDeque<(u64, u64)>,
    /// `--window-test-period`: lifecycle toggled on a fixed period, ignoring the budget.
    test_period: Option<u64>,
    /// When the next test-period flip is due.
    test_flip: u64,
    /// Something the user should know, once (taken by the session).
    pub(crate) warning: Option<String>,
    warned_spans: bool,
}

impl Controller {
    pub(crate) fn new(
        share: f64,
        steady: GroupSet,
        windowed: GroupSet,
        test_period: Option<u64>,
    ) -> Controller {
        Controller {
            share,
            steady,
            windowed,
            balance: 0.0,
            allowed: 0.0,
            start: None,
            attached: steady,
            last: None,
            window: None,
            settling: None,
            window_rate: None,
            base_rate: 0.0,
            cpu_rate: 0.0,
            cpu: Average::default(),
            spans_rate: Average::default(),
            probes_rate: Average::default(),
            other_rate: Average::default(),
            spans_duty: None,
            triggers: VecDeque::new(),
            test_period,
            test_flip: 0,
            warning: None,
            warned_spans: false,
        }
    }

    /// The groups that should be attached now.
    fn groups(&self, now: u64) -> GroupSet {
        let spans = match self.spans_duty {
            Some(d) => {
                let phase = (now - d.period_start) as f64 / SPAN_PERIOD_NS as f64;
                if phase < d.on {
                    self.steady
                } else {
                    GroupSet::NONE
                }
            }
            None => self.steady,
        };
        match self.window {
            // A window's requests are explained through their spans: spans stay attached
            // while it is open, whatever their own duty.
            Some(_) => self.steady.union(self.windowed),
            None => spans,
        }
    }

    /// The budget's CPU ns per ns of wall time: its share of the targets' CPU, or the floor.
    fn rate(&self) -> f64 {
        (self.share * self.cpu_rate).max(MIN_RATE)
    }

    /// CPU ns the budget allowed since the capture started (its share of the targets' CPU,
    /// or the floor where that is more).
    pub(crate) fn allowed(&self) -> f64 {
        self.allowed
    }

    /// What a window of `len` ns is expected to cost, ns.
    fn price(&self, len: u64) -> f64 {
        // Before any window: as much as the targets' own CPU (lifecycle probes on a busy
        // service cost about that).
        let rate = self.window_rate.unwrap_or(self.cpu_rate.max(1e-3));
        rate * len as f64
    }

    /// The balance the budget allows at most: enough for two windows, or ten seconds of
    /// budget.
    fn cap(&self) -> f64 {
        (2.0 * self.price(WINDOW_NS)).max(self.rate() * 10e9)
    }

    /// Lowest balance a triggered window may run to: [`OVERDRAFT_NS`] of budget overdrawn.
    fn trigger_floor(&self) -> f64 {
        -self.rate() * OVERDRAFT_NS as f64
    }

    /// Takes a new reading; returns the change to make, if any.
    pub(crate) fn tick(&mut self, s: Sample) -> Option<Change> {
        let prev = self.last.replace(s)?;
        let dt = s.now.saturating_sub(prev.now);
        if dt == 0 {
            return None;
        }
        let (dcost, dcpu) = (s.cost - prev.cost, s.target_cpu - prev.target_cpu);
        // The floor over the whole capture, not per reading: a busy target's budget stays
        // exactly its share however its CPU jitters between readings.
        let start = *self.start.get_or_insert(prev.now);
        let allowed = (self.share * s.target_cpu).max(MIN_RATE * (s.now - start) as f64);
        let dallowed = (allowed - self.allowed).max(0.0);
        self.allowed = self.allowed.max(allowed);
        self.balance += dallowed - dcost;
        // The mean of the first readings, not an average from zero: a rate that starts low
        // would make the budget look smaller than it is for the first seconds.
        self.cpu.add(dcpu / dt as f64, 0.1);
        self.cpu_rate = self.cpu.value();
        if self.window.is_none() && self.settling.is_none() {
            self.base_rate = ewma(self.base_rate, dcost / dt as f64, 0.1);
            // What the groups attached over the interval cost: gcap's own work with nothing
            // attached, or the spans' probes and gcap's work on their records beyond it.
            let rate = dcost / dt as f64;
            if self.attached.is_empty() {
                self.other_rate.add(rate, SPANS_ALPHA);
            } else if self.attached == self.steady {
                let probes = (s.spans - prev.spans) / dt as f64;
                let spans = (rate - self.other_rate.value()).max(probes);
                self.spans_rate.add(spans, SPANS_ALPHA);
                self.probes_rate.add(probes, SPANS_ALPHA);
            }
        }
        self.learn_price(s);
        self.balance = self.balance.min(self.cap());

        if let Some(period) = self.test_period {
            self.test_tick(s.now, period);
            return self.decide(s.now, coverage_cause::DUTY_CYCLE);
        }
        self.span_duty(s.now);
        let cause = match self.window {
            Some(w) if self.balance < self.floor(w) => {
                self.close(s.now);
                coverage_cause::BUDGET
            }
            Some(w) if s.now >= w.until => {
                self.close(s.now);
                w.cause
            }
            None if !self.windowed.is_empty()
                && self.settling.is_none()
                && self.balance >= self.price(WINDOW_NS) =>
            {
                self.open(s, s.now + WINDOW_NS, coverage_cause::DUTY_CYCLE);
                coverage_cause::DUTY_CYCLE
            }
            // Only the spans' own windows change.
            _ if self.groups(s.now).contains(self.attached) => coverage_cause::DUTY_CYCLE,
            _ => coverage_cause::BUDGET,
        };
        self.decide(s.now, cause)
    }

    /// The change from what is attached to what should be, if any.
    fn decide(&mut self, now: u64, cause: u8) -> Option<Change> {
        let groups = self.groups(now);
        if groups == self.attached {
            return None;
        }
        self.attached = groups;
        Some(Change { groups, cause })
    }

    /// Slow requests were seen at `now`: opens (or keeps open) a triggered window, within
    /// the trigger quota and overdraft. Returns the change, if any.
    pub(crate) fn slow_requests(&mut self, now: u64) -> Option<Change> {
        if self.windowed.is_empty() || self.test_period.is_some() {
            return None;
        }
        let since = now.saturating_sub(MINUTE_NS);
        while self.triggers.front().is_some_and(|t| t.1 < since) {
            self.triggers.pop_front();
        }
        // Planned ends count: an open triggered window will use its time.
        let used: u64 = self
            .triggers
            .iter()
            .map(|&(opened, until)| until.saturating_sub(opened.max(since)))
            .sum();
        let left = TRIGGER_QUOTA_NS.saturating_sub(used);
        let extending = self
            .window
            .is_some_and(|w| w.cause == coverage_cause::TRIGGER);
        // No sliver of a window: a new one needs half its length of quota left, and what a
        // short window costs within the overdraft.
        let headroom = if extending {
            0.0
        } else {
            self.price(TRIGGER_MIN_NS)
        };
        if (left == 0 || (!extending && left < TRIGGER_NS / 2))
            || self.balance - headroom < self.trigger_floor()
        {
            return None;
        }
        let until = now + TRIGGER_NS.min(left);
        let spend_to = (self.balance - headroom)
            .min(self.balance - (self.balance - self.trigger_floor()) / 2.0);
        match &mut self.window {
            Some(w) if w.cause == coverage_cause::TRIGGER => {
                w.until = w.until.max(until);
                if let Some(t) = self.triggers.back_mut() {
                    t.1 = w.until;
                }
                None
            }
            Some(w) => {
                // A duty window becomes a triggered one, open longer: same groups, new
                // cause.
                w.cause = coverage_cause::TRIGGER;
                w.spend_to = spend_to;
                w.until = w.until.max(until);
                self.triggers.push_back((now, w.until));
                Some(Change {
                    groups: self.attached,
                    cause: coverage_cause::TRIGGER,
                })
            }
            None => {
                let cost = self.last.map_or(0.0, |s| s.cost);
                self.window = Some(Window {
                    opened: now,
                    until,
                    cause: coverage_cause::TRIGGER,
                    cost_at_open: cost,
                    spend_to,
                });
                self.triggers.push_back((now, until));
                self.decide(now, coverage_cause::TRIGGER)
            }
        }
    }

    /// The balance below which window `w` closes early.
    fn floor(&self, w: Window) -> f64 {
        if w.cause == coverage_cause::TRIGGER {
            w.spend_to
        } else {
            -DUTY_FLOOR * self.price(WINDOW_NS)
        }
    }

    fn open(&mut self, s: Sample, until: u64, cause: u8) {
        self.window = Some(Window {
            opened: s.now,
            until,
            cause,
            cost_at_open: s.cost,
            spend_to: 0.0,
        });
    }

    fn close(&mut self, now: u64) {
        if let Some(w) = self.window.take() {
            if w.cause == coverage_cause::TRIGGER {
                if let Some(t) = self.triggers.back_mut() {
                    t.1 = now;
                }
            }
            self.settling = Some((w, now));
        }
    }

    /// Once the records of a closed window have drained (a few ticks later), its cost
    /// beyond the base rate, per ns it was open, prices the next ones.
    fn learn_price(&mut self, s: Sample) {
        let Some((w, closed)) = self.settling else {
            return;
        };
        if s.now < closed + 2 * crate::probes::DRAIN_INTERVAL.as_nanos() as u64 {
            return;
        }
        self.settling = None;
        let open_ns = closed.saturating_sub(w.opened).max(1) as f64;
        let extra = (s.cost - w.cost_at_open) - self.base_rate * (s.now - w.opened) as f64;
        let rate = (extra / open_ns).max(0.0);
        self.window_rate = Some(match self.window_rate {
            Some(r) => ewma(r, rate, 0.5),
            None => rate,
        });
    }

    /// Puts spans in windows when their own probes cost more than the budget, and back
    /// when they fit again.
    fn span_duty(&mut self, now: u64) {
        if self.steady.is_empty() {
            return;
        }
        // gcap's own work with nothing attached is known only once spans have been off.
        let other_rate = self.other_rate.value();
        // What the budget leaves for spans once gcap's own work is paid.
        let room = self.rate() - other_rate;
        // Judged once the spans' cost has been seen for about a second, or after two
        // readings when it is far over (each second of spans then costs many of budget).
        let spans_rate = match self.spans_rate.settled() {
            Some(r) => r,
            None if self.spans_rate.samples >= 2 && self.spans_rate.value() > FAR_OVER * room => {
                self.spans_rate.value()
            }
            None => return,
        };
        let take = if self.windowed.is_empty() {
            0.8
        } else {
            SPANS_SHARE
        };
        let on = (take * room / spans_rate.max(1e-12)).clamp(SPANS_MIN_ON, 1.0);
        match self.spans_duty {
            None if spans_rate > room => {
                self.spans_duty = Some(SpanDuty {
                    on,
                    period_start: now,
                });
                if !self.warned_spans {
                    self.warned_spans = true;
                    let pct = |rate: f64| 100.0 * rate / self.cpu_rate.max(1e-9);
                    self.warning = Some(format!(
                        "the span probes cost {:.1}% of the targets' CPU, more than the budget ({:.1}% of it) leaves after gcap's own work: spans are recorded in windows too (about {:.0}% of the time); raise --budget or use --budget off to record every request",
                        pct(self.probes_rate.value()),
                        pct(self.rate()),
                        on * 100.0
                    ));
                }
            }
            Some(d) if now >= d.period_start + SPAN_PERIOD_NS => {
                self.spans_duty = (spans_rate >= 0.5 * room).then_some(SpanDuty {
                    on,
                    period_start: now,
                });
            }
            _ => {}
        }
    }

    /// `--window-test-period`: the windowed groups flip on and off every half period.
    fn test_tick(&mut self, now: u64, period: u64) {
        if now < self.test_flip {
            return;
        }
        // On the schedule, not from this (late) tick: the flips keep their rate unless a
        // step takes longer than half a period.
        let next = self.test_flip + period / 2;
        self.test_flip = if next > now { next } else { now + period / 2 };
        self.window = match self.window {
            Some(_) => None,
            None => Some(Window {
                opened: now,
                until: u64::MAX,
                cause: coverage_cause::DUTY_CYCLE,
                cost_at_open: 0.0,
                spend_to: 0.0,
            }),
        };
    }

    /// When the next `--window-test-period` flip is due (None without that option).
    pub(crate) fn test_flip(&self) -> Option<u64> {
        self.test_period.map(|_| self.test_flip)
    }

    /// When the spans' own windows change next, after `now` (None unless spans are
    /// windowed): the session steps then, so that a span window lasts its share of the
    /// period, not a whole drain interval.
    pub(crate) fn span_flip(&self, now: u64) -> Option<u64> {
        let d = self.spans_duty?;
        let off = d.period_start + (d.on * SPAN_PERIOD_NS as f64) as u64;
        let next = d.period_start + SPAN_PERIOD_NS;
        Some(if now < off { off } else { next })
    }
}

fn ewma(old: f64, new: f64, alpha: f64) -> f64 {
    old + alpha * (new - old)
}

/// Weight of each new reading in the span probes' average cost (about 3 s of readings).
const SPANS_ALPHA: f64 = 0.03;
/// Readings an average needs before the controller acts on it (about a second).
const SETTLED_AFTER: u32 = 5;
/// Spans this many times over what the budget leaves are windowed after two readings, not
/// five: attached all along they would cost many seconds of budget each second.
const FAR_OVER: f64 = 3.0;

/// An exponentially weighted average that starts as the plain mean of its first values.
#[derive(Debug, Clone, Copy, Default)]
struct Average {
    value: f64,
    samples: u32,
}

impl Average {
    fn add(&mut self, x: f64, alpha: f64) {
        self.samples = self.samples.saturating_add(1);
        // The mean while there are few readings, so that the first ones weigh as much as
        // the later.
        let weight = alpha.max(1.0 / self.samples as f64);
        self.value = ewma(self.value, x, weight);
    }

    /// The average, once it has taken [`SETTLED_AFTER`] readings.
    fn settled(&self) -> Option<f64> {
        (self.samples >= SETTLED_AFTER).then_some(self.value)
    }

    /// The average so far (0 before any reading).
    fn value(&self) -> f64 {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: u64 = 50_000_000;
    const SEC: u64 = 1_000_000_000;

    /// A target burning one CPU, whose spans cost `spans` and whose windowed groups cost
    /// `window` of its CPU while attached, under a 2% budget, for `secs` seconds; `slow`
    /// says when requests are slow. Returns the controller, the cost ratio, and every
    /// change made (time, change).
    fn simulate(
        spans: f64,
        window: f64,
        secs: u64,
        slow: impl Fn(u64) -> bool,
    ) -> (Controller, f64, Vec<(u64, Change)>) {
        let mut c = Controller::new(0.02, GroupSet::SPANS, GroupSet::LIFECYCLE, None);
        let mut attached = GroupSet::SPANS;
        let (mut cost, mut spans_cost, mut cpu) = (0.0, 0.0, 0.0);
        let mut changes = Vec::new();
        let mut now = SEC;
        while now < SEC + secs * SEC {
            let mut change = c.tick(Sample {
                now,
                cost,
                target_cpu: cpu,
                spans: spans_cost,
            });
            // Slow requests are seen only through the spans.
            if slow(now) && attached.contains(GroupSet::SPANS) {
                change = c.slow_requests(now).or(change);
            }
            if let Some(ch) = change {
                attached = ch.groups;
                changes.push((now, ch));
            }
            let dt = TICK as f64;
            cpu += dt;
            if attached.contains(GroupSet::SPANS) {
                cost += spans * dt;
                spans_cost += spans * dt;
            }
            if attached.contains(GroupSet::LIFECYCLE) {
                cost += window * dt;
            }
            now += TICK;
        }
        (c, cost / cpu, changes)
    }

    fn opened(changes: &[(u64, Change)], cause: u8) -> usize {
        changes
            .iter()
            .filter(|(_, c)| c.cause == cause && c.groups.contains(GroupSet::LIFECYCLE))
            .count()
    }

    #[test]
    fn budgets_parse() {
        assert_eq!("2".parse::<Budget>(), Ok(Budget::Share(0.02)));
        assert_eq!("0.5%".parse::<Budget>(), Ok(Budget::Share(0.005)));
        assert_eq!("off".parse::<Budget>(), Ok(Budget::Off));
        assert_eq!(Budget::default().ppm(), 20_000);
        assert_eq!(Budget::Off.ppm(), 0);
        assert!("0".parse::<Budget>().is_err());
        assert!("200".parse::<Budget>().is_err());
        assert!("two".parse::<Budget>().is_err());
    }

    #[test]
    fn windows_fit_the_budget() {
        // Lifecycle probes double the target's CPU; spans cost 0.5%.
        let (c, ratio, changes) = simulate(0.005, 1.0, 120, |_| false);
        assert!(ratio <= 0.021, "cost {ratio}");
        assert!(ratio >= 0.015, "the budget is used: {ratio}");
        let windows = opened(&changes, coverage_cause::DUTY_CYCLE);
        // 1.5% of 120 s at 1 CPU-s per s of window: ~1.8 s, ~9 windows of 200 ms.
        assert!((5..=12).contains(&windows), "{windows} windows");
        assert!(c.warning.is_none());
        assert!(changes
            .iter()
            .all(|(_, ch)| ch.groups.contains(GroupSet::SPANS)));
    }

    #[test]
    fn spans_over_the_budget_are_windowed_too() {
        let (c, ratio, changes) = simulate(0.05, 1.0, 120, |_| false);
        assert!(ratio <= 0.025, "cost {ratio}");
        assert!(c
            .warning
            .as_deref()
            .unwrap()
            .contains("spans are recorded in windows"));
        assert!(changes
            .iter()
            .any(|(_, ch)| !ch.groups.contains(GroupSet::SPANS)));
    }

    #[test]
    fn a_small_target_gets_the_floor() {
        // A target using 5% of a CPU: 2% of it is 1 ms a second, less than gcap's polling.
        let mut c = Controller::new(0.02, GroupSet::SPANS, GroupSet::LIFECYCLE, None);
        for i in 0..=100u64 {
            let now = i * TICK;
            c.tick(Sample {
                now,
                cost: 0.0,
                target_cpu: 0.05 * now as f64,
                spans: 0.0,
            });
        }
        let allowed = c.allowed() / (100 * TICK) as f64;
        assert!((allowed - MIN_RATE).abs() < 1e-9, "{allowed}");
        assert!((c.rate() - MIN_RATE).abs() < 1e-9);
    }

    #[test]
    fn span_windows_flip_at_their_share_of_the_period() {
        let (c, _, changes) = simulate(0.05, 1.0, 20, |_| false);
        let d = c.spans_duty.expect("spans are windowed");
        assert!(d.on >= SPANS_MIN_ON && d.on < 0.5, "{}", d.on);
        let off = d.period_start + (d.on * SPAN_PERIOD_NS as f64) as u64;
        assert_eq!(c.span_flip(d.period_start), Some(off));
        assert_eq!(c.span_flip(off), Some(d.period_start + SPAN_PERIOD_NS));
        assert!(changes.iter().any(|(_, ch)| ch.groups.is_empty()));
    }

    #[test]
    fn windowed_spans_meet_slow_episodes_and_stay_on_in_their_windows() {
        // Spans cost 5% (over the 2% budget: windowed); requests are slow in the last
        // second of every 10 s, and seen only while spans are attached.
        let slow = |t: u64| t % (10 * SEC) >= 9 * SEC;
        let (_, ratio, changes) = simulate(0.05, 1.0, 60, slow);
        let triggered: Vec<u64> = changes
            .iter()
            .filter(|(_, ch)| {
                ch.cause == coverage_cause::TRIGGER && ch.groups.contains(GroupSet::LIFECYCLE)
            })
            .map(|&(t, _)| t)
            .collect();
        // A window doubles the target's CPU here, and the budget (what spans leave of it,
        // and the overdraft) pays for about 100 ms of one every 10 s: each triggered window
        // spends half of what is left, so that most episodes get one.
        let mut episodes: Vec<u64> = triggered.iter().map(|t| t / (10 * SEC)).collect();
        episodes.dedup();
        assert!(episodes.len() >= 4, "{episodes:?} {changes:?}");
        for t in &triggered {
            assert!(slow(*t), "{t}");
        }
        let bound = 0.02 * (1.0 + OVERDRAFT_NS as f64 / (60 * SEC) as f64) + 0.05 / 60.0;
        assert!(ratio <= bound, "cost {ratio} > {bound}");
        for (_, ch) in &changes {
            if ch.groups.contains(GroupSet::LIFECYCLE) {
                assert!(ch.groups.contains(GroupSet::SPANS), "{ch:?}");
            }
        }
    }

    #[test]
    fn slow_requests_open_a_window_at_once_within_the_bound() {
        let slow_from = 30 * SEC;
        let (_, ratio, changes) = simulate(0.005, 1.0, 120, |t| t >= slow_from);
        let first = changes
            .iter()
            .find(|(_, ch)| ch.cause == coverage_cause::TRIGGER)
            .expect("a triggered window");
        assert!(
            first.0 >= slow_from && first.0 <= slow_from + TICK,
            "{}",
            first.0
        );
        // Time with triggered windows open in any minute stays within the quota.
        let mut open_at = None;
        let mut spans: Vec<(u64, u64)> = Vec::new();
        for (t, ch) in &changes {
            match (ch.groups.contains(GroupSet::LIFECYCLE), open_at) {
                (true, None) if ch.cause == coverage_cause::TRIGGER => open_at = Some(*t),
                (false, Some(o)) => {
                    spans.push((o, *t));
                    open_at = None;
                }
                _ => {}
            }
        }
        for w in spans.windows(1) {
            let start = w[0].0;
            let in_minute: u64 = spans
                .iter()
                .filter(|s| s.0 >= start && s.0 < start + MINUTE_NS)
                .map(|s| s.1 - s.0)
                .sum();
            assert!(in_minute <= TRIGGER_QUOTA_NS + 2 * TICK, "{in_minute}");
        }
        // Overspending is bounded: the budget over the capture plus the overdraft (and
        // the second spans take to be priced).
        let bound = 0.02 * (1.0 + OVERDRAFT_NS as f64 / (120 * SEC) as f64) + 0.005 / 120.0;
        assert!(ratio <= bound, "cost {ratio} > {bound}");
    }

    #[test]
    fn test_period_toggles_regardless_of_budget() {
        let mut c = Controller::new(
            0.02,
            GroupSet::SPANS,
            GroupSet::LIFECYCLE,
            Some(100_000_000),
        );
        let mut n = 0;
        for i in 0..200u64 {
            let s = Sample {
                now: i * TICK,
                cost: 1e12,
                target_cpu: 0.0,
                spans: 0.0,
            };
            if c.tick(s).is_some() {
                n += 1;
            }
        }
        assert!(n >= 190, "{n} toggles");
    }
}
