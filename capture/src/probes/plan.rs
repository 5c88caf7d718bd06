//! What to attach where: the probe catalogue, capture levels, and [`ProbePlan`], the plain
//! configuration [`super::Probes::load`] takes (filled from `inspect` by the caller).

use std::path::PathBuf;

use super::skeleton::types::gcap_cookie;

/// One BPF program. The discriminant is `enum gcap_probe` in `bpf/gcap.h` (index of the
/// per-CPU hit counters; the skeleton's program table checks both agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ProbeId {
    Newproc1Ret = 0,
    Execute = 1,
    Gopark = 2,
    Ready = 3,
    Injectglist = 4,
    Gosched = 5,
    Goyield = 6,
    Reentersyscall = 7,
    Entersyscallblock = 8,
    Exitsyscall = 9,
    Goexit1 = 10,
    GcStart = 11,
    GcMarkTermination = 12,
    StopTheWorld = 13,
    StartTheWorld = 14,
    SchedSwitch = 15,
    ProcessExit = 16,
    // Spans and CPU samples: not part of any level's runtime set (see `ProbeId::for_level`);
    // a plan enables them by family (`ProbePlan::spans`, `ProbePlan::cpu_sample_hz`).
    HttpServe = 17,
    HttpServeRet = 18,
    HttpWriteHeader = 19,
    Http2WriteHeader = 20,
    HttpRoundTrip = 21,
    HttpRoundTripRet = 22,
    SqlQuery = 23,
    SqlQueryRet = 24,
    SqlExec = 25,
    SqlExecRet = 26,
    CpuSample = 27,
    /// End of an HTTP/1 server span: the `CALL (*conn).hijacked` right after
    /// `serverHandler.ServeHTTP` returns in `(*conn).serve` (see `target::plan_server_ends`).
    HttpServeDone = 28,
    /// End of an HTTP/2 server span: `(*http2responseWriter).handlerDone` (or the
    /// `runHandler` closure it is inlined into).
    Http2HandlerDone = 29,
}

/// Groups of span probes that are enabled together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SpanFamily {
    HttpServer,
    HttpClient,
    Sql,
}

/// Which span families a plan attaches (all off in [`ProbePlan::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SpanSet {
    pub(crate) http_server: bool,
    pub(crate) http_client: bool,
    pub(crate) sql: bool,
}

impl SpanSet {
    pub(crate) fn has(&self, f: SpanFamily) -> bool {
        match f {
            SpanFamily::HttpServer => self.http_server,
            SpanFamily::HttpClient => self.http_client,
            SpanFamily::Sql => self.sql,
        }
    }

    pub(crate) fn set(&mut self, f: SpanFamily, on: bool) {
        match f {
            SpanFamily::HttpServer => self.http_server = on,
            SpanFamily::HttpClient => self.http_client = on,
            SpanFamily::Sql => self.sql = on,
        }
    }
}

/// Where on its function a uprobe goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Site {
    /// After the stack-check prologue, at the `PUSHQ BP` (Go >= 1.21; 1.19/1.20 have no
    /// PUSHQ BP there: use the stack-check `JBE` itself, see [`ProbeSite::at_jbe`]).
    /// `nosplit` functions have no stack check: their first instruction. Never the first
    /// instruction of a function with a stack check (~10 us, double hits after morestack).
    Body,
    /// Every `RET` of the function (no uretprobes on Go).
    Returns,
    // (A few probes sit on a `CALL` inside another function instead: the create probe and
    // `HttpServeDone`. They are `Body` here; `target` finds their sites.)
    /// A kernel tracepoint: no offsets.
    Tracepoint,
    /// A perf event per CPU (CPU samples): no offsets.
    PerfEvent,
}

