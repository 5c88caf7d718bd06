//! Batched, read-only access to a running target's memory.
//!
//! One `process_vm_readv` call copies up to `IOV_MAX` (1024) separate ranges, so reading
//! 100,000 goroutine structs takes about a hundred system calls instead of 100,000 preads
//! of `/proc/PID/mem`. The kernel copies whole ranges or stops at the first one it cannot
//! read (an unmapped page), so a failed range is marked and the batch resumes after it.
//! Nothing here can write to the target. Every byte read counts against a budget.

use std::io;

/// Ranges per `process_vm_readv` call (the kernel's `UIO_MAXIOV`).
const IOV_MAX: usize = 1024;
/// Ranges at most this far apart are read as one: neighbouring `g`s (a size class apart),
/// not stacks (kilobytes apart); under a page, see [`Remote::read`].
const MERGE_GAP: u64 = 256;
/// Longest merged read.
const MAX_SPAN: u64 = 64 << 10;

/// Why the target's memory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("process {pid} is gone")]
    Gone { pid: u32 },
    #[error("not allowed to read the memory of process {pid} ({source}); run gcap as root or with CAP_SYS_PTRACE")]
    Denied {
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the memory of process {pid}: {source}")]
    Io {
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("reading process {pid} would pass the snapshot's limit of {limit} bytes")]
    Budget { pid: u32, limit: u64 },
}

/// One range to read: `len` bytes at the target's address `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) addr: u64,
    pub(crate) len: usize,
}

/// A target process's address space, read-only, with a byte budget.
pub(crate) struct Remote {
    pid: u32,
    read: u64,
    limit: u64,
}

impl Remote {
    pub(crate) fn new(pid: u32, limit: u64) -> Remote {
        Remote {
            pid,
            read: 0,
            limit,
        }
    }

    /// Bytes requested so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Reads `ranges` back to back into `buf` (resized to their total length); `ok[i]`
    /// says whether range `i` was readable (its bytes are zero otherwise).
    ///
    /// Ranges at most [`MERGE_GAP`] apart are read as one (a `g` is a few hundred bytes and
    /// the runtime allocates them next to each other, so this divides the kernel's
    /// per-range work by ~15). Such a merged read cannot fail where its ranges would not:
    /// every byte between two readable ranges under a page apart is on one of their pages.
    /// A merged read that fails anyway (the target unmapped memory meanwhile) is retried
    /// range by range.
    pub(crate) fn read(
        &mut self,
        ranges: &[Range],
        buf: &mut Vec<u8>,
        ok: &mut Vec<bool>,
    ) -> Result<(), MemoryError> {
        let mut order: Vec<usize> = (0..ranges.len()).collect();
        order.sort_unstable_by_key(|&i| ranges[i].addr);
        // Merged spans, each with the (sorted) positions of its ranges in `order`.
        let mut spans: Vec<Range> = Vec::new();
        let mut members: Vec<std::ops::Range<usize>> = Vec::new();
        for (k, &i) in order.iter().enumerate() {
            let r = ranges[i];
            let end = r.addr.saturating_add(r.len as u64);
            match spans.last_mut() {
                Some(s)
                    if r.addr <= (s.addr + s.len as u64).saturating_add(MERGE_GAP)
                        && end - s.addr <= MAX_SPAN =>
                {
                    s.len = s.len.max((end - s.addr) as usize);
                    if let Some(m) = members.last_mut() {
                        m.end = k + 1;
                    }
                }
                _ => {
                    spans.push(r);
                    members.push(k..k + 1);
                }
            }
        }
        let mut span_buf = Vec::new();
        let mut span_ok = Vec::new();
        self.read_each(&spans, &mut span_buf, &mut span_ok)?;
        let mut starts = Vec::with_capacity(ranges.len());
        let mut total = 0;
        for r in ranges {
            starts.push(total);
            total += r.len;
        }
        buf.clear();
        buf.resize(total, 0);
        ok.clear();
        ok.resize(ranges.len(), false);
        let mut span_at = 0;
        let mut retry = Vec::new();
        for ((span, m), &read) in spans.iter().zip(members).zip(&span_ok) {
            for &i in &order[m] {
                let r = ranges[i];
                if read {
                    let from = span_at + (r.addr - span.addr) as usize;
                    buf[starts[i]..starts[i] + r.len]
                        .copy_from_slice(&span_buf[from..from + r.len]);
                    ok[i] = true;
                } else if r.len < span.len {
                    retry.push(i);
                }
            }
            span_at += span.len;
        }
        if !retry.is_empty() {
            let one: Vec<Range> = retry.iter().map(|&i| ranges[i]).collect();
            self.read_each(&one, &mut span_buf, &mut span_ok)?;
            let mut at = 0;
            for (&i, &read) in retry.iter().zip(&span_ok) {
                let r = ranges[i];
                if read {
                    buf[starts[i]..starts[i] + r.len].copy_from_slice(&span_buf[at..at + r.len]);
                    ok[i] = true;
                }
                at += r.len;
            }
        }
        Ok(())
    }

