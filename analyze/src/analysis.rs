//! The whole analysis of a capture set: decode every events block in parallel into
//! per-goroutine runs, merge the runs of each goroutine in time order, rebuild every
//! goroutine's states in parallel, then correlate spans.

mod decode;
mod key_index;
mod pauses;

use std::sync::Arc;

use gcap_format::EventKind;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::capture_set::{CaptureSet, Ns};
use crate::coverage::{FileCoverage, Records};
use crate::goroutine::event::{kind::CREATE, Events, GEv};
use crate::goroutine::off_cpu::{self, ThreadOff};
use crate::goroutine::{self, Builder, Cover, Goroutine, GoroutineKey, LeakParams, LeakSuspect};
use crate::span::{self, Span, SpanEv, SpanIndex};
use crate::timing::{self, phase_mark};
use key_index::KeyIndex;
pub(crate) use pauses::Pause;

/// How to run an analysis.
#[derive(Clone)]
pub struct Options {
    /// Keep every goroutine's state intervals (exports need them; totals do not).
    pub keep_states: bool,
    /// Build the spans (false: `spans` stays empty; what the goroutine listing needs). The
    /// warning about spans that ended without a start is given either way.
    pub spans: bool,
    /// Build the goroutines (false: `goroutines` stays empty; what the span listing needs:
    /// the spans still get their goroutine trees).
    pub goroutines: bool,
    /// Called with the number of events of each block decoded (for progress bars).
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    pub leak: LeakParams,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            keep_states: true,
            spans: true,
            goroutines: true,
            progress: None,
            leak: LeakParams::default(),
        }
    }
}

/// The result of analysing a capture set.
pub struct Analysis {
    /// Sorted by (file, target, goid).
    pub goroutines: Vec<Goroutine>,
    /// Sorted by start time.
    pub spans: Vec<Span>,
    pub(crate) span_index: SpanIndex,
    pub(crate) pauses: Vec<Pause>,
    /// What each file (in the set's order) covered and what it cost.
    pub coverage: Vec<FileCoverage>,
    /// Events decoded, and events the capture says were lost.
    pub events: u64,
    pub events_lost: u64,
    /// What could not be analysed (damaged blocks, unpaired spans), one sentence each.
    pub warnings: Vec<String>,
    /// Whether the capture holds the kernel's scheduling events (threads switched off and on).
    pub(crate) kernel_sched: bool,
    /// Whether it holds CPU samples of some goroutine.
    cpu_samples: bool,
    /// Goroutine key -> index in `goroutines`, built on first use by [`Analysis::goroutine`].
    index: std::sync::OnceLock<KeyIndex>,
}

/// One goroutine's events in one block: (goroutine, block, start, len) in [`Decoded::blocks`].
type RunRef = (GoroutineKey, u32, u32, u32);

/// What decoding every block of every file gathered.
#[derive(Default)]
struct Decoded {
    /// Every block's goroutine events.
    blocks: Vec<Events>,
    /// Every goroutine's runs in them.
    runs: Vec<RunRef>,
    /// (time, switched on) per (file, target, tid).
    thread_events: FxHashMap<(u32, u32, u32), Vec<(Ns, bool)>>,
    span_events: Vec<SpanEv>,
    /// GC and STW events per (file, target).
    pause_events: FxHashMap<(u32, u32), Vec<(Ns, EventKind)>>,
    /// When each (file, target) process exited.
    proc_exit: FxHashMap<(u32, u32), Ns>,
    /// Coverage and overhead records per file.
    coverage: Vec<Records>,
    /// When each (file, target)'s complete snapshots were taken, in time order.
    snapshots: FxHashMap<(u32, u32), Vec<Ns>>,
    events: u64,
    lost_in_events: u64,
    lost_in_stats: u64,
    /// Per file: whether it lost events (by its stats block or its loss records).
    lossy: Vec<bool>,
    warnings: Vec<String>,
}