impl ProbeId {
    pub(crate) const ALL: [ProbeId; 30] = [
        ProbeId::Newproc1Ret,
        ProbeId::Execute,
        ProbeId::Gopark,
        ProbeId::Ready,
        ProbeId::Injectglist,
        ProbeId::Gosched,
        ProbeId::Goyield,
        ProbeId::Reentersyscall,
        ProbeId::Entersyscallblock,
        ProbeId::Exitsyscall,
        ProbeId::Goexit1,
        ProbeId::GcStart,
        ProbeId::GcMarkTermination,
        ProbeId::StopTheWorld,
        ProbeId::StartTheWorld,
        ProbeId::SchedSwitch,
        ProbeId::ProcessExit,
        ProbeId::HttpServe,
        ProbeId::HttpServeRet,
        ProbeId::HttpWriteHeader,
        ProbeId::Http2WriteHeader,
        ProbeId::HttpRoundTrip,
        ProbeId::HttpRoundTripRet,
        ProbeId::SqlQuery,
        ProbeId::SqlQueryRet,
        ProbeId::SqlExec,
        ProbeId::SqlExecRet,
        ProbeId::CpuSample,
        ProbeId::HttpServeDone,
        ProbeId::Http2HandlerDone,
    ];

    pub(crate) fn from_index(i: u8) -> Option<ProbeId> {
        ProbeId::ALL.get(i as usize).copied()
    }