    /// [`Remote::read`] without merging: one kernel range per range.
    fn read_each(
        &mut self,
        ranges: &[Range],
        buf: &mut Vec<u8>,
        ok: &mut Vec<bool>,
    ) -> Result<(), MemoryError> {
        let total: usize = ranges.iter().map(|r| r.len).sum();
        let after = self.read.saturating_add(total as u64);
        if after > self.limit {
            return Err(MemoryError::Budget {
                pid: self.pid,
                limit: self.limit,
            });
        }
        self.read = after;
        buf.clear();
        buf.resize(total, 0);
        ok.clear();
        ok.resize(ranges.len(), false);
        let mut first = 0;
        let mut at = 0;
        while first < ranges.len() {
            let batch = &ranges[first..ranges.len().min(first + IOV_MAX)];
            let want: usize = batch.iter().map(|r| r.len).sum();
            let remote: Vec<libc::iovec> = batch
                .iter()
                .map(|r| libc::iovec {
                    iov_base: r.addr as *mut libc::c_void,
                    iov_len: r.len,
                })
                .collect();
            let local = libc::iovec {
                iov_base: buf[at..at + want].as_mut_ptr().cast(),
                iov_len: want,
            };
            // SAFETY: `local` covers `want` bytes of `buf`, which we own mutably for the
            // call; `remote` describes the target's memory, which the kernel only reads.
            let n = unsafe {
                libc::process_vm_readv(
                    self.pid as libc::pid_t,
                    &local,
                    1,
                    remote.as_ptr(),
                    remote.len() as libc::c_ulong,
                    0,
                )
            };
            // Whole ranges were copied: the first `done` of them, then (if short) a failure.
            let copied = if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EFAULT) => 0,
                    Some(libc::ESRCH) => return Err(MemoryError::Gone { pid: self.pid }),
                    Some(libc::EPERM) => {
                        return Err(MemoryError::Denied {
                            pid: self.pid,
                            source: e,
                        })
                    }
                    _ => {
                        return Err(MemoryError::Io {
                            pid: self.pid,
                            source: e,
                        })
                    }
                }
            } else {
                n as usize
            };
            let mut sum = 0;
            let mut done = 0;
            while done < batch.len() && sum + batch[done].len <= copied {
                sum += batch[done].len;
                ok[first + done] = true;
                done += 1;
            }
            at += sum;
            first += done;
            if done < batch.len() {
                // Range `first` failed: leave its bytes zero and go on after it.
                buf[at..at + ranges[first].len].fill(0);
                at += ranges[first].len;
                first += 1;
            }
        }
        Ok(())
    }

    /// One little-endian word at `addr`, or None when unmapped.
    pub(crate) fn word(&mut self, addr: u64) -> Result<Option<u64>, MemoryError> {
        let mut buf = Vec::with_capacity(8);
        let mut ok = Vec::with_capacity(1);
        self.read(&[Range { addr, len: 8 }], &mut buf, &mut ok)?;
        Ok(ok[0].then(|| le_u64(&buf, 0)))
    }
}

/// The little-endian u64 at `buf[at..at + 8]` (0 past the end).
pub(crate) fn le_u64(buf: &[u8], at: usize) -> u64 {
    buf.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads of this very process: unmapped ranges in the middle of a batch (merged with
    /// each other, then retried alone), and more ranges than one system call takes.
    #[test]
    fn reads_around_unreadable_ranges() {
        let data: Vec<u64> = (0..3000u64).map(|i| i * 7 + 1).collect();
        let base = data.as_ptr() as u64;
        let mut ranges: Vec<Range> = (0..3000u64)
            .map(|i| Range {
                addr: base + i * 8,
                len: 8,
            })
            .collect();
        ranges[1] = Range { addr: 8, len: 8 };
        ranges[2500] = Range { addr: 16, len: 16 };
        let mut mem = Remote::new(std::process::id(), 1 << 20);
        let (mut buf, mut ok) = (Vec::new(), Vec::new());
        mem.read(&ranges, &mut buf, &mut ok).unwrap();
        let mut at = 0;
        for (i, r) in ranges.iter().enumerate() {
            let bad = i == 1 || i == 2500;
            assert_eq!(ok[i], !bad, "range {i}");
            if !bad {
                assert_eq!(le_u64(&buf, at), data[i]);
            } else {
                assert!(buf[at..at + r.len].iter().all(|&b| b == 0));
            }
            at += r.len;
        }
        // The two bad ranges are read together first, then one by one.
        assert!(mem.bytes_read() >= 3000 * 8 + 8);
        assert_eq!(mem.word(base + 16).unwrap(), Some(data[2]));
        assert_eq!(mem.word(0).unwrap(), None);
    }

    #[test]
    fn budget_and_missing_process() {
        let x = 5u64;
        let mut mem = Remote::new(std::process::id(), 16);
        let addr = &x as *const u64 as u64;
        assert_eq!(mem.word(addr).unwrap(), Some(5));
        assert_eq!(mem.word(addr).unwrap(), Some(5));
        assert!(matches!(mem.word(addr), Err(MemoryError::Budget { .. })));
        // pid_max is at most 2^22: this pid never exists.
        let mut gone = Remote::new(1 << 23, 1 << 20);
        assert!(matches!(gone.word(addr), Err(MemoryError::Gone { .. })));
    }
}
