//! Leak suspects: goroutines piling up at one place. Goroutines alive at the end of the
//! capture and blocked for long are grouped by where they were created and where they block;
//! a group is a suspect when it grew during the capture (members kept arriving after its
//! first) or is far more numerous than the requests its process had in flight. A handful of
//! long-lived workers parked at one place all along (a manager's run loop, a pool started at
//! once) is neither. In a capture with snapshots, a goroutine parked at one place in every
//! snapshot since it was first seen, and never seen to move, counts as blocked since then
//! (time outside the lifecycle windows is unknown, so its last state alone cannot say so);
//! otherwise its last state must be blocked.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::record::Goroutine;
use super::state::{reason_name, StateKind};
use crate::capture_set::CaptureSet;

/// When goroutines alive at the end count as leaked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakParams {
    /// A goroutine is stuck when blocked at least this long at the end of the capture
    /// (default 1 s) ...
    pub min_blocked_ns: u64,
    /// ... and for at least this fraction of its capture's duration (default 0.5).
    pub min_fraction: f64,
    /// A group of stuck goroutines is a suspect when at least this many of them arrived
    /// during the capture after the group's first (default 3) ...
    pub min_growth: u64,
    /// ... or when it has at least this many (default 1,000) and at least
    /// [`PILE_PER_REQUEST`] times the requests its process had in flight at most.
    pub min_pile: u64,
}

impl Default for LeakParams {
    fn default() -> Self {
        LeakParams {
            min_blocked_ns: 1_000_000_000,
            min_fraction: 0.5,
            min_growth: 3,
            min_pile: 1_000,
        }
    }
}

impl LeakParams {
    /// Every group of goroutines stuck long enough, grown or not.
    pub fn any_group(self) -> LeakParams {
        LeakParams {
            min_growth: 0,
            ..self
        }
    }
}

/// "Far more numerous than the requests in flight": a pile without growth needs this many
/// goroutines per request in flight (a server parks a few goroutines per open request).
pub const PILE_PER_REQUEST: u64 = 10;

/// Goroutines arriving within this long of a group's first are not growth: a pool started in
/// a loop arrives at once, a leak over the capture. At most a tenth of the capture.
const ARRIVAL_GRACE_NS: u64 = 1_000_000_000;

/// Goroutines alive at the end, blocked for long, grouped by creation site and place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeakSuspect {
    pub pid: u32,
    pub creation_site: String,
    pub start_function: String,
    pub count: u64,
    /// Go's wait reason, e.g. "chan receive".
    pub blocked_on: String,
    /// Where they block: "pkg.Func (file.go:LINE)".
    #[serde(rename = "where")]
    pub where_: String,
    /// The longest and shortest time blocked at the end.
    pub max_blocked_ns: u64,
    pub min_blocked_ns: u64,
    /// Up to 10 of their goroutine ids.
    pub goids: Vec<u64>,
    /// How many arrived during the capture after the group's first (created, or first seen
    /// when created while the lifecycle probes were off): how much it grew.
    pub growth: u64,
    /// The most server requests its process had in flight at once (0 when none were seen or
    /// spans were not analysed).
    pub requests_in_flight: u64,
}

impl LeakSuspect {
    /// How it piled up, in words: "+40 during the capture", or for a pile that did not grow
    /// "none new during the capture; at most 2 requests in flight".
    pub fn how(&self) -> String {
        let mut s = if self.growth > 0 {
            format!("+{} during the capture", self.growth)
        } else {
            "none new during the capture".to_string()
        };
        if self.requests_in_flight > 0 {
            s.push_str(&format!(
                "; at most {} request{} in flight",
                self.requests_in_flight,
                if self.requests_in_flight == 1 {
                    ""
                } else {
                    "s"
                }
            ));
        }
        s
    }
}

/// A group of stuck goroutines: (pid, creation site, wait reason, where).
type GroupKey = (u32, String, String, String);

