//! The stacks of parked goroutines, unwound from their saved scheduling context
//! (`g.sched.pc`, `g.sched.sp`) in the target's memory, many goroutines at a time.
//!
//! Each frame's return address is at `SP + delta`, where `delta` is the function's pcsp
//! value at that PC (as in Go's `runtime.(*unwinder).next`), and the caller's SP is 8 bytes
//! above it. This does not depend on how `mcall` saved BP (see `Pclntab::sp_delta`). A walk
//! stops at `runtime.goexit` (its frame is kept, as in the BPF stacks), at a PC outside Go
//! code, at a return address slot outside the goroutine's own stack `[stack.lo, stack.hi)`
//! or below the previous frame, at a zero return address, or at the depth limit.
//!
//! Memory is read in windows of up to [`WINDOW`] bytes of the goroutine's stack, starting
//! at the first slot not yet read, and all goroutines that need one are read in one batch:
//! a parked goroutine's frames are usually all in its first window, so 100,000 stacks take
//! one `process_vm_readv` range each instead of one per frame.

use rustc_hash::FxHashMap;

use crate::inspect::GoBinary;

use super::memory::{le_u64, MemoryError, Range, Remote};

/// Stack bytes read at a time per goroutine.
pub(crate) const WINDOW: u64 = 512;

/// Where one goroutine's walk starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start {
    /// `g.sched.pc`: where the goroutine resumes (in `gopark` after `CALL mcall`, or a
    /// `systemstack_switch` PC for a goroutine on the system stack).
    pub(crate) pc: u64,
    /// `g.sched.sp`.
    pub(crate) sp: u64,
    /// The goroutine's stack bounds.
    pub(crate) lo: u64,
    pub(crate) hi: u64,
}

struct Walk {
    pc: u64,
    sp: u64,
    lo: u64,
    hi: u64,
    /// The stack bytes last read for this walk: `len` bytes from `base`, at `at` in the
    /// previous round's buffer.
    base: u64,
    at: usize,
    len: usize,
    done: bool,
}

impl Walk {
    /// The word at `addr` if the window (in `buf`) holds it.
    fn cached(&self, buf: &[u8], addr: u64) -> Option<u64> {
        let off = usize::try_from(addr.checked_sub(self.base)?).ok()?;
        (off + 8 <= self.len).then(|| le_u64(buf, self.at + off))
    }
}

/// Unwinds the stacks of `starts`; PCs are runtime addresses, `bias` the load bias. Each
/// stack starts with `sched.pc` and has at most `max_depth` frames; `frames_left` bounds the
/// total and is decremented.
pub(crate) fn unwind(
    mem: &mut Remote,
    binary: &GoBinary,
    bias: u64,
    goexit: (u64, u64),
    starts: &[Start],
    max_depth: usize,
    frames_left: &mut usize,
) -> Result<Vec<Vec<u64>>, MemoryError> {
    let pcln = binary.pclntab();
    // sp delta of each distinct (link-time) PC, or None where unwinding must stop.
    let mut deltas: FxHashMap<u64, Option<u32>> = FxHashMap::default();
    let mut delta_at = |link_pc: u64| -> Option<u32> {
        *deltas.entry(link_pc).or_insert_with(|| {
            let in_goexit = link_pc >= goexit.0 && link_pc < goexit.1;
            if in_goexit {
                None
            } else {
                pcln.sp_delta(link_pc)
            }
        })
    };
    let mut stacks: Vec<Vec<u64>> = Vec::with_capacity(starts.len());
    let mut walks: Vec<Walk> = Vec::with_capacity(starts.len());
    for s in starts {
        let mut stack = Vec::new();
        if s.pc != 0 && *frames_left > 0 && max_depth > 0 {
            stack.push(s.pc);
            *frames_left -= 1;
        }
        walks.push(Walk {
            pc: s.pc,
            sp: s.sp,
            lo: s.lo,
            hi: s.hi,
            base: 0,
            at: 0,
            len: 0,
            done: stack.is_empty(),
        });
        stacks.push(stack);
    }
    let mut ranges = Vec::new();
    // Windows are used one round after they are read: `prev` holds the last round's.
    let mut buf = Vec::new();
    let mut prev = Vec::new();
    let mut ok = Vec::new();
    // Every round reads at least the next frame of each walk still going.
    for _round in 1..max_depth {
        ranges.clear();
        for (w, stack) in walks.iter_mut().zip(stacks.iter_mut()) {
            while !w.done {
                if stack.len() >= max_depth || *frames_left == 0 {
                    w.done = true;
                    break;
                }
                // As in Go's unwinder, the delta at the PC itself: a return address is
                // inside its caller (the compiler never ends a function with a CALL).
                let slot = delta_at(w.pc.wrapping_sub(bias))
                    .and_then(|d| w.sp.checked_add(u64::from(d)))
                    .filter(|&a| {
                        a % 8 == 0
                            && a >= w.lo
                            && a >= w.sp
                            && a.checked_add(8).is_some_and(|end| end <= w.hi)
                    });
                let Some(slot) = slot else {
                    w.done = true;
                    break;
                };
                let Some(ret) = w.cached(&prev, slot) else {
                    ranges.push(Range {
                        addr: slot,
                        len: (w.hi - slot).min(WINDOW) as usize,
                    });
                    break;
                };
                if ret == 0 {
                    w.done = true;
                    break;
                }
                stack.push(ret);
                *frames_left -= 1;
                w.pc = ret;
                w.sp = slot + 8;
            }
        }
        if ranges.is_empty() {
            break;
        }
        mem.read(&ranges, &mut buf, &mut ok)?;
        let mut at = 0;
        let mut next = ranges.iter().zip(&ok);
        for w in walks.iter_mut().filter(|w| !w.done) {
            // Walks still going are exactly those that asked for a window, in order.
            let Some((r, &read)) = next.next() else { break };
            (w.base, w.at, w.len) = (r.addr, at, r.len);
            w.done = !read;
            at += r.len;
        }
        std::mem::swap(&mut buf, &mut prev);
    }
    Ok(stacks)
}
