//! The Markdown report, for incident tickets.

use std::fmt::Write;

use super::{
    backticked, burn, capitalized, covered, endpoint_numbers, explained, open_requests, pct,
    runtime, slow_and_others, targets, too_few,
};
use crate::report::Report;
use crate::units::fmt_ns;

fn esc(s: &str) -> String {
    s.replace('|', "\\|")
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# ganalyze report\n");
    for s in &r.slos {
        let _ = writeln!(
            o,
            "- `{}`: observed {}, **{}**{}",
            esc(&s.title()),
            s.observed,
            if s.breached { "breached" } else { "met" },
            s.root_causes
                .first()
                .map(|c| format!(
                    " — top cause: `{}` at `{}` ({})",
                    c.category.name(),
                    c.where_,
                    pct(c.share)
                ))
                .unwrap_or_default()
        );
    }
    if !r.slos.is_empty() {
        o.push('\n');
    }
    let _ = writeln!(o, "## Captures\n");
    let _ = writeln!(
        o,
        "| file | targets | duration | events | lost |\n|---|---|---|---|---|"
    );
    for c in &r.captures {
        let _ = writeln!(
            o,
            "| `{}` | {} | {:.1}s | {} | {} |",
            c.file,
            esc(&targets(c, |exe| exe)),
            c.duration_ns as f64 / 1e9,
            c.events,
            c.events_lost
        );
    }
    for c in &r.captures {
        if let Some(cov) = covered(c) {
            let _ = writeln!(o, "\n`{}` covered: {cov}.", c.file);
        }
    }
    let _ = writeln!(o, "\n## Endpoints\n");
    let _ = writeln!(o, "| endpoint | count | errors | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|");
    for e in &r.endpoints {
        let _ = writeln!(
            o,
            "| `{}`{} | {} |",
            esc(&e.name),
            if e.slowest && r.endpoints.len() > 1 {
                " (slowest)"
            } else {
                ""
            },
            endpoint_numbers(e).join(" | ")
        );
    }
    for s in &r.slos {
        let _ = writeln!(o, "\n## SLO `{}`\n", esc(&s.title()));
        let _ = writeln!(
            o,
            "**{}**: observed {}. {} requests, {} slower than the threshold, {} errors; error budget burn {}.\n",
            if s.breached { "Breached" } else { "Met" },
            s.observed,
            s.requests,
            s.breaching_requests,
            s.errors,
            burn(s.budget_burn)
        );
        if let Some(open) = open_requests(s) {
            let _ = writeln!(o, "{open}.\n");
        }
        if let Some(e) = explained(s) {
            let _ = writeln!(o, "{}.\n", capitalized(&e));
        }
        if let Some(t) = too_few(s, backticked) {
            // No causes follow (too few to rank them).
            let _ = writeln!(o, "**{}.**", capitalized(&t));
        }
        if s.root_causes.is_empty() {
            continue;
        }
        let _ = writeln!(o, "S{}.\n", &slow_and_others(s)[1..]);
        let _ = writeln!(
            o,
            "| share | category | where | blocker |\n|---:|---|---|---|"
        );
        for c in &s.root_causes {
            let _ = writeln!(
                o,
                "| {} | `{}` | `{}` | {} |",
                pct(c.share),
                c.category.name(),
                esc(&c.where_),
                c.blocker
                    .as_deref()
                    .map_or("-".to_string(), |b| format!("`{}`", esc(b)))
            );
        }
        o.push('\n');
        for (i, c) in s.root_causes.iter().enumerate() {
            let _ = writeln!(o, "{}. {}", i + 1, c.summary);
            let ev: Vec<String> = c
                .evidence
                .iter()
                .map(|e| {
                    format!(
                        "span `{}` (goroutine {}, {} at +{:.6}s)",
                        e.span,
                        e.goroutine,
                        fmt_ns(e.duration_ns),
                        e.at_ns as f64 / 1e9
                    )
                })
                .collect();
            if !ev.is_empty() {
                let _ = writeln!(o, "   Evidence: {}.", ev.join("; "));
            }
        }
    }
    if !r.goroutines.leak_suspects.is_empty() {
        let _ = writeln!(o, "\n## Leak suspects\n");
        let _ = writeln!(
            o,
            "| count | piled up | created at | start function | blocked on | where |\n|---:|---|---|---|---|---|"
        );
        for l in &r.goroutines.leak_suspects {
            let _ = writeln!(
                o,
                "| {} | {} | `{}` | `{}` | {} | `{}` |",
                l.count,
                l.how(),
                esc(&l.creation_site),
                esc(&l.start_function),
                l.blocked_on,
                esc(&l.where_)
            );
        }
    }
    let _ = writeln!(o, "\n## Runtime\n\n{}", runtime(r, true));
    if let Some(h) = &r.hint {
        let _ = writeln!(o, "\n> {h}");
    }
    for w in &r.warnings {
        let _ = writeln!(o, "\n> Note: {w}");
    }
    o
}
