//! The `report` model: what was captured, every endpoint's latency, each SLO's evaluation
//! and the root causes of its breach. Serialises to the contract's `report --format json`
//! (required fields first, extras after); the renderers in [`crate::render`] present it.

use std::collections::BTreeMap;

use gcap_format::SpanKind;
use serde::Serialize;

use crate::analysis::Analysis;
use crate::capture_set::CaptureSet;
use crate::category::Category;
use crate::coverage::{Coverage, Overhead};
use crate::critical_path::{Gap, Walker};
use crate::failure;
use crate::goroutine::{EndedBy, LeakParams, LeakSuspect};
use crate::latency::{self, percentile};
use crate::root_cause::{self, RootCause};
use crate::slo::{self, Slo};

#[derive(Clone, Debug, Serialize)]
pub struct TargetInfo {
    pub pid: u32,
    pub exe: String,
    pub go_version: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CaptureInfo {
    pub file: String,
    pub targets: Vec<TargetInfo>,
    pub start_unix_ns: u64,
    pub duration_ns: u64,
    pub events: u64,
    pub events_lost: u64,
    /// What the capture covered (as in `info`).
    pub coverage: Coverage,
    /// The capture level ("lifecycle", "full", ...).
    pub level: String,
    pub complete: bool,
    /// gcap's budget and measured cost (as in `info`; None: the capture measured none).
    pub overhead: Option<Overhead>,
    /// Whether the capture recorded when its probes were attached (its windows).
    pub windowed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct GoroutineSummary {
    pub created: u64,
    pub exited: u64,
    pub alive_at_end: u64,
    pub leak_suspects: Vec<LeakSuspect>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Endpoint {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
    pub mean_ns: u64,
    /// Requests still running when the capture stopped, counted with their duration so far.
    pub open_requests: u64,
    /// pid(s) serving it.
    pub pids: Vec<u32>,
    /// The endpoint with the highest p99 (when there is no SLO, the one to look at).
    pub slowest: bool,
}

/// One bar of a latency histogram: requests with lo_ns <= latency < hi_ns.
#[derive(Clone, Debug, Serialize)]
pub struct Bucket {
    pub lo_ns: u64,
    pub hi_ns: u64,
    pub count: u64,
}

/// One piece of the representative request's critical path.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineSegment {
    pub goroutine: u64,
    pub pid: u32,
    pub start_ns: i64,
    pub duration_ns: u64,
    pub category: Category,
    pub activity: Category,
    #[serde(rename = "where")]
    pub where_: String,
    pub activity_where: String,
    pub blocker: Option<String>,
}

/// A representative slow request (the breaching request of median latency).
#[derive(Clone, Debug, Serialize)]
pub struct Example {
    pub span: String,
    pub name: String,
    pub goroutine: u64,
    pub start_ns: i64,
    pub duration_ns: u64,
    pub trace_id: Option<String>,
    pub segments: Vec<TimelineSegment>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SloReport {
    pub name: String,
    pub endpoint: String,
    pub objective: String,
    pub observed: String,
    pub breached: bool,
    pub breaching_requests: u64,
    /// Breaching requests whose whole critical path the capture covered: the root causes
    /// come from these.
    pub explained_requests: u64,
    pub root_causes: Vec<RootCause>,
    // Extras.
    pub requests: u64,
    /// Of `requests`, those still running when the capture stopped: counted with their
    /// duration so far (a lower bound), breaching once it reaches the threshold.
    pub open_requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub threshold_ns: Option<u64>,
    pub latency_breached: bool,
    pub errors_breached: bool,
    /// Bad fraction / allowed bad fraction: 1.0 is exactly the error budget.
    pub budget_burn: Option<f64>,
    pub error_budget_burn: Option<f64>,
    /// Mean latency of the breaching requests and of the others.
    pub breaching_mean_ns: u64,
    pub baseline_mean_ns: u64,
    pub histogram: Vec<Bucket>,
    pub example: Option<Example>,
    /// The share of the time of the captures holding its requests that had lifecycle probes
    /// attached (None: captures without windows, which recorded every transition).
    pub lifecycle_covered: Option<f64>,
    /// When too few breaching requests were explained to rank causes: the gcap command for a
    /// fuller capture.
    pub fuller_capture: Option<String>,
    /// Breaching requests not explained because their critical path crosses time whose
    /// events were lost while capturing (a goroutine's state is unknown there).
    pub unexplained_by_losses: u64,
}

impl SloReport {
    /// "GET /x: p99 < 200ms", or "NAME (GET /x: p99 < 200ms)" for named SLOs.
    pub fn title(&self) -> String {
        let spec = format!("{}: {}", self.endpoint, self.objective);
        if self.name == spec {
            spec
        } else {
            format!("{} ({spec})", self.name)
        }
    }
}

/// Runtime context of the whole capture set.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeContext {
    pub gc_cycles: u64,
    pub stw_pauses: u64,
    pub stw_total_ns: u64,
    pub stw_max_ns: u64,
    /// Whether the kernel's scheduling (thread descheduling, off_cpu) was captured.
    pub kernel_scheduling: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub captures: Vec<CaptureInfo>,
    pub goroutines: GoroutineSummary,
    pub endpoints: Vec<Endpoint>,
    pub slos: Vec<SloReport>,
    // Extras.
    pub runtime: RuntimeContext,
    /// Shown when no SLO was given: how to add one.
    pub hint: Option<String>,
    pub warnings: Vec<String>,
}

/// Below this many explained breaching requests (when the capture missed others), causes
/// are not ranked: a share computed from a handful of requests says little.
pub const MIN_EXPLAINED: usize = 5;

/// Leak suspects for the report: goroutines alive and blocked at the end, grouped by
/// creation site and place, whose oldest has been blocked at least 1 s and a fifth of the
/// capture, and that grew during the capture or are far more numerous than the requests in
/// flight ([`LeakParams`]); at least two from one creation site in the program's own code
/// (the runtime's and standard library's own, such as idle keep-alive connections, are left
/// out; `ganalyze goroutines` lists every suspect).
pub(crate) fn report_leak_params() -> LeakParams {
    LeakParams {
        min_blocked_ns: 1_000_000_000,
        min_fraction: 0.2,
        ..LeakParams::default()
    }
}

fn captures(set: &CaptureSet, a: &Analysis) -> Vec<CaptureInfo> {
    set.files
        .iter()
        .zip(&a.coverage)
        .map(|(f, cov)| {
            let cap = &f.cap;
            let meta = cap.meta().cloned().unwrap_or_default();
            CaptureInfo {
                file: f.name.clone(),
                targets: cap
                    .targets()
                    .iter()
                    .map(|t| TargetInfo {
                        pid: t.pid,
                        exe: t.exe.clone(),
                        go_version: t.go_version.clone(),
                    })
                    .collect(),
                start_unix_ns: meta.start_unix_ns,
                duration_ns: (f.end - f.start).max(0) as u64,
                events: cap.event_count(),
                events_lost: cap.stats().map_or(0, |s| s.lost_per_cpu.iter().sum()),
                coverage: cov.coverage(),
                level: meta.level.clone(),
                complete: cap.recovery().complete,
                overhead: cov.overhead(),
                windowed: cov.windowed(),
            }
        })
        .collect()
}

fn histogram(d: &[u64], threshold: Option<u64>) -> Vec<Bucket> {
    let Some(&max) = d.iter().max() else {
        return Vec::new();
    };
    let min = d.iter().copied().min().unwrap_or(0).max(1);
    let hi = max.max(threshold.unwrap_or(0)).max(min + 1) as f64 * 1.001;
    let lo = (min as f64).min(threshold.map_or(f64::MAX, |t| t as f64 * 0.999));
    let n = 40usize;
    let (l0, l1) = (lo.ln(), hi.ln());
    let edge = |i: usize| (l0 + (l1 - l0) * i as f64 / n as f64).exp().round() as u64;
    let mut b: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            lo_ns: edge(i),
            hi_ns: edge(i + 1),
            count: 0,
        })
        .collect();
    for &x in d {
        let f = ((x.max(1) as f64).ln() - l0) / (l1 - l0) * n as f64;
        let i = (f.floor().max(0.0) as usize).min(n - 1);
        b[i].count += 1;
    }
    b
}

