//! Root causes of an SLO breach: the critical paths of the breaching requests, aggregated
//! per (category, where, blocker), ranked by their share of the *excess* latency.
//!
//! For every cause, `breaching_mean` is the mean time per breaching request its segments
//! took and `baseline_mean` the same over the requests that met the objective. The excess
//! of a cause is `max(0, breaching_mean - baseline_mean)`; its share is its excess over the
//! sum of all excesses. A cause as present in fast requests as in slow ones (the handler's
//! own CPU time, say) thus ranks low however large it is.

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

type Key = (Category, String, Option<String>);

#[derive(Default)]
struct Acc {
    total: u64,
    requests: usize,
    /// (request, first at, total) per request
    per_request: Vec<(usize, i64, u64)>,
    activities: HashMap<(Category, String), u64>,
    segments: Vec<Segment>,
}

fn sample(v: &[usize]) -> Vec<usize> {
    if v.len() <= MAX_REQUESTS {
        return v.to_vec();
    }
    (0..MAX_REQUESTS)
        .map(|i| v[i * v.len() / MAX_REQUESTS])
        .collect()
}

fn aggregate(w: &Walker, reqs: &[usize], keep: bool) -> HashMap<Key, Acc> {
    let mut m: HashMap<Key, Acc> = HashMap::default();
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
    let nb = bs.len() as f64;
    let na = base.len() as f64;
    let mut rows: Vec<(Key, Acc, f64, f64)> = slow
        .into_iter()
        .map(|(k, acc)| {
            let bm = acc.total as f64 / nb;
            let am = if na > 0.0 {
                fast.get(&k).map_or(0.0, |x| x.total as f64 / na)
            } else {
                0.0
            };
            (k, acc, bm, am)
        })
        .collect();
    let excess: f64 = rows.iter().map(|r| (r.2 - r.3).max(0.0)).sum();
    let weight = |r: &(Key, Acc, f64, f64)| {
        if excess > 0.0 {
            (r.2 - r.3).max(0.0) / excess
        } else {
            let all: f64 = rows.iter().map(|x| x.2).sum();
            if all > 0.0 {
                r.2 / all
            } else {
                0.0
            }
        }
    };
    let mut out: Vec<RootCause> = Vec::new();
    let shares: Vec<f64> = rows.iter().map(weight).collect();
    for (i, (k, mut acc, bm, am)) in rows.drain(..).enumerate() {
        let share = shares[i];
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
        let mut blocker = k.2.clone();
        if k.0 == Category::Runnable && blocker.is_none() {
            blocker = cpu_holders(w, &acc.segments);
        }
        let mut rc = RootCause {
            category: k.0,
            share,
            where_: k.1.clone(),
            blocker,
            evidence,
            summary: String::new(),
            breaching_mean_ns: bm.round() as u64,
            baseline_mean_ns: am.round() as u64,
            requests: acc.requests,
            activities: acts,
        };
        rc.summary = summary(&rc, endpoint);
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

/// "62% of the excess".
fn share_of_excess(c: &RootCause) -> String {
    format!("{:.0}% of the excess", c.share * 100.0)
}

/// "3.00ms per slow request vs 1.00ms in requests that met the SLO".
fn per_request(c: &RootCause) -> String {
    format!(
        "{} per slow request vs {} in requests that met the SLO",
        fmt_ns(c.breaching_mean_ns),
        fmt_ns(c.baseline_mean_ns)
    )
}

/// One sentence a person can act on.
pub(crate) fn summary(c: &RootCause, endpoint: &str) -> String {
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
        share: &share_of_excess(c),
        endpoint,
        at: &at,
        blocker: c.blocker.as_deref(),
        doing: &doing,
        per: &per_request(c),
    })
}

/// The sentence of time a spans-level capture cannot attribute (it has no goroutine
/// lifecycle to say where the handlers spent it).
pub(crate) fn unattributed_at_spans_level(c: &RootCause, endpoint: &str) -> String {
    format!(
        "{}: {endpoint} handlers spend it outside any captured client call ({}), and a --level spans capture has no goroutine lifecycle to say where; capture a few seconds with --level lifecycle to explain it.",
        share_of_excess(c),
        per_request(c)
    )
}
