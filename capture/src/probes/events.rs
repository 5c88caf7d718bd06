//! Ring-buffer record layouts, mirrored from `bpf/gcap.h` (keep both in step: the unit
//! tests below pin every size and field offset), and their decoding into [`RawEvent`].

use super::plan::ProbeId;

/// `enum gcap_kind` in gcap.h.
pub mod kind {
    pub const GO_CREATE: u8 = 1;
    pub const GO_START: u8 = 2;
    pub const GO_BLOCK: u8 = 3;
    pub const GO_UNBLOCK: u8 = 4;
    pub const GO_PREEMPT: u8 = 5;
    pub const SYSCALL_ENTER: u8 = 6;
    pub const SYSCALL_EXIT: u8 = 7;
    pub const GO_EXIT: u8 = 8;
    pub const GC_START: u8 = 9;
    pub const GC_END: u8 = 10;
    pub const STW_START: u8 = 11;
    pub const STW_END: u8 = 12;
    pub const SCHED_SWITCH: u8 = 13;
    pub const PROC_EXIT: u8 = 14;
    pub const SPAN_START: u8 = 15;
    pub const SPAN_END: u8 = 16;
    pub const HTTP_STATUS: u8 = 17;
    pub const CPU_SAMPLE: u8 = 18;
}

/// `enum gcap_span_kind` (same numbers as `gcap_format::SpanKind`).
pub mod span_kind {
    pub const HTTP_SERVER: u8 = 1;
    pub const HTTP_CLIENT: u8 = 2;
    pub const SQL: u8 = 3;
}

/// Field sizes of `struct gcap_ev_span_start` (`GCAP_*_MAX`).
pub const METHOD_MAX: usize = 16;
pub const TP_MAX: usize = 64;
pub const HOST_MAX: usize = 64;
pub const QUERY_MAX: usize = 128;
pub const TARGET_MAX: usize = 256;

/// `GCAP_F_*` bits of [`RawEvent::flags`].
pub mod flags {
    /// Waker (or GC/STW requester) read from `g0.m.curg`: the wakeup ran on the system stack
    /// on behalf of that goroutine.
    pub const WAKER_CURG: u32 = 1 << 0;
    /// Woken from g0 with no user goroutine on the M (scheduler, timers, sysmon): waker = 0.
    pub const WAKER_UNKNOWN: u32 = 1 << 1;
    /// Unblock seen in `runtime.injectglist` (netpoll and friends), not `runtime.ready`.
    pub const NETPOLL: u32 = 1 << 2;
    /// Create: parent read from `g0.m.curg` (Go 1.19 has no `g.parentGoid`).
    pub const PARENT_CURG: u32 = 1 << 3;
    /// sched_switch: the previous task was preempted (still runnable), not blocked.
    pub const SWITCH_PREEMPT: u32 = 1 << 4;
    pub const SWITCH_PREV_TARGET: u32 = 1 << 5;
    pub const SWITCH_NEXT_TARGET: u32 = 1 << 6;
}

/// `struct gcap_hdr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hdr {
    pub ts_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    pub kind: u8,
    pub probe: u8,
    pub cpu: u16,
    pub flags: u32,
}

/// `struct gcap_ev_create`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvCreate {
    pub hdr: Hdr,
    pub goid: u64,
    pub parent_goid: u64,
    pub gopc: u64,
    pub startpc: u64,
}

/// `struct gcap_ev_goid`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvGoid {
    pub hdr: Hdr,
    pub goid: u64,
}

/// `struct gcap_ev_block`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvBlock {
    pub hdr: Hdr,
    pub goid: u64,
    pub reason: u32,
    pub stack_id: i32,
}

/// `struct gcap_ev_unblock`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvUnblock {
    pub hdr: Hdr,
    pub goid: u64,
    pub waker_goid: u64,
}

/// `struct gcap_ev_runtime`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvRuntime {
    pub hdr: Hdr,
    pub goid: u64,
    pub arg: u64,
}

/// `struct gcap_ev_switch`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvSwitch {
    pub hdr: Hdr,
    pub prev_tid: u32,
    pub prev_tgid: u32,
    pub next_tid: u32,
    pub next_tgid: u32,
    pub prev_state: u64,
}

/// `struct gcap_ev_proc_exit`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvProcExit {
    pub hdr: Hdr,
    pub exit_code: i32,
    pub _pad: u32,
}