/// Builds the report: every endpoint, each SLO evaluated and its breach explained.
pub fn build(set: &CaptureSet, a: &Analysis, slos: &[Slo]) -> Report {
    let end_of = |s: &crate::span::Span| s.duration(set.files[s.key.file as usize].end);
    // Endpoints (requests still running at the end with their duration so far).
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in a.spans.iter().enumerate() {
        if s.kind == SpanKind::HttpServer {
            by_name.entry(s.name.as_str()).or_default().push(i);
        }
    }
    let mut endpoints: Vec<Endpoint> = by_name
        .iter()
        .map(|(name, v)| {
            let mut d: Vec<u64> = v.iter().map(|&i| end_of(&a.spans[i])).collect();
            d.sort_unstable();
            let mut pids: Vec<u32> = v.iter().map(|&i| a.spans[i].pid).collect();
            pids.sort_unstable();
            pids.dedup();
            Endpoint {
                name: name.to_string(),
                count: d.len() as u64,
                errors: v.iter().filter(|&&i| slo::is_error(&a.spans[i])).count() as u64,
                p50_ns: percentile(&d, 50.0),
                p90_ns: percentile(&d, 90.0),
                p99_ns: percentile(&d, 99.0),
                max_ns: d.last().copied().unwrap_or(0),
                mean_ns: latency::mean(d.iter().copied()),
                open_requests: v.iter().filter(|&&i| a.spans[i].end.is_none()).count() as u64,
                pids,
                slowest: false,
            }
        })
        .collect();
    if let Some(e) = endpoints.iter_mut().max_by_key(|e| (e.p99_ns, e.max_ns)) {
        e.slowest = true;
    }

    crate::timing::phase_mark("report: endpoints");
    let caps = captures(set, a);
    let windowed = caps.iter().any(|c| c.windowed);
    // Where events were lost, a request whose critical path crosses a goroutine's unknown
    // time is not explained either (windows or not).
    let lossy = a.events_lost > 0;
    // `--level spans` records requests but no goroutine lifecycle: a critical path then
    // knows client calls and nothing else, and the report says so instead of guessing.
    let spans_only = !caps.is_empty() && caps.iter().all(|c| c.level == "spans");
    let walker = Walker::new(set, a);
    let mut reports = Vec::new();
    for s in slos {
        let ev = slo::evaluate(s, &a.spans, end_of);
        let breaching: std::collections::HashSet<usize> = ev.breaching.iter().copied().collect();
        let baseline: Vec<usize> = ev
            .requests
            .iter()
            .copied()
            .filter(|i| !breaching.contains(i))
            .collect();
        let label = s.endpoint.to_string();
        crate::timing::phase_mark("report: SLO evaluated");
        // With windows or losses, only requests the capture wholly covered are compared: the
        // breaching ones it explains against the others it covered.
        let mut by_losses = 0;
        let (explained, covered_baseline) = if windowed || lossy {
            let mut explained = Vec::new();
            for &i in &ev.breaching {
                match walker.gap(i) {
                    None => explained.push(i),
                    Some(Gap::Lost) => by_losses += 1,
                    Some(Gap::Uncovered) => {}
                }
            }
            // The comparison takes a sample of the baseline anyway: only that is walked.
            let baseline = root_cause::sample(&baseline)
                .into_iter()
                .filter(|&i| walker.gap(i).is_none())
                .collect();
            (explained, baseline)
        } else {
            (ev.breaching.clone(), baseline.clone())
        };
        let too_few = explained.len() < ev.breaching.len() && explained.len() < MIN_EXPLAINED;
        let mut causes = if ev.latency_breached && !too_few {
            root_cause::explain(&walker, &explained, &covered_baseline, &label)
        } else if ev.errors_breached && !ev.latency_breached {
            failure::explain(&walker, &ev.requests, &label)
        } else {
            Vec::new()
        };
        if spans_only {
            for c in causes
                .iter_mut()
                .filter(|c| c.category == Category::Other && c.where_ == "unknown")
            {
                c.summary =
                    root_cause::unattributed_at_spans_level(c, &label, !baseline.is_empty());
            }
        }
        crate::timing::phase_mark("report: root causes");
        let mean = |v: &[usize]| latency::mean(v.iter().map(|&i| end_of(&a.spans[i])));
        let mut d: Vec<u64> = ev.requests.iter().map(|&i| end_of(&a.spans[i])).collect();
        d.sort_unstable();
        let example = if ev.latency_breached {
            example(set, a, &walker, &explained)
        } else {
            None
        };
        let lifecycle_covered = windowed.then(|| lifecycle_share(set, a, &ev.requests));
        let fuller_capture =
            (ev.latency_breached && too_few).then(|| fuller_capture(a, &ev.breaching));
        reports.push(SloReport {
            name: s.name.clone(),
            endpoint: label,
            objective: s.objective(),
            observed: ev.observed.clone(),
            breached: ev.breached(),
            breaching_requests: ev.breaching.len() as u64,
            explained_requests: explained.len() as u64,
            root_causes: causes,
            requests: ev.requests.len() as u64,
            open_requests: ev.open,
            errors: ev.errors,
            error_rate: ev.error_rate,
            threshold_ns: s.latency.map(|l| l.threshold_ns()),
            latency_breached: ev.latency_breached,
            errors_breached: ev.errors_breached,
            budget_burn: ev.budget_burn,
            error_budget_burn: ev.error_budget_burn,
            breaching_mean_ns: mean(&ev.breaching),
            baseline_mean_ns: mean(&baseline),
            histogram: histogram(&d, s.latency.map(|l| l.threshold_ns())),
            example,
            lifecycle_covered,
            fuller_capture,
            unexplained_by_losses: by_losses,
        });
    }

    crate::timing::phase_mark("report: SLOs");
    // Every goroutine blocked at the end, grouped; a group is a suspect when its oldest
    // member has been blocked long enough (so the youngest leaks count too).
    let params = report_leak_params();
    let span = (set.end() - set.start).max(0) as f64;
    let all = LeakParams {
        min_blocked_ns: 0,
        min_fraction: 0.0,
        ..params
    };
    let leaks: Vec<LeakSuspect> = a
        .leak_suspects(set, &all)
        .into_iter()
        .filter(|l| {
            l.max_blocked_ns >= params.min_blocked_ns
                && l.max_blocked_ns as f64 >= params.min_fraction * span
        })
        .filter(|l| {
            let f = l.creation_site.split(' ').next().unwrap_or("");
            l.count >= 2 && l.creation_site != "unknown" && !crate::capture_set::is_std_frame(f)
        })
        .collect();
    let stw: Vec<u64> = a
        .pauses
        .iter()
        .filter(|p| p.stw)
        .map(|p| (p.end - p.start).max(0) as u64)
        .collect();
    // Whether the capture holds the kernel's view, whatever level recorded it.
    let kernel = a.kernel_sched || caps.iter().any(|c| c.level == "full");
    let mut warnings = a.warnings.clone();
    if spans_only {
        warnings.push(
            "the capture level is spans: it has requests but no goroutine lifecycle, so a breach can only be traced into client calls (HTTP, SQL); capture a few seconds with --level lifecycle (the default) to explain the rest"
                .into(),
        );
    } else if !kernel {
        warnings.push(
            "the capture level has no kernel scheduling events: time a thread was descheduled shows as on_cpu, never off_cpu (capture with --level full to see it)"
                .into(),
        );
    }
    let hint = slos.is_empty().then(|| {
        let e = endpoints.iter().find(|e| e.slowest);
        match e {
            Some(e) => format!(
                "no SLO given: add one to explain the slow requests, e.g. --slo \"{}: p99 < {}\" (or --slo-file with OpenSLO YAML)",
                e.name,
                crate::units::fmt_dur(suggest(e.p50_ns.max(e.p99_ns / 4)))
            ),
            None => "no SLO given, and no HTTP server requests were captured".into(),
        }
    });
    Report {
        captures: caps,
        goroutines: GoroutineSummary {
            created: a
                .goroutines
                .iter()
                .filter(|g| g.created().is_some())
                .count() as u64,
            // Those that exited while not covered exited too, at a time not known.
            exited: a
                .goroutines
                .iter()
                .filter(|g| g.exited().is_some() || g.ended_by == EndedBy::ExitedUnseen)
                .count() as u64,
            alive_at_end: a.goroutines.iter().filter(|g| g.alive_at_end()).count() as u64,
            leak_suspects: leaks,
        },
        endpoints,
        slos: reports,
        runtime: RuntimeContext {
            gc_cycles: a.pauses.iter().filter(|p| !p.stw).count() as u64,
            stw_pauses: stw.len() as u64,
            stw_total_ns: stw.iter().sum(),
            stw_max_ns: stw.iter().copied().max().unwrap_or(0),
            kernel_scheduling: kernel,
        },
        hint,
        warnings,
    }
}

