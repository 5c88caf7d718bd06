//! [`ProbeError`]: why loading, attaching or draining the probes failed.

use std::path::PathBuf;

use super::plan::ProbeId;

pub type Result<T, E = ProbeError> = std::result::Result<T, E>;

/// Why loading, attaching or draining the probes failed. Display strings are one line and
/// say what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("gcap needs root or CAP_BPF+CAP_PERFMON: run it with sudo")]
    Permission(#[source] libbpf_rs::Error),
    #[error("loading the BPF programs failed (the kernel needs BPF ring buffers, uprobes, attach cookies, bpf_loop and BTF: Linux 5.17 or newer with CONFIG_DEBUG_INFO_BTF): {0}")]
    Load(#[source] libbpf_rs::Error),
    #[error("invalid probe plan: {0}")]
    Plan(String),
    #[error("cannot read {}: {source}", path.display())]
    Binary {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("process {pid}: {source}")]
    Process { pid: i32, source: std::io::Error },
    #[error("process {pid} does not run {}", binary.display())]
    WrongBinary { pid: i32, binary: PathBuf },
    #[error("attaching {probe} at {}+{offset:#x} in process {pid}: {source}", binary.display())]
    Attach {
        probe: ProbeId,
        binary: PathBuf,
        offset: u64,
        pid: i32,
        source: libbpf_rs::Error,
    },
    #[error("attaching tracepoint {probe}: {source}")]
    Tracepoint {
        probe: ProbeId,
        source: libbpf_rs::Error,
    },
    #[error("CPU samples: cannot open a cpu-clock perf event on CPU {cpu} (needs CAP_PERFMON; kernel.perf_event_paranoid): {source}")]
    PerfEvent { cpu: i32, source: libbpf_rs::Error },
    #[error("measuring what a probe hit costs (a probe on gcap's own binary): {0}")]
    Calibration(#[source] libbpf_rs::Error),
    #[error("BPF map {map}: {source}")]
    Map {
        map: &'static str,
        source: libbpf_rs::Error,
    },
}

impl ProbeError {
    /// Load/open failures. EPERM means missing privileges. EACCES is ambiguous: the verifier
    /// also rejects programs with it, so as root it is a load failure (libbpf has printed the
    /// verifier log to stderr), and a permission problem otherwise.
    pub(crate) fn from_load(e: libbpf_rs::Error) -> ProbeError {
        if e.kind() != libbpf_rs::ErrorKind::PermissionDenied {
            return ProbeError::Load(e);
        }
        // libbpf-rs exposes no errno, only io::Error's text ("... (os error 1)" for EPERM).
        let eperm = format!("{e:#}").contains("(os error 1)");
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        if eperm || !root {
            ProbeError::Permission(e)
        } else {
            ProbeError::Load(e)
        }
    }
}