/// `struct gcap_ev_span_start`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EvSpanStart {
    pub hdr: Hdr,
    pub goid: u64,
    pub content_length: i64,
    pub method_len: u32,
    pub host_len: u32,
    pub target_len: u32,
    pub query_len: u32,
    pub tp_len: u32,
    pub span_kind: u8,
    pub _pad: [u8; 3],
    pub method: [u8; METHOD_MAX],
    pub traceparent: [u8; TP_MAX],
    pub host: [u8; HOST_MAX],
    pub query: [u8; QUERY_MAX],
    pub target: [u8; TARGET_MAX],
}

impl Default for EvSpanStart {
    fn default() -> Self {
        EvSpanStart {
            hdr: Hdr::default(),
            goid: 0,
            content_length: 0,
            method_len: 0,
            host_len: 0,
            target_len: 0,
            query_len: 0,
            tp_len: 0,
            span_kind: 0,
            _pad: [0; 3],
            method: [0; METHOD_MAX],
            traceparent: [0; TP_MAX],
            host: [0; HOST_MAX],
            query: [0; QUERY_MAX],
            target: [0; TARGET_MAX],
        }
    }
}

/// `struct gcap_ev_span_end` (also `HTTP_STATUS`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvSpanEnd {
    pub hdr: Hdr,
    pub goid: u64,
    pub status: u64,
    pub error: u32,
    pub span_kind: u8,
    pub _pad: [u8; 3],
}

/// `struct gcap_ev_sample`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvSample {
    pub hdr: Hdr,
    pub goid: u64,
    pub stack_id: i32,
    pub _pad: u32,
}

/// A bounded copy of a Go string: the bytes copied and the string's full length
/// (`len > bytes.len()` means truncated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoStr {
    pub bytes: Vec<u8>,
    pub len: u32,
}

impl GoStr {
    fn new(field: &[u8], len: u32) -> GoStr {
        GoStr {
            bytes: field[..field.len().min(len as usize)].to_vec(),
            len,
        }
    }

    pub fn truncated(&self) -> bool {
        (self.len as usize) > self.bytes.len()
    }

    /// Lossy UTF-8, with `…` appended when truncated.
    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated() {
            s.push('…');
        }
        s
    }
}

/// What a span-start probe read (see `struct gcap_ev_span_start`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanStartRec {
    pub goid: u64,
    /// `span_kind::*`.
    pub span_kind: u8,
    /// `Request.ContentLength`; -1 when unknown (and for SQL).
    pub content_length: i64,
    pub method: GoStr,
    /// URL.Host (client spans).
    pub host: GoStr,
    /// URL.Path, or the SQL text.
    pub target: GoStr,
    /// URL.RawQuery (only read with keep_query).
    pub query: GoStr,
    /// The request's `Traceparent` header value, if it had one.
    pub traceparent: Option<GoStr>,
}

/// One decoded ring-buffer record. Times are `CLOCK_MONOTONIC` nanoseconds
/// (`bpf_ktime_get_ns`); goids are the runtime's own (`0` = none / unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    pub ts_ns: u64,
    pub tgid: u32,
    /// OS thread that hit the probe.
    pub tid: u32,
    pub cpu: u16,
    /// Program that emitted it; `None` only for a newer BPF object than this code.
    pub probe: Option<ProbeId>,
    /// [`flags`] bits.
    pub flags: u32,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
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
    SpanStart(Box<SpanStartRec>),
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

/// Copies a `#[repr(C)]` record out of the ring-buffer bytes.
fn read<T: Copy + Default>(data: &[u8]) -> Option<T> {
    if data.len() < std::mem::size_of::<T>() {
        return None;
    }
    let mut v = T::default();
    // SAFETY: T is one of the plain-old-data #[repr(C)] records above (integers only, every
    // bit pattern valid); `data` holds at least size_of::<T>() bytes (checked above), and the
    // destination is a distinct, properly aligned local, so a byte copy is sound whatever the
    // source alignment.
    unsafe {
        std::ptr::copy_nonoverlapping(
            data.as_ptr(),
            (&mut v as *mut T).cast::<u8>(),
            std::mem::size_of::<T>(),
        );
    }
    Some(v)
}

