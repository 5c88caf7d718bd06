//! Several capture files analysed as one incident: one time axis, one symbolizer.
//!
//! Each file's events are on its host's CLOCK_MONOTONIC; its metadata pairs that clock with
//! the wall clock at capture start. Every event time is moved onto one axis ([`Ns`]: ns since
//! the Unix epoch, via that pair), so captures of two services line up, and the contract's
//! times are "ns since the start of the earliest capture" (`CaptureSet::rel`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gcap_format::{Capture, StackId};

use crate::error::{AnalyzeError, Result};

/// A time on the set's common axis: nanoseconds since the Unix epoch.
pub type Ns = i64;

/// One opened capture file.
pub struct LoadedCapture {
    pub(crate) path: PathBuf,
    /// The path as listings print it.
    pub(crate) name: String,
    /// The file name without directories and extension (used to name exports).
    pub(crate) stem: String,
    pub(crate) cap: Capture,
    /// Add to an event's monotonic timestamp to get [`Ns`].
    pub(crate) delta: i64,
    /// When the capture started and stopped, on the common axis.
    pub(crate) start: Ns,
    pub(crate) end: Ns,
    /// Per target of `cap` (in its order): Go's name of each wait-reason number.
    reasons: Vec<Vec<String>>,
}

/// The name of each wait-reason number: Go's string where listed, else "reason N".
fn reason_names(listed: &[String]) -> Vec<String> {
    (0..=u8::MAX as usize)
        .map(|r| match listed.get(r) {
            Some(s) if !s.is_empty() => s.clone(),
            _ => format!("reason {r}"),
        })
        .collect()
}

impl LoadedCapture {
    /// Wraps an opened capture.
    pub fn new(path: PathBuf, cap: Capture) -> LoadedCapture {
        let meta = cap.meta().cloned().unwrap_or_default();
        let range = cap.time_range();
        let start_mono = if meta.start_mono_ns > 0 {
            meta.start_mono_ns
        } else {
            range.map_or(0, |r| r.0)
        };
        let delta = meta.start_unix_ns as i64 - start_mono as i64;
        // The stop the stats block records, when there is one: events after it are
        // damaged and left out of the analysis (`analysis::decode`), so they do not move it.
        let last = range.map_or(start_mono, |r| r.1);
        let end_mono = cap
            .stats()
            .map(|s| s.end_mono_ns)
            .filter(|&e| e >= start_mono)
            .unwrap_or(last)
            .max(start_mono);
        let stem = path
            .file_stem()
            .map_or_else(|| "capture".into(), |s| s.to_string_lossy().into_owned());
        let reasons = cap
            .targets()
            .iter()
            .map(|t| reason_names(&t.wait_reasons))
            .collect();
        LoadedCapture {
            name: path.display().to_string(),
            path,
            stem,
            reasons,
            delta,
            start: start_mono as i64 + delta,
            end: end_mono as i64 + delta,
            cap,
        }
    }

    /// The pid of a target id (0 when the target block was lost).
    pub(crate) fn pid(&self, target: u32) -> u32 {
        self.cap
            .targets()
            .iter()
            .find(|t| t.id == target)
            .map_or(0, |t| t.pid)
    }

    /// The service name of a target: its executable's base name.
    pub(crate) fn service(&self, target: u32) -> String {
        let exe = self
            .cap
            .targets()
            .iter()
            .find(|t| t.id == target)
            .map_or("", |t| t.exe.as_str());
        let base = exe.rsplit('/').next().unwrap_or("");
        if base.is_empty() {
            format!("pid{}", self.pid(target))
        } else {
            base.to_string()
        }
    }

    /// Go's wait-reason string for a reason number of a target ("reason N" when unknown).
    pub(crate) fn wait_reason(&self, target: u32, reason: u8) -> &str {
        static UNLISTED: OnceLock<Vec<String>> = OnceLock::new();
        let names = match self.cap.targets().iter().position(|t| t.id == target) {
            Some(i) => &self.reasons[i],
            None => UNLISTED.get_or_init(|| reason_names(&[])),
        };
        &names[reason as usize]
    }

    /// The frames of a stack, innermost first, inlined frames expanded.
    pub(crate) fn frames(&self, target: u32, stack: StackId) -> Vec<Frame> {
        let mut out = Vec::new();
        for &pc in self.cap.stack(target, stack) {
            let syms = self.cap.symbolize(target, pc);
            if syms.is_empty() {
                out.push(Frame {
                    function: format!("{pc:#x}"),
                    file: String::new(),
                    line: 0,
                });
            }
            for s in syms {
                out.push(Frame {
                    function: self.cap.string(s.function).to_string(),
                    file: self.cap.string(s.file).to_string(),
                    line: s.line,
                });
            }
        }
        out
    }

