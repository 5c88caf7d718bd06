//! The whole analysis of a capture set: decode every events block in parallel into
//! per-goroutine runs, merge the runs of each goroutine in time order, rebuild every
//! goroutine's states in parallel, then correlate spans.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use gcap_format::{EventData, EventKind, EventsPayload};
use rayon::prelude::*;

use crate::capture_set::{CaptureSet, Ns};
use crate::goroutine::{self, Builder, GEv, Goroutine, GoroutineKey, LeakParams, ThreadOff};
use crate::span::{self, Span, SpanEv, SpanIndex};

/// How to run an analysis.
#[derive(Clone)]
pub struct Options {
    /// Keep every goroutine's state intervals (exports need them; totals do not).
    pub keep_states: bool,
    /// Called with the number of events of each block decoded (for progress bars).
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    pub leak: LeakParams,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            keep_states: true,
            progress: None,
            leak: LeakParams::default(),
        }
    }
}

/// Garbage collection and stop-the-world intervals, per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pause {
    pub file: u32,
    pub target: u32,
    pub start: Ns,
    pub end: Ns,
    /// true: stop-the-world; false: a GC cycle (start to mark end).
    pub stw: bool,
}

/// The result of analysing a capture set.
pub struct Analysis {
    /// Sorted by (file, target, goid).
    pub goroutines: Vec<Goroutine>,
    /// Sorted by start time.
    pub spans: Vec<Span>,
    pub span_index: SpanIndex,
    pub pauses: Vec<Pause>,
    /// Events decoded, and events the capture says were lost.
    pub events: u64,
    pub events_lost: u64,
    /// What could not be analysed (damaged blocks, unpaired spans), one sentence each.
    pub warnings: Vec<String>,
}

/// A fast hasher for integer keys (goroutine ids are not attacker-chosen hash-flooding
/// material, and SipHash dominates the decode loop otherwise).
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// What one events block holds, split by consumer.
#[derive(Default)]
struct BlockOut {
    target: u32,
    /// Goroutine events, grouped by goroutine (time order within each goroutine).
    flat: Vec<(u64, GEv)>,
    /// (goid, start, len) of each goroutine's run in `flat`.
    runs: Vec<(u64, u32, u32)>,
    /// (tid, time, switched on)
    threads: Vec<(u32, Ns, bool)>,
    spans: Vec<SpanEv>,
    pauses: Vec<(Ns, EventKind)>,
    proc_exit: Option<Ns>,
    lost: u64,
    events: u64,
    problem: Option<String>,
}

