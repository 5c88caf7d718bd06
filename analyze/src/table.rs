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

/// The order of [`goroutine_rows`]: indices into `a.goroutines` sorted by (pid, goid, file
/// name), ties in analysis order.
pub fn goroutine_order(set: &CaptureSet, a: &Analysis) -> Vec<u32> {
    let names: Vec<String> = set
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    // Each file's rank among the files' names (equal names, equal ranks).
    let rank: Vec<usize> = names
        .iter()
        .map(|n| names.iter().filter(|m| *m < n).count())
        .collect();
    let key = |i: u32| {
        let g = &a.goroutines[i as usize];
        (g.pid, g.key.goid, rank[g.key.file as usize])
    };
    let mut order: Vec<u32> = (0..a.goroutines.len() as u32).collect();
    if !order.windows(2).all(|w| key(w[0]) <= key(w[1])) {
        order.sort_by_key(|&i| key(i));
    }
    order
}

/// Writes `goroutines --format json`: what `serde_json::to_writer_pretty` writes for
/// [`goroutine_rows`], streamed from the analysis without building the rows.
pub fn write_goroutines_json<W: Write>(set: &CaptureSet, a: &Analysis, w: W) -> Result<()> {
    let order = goroutine_order(set, a);
    let ctx = rows::Ctx::new(set);
    let mut o = rows::Out::new(w);
    for &i in &order {
        rows::goroutine(&mut o, &ctx, &a.goroutines[i as usize])?;
    }
    o.finish()
}

/// Writes `spans --format json`: what `serde_json::to_writer_pretty` writes for
/// [`span_rows`], streamed from the analysis without building the rows.
pub fn write_spans_json<W: Write>(set: &CaptureSet, a: &Analysis, w: W) -> Result<()> {
    let ctx = rows::Ctx::new(set);
    let mut o = rows::Out::new(w);
    for s in &a.spans {
        rows::span(&mut o, &ctx, s, &a.spans)?;
    }
    o.finish()
}

/// Every span's contract row, in start order.
pub fn span_rows(set: &CaptureSet, a: &Analysis) -> Vec<SpanRow> {
    a.spans.iter().map(|s| s.row(set, &a.spans)).collect()
}

/// Writes the contract rows straight from the analysis, byte for byte what
/// `serde_json::to_writer_pretty` writes for the owned rows (`tests::streamed_json_is_serde_json`
/// checks it), without building the rows or going through a serializer per value.
mod rows {
    use std::borrow::Cow;
    use std::io::Write;

    use gcap_format::SpanKind;

    use crate::capture_set::CaptureSet;
    use crate::error::{AnalyzeError, Result};
    use crate::goroutine::{describe_state, EndedBy, Goroutine, UNKNOWN_REASON};
    use crate::span::Span;

