//! Ring-buffer records: their layouts are the skeleton's Rust definitions of `bpf/gcap.h`
//! (generated from the BPF object, never copied by hand), read out of the ring bytes with
//! bytemuck and decoded into [`Record`].

use std::mem::size_of;

use bytemuck::{Pod, Zeroable};

use super::plan::ProbeId;
use super::skeleton::types::{
    gcap_ev_block, gcap_ev_create, gcap_ev_goid, gcap_ev_proc_exit, gcap_ev_runtime,
    gcap_ev_sample, gcap_ev_span_end, gcap_ev_span_start, gcap_ev_switch, gcap_ev_unblock,
    gcap_flag, gcap_hdr, gcap_kind, gcap_span_kind,
};

/// `enum gcap_flag` bits of [`Record::flags`].
pub mod flags {
    use super::gcap_flag;

    /// Waker (or GC/STW requester) read from `g0.m.curg`: the wakeup ran on the system stack
    /// on behalf of that goroutine.
    pub const WAKER_CURG: u32 = gcap_flag::GCAP_F_WAKER_CURG.0;
    /// Woken from g0 with no user goroutine on the M (scheduler, timers, sysmon): waker = 0.
    pub const WAKER_UNKNOWN: u32 = gcap_flag::GCAP_F_WAKER_UNKNOWN.0;
    /// Unblock seen in `runtime.injectglist` (netpoll and friends), not `runtime.ready`.
    pub const NETPOLL: u32 = gcap_flag::GCAP_F_NETPOLL.0;
    /// Create: parent read from `g0.m.curg` (Go 1.19 has no `g.parentGoid`).
    pub const PARENT_CURG: u32 = gcap_flag::GCAP_F_PARENT_CURG.0;
    /// sched_switch: the previous task was preempted (still runnable), not blocked.
    pub const SWITCH_PREEMPT: u32 = gcap_flag::GCAP_F_SWITCH_PREEMPT.0;
    pub const SWITCH_PREV_TARGET: u32 = gcap_flag::GCAP_F_SWITCH_PREV_TARGET.0;
    pub const SWITCH_NEXT_TARGET: u32 = gcap_flag::GCAP_F_SWITCH_NEXT_TARGET.0;
}

/// `enum gcap_span_kind` (same numbers as `gcap_format::SpanKind`).
pub(crate) mod span_kind {
    use super::gcap_span_kind;

    pub(crate) const HTTP_SERVER: u8 = gcap_span_kind::GCAP_SPAN_HTTP_SERVER.0 as u8;
    pub(crate) const HTTP_CLIENT: u8 = gcap_span_kind::GCAP_SPAN_HTTP_CLIENT.0 as u8;
    pub(crate) const SQL: u8 = gcap_span_kind::GCAP_SPAN_SQL.0 as u8;
}

/// Marks the generated record layouts as plain bytes, and pins each size to the one gcap.h
/// documents (a layout change must be deliberate: it changes ring space per event).
macro_rules! plain_records {
    ($($record:ident = $size:literal,)*) => {
        $(
            // SAFETY: a `#[repr(C)]` struct generated from the object's BTF: integer fields and
            // arrays of integers only (every bit pattern is valid, zero included), and the
            // generator spells every gap as an explicit `__pad` field (gcap.h also declares
            // its padding), so it has no padding bytes.
            unsafe impl Zeroable for $record {}
            // SAFETY: as above.
            unsafe impl Pod for $record {}
            const _: () = assert!(size_of::<$record>() == $size);
        )*
    };
}

plain_records! {
    gcap_hdr = 24,
    gcap_ev_create = 56,
    gcap_ev_goid = 32,
    gcap_ev_block = 40,
    gcap_ev_unblock = 40,
    gcap_ev_runtime = 40,
    gcap_ev_switch = 48,
    gcap_ev_proc_exit = 32,
    gcap_ev_span_start = 592,
    gcap_ev_span_end = 48,
    gcap_ev_sample = 40,
}

/// A bounded copy of a Go string: the bytes copied and the string's full length
/// (`len > bytes.len()` means truncated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GoStr {
    pub(crate) bytes: Vec<u8>,
    pub(crate) len: u32,
}

impl GoStr {
    /// The copied part of a `char[]` record field holding a string of `len` bytes.
    fn new(field: &[i8], len: u32) -> GoStr {
        let field: &[u8] = bytemuck::cast_slice(field);
        GoStr {
            bytes: field[..field.len().min(len as usize)].to_vec(),
            len,
        }
    }

