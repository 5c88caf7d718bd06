//! Rendering goroutines and spans for people (text tables), spreadsheets (CSV) and scripts
//! (JSON rows: [`crate::goroutine::GoroutineRow`], [`crate::span::SpanRow`]).

use std::collections::BTreeMap;
use std::io::Write;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use crate::analysis::Analysis;
use crate::capture_set::CaptureSet;
use crate::error::{AnalyzeError, Result};
use crate::goroutine::{GoroutineRow, LeakSuspect};
use crate::span::SpanRow;

/// A duration for people: "850ns", "12.3µs", "4.56ms", "1.234s".
pub fn fmt_ns(ns: u64) -> String {
    let f = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}µs", f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", f / 1e6)
    } else {
        format!("{:.3}s", f / 1e9)
    }
}

/// A time since the capture start, in seconds: "+1.234567s".
pub fn fmt_at(ns: i64) -> String {
    format!("{:+.6}s", ns as f64 / 1e9)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn new_table(header: &[&str], right_from: usize) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied().map(Cell::new));
    for i in right_from..header.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

fn limited<T>(rows: &[T], limit: usize) -> (&[T], Option<String>) {
    if limit == 0 || rows.len() <= limit {
        (rows, None)
    } else {
        (
            &rows[..limit],
            Some(format!(
                "… {} more not shown (--limit 0 shows all; --format csv or json lists everything)",
                rows.len() - limit
            )),
        )
    }
}

