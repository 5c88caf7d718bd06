//! Exports: Parquet tables for fleet queries, a Chrome trace for Perfetto, folded stacks
//! and a flame graph.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use gcap_format::{SpanKind, StackId};
use polars::prelude::*;

use crate::analysis::Analysis;
use crate::capture_set::{CaptureSet, LoadedCapture, Ns};
use crate::error::{AnalyzeError, Result};
use crate::goroutine::{Cause, Goroutine, State, StateKind, UNKNOWN_REASON};
use crate::span::SpanIndex;

/// A goroutine's states split where it starts or stops serving a span of its own, each with
/// the span (index) it belonged to at the time, and whether the piece is the first of its
/// state (so per-state facts, like a wake-up, are reported once).
pub fn owned_states(index: &SpanIndex, g: &Goroutine) -> Vec<(State, Option<usize>, bool)> {
    let bounds = index.boundaries(g.key);
    let mut out = Vec::with_capacity(g.states.len());
    for s in &g.states {
        let mut at = s.start;
        for &b in bounds.iter().filter(|&&b| b > s.start && b < s.end) {
            let piece = State {
                start: at,
                end: b,
                ..s
            };
            out.push((piece, index.owner_at(g.key, at), at == s.start));
            at = b;
        }
        let piece = State { start: at, ..s };
        out.push((piece, index.owner_at(g.key, at), at == s.start));
    }
    out
}

/// Symbolized strings of (file, target, stack), computed once each.
#[derive(Default)]
struct Names {
    where_: HashMap<(u32, u32, StackId), String>,
    folded: HashMap<(u32, u32, StackId), String>,
}

impl Names {
    fn where_(&mut self, f: &LoadedCapture, file: u32, target: u32, stack: StackId) -> &str {
        self.where_
            .entry((file, target, stack))
            .or_insert_with(|| f.where_(target, stack))
    }

    /// Root-first function names joined by ';' (for folded stacks).
    fn folded(&mut self, f: &LoadedCapture, file: u32, target: u32, stack: StackId) -> &str {
        self.folded.entry((file, target, stack)).or_insert_with(|| {
            let frames = f.frames(target, stack);
            frames
                .iter()
                .rev()
                .map(|fr| fr.function.replace(';', ":"))
                .collect::<Vec<_>>()
                .join(";")
        })
    }
}

fn state_label(f: &LoadedCapture, target: u32, s: &State) -> String {
    match s.kind {
        StateKind::Blocked => format!(
            "blocked: {}",
            s.reason
                .map_or(UNKNOWN_REASON, |r| f.wait_reason(target, r))
        ),
        k => k.name().to_string(),
    }
}

fn cause_name(c: Cause) -> Option<String> {
    match c {
        Cause::Created => Some("created".into()),
        Cause::Woken(_) => Some("woken".into()),
        Cause::Preempted => Some("preempted".into()),
        Cause::Yielded => Some("yielded".into()),
        Cause::Unknown => None,
    }
}

fn polars_err(what: &str) -> impl Fn(PolarsError) -> AnalyzeError + '_ {
    move |e| AnalyzeError::Export {
        what: what.to_string(),
        message: e.to_string(),
    }
}

fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    let file = File::create(path)
        .map_err(|e| AnalyzeError::io(format!("creating {}", path.display()), e))?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
        .map_err(polars_err(&path.display().to_string()))?;
    Ok(())
}

fn frame(columns: Vec<Column>, what: &str) -> Result<DataFrame> {
    let height = columns.first().map_or(0, |c| c.len());
    DataFrame::new(height, columns).map_err(polars_err(what))
}

fn col<T, P: ?Sized>(name: &str, v: T) -> Column
where
    Series: NamedFrom<T, P>,
{
    Series::new(name.into(), v).into_column()
}

