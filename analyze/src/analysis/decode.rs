//! Decoding one events block: goroutine events grouped by goroutine (stored as
//! [`Events`]), and the rest (thread switches, spans, GC, losses, process exits, coverage
//! and snapshot ends) split by consumer.
//!
//! Only trusted times are analysed: an event is dropped (and counted) when its time lies
//! outside its block's range (as the block and the index record it) or the capture's (from
//! its start to the stop the stats block records). A damaged byte in a time delta moves
//! every later event of the block, by up to years; kept, such events made requests last
//! days and goroutines run for hours in a capture of seconds.

use std::cell::RefCell;

use gcap_format::{EventData, EventKind, EventsPayload, RawEvent};
use rustc_hash::FxHashMap;

use crate::capture_set::Ns;
use crate::coverage::Records;
use crate::goroutine::event::{is_goroutine_event, Events};
use crate::goroutine::GoroutineKey;
use crate::span::SpanEv;

/// What one events block holds, split by consumer.
#[derive(Default)]
pub(super) struct BlockOut {
    pub(crate) target: u32,
    /// Goroutine events, grouped by goroutine.
    pub(crate) events: Events,
    /// (goid, start, len) of each goroutine's run in `events`.
    pub(crate) runs: Vec<(u64, u32, u32)>,
    /// (tid, time, switched on)
    pub(crate) threads: Vec<(u32, Ns, bool)>,
    pub(crate) spans: Vec<SpanEv>,
    pub(crate) pauses: Vec<(Ns, EventKind)>,
    pub(crate) proc_exit: Option<Ns>,
    /// Coverage and overhead records.
    pub(crate) coverage: Records,
    /// When the snapshots it completes were taken.
    pub(crate) snapshots: Vec<Ns>,
    pub(crate) lost: u64,
    pub(crate) count: u64,
    /// Events dropped because their time was outside the trusted range.
    pub(crate) untrusted: u64,
    pub(crate) problem: Option<String>,
}

/// The monotonic times a capture's events may have (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TimeRange {
    pub(super) lo: u64,
    pub(super) hi: u64,
}

impl TimeRange {
    /// A block's first time is rounded down to its tick (32 ns by default): a margin.
    const ROUNDING: u64 = 1 << 16;

    /// A capture's range: from its start (metadata) to its stop (stats block); without a
    /// stats block (a cut file) it has no known end.
    pub(super) fn of_capture(cap: &gcap_format::Capture) -> TimeRange {
        let start = cap.meta().map_or(0, |m| m.start_mono_ns);
        let stop = cap.stats().map(|s| s.end_mono_ns).filter(|&e| e >= start);
        TimeRange {
            lo: start.saturating_sub(Self::ROUNDING),
            hi: stop.map_or(u64::MAX, |e| e.saturating_add(Self::ROUNDING)),
        }
    }

    /// Within both ranges.
    fn and(self, o: TimeRange) -> TimeRange {
        TimeRange {
            lo: self.lo.max(o.lo),
            hi: self.hi.min(o.hi),
        }
    }

    fn has(self, t: u64) -> bool {
        (self.lo..=self.hi).contains(&t)
    }
}

/// Per-thread buffers reused from block to block (no fresh memory per block).
#[derive(Default)]
struct Scratch {
    events: Events,
    /// The group of each slot.
    group: Vec<u32>,
    /// goid -> group.
    map: FxHashMap<u64, u32>,
    /// (goid, slots) per group, in order of first appearance.
    groups: Vec<(u64, u32)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Decodes one events block: goroutine events straight from the raw columns into slots
/// grouped by goroutine (a counting sort: no per-event allocation, no comparison sort), the
/// rest (spans, threads, GC) through the typed event.
/// `first_only`: keep only each goroutine's first event of the block (all that is needed
/// when the goroutines are not built).
/// `capture`: the times the capture's events may have.
pub(super) fn decode(
    p: &EventsPayload,
    file: u32,
    delta: i64,
    capture: TimeRange,
    first_only: bool,
) -> BlockOut {
    SCRATCH.with(|s| decode_with(p, file, delta, capture, first_only, &mut s.borrow_mut()))
}

fn decode_with(
    p: &EventsPayload,
    file: u32,
    delta: i64,
    capture: TimeRange,
    first_only: bool,
    sc: &mut Scratch,
) -> BlockOut {
    let a = p.block();
    let mut out = BlockOut {
        target: a.target,
        ..BlockOut::default()
    };
    // The block's range as it says and as the index (or the frame scan) recorded it.
    let trusted = capture
        .and(TimeRange {
            lo: a.t_min,
            hi: a.t_max,
        })
        .and(TimeRange {
            lo: p.info.t_min,
            hi: p.info.t_max,
        });
    let n = a.count as usize;
    sc.events.clear();
    sc.group.clear();
    sc.map.clear();
    sc.groups.clear();
    sc.events.reserve(n + n / 8);
    sc.group.reserve(n + n / 8);
    let (mut last_goid, mut last_group) = (u64::MAX, 0u32);
    let res = a.for_each_raw(|raw| {
        out.count += 1;
        if !trusted.has(raw.ts) {
            out.untrusted += 1;
            return;
        }
        let t = raw.ts as i64 + delta;
        if !is_goroutine_event(raw.kind) {
            other(&mut out, file, raw, t);
            return;
        }
        // Goroutine state changes go into slots (malformed ones are skipped, as everywhere).
        let k = sc.events.push(raw, t);
        if k == 0 {
            return;
        }
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
        for _ in 0..k {
            sc.group.push(g);
        }
        sc.groups[g as usize].1 += k;
    });
    if let Err(e) = res {
        // The block's columns disagree: each is decoded on its own, so damage in one (the
        // goroutine ids, say) spoils events before the point where decoding failed too.
        // None of the block is analysed.
        let problem = format!(
            "events block at byte {} is damaged ({}): its events were left out",
            p.info.offset, e.0
        );
        return BlockOut {
            target: out.target,
            problem: Some(problem),
            ..BlockOut::default()
        };
    }
    if first_only {
        // The first event of each group, with its continuation.
        let mut seen = vec![false; sc.groups.len()];
        let mut events = Events::default();
        events.reserve(sc.groups.len() * 2);
        for i in 0..sc.events.len() {
            let g = sc.group[i] as usize;
            if !seen[g] {
                seen[g] = true;
                let start = events.len() as u32;
                let n = events.copy_event(&sc.events, i);
                out.runs.push((sc.groups[g].0, start, n));
            }
        }
        out.events = events;
        return out;
    }
    // Each goroutine's slots together, in time order.
    let mut at: Vec<u32> = Vec::with_capacity(sc.groups.len());
    let mut sum = 0u32;
    out.runs.reserve_exact(sc.groups.len());
    for &(goid, len) in &sc.groups {
        at.push(sum);
        out.runs.push((goid, sum, len));
        sum += len;
    }
    out.events = sc.events.sorted_by_group(&sc.group, at);
    out
}

/// Events other than goroutine state changes.
#[cold]
fn other(out: &mut BlockOut, file: u32, raw: &RawEvent, t: Ns) {
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
        EventData::Coverage { .. } | EventData::Overhead { .. } => {
            out.coverage.add(out.target, t, &ev.data)
        }
        EventData::SnapshotEnd { .. } => out.snapshots.push(t),
        // Goroutine events are handled by the caller.
        _ => {}
    }
}