/// Leak suspects, those that grew most first, then the most numerous; `in_flight`: the most
/// server requests each process (by pid) had in flight at once.
pub(crate) fn leak_suspects(
    set: &CaptureSet,
    goroutines: &[Goroutine],
    params: &LeakParams,
    in_flight: &HashMap<u32, u64>,
) -> Vec<LeakSuspect> {
    let mut groups: BTreeMap<GroupKey, LeakSuspect> = BTreeMap::new();
    // Each group's members' arrival times, and its file's duration.
    let mut arrivals: BTreeMap<GroupKey, (Vec<u32>, u64)> = BTreeMap::new();
    for g in goroutines {
        if !g.alive_at_end() {
            continue;
        }
        // (blocked for, wait reason, where)
        let (blocked, reason, stack) = match (&g.parked, g.last()) {
            (Some(p), _) => ((g.end - p.since).max(0) as u64, Some(p.reason), p.stack),
            (None, Some(last)) if last.kind == StateKind::Blocked => {
                (last.duration(), last.reason, last.stack)
            }
            _ => continue,
        };
        let f = &set.files[g.key.file as usize];
        let span = (f.end - f.start).max(0) as f64;
        if blocked < params.min_blocked_ns || (blocked as f64) < params.min_fraction * span {
            continue;
        }
        let reason = reason_name(f, g.key.target, reason).to_string();
        let where_ = f.where_(g.key.target, stack);
        let key = (
            g.pid,
            g.creation_site.to_string(),
            reason.clone(),
            where_.clone(),
        );
        let a = arrivals
            .entry(key.clone())
            .or_insert_with(|| (Vec::new(), span as u64));
        a.0.push(g.arrived_us);
        let e = groups.entry(key).or_insert_with(|| LeakSuspect {
            pid: g.pid,
            creation_site: g.creation_site.to_string(),
            start_function: g.start_function.to_string(),
            count: 0,
            blocked_on: reason,
            where_,
            max_blocked_ns: 0,
            min_blocked_ns: u64::MAX,
            goids: Vec::new(),
            growth: 0,
            requests_in_flight: in_flight.get(&g.pid).copied().unwrap_or(0),
        });
        e.count += 1;
        e.max_blocked_ns = e.max_blocked_ns.max(blocked);
        e.min_blocked_ns = e.min_blocked_ns.min(blocked);
        if e.goids.len() < 10 {
            e.goids.push(g.key.goid);
        }
    }
    let mut v: Vec<LeakSuspect> = groups
        .into_iter()
        .map(|(key, mut l)| {
            if let Some((times, span)) = arrivals.get(&key) {
                l.growth = growth(times, *span);
            }
            l
        })
        .filter(|l| {
            l.growth >= params.min_growth
                || (l.count >= params.min_pile
                    && l.count >= PILE_PER_REQUEST.saturating_mul(l.requests_in_flight))
        })
        .collect();
    v.sort_by(|a, b| {
        b.growth
            .cmp(&a.growth)
            .then(b.count.cmp(&a.count))
            .then(a.creation_site.cmp(&b.creation_site))
    });
    v
}

/// How many of a group's members (arrival times `times` in µs, in a capture of `span` ns)
/// arrived after the group's first by more than the grace ([`ARRIVAL_GRACE_NS`], at most a
/// tenth of the capture).
fn growth(times: &[u32], span: u64) -> u64 {
    let Some(&first) = times.iter().min() else {
        return 0;
    };
    let grace = ARRIVAL_GRACE_NS.min(span / 10) / 1_000;
    times
        .iter()
        .filter(|&&t| u64::from(t) > u64::from(first) + grace)
        .count() as u64
}

/// The most server requests each process had in flight at once, from its server spans
/// (`(pid, start, end)`).
pub(crate) fn requests_in_flight(
    spans: impl Iterator<Item = (u32, i64, i64)>,
) -> HashMap<u32, u64> {
    let mut edges: HashMap<u32, Vec<(i64, i64)>> = HashMap::new();
    for (pid, start, end) in spans {
        let e = edges.entry(pid).or_default();
        e.push((start, 1));
        e.push((end.max(start), -1));
    }
    edges
        .into_iter()
        .map(|(pid, mut e)| {
            // Ends before starts at one instant: back-to-back requests are not concurrent.
            e.sort_unstable();
            let (mut now, mut most) = (0i64, 0i64);
            for (_, d) in e {
                now += d;
                most = most.max(now);
            }
            (pid, most as u64)
        })
        .collect()
}