/// Writes Parquet tables `goroutines`, `states`, `spans` (and `samples` when the capture has
/// CPU samples) for each captured process, hive-partitioned:
/// `OUT/service=<exe name>/capture=<file stem>/<table>.parquet`. Returns the files written.
pub fn parquet(set: &CaptureSet, a: &Analysis, out: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut names = Names::default();
    for (fi, f) in set.files.iter().enumerate() {
        let fi = fi as u32;
        let mut targets: Vec<u32> = f.cap.targets().iter().map(|t| t.id).collect();
        for g in a.goroutines.iter().filter(|g| g.key.file == fi) {
            if !targets.contains(&g.key.target) {
                targets.push(g.key.target);
            }
        }
        let digest = f.cap.digest().unwrap_or_default();
        for target in targets {
            let dir = out
                .join(format!("service={}", hive_value(&f.service(target))))
                .join(format!("capture={}", hive_value(&f.stem)));
            std::fs::create_dir_all(&dir)
                .map_err(|e| AnalyzeError::io(format!("creating {}", dir.display()), e))?;
            let gs: Vec<&Goroutine> = a
                .goroutines
                .iter()
                .filter(|g| g.key.file == fi && g.key.target == target)
                .collect();
            let pid = f.pid(target);

            // goroutines
            let rows: Vec<_> = gs.iter().map(|g| g.row(set)).collect();
            let mut df = frame(
                vec![
                    col("pid", rows.iter().map(|r| r.pid).collect::<Vec<u32>>()),
                    col("goid", rows.iter().map(|r| r.goid).collect::<Vec<u64>>()),
                    col(
                        "parent_goid",
                        rows.iter().map(|r| r.parent_goid).collect::<Vec<_>>(),
                    ),
                    col(
                        "start_function",
                        rows.iter().map(|r| r.start_function).collect::<Vec<_>>(),
                    ),
                    col(
                        "creation_site",
                        rows.iter().map(|r| r.creation_site).collect::<Vec<_>>(),
                    ),
                    col(
                        "created_ns",
                        rows.iter().map(|r| r.created_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "exited_ns",
                        rows.iter().map(|r| r.exited_ns).collect::<Vec<_>>(),
                    ),
                    col("end_ns", rows.iter().map(|r| r.end_ns).collect::<Vec<_>>()),
                    col(
                        "running_ns",
                        rows.iter().map(|r| r.running_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "runnable_ns",
                        rows.iter().map(|r| r.runnable_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "syscall_ns",
                        rows.iter().map(|r| r.syscall_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "off_cpu_ns",
                        rows.iter().map(|r| r.off_cpu_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "blocked_total_ns",
                        rows.iter().map(|r| r.blocked_total_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "blocked_ns_json",
                        rows.iter()
                            .map(|r| serde_json::to_string(&r.blocked_ns).unwrap_or_default())
                            .collect::<Vec<_>>(),
                    ),
                    col(
                        "wakeups_by_json",
                        rows.iter()
                            .map(|r| serde_json::to_string(&r.wakeups_by).unwrap_or_default())
                            .collect::<Vec<_>>(),
                    ),
                    col(
                        "state_at_end",
                        rows.iter()
                            .map(|r| r.state_at_end.clone())
                            .collect::<Vec<_>>(),
                    ),
                    col("capture_digest", vec![digest.clone(); rows.len()]),
                ],
                "the goroutines table",
            )?;
            let p = dir.join("goroutines.parquet");
            write_parquet(&mut df, &p)?;
            written.push(p);

            // states
            let n: usize = gs.iter().map(|g| g.states.len()).sum();
            let (mut goid, mut start, mut dur) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut state, mut reason, mut where_) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut tid, mut cause, mut woken_by, mut span) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for g in &gs {
                for (s, owner, _) in owned_states(&a.span_index, g) {
                    goid.push(g.key.goid);
                    start.push(set.rel(s.start));
                    dur.push(s.duration());
                    state.push(s.kind.name());
                    reason.push(match s.kind {
                        StateKind::Blocked => Some(s.reason.map_or_else(
                            || UNKNOWN_REASON.to_string(),
                            |r| f.wait_reason(target, r).to_string(),
                        )),
                        _ => None,
                    });
                    where_.push(match s.kind {
                        StateKind::Blocked | StateKind::Syscall if s.stack != 0 => {
                            Some(names.where_(f, fi, target, s.stack).to_string())
                        }
                        _ => None,
                    });
                    tid.push((s.tid != 0).then_some(s.tid));
                    cause.push(if s.kind == StateKind::Runnable {
                        cause_name(s.cause)
                    } else {
                        None
                    });
                    woken_by.push(match (s.kind, s.cause) {
                        (StateKind::Runnable, Cause::Woken(w)) => Some(w),
                        _ => None,
                    });
                    span.push(owner.map(|i| a.spans[i].span_id.clone()));
                }
            }
            let mut df = frame(
                vec![
                    col("pid", vec![pid; goid.len()]),
                    col("goid", goid),
                    col("start_ns", start),
                    col("duration_ns", dur),
                    col("state", state),
                    col("reason", reason),
                    col("where", where_),
                    col("tid", tid),
                    col("cause", cause),
                    col("woken_by", woken_by),
                    col("span_id", span),
                ],
                "the states table",
            )?;
            let p = dir.join("states.parquet");
            write_parquet(&mut df, &p)?;
            written.push(p);

            // spans
            let rows: Vec<_> = a
                .spans
                .iter()
                .filter(|s| s.key.file == fi && s.key.target == target)
                .map(|s| s.row(set, &a.spans))
                .collect();
            let mut df = frame(
                vec![
                    col(
                        "span_id",
                        rows.iter().map(|r| r.span_id).collect::<Vec<_>>(),
                    ),
                    col("pid", rows.iter().map(|r| r.pid).collect::<Vec<_>>()),
                    col("kind", rows.iter().map(|r| r.kind).collect::<Vec<&str>>()),
                    col("name", rows.iter().map(|r| r.name).collect::<Vec<_>>()),
                    col(
                        "start_ns",
                        rows.iter().map(|r| r.start_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "duration_ns",
                        rows.iter().map(|r| r.duration_ns).collect::<Vec<_>>(),
                    ),
                    col("status", rows.iter().map(|r| r.status).collect::<Vec<_>>()),
                    col("error", rows.iter().map(|r| r.error).collect::<Vec<_>>()),
                    col(
                        "goroutine",
                        rows.iter().map(|r| r.goroutine).collect::<Vec<_>>(),
                    ),
                    col(
                        "parent_span",
                        rows.iter().map(|r| r.parent_span).collect::<Vec<_>>(),
                    ),
                    col(
                        "trace_id",
                        rows.iter()
                            .map(|r| r.trace_id.map(|t| t.to_string()))
                            .collect::<Vec<_>>(),
                    ),
                    col(
                        "complete",
                        rows.iter().map(|r| r.complete).collect::<Vec<_>>(),
                    ),
                    col("method", rows.iter().map(|r| r.method).collect::<Vec<_>>()),
                    col("host", rows.iter().map(|r| r.host).collect::<Vec<_>>()),
                    col("target", rows.iter().map(|r| r.target).collect::<Vec<_>>()),
                    col(
                        "goroutines",
                        rows.iter().map(|r| r.goroutines).collect::<Vec<_>>(),
                    ),
                ],
                "the spans table",
            )?;
            let p = dir.join("spans.parquet");
            write_parquet(&mut df, &p)?;
            written.push(p);

            // samples
            let ns: usize = gs.iter().map(|g| g.samples.len()).sum();
            if ns > 0 {
                let (mut goid, mut at, mut tid, mut leaf, mut stack) = (
                    Vec::with_capacity(ns),
                    Vec::with_capacity(ns),
                    Vec::with_capacity(ns),
                    Vec::with_capacity(ns),
                    Vec::with_capacity(ns),
                );
                for g in &gs {
                    for &(t, th, st) in &g.samples {
                        goid.push(g.key.goid);
                        at.push(set.rel(t));
                        tid.push(th);
                        leaf.push(f.site(target, st));
                        stack.push(names.folded(f, fi, target, st).to_string());
                    }
                }
                let mut df = frame(
                    vec![
                        col("pid", vec![pid; goid.len()]),
                        col("goid", goid),
                        col("at_ns", at),
                        col("tid", tid),
                        col("leaf", leaf),
                        col("stack", stack),
                    ],
                    "the samples table",
                )?;
                let p = dir.join("samples.parquet");
                write_parquet(&mut df, &p)?;
                written.push(p);
            }
        }
    }
    Ok(written)
}

/// A hive partition value: no '/', '=' or control characters.
fn hive_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '/' || c == '=' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Writes a Chrome trace (JSON, opens in Perfetto UI and chrome://tracing): one process per
/// server span holding a track per goroutine that belonged to it, one process per captured
/// process for goroutines outside spans (and GC/STW), state slices, span slices, and flow
/// arrows from each waker to the goroutine it woke.
pub fn chrome(set: &CaptureSet, a: &Analysis, out: &Path) -> Result<()> {
    let file = File::create(out)
        .map_err(|e| AnalyzeError::io(format!("creating {}", out.display()), e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    chrome_to(set, a, &mut w)
        .and_then(|_| w.flush())
        .map_err(|e| AnalyzeError::io(format!("writing {}", out.display()), e))
}

/// Chrome pids of span processes: above every Linux pid (at most 2^22) and below 2^31,
/// since trace viewers read pids and tids as 32-bit ints.
const SPAN_PID_BASE: u64 = 10_000_000;
/// Chrome tids of client/SQL span tracks (goroutine ids are the other tids).
const SPAN_TRACK_BASE: u64 = 2_000_000_000;

fn span_track(i: usize) -> u64 {
    SPAN_TRACK_BASE + (i as u64 % 100_000_000)
}

fn span_pid(i: usize) -> u64 {
    SPAN_PID_BASE + (i as u64 % 2_000_000_000)
}

fn us(set: &CaptureSet, t: Ns) -> String {
    format!("{:.3}", set.rel(t) as f64 / 1e3)
}

fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The Chrome trace, to any writer.
pub fn chrome_to<W: Write>(set: &CaptureSet, a: &Analysis, w: &mut W) -> std::io::Result<()> {
    let mut names = Names::default();
    let mut first = true;
    let mut emit = |w: &mut W, s: String| -> std::io::Result<()> {
        if first {
            first = false;
            w.write_all(b"\n")?;
        } else {
            w.write_all(b",\n")?;
        }
        w.write_all(s.as_bytes())
    };
    w.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[")?;
    // Processes: one per server span, one per captured process.
    let track_pid = |owner: Option<usize>, file: u32, target: u32| -> u64 {
        match owner {
            Some(s) => span_pid(s),
            None => set.files[file as usize].pid(target) as u64,
        }
    };
    let mut seen_pids = HashSet::new();
    for (fi, f) in set.files.iter().enumerate() {
        for t in f.cap.targets() {
            let pid = t.pid as u64;
            if seen_pids.insert(pid) {
                emit(w, format!(
                    "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":{}}}}}",
                    js(&format!("{} pid {} (goroutines outside spans)", f.service(t.id), t.pid))
                ))?;
                emit(w, format!("{{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":{pid},\"tid\":0,\"args\":{{\"sort_index\":{}}}}}", 1_000_000 + fi))?;
                emit(w, format!("{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":\"GC / stop-the-world\"}}}}"))?;
            }
        }
    }
    for (i, s) in a.spans.iter().enumerate() {
        if s.kind != SpanKind::HttpServer {
            continue;
        }
        let pid = span_pid(i);
        emit(w, format!(
            "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":{}}}}}",
            js(&format!("span {} {}", s.span_id, s.name))
        ))?;
        emit(w, format!("{{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":{pid},\"tid\":0,\"args\":{{\"sort_index\":{i}}}}}"))?;
    }
    // Span slices: server spans on track 0 of their process, client/SQL spans on a track
    // of their own in their parent's process.
    for (i, s) in a.spans.iter().enumerate() {
        let end = s.end_or(set.files[s.key.file as usize].end);
        let (pid, tid) = if s.kind == SpanKind::HttpServer {
            (span_pid(i), 0)
        } else {
            (
                track_pid(
                    s.parent
                        .filter(|&p| a.spans[p].kind == SpanKind::HttpServer),
                    s.key.file,
                    s.key.target,
                ),
                span_track(i),
            )
        };
        if tid != 0 {
            emit(w, format!(
                "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
                js(&format!("{} {}", s.kind.name(), s.name))
            ))?;
        } else {
            emit(w, format!("{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":\"span\"}}}}"))?;
        }
        emit(w, format!(
            "{{\"ph\":\"X\",\"cat\":\"span\",\"name\":{},\"pid\":{pid},\"tid\":{tid},\"ts\":{},\"dur\":{:.3},\"args\":{{\"span_id\":{},\"kind\":\"{}\",\"status\":{},\"error\":{},\"goroutine\":{},\"trace_id\":{}}}}}",
            js(&s.name),
            us(set, s.start),
            (end - s.start).max(0) as f64 / 1e3,
            js(&s.span_id),
            s.kind.name(),
            s.status.map_or_else(|| "null".into(), |x| x.to_string()),
            s.error,
            s.key.goid,
            s.trace_id.map_or_else(|| "null".into(), |t| format!("\"{t:032x}\"")),
        ))?;
    }
    // GC and STW.
    for p in &a.pauses {
        let pid = set.files[p.file as usize].pid(p.target);
        emit(w, format!(
            "{{\"ph\":\"X\",\"cat\":\"gc\",\"name\":\"{}\",\"pid\":{pid},\"tid\":0,\"ts\":{},\"dur\":{:.3}}}",
            if p.stw { "stop-the-world" } else { "GC" },
            us(set, p.start),
            (p.end - p.start).max(0) as f64 / 1e3
        ))?;
    }
    // Goroutine tracks, state slices and wake-up flows.
    let mut named: HashSet<(u64, u64)> = HashSet::new();
    let mut flow_id = 0u64;
    for g in &a.goroutines {
        let f = &set.files[g.key.file as usize];
        for (s, owner, first_piece) in owned_states(&a.span_index, g) {
            let pid = track_pid(owner, g.key.file, g.key.target);
            let tid = g.key.goid;
            if named.insert((pid, tid)) {
                emit(w, format!(
                    "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
                    js(&format!("g{} {}", g.key.goid, g.start_function))
                ))?;
            }
            let mut args = format!("\"state\":\"{}\"", s.kind.name());
            if s.tid != 0 {
                args.push_str(&format!(",\"thread\":{}", s.tid));
            }
            if matches!(s.kind, StateKind::Blocked | StateKind::Syscall) && s.stack != 0 {
                args.push_str(&format!(
                    ",\"where\":{}",
                    js(names.where_(f, g.key.file, g.key.target, s.stack))
                ));
            }
            if s.kind == StateKind::Runnable {
                args.push_str(&format!(",\"cause\":{}", js(&s.cause.describe())));
            }
            emit(w, format!(
                "{{\"ph\":\"X\",\"cat\":\"goroutine\",\"name\":{},\"pid\":{pid},\"tid\":{tid},\"ts\":{},\"dur\":{:.3},\"args\":{{{args}}}}}",
                js(&state_label(f, g.key.target, &s)),
                us(set, s.start),
                s.duration() as f64 / 1e3,
            ))?;
            if let (StateKind::Runnable, Cause::Woken(waker)) = (s.kind, s.cause) {
                let wk = crate::goroutine::GoroutineKey {
                    goid: waker,
                    ..g.key
                };
                if waker != 0 && first_piece && a.goroutine(wk).is_some() {
                    flow_id += 1;
                    let wpid = track_pid(a.span_index.owner_at(wk, s.start), wk.file, wk.target);
                    let ts = us(set, s.start);
                    emit(w, format!("{{\"ph\":\"s\",\"cat\":\"wakeup\",\"name\":\"wakeup\",\"id\":{flow_id},\"pid\":{wpid},\"tid\":{waker},\"ts\":{ts}}}"))?;
                    emit(w, format!("{{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"wakeup\",\"name\":\"wakeup\",\"id\":{flow_id},\"pid\":{pid},\"tid\":{tid},\"ts\":{ts}}}"))?;
                }
            }
        }
    }
    w.write_all(b"\n]}\n")
}

/// Folded stacks ("span;start function;frames;[state] ns"), one line per distinct stack,
/// sorted: time each goroutine spent in each state, by the span it worked for.
pub fn folded_lines(set: &CaptureSet, a: &Analysis) -> Vec<String> {
    let mut names = Names::default();
    let mut sums: HashMap<String, u64> = HashMap::new();
    for g in &a.goroutines {
        let f = &set.files[g.key.file as usize];
        for (s, owner, _) in owned_states(&a.span_index, g) {
            let d = s.duration();
            if d == 0 {
                continue;
            }
            let span = owner.map_or("(no span)", |i| a.spans[i].name.as_str());
            let mut line = format!(
                "{};{}",
                span.replace(';', ":"),
                g.start_function.replace(';', ":")
            );
            if matches!(s.kind, StateKind::Blocked | StateKind::Syscall) && s.stack != 0 {
                let frames = names.folded(f, g.key.file, g.key.target, s.stack);
                if !frames.is_empty() {
                    line.push(';');
                    line.push_str(frames);
                }
            }
            line.push_str(&format!(
                ";[{}]",
                state_label(f, g.key.target, &s).replace(';', ":")
            ));
            *sums.entry(line).or_insert(0) += d;
        }
    }
    let mut v: Vec<String> = sums.into_iter().map(|(k, n)| format!("{k} {n}")).collect();
    v.sort();
    v
}

/// Writes the folded stacks to `out` and a flame graph SVG beside it; returns the SVG path.
pub fn folded(set: &CaptureSet, a: &Analysis, out: &Path) -> Result<PathBuf> {
    let lines = folded_lines(set, a);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(out, text)
        .map_err(|e| AnalyzeError::io(format!("writing {}", out.display()), e))?;
    let svg = match out.extension() {
        Some(e) if e != "svg" => out.with_extension("svg"),
        _ => PathBuf::from(format!("{}.svg", out.display())),
    };
    let file = File::create(&svg)
        .map_err(|e| AnalyzeError::io(format!("creating {}", svg.display()), e))?;
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = "ganalyze: goroutine time by span and state".into();
    opts.count_name = "ns".into();
    opts.hash = true;
    if lines.is_empty() {
        // inferno refuses an empty profile; an empty graph is still a valid answer.
        let mut f = BufWriter::new(file);
        writeln!(
            f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"40\"><text x=\"10\" y=\"25\">no goroutine time in this capture</text></svg>"
        )
        .map_err(|e| AnalyzeError::io(format!("writing {}", svg.display()), e))?;
        return Ok(svg);
    }
    inferno::flamegraph::from_lines(
        &mut opts,
        lines.iter().map(String::as_str),
        BufWriter::new(file),
    )
    .map_err(|e| AnalyzeError::io(format!("writing {}", svg.display()), e))?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::scenario;
    use crate::Options;

    fn analysed(bytes: Vec<u8>) -> (CaptureSet, Analysis) {
        let set = CaptureSet::from_bytes("orders-1.gcap", bytes).unwrap();
        let a = Analysis::run(&set, &Options::default());
        (set, a)
    }

    #[test]
    fn parquet_tables_read_back() {
        let (set, a) = analysed(scenario::lifecycle(false));
        let dir = tempfile::tempdir().unwrap();
        let files = parquet(&set, &a, dir.path()).unwrap();
        let base = dir.path().join("service=orders").join("capture=orders-1");
        assert!(
            files.contains(&base.join("goroutines.parquet")),
            "{files:?}"
        );
        let g = ParquetReader::new(File::open(base.join("goroutines.parquet")).unwrap())
            .finish()
            .unwrap();
        assert_eq!(g.height(), 3);
        let running: Vec<Option<u64>> = g
            .column("running_ns")
            .unwrap()
            .u64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(running, vec![Some(380), Some(210), Some(170)]);
        let s = ParquetReader::new(File::open(base.join("states.parquet")).unwrap())
            .finish()
            .unwrap();
        let total: u64 = a.goroutines.iter().map(|g| g.states.len() as u64).sum();
        assert_eq!(s.height() as u64, total);
        let states = s.column("state").unwrap().str().unwrap();
        assert!(states.iter().any(|x| x == Some("off_cpu")));
        let wh = s.column("where").unwrap().str().unwrap();
        assert!(wh.iter().any(|x| x == Some("main.worker (main.go:25)")));
    }

    #[test]
    fn chrome_trace_is_json_with_flows() {
        let (set, a) = analysed(scenario::spans());
        let mut buf = Vec::new();
        chrome_to(&set, &a, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let evs = v["traceEvents"].as_array().unwrap();
        assert!(evs
            .iter()
            .any(|e| e["ph"] == "X" && e["name"] == "GET /api/orders"));
        let (set, a) = analysed(scenario::lifecycle(false));
        let mut buf = Vec::new();
        chrome_to(&set, &a, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let evs = v["traceEvents"].as_array().unwrap();
        // g2 woke g3, g3 woke g1: two flows, each a start and a finish.
        assert_eq!(evs.iter().filter(|e| e["ph"] == "s").count(), 2);
        assert_eq!(evs.iter().filter(|e| e["ph"] == "f").count(), 2);
        assert!(evs
            .iter()
            .any(|e| e["ph"] == "X" && e["name"] == "blocked: sync.Mutex.Lock" && e["tid"] == 3));
    }

    #[test]
    fn folded_stacks_sum_to_goroutine_time() {
        let (set, a) = analysed(scenario::spans());
        let lines = folded_lines(&set, &a);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("GET /api/orders;main.fetch;[running] ")),
            "{lines:#?}"
        );
        let sum: u64 = lines
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        let total: u64 = a
            .goroutines
            .iter()
            .map(|g| (g.end - g.first_seen) as u64)
            .sum();
        assert_eq!(sum, total);
        let dir = tempfile::tempdir().unwrap();
        let svg = folded(&set, &a, &dir.path().join("g.folded")).unwrap();
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(text.contains("<svg"));
    }
}
