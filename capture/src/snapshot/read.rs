//! Taking a snapshot: `allglen`, `allgptr`, the `g` pointers, then batches of `g`s read,
//! their parked stacks unwound ([`super::unwind`]) and read again to catch torn reads.

use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::inspect::GoBinary;
use crate::session::host::monotonic_ns;

use super::layout::Layout;
use super::memory::{le_u64, MemoryError, Range, Remote};
use super::{unwind, Goroutine, Snapshot, SnapshotError, Truncation};

/// `g`s read and re-read per batch: bounds the buffers (a few MB: two reads of each `g`
/// and a stack window each) and keeps the time between a `g`'s two reads short.
const BATCH: usize = 4096;

/// The fields of one `g`, as read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields {
    stack_lo: u64,
    stack_hi: u64,
    goid: u64,
    status: u32,
    wait_reason: u8,
    waitsince: u64,
    tracking_seq: u8,
    parent: u64,
    gopc: u64,
    startpc: u64,
    sched_sp: u64,
    sched_pc: u64,
    sched_bp: u64,
}

impl Fields {
    fn parse(l: &Layout, b: &[u8]) -> Fields {
        let at = |off: u64| (off - l.window.0) as usize;
        let word = |off: u64| le_u64(b, at(off));
        let byte = |off: u64| b.get(at(off)).copied().unwrap_or(0);
        let o = &l.g;
        Fields {
            stack_lo: word(o.stack_lo),
            stack_hi: word(o.stack_hi),
            goid: word(o.goid),
            status: (word(o.atomicstatus) as u32) & !l.scan,
            wait_reason: byte(o.waitreason),
            waitsince: word(o.waitsince),
            tracking_seq: byte(o.tracking_seq),
            parent: o.parent_goid.map_or(0, word),
            gopc: word(o.gopc),
            startpc: word(o.startpc),
            sched_sp: word(o.sched_sp),
            sched_pc: word(o.sched_pc),
            sched_bp: word(o.sched_bp),
        }
    }

    /// Whether two reads describe the same goroutine in the same state. `waitsince` is
    /// left out: the GC sets it on waiting goroutines without changing their state.
    fn same(&self, other: &Fields) -> bool {
        Fields {
            waitsince: 0,
            ..*self
        } == Fields {
            waitsince: 0,
            ..*other
        }
    }
}

/// Reads every goroutine of process `pid`, which runs `binary` loaded at `bias` (0 unless
/// PIE). Never stops or writes the target; see the module doc for what is read and how
/// changes during the read are handled.
pub(crate) fn take(
    pid: u32,
    bias: u64,
    binary: &GoBinary,
    layout: &Layout,
) -> Result<Snapshot, SnapshotError> {
    let began = Instant::now();
    let mut r = Reader {
        pid,
        mem: Remote::new(pid, layout.limits.bytes),
        binary,
        bias,
        layout,
        frames_left: layout.limits.frames,
        first: (Vec::new(), Vec::new()),
        second: (Vec::new(), Vec::new()),
        at_entry: FxHashMap::default(),
        snap: Snapshot {
            taken_ns: monotonic_ns(),
            ..Snapshot::default()
        },
    };
    match r.all(began) {
        Ok(()) => {}
        Err(SnapshotError::Memory(MemoryError::Budget { .. })) => {
            r.snap.truncated.get_or_insert(Truncation::Bytes);
        }
        Err(e) => return Err(e),
    }
    r.snap.bytes_read = r.mem.bytes_read();
    r.snap.elapsed = began.elapsed();
    Ok(r.snap)
}

/// One snapshot being taken.
struct Reader<'a> {
    pid: u32,
    mem: Remote,
    binary: &'a GoBinary,
    bias: u64,
    layout: &'a Layout,
    frames_left: usize,
    /// Buffers of the first and second read of a batch of `g`s (bytes, readable).
    first: (Vec<u8>, Vec<bool>),
    second: (Vec<u8>, Vec<bool>),
    /// Whether a (link-time) resume PC is a function's entry.
    at_entry: FxHashMap<u64, bool>,
    snap: Snapshot,
}

