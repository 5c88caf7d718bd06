//! The Chrome trace export (JSON; opens in Perfetto UI and chrome://tracing): span and
//! process tracks, goroutine state slices and wake-up flows.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use gcap_format::SpanKind;

use super::{owned_states, state_label, Names};
use crate::analysis::Analysis;
use crate::capture_set::{CaptureSet, Ns};
use crate::error::{AnalyzeError, Result};
use crate::goroutine::{Cause, GoroutineKey, StateKind};

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
pub(crate) fn chrome_to<W: Write>(
    set: &CaptureSet,
    a: &Analysis,
    w: &mut W,
) -> std::io::Result<()> {
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
            // Time the capture did not cover stays a gap in the track.
            if s.kind == StateKind::Unknown {
                continue;
            }
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
                let wk = GoroutineKey {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{analysed, scenario};

    #[test]
    fn chrome_trace_is_json_with_flows() {
        let (set, a) = analysed("orders-1.gcap", scenario::spans());
        let mut buf = Vec::new();
        chrome_to(&set, &a, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let evs = v["traceEvents"].as_array().unwrap();
        assert!(evs
            .iter()
            .any(|e| e["ph"] == "X" && e["name"] == "GET /api/orders"));
        let (set, a) = analysed("orders-1.gcap", scenario::lifecycle(false));
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
    fn time_not_covered_is_a_gap_in_the_tracks() {
        let (set, a) = analysed("orders-1.gcap", scenario::windowed(2));
        let mut buf = Vec::new();
        chrome_to(&set, &a, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let evs = v["traceEvents"].as_array().unwrap();
        assert!(!evs.iter().any(|e| e["args"]["state"] == "unknown"));
        // g7 sleeps in both windows: two slices from the snapshots, at 0 and 6 ms.
        let sleeps: Vec<f64> = evs
            .iter()
            .filter(|e| e["tid"] == 7 && e["name"] == "blocked: sleep")
            .map(|e| e["ts"].as_f64().unwrap())
            .collect();
        assert!(
            sleeps.contains(&0.0) && sleeps.contains(&6000.0),
            "{sleeps:?}"
        );
    }
}
