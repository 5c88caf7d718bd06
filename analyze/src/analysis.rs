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
    /// Goroutine key -> index in `goroutines`, built on first use by [`Analysis::goroutine`].
    index: std::sync::OnceLock<KeyIndex>,
}

/// A fast hasher for integer keys (goroutine ids are not attacker-chosen hash-flooding
/// material, and SipHash dominates the decode loop otherwise).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Eight bytes at a time (strings are keys too).
        let mut it = bytes.chunks_exact(8);
        for c in &mut it {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        let mut last = [0u8; 8];
        let rest = it.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.write_u64(u64::from_le_bytes(last) ^ (rest.len() as u64) << 59);
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

/// Goroutine key -> index in a slice of goroutines: an open-addressing table of indices only
/// (4 bytes a slot instead of a map's 24-byte entries); a probe compares the goroutine's own
/// key, which the caller reads next anyway.
struct KeyIndex {
    slots: Vec<u32>,
    /// 64 - log2(slots.len()): a slot is the top bits of the key's hash.
    shift: u32,
}

impl KeyIndex {
    const EMPTY: u32 = u32::MAX;

    fn hash(key: &GoroutineKey) -> u64 {
        use std::hash::BuildHasher;
        BuildHasherDefault::<IdHasher>::default().hash_one(key)
    }

    fn new(gs: &[Goroutine]) -> KeyIndex {
        // At most 2/3 full.
        let n = (gs.len() * 3 / 2 + 1).next_power_of_two().max(2);
        let mut ix = KeyIndex {
            slots: vec![Self::EMPTY; n],
            shift: 64 - n.trailing_zeros(),
        };
        let mask = n - 1;
        for (i, g) in gs.iter().enumerate() {
            let mut p = (Self::hash(&g.key) >> ix.shift) as usize;
            while ix.slots[p] != Self::EMPTY {
                p = (p + 1) & mask;
            }
            ix.slots[p] = i as u32;
        }
        ix
    }

    fn get<'g>(&self, gs: &'g [Goroutine], key: &GoroutineKey) -> Option<&'g Goroutine> {
        let mask = self.slots.len() - 1;
        let mut p = (Self::hash(key) >> self.shift) as usize;
        loop {
            let i = self.slots[p];
            if i == Self::EMPTY {
                return None;
            }
            let g = &gs[i as usize];
            if g.key == *key {
                return Some(g);
            }
            p = (p + 1) & mask;
        }
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
pub(crate) type FastSet<K> = std::collections::HashSet<K, BuildHasherDefault<IdHasher>>;

/// How a goroutine event is stored between decoding and reconstruction: 16 bytes plus its
/// kind byte (a separate column). Fields as in [`GEv`]: `x` is `b`, `y` is `c`. An unblock's
/// waker is split over `x` (low half) and `y` (high half); a create or info event takes two
/// slots, the second (kind [`CONT`]) holding the parent in `t`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Slot {
    t: Ns,
    x: u32,
    y: u32,
}

/// The kind of the second slot of a create or info event.
const CONT: u8 = 0;

use crate::goroutine::kind::*;

/// The goroutine events of one block, grouped by goroutine (time order within each group).
#[derive(Default)]
struct Grouped {
    slots: Vec<Slot>,
    kinds: Vec<u8>,
}

impl Grouped {
    /// The events of the run `start..start + len`.
    fn run(&self, start: u32, len: u32) -> Run<'_> {
        let r = start as usize..(start + len) as usize;
        Run {
            slots: &self.slots[r.clone()],
            kinds: &self.kinds[r],
        }
    }
}

/// One goroutine's events in one block.
#[derive(Clone, Copy)]
struct Run<'a> {
    slots: &'a [Slot],
    kinds: &'a [u8],
}

impl Run<'_> {
    fn first_t(&self) -> Option<Ns> {
        self.slots.first().map(|s| s.t)
    }

    fn last_t(&self) -> Option<Ns> {
        let n = self.slots.len();
        match n {
            0 => None,
            _ if self.kinds[n - 1] == CONT => Some(self.slots[n - 2].t),
            _ => Some(self.slots[n - 1].t),
        }
    }
}

