//! Hand-built captures with exactly known contents, for tests and examples: the builder
//! here, the known-answer scenarios in `scenario.rs`.
//!
//! ```
//! use ganalyze::testkit::CaptureBuilder;
//! use gcap_format::EventData;
//! let mut b = CaptureBuilder::new(100, "/srv/app");
//! let site = b.func(0x1000, "main.main", "/src/app/main.go", 10);
//! let start = b.func(0x2000, "main.worker", "/src/app/main.go", 20);
//! b.ev(0, 7, EventData::GoCreate { parent: 1, creation: site, start });
//! b.ev(500, 7, EventData::GoExit);
//! let set = b.into_set();
//! assert_eq!(set.event_count(), 2);
//! ```

use std::path::Path;

use gcap_format::{
    Event, EventData, Meta, SpanKind, StackId, Symbol, Target, Writer, WriterOptions,
};

use crate::analysis::{Analysis, Options};
use crate::capture_set::CaptureSet;

pub mod corpus;
pub mod incident;
pub mod scenario;

/// Go 1.27's wait-reason strings, indexed by number.
pub const GO_WAIT_REASONS: [&str; 47] = [
    "",
    "GC assist marking",
    "IO wait",
    "dumping heap",
    "garbage collection",
    "garbage collection scan",
    "panicwait",
    "GC assist wait",
    "GC sweep wait",
    "GC scavenge wait",
    "finalizer wait",
    "force gc (idle)",
    "GOMAXPROCS updater (idle)",
    "semacquire",
    "sleep",
    "chan receive (nil chan)",
    "chan send (nil chan)",
    "select (no cases)",
    "select",
    "chan receive",
    "chan send",
    "sync.Cond.Wait",
    "sync.Mutex.Lock",
    "sync.RWMutex.RLock",
    "sync.RWMutex.Lock",
    "sync.WaitGroup.Wait",
    "trace reader (blocked)",
    "wait for GC cycle",
    "GC worker (idle)",
    "GC worker (active)",
    "preempted",
    "debug call",
    "GC mark termination",
    "stopping the world",
    "flushing proc caches",
    "trace goroutine status",
    "trace proc status",
    "page trace flush",
    "coroutine",
    "GC weak to strong wait",
    "synctest.Run",
    "synctest.Wait",
    "synctest.Chan (durable)",
    "synctest.Select (durable)",
    "synctest.Cond (durable)",
    "synctest.WaitGroup (durable)",
    "cleanup wait",
];

/// Wait-reason numbers used by tests.
pub mod reason {
    pub const IO_WAIT: u8 = 2;
    pub const SLEEP: u8 = 14;
    pub const SELECT: u8 = 18;
    pub const CHAN_RECEIVE: u8 = 19;
    pub const SEMACQUIRE: u8 = 13;
    pub const MUTEX: u8 = 22;
    pub const WAIT_GROUP: u8 = 25;
}

/// Monotonic time of the capture start in built captures: event times given to
/// [`CaptureBuilder::ev`] are relative to it.
pub const T0: u64 = 1_000_000_000;

/// How a built capture is made (see [`CaptureBuilder::with_setup`]).
#[derive(Clone, Copy, Debug)]
pub struct Setup<'a> {
    /// The capture's wall-clock start.
    pub start_unix_ns: u64,
    /// The capture level ("spans", "lifecycle", "full").
    pub level: &'a str,
    /// The target's Go version (its wait reasons stay Go 1.27's).
    pub go_version: &'a str,
    /// Events per block: small by default, so that a few events span several blocks.
    pub block_events: usize,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            start_unix_ns: 1_800_000_000_000_000_000,
            level: "lifecycle",
            go_version: "go1.27.3",
            block_events: 4,
        }
    }
}

/// Builds a one-target capture in memory.
pub struct CaptureBuilder {
    w: Writer<Vec<u8>>,
    events: Vec<(u32, Event)>,
    end_rel: Option<u64>,
    lost: Vec<u64>,
    stats: Vec<gcap_format::KeyValue>,
}

impl CaptureBuilder {
    /// A capture of one process `pid` running `exe`, started at Unix time 1.8e18 ns.
    pub fn new(pid: u32, exe: &str) -> CaptureBuilder {
        Self::with_start(pid, exe, 1_800_000_000_000_000_000)
    }

    /// Same, with the capture's wall-clock start (to line up two captures).
    pub fn with_start(pid: u32, exe: &str, start_unix_ns: u64) -> CaptureBuilder {
        Self::with_level(pid, exe, start_unix_ns, "lifecycle")
    }

    /// Same, recorded at capture level `level` ("spans", "lifecycle", "full").
    pub fn with_level(pid: u32, exe: &str, start_unix_ns: u64, level: &str) -> CaptureBuilder {
        Self::with_setup(
            pid,
            exe,
            &Setup {
                start_unix_ns,
                level,
                ..Setup::default()
            },
        )
    }

