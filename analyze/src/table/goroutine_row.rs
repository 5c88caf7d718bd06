//! The goroutine listing's rows: one per goroutine, in the contract's field order, borrowed
//! from the analysis; what the JSON, CSV, text and Parquet listings are made of.

use serde::Serialize;

use crate::analysis::Analysis;
use crate::capture_set::{CaptureSet, LoadedCapture};
use crate::goroutine::{describe_state, reason_name, Counts, EndedBy, Goroutine};

/// The contract's `goroutines --format json` object (extra fields after the required ones),
/// borrowed from the analysis (`GoroutineRow::new`): what the JSON, CSV, text and Parquet
/// listings are made of.
#[derive(Clone, Debug, Serialize)]
pub struct GoroutineRow<'a> {
    pub(crate) pid: u32,
    pub(crate) goid: u64,
    pub(crate) parent_goid: Option<u64>,
    pub(crate) start_function: &'a str,
    pub(crate) creation_site: &'a str,
    pub(crate) created_ns: Option<i64>,
    pub(crate) exited_ns: Option<i64>,
    pub(crate) running_ns: u64,
    pub(crate) runnable_ns: u64,
    pub(crate) syscall_ns: u64,
    pub(crate) blocked_ns: BlockedNs<'a>,
    /// Wake-ups by waking goroutine id (0: the runtime or network poller).
    pub(crate) wakeups_by: &'a Counts<u64>,
    /// Running time during which the kernel had descheduled its thread (not in running_ns).
    pub(crate) off_cpu_ns: u64,
    /// Time the capture did not cover (outside its lifecycle windows, no snapshot) or whose
    /// events were lost: in none of the other totals.
    pub(crate) unknown_ns: u64,
    pub(crate) blocked_total_ns: u64,
    pub(crate) end_ns: i64,
    pub(crate) ended_by: EndedBy,
    /// For goroutines alive at the end: what they were doing.
    pub(crate) state_at_end: Option<String>,
    pub(crate) samples: u64,
    pub(crate) anomalies: u32,
    pub(crate) file: &'a str,
}

impl<'a> GoroutineRow<'a> {
    pub(crate) fn new(g: &'a Goroutine, set: &'a CaptureSet) -> GoroutineRow<'a> {
        let f = &set.files[g.key.file as usize];
        GoroutineRow {
            pid: g.pid,
            goid: g.key.goid,
            parent_goid: g.parent,
            start_function: g.start_function.as_str(),
            creation_site: g.creation_site.as_str(),
            created_ns: g.created().map(|t| set.rel(t)),
            exited_ns: g.exited().map(|t| set.rel(t)),
            running_ns: g.totals.running_ns,
            runnable_ns: g.totals.runnable_ns,
            syscall_ns: g.totals.syscall_ns,
            blocked_ns: BlockedNs {
                f,
                target: g.key.target,
                counts: &g.totals.blocked_ns,
            },
            wakeups_by: &g.totals.wakeups_by,
            off_cpu_ns: g.totals.off_cpu_ns,
            unknown_ns: g.unknown_ns(),
            blocked_total_ns: g.totals.blocked_total(),
            end_ns: set.rel(g.end),
            ended_by: g.ended_by,
            state_at_end: g.alive_at_end().then(|| {
                g.last()
                    .map_or_else(|| "unknown".to_string(), |s| describe_state(f, g.key, &s))
            }),
            samples: g.samples.len() as u64,
            anomalies: g.anomalies,
            file: &f.name,
        }
    }
}

/// Every goroutine's row, sorted by (pid, goid, file name), ties in analysis order.
pub fn goroutine_rows<'a>(
    set: &'a CaptureSet,
    a: &'a Analysis,
) -> impl ExactSizeIterator<Item = GoroutineRow<'a>> + 'a {
    // Each file's rank among the files' names (equal names, equal ranks).
    let rank: Vec<usize> = set
        .files
        .iter()
        .map(|f| set.files.iter().filter(|g| g.name < f.name).count())
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
        .into_iter()
        .map(move |i| GoroutineRow::new(&a.goroutines[i as usize], set))
}

/// Blocked time by Go's name of the wait reason (the contract's `blocked_ns`), named from
/// the analysis' counts per reason number as it is listed.
#[derive(Clone, Copy)]
pub struct BlockedNs<'a> {
    f: &'a LoadedCapture,
    target: u32,
    counts: &'a Counts<Option<u8>>,
}

impl<'a> BlockedNs<'a> {
    /// Calls `f` with the (reason, ns) entries in name order, reasons with the same name
    /// summed; on the stack for the usual handful of reasons.
    fn with_entries<R>(&self, f: impl FnOnce(&[(&'a str, u64)]) -> R) -> R {
        let mut stack = [("", 0); 8];
        let mut heap = Vec::new();
        let v = if self.counts.len() <= stack.len() {
            &mut stack[..self.counts.len()]
        } else {
            heap.resize(self.counts.len(), ("", 0));
            &mut heap[..]
        };
        let mut n = 0;
        self.counts.for_each(|r, ns| {
            v[n] = (reason_name(self.f, self.target, r), ns);
            n += 1;
        });
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut m = 0;
        for i in 0..n {
            if m > 0 && v[m - 1].0 == v[i].0 {
                v[m - 1].1 += v[i].1;
            } else {
                v[m] = v[i];
                m += 1;
            }
        }
        f(&v[..m])
    }

    /// (reason, ns) in name order; reasons with the same name are one entry.
    pub(crate) fn entries(&self) -> Vec<(&'a str, u64)> {
        self.with_entries(<[_]>::to_vec)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

impl Serialize for BlockedNs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.with_entries(|v| s.collect_map(v.iter().copied()))
    }
}

impl std::fmt::Debug for BlockedNs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.entries()).finish()
    }
}