/// The events of a run as [`GEv`]s.
struct RunIter<'a> {
    slots: &'a [Slot],
    kinds: &'a [u8],
    i: usize,
}

impl<'a> RunIter<'a> {
    fn new(r: Run<'a>) -> Self {
        RunIter {
            slots: r.slots,
            kinds: r.kinds,
            i: 0,
        }
    }
}

impl Iterator for RunIter<'_> {
    type Item = GEv;

    #[inline]
    fn next(&mut self) -> Option<GEv> {
        let i = self.i;
        let s = *self.slots.get(i)?;
        let kind = self.kinds[i];
        self.i = i + 1;
        let (a, b, c) = match kind {
            CREATE | INFO => {
                let parent = self.slots[i + 1].t as u64;
                self.i = i + 2;
                (parent, s.x, s.y)
            }
            UNBLOCK => (s.x as u64 | (s.y as u64) << 32, 0, 0),
            _ => (0, s.x, s.y),
        };
        Some(GEv {
            t: s.t,
            a,
            b,
            c,
            kind,
        })
    }
}

/// What one events block holds, split by consumer.
#[derive(Default)]
struct BlockOut {
    target: u32,
    /// Goroutine events, grouped by goroutine.
    events: Grouped,
    /// (goid, start, len) of each goroutine's run in `events`.
    runs: Vec<(u64, u32, u32)>,
    /// (tid, time, switched on)
    threads: Vec<(u32, Ns, bool)>,
    spans: Vec<SpanEv>,
    pauses: Vec<(Ns, EventKind)>,
    proc_exit: Option<Ns>,
    lost: u64,
    count: u64,
    problem: Option<String>,
}

