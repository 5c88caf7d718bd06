//! Presenting a [`crate::report::Report`]: text for a terminal, the contract's JSON,
//! Markdown for incident tickets, and one self-contained HTML file.

pub mod html;
pub mod markdown;
pub mod text;

use crate::coverage;
use crate::report::{CaptureInfo, Endpoint, Report, SloReport, MIN_EXPLAINED};
use crate::units::fmt_ns;

/// The contract's JSON object, pretty-printed.
pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).expect("a report always serialises");
    s.push('\n');
    s
}

/// A capture's targets: "EXE (pid N, goVERSION), ...", each executable as `exe` writes it.
pub(crate) fn targets(c: &CaptureInfo, exe: impl Fn(&str) -> &str) -> String {
    let t: Vec<String> = c
        .targets
        .iter()
        .map(|t| format!("{} (pid {}, {})", exe(&t.exe), t.pid, t.go_version))
        .collect();
    t.join(", ")
}

/// "lifecycle 3.1% of the time in 12 windows, spans 100%; gcap's cost 1.5% of the targets'
/// CPU (budget 2.0%)": what a capture covered and cost, for captures that recorded either
/// (None: a capture that predates budgets, which recorded everything).
pub(crate) fn covered(c: &CaptureInfo) -> Option<String> {
    let cost = coverage::describe_overhead(c.overhead).map(|o| format!("gcap's cost {o}"));
    let cov = c.windowed.then(|| coverage::describe(&c.coverage));
    match (cov, cost) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

/// "explained 41 of 690 breaching requests (lifecycle covered 3.1% of the capture; 2 cross
/// time whose events were lost while capturing)", for SLOs with breaching requests over
/// captures with windows, or whose losses left requests unexplained.
pub(crate) fn explained(s: &SloReport) -> Option<String> {
    let covered = s.lifecycle_covered.map(|share| {
        format!(
            "lifecycle covered {} of the capture",
            coverage::percent(share)
        )
    });
    let lost = (s.unexplained_by_losses > 0).then(|| {
        format!(
            "{} cross time whose events were lost while capturing",
            s.unexplained_by_losses
        )
    });
    let why: Vec<String> = [covered, lost].into_iter().flatten().collect();
    (s.breaching_requests > 0 && !why.is_empty()).then(|| {
        format!(
            "explained {} of {} breaching requests ({})",
            s.explained_requests,
            s.breaching_requests,
            why.join("; ")
        )
    })
}

/// "too few to rank causes (...): for a fuller capture, run gcap ...", when so; `code`
/// writes the command as the format shows code.
pub(crate) fn too_few(s: &SloReport, code: impl Fn(&str) -> String) -> Option<String> {
    s.fuller_capture.as_ref().map(|cmd| {
        format!(
            "too few to rank causes (fewer than {MIN_EXPLAINED} explained): for a fuller capture, run {} (or a higher --budget)",
            code(cmd)
        )
    })
}

/// A command as text and Markdown show code: `gcap ...`.
pub(crate) fn backticked(cmd: &str) -> String {
    format!("`{cmd}`")
}

/// A sentence with its first letter upper-case.
pub(crate) fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// The goroutines' and the runtime's summary: "N goroutines created, N exited, N alive at
/// the end. N GC cycles, N stop-the-world pauses (X in total[, longest Y])."
pub(crate) fn runtime(r: &Report, longest: bool) -> String {
    let (g, rt) = (&r.goroutines, &r.runtime);
    format!(
        "{} goroutines created, {} exited, {} alive at the end. {} GC cycles, {} stop-the-world pauses ({} in total{}).",
        g.created,
        g.exited,
        g.alive_at_end,
        rt.gc_cycles,
        rt.stw_pauses,
        fmt_ns(rt.stw_total_ns),
        if longest {
            format!(", longest {}", fmt_ns(rt.stw_max_ns))
        } else {
            String::new()
        }
    )
}

/// An endpoint's numbers as every report shows them: count, errors, p50, p90, p99, max.
pub(crate) fn endpoint_numbers(e: &Endpoint) -> [String; 6] {
    [
        e.count.to_string(),
        e.errors.to_string(),
        fmt_ns(e.p50_ns),
        fmt_ns(e.p90_ns),
        fmt_ns(e.p99_ns),
        fmt_ns(e.max_ns),
    ]
}

/// "N of them were not seen to end (...): counted with their duration so far", when any
/// were.
pub(crate) fn open_requests(s: &SloReport) -> Option<String> {
    (s.open_requests > 0).then(|| {
        format!(
            "{} of them were not seen to end (still running when the capture stopped, or when spans stopped being recorded): counted with their duration so far",
            s.open_requests
        )
    })
}

/// "slow requests take X on average, the others Y", or "...; no request met the SLO".
pub(crate) fn slow_and_others(s: &SloReport) -> String {
    let slow = fmt_ns(s.breaching_mean_ns);
    if s.requests > s.breaching_requests {
        format!(
            "slow requests take {slow} on average, the others {}",
            fmt_ns(s.baseline_mean_ns)
        )
    } else {
        format!("slow requests take {slow} on average; no request met the SLO")
    }
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

pub(crate) fn burn(x: Option<f64>) -> String {
    match x {
        Some(b) if b.is_finite() => format!("{b:.1}×"),
        Some(_) => "∞".into(),
        None => "-".into(),
    }
}