fn decode(p: &EventsPayload, file: u32, delta: i64) -> BlockOut {
    let a = p.archived();
    let mut out = BlockOut {
        target: a.target.to_native(),
        flat: Vec::with_capacity(a.count.to_native() as usize),
        ..BlockOut::default()
    };
    for r in a.iter() {
        let raw = match r {
            Ok(raw) => raw,
            Err(e) => {
                out.problem = Some(format!(
                    "events block at byte {} is damaged after {} events ({}): the rest of it was skipped",
                    p.info.offset, out.events, e.0
                ));
                break;
            }
        };
        out.events += 1;
        let Some(ev) = raw.to_event() else { continue };
        let t = ev.ts as i64 + delta;
        let g = |a: u64, b: u32, c: u32| GEv {
            t,
            a,
            b,
            c,
            kind: raw.kind,
        };
        let gev = match ev.data {
            EventData::GoCreate {
                parent,
                creation,
                start,
            }
            | EventData::GoInfo {
                parent,
                creation,
                start,
            } => g(parent, creation, start),
            EventData::GoStart { tid } => g(0, tid, 0),
            EventData::GoStop { reason } => g(0, 0, reason as u32),
            EventData::GoBlock { reason, stack } => g(0, stack, reason as u32),
            EventData::GoUnblock { waker } => g(waker, 0, 0),
            EventData::SyscallEnter { tid, stack } => g(0, tid, stack),
            EventData::SyscallExit { tid } => g(0, tid, 0),
            EventData::GoExit => g(0, 0, 0),
            EventData::CpuSample { tid, stack } if ev.goid != 0 => g(0, tid, stack),
            EventData::CpuSample { .. } => continue,
            EventData::ThreadOff { tid, .. } => {
                out.threads.push((tid, t, false));
                continue;
            }
            EventData::ThreadOn { tid, .. } => {
                out.threads.push((tid, t, true));
                continue;
            }
            EventData::SpanStart { .. } | EventData::SpanEnd { .. } => {
                out.spans.push(SpanEv {
                    key: GoroutineKey {
                        file,
                        target: out.target,
                        goid: ev.goid,
                    },
                    t,
                    data: ev.data,
                });
                continue;
            }
            EventData::GcStart { .. } => {
                out.pauses.push((t, EventKind::GcStart));
                continue;
            }
            EventData::GcEnd { .. } => {
                out.pauses.push((t, EventKind::GcEnd));
                continue;
            }
            EventData::StwStart { .. } => {
                out.pauses.push((t, EventKind::StwStart));
                continue;
            }
            EventData::StwEnd => {
                out.pauses.push((t, EventKind::StwEnd));
                continue;
            }
            EventData::Lost { count, .. } => {
                out.lost += count;
                continue;
            }
            EventData::ProcExit { .. } => {
                out.proc_exit = Some(out.proc_exit.map_or(t, |x: Ns| x.min(t)));
                continue;
            }
        };
        out.flat.push((ev.goid, gev));
    }
    // A stable sort by goroutine keeps each goroutine's events in time order; no per-goroutine
    // allocation or hashing.
    out.flat.sort_by_key(|x| x.0);
    let mut i = 0;
    while i < out.flat.len() {
        let g = out.flat[i].0;
        let mut j = i + 1;
        while j < out.flat.len() && out.flat[j].0 == g {
            j += 1;
        }
        out.runs.push((g, i as u32, (j - i) as u32));
        i = j;
    }
    out
}