    pub(crate) fn truncated(&self) -> bool {
        (self.len as usize) > self.bytes.len()
    }

    /// Lossy UTF-8, with `…` appended when truncated.
    pub(crate) fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated() {
            s.push('…');
        }
        s
    }
}

/// What a span-start probe read (see `struct gcap_ev_span_start`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanStartRecord {
    pub(crate) goid: u64,
    /// `span_kind::*`.
    pub(crate) span_kind: u8,
    /// `Request.ContentLength`; -1 when unknown (and for SQL).
    pub(crate) content_length: i64,
    pub(crate) method: GoStr,
    /// URL.Host (client spans).
    pub(crate) host: GoStr,
    /// URL.Path, or the SQL text.
    pub(crate) target: GoStr,
    /// URL.RawQuery (only read with keep_query).
    pub(crate) query: GoStr,
    /// The request's `Traceparent` header value, if it had one.
    pub(crate) traceparent: Option<GoStr>,
}

/// One decoded ring-buffer record. Times are `CLOCK_MONOTONIC` nanoseconds
/// (`bpf_ktime_get_ns`); goids are the runtime's own (`0` = none / unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ts_ns: u64,
    pub tgid: u32,
    /// OS thread that hit the probe.
    pub(crate) tid: u32,
    pub(crate) cpu: u16,
    /// Program that emitted it; `None` only for a newer BPF object than this code.
    pub probe: Option<ProbeId>,
    /// [`flags`] bits.
    pub flags: u32,
    pub kind: RecordKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKind {
    GoCreate {
        goid: u64,
        parent_goid: u64,
        /// PC of the `go` statement (`g.gopc`).
        gopc: u64,
        /// Entry PC of the goroutine's function (`g.startpc`).
        startpc: u64,
    },
    /// The goroutine starts running on OS thread `tid` (`runtime.execute`).
    GoStart {
        goid: u64,
        /// Address of the goroutine's `runtime.g`, to read facts about goroutines created
        /// before the capture (valid while the goroutine lives).
        g: u64,
    },
    GoBlock {
        goid: u64,
        /// Go `waitReason`, numbered per Go version.
        reason: u8,
        /// Key for [`super::Probes::stack`]; `None` when not captured or lost.
        stack_id: Option<u32>,
    },
    GoUnblock {
        goid: u64,
        /// 0 = unknown (scheduler, timer, netpoller); see [`flags`].
        waker_goid: u64,
    },
    /// Running -> runnable without blocking (preempted, `Gosched`, runtime yield).
    GoPreempt {
        goid: u64,
    },
    SyscallEnter {
        goid: u64,
    },
    SyscallExit {
        goid: u64,
    },
    GoExit {
        goid: u64,
    },
    GcStart {
        goid: u64,
    },
    /// Mark termination begins (the end of the concurrent mark).
    GcEnd {
        goid: u64,
    },
    /// `reason` is Go's `stwReason` (1.21+), 255 when the version does not pass one.
    StwStart {
        goid: u64,
        reason: u8,
    },
    StwEnd {
        goid: u64,
    },
    SchedSwitch {
        prev_tid: u32,
        prev_tgid: u32,
        next_tid: u32,
        next_tgid: u32,
        /// Kernel task state of prev; 0 (runnable) when preempted.
        prev_state: u64,
        preempted: bool,
    },
    /// The target's main thread exited; `exit_code` is the kernel's wait status.
    ProcessExit {
        exit_code: i32,
    },
    /// A span starts on goroutine `rec.goid`.
    SpanStart(Box<SpanStartRecord>),
    /// A span-end probe fired on `goid` (a RET of the function whose entry started it).
    SpanEnd {
        goid: u64,
        span_kind: u8,
        /// HTTP client: `Response.StatusCode` (0 when there is no response).
        status: u64,
        /// The function returned a non-nil error.
        error: bool,
    },
    /// `WriteHeader(code)` on the goroutine serving a request.
    HttpStatus {
        goid: u64,
        code: u64,
    },
    /// A CPU sample of thread `hdr.tid`, running `goid` (0 = no goroutine / unknown).
    CpuSample {
        goid: u64,
        /// Key for [`super::Probes::stack`]; `None` when lost.
        stack_id: Option<u32>,
    },
    /// A record kind this code does not know (BPF object newer than the decoder).
    Unknown {
        kind: u8,
    },
}