fn top<K: std::fmt::Display>(
    m: &BTreeMap<K, u64>,
    n: usize,
    fmt: impl Fn(u64) -> String,
) -> String {
    let mut v: Vec<(&K, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    let mut s: Vec<String> = v
        .iter()
        .take(n)
        .map(|(k, x)| format!("{k} {}", fmt(**x)))
        .collect();
    if v.len() > n {
        s.push(format!("+{}", v.len() - n));
    }
    s.join(", ")
}

/// The `goroutines` text report: a summary, leak suspects, then one row per goroutine.
pub fn goroutines_text(rows: &[GoroutineRow], leaks: &[LeakSuspect], limit: usize) -> String {
    let mut out = String::new();
    let created = rows.iter().filter(|r| r.created_ns.is_some()).count();
    let exited = rows.iter().filter(|r| r.exited_ns.is_some()).count();
    let alive = rows.iter().filter(|r| r.state_at_end.is_some()).count();
    let pids: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.pid).collect();
    out.push_str(&format!(
        "{} goroutines in {} process{}: {created} created and {exited} exited during the capture, {alive} alive at the end\n",
        rows.len(),
        pids.len(),
        if pids.len() == 1 { "" } else { "es" },
    ));
    if !leaks.is_empty() {
        out.push_str("\nLeak suspects (alive at the end, blocked for long):\n");
        let mut t = new_table(
            &[
                "COUNT",
                "PID",
                "CREATED AT",
                "START FUNCTION",
                "BLOCKED ON",
                "WHERE",
                "BLOCKED FOR",
            ],
            7,
        );
        for l in leaks {
            t.add_row(vec![
                l.count.to_string(),
                l.pid.to_string(),
                l.creation_site.clone(),
                l.start_function.clone(),
                l.blocked_on.clone(),
                l.where_.clone(),
                if l.min_blocked_ns == l.max_blocked_ns {
                    fmt_ns(l.max_blocked_ns)
                } else {
                    format!("{}–{}", fmt_ns(l.min_blocked_ns), fmt_ns(l.max_blocked_ns))
                },
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    out.push('\n');
    let mut t = new_table(
        &[
            "PID",
            "GOID",
            "PARENT",
            "START FUNCTION",
            "CREATED AT",
            "CREATED",
            "EXITED",
            "RUNNING",
            "RUNNABLE",
            "SYSCALL",
            "OFF-CPU",
            "BLOCKED",
            "WOKEN BY",
            "AT END",
        ],
        14,
    );
    let (shown, note) = limited(rows, limit);
    for r in shown {
        t.add_row(vec![
            r.pid.to_string(),
            r.goid.to_string(),
            r.parent_goid.map_or_else(|| "-".into(), |p| p.to_string()),
            truncate(&r.start_function, 40),
            truncate(&r.creation_site, 48),
            r.created_ns.map_or_else(|| "before".into(), fmt_at),
            r.exited_ns.map_or_else(|| "-".into(), fmt_at),
            fmt_ns(r.running_ns),
            fmt_ns(r.runnable_ns),
            fmt_ns(r.syscall_ns),
            fmt_ns(r.off_cpu_ns),
            if r.blocked_ns.is_empty() {
                "-".into()
            } else {
                top(&r.blocked_ns, 2, fmt_ns)
            },
            if r.wakeups_by.is_empty() {
                "-".into()
            } else {
                let named: BTreeMap<String, u64> = r
                    .wakeups_by
                    .iter()
                    .map(|(g, n)| {
                        (
                            if *g == 0 {
                                "runtime".into()
                            } else {
                                format!("g{g}")
                            },
                            *n,
                        )
                    })
                    .collect();
                top(&named, 2, |n| format!("×{n}"))
            },
            match (&r.state_at_end, r.ended_by) {
                (Some(s), _) => truncate(s, 60),
                (None, crate::goroutine::EndedBy::ProcessExit) => "process exited".into(),
                (None, _) => "exited".into(),
            },
        ]);
    }
    out.push_str(&format!("{t}\n"));
    if let Some(n) = note {
        out.push_str(&n);
        out.push('\n');
    }
    out
}

/// Goroutines as CSV (maps as JSON text in one column each).
pub fn goroutines_csv<W: Write>(rows: &[GoroutineRow], w: W) -> Result<()> {
    let mut c = csv::Writer::from_writer(w);
    let err = |e: csv::Error| AnalyzeError::Export {
        what: "CSV".into(),
        message: e.to_string(),
    };
    c.write_record([
        "pid",
        "goid",
        "parent_goid",
        "start_function",
        "creation_site",
        "created_ns",
        "exited_ns",
        "running_ns",
        "runnable_ns",
        "syscall_ns",
        "off_cpu_ns",
        "blocked_total_ns",
        "blocked_ns",
        "wakeups_by",
        "end_ns",
        "ended_by",
        "state_at_end",
        "samples",
        "file",
    ])
    .map_err(err)?;
    for r in rows {
        let opt = |v: Option<i64>| v.map_or_else(String::new, |x| x.to_string());
        c.write_record([
            r.pid.to_string(),
            r.goid.to_string(),
            r.parent_goid.map_or_else(String::new, |p| p.to_string()),
            r.start_function.clone(),
            r.creation_site.clone(),
            opt(r.created_ns),
            opt(r.exited_ns),
            r.running_ns.to_string(),
            r.runnable_ns.to_string(),
            r.syscall_ns.to_string(),
            r.off_cpu_ns.to_string(),
            r.blocked_total_ns.to_string(),
            serde_json::to_string(&r.blocked_ns).unwrap_or_default(),
            serde_json::to_string(&r.wakeups_by).unwrap_or_default(),
            r.end_ns.to_string(),
            serde_json::to_value(r.ended_by)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            r.state_at_end.clone().unwrap_or_default(),
            r.samples.to_string(),
            r.file.clone(),
        ])
        .map_err(err)?;
    }
    c.flush().map_err(|e| AnalyzeError::io("writing CSV", e))
}

/// A nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The `spans` text report: per-name latency summary, then one row per span.
pub fn spans_text(rows: &[SpanRow], limit: usize) -> String {
    let mut out = String::new();
    let mut by_name: BTreeMap<(&str, &str), Vec<&SpanRow>> = BTreeMap::new();
    for r in rows {
        by_name
            .entry((r.kind, r.name.as_str()))
            .or_default()
            .push(r);
    }
    let complete = rows.iter().filter(|r| r.complete).count();
    out.push_str(&format!(
        "{} spans ({} complete, {} still open at the end of the capture)\n\n",
        rows.len(),
        complete,
        rows.len() - complete
    ));
    let mut t = new_table(
        &[
            "KIND", "NAME", "COUNT", "ERRORS", "P50", "P90", "P99", "MAX",
        ],
        2,
    );
    let mut names: Vec<_> = by_name.into_iter().collect();
    names.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let (shown_names, names_note) = limited(&names, if limit == 0 { 0 } else { limit.max(20) });
    for ((kind, name), v) in shown_names {
        let mut d: Vec<u64> = v.iter().map(|r| r.duration_ns).collect();
        d.sort_unstable();
        t.add_row(vec![
            kind.to_string(),
            truncate(name, 60),
            v.len().to_string(),
            v.iter().filter(|r| r.error).count().to_string(),
            fmt_ns(percentile(&d, 50.0)),
            fmt_ns(percentile(&d, 90.0)),
            fmt_ns(percentile(&d, 99.0)),
            fmt_ns(*d.last().unwrap_or(&0)),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    if let Some(n) = names_note {
        out.push_str(&n);
        out.push('\n');
    }
    out.push('\n');
    let mut t = new_table(
        &[
            "START",
            "DURATION",
            "KIND",
            "NAME",
            "STATUS",
            "ERROR",
            "GOROUTINE",
            "SPAN",
            "PARENT",
            "TRACE",
        ],
        10,
    );
    for i in [0, 1, 6] {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let (shown, note) = limited(rows, limit);
    for r in shown {
        t.add_row(vec![
            fmt_at(r.start_ns),
            if r.complete {
                fmt_ns(r.duration_ns)
            } else {
                format!("≥{}", fmt_ns(r.duration_ns))
            },
            r.kind.to_string(),
            truncate(&r.name, 60),
            r.status.map_or_else(|| "-".into(), |s| s.to_string()),
            if r.error { "yes".into() } else { String::new() },
            r.goroutine.to_string(),
            r.span_id.clone(),
            r.parent_span.clone().unwrap_or_else(|| "-".into()),
            r.trace_id
                .as_deref()
                .map_or_else(|| "-".into(), |t| t[..t.len().min(8)].to_string()),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    if let Some(n) = note {
        out.push_str(&n);
        out.push('\n');
    }
    out
}

/// Spans as CSV.
pub fn spans_csv<W: Write>(rows: &[SpanRow], w: W) -> Result<()> {
    let mut c = csv::Writer::from_writer(w);
    let err = |e: csv::Error| AnalyzeError::Export {
        what: "CSV".into(),
        message: e.to_string(),
    };
    c.write_record([
        "span_id",
        "pid",
        "kind",
        "name",
        "start_ns",
        "duration_ns",
        "status",
        "error",
        "goroutine",
        "parent_span",
        "trace_id",
        "complete",
        "method",
        "host",
        "target",
        "remote_parent_span",
        "outgoing_span",
        "goroutines",
        "children",
        "file",
    ])
    .map_err(err)?;
    for r in rows {
        c.write_record([
            r.span_id.clone(),
            r.pid.to_string(),
            r.kind.to_string(),
            r.name.clone(),
            r.start_ns.to_string(),
            r.duration_ns.to_string(),
            r.status.map_or_else(String::new, |s| s.to_string()),
            r.error.to_string(),
            r.goroutine.to_string(),
            r.parent_span.clone().unwrap_or_default(),
            r.trace_id.clone().unwrap_or_default(),
            r.complete.to_string(),
            r.method.clone(),
            r.host.clone(),
            r.target.clone(),
            r.remote_parent_span.clone().unwrap_or_default(),
            r.outgoing_span.clone().unwrap_or_default(),
            r.goroutines.to_string(),
            r.children.join(" "),
            r.file.clone(),
        ])
        .map_err(err)?;
    }
    c.flush().map_err(|e| AnalyzeError::io("writing CSV", e))
}

/// Every goroutine's contract row, sorted by (pid, goid).
pub fn goroutine_rows(set: &CaptureSet, a: &Analysis) -> Vec<GoroutineRow> {
    use rayon::prelude::*;
    let mut rows: Vec<GoroutineRow> = a.goroutines.par_iter().map(|g| g.row(set)).collect();
    rows.sort_by(|x, y| (x.pid, x.goid, &x.file).cmp(&(y.pid, y.goid, &y.file)));
    rows
}

/// Every span's contract row, in start order.
pub fn span_rows(set: &CaptureSet, a: &Analysis) -> Vec<SpanRow> {
    a.spans.iter().map(|s| s.row(set, &a.spans)).collect()
}
