//! Presenting a [`crate::report::Report`]: text for a terminal, the contract's JSON,
//! Markdown for incident tickets, and one self-contained HTML file.

pub mod html;
pub mod markdown;
pub mod text;

use crate::report::{CaptureInfo, Endpoint, Report, SloReport};
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

/// "N of them were still running when the capture stopped: counted with their duration so
/// far", when any were.
pub(crate) fn open_requests(s: &SloReport) -> Option<String> {
    (s.open_requests > 0).then(|| {
        format!(
            "{} of them were still running when the capture stopped: counted with their duration so far",
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
