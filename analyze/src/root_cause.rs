//! Root causes of an SLO breach: the critical paths of the breaching requests, aggregated
//! per (category, where, blocker), with each cause's share of the *excess* latency: how much
//! longer the breaching requests took than the requests that met the objective.
//!
//! The share is computed top down, so that every figure is a real difference of means:
//!
//! 1. per category: the mean time per breaching request in it, minus the same over the
//!    requests that met the objective (negative when slow requests spend less there). The
//!    categories' differences add up to the whole excess (the paths tile the requests).
//! 2. within a category, per call: the downstream call for `downstream` time ("GET
//!    host/path", the SQL query), the code location for the rest. Fast runs of a slow
//!    query count as its baseline wherever they happened to wait (often nowhere).
//! 3. within a call, per (location, blocker): its part of the call's difference, in
//!    proportion to its time in the breaching requests.
//!
//! A share is its difference over the whole excess; nothing is clamped, so a cause as
//! present in fast requests as in slow ones (the handler's own CPU time, say) has a share
//! near zero however large it is. When no request met the objective there is nothing to
//! compare with: the shares are of the breaching requests' time, and the sentences say so.
//! Sums run over ordered maps, so the same capture always gives the same figures.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use serde::Serialize;

use crate::category::{Category, CauseWords};
use crate::critical_path::{Segment, Walker};
use crate::units::fmt_ns;

/// At most this many breaching and baseline requests are walked (evenly spaced).
pub(crate) const MAX_REQUESTS: usize = 2000;

/// One piece of evidence: a request and how long the cause held it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    /// The span id ("pid:local id").
    pub span: String,
    /// The handler goroutine of the request.
    pub goroutine: u64,
    /// When the cause first held the request (ns since the capture start).
    pub at_ns: i64,
    /// How long it held it in total.
    pub duration_ns: u64,
}

/// What the blocker was doing while the requests waited.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Activity {
    pub category: Category,
    #[serde(rename = "where")]
    pub where_: String,
    /// Fraction of the cause's time in breaching requests.
    pub share: f64,
}

/// One root cause, as in the contract (plus extras).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RootCause {
    pub category: Category,
    pub share: f64,
    #[serde(rename = "where")]
    pub where_: String,
    pub blocker: Option<String>,
    pub evidence: Vec<Evidence>,
    pub summary: String,
    /// Mean time per breaching request, and per request that met the objective.
    pub breaching_mean_ns: u64,
    pub baseline_mean_ns: u64,
    /// How many breaching requests it held up.
    pub requests: usize,
    pub activities: Vec<Activity>,
}

/// A cause: (category, where, blocker).
type Key = (Category, String, Option<String>);

/// What a cause's time is matched on in the requests that met the objective: the category
/// and the call (the downstream call, else the location).
type CallKey = (Category, String);

fn call_of(k: &Key) -> CallKey {
    match (k.0, &k.2) {
        (Category::Downstream, Some(call)) => (k.0, call.clone()),
        _ => (k.0, k.1.clone()),
    }
}

#[derive(Default)]
struct Acc {
    total: u64,
    requests: usize,
    /// (request, first at, total) per request
    per_request: Vec<(usize, i64, u64)>,
    activities: HashMap<(Category, String), u64>,
    segments: Vec<Segment>,
}

/// At most [`MAX_REQUESTS`] of `v`, evenly spaced.
pub(crate) fn sample(v: &[usize]) -> Vec<usize> {
    if v.len() <= MAX_REQUESTS {
        return v.to_vec();
    }
    (0..MAX_REQUESTS)
        .map(|i| v[i * v.len() / MAX_REQUESTS])
        .collect()
}