    /// A capture made as `setup` says.
    pub fn with_setup(pid: u32, exe: &str, setup: &Setup) -> CaptureBuilder {
        let &Setup {
            start_unix_ns,
            level,
            go_version,
            block_events,
        } = setup;
        let opts = WriterOptions {
            block_events,
            ts_shift: 0,
            file_id: Some(*b"ganalyze-testkit"),
            ..WriterOptions::default()
        };
        let mut w = Writer::new(Vec::new(), opts).expect("writing to memory");
        w.write_meta(&Meta {
            host: "test".into(),
            kernel: "Linux 6.18".into(),
            gcap_version: "test".into(),
            command_line: vec!["gcap".into()],
            start_unix_ns,
            start_mono_ns: T0,
            level: level.into(),
            extra: vec![],
        })
        .expect("meta");
        w.write_target(&Target {
            id: 0,
            pid,
            exe: exe.into(),
            go_version: go_version.into(),
            wait_reasons: GO_WAIT_REASONS.iter().map(|s| s.to_string()).collect(),
            attached_mono_ns: T0,
            ..Target::default()
        })
        .expect("target");
        CaptureBuilder {
            w,
            events: Vec::new(),
            end_rel: None,
            lost: Vec::new(),
            stats: Vec::new(),
        }
    }

    /// Declares a function at `pc` and returns the one-frame stack holding it.
    pub fn func(&mut self, pc: u64, function: &str, file: &str, line: u32) -> StackId {
        self.symbol(pc, function, file, line);
        self.w.intern_stack(0, &[pc])
    }

    /// Declares a symbol for `pc` (no stack).
    pub fn symbol(&mut self, pc: u64, function: &str, file: &str, line: u32) {
        let function = self.w.intern(function);
        let file = self.w.intern(file);
        self.w.add_symbols(
            0,
            &[Symbol {
                pc,
                entry: pc,
                function,
                file,
                line,
            }],
        );
    }

    /// A stack of PCs, innermost first.
    pub fn stack(&mut self, pcs: &[u64]) -> StackId {
        self.w.intern_stack(0, pcs)
    }

    /// Interns a string (span methods, paths, hosts).
    pub fn string(&mut self, s: &str) -> u32 {
        self.w.intern(s)
    }

    /// An event at `rel` ns after the capture start.
    pub fn ev(&mut self, rel: u64, goid: u64, data: EventData) -> &mut Self {
        self.events.push((
            0,
            Event {
                ts: T0 + rel,
                goid,
                data,
            },
        ));
        self
    }

    /// A server span `span` (`method`, `path`: interned strings) starts on `goid`.
    pub fn server_span(
        &mut self,
        rel: u64,
        goid: u64,
        span: u64,
        method: u32,
        path: u32,
    ) -> &mut Self {
        self.span_start(rel, goid, span, SpanKind::HttpServer, method, path)
    }

    /// A SQL span `span` (`verb`, `query`: interned strings) starts on `goid`.
    pub fn query_span(
        &mut self,
        rel: u64,
        goid: u64,
        span: u64,
        verb: u32,
        query: u32,
    ) -> &mut Self {
        self.span_start(rel, goid, span, SpanKind::Sql, verb, query)
    }

    fn span_start(
        &mut self,
        rel: u64,
        goid: u64,
        span: u64,
        kind: SpanKind,
        method: u32,
        target: u32,
    ) -> &mut Self {
        self.ev(
            rel,
            goid,
            EventData::SpanStart {
                span,
                kind,
                method,
                host: 0,
                target,
                content_length: u64::MAX,
                trace: None,
            },
        )
    }

    /// Span `span` ends with `status` (0: none), not in error.
    pub fn end_span(&mut self, rel: u64, goid: u64, span: u64, status: u32) -> &mut Self {
        self.ev(
            rel,
            goid,
            EventData::SpanEnd {
                span,
                status,
                error: false,
            },
        )
    }

    /// The capture stops `rel` ns after its start (default: at the last event).
    pub fn end(&mut self, rel: u64) -> &mut Self {
        self.end_rel = Some(rel);
        self
    }

    /// Records lost events in the stats block.
    pub fn lost(&mut self, per_cpu: &[u64]) -> &mut Self {
        self.lost = per_cpu.to_vec();
        self
    }

    /// Records a counter in the stats block, as gcap does (e.g. "spans.unmatched_ends").
    pub fn stat(&mut self, key: &str, value: u64) -> &mut Self {
        self.stats.push(gcap_format::KeyValue {
            key: key.into(),
            value: value.to_string(),
        });
        self
    }

    /// The finished file's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        // Dictionaries go out before events that use them: flush them first.
        self.w.flush().expect("flush");
        let last = self.events.iter().map(|e| e.1.ts).max().unwrap_or(T0);
        for (t, e) in std::mem::take(&mut self.events) {
            self.w.push(t, e).expect("push");
        }
        let end = self.end_rel.map_or(last, |r| T0 + r);
        self.w
            .write_stats(&gcap_format::Stats {
                end_mono_ns: end,
                stop_reason: "test".into(),
                lost_per_cpu: self.lost.clone(),
                extra: self.stats.clone(),
                ..Default::default()
            })
            .expect("stats");
        self.w.finish().expect("finish").1
    }

    /// Writes the capture to `path`.
    pub fn write_to(self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.finish())
    }

    /// The capture as a one-file set.
    pub fn into_set(self) -> CaptureSet {
        CaptureSet::from_bytes("test.gcap", self.finish()).expect("a valid capture")
    }
}

/// One capture's bytes as a set (the file named `name`), analysed with the default options.
pub fn analysed(name: &str, bytes: Vec<u8>) -> (CaptureSet, Analysis) {
    let set = CaptureSet::from_bytes(name, bytes).unwrap();
    let a = Analysis::run(&set, &Options::default());
    (set, a)
}