/// Copies record `T` out of the start of `data` (ring bytes need not be aligned for `T`).
fn read<T: Pod>(data: &[u8]) -> Option<T> {
    data.get(..size_of::<T>()).map(bytemuck::pod_read_unaligned)
}

impl Record {
    /// Decodes one record; `None` if it is shorter than its kind's layout.
    pub(crate) fn decode(data: &[u8]) -> Option<Record> {
        let h: gcap_hdr = read(data)?;
        let kind = match gcap_kind(u32::from(h.kind)) {
            gcap_kind::GCAP_GO_CREATE => {
                let e: gcap_ev_create = read(data)?;
                RecordKind::GoCreate {
                    goid: e.goid,
                    parent_goid: e.parent_goid,
                    gopc: e.gopc,
                    startpc: e.startpc,
                }
            }
            gcap_kind::GCAP_GO_START => {
                let e: gcap_ev_runtime = read(data)?;
                RecordKind::GoStart {
                    goid: e.goid,
                    g: e.arg,
                }
            }
            k @ (gcap_kind::GCAP_GO_PREEMPT
            | gcap_kind::GCAP_SYSCALL_ENTER
            | gcap_kind::GCAP_SYSCALL_EXIT
            | gcap_kind::GCAP_GO_EXIT) => {
                let goid = read::<gcap_ev_goid>(data)?.goid;
                match k {
                    gcap_kind::GCAP_GO_PREEMPT => RecordKind::GoPreempt { goid },
                    gcap_kind::GCAP_SYSCALL_ENTER => RecordKind::SyscallEnter { goid },
                    gcap_kind::GCAP_SYSCALL_EXIT => RecordKind::SyscallExit { goid },
                    _ => RecordKind::GoExit { goid },
                }
            }
            gcap_kind::GCAP_GO_BLOCK => {
                let e: gcap_ev_block = read(data)?;
                RecordKind::GoBlock {
                    goid: e.goid,
                    reason: e.reason as u8,
                    stack_id: u32::try_from(e.stack_id).ok(),
                }
            }
            gcap_kind::GCAP_GO_UNBLOCK => {
                let e: gcap_ev_unblock = read(data)?;
                RecordKind::GoUnblock {
                    goid: e.goid,
                    waker_goid: e.waker_goid,
                }
            }
            k @ (gcap_kind::GCAP_GC_START
            | gcap_kind::GCAP_GC_END
            | gcap_kind::GCAP_STW_START
            | gcap_kind::GCAP_STW_END) => {
                let e: gcap_ev_runtime = read(data)?;
                match k {
                    gcap_kind::GCAP_GC_START => RecordKind::GcStart { goid: e.goid },
                    gcap_kind::GCAP_GC_END => RecordKind::GcEnd { goid: e.goid },
                    gcap_kind::GCAP_STW_START => RecordKind::StwStart {
                        goid: e.goid,
                        reason: e.arg as u8,
                    },
                    _ => RecordKind::StwEnd { goid: e.goid },
                }
            }
            gcap_kind::GCAP_SCHED_SWITCH => {
                let e: gcap_ev_switch = read(data)?;
                RecordKind::SchedSwitch {
                    prev_tid: e.prev_tid,
                    prev_tgid: e.prev_tgid,
                    next_tid: e.next_tid,
                    next_tgid: e.next_tgid,
                    prev_state: e.prev_state,
                    preempted: h.flags & flags::SWITCH_PREEMPT != 0,
                }
            }
            gcap_kind::GCAP_PROC_EXIT => RecordKind::ProcessExit {
                exit_code: read::<gcap_ev_proc_exit>(data)?.exit_code,
            },
            gcap_kind::GCAP_SPAN_START => {
                let e: gcap_ev_span_start = read(data)?;
                RecordKind::SpanStart(Box::new(SpanStartRecord {
                    goid: e.goid,
                    span_kind: e.span_kind,
                    content_length: e.content_length,
                    method: GoStr::new(&e.method, e.method_len),
                    host: GoStr::new(&e.host, e.host_len),
                    target: GoStr::new(&e.target, e.target_len),
                    query: GoStr::new(&e.query, e.query_len),
                    traceparent: (e.tp_len > 0).then(|| GoStr::new(&e.traceparent, e.tp_len)),
                }))
            }
            gcap_kind::GCAP_SPAN_END => {
                let e: gcap_ev_span_end = read(data)?;
                RecordKind::SpanEnd {
                    goid: e.goid,
                    span_kind: e.span_kind,
                    status: e.status,
                    error: e.error != 0,
                }
            }
            gcap_kind::GCAP_HTTP_STATUS => {
                let e: gcap_ev_span_end = read(data)?;
                RecordKind::HttpStatus {
                    goid: e.goid,
                    code: e.status,
                }
            }
            gcap_kind::GCAP_CPU_SAMPLE => {
                let e: gcap_ev_sample = read(data)?;
                RecordKind::CpuSample {
                    goid: e.goid,
                    stack_id: u32::try_from(e.stack_id).ok(),
                }
            }
            _ => RecordKind::Unknown { kind: h.kind },
        };
        Some(Record {
            ts_ns: h.ts_ns,
            tgid: h.tgid,
            tid: h.tid,
            cpu: h.cpu,
            probe: ProbeId::from_index(h.probe),
            flags: h.flags,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::mem::offset_of;

    use super::*;

    /// Offsets as clang lays out gcap.h for the BPF target (the sizes are checked at compile
    /// time, see `plain_records!`).
    #[test]
    fn layouts_match_gcap_h() {
        assert_eq!(offset_of!(gcap_hdr, tgid), 8);
        assert_eq!(offset_of!(gcap_hdr, tid), 12);
        assert_eq!(offset_of!(gcap_hdr, kind), 16);
        assert_eq!(offset_of!(gcap_hdr, probe), 17);
        assert_eq!(offset_of!(gcap_hdr, cpu), 18);
        assert_eq!(offset_of!(gcap_hdr, flags), 20);
        assert_eq!(offset_of!(gcap_ev_create, startpc), 48);
        assert_eq!(offset_of!(gcap_ev_block, reason), 32);
        assert_eq!(offset_of!(gcap_ev_block, stack_id), 36);
        assert_eq!(offset_of!(gcap_ev_switch, prev_state), 40);
        assert_eq!(offset_of!(gcap_ev_span_start, content_length), 32);
        assert_eq!(offset_of!(gcap_ev_span_start, tp_len), 56);
        assert_eq!(offset_of!(gcap_ev_span_start, span_kind), 60);
        assert_eq!(offset_of!(gcap_ev_span_start, method), 64);
        assert_eq!(offset_of!(gcap_ev_span_start, traceparent), 80);
        assert_eq!(offset_of!(gcap_ev_span_start, host), 144);
        assert_eq!(offset_of!(gcap_ev_span_start, query), 208);
        assert_eq!(offset_of!(gcap_ev_span_start, target), 336);
        assert_eq!(offset_of!(gcap_ev_span_end, error), 40);
        assert_eq!(offset_of!(gcap_ev_span_end, span_kind), 44);
    }

    #[test]
    fn decodes_span_start() {
        let mut e = gcap_ev_span_start::default();
        e.hdr.kind = gcap_kind::GCAP_SPAN_START.0 as u8;
        e.hdr.probe = 17;
        e.goid = 9;
        e.span_kind = span_kind::HTTP_SERVER;
        e.content_length = -1;
        e.method[..3].copy_from_slice(bytemuck::cast_slice(b"GET"));
        e.method_len = 3;
        e.target[..4].copy_from_slice(bytemuck::cast_slice(b"/a/b"));
        e.target_len = 300;
        let rec = Record::decode(bytemuck::bytes_of(&e)).unwrap();
        assert_eq!(rec.probe, Some(ProbeId::HttpServe));
        let RecordKind::SpanStart(s) = rec.kind else {
            panic!("{rec:?}")
        };
        assert_eq!(s.method.text(), "GET");
        assert!(s.target.truncated());
        assert_eq!(s.target.bytes.len(), e.target.len());
        assert!(s.traceparent.is_none());
    }

    #[test]
    fn decodes_records() {
        let mut e = gcap_ev_block::default();
        e.hdr.ts_ns = 7;
        e.hdr.tgid = 1;
        e.hdr.tid = 2;
        e.hdr.kind = gcap_kind::GCAP_GO_BLOCK.0 as u8;
        e.hdr.probe = 2;
        e.hdr.cpu = 1;
        e.goid = 42;
        e.reason = 14;
        e.stack_id = -17;
        let bytes = bytemuck::bytes_of(&e);
        let rec = Record::decode(bytes).unwrap();
        assert_eq!(rec.probe, Some(ProbeId::Gopark));
        assert_eq!(
            rec.kind,
            RecordKind::GoBlock {
                goid: 42,
                reason: 14,
                stack_id: None
            }
        );
        assert!(Record::decode(&bytes[..30]).is_none());
    }
}
