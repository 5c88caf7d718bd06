//! Rendering goroutines and spans for people (text tables), spreadsheets (CSV) and scripts
//! (JSON): the rows are [`GoroutineRow`] and [`SpanRow`], borrowed from the analysis.

use std::collections::BTreeMap;
use std::io::Write;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use serde::Serialize;

use crate::analysis::Analysis;
use crate::capture_set::CaptureSet;
use crate::coverage;
use crate::error::{AnalyzeError, Result};
use crate::goroutine::{EndedBy, LeakSuspect};
use crate::latency::percentile;
use crate::units::{fmt_at, fmt_ns};

mod goroutine_row;
mod span_row;

pub use goroutine_row::{goroutine_rows, BlockedNs, GoroutineRow};
pub use span_row::{span_rows, Hex, SpanIds, SpanRow};

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

/// The `n` largest of (key, count) entries given in key order (ties stay in key order).
fn top<K: std::fmt::Display>(
    entries: impl IntoIterator<Item = (K, u64)>,
    n: usize,
    fmt: impl Fn(u64) -> String,
) -> String {
    let mut v: Vec<(K, u64)> = entries.into_iter().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    let mut s: Vec<String> = v
        .iter()
        .take(n)
        .map(|(k, x)| format!("{k} {}", fmt(*x)))
        .collect();
    if v.len() > n {
        s.push(format!("+{}", v.len() - n));
    }
    s.join(", ")
}

/// Writes rows as the contract's pretty-printed JSON array and a newline, one row at a time
/// (`w` should be buffered).
pub fn write_json<T: Serialize, W: Write>(rows: impl IntoIterator<Item = T>, w: W) -> Result<()> {
    let err = |e: std::io::Error| AnalyzeError::io("writing JSON", e);
    let mut json = serde_json::Serializer::pretty(w);
    serde::Serializer::collect_seq(&mut json, rows).map_err(|e| err(e.into()))?;
    let mut w = json.into_inner();
    w.write_all(b"\n").map_err(err)?;
    w.flush().map_err(err)
}

/// A CSV writer's error; an I/O error stays the source (a closed pipe ends a listing quietly).
fn csv_error(e: csv::Error) -> AnalyzeError {
    if !e.is_io_error() {
        return AnalyzeError::Export {
            what: "CSV".into(),
            message: e.to_string(),
        };
    }
    match e.into_kind() {
        csv::ErrorKind::Io(e) => AnalyzeError::io("writing CSV", e),
        k => AnalyzeError::Export {
            what: "CSV".into(),
            message: format!("{k:?}"),
        },
    }
}

/// What each capture with windows covered, one line each (none for captures that recorded
/// everything): what the text listings say before their rows.
pub fn coverage_notes(set: &CaptureSet, a: &Analysis) -> String {
    let mut out = String::new();
    for (f, c) in set.files.iter().zip(&a.coverage) {
        if c.windowed() {
            out.push_str(&format!(
                "{}: covered {}; what it did not cover is unknown, in no total\n",
                f.name,
                coverage::describe(&c.coverage())
            ));
        }
    }
    out
}