    /// What every row needs: file names, wait-reason names.
    pub struct Ctx<'a> {
        pub set: &'a CaptureSet,
        files: Vec<String>,
        /// Per file, per target id: the name of each wait-reason number.
        reasons: Vec<Vec<(u32, Vec<String>)>>,
    }

    impl<'a> Ctx<'a> {
        pub fn new(set: &'a CaptureSet) -> Ctx<'a> {
            Ctx {
                set,
                files: set
                    .files
                    .iter()
                    .map(|f| f.path.display().to_string())
                    .collect(),
                reasons: set
                    .files
                    .iter()
                    .map(|f| {
                        f.cap
                            .targets()
                            .iter()
                            .map(|t| (t.id, (0..=255u8).map(|r| f.wait_reason(t.id, r)).collect()))
                            .collect()
                    })
                    .collect(),
            }
        }

        fn reason(&self, file: u32, target: u32, r: Option<u8>) -> Cow<'_, str> {
            let Some(r) = r else {
                return UNKNOWN_REASON.into();
            };
            match self.reasons[file as usize].iter().find(|t| t.0 == target) {
                Some((_, names)) => names[r as usize].as_str().into(),
                None => self.set.files[file as usize].wait_reason(target, r).into(),
            }
        }
    }

    /// A pretty-printed JSON array of objects, written through a large buffer.
    pub struct Out<W: Write> {
        b: Vec<u8>,
        w: W,
        rows: usize,
        /// Fields written in the current object.
        fields: usize,
    }

    const FLUSH: usize = 1 << 20;

    impl<W: Write> Out<W> {
        pub fn new(w: W) -> Self {
            let mut b = Vec::with_capacity(FLUSH + (64 << 10));
            b.push(b'[');
            Out {
                b,
                w,
                rows: 0,
                fields: 0,
            }
        }

        fn err(e: std::io::Error) -> AnalyzeError {
            AnalyzeError::io("writing JSON", e)
        }

        /// Starts a row (an object in the array).
        pub fn row(&mut self) -> Result<()> {
            if self.b.len() >= FLUSH {
                self.w.write_all(&self.b).map_err(Self::err)?;
                self.b.clear();
            }
            self.b
                .extend_from_slice(if self.rows == 0 { b"\n  {" } else { b",\n  {" });
            self.rows += 1;
            self.fields = 0;
            Ok(())
        }

        pub fn end_row(&mut self) {
            self.b
                .extend_from_slice(if self.fields == 0 { b"}" } else { b"\n  }" });
        }

        /// The array's end and a newline.
        pub fn finish(mut self) -> Result<()> {
            self.b
                .extend_from_slice(if self.rows == 0 { b"]\n" } else { b"\n]\n" });
            self.w.write_all(&self.b).map_err(Self::err)?;
            self.w.flush().map_err(Self::err)
        }

        /// `"key": ` of the next field.
        #[inline]
        pub fn key(&mut self, k: &str) {
            self.b.extend_from_slice(if self.fields == 0 {
                b"\n    \""
            } else {
                b",\n    \""
            });
            self.fields += 1;
            self.b.extend_from_slice(k.as_bytes());
            self.b.extend_from_slice(b"\": ");
        }

        #[inline]
        pub fn u64(&mut self, v: u64) {
            self.b
                .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        }

        #[inline]
        pub fn i64(&mut self, v: i64) {
            self.b
                .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        }

        pub fn null(&mut self) {
            self.b.extend_from_slice(b"null");
        }

        pub fn bool(&mut self, v: bool) {
            self.b.extend_from_slice(if v { b"true" } else { b"false" });
        }

        /// A JSON string, escaped as serde_json escapes it.
        #[inline]
        pub fn str(&mut self, s: &str) {
            if s.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
                self.b.push(b'"');
                self.b.extend_from_slice(s.as_bytes());
                self.b.push(b'"');
            } else {
                // Writing into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut self.b, s);
            }
        }

        pub fn opt_u64(&mut self, v: Option<u64>) {
            match v {
                Some(v) => self.u64(v),
                None => self.null(),
            }
        }

        pub fn opt_i64(&mut self, v: Option<i64>) {
            match v {
                Some(v) => self.i64(v),
                None => self.null(),
            }
        }

        pub fn opt_str(&mut self, v: Option<&str>) {
            match v {
                Some(v) => self.str(v),
                None => self.null(),
            }
        }

        /// A map or array value of a field: `{`/`[`, entries at the next indent, `}`/`]`.
        fn nested<T>(
            &mut self,
            open: u8,
            close: u8,
            items: impl Iterator<Item = T>,
            mut one: impl FnMut(&mut Self, T),
        ) {
            self.b.push(open);
            let mut n = 0;
            for x in items {
                self.b
                    .extend_from_slice(if n == 0 { b"\n      " } else { b",\n      " });
                one(self, x);
                n += 1;
            }
            if n > 0 {
                self.b.extend_from_slice(b"\n    ");
            }
            self.b.push(close);
        }
    }

    /// One goroutine's row ([`crate::goroutine::GoroutineRow`]).
    pub fn goroutine<W: Write>(o: &mut Out<W>, ctx: &Ctx, g: &Goroutine) -> Result<()> {
        let set = ctx.set;
        let f = &set.files[g.key.file as usize];
        o.row()?;
        o.key("pid");
        o.u64(g.pid as u64);
        o.key("goid");
        o.u64(g.key.goid);
        o.key("parent_goid");
        o.opt_u64(g.parent);
        o.key("start_function");
        o.str(&g.start_function);
        o.key("creation_site");
        o.str(&g.creation_site);
        o.key("created_ns");
        o.opt_i64(g.created.map(|t| set.rel(t)));
        o.key("exited_ns");
        o.opt_i64(g.exited.map(|t| set.rel(t)));
        o.key("running_ns");
        o.u64(g.totals.running_ns);
        o.key("runnable_ns");
        o.u64(g.totals.runnable_ns);
        o.key("syscall_ns");
        o.u64(g.totals.syscall_ns);
        o.key("blocked_ns");
        // As a BTreeMap<String, u64>: sorted by name, equal names summed.
        let (file, target) = (g.key.file, g.key.target);
        let mut blocked: Vec<(Cow<'_, str>, u64)> = Vec::with_capacity(g.totals.blocked_ns.len());
        g.totals
            .blocked_ns
            .for_each_sorted(|r, ns| blocked.push((ctx.reason(file, target, r), ns)));
        blocked.sort_by(|a, b| a.0.cmp(&b.0));
        blocked.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 += b.1;
                true
            } else {
                false
            }
        });
        o.nested(b'{', b'}', blocked.iter(), |o, (k, ns)| {
            o.str(k);
            o.b.extend_from_slice(b": ");
            o.u64(*ns);
        });
        o.key("wakeups_by");
        let mut wakers: Vec<(u64, u64)> = Vec::with_capacity(g.totals.wakeups_by.len());
        g.totals
            .wakeups_by
            .for_each_sorted(|k, n| wakers.push((k, n)));
        o.nested(b'{', b'}', wakers.into_iter(), |o, (k, n)| {
            o.b.push(b'"');
            o.u64(k);
            o.b.extend_from_slice(b"\": ");
            o.u64(n);
        });
        o.key("off_cpu_ns");
        o.u64(g.totals.off_cpu_ns);
        o.key("blocked_total_ns");
        o.u64(g.totals.blocked_total());
        o.key("end_ns");
        o.i64(set.rel(g.end));
        o.key("ended_by");
        o.str(match g.ended_by {
            EndedBy::Exit => "exit",
            EndedBy::ProcessExit => "process_exit",
            EndedBy::CaptureEnd => "capture_end",
        });
        o.key("state_at_end");
        if g.alive_at_end() {
            let s = g
                .last
                .map_or_else(|| "unknown".to_string(), |st| describe_state(f, g.key, &st));
            o.str(&s);
        } else {
            o.null();
        }
        o.key("samples");
        o.u64(g.samples.len() as u64);
        o.key("anomalies");
        o.u64(g.anomalies as u64);
        o.key("file");
        o.str(&ctx.files[g.key.file as usize]);
        o.end_row();
        Ok(())
    }

    /// Lower-case hex of the low `digits` nibbles of `v`.
    fn hex(v: u128, digits: usize, buf: &mut [u8; 32]) -> &str {
        const H: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in buf[..digits].iter_mut().enumerate() {
            *b = H[((v >> (4 * (digits - 1 - i))) & 15) as usize];
        }
        std::str::from_utf8(&buf[..digits]).unwrap_or("")
    }

    /// One span's row ([`crate::span::SpanRow`]).
    pub fn span<W: Write>(o: &mut Out<W>, ctx: &Ctx, s: &Span, spans: &[Span]) -> Result<()> {
        let set = ctx.set;
        let end = set.files[s.key.file as usize].end;
        let mut buf = [0u8; 32];
        o.row()?;
        o.key("pid");
        o.u64(s.pid as u64);
        o.key("kind");
        o.str(s.kind.name());
        o.key("name");
        o.str(&s.name);
        o.key("start_ns");
        o.i64(set.rel(s.start));
        o.key("duration_ns");
        o.u64(s.duration(end));
        o.key("status");
        o.opt_u64(s.status.map(u64::from));
        o.key("error");
        o.bool(s.error);
        o.key("goroutine");
        o.u64(s.key.goid);
        o.key("parent_span");
        o.opt_str(s.parent.map(|p| spans[p].span_id.as_str()));
        o.key("span_id");
        o.str(&s.span_id);
        o.key("trace_id");
        o.opt_str(s.trace_id.map(|t| hex(t, 32, &mut buf)));
        o.key("complete");
        o.bool(s.end.is_some());
        o.key("method");
        o.str(&s.method);
        o.key("host");
        o.str(&s.host);
        o.key("target");
        o.str(&s.target);
        o.key("remote_parent_span");
        let mut buf = [0u8; 32];
        o.opt_str(match (s.kind, s.trace, s.parent) {
            (SpanKind::HttpServer, Some(t), None) if t.span_id != 0 => {
                Some(hex(t.span_id as u128, 16, &mut buf))
            }
            _ => None,
        });
        o.key("outgoing_span");
        let mut buf = [0u8; 32];
        o.opt_str(match (s.kind, s.trace) {
            (SpanKind::HttpClient, Some(t)) => Some(hex(t.span_id as u128, 16, &mut buf)),
            _ => None,
        });
        o.key("goroutines");
        o.u64(s.goroutines.len() as u64);
        o.key("children");
        o.nested(b'[', b']', s.children.iter(), |o, &c| {
            o.str(&spans[c].span_id)
        });
        o.key("file");
        o.str(&ctx.files[s.key.file as usize]);
        o.end_row();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{scenario, CaptureBuilder};
    use crate::{CaptureSet, LoadedCapture, Options};
    use gcap_format::EventData;

    fn sets() -> Vec<CaptureSet> {
        let mut v: Vec<CaptureSet> = [
            scenario::lifecycle(false),
            scenario::leak(),
            scenario::spans(),
            scenario::convoy(),
            scenario::checkout(),
        ]
        .into_iter()
        .map(|b| CaptureSet::from_bytes("t \"quoted\"\n.gcap", b).unwrap())
        .collect();
        // Two files, the second named before the first, with the same pids and goids.
        let files = [scenario::spans(), scenario::downstream(), scenario::spans()]
            .into_iter()
            .zip(["z.gcap", "b.gcap", "a.gcap"])
            .map(|(b, n)| LoadedCapture::new(n.into(), gcap_format::Capture::from_vec(b).unwrap()))
            .collect();
        v.push(CaptureSet::from_loaded(files).unwrap());
        // Nothing at all.
        v.push(CaptureBuilder::new(1, "/x").into_set());
        // Names that need escaping, many wakers and wait reasons.
        let mut b = CaptureBuilder::new(7, "/bin/\u{e9}t\u{1}");
        for i in 0..40u64 {
            b.ev(10 * i, 5, EventData::GoUnblock { waker: 100 - i });
            b.ev(10 * i + 1, 5, EventData::GoStart { tid: 3 });
            b.ev(
                10 * i + 2,
                5,
                EventData::GoBlock {
                    reason: (i % 30) as u8,
                    stack: 0,
                },
            );
        }
        v.push(b.into_set());
        v
    }

    #[test]
    fn streamed_json_is_serde_json() {
        for set in sets() {
            for keep_states in [false, true] {
                let opts = Options {
                    keep_states,
                    ..Options::default()
                };
                let a = Analysis::run(&set, &opts);
                let mut got = Vec::new();
                write_goroutines_json(&set, &a, &mut got).unwrap();
                let want = serde_json::to_string_pretty(&goroutine_rows(&set, &a)).unwrap() + "\n";
                assert_eq!(String::from_utf8(got).unwrap(), want);
                let mut got = Vec::new();
                write_spans_json(&set, &a, &mut got).unwrap();
                let want = serde_json::to_string_pretty(&span_rows(&set, &a)).unwrap() + "\n";
                assert_eq!(String::from_utf8(got).unwrap(), want);
            }
        }
    }
}