/// Per-thread buffers reused from block to block (no fresh memory per block).
#[derive(Default)]
struct Scratch {
    slots: Vec<Slot>,
    kinds: Vec<u8>,
    /// The group of each slot.
    group: Vec<u32>,
    /// goid -> group.
    map: FastMap<u64, u32>,
    /// (goid, slots) per group, in order of first appearance.
    groups: Vec<(u64, u32)>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Decodes one events block: goroutine events straight from the raw columns into slots
/// grouped by goroutine (a counting sort: no per-event allocation, no comparison sort), the
/// rest (spans, threads, GC) through the typed event.
/// `first_only`: keep only each goroutine's first event of the block (all that is needed
/// when the goroutines are not built).
fn decode(p: &EventsPayload, file: u32, delta: i64, first_only: bool) -> BlockOut {
    SCRATCH.with(|s| decode_with(p, file, delta, first_only, &mut s.borrow_mut()))
}

fn decode_with(
    p: &EventsPayload,
    file: u32,
    delta: i64,
    first_only: bool,
    sc: &mut Scratch,
) -> BlockOut {
    let a = p.archived();
    let mut out = BlockOut {
        target: a.target.to_native(),
        ..BlockOut::default()
    };
    let n = a.count.to_native() as usize;
    sc.slots.clear();
    sc.kinds.clear();
    sc.group.clear();
    sc.map.clear();
    sc.groups.clear();
    sc.slots.reserve(n + n / 8);
    sc.kinds.reserve(n + n / 8);
    sc.group.reserve(n + n / 8);
    let (mut last_goid, mut last_group) = (u64::MAX, 0u32);
    let res = a.for_each_raw(|raw| {
        out.count += 1;
        let t = raw.ts as i64 + delta;
        // Goroutine state changes go into slots; `to_event` is the one place that knows
        // each kind's arguments and rejects malformed ones (skipped, as everywhere).
        let (x, y, cont) = match raw.kind {
            CREATE | INFO | START | SYS_OUT | STOP | BLOCK | UNBLOCK | SYS_IN | SAMPLE | EXIT => {
                let Some(ev) = raw.to_event() else { return };
                match ev.data {
                    EventData::GoCreate {
                        parent,
                        creation,
                        start,
                    }
                    | EventData::GoInfo {
                        parent,
                        creation,
                        start,
                    } => (creation, start, Some(parent)),
                    EventData::GoStart { tid } | EventData::SyscallExit { tid } => (tid, 0, None),
                    EventData::GoStop { reason } => (0, reason as u32, None),
                    EventData::GoBlock { reason, stack } => (stack, reason as u32, None),
                    EventData::GoUnblock { waker } => (waker as u32, (waker >> 32) as u32, None),
                    EventData::SyscallEnter { tid, stack } => (tid, stack, None),
                    EventData::CpuSample { tid, stack } if raw.goid != 0 => (tid, stack, None),
                    EventData::GoExit => (0, 0, None),
                    _ => return,
                }
            }
            _ => {
                other(&mut out, file, raw, t);
                return;
            }
        };
        let g = if raw.goid == last_goid {
            last_group
        } else {
            let next = sc.groups.len() as u32;
            let g = *sc.map.entry(raw.goid).or_insert(next);
            if g == next {
                sc.groups.push((raw.goid, 0));
            }
            last_goid = raw.goid;
            last_group = g;
            g
        };
        sc.slots.push(Slot { t, x, y });
        sc.kinds.push(raw.kind);
        sc.group.push(g);
        let mut k = 1;
        if let Some(parent) = cont {
            sc.slots.push(Slot {
                t: parent as i64,
                x: 0,
                y: 0,
            });
            sc.kinds.push(CONT);
            sc.group.push(g);
            k = 2;
        }
        sc.groups[g as usize].1 += k;
    });
    if let Err(e) = res {
        out.problem = Some(format!(
            "events block at byte {} is damaged after {} events ({}): the rest of it was skipped",
            p.info.offset, out.count, e.0
        ));
    }
    if first_only {
        // The first event of each group, with its continuation.
        let mut seen = vec![false; sc.groups.len()];
        let mut slots = Vec::with_capacity(sc.groups.len() * 2);
        let mut kinds = Vec::with_capacity(sc.groups.len() * 2);
        for i in 0..sc.slots.len() {
            let g = sc.group[i] as usize;
            if !seen[g] {
                seen[g] = true;
                let n = if matches!(sc.kinds[i], CREATE | INFO) {
                    2
                } else {
                    1
                };
                out.runs
                    .push((sc.groups[g].0, slots.len() as u32, n as u32));
                slots.extend_from_slice(&sc.slots[i..i + n]);
                kinds.extend_from_slice(&sc.kinds[i..i + n]);
            }
        }
        out.events = Grouped { slots, kinds };
        return out;
    }
    // Counting sort by group: each goroutine's slots together, in time order.
    let m = sc.slots.len();
    let mut at: Vec<u32> = Vec::with_capacity(sc.groups.len());
    let mut sum = 0u32;
    out.runs.reserve_exact(sc.groups.len());
    for &(goid, len) in &sc.groups {
        at.push(sum);
        out.runs.push((goid, sum, len));
        sum += len;
    }
    let mut slots: Vec<Slot> = Vec::with_capacity(m);
    let mut kinds: Vec<u8> = Vec::with_capacity(m);
    {
        let (ds, dk) = (slots.spare_capacity_mut(), kinds.spare_capacity_mut());
        for i in 0..m {
            let g = sc.group[i] as usize;
            let j = at[g] as usize;
            at[g] += 1;
            ds[j].write(sc.slots[i]);
            dk[j].write(sc.kinds[i]);
        }
    }
    // SAFETY: the groups' lengths add up to `m` and each group's positions were written
    // exactly once above (`at[g]` runs from the group's start to the next group's start), so
    // every element below `m` is initialised.
    unsafe {
        slots.set_len(m);
        kinds.set_len(m);
    }
    out.events = Grouped { slots, kinds };
    out
}

/// Events other than goroutine state changes.
#[cold]
fn other(out: &mut BlockOut, file: u32, raw: &gcap_format::RawEvent, t: Ns) {
    let Some(ev) = raw.to_event() else { return };
    match ev.data {
        EventData::ThreadOff { tid, .. } => out.threads.push((tid, t, false)),
        EventData::ThreadOn { tid, .. } => out.threads.push((tid, t, true)),
        EventData::SpanStart { .. } | EventData::SpanEnd { .. } => out.spans.push(SpanEv {
            key: GoroutineKey {
                file,
                target: out.target,
                goid: ev.goid,
            },
            t,
            data: ev.data,
        }),
        EventData::GcStart { .. } => out.pauses.push((t, EventKind::GcStart)),
        EventData::GcEnd { .. } => out.pauses.push((t, EventKind::GcEnd)),
        EventData::StwStart { .. } => out.pauses.push((t, EventKind::StwStart)),
        EventData::StwEnd => out.pauses.push((t, EventKind::StwEnd)),
        EventData::Lost { count, .. } => out.lost += count,
        EventData::ProcExit { .. } => {
            out.proc_exit = Some(out.proc_exit.map_or(t, |x: Ns| x.min(t)))
        }
        // Goroutine events are handled by the caller.
        _ => {}
    }
}

/// With `GANALYZE_TIMING` set, prints when a phase of the current analysis ended (seconds
/// since it started) to stderr.
pub(crate) fn phase_mark(name: &str) {
    use std::sync::atomic::Ordering;
    if timing() {
        let now = epoch().elapsed().as_nanos() as u64;
        let start = RUN_START.load(Ordering::Relaxed);
        // Resident memory (Linux): most of the kernel's time is faulting in fresh pages.
        let rss = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or_else(String::new, |p| {
                format!(", {} MB resident", (p * 4096) >> 20)
            });
        eprintln!(
            "ganalyze: timing: {name} done at {:.3}s{rss}",
            now.saturating_sub(start) as f64 / 1e9
        );
    }
}

fn timing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("GANALYZE_TIMING").is_some())
}

fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// When the current analysis started (ns since [`epoch`]), for [`phase_mark`].
static RUN_START: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Analysis {
    /// Analyses every file of the set. Damaged blocks are skipped with a warning.
    pub fn run(set: &CaptureSet, opts: &Options) -> Analysis {
        if timing() {
            RUN_START.store(
                epoch().elapsed().as_nanos() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        let phase = phase_mark;
        let mut warnings = Vec::new();
        // Every block's events, and (goroutine, block, start, len) of every run in them.
        let mut blocks: Vec<Grouped> = Vec::new();
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
                let out = decode(p, fi, delta, !opts.goroutines);
                if let Some(cb) = &progress {
                    cb(out.count);
                }
                Ok(out)
            });
            phase("parallel decode of a file");
            lost_in_stats += f.cap.stats().map_or(0, |s| s.lost_per_cpu.iter().sum());
            runs.reserve(outs.iter().flatten().map(|o| o.runs.len()).sum());
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
                events += out.count;
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
                blocks.push(out.events);
                for (tid, t, on) in out.threads {
                    thread_events
                        .entry((fi, target, tid))
                        .or_default()
                        .push((t, on));
                }
                span_events.extend(out.spans);
                if !out.pauses.is_empty() {
                    pause_events
                        .entry((fi, target))
                        .or_default()
                        .extend(out.pauses);
                }
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
        let run = |r: &(GoroutineKey, u32, u32, u32)| blocks[r.1 as usize].run(r.2, r.3);
        let pids: Vec<Vec<(u32, u32)>> = set
            .files
            .iter()
            .map(|f| f.cap.targets().iter().map(|t| (t.id, t.pid)).collect())
            .collect();
        let build = |b: &Builder, parts: &[(GoroutineKey, u32, u32, u32)]| {
            let key = parts[0].0;
            let f = &set.files[key.file as usize];
            let pid = pids[key.file as usize]
                .iter()
                .find(|t| t.0 == key.target)
                .map_or(0, |t| t.1);
            let exit = proc_exit.get(&(key.file, key.target)).copied();
            let len: usize = parts.iter().map(|r| r.3 as usize).sum();
            if parts.len() == 1 {
                return b.build(f, key, pid, RunIter::new(run(&parts[0])), len, exit);
            }
            let sorted =
                parts
                    .windows(2)
                    .all(|w| match (run(&w[0]).last_t(), run(&w[1]).first_t()) {
                        (Some(a), Some(b)) => a <= b,
                        _ => true,
                    });
            if sorted {
                // The usual case: read the runs in place, no copy.
                let it = parts.iter().flat_map(|r| RunIter::new(run(r)));
                b.build(f, key, pid, it, len, exit)
            } else {
                // Blocks overlap a little in time: a stable sort keeps the order of
                // events with equal timestamps within a block.
                let mut all: Vec<GEv> = Vec::with_capacity(len);
                for r in parts {
                    all.extend(RunIter::new(run(r)));
                }
                all.sort_by_key(|e| e.t);
                b.build(f, key, pid, all.into_iter(), len, exit)
            }
        };
        // Goroutines in key order (the runs were sorted by key); rayon's splits share a
        // builder (and its hints). An indexed collect writes each goroutine in place.
        let mut goroutines: Vec<Goroutine> = Vec::new();
        // (creation time, goroutine, parent) of the goroutines created during the capture,
        // for the spans' goroutine trees.
        let created: Vec<(Ns, GoroutineKey, u64)>;
        if opts.goroutines {
            groups
                .par_iter()
                .with_min_len(256)
                .map_init(
                    || Builder {
                        threads: &threads,
                        keep_states: opts.keep_states,
                        hints: Default::default(),
                        scratch: Default::default(),
                    },
                    |b, p| build(b, p),
                )
                .collect_into_vec(&mut goroutines);
            phase("goroutine state machines");
            debug_assert!(goroutines.windows(2).all(|w| w[0].key < w[1].key));
            drop(runs);
            drop(blocks);
            goroutine::symbolize(set, &mut goroutines);
            phase("symbols");
            created = goroutines
                .iter()
                .filter_map(|g| match (g.created(), g.parent) {
                    (Some(t), Some(p)) => Some((t, g.key, p)),
                    _ => None,
                })
                .collect();
        } else {
            // Only what the spans need: a goroutine was created during the capture when its
            // first event is its creation (see `Builder::build`).
            created = groups
                .par_iter()
                .with_min_len(256)
                .filter_map(|parts| {
                    let key = parts[0].0;
                    let stop_at = proc_exit
                        .get(&(key.file, key.target))
                        .copied()
                        .unwrap_or(Ns::MAX);
                    // The first event in time order (ties: the earlier block).
                    let mut first: Option<GEv> = None;
                    for r in parts.iter() {
                        if let Some(e) = RunIter::new(run(r)).next() {
                            if first.is_none_or(|f| e.t < f.t) {
                                first = Some(e);
                            }
                        }
                    }
                    let e = first?;
                    (e.kind == CREATE && e.t <= stop_at).then_some((e.t, key, e.a))
                })
                .collect();
            phase("goroutine creations");
        }

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

        let (spans, span_index, span_warnings) = if opts.spans {
            span::build(set, created, span_events)
        } else {
            (
                Vec::new(),
                SpanIndex::default(),
                span::unpaired(span_events),
            )
        };
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
            index: Default::default(),
        }
    }

    /// The goroutine with this key.
    pub fn goroutine(&self, key: GoroutineKey) -> Option<&Goroutine> {
        // The critical-path walks look goroutines up constantly: a hash index beats a binary
        // search over large structs (a cache miss per step).
        self.index
            .get_or_init(|| KeyIndex::new(&self.goroutines))
            .get(&self.goroutines, &key)
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