    /// The Go function the probe is attached to (same name on Go 1.19-1.27), or the
    /// tracepoint.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            ProbeId::Newproc1Ret => "runtime.newproc1",
            ProbeId::Execute => "runtime.execute",
            ProbeId::Gopark => "runtime.gopark",
            ProbeId::Ready => "runtime.ready",
            ProbeId::Injectglist => "runtime.injectglist",
            ProbeId::Gosched => "runtime.goschedImpl",
            ProbeId::Goyield => "runtime.goyield_m",
            ProbeId::Reentersyscall => "runtime.reentersyscall",
            ProbeId::Entersyscallblock => "runtime.entersyscallblock",
            ProbeId::Exitsyscall => "runtime.exitsyscall",
            ProbeId::Goexit1 => "runtime.goexit1",
            ProbeId::GcStart => "runtime.gcBgMarkStartWorkers",
            ProbeId::GcMarkTermination => "runtime.gcMarkTermination",
            ProbeId::StopTheWorld => "runtime.stopTheWorldWithSema",
            ProbeId::StartTheWorld => "runtime.startTheWorldWithSema",
            ProbeId::SchedSwitch => "sched/sched_switch",
            ProbeId::ProcessExit => "sched/sched_process_exit",
            ProbeId::HttpServe | ProbeId::HttpServeRet => "net/http.serverHandler.ServeHTTP",
            ProbeId::HttpWriteHeader => "net/http.(*response).WriteHeader",
            ProbeId::Http2WriteHeader => "net/http.(*http2responseWriterState).writeHeader",
            ProbeId::HttpRoundTrip | ProbeId::HttpRoundTripRet => "net/http.(*Transport).roundTrip",
            ProbeId::SqlQuery | ProbeId::SqlQueryRet => "database/sql.(*DB).queryDC",
            ProbeId::SqlExec | ProbeId::SqlExecRet => "database/sql.(*DB).execDC",
            ProbeId::CpuSample => "perf/cpu-clock",
            ProbeId::HttpServeDone => "net/http.(*conn).serve",
            ProbeId::Http2HandlerDone => "net/http.(*http2responseWriter).handlerDone",
        }
    }

    /// Other functions the probe also goes on, when present: `symbol` was renamed in some
    /// Go versions, or the same thing happens in several functions.
    pub(crate) fn alt_symbols(self) -> &'static [&'static str] {
        match self {
            // HTTP/2 statuses: the writer state's writeHeader gets every code, but it (and
            // the exported WriteHeader) are inlined into some callers, so the exported
            // wrappers are probed too (receiver RAX, code RBX in all of them). Go 1.27 moved
            // the server to net/http/internal/http2, wrapped by net/http.http2ResponseWriter.
            ProbeId::Http2WriteHeader => &[
                "net/http.(*http2responseWriter).WriteHeader",
                "net/http/internal/http2.(*responseWriterState).writeHeader",
                "net/http/internal/http2.(*responseWriter).WriteHeader",
                "net/http.http2ResponseWriter.WriteHeader",
            ],
            _ => &[],
        }
    }

    /// Whether the probe goes on every function of `symbol` + `alt_symbols` that the binary
    /// has (rather than the first one found).
    pub(crate) fn all_symbols(self) -> bool {
        matches!(self, ProbeId::Http2WriteHeader)
    }

    /// The span family a span probe belongs to (None for runtime probes and CPU samples).
    pub(crate) fn family(self) -> Option<SpanFamily> {
        match self {
            ProbeId::HttpServe
            | ProbeId::HttpServeRet
            | ProbeId::HttpServeDone
            | ProbeId::Http2HandlerDone
            | ProbeId::HttpWriteHeader
            | ProbeId::Http2WriteHeader => Some(SpanFamily::HttpServer),
            ProbeId::HttpRoundTrip | ProbeId::HttpRoundTripRet => Some(SpanFamily::HttpClient),
            ProbeId::SqlQuery | ProbeId::SqlQueryRet | ProbeId::SqlExec | ProbeId::SqlExecRet => {
                Some(SpanFamily::Sql)
            }
            _ => None,
        }
    }

    /// A probe whose absence is normal (the program does not use that part of the library,
    /// or another probe does its job): never reported by [`ProbePlan::missing`]. Server
    /// spans end either at [`ProbeId::HttpServeDone`] + [`ProbeId::Http2HandlerDone`] or at
    /// [`ProbeId::HttpServeRet`]; `target::plan_server_ends` picks one and warns when it has
    /// neither.
    pub(crate) fn optional(self) -> bool {
        matches!(
            self,
            ProbeId::Http2WriteHeader
                | ProbeId::HttpServeRet
                | ProbeId::HttpServeDone
                | ProbeId::Http2HandlerDone
        )
    }

    /// Span and CPU-sample probes: enabled by the plan's options, not by the level.
    pub(crate) fn is_span_or_sample(self) -> bool {
        self.family().is_some() || self == ProbeId::CpuSample
    }

    pub(crate) fn site(self) -> Site {
        match self {
            ProbeId::Newproc1Ret
            | ProbeId::HttpServeRet
            | ProbeId::HttpRoundTripRet
            | ProbeId::SqlQueryRet
            | ProbeId::SqlExecRet => Site::Returns,
            ProbeId::SchedSwitch | ProbeId::ProcessExit => Site::Tracepoint,
            ProbeId::CpuSample => Site::PerfEvent,
            _ => Site::Body,
        }
    }

    /// Lowest capture level that attaches this probe (span probes: every level, when their
    /// family is enabled; CPU samples: when the plan asks for them).
    pub(crate) fn min_level(self) -> Level {
        match self {
            ProbeId::ProcessExit => Level::Spans,
            p if p.is_span_or_sample() => Level::Spans,
            ProbeId::Reentersyscall
            | ProbeId::Entersyscallblock
            | ProbeId::Exitsyscall
            | ProbeId::SchedSwitch => Level::Full,
            _ => Level::Lifecycle,
        }
    }

    /// Runtime probes a level attaches (span probes and CPU samples are chosen by
    /// [`ProbePlan::probes`]).
    pub(crate) fn for_level(level: Level) -> impl Iterator<Item = ProbeId> {
        ProbeId::ALL
            .into_iter()
            .filter(move |p| !p.is_span_or_sample() && p.min_level() <= level)
    }
}