fn aggregate(w: &Walker, reqs: &[usize], keep: bool) -> BTreeMap<Key, Acc> {
    let mut m: BTreeMap<Key, Acc> = BTreeMap::new();
    for &r in reqs {
        let path = w.path(r);
        let mut per: HashMap<Key, (i64, u64)> = HashMap::default();
        for s in path {
            // Runnable time is keyed without a blocker: who held the CPU is filled in later.
            let key = (s.category, s.where_.clone(), s.blocker.clone());
            let e = per.entry(key.clone()).or_insert((s.start, 0));
            e.0 = e.0.min(s.start);
            e.1 += s.duration();
            let acc = m.entry(key).or_default();
            acc.total += s.duration();
            if keep {
                *acc.activities
                    .entry((s.activity, s.activity_where.clone()))
                    .or_default() += s.duration();
                if s.category == Category::Runnable && acc.segments.len() < 500 {
                    acc.segments.push(s);
                }
            }
        }
        for (k, (at, d)) in per {
            let acc = m.entry(k).or_default();
            acc.requests += 1;
            if keep {
                acc.per_request.push((r, at, d));
            }
        }
    }
    m
}

/// The ranked causes of the `breaching` requests against the `baseline` ones.
pub(crate) fn explain(
    w: &Walker,
    breaching: &[usize],
    baseline: &[usize],
    endpoint: &str,
) -> Vec<RootCause> {
    if breaching.is_empty() {
        return Vec::new();
    }
    let (bs, base) = (sample(breaching), sample(baseline));
    let slow = aggregate(w, &bs, true);
    let fast = aggregate(w, &base, false);
    let compared = !base.is_empty();
    let (nb, na) = (bs.len() as f64, base.len().max(1) as f64);
    // Time per call, in breaching and in baseline requests.
    let mut calls: BTreeMap<CallKey, (u64, u64)> = BTreeMap::new();
    for (k, acc) in &slow {
        calls.entry(call_of(k)).or_default().0 += acc.total;
    }
    for (k, acc) in &fast {
        calls.entry(call_of(k)).or_default().1 += acc.total;
    }
    let diff = |(b, a): (u64, u64)| b as f64 / nb - a as f64 / na;
    // The whole excess, summed over the calls in order (integer totals, one division each).
    let (slow_total, fast_total) = calls
        .values()
        .fold((0u64, 0u64), |(b, a), x| (b + x.0, a + x.1));
    let excess = diff((slow_total, fast_total));
    let mut out: Vec<RootCause> = Vec::new();
    for (k, mut acc) in slow {
        let call = calls[&call_of(&k)];
        // This cause's part of its call, by its time in the breaching requests.
        let part = acc.total as f64 / call.0.max(1) as f64;
        let bm = acc.total as f64 / nb;
        let am = call.1 as f64 / na * part;
        let share = if excess > 0.0 {
            (bm - am) / excess
        } else {
            acc.total as f64 / slow_total.max(1) as f64
        };
        if share < 0.01 {
            continue;
        }
        acc.per_request
            .sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        let evidence = acc
            .per_request
            .iter()
            .take(3)
            .map(|&(r, at, d)| {
                let s = &w.a.spans[r];
                Evidence {
                    span: s.span_id.clone(),
                    goroutine: s.key.goid,
                    at_ns: w.set.rel(at),
                    duration_ns: d,
                }
            })
            .collect();
        let total_act: u64 = acc.activities.values().sum();
        let mut acts: Vec<Activity> = acc
            .activities
            .iter()
            .map(|((c, wh), ns)| Activity {
                category: *c,
                where_: wh.clone(),
                share: if total_act > 0 {
                    *ns as f64 / total_act as f64
                } else {
                    0.0
                },
            })
            .collect();
        keep_largest_shares(&mut acts, 5, |a| (a.share, a.category, a.where_.as_str()));
        let (category, where_, mut blocker) = k;
        if category == Category::Runnable && blocker.is_none() {
            blocker = cpu_holders(w, &acc.segments);
        }
        let mut rc = RootCause {
            category,
            share,
            where_,
            blocker,
            evidence,
            summary: String::new(),
            breaching_mean_ns: bm.round() as u64,
            baseline_mean_ns: am.round() as u64,
            requests: acc.requests,
            activities: acts,
        };
        rc.summary = summary(&rc, endpoint, compared, w.a.has_cpu_samples());
        out.push(rc);
    }
    keep_largest_shares(&mut out, 8, |c| (c.share, c.category, c.where_.as_str()));
    out
}