/// Decodes every events block of every file (each file's blocks in parallel).
fn decode_all(set: &CaptureSet, opts: &Options) -> Decoded {
    let mut d = Decoded::default();
    for (fi, f) in set.files.iter().enumerate() {
        let fi = fi as u32;
        let delta = f.delta;
        let progress = opts.progress.clone();
        let range = decode::TimeRange::of_capture(&f.cap);
        let outs = f.cap.par_map_blocks(|p| {
            let out = decode::decode(p, fi, delta, range, !opts.goroutines);
            if let Some(cb) = &progress {
                cb(out.count);
            }
            Ok(out)
        });
        phase_mark("parallel decode of a file");
        d.coverage.push(Records::default());
        let lost_in_stats: u64 = f.cap.stats().map_or(0, |s| s.lost_per_cpu.iter().sum());
        d.lost_in_stats += lost_in_stats;
        let lost_in_events: u64 = outs.iter().flatten().map(|o| o.lost).sum();
        d.lossy.push(lost_in_stats > 0 || lost_in_events > 0);
        d.runs
            .reserve(outs.iter().flatten().map(|o| o.runs.len()).sum());
        let untrusted: u64 = outs.iter().flatten().map(|o| o.untrusted).sum();
        if untrusted > 0 {
            d.warnings.push(format!(
                "{}: {untrusted} events had times outside their block's or the capture's time range (damaged bytes): left out",
                f.path.display()
            ));
        }
        for out in outs {
            let out = match out {
                Ok(o) => o,
                Err(e) => {
                    d.warnings.push(format!(
                        "{}: skipped an unreadable events block: {e}",
                        f.path.display()
                    ));
                    continue;
                }
            };
            if let Some(p) = out.problem {
                d.warnings.push(format!("{}: {p}", f.path.display()));
            }
            d.events += out.count;
            d.lost_in_events += out.lost;
            let target = out.target;
            let bi = d.blocks.len() as u32;
            d.runs.extend(out.runs.iter().map(|&(goid, start, len)| {
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
            d.blocks.push(out.events);
            for (tid, t, on) in out.threads {
                d.thread_events
                    .entry((fi, target, tid))
                    .or_default()
                    .push((t, on));
            }
            d.span_events.extend(out.spans);
            if !out.pauses.is_empty() {
                d.pause_events
                    .entry((fi, target))
                    .or_default()
                    .extend(out.pauses);
            }
            if let Some(t) = out.proc_exit {
                let e = d.proc_exit.entry((fi, target)).or_insert(t);
                *e = (*e).min(t);
            }
            d.coverage[fi as usize].merge(out.coverage);
            if !out.snapshots.is_empty() {
                d.snapshots
                    .entry((fi, target))
                    .or_default()
                    .extend(out.snapshots);
            }
        }
    }
    for v in d.snapshots.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    d
}

/// What each file covered, from its records.
fn file_coverage(set: &CaptureSet, d: &mut Decoded) -> Vec<FileCoverage> {
    set.files
        .iter()
        .zip(std::mem::take(&mut d.coverage))
        .map(|(f, r)| {
            let level = f.cap.meta().map_or("", |m| m.level.as_str());
            let ids: Vec<u32> = f.cap.targets().iter().map(|t| t.id).collect();
            FileCoverage::new(level, &ids, f.start, f.end, r)
        })
        .collect()
}

/// The runs (sorted by goroutine) of each goroutine.
fn per_goroutine(runs: &[RunRef]) -> Vec<&[RunRef]> {
    let mut groups: Vec<&[RunRef]> = Vec::new();
    let mut i = 0;
    while i < runs.len() {
        let mut j = i + 1;
        while j < runs.len() && runs[j].0 == runs[i].0 {
            j += 1;
        }
        groups.push(&runs[i..j]);
        i = j;
    }
    groups
}

/// Builds every goroutine from its runs, in key order (the groups are); rayon's splits share
/// a builder (and its hints). An indexed collect writes each goroutine in place.
fn build_goroutines(
    set: &CaptureSet,
    opts: &Options,
    d: &Decoded,
    coverage: &[FileCoverage],
    threads: &ThreadOff,
    groups: &[&[RunRef]],
) -> Vec<Goroutine> {
    let run = |r: &RunRef| d.blocks[r.1 as usize].run(r.2, r.3);
    let pids: Vec<Vec<(u32, u32)>> = set
        .files
        .iter()
        .map(|f| f.cap.targets().iter().map(|t| (t.id, t.pid)).collect())
        .collect();
    let build = |b: &Builder, parts: &[RunRef]| {
        let key = parts[0].0;
        let f = &set.files[key.file as usize];
        let pid = pids[key.file as usize]
            .iter()
            .find(|t| t.0 == key.target)
            .map_or(0, |t| t.1);
        let exit = d.proc_exit.get(&(key.file, key.target)).copied();
        let cover = Cover {
            windows: coverage[key.file as usize].lifecycle(key.target),
            snapshots: d
                .snapshots
                .get(&(key.file, key.target))
                .map_or(&[], |v| v.as_slice()),
            lossy: d.lossy[key.file as usize],
        };
        let len: usize = parts.iter().map(|r| r.3 as usize).sum();
        if parts.len() == 1 {
            return b.build(f, key, pid, run(&parts[0]).iter(), len, exit, cover);
        }
        let sorted = parts
            .windows(2)
            .all(|w| match (run(&w[0]).last_t(), run(&w[1]).first_t()) {
                (Some(a), Some(b)) => a <= b,
                _ => true,
            });
        if sorted {
            // The usual case: read the runs in place, no copy.
            let it = parts.iter().flat_map(|r| run(r).iter());
            b.build(f, key, pid, it, len, exit, cover)
        } else {
            // Blocks overlap a little in time: a stable sort keeps the order of
            // events with equal timestamps within a block.
            let mut all: Vec<GEv> = Vec::with_capacity(len);
            for r in parts {
                all.extend(run(r).iter());
            }
            all.sort_by_key(|e| e.t);
            b.build(f, key, pid, all.into_iter(), len, exit, cover)
        }
    };
    let mut goroutines: Vec<Goroutine> = Vec::new();
    groups
        .par_iter()
        .with_min_len(256)
        .map_init(
            || Builder::new(threads, opts.keep_states),
            |b, p| build(b, p),
        )
        .collect_into_vec(&mut goroutines);
    goroutines
}

/// (creation time, goroutine, parent) of the goroutines created during the capture, without
/// building them: a goroutine was created during the capture when its first event is its
/// creation (see `Builder::build`).
fn creations(d: &Decoded, groups: &[&[RunRef]]) -> Vec<(Ns, GoroutineKey, u64)> {
    groups
        .par_iter()
        .with_min_len(256)
        .filter_map(|parts| {
            let key = parts[0].0;
            let stop_at = d
                .proc_exit
                .get(&(key.file, key.target))
                .copied()
                .unwrap_or(Ns::MAX);
            // The first event in time order (ties: the earlier block).
            let mut first: Option<GEv> = None;
            for r in parts.iter() {
                if let Some(e) = d.blocks[r.1 as usize].run(r.2, r.3).iter().next() {
                    if first.is_none_or(|f| e.t < f.t) {
                        first = Some(e);
                    }
                }
            }
            let e = first?;
            (e.kind == CREATE && e.t <= stop_at).then_some((e.t, key, e.a))
        })
        .collect()
}

impl Analysis {
    /// Analyses every file of the set. Damaged blocks are skipped with a warning.
    pub fn run(set: &CaptureSet, opts: &Options) -> Analysis {
        timing::start_run();
        let mut d = decode_all(set, opts);
        let coverage = file_coverage(set, &mut d);
        phase_mark("decode and group");
        let threads = off_cpu::intervals(set, std::mem::take(&mut d.thread_events));
        let kernel_sched = !threads.is_empty();
        phase_mark("thread intervals");
        // Runs of one goroutine next to each other, in block (file) order.
        let mut runs = std::mem::take(&mut d.runs);
        runs.par_sort_unstable_by_key(|r| (r.0, r.1));
        phase_mark("sorting runs");
        let groups = per_goroutine(&runs);
        let mut goroutines: Vec<Goroutine> = Vec::new();
        // (creation time, goroutine, parent) of the goroutines created during the capture,
        // for the spans' goroutine trees.
        let created: Vec<(Ns, GoroutineKey, u64)>;
        if opts.goroutines {
            goroutines = build_goroutines(set, opts, &d, &coverage, &threads, &groups);
            phase_mark("goroutine state machines");
            debug_assert!(goroutines.windows(2).all(|w| w[0].key < w[1].key));
            drop(groups);
            drop(runs);
            drop(std::mem::take(&mut d.blocks));
            goroutine::symbolize(set, &mut goroutines);
            phase_mark("symbols");
            created = goroutines
                .iter()
                .filter_map(|g| match (g.created(), g.parent) {
                    (Some(t), Some(p)) => Some((t, g.key, p)),
                    _ => None,
                })
                .collect();
        } else {
            // Only what the spans need.
            created = creations(&d, &groups);
            phase_mark("goroutine creations");
        }

        let cpu_samples = goroutines.iter().any(|g| !g.samples.is_empty());
        let pauses = pauses::pair(std::mem::take(&mut d.pause_events));

        let span_events = std::mem::take(&mut d.span_events);
        let (spans, span_index, span_warnings) = if opts.spans {
            span::build(set, &coverage, created, span_events)
        } else {
            (
                Vec::new(),
                SpanIndex::default(),
                span::unpaired(set, span_events),
            )
        };
        phase_mark("spans");
        let mut warnings = d.warnings;
        warnings.extend(span_warnings);
        let lost = d.lost_in_stats.max(d.lost_in_events);
        if lost > 0 {
            warnings.push(format!(
                "{lost} events were lost while capturing: where a goroutine's events disagree its state is unknown, requests whose critical path crosses such time are left out of the causes, and spans may be incomplete"
            ));
        }
        Analysis {
            goroutines,
            spans,
            span_index,
            pauses,
            coverage,
            events: d.events,
            events_lost: lost,
            warnings,
            kernel_sched,
            cpu_samples,
            index: Default::default(),
        }
    }

    /// Whether the capture holds CPU samples of some goroutine.
    pub(crate) fn has_cpu_samples(&self) -> bool {
        self.cpu_samples
    }

    /// The goroutine with this key.
    pub(crate) fn goroutine(&self, key: GoroutineKey) -> Option<&Goroutine> {
        // The critical-path walks look goroutines up constantly: a hash index beats a binary
        // search over large structs (a cache miss per step).
        self.index
            .get_or_init(|| KeyIndex::new(&self.goroutines))
            .get(&self.goroutines, &key)
    }

    /// Leak suspects (see [`LeakParams`]), against the server requests in flight.
    pub fn leak_suspects(&self, set: &CaptureSet, params: &LeakParams) -> Vec<LeakSuspect> {
        let in_flight = goroutine::requests_in_flight(
            self.spans
                .iter()
                .filter(|s| s.kind == gcap_format::SpanKind::HttpServer)
                .map(|s| (s.pid, s.start, s.end_or(set.files[s.key.file as usize].end))),
        );
        goroutine::leak_suspects(set, &self.goroutines, params, &in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::scenario;
    use gcap_format::EventData;

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