impl std::fmt::Display for ProbeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Capture level (contract: lighter and richer levels are options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    /// No runtime probes: only process exit here (span probes live elsewhere).
    Spans,
    /// create / start / block (reason + stack) / unblock (waker) / preempt / exit, GC, STW.
    #[default]
    Lifecycle,
    /// Lifecycle + syscalls + kernel sched_switch + deeper block stacks.
    Full,
}

impl Level {
    /// Frames kept per block stack (the stack map's value size / 8; the kernel caps user
    /// stacks at `kernel.perf_event_max_stack`, 127 by default).
    pub(crate) fn stack_depth(self) -> u32 {
        match self {
            Level::Spans => 0,
            Level::Lifecycle => 32,
            Level::Full => 127,
        }
    }
}

/// Byte offsets into `runtime.g` / `runtime.m` of one Go version (the subset the BPF
/// programs read). `g.schedlink` is always `goid + 8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RuntimeOffsets {
    pub(crate) g_goid: u64,
    pub(crate) g_m: u64,
    /// `None` on Go 1.19 (no `g.parentGoid`): the parent comes from `g0.m.curg`.
    pub(crate) g_parent_goid: Option<u64>,
    pub(crate) g_gopc: u64,
    pub(crate) g_startpc: u64,
    pub(crate) m_curg: u64,
}

/// Where one probe goes in the target binary: file offsets (not virtual addresses), so
/// PIE and non-PIE binaries are handled alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSite {
    pub(crate) probe: ProbeId,
    /// [`Site::Body`]: one offset (function file offset + prologue length).
    /// [`Site::Returns`]: one per RET.
    pub(crate) file_offsets: Vec<u64>,
    /// The offsets are the prologue's stack-check `JBE` rather than a `PUSHQ BP` (Go 1.19
    /// and 1.20 frames have none: `SUBQ $n, SP` follows the JBE, and the kernel would
    /// single-step it at ~20 us per hit). A Jcc is emulated (~0.8 us); the BPF program reads
    /// EFLAGS and drops the hit when the branch to morestack is taken (the function restarts
    /// from its entry and hits again). Only meaningful for [`Site::Body`].
    pub(crate) at_jbe: bool,
    /// The site is the `CALL runtime.runqput` in `runtime.newproc.func1` rather than a RET
    /// of `runtime.newproc1`: the new g is then in RBX (runqput's second argument), not RAX.
    /// A CALL is emulated by the kernel (~1 us) where a RET is single-stepped (~10 us).
    pub(crate) newg_in_rbx: bool,
    /// [`ProbeId::Http2HandlerDone`] sits on the `runHandler` closure that has
    /// `handlerDone` inlined, which also runs while a handler panic unwinds: the BPF
    /// program reads `g._panic` and ends the span in error then.
    pub panic_check: bool,
    /// The kernel single-steps the instruction at the sites (a `RET`, or a function's
    /// first instruction when it is neither a `PUSHQ BP` nor a Jcc): a hit costs ~10-13 us
    /// instead of ~0.7 us. The budget charges hits by it.
    pub(crate) stepped: bool,
}

impl ProbeSite {
    /// A site at `file_offsets` with no special reading.
    pub(crate) fn new(probe: ProbeId, file_offsets: Vec<u64>) -> ProbeSite {
        ProbeSite {
            probe,
            file_offsets,
            at_jbe: false,
            newg_in_rbx: false,
            panic_check: false,
            stepped: false,
        }
    }