/// The lifecycle coverage of the captures holding these requests, weighted by their length.
fn lifecycle_share(set: &CaptureSet, a: &Analysis, requests: &[usize]) -> f64 {
    let mut files: Vec<u32> = requests.iter().map(|&i| a.spans[i].key.file).collect();
    files.sort_unstable();
    files.dedup();
    if files.is_empty() {
        files = (0..set.files.len() as u32).collect();
    }
    let (mut covered, mut total) = (0.0, 0.0);
    for fi in files {
        let f = &set.files[fi as usize];
        let dur = (f.end - f.start).max(0) as f64;
        covered += a.coverage[fi as usize].coverage().lifecycle * dur;
        total += dur;
    }
    if total > 0.0 {
        covered / total
    } else {
        0.0
    }
}

/// The gcap command that captures every transition of the processes serving these requests
/// for long enough to explain them (with a larger ring buffer when events were lost).
fn fuller_capture(a: &Analysis, requests: &[usize]) -> String {
    let mut pids: Vec<u32> = requests.iter().map(|&i| a.spans[i].pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let p: Vec<String> = pids.iter().map(|p| format!("-p {p}")).collect();
    format!(
        "gcap -o full.gcap {} --budget off{} -d 30s",
        if p.is_empty() {
            "-p PID".into()
        } else {
            p.join(" ")
        },
        if a.events_lost > 0 {
            " --ring-mib 64"
        } else {
            ""
        }
    )
}

/// A round threshold near `ns` (1, 2 or 5 times a power of ten, at least 1ms).
fn suggest(ns: u64) -> u64 {
    let mut p = 1_000_000u64;
    loop {
        for m in [1, 2, 5] {
            if p * m >= ns {
                return p * m;
            }
        }
        p *= 10;
    }
}

fn example(set: &CaptureSet, a: &Analysis, w: &Walker, breaching: &[usize]) -> Option<Example> {
    let mut v: Vec<(u64, usize)> = breaching
        .iter()
        .map(|&i| {
            (
                a.spans[i].duration(set.files[a.spans[i].key.file as usize].end),
                i,
            )
        })
        .collect();
    v.sort_unstable();
    let &(d, i) = v.get(v.len() / 2)?;
    let s = &a.spans[i];
    let segs = w.path(i);
    Some(Example {
        span: s.span_id.clone(),
        name: s.name.to_string(),
        goroutine: s.key.goid,
        start_ns: set.rel(s.start),
        duration_ns: d,
        trace_id: s.trace_id.map(|t| format!("{t:032x}")),
        segments: segs
            .into_iter()
            .map(|x| TimelineSegment {
                goroutine: x.goroutine.goid,
                pid: set.files[x.goroutine.file as usize].pid(x.goroutine.target),
                start_ns: set.rel(x.start),
                duration_ns: x.duration(),
                category: x.category,
                activity: x.activity,
                where_: x.where_,
                activity_where: x.activity_where,
                blocker: x.blocker,
            })
            .collect(),
    })
}