impl Reader<'_> {
    fn all(&mut self, began: Instant) -> Result<(), SnapshotError> {
        let limits = self.layout.limits;
        // allglen first, then allgptr: allgadd stores them in the other order.
        let allglen = self.word(self.layout.allgs.allglen)?;
        let allgptr = self.word(self.layout.allgs.allgptr)?;
        self.snap.allglen = allglen;
        let mut n = usize::try_from(allglen).unwrap_or(usize::MAX);
        if n > limits.goroutines {
            n = limits.goroutines;
            self.snap.truncated = Some(Truncation::Goroutines);
        }
        if allgptr == 0 || n == 0 {
            return Ok(());
        }
        let gptrs = self.pointers(allgptr, n)?;
        for batch in gptrs.chunks(BATCH) {
            if began.elapsed() >= limits.time {
                self.snap.truncated.get_or_insert(Truncation::Time);
                break;
            }
            self.batch(batch)?;
            if self.frames_left == 0 {
                self.snap.truncated.get_or_insert(Truncation::Frames);
            }
        }
        Ok(())
    }

    /// A runtime variable at link-time address `addr`.
    fn word(&mut self, addr: u64) -> Result<u64, SnapshotError> {
        let addr = addr.wrapping_add(self.bias);
        self.mem.word(addr)?.ok_or(SnapshotError::NoAllgs {
            pid: self.pid,
            addr,
        })
    }

    /// The `n` g pointers of the array at `allgptr` (zero where unreadable).
    fn pointers(&mut self, allgptr: u64, n: usize) -> Result<Vec<u64>, MemoryError> {
        // 64 KiB ranges, so one unmapped page loses only its range.
        const PER_RANGE: usize = 8192;
        let ranges: Vec<Range> = (0..n)
            .step_by(PER_RANGE)
            .map(|i| Range {
                addr: allgptr.wrapping_add(i as u64 * 8),
                len: (n - i).min(PER_RANGE) * 8,
            })
            .collect();
        let (buf, ok) = &mut self.first;
        self.mem.read(&ranges, buf, ok)?;
        Ok((0..n).map(|i| le_u64(buf, i * 8)).collect())
    }

    /// Reads, unwinds and re-reads one batch of `g`s into the snapshot.
    fn batch(&mut self, gptrs: &[u64]) -> Result<(), MemoryError> {
        let layout = self.layout;
        let (lo, hi) = layout.window;
        let size = (hi - lo) as usize;
        let ranges: Vec<Range> = gptrs
            .iter()
            .filter(|&&g| g != 0 && g % 8 == 0)
            .map(|&g| Range {
                addr: g.wrapping_add(lo),
                len: size,
            })
            .collect();
        let (buf, ok) = &mut self.first;
        self.mem.read(&ranges, buf, ok)?;
        // Goroutines worth keeping: (range index, first read).
        let mut live: Vec<(usize, Fields)> = Vec::new();
        for (i, &readable) in ok.iter().enumerate() {
            if !readable {
                self.snap.torn += 1;
                continue;
            }
            let f = Fields::parse(layout, &buf[i * size..(i + 1) * size]);
            if layout.free.contains(&f.status) {
                self.snap.dead += 1;
            } else if !layout.live.contains(&f.status) || f.goid == 0 {
                self.snap.torn += 1;
            } else {
                live.push((i, f));
            }
        }
        let parked: Vec<usize> = (0..live.len())
            .filter(|&k| live[k].1.status == layout.waiting)
            .collect();
        let starts: Vec<unwind::Start> = parked
            .iter()
            .map(|&k| {
                let f = &live[k].1;
                unwind::Start {
                    pc: f.sched_pc,
                    sp: f.sched_sp,
                    lo: f.stack_lo,
                    hi: f.stack_hi,
                }
            })
            .collect();
        let goexit = (
            layout.goexit.0.wrapping_add(self.bias),
            layout.goexit.1.wrapping_add(self.bias),
        );
        let stacks = unwind::unwind(
            &mut self.mem,
            self.binary,
            self.bias,
            goexit,
            &starts,
            layout.limits.depth,
            &mut self.frames_left,
        )?;
        let mut stack_of: Vec<Vec<u64>> = vec![Vec::new(); live.len()];
        for (k, s) in parked.into_iter().zip(stacks) {
            stack_of[k] = s;
        }
        let again: Vec<Range> = live.iter().map(|&(i, _)| ranges[i]).collect();
        let (reread, reread_ok) = &mut self.second;
        self.mem.read(&again, reread, reread_ok)?;
        let now = self.snap.taken_ns;
        for (k, ((_, f), stack)) in live.into_iter().zip(stack_of).enumerate() {
            let second = Fields::parse(layout, &reread[k * size..(k + 1) * size]);
            if !reread_ok[k] || !f.same(&second) {
                self.snap.torn += 1;
                continue;
            }
            let waiting = f.status == layout.waiting;
            let resumes_at_entry = stack.first().is_some_and(|&pc| {
                let link = pc.wrapping_sub(self.bias);
                *self.at_entry.entry(link).or_insert_with(|| {
                    self.binary
                        .functions()
                        .containing(link)
                        .is_some_and(|f| f.entry == link)
                })
            });
            self.snap.goroutines.push(Goroutine {
                goid: f.goid,
                status: f.status as u8,
                wait_reason: if waiting { f.wait_reason } else { 0 },
                waiting_ns: (waiting && f.waitsince != 0 && f.waitsince <= now)
                    .then(|| now - f.waitsince),
                parent: f.parent,
                gopc: f.gopc,
                startpc: f.startpc,
                stack,
                resumes_at_entry,
            });
        }
        Ok(())
    }
}