    /// The BPF attach cookie: the `enum gcap_cookie` bits of [`ProbeSite::at_jbe`],
    /// [`ProbeSite::newg_in_rbx`] and [`ProbeSite::panic_check`].
    pub(crate) fn cookie(&self) -> u64 {
        [
            (self.at_jbe, gcap_cookie::GCAP_COOKIE_JBE),
            (self.newg_in_rbx, gcap_cookie::GCAP_COOKIE_NEWG_RBX),
            (self.panic_check, gcap_cookie::GCAP_COOKIE_PANIC_CHECK),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(0, |cookie, (_, bit)| cookie | u64::from(bit.0))
    }
}

/// Everything [`super::Probes::load`] needs for one target binary.
#[derive(Debug, Clone)]
pub struct ProbePlan {
    /// The Go executable the uprobes go into (every attached pid must run this file).
    pub(crate) binary: PathBuf,
    /// Go minor version (19 for go1.19.x): selects register conventions.
    pub(crate) go_minor: u32,
    pub(crate) offsets: RuntimeOffsets,
    pub(crate) level: Level,
    /// Uprobe sites. Probes of the level without a site are reported by
    /// [`super::Probes::missing`]; sites of probes above the level are ignored.
    pub(crate) sites: Vec<ProbeSite>,
    /// Ring buffer size in bytes (power of two, >= 4096). 0 = default for the level.
    pub ringbuf_bytes: u32,
    /// Capture a user stack at every block.
    pub(crate) block_stacks: bool,
    /// Span families to attach (all off by default; `target::prepare` turns on those the
    /// binary has and the user wants).
    pub(crate) spans: SpanSet,
    /// CPU samples per second per CPU (0 = off).
    pub(crate) cpu_sample_hz: u32,
    /// Copy URL query strings (the BPF side reads `URL.RawQuery` only then).
    pub(crate) keep_query: bool,
    /// Struct offsets the span probes read (required when any span family is on).
    pub(crate) http: HttpProbeOffsets,
    /// `runtime.m.procid` (CPU samples check the M names the sampled thread).
    pub(crate) m_procid: u64,
    /// The target's maps are Swiss tables (Go >= 1.24 without GOEXPERIMENT=noswissmap).
    pub(crate) swiss_maps: bool,
}

/// net/http and net/url field offsets the span probes read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct HttpProbeOffsets {
    pub(crate) req_method: u64,
    pub(crate) req_url: u64,
    pub(crate) req_header: u64,
    pub(crate) req_content_length: u64,
    pub(crate) url_host: u64,
    pub(crate) url_path: u64,
    pub(crate) url_raw_query: u64,
    pub(crate) resp_status_code: u64,
}

impl ProbePlan {
    pub(crate) fn new(
        binary: impl Into<PathBuf>,
        go_minor: u32,
        offsets: RuntimeOffsets,
        level: Level,
    ) -> Self {
        ProbePlan {
            binary: binary.into(),
            go_minor,
            offsets,
            level,
            sites: Vec::new(),
            ringbuf_bytes: 0,
            block_stacks: level >= Level::Lifecycle,
            spans: SpanSet::default(),
            cpu_sample_hz: 0,
            keep_query: false,
            http: HttpProbeOffsets::default(),
            m_procid: 0,
            swiss_maps: go_minor >= 24,
        }
    }

