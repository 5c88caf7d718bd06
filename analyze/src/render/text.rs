//! The text report: one screen, coloured only when asked (stdout is a terminal).

use std::fmt::Write;

use super::{
    backticked, burn, covered, endpoint_numbers, explained, open_requests, pct, slow_and_others,
    targets, too_few,
};
use crate::report::Report;
use crate::units::fmt_ns;

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// Renders the report as text; `color` adds ANSI colours.
pub fn render(r: &Report, color: bool) -> String {
    let st = Style { on: color };
    let mut o = String::new();
    for c in &r.captures {
        let _ = writeln!(
            o,
            "{} {}: {}, {:.1}s, {} events{}",
            st.bold("capture"),
            c.file,
            // The executable's base name: the path is in `info`.
            targets(c, |exe| exe.rsplit('/').next().unwrap_or(exe)),
            c.duration_ns as f64 / 1e9,
            c.events,
            if c.events_lost > 0 {
                st.red(&format!(" ({} LOST)", c.events_lost))
            } else {
                String::new()
            }
        );
        if let Some(c) = covered(c) {
            let _ = writeln!(o, "  covered: {c}");
        }
    }
    let g = &r.goroutines;
    let _ = writeln!(
        o,
        "goroutines: {} created, {} exited, {} alive at the end; GC: {} cycles, {} stop-the-world pauses ({} total, longest {})",
        g.created,
        g.exited,
        g.alive_at_end,
        r.runtime.gc_cycles,
        r.runtime.stw_pauses,
        fmt_ns(r.runtime.stw_total_ns),
        fmt_ns(r.runtime.stw_max_ns)
    );
    o.push('\n');
    let w = r
        .endpoints
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        o,
        "{}",
        st.bold(&format!(
            "{:<w$}  {:>7} {:>6} {:>9} {:>9} {:>9} {:>9}",
            "ENDPOINT", "COUNT", "ERRORS", "P50", "P90", "P99", "MAX"
        ))
    );
    for e in &r.endpoints {
        let [count, errors, p50, p90, p99, max] = endpoint_numbers(e);
        let line = format!(
            "{:<w$}  {count:>7} {errors:>6} {p50:>9} {p90:>9} {p99:>9} {max:>9}",
            e.name
        );
        let _ = writeln!(
            o,
            "{line}{}",
            if e.slowest && r.endpoints.len() > 1 {
                "  ← slowest"
            } else {
                ""
            }
        );
    }
    if r.endpoints.is_empty() {
        let _ = writeln!(o, "(no HTTP server requests captured)");
    }
    for s in &r.slos {
        o.push('\n');
        let verdict = if s.breached {
            st.red("BREACHED")
        } else {
            st.green("met")
        };
        let _ = writeln!(
            o,
            "{} {}{}: {}  →  observed {}: {}",
            st.bold("SLO"),
            if s.name == format!("{}: {}", s.endpoint, s.objective) {
                String::new()
            } else {
                format!("{}  ", s.name)
            },
            s.endpoint,
            s.objective,
            s.observed,
            verdict
        );
        let _ = writeln!(
            o,
            "  {} requests, {} slower than the threshold, {} errors; error budget burn {}{}",
            s.requests,
            s.breaching_requests,
            s.errors,
            burn(s.budget_burn),
            if s.error_budget_burn.is_some() {
                format!(" (errors {})", burn(s.error_budget_burn))
            } else {
                String::new()
            }
        );
        if let Some(open) = open_requests(s) {
            let _ = writeln!(o, "  {open}");
        }
        if s.breaching_requests > 0 && s.latency_breached {
            let _ = writeln!(o, "  {}", slow_and_others(s));
        }
        if let Some(e) = explained(s) {
            let _ = writeln!(o, "  {e}");
        }
        if let Some(t) = too_few(s, backticked) {
            let _ = writeln!(o, "  {}", st.red(&t));
        }
        for (i, c) in s.root_causes.iter().enumerate() {
            let _ = writeln!(
                o,
                "  {}. {} {:<10} {}",
                i + 1,
                st.bold(&format!("{:>4}", pct(c.share))),
                c.category.name(),
                c.where_
            );
            if let Some(b) = &c.blocker {
                let _ = writeln!(o, "     {:15}{}", "", st.dim(&format!("blocker: {b}")));
            }
            let _ = writeln!(o, "     {:15}{}", "", c.summary);
            if let Some(e) = c.evidence.first() {
                let _ = writeln!(
                    o,
                    "     {:15}{}",
                    "",
                    st.dim(&format!(
                        "e.g. span {} (goroutine {}) held {} at +{:.6}s",
                        e.span,
                        e.goroutine,
                        fmt_ns(e.duration_ns),
                        e.at_ns as f64 / 1e9
                    ))
                );
            }
        }
    }
    if !g.leak_suspects.is_empty() {
        o.push('\n');
        let _ = writeln!(
            o,
            "{}",
            st.bold("Leak suspects (piling up, blocked for long):")
        );
        for l in &g.leak_suspects {
            let _ = writeln!(
                o,
                "  {} goroutines created at {} ({}), blocked on {} at {} ({})",
                l.count,
                l.creation_site,
                l.start_function,
                l.blocked_on,
                l.where_,
                l.how()
            );
        }
    }
    if let Some(h) = &r.hint {
        let _ = writeln!(o, "\n{h}");
    }
    for w in &r.warnings {
        let _ = writeln!(o, "{}", st.dim(&format!("note: {w}")));
    }
    o
}