    /// "pkg.Func (file.go:LINE)" of a stack's first frame, "0x…" without a symbol, "unknown"
    /// for the empty stack.
    pub(crate) fn site(&self, target: u32, stack: StackId) -> String {
        self.frames(target, stack)
            .first()
            .map_or_else(|| "unknown".into(), Frame::site)
    }

    /// The function of a stack's first frame ("0x…" without a symbol, "unknown" when empty).
    pub(crate) fn function(&self, target: u32, stack: StackId) -> String {
        self.frames(target, stack)
            .into_iter()
            .next()
            .map_or_else(|| "unknown".into(), |f| f.function)
    }

    /// Where a goroutine blocked: the first frame of the stack in the program's own code
    /// (outside the runtime and the standard library), else the first frame outside the
    /// runtime, else the first frame.
    pub(crate) fn where_(&self, target: u32, stack: StackId) -> String {
        let frames = self.frames(target, stack);
        frames
            .iter()
            .find(|f| !is_std_frame(&f.function))
            .or_else(|| frames.iter().find(|f| !is_runtime_frame(&f.function)))
            .or(frames.first())
            .map_or_else(|| "unknown".into(), Frame::site)
    }
}

/// One source frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) function: String,
    pub(crate) file: String,
    pub(crate) line: u32,
}

impl Frame {
    /// "pkg.Func (file.go:LINE)", or just the function when the file is unknown.
    pub(crate) fn site(&self) -> String {
        if self.file.is_empty() {
            self.function.clone()
        } else {
            let base = self.file.rsplit('/').next().unwrap_or(&self.file);
            format!("{} ({}:{})", self.function, base, self.line)
        }
    }
}

/// The Go runtime and its internals: never "where" a program blocked.
pub(crate) fn is_runtime_frame(function: &str) -> bool {
    function.starts_with("runtime.")
        || function.starts_with("runtime/")
        || function.starts_with("internal/")
        || function.starts_with("sync.")
        || function.starts_with("sync/")
        || function.starts_with("syscall.")
}

/// The runtime plus the standard-library packages that wrap blocking (channels, locks,
/// sleeps, the network): skipped when looking for the program's own frame.
pub(crate) fn is_std_frame(function: &str) -> bool {
    const STD: [&str; 16] = [
        "time.",
        "net.",
        "net/",
        "os.",
        "io.",
        "bufio.",
        "context.",
        "database/sql.",
        "crypto/",
        "vendor/",
        "golang.org/x/sys/",
        "reflect.",
        "fmt.",
        "log.",
        "encoding/",
        "0x",
    ];
    is_runtime_frame(function) || STD.iter().any(|p| function.starts_with(p))
}

/// The files of one incident.
pub struct CaptureSet {
    pub(crate) files: Vec<LoadedCapture>,
    /// The earliest capture start: time 0 of every time the contract prints.
    pub(crate) start: Ns,
    /// What the reader noticed (damaged or cut-off files), one sentence each.
    pub warnings: Vec<String>,
}

impl CaptureSet {
    /// Opens every file (memory-mapped). A damaged or cut-off file is read as far as it is
    /// intact and its problems become warnings; a file that is not a capture is an error.
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<CaptureSet> {
        let mut files = Vec::new();
        for p in paths {
            let path = p.as_ref().to_path_buf();
            let cap = Capture::open(&path).map_err(|error| AnalyzeError::Open {
                path: path.clone(),
                error,
            })?;
            files.push(LoadedCapture::new(path, cap));
        }
        Self::from_loaded(files)
    }

    /// A set of captures already in memory (tests, tools).
    pub fn from_loaded(files: Vec<LoadedCapture>) -> Result<CaptureSet> {
        if files.is_empty() {
            return Err(AnalyzeError::NoFiles);
        }
        let mut warnings = Vec::new();
        for f in &files {
            for w in &f.cap.recovery().warnings {
                warnings.push(format!("{}: {w}", f.path.display()));
            }
        }
        let start = files.iter().map(|f| f.start).min().unwrap_or(0);
        Ok(CaptureSet {
            files,
            start,
            warnings,
        })
    }

    /// A single in-memory capture (tests).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<CaptureSet> {
        let cap = Capture::from_vec(bytes).map_err(|error| AnalyzeError::Open {
            path: name.into(),
            error,
        })?;
        Self::from_loaded(vec![LoadedCapture::new(name.into(), cap)])
    }

    /// A time on the common axis as the contract's "ns since the capture's start".
    #[inline]
    pub(crate) fn rel(&self, t: Ns) -> i64 {
        t - self.start
    }

    /// The latest capture end.
    pub(crate) fn end(&self) -> Ns {
        self.files.iter().map(|f| f.end).max().unwrap_or(self.start)
    }

    /// Total events in every file (from the block lists).
    pub fn event_count(&self) -> u64 {
        self.files.iter().map(|f| f.cap.event_count()).sum()
    }
}