/// The `goroutines` text report: a summary, leak suspects, then one row per goroutine.
pub fn goroutines_text(rows: &[GoroutineRow], leaks: &[LeakSuspect], limit: usize) -> String {
    let mut out = String::new();
    let created = rows.iter().filter(|r| r.created_ns.is_some()).count();
    let exited = rows.iter().filter(|r| r.exited_ns.is_some()).count();
    let alive = rows.iter().filter(|r| r.state_at_end.is_some()).count();
    let unseen = rows
        .iter()
        .filter(|r| r.ended_by == EndedBy::ExitedUnseen)
        .count();
    let pids: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.pid).collect();
    out.push_str(&format!(
        "{} goroutines in {} process{}: {created} created and {exited} exited during the capture, {alive} alive at the end{}\n",
        rows.len(),
        pids.len(),
        if pids.len() == 1 { "" } else { "es" },
        if unseen > 0 {
            format!(", {unseen} exited while the capture did not cover them")
        } else {
            String::new()
        }
    ));
    if !leaks.is_empty() {
        out.push_str("\nLeak suspects (piling up, blocked for long):\n");
        let mut t = new_table(
            &[
                "COUNT",
                "PILED UP",
                "PID",
                "CREATED AT",
                "START FUNCTION",
                "BLOCKED ON",
                "WHERE",
                "BLOCKED FOR",
            ],
            8,
        );
        for l in leaks {
            t.add_row(vec![
                l.count.to_string(),
                l.how(),
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
            truncate(r.start_function, 40),
            truncate(r.creation_site, 48),
            r.created_ns.map_or_else(|| "before".into(), fmt_at),
            r.exited_ns.map_or_else(|| "-".into(), fmt_at),
            fmt_ns(r.running_ns),
            fmt_ns(r.runnable_ns),
            fmt_ns(r.syscall_ns),
            fmt_ns(r.off_cpu_ns),
            if r.blocked_ns.is_empty() {
                "-".into()
            } else {
                top(r.blocked_ns.entries(), 2, fmt_ns)
            },
            if r.wakeups_by.is_empty() {
                "-".into()
            } else {
                let named: BTreeMap<String, u64> = r
                    .wakeups_by
                    .iter()
                    .map(|(&g, &n)| {
                        (
                            if g == 0 {
                                "runtime".into()
                            } else {
                                format!("g{g}")
                            },
                            n,
                        )
                    })
                    .collect();
                top(named, 2, |n| format!("×{n}"))
            },
            match (&r.state_at_end, r.ended_by) {
                (Some(s), _) => truncate(s, 60),
                (None, EndedBy::ProcessExit) => "process exited".into(),
                (None, EndedBy::ExitedUnseen) => "exited unseen".into(),
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
pub fn goroutines_csv<'a, W: Write>(
    rows: impl IntoIterator<Item = GoroutineRow<'a>>,
    w: W,
) -> Result<()> {
    let mut c = csv::Writer::from_writer(w);
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
    .map_err(csv_error)?;
    for r in rows {
        let opt = |v: Option<i64>| v.map_or_else(String::new, |x| x.to_string());
        c.write_record([
            r.pid.to_string(),
            r.goid.to_string(),
            r.parent_goid.map_or_else(String::new, |p| p.to_string()),
            r.start_function.to_string(),
            r.creation_site.to_string(),
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
            r.state_at_end.unwrap_or_default(),
            r.samples.to_string(),
            r.file.to_string(),
        ])
        .map_err(csv_error)?;
    }
    c.flush().map_err(|e| AnalyzeError::io("writing CSV", e))
}

/// The `spans` text report: per-name latency summary, then one row per span.
pub fn spans_text(rows: &[SpanRow], limit: usize) -> String {
    let mut out = String::new();
    let mut by_name: BTreeMap<(&str, &str), Vec<&SpanRow>> = BTreeMap::new();
    for r in rows {
        by_name.entry((r.kind, r.name)).or_default().push(r);
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
            truncate(r.name, 60),
            r.status.map_or_else(|| "-".into(), |s| s.to_string()),
            if r.error { "yes".into() } else { String::new() },
            r.goroutine.to_string(),
            r.span_id.to_string(),
            r.parent_span.unwrap_or("-").to_string(),
            r.trace_id.map_or_else(
                || "-".into(),
                |t| {
                    let t = t.to_string();
                    t[..t.len().min(8)].to_string()
                },
            ),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    if let Some(n) = note {
        out.push_str(&n);
        out.push('\n');
    }
    out
}

/// Spans as CSV (children space-separated).
pub fn spans_csv<'a, W: Write>(rows: impl IntoIterator<Item = SpanRow<'a>>, w: W) -> Result<()> {
    let mut c = csv::Writer::from_writer(w);
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
    .map_err(csv_error)?;
    let hex = |h: Option<Hex>| h.map_or_else(String::new, |h| h.to_string());
    for r in rows {
        c.write_record([
            r.span_id.to_string(),
            r.pid.to_string(),
            r.kind.to_string(),
            r.name.to_string(),
            r.start_ns.to_string(),
            r.duration_ns.to_string(),
            r.status.map_or_else(String::new, |s| s.to_string()),
            r.error.to_string(),
            r.goroutine.to_string(),
            r.parent_span.unwrap_or_default().to_string(),
            hex(r.trace_id),
            r.complete.to_string(),
            r.method.to_string(),
            r.host.to_string(),
            r.target.to_string(),
            hex(r.remote_parent_span),
            hex(r.outgoing_span),
            r.goroutines.to_string(),
            r.children.iter().collect::<Vec<_>>().join(" "),
            r.file.to_string(),
        ])
        .map_err(csv_error)?;
    }
    c.flush().map_err(|e| AnalyzeError::io("writing CSV", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{scenario, CaptureBuilder};
    use crate::{Analysis, CaptureSet, LoadedCapture, Options};
    use gcap_format::EventData;

    /// Scenarios with every kind of row: named (for the snapshots' names).
    fn sets() -> Vec<(&'static str, CaptureSet)> {
        let one = |b| CaptureSet::from_bytes("t \"quoted\"\n.gcap", b).unwrap();
        let mut v = vec![
            ("lifecycle", one(scenario::lifecycle(false))),
            ("leak", one(scenario::leak())),
            ("spans", one(scenario::spans())),
            ("convoy", one(scenario::convoy())),
            ("checkout", one(scenario::checkout())),
        ];
        // Three files, named out of order, with the same pids and goids.
        let files = [scenario::spans(), scenario::downstream(), scenario::spans()]
            .into_iter()
            .zip(["z.gcap", "b.gcap", "a.gcap"])
            .map(|(b, n)| LoadedCapture::new(n.into(), gcap_format::Capture::from_vec(b).unwrap()))
            .collect();
        v.push(("three_files", CaptureSet::from_loaded(files).unwrap()));
        // Nothing at all.
        v.push(("empty", CaptureBuilder::new(1, "/x").into_set()));
        // Names that need escaping, many wakers and wait reasons, some without a name.
        let mut b = CaptureBuilder::new(7, "/bin/\u{e9}t\u{1}");
        for i in 0..40u64 {
            b.ev(10 * i, 5, EventData::GoUnblock { waker: 100 - i });
            b.ev(10 * i + 1, 5, EventData::GoStart { tid: 3 });
            b.ev(
                10 * i + 2,
                5,
                EventData::GoBlock {
                    reason: if i % 13 == 12 {
                        200 + i as u8
                    } else {
                        (i % 30) as u8
                    },
                    stack: 0,
                },
            );
        }
        v.push(("many_reasons", b.into_set()));
        v
    }

    /// The streamed JSON rows, byte for byte, of every scenario (the snapshots were written
    /// by the owned rows' `serde_json::to_writer_pretty` before the rows were streamed), with
    /// and without the states kept.
    #[test]
    fn streamed_json_rows() {
        for (name, set) in sets() {
            let mut outs = Vec::new();
            for keep_states in [false, true] {
                let opts = Options {
                    keep_states,
                    ..Options::default()
                };
                let a = Analysis::run(&set, &opts);
                let mut out = Vec::new();
                write_json(goroutine_rows(&set, &a), &mut out).unwrap();
                write_json(span_rows(&set, &a), &mut out).unwrap();
                outs.push(String::from_utf8(out).unwrap());
            }
            assert_eq!(outs[0], outs[1], "{name}");
            insta::assert_snapshot!(format!("rows_{name}"), outs[0]);
        }
    }
}