    /// Every probe the plan attaches: the level's runtime probes, the enabled span
    /// families' probes and CPU samples when asked for.
    pub(crate) fn probes(&self) -> impl Iterator<Item = ProbeId> + '_ {
        ProbeId::ALL.into_iter().filter(move |p| match p.family() {
            Some(f) => self.spans.has(f),
            None if *p == ProbeId::CpuSample => self.cpu_sample_hz > 0,
            None => p.min_level() <= self.level,
        })
    }

    /// The probes whose BPF programs are loaded: those the plan attaches that have
    /// somewhere to go (a site, or a tracepoint or perf event).
    pub(crate) fn loaded_probes(&self) -> Vec<ProbeId> {
        self.probes()
            .filter(|p| {
                matches!(p.site(), Site::Tracepoint | Site::PerfEvent)
                    || self.site(*p).is_some_and(|s| !s.file_offsets.is_empty())
            })
            .collect()
    }

    pub fn site(&self, probe: ProbeId) -> Option<&ProbeSite> {
        self.sites.iter().find(|s| s.probe == probe)
    }

    /// Uprobes of the plan's level that have no site (not found in the binary).
    pub fn missing(&self) -> Vec<ProbeId> {
        self.probes()
            .filter(|p| !matches!(p.site(), Site::Tracepoint | Site::PerfEvent))
            .filter(|p| !p.optional())
            .filter(|p| self.site(*p).is_none_or(|s| s.file_offsets.is_empty()))
            .collect()
    }

    pub(crate) fn validate(&self) -> Result<(), super::ProbeError> {
        let n = self.ringbuf_size();
        if !n.is_power_of_two() || n < 4096 {
            return Err(super::ProbeError::Plan(format!(
                "ring buffer size {n} is not a power of two >= 4096"
            )));
        }
        Ok(())
    }

    pub(crate) fn ringbuf_size(&self) -> u32 {
        match self.ringbuf_bytes {
            0 if self.level == Level::Full => 32 << 20,
            0 => 8 << 20,
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_ids_are_dense() {
        for (i, p) in ProbeId::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i);
            assert_eq!(ProbeId::from_index(i as u8), Some(*p));
        }
        assert_eq!(ProbeId::from_index(ProbeId::ALL.len() as u8), None);
    }

    /// The cookie bits the BPF programs test (`enum gcap_cookie`).
    #[test]
    fn cookie_bits() {
        let site = |at_jbe, newg_in_rbx, panic_check| ProbeSite {
            at_jbe,
            newg_in_rbx,
            panic_check,
            ..ProbeSite::new(ProbeId::Gopark, vec![])
        };
        assert_eq!(site(false, false, false).cookie(), 0);
        assert_eq!(site(true, false, false).cookie(), 1);
        assert_eq!(site(false, true, false).cookie(), 2);
        assert_eq!(site(false, false, true).cookie(), 4);
        assert_eq!(site(true, true, true).cookie(), 7);
    }

    #[test]
    fn levels_nest() {
        assert_eq!(
            ProbeId::for_level(Level::Spans).collect::<Vec<_>>(),
            [ProbeId::ProcessExit]
        );
        assert!(!ProbeId::for_level(Level::Lifecycle).any(|p| p == ProbeId::SchedSwitch));
        assert_eq!(ProbeId::for_level(Level::Full).count(), 17);
        assert!(ProbeId::for_level(Level::Full).all(|p| !p.is_span_or_sample()));
    }

    #[test]
    fn plan_probes_follow_options() {
        // Go 1.27's layout (the real values come from inspect: DWARF or the generated table).
        let o = RuntimeOffsets {
            g_goid: 152,
            g_m: 48,
            g_parent_goid: Some(280),
            g_gopc: 288,
            g_startpc: 304,
            m_curg: 184,
        };
        let mut plan = ProbePlan::new("/x", 27, o, Level::Spans);
        assert_eq!(plan.probes().collect::<Vec<_>>(), [ProbeId::ProcessExit]);
        plan.spans.sql = true;
        plan.cpu_sample_hz = 99;
        assert_eq!(
            plan.probes().collect::<Vec<_>>(),
            [
                ProbeId::ProcessExit,
                ProbeId::SqlQuery,
                ProbeId::SqlQueryRet,
                ProbeId::SqlExec,
                ProbeId::SqlExecRet,
                ProbeId::CpuSample
            ]
        );
        assert_eq!(plan.missing().len(), 4);
        plan.spans = SpanSet {
            http_server: true,
            http_client: true,
            sql: false,
        };
        // The HTTP/2 WriteHeader is optional: never missing; so are the server-span end
        // probes, one set or the other (target::plan_server_ends warns when neither).
        for p in [
            ProbeId::Http2WriteHeader,
            ProbeId::HttpServeRet,
            ProbeId::HttpServeDone,
            ProbeId::Http2HandlerDone,
        ] {
            assert!(!plan.missing().contains(&p), "{p:?}");
        }
        assert!(plan.missing().contains(&ProbeId::HttpWriteHeader));
    }
}
