//! Leak suspects: goroutines alive at the end of the capture and blocked for long, grouped
//! by where they were created and where they block. In a capture with snapshots, a goroutine
//! parked at one place in every snapshot since it was first seen, and never seen to move,
//! counts as blocked since then (time outside the lifecycle windows is unknown, so its last
//! state alone cannot say so); otherwise its last state must be blocked.

use std::collections::BTreeMap;

use serde::Serialize;

use super::record::Goroutine;
use super::state::{reason_name, StateKind};
use crate::capture_set::CaptureSet;

/// When a goroutine alive at the end counts as leaked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakParams {
    /// Blocked at least this long at the end of the capture (default 1 s) ...
    pub min_blocked_ns: u64,
    /// ... and for at least this fraction of its capture's duration (default 0.5).
    pub min_fraction: f64,
}

impl Default for LeakParams {
    fn default() -> Self {
        LeakParams {
            min_blocked_ns: 1_000_000_000,
            min_fraction: 0.5,
        }
    }
}

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
}

/// Leak suspects, most numerous first.
pub(crate) fn leak_suspects(
    set: &CaptureSet,
    goroutines: &[Goroutine],
    params: &LeakParams,
) -> Vec<LeakSuspect> {
    let mut groups: BTreeMap<(u32, String, String, String), LeakSuspect> = BTreeMap::new();
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
        let e = groups
            .entry((
                g.pid,
                g.creation_site.to_string(),
                reason.clone(),
                where_.clone(),
            ))
            .or_insert_with(|| LeakSuspect {
                pid: g.pid,
                creation_site: g.creation_site.to_string(),
                start_function: g.start_function.to_string(),
                count: 0,
                blocked_on: reason,
                where_,
                max_blocked_ns: 0,
                min_blocked_ns: u64::MAX,
                goids: Vec::new(),
            });
        e.count += 1;
        e.max_blocked_ns = e.max_blocked_ns.max(blocked);
        e.min_blocked_ns = e.min_blocked_ns.min(blocked);
        if e.goids.len() < 10 {
            e.goids.push(g.key.goid);
        }
    }
    let mut v: Vec<LeakSuspect> = groups.into_values().collect();
    v.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.creation_site.cmp(&b.creation_site))
    });
    v
}