/// Keeps the `n` largest shares, largest first; ties by category, then place.
fn keep_largest_shares<T>(v: &mut Vec<T>, n: usize, key: impl Fn(&T) -> (f64, Category, &str)) {
    v.sort_by(|a, b| {
        let ((sa, ca, wa), (sb, cb, wb)) = (key(a), key(b));
        sb.total_cmp(&sa).then(ca.cmp(&cb)).then(wa.cmp(wb))
    });
    v.truncate(n);
}

/// Who ran while the requests were runnable: the goroutines with most CPU time then.
fn cpu_holders(w: &Walker, segs: &[Segment]) -> Option<String> {
    let mut per: HashMap<String, (u64, std::collections::BTreeSet<u64>)> = HashMap::default();
    for s in segs {
        for (k, ns) in w
            .cpu_holders(s.goroutine, s.start, s.end)
            .into_iter()
            .take(4)
        {
            let name = match w.a.span_index.owner_at(k, s.start) {
                Some(sp) => format!("other {} requests", w.a.spans[sp].name),
                None => w.describe(k),
            };
            let e = per.entry(name).or_default();
            e.0 += ns;
            e.1.insert(k.goid);
        }
    }
    let total: u64 = per.values().map(|v| v.0).sum();
    if total == 0 {
        return None;
    }
    let mut v: Vec<_> = per.into_iter().collect();
    v.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    let names: Vec<String> = v
        .iter()
        .take(2)
        .filter(|x| x.1 .0 * 10 >= total)
        .map(|(n, (_, g))| {
            if n.starts_with("goroutine ") || n.starts_with("other ") || g.len() == 1 {
                n.clone()
            } else {
                format!("{n} (×{})", g.len())
            }
        })
        .collect();
    (!names.is_empty()).then(|| format!("CPU held by {}", names.join(" and ")))
}

/// "62% of the excess", or "62% of their time" when no request met the SLO.
fn share_of_excess(c: &RootCause, compared: bool) -> String {
    if compared {
        format!("{:.0}% of the excess", c.share * 100.0)
    } else {
        format!("{:.0}% of their time", c.share * 100.0)
    }
}

/// "3.00ms per slow request vs 1.00ms in requests that met the SLO", or, when none did,
/// "3.00ms per slow request (no request met the SLO to compare with)".
fn per_request(c: &RootCause, compared: bool) -> String {
    if compared {
        format!(
            "{} per slow request vs {} in requests that met the SLO",
            fmt_ns(c.breaching_mean_ns),
            fmt_ns(c.baseline_mean_ns)
        )
    } else {
        format!(
            "{} per slow request (no request met the SLO to compare with)",
            fmt_ns(c.breaching_mean_ns)
        )
    }
}

/// One sentence a person can act on; `compared`: some requests met the SLO.
/// `cpu_samples`: the capture holds CPU samples.
pub(crate) fn summary(c: &RootCause, endpoint: &str, compared: bool, cpu_samples: bool) -> String {
    // What the blocker did, unless it is the wait itself (nobody ended it).
    let doing = c
        .activities
        .first()
        .filter(|a| a.share >= 0.3 && (a.category, a.where_.as_str()) != (c.category, &c.where_))
        .map(|a| {
            let at = if a.where_ == "unknown" || a.where_.is_empty() {
                String::new()
            } else {
                format!(" at {}", a.where_)
            };
            format!(
                ", which {} ({:.0}% of that time)",
                a.category.doing(&at),
                a.share * 100.0
            )
        })
        .unwrap_or_default();
    let at = if c.where_ == "unknown" {
        String::new()
    } else {
        format!(" in {}", c.where_)
    };
    c.category.sentence(&CauseWords {
        share: &share_of_excess(c, compared),
        endpoint,
        at: &at,
        blocker: c.blocker.as_deref(),
        doing: &doing,
        per: &per_request(c, compared),
        cpu_samples,
    })
}

/// The sentence of time a spans-level capture cannot attribute (it has no goroutine
/// lifecycle to say where the handlers spent it).
pub(crate) fn unattributed_at_spans_level(c: &RootCause, endpoint: &str, compared: bool) -> String {
    format!(
        "{}: {endpoint} handlers spend it outside any captured client call ({}), and a --level spans capture has no goroutine lifecycle to say where; capture a few seconds with --level lifecycle to explain it.",
        share_of_excess(c, compared),
        per_request(c, compared)
    )
}