/// Decodes one record; `None` if it is shorter than its kind's layout.
pub fn decode(data: &[u8]) -> Option<RawEvent> {
    let h: Hdr = read(data)?;
    let kind = match h.kind {
        kind::GO_CREATE => {
            let e: EvCreate = read(data)?;
            EventKind::GoCreate {
                goid: e.goid,
                parent_goid: e.parent_goid,
                gopc: e.gopc,
                startpc: e.startpc,
            }
        }
        kind::GO_START => {
            let e: EvRuntime = read(data)?;
            EventKind::GoStart {
                goid: e.goid,
                g: e.arg,
            }
        }
        kind::GO_PREEMPT | kind::SYSCALL_ENTER | kind::SYSCALL_EXIT | kind::GO_EXIT => {
            let goid = read::<EvGoid>(data)?.goid;
            match h.kind {
                kind::GO_PREEMPT => EventKind::GoPreempt { goid },
                kind::SYSCALL_ENTER => EventKind::SyscallEnter { goid },
                kind::SYSCALL_EXIT => EventKind::SyscallExit { goid },
                _ => EventKind::GoExit { goid },
            }
        }
        kind::GO_BLOCK => {
            let e: EvBlock = read(data)?;
            EventKind::GoBlock {
                goid: e.goid,
                reason: e.reason as u8,
                stack_id: u32::try_from(e.stack_id).ok(),
            }
        }
        kind::GO_UNBLOCK => {
            let e: EvUnblock = read(data)?;
            EventKind::GoUnblock {
                goid: e.goid,
                waker_goid: e.waker_goid,
            }
        }
        kind::GC_START | kind::GC_END | kind::STW_START | kind::STW_END => {
            let e: EvRuntime = read(data)?;
            match h.kind {
                kind::GC_START => EventKind::GcStart { goid: e.goid },
                kind::GC_END => EventKind::GcEnd { goid: e.goid },
                kind::STW_START => EventKind::StwStart {
                    goid: e.goid,
                    reason: e.arg as u8,
                },
                _ => EventKind::StwEnd { goid: e.goid },
            }
        }
        kind::SCHED_SWITCH => {
            let e: EvSwitch = read(data)?;
            EventKind::SchedSwitch {
                prev_tid: e.prev_tid,
                prev_tgid: e.prev_tgid,
                next_tid: e.next_tid,
                next_tgid: e.next_tgid,
                prev_state: e.prev_state,
                preempted: h.flags & flags::SWITCH_PREEMPT != 0,
            }
        }
        kind::PROC_EXIT => EventKind::ProcessExit {
            exit_code: read::<EvProcExit>(data)?.exit_code,
        },
        kind::SPAN_START => {
            let e: EvSpanStart = read(data)?;
            EventKind::SpanStart(Box::new(SpanStartRec {
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
        kind::SPAN_END => {
            let e: EvSpanEnd = read(data)?;
            EventKind::SpanEnd {
                goid: e.goid,
                span_kind: e.span_kind,
                status: e.status,
                error: e.error != 0,
            }
        }
        kind::HTTP_STATUS => {
            let e: EvSpanEnd = read(data)?;
            EventKind::HttpStatus {
                goid: e.goid,
                code: e.status,
            }
        }
        kind::CPU_SAMPLE => {
            let e: EvSample = read(data)?;
            EventKind::CpuSample {
                goid: e.goid,
                stack_id: u32::try_from(e.stack_id).ok(),
            }
        }
        other => EventKind::Unknown { kind: other },
    };
    Some(RawEvent {
        ts_ns: h.ts_ns,
        tgid: h.tgid,
        tid: h.tid,
        cpu: h.cpu,
        probe: ProbeId::from_index(h.probe),
        flags: h.flags,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// Sizes and offsets as clang lays out gcap.h for the BPF target.
    #[test]
    fn layouts_match_gcap_h() {
        assert_eq!(size_of::<Hdr>(), 24);
        assert_eq!(offset_of!(Hdr, tgid), 8);
        assert_eq!(offset_of!(Hdr, tid), 12);
        assert_eq!(offset_of!(Hdr, kind), 16);
        assert_eq!(offset_of!(Hdr, probe), 17);
        assert_eq!(offset_of!(Hdr, cpu), 18);
        assert_eq!(offset_of!(Hdr, flags), 20);
        assert_eq!(size_of::<EvCreate>(), 56);
        assert_eq!(offset_of!(EvCreate, startpc), 48);
        assert_eq!(size_of::<EvGoid>(), 32);
        assert_eq!(size_of::<EvBlock>(), 40);
        assert_eq!(offset_of!(EvBlock, reason), 32);
        assert_eq!(offset_of!(EvBlock, stack_id), 36);
        assert_eq!(size_of::<EvUnblock>(), 40);
        assert_eq!(size_of::<EvRuntime>(), 40);
        assert_eq!(size_of::<EvSwitch>(), 48);
        assert_eq!(offset_of!(EvSwitch, prev_state), 40);
        assert_eq!(size_of::<EvProcExit>(), 32);
        assert_eq!(size_of::<EvSpanStart>(), 592);
        assert_eq!(offset_of!(EvSpanStart, content_length), 32);
        assert_eq!(offset_of!(EvSpanStart, tp_len), 56);
        assert_eq!(offset_of!(EvSpanStart, span_kind), 60);
        assert_eq!(offset_of!(EvSpanStart, method), 64);
        assert_eq!(offset_of!(EvSpanStart, traceparent), 80);
        assert_eq!(offset_of!(EvSpanStart, host), 144);
        assert_eq!(offset_of!(EvSpanStart, query), 208);
        assert_eq!(offset_of!(EvSpanStart, target), 336);
        assert_eq!(size_of::<EvSpanEnd>(), 48);
        assert_eq!(offset_of!(EvSpanEnd, error), 40);
        assert_eq!(offset_of!(EvSpanEnd, span_kind), 44);
        assert_eq!(size_of::<EvSample>(), 40);
    }

    #[test]
    fn decodes_span_start() {
        let mut e = EvSpanStart::default();
        e.hdr.kind = kind::SPAN_START;
        e.hdr.probe = 17;
        e.goid = 9;
        e.span_kind = span_kind::HTTP_SERVER;
        e.content_length = -1;
        e.method[..3].copy_from_slice(b"GET");
        e.method_len = 3;
        e.target[..4].copy_from_slice(b"/a/b");
        e.target_len = 300;
        // SAFETY: EvSpanStart is #[repr(C)] plain data; viewing it as bytes is sound.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&e as *const EvSpanStart).cast::<u8>(),
                size_of::<EvSpanStart>(),
            )
        };
        let raw = decode(bytes).unwrap();
        assert_eq!(raw.probe, Some(ProbeId::HttpServe));
        let EventKind::SpanStart(s) = raw.kind else {
            panic!("{raw:?}")
        };
        assert_eq!(s.method.text(), "GET");
        assert!(s.target.truncated());
        assert_eq!(s.target.bytes.len(), TARGET_MAX);
        assert!(s.traceparent.is_none());
    }

    /// The config struct must match the skeleton's view of `struct gcap_config` (generated
    /// from the BPF object's BTF, i.e. from gcap.h itself).
    #[test]
    fn config_matches_skeleton() {
        use crate::probes::skel::types::gcap_config;
        assert_eq!(size_of::<gcap_config>(), 152);
        assert_eq!(offset_of!(gcap_config, m_procid), 72);
        assert_eq!(offset_of!(gcap_config, keep_query), 144);
        assert_eq!(offset_of!(gcap_config, m_curg), 48);
        assert_eq!(offset_of!(gcap_config, go_minor), 56);
    }

    #[test]
    fn decodes_records() {
        let ev = EvBlock {
            hdr: Hdr {
                ts_ns: 7,
                tgid: 1,
                tid: 2,
                kind: kind::GO_BLOCK,
                probe: 2,
                cpu: 1,
                flags: 0,
            },
            goid: 42,
            reason: 14,
            stack_id: -17,
        };
        // SAFETY: EvBlock is #[repr(C)] plain data without padding; viewing it as bytes is sound.
        let bytes = unsafe {
            std::slice::from_raw_parts((&ev as *const EvBlock).cast::<u8>(), size_of::<EvBlock>())
        };
        let raw = decode(bytes).unwrap();
        assert_eq!(raw.probe, Some(ProbeId::Gopark));
        assert_eq!(
            raw.kind,
            EventKind::GoBlock {
                goid: 42,
                reason: 14,
                stack_id: None
            }
        );
        assert!(decode(&bytes[..30]).is_none());
    }
}