impl Analysis {
    /// Analyses every file of the set. Damaged blocks are skipped with a warning.
    pub fn run(set: &CaptureSet, opts: &Options) -> Analysis {
        let timing = std::env::var_os("GANALYZE_TIMING").is_some();
        let t0 = std::time::Instant::now();
        let phase = |name: &str| {
            if timing {
                eprintln!(
                    "ganalyze: timing: {name} done at {:.3}s",
                    t0.elapsed().as_secs_f64()
                );
            }
        };
        let mut warnings = Vec::new();
        // Every block's events, and (goroutine, block, start, len) of every run in them.
        let mut blocks: Vec<Vec<(u64, GEv)>> = Vec::new();
        let mut runs: Vec<(GoroutineKey, u32, u32, u32)> = Vec::new();
        let mut thread_events: FastMap<(u32, u32, u32), Vec<(Ns, bool)>> = FastMap::default();
        let mut span_events = Vec::new();
        let mut pause_events: FastMap<(u32, u32), Vec<(Ns, EventKind)>> = FastMap::default();
        let mut proc_exit: FastMap<(u32, u32), Ns> = FastMap::default();
        let mut events = 0u64;
        let mut lost_in_events = 0u64;
        let mut lost_in_stats = 0u64;
        for (fi, f) in set.files.iter().enumerate() {
            let fi = fi as u32;
            let delta = f.delta;
            let progress = opts.progress.clone();
            let outs = f.cap.par_map_blocks(|p| {
                let out = decode(p, fi, delta);
                if let Some(cb) = &progress {
                    cb(out.events);
                }
                Ok(out)
            });
            phase("parallel decode of a file");
            lost_in_stats += f.cap.stats().map_or(0, |s| s.lost_per_cpu.iter().sum());
            for out in outs {
                let out = match out {
                    Ok(o) => o,
                    Err(e) => {
                        warnings.push(format!(
                            "{}: skipped an unreadable events block: {e}",
                            f.path.display()
                        ));
                        continue;
                    }
                };
                if let Some(p) = out.problem {
                    warnings.push(format!("{}: {p}", f.path.display()));
                }
                events += out.events;
                lost_in_events += out.lost;
                let target = out.target;
                let bi = blocks.len() as u32;
                runs.extend(out.runs.iter().map(|&(goid, start, len)| {
                    (
                        GoroutineKey {
                            file: fi,
                            target,
                            goid,
                        },
                        bi,
                        start,
                        len,
                    )
                }));
                blocks.push(out.flat);
                for (tid, t, on) in out.threads {
                    thread_events
                        .entry((fi, target, tid))
                        .or_default()
                        .push((t, on));
                }
                span_events.extend(out.spans);
                pause_events
                    .entry((fi, target))
                    .or_default()
                    .extend(out.pauses);
                if let Some(t) = out.proc_exit {
                    let e = proc_exit.entry((fi, target)).or_insert(t);
                    *e = (*e).min(t);
                }
            }
        }

        phase("decode and group");
        let threads: ThreadOff = thread_events
            .into_par_iter()
            .map(|(k, mut v)| {
                v.sort_by_key(|x| x.0);
                let end = set.files[k.0 as usize].end;
                let mut iv = Vec::new();
                let mut off: Option<Ns> = None;
                for (t, on) in v {
                    match (on, off) {
                        (false, None) => off = Some(t),
                        (true, Some(a)) => {
                            iv.push((a, t));
                            off = None;
                        }
                        _ => {}
                    }
                }
                if let Some(a) = off {
                    iv.push((a, end.max(a)));
                }
                (k, iv)
            })
            .collect();

        phase("thread intervals");
        // Runs of one goroutine next to each other, in block (file) order.
        runs.par_sort_unstable_by_key(|r| (r.0, r.1));
        phase("sorting runs");
        let mut groups: Vec<&[(GoroutineKey, u32, u32, u32)]> = Vec::new();
        let mut i = 0;
        while i < runs.len() {
            let mut j = i + 1;
            while j < runs.len() && runs[j].0 == runs[i].0 {
                j += 1;
            }
            groups.push(&runs[i..j]);
            i = j;
        }
        let slice = |r: &(GoroutineKey, u32, u32, u32)| -> &[(u64, GEv)] {
            &blocks[r.1 as usize][r.2 as usize..(r.2 + r.3) as usize]
        };
        let mut goroutines: Vec<Goroutine> = groups
            .into_par_iter()
            .map(|parts| {
                let key = parts[0].0;
                let f = &set.files[key.file as usize];
                let b = Builder {
                    file: f,
                    threads: &threads,
                    keep_states: opts.keep_states,
                };
                let pid = f.pid(key.target);
                let exit = proc_exit.get(&(key.file, key.target)).copied();
                let len: usize = parts.iter().map(|r| r.3 as usize).sum();
                let sorted =
                    parts
                        .windows(2)
                        .all(|w| match (slice(&w[0]).last(), slice(&w[1]).first()) {
                            (Some(a), Some(b)) => a.1.t <= b.1.t,
                            _ => true,
                        });
                if sorted {
                    // The usual case: read the runs in place, no copy.
                    let it = parts.iter().flat_map(|r| slice(r).iter().map(|x| &x.1));
                    b.build(key, pid, it, len, exit)
                } else {
                    // Blocks overlap a little in time: a stable sort keeps the order of
                    // events with equal timestamps within a block.
                    let mut all: Vec<GEv> = Vec::with_capacity(len);
                    for r in parts {
                        all.extend(slice(r).iter().map(|x| x.1));
                    }
                    all.sort_by_key(|e| e.t);
                    b.build(key, pid, all.iter(), len, exit)
                }
            })
            .collect();
        phase("goroutine state machines");
        goroutines.sort_unstable_by_key(|g| g.key);
        drop(blocks);
        goroutine::symbolize(set, &mut goroutines);
        phase("symbols");

        let mut pauses = Vec::new();
        for ((file, target), mut v) in pause_events {
            v.sort_by_key(|x| x.0);
            let (mut gc, mut stw) = (None, None);
            for (t, k) in v {
                match k {
                    EventKind::GcStart => gc = Some(t),
                    EventKind::StwStart => stw = Some(t),
                    EventKind::GcEnd | EventKind::StwEnd => {
                        let open = if k == EventKind::GcEnd {
                            gc.take()
                        } else {
                            stw.take()
                        };
                        if let Some(start) = open {
                            pauses.push(Pause {
                                file,
                                target,
                                start,
                                end: t,
                                stw: k == EventKind::StwEnd,
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
        pauses.sort_by_key(|p| (p.start, p.file, p.target));

        let (spans, span_index, span_warnings) = span::build(set, &goroutines, span_events);
        phase("spans");
        warnings.extend(span_warnings);
        let lost = lost_in_stats.max(lost_in_events);
        if lost > 0 {
            warnings.push(format!(
                "{lost} events were lost while capturing: some goroutine states and spans may be incomplete"
            ));
        }
        Analysis {
            goroutines,
            spans,
            span_index,
            pauses,
            events,
            events_lost: lost,
            warnings,
        }
    }

    /// The goroutine with this key.
    pub fn goroutine(&self, key: GoroutineKey) -> Option<&Goroutine> {
        self.goroutines
            .binary_search_by_key(&key, |g| g.key)
            .ok()
            .map(|i| &self.goroutines[i])
    }

    /// Leak suspects (see [`LeakParams`]).
    pub fn leak_suspects(
        &self,
        set: &CaptureSet,
        params: &LeakParams,
    ) -> Vec<goroutine::LeakSuspect> {
        goroutine::leak_suspects(set, &self.goroutines, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::scenario;

    #[test]
    fn truncated_files_are_analysed_as_far_as_intact() {
        let full = scenario::lifecycle(false);
        let whole = Analysis::run(
            &CaptureSet::from_bytes("t.gcap", full.clone()).unwrap(),
            &Options::default(),
        );
        assert_eq!(whole.events, 17);
        let mut analysed = 0;
        // Every cut point: an error (header gone) or a partial analysis, never a panic.
        for cut in 0..full.len() {
            let Ok(set) = CaptureSet::from_bytes("t.gcap", full[..cut].to_vec()) else {
                continue;
            };
            assert!(
                !set.warnings.is_empty(),
                "a cut file must warn (cut at {cut})"
            );
            let a = Analysis::run(&set, &Options::default());
            assert!(a.events <= whole.events);
            assert!(a.goroutines.len() <= 3);
            analysed += 1;
        }
        assert!(analysed > full.len() / 2);
    }

    #[test]
    fn damaged_bytes_are_skipped_with_a_warning() {
        let mut bytes = scenario::lifecycle(false);
        // Flip bytes inside the payload of the second events block.
        let cap = gcap_format::Capture::from_vec(bytes.clone()).unwrap();
        let info = *cap.event_blocks().nth(1).unwrap();
        let at = info.offset as usize + 24 + info.payload_len as usize / 2;
        for b in &mut bytes[at..at + 8] {
            *b ^= 0x5a;
        }
        let set = CaptureSet::from_bytes("t.gcap", bytes).unwrap();
        let a = Analysis::run(&set, &Options::default());
        assert!(a.events < 17);
        assert!(!set.warnings.is_empty() || !a.warnings.is_empty());
    }

    #[test]
    fn lost_events_are_reported() {
        let mut b = crate::testkit::CaptureBuilder::new(1, "/x");
        b.ev(0, 4, EventData::GoStart { tid: 1 }).lost(&[3, 4]);
        let set = b.into_set();
        let a = Analysis::run(&set, &Options::default());
        assert_eq!(a.events_lost, 7);
        assert!(a.warnings.iter().any(|w| w.contains("7 events were lost")));
    }
}
