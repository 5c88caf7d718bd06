//! Turns what the user names (a pid, or a program to start) into what a capture needs: the
//! inspected Go binary, the probe plan (which probes a level and the span options ask for)
//! and where a snapshot finds its goroutines. Where each probe goes is found in `sites.rs`;
//! the `Target` record written into the capture file is built in `record.rs`.

mod record;
pub(crate) mod sites;

use std::path::{Path, PathBuf};

use crate::inspect::{GoBinary, GoOffsets, InspectError};
use crate::probes::{HttpProbeOffsets, Level, ProbeId, ProbePlan, RuntimeOffsets, SpanFamily};
use crate::snapshot::{Layout, SnapshotError};
pub(crate) use record::record;
use sites::{probe_site, server_done_sites, symbol_of};

/// Why a target cannot be captured. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no process with pid {pid}: check the pid (ps -p {pid})")]
    NoProcess { pid: u32 },
    #[error("cannot read /proc/{pid}/exe: {source} (gcap must run as root to capture another user's process)")]
    Exe {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("pid {pid} ({exe}) cannot be captured: {source}")]
    Pid {
        pid: u32,
        exe: String,
        #[source]
        source: InspectError,
    },
    #[error("{0}")]
    Inspect(#[from] InspectError),
    #[error("{program}: not found in PATH; give a path to the program")]
    NotFound { program: String },
}

/// An inspected Go executable and the plan to probe it.
pub struct Prepared {
    pub binary: GoBinary,
    pub(crate) offsets: GoOffsets,
    pub plan: ProbePlan,
    /// Problems worth a warning (e.g. a probe whose function is missing).
    pub(crate) warnings: Vec<String>,
    /// Where the runtime keeps its goroutines, or why it cannot be snapshotted: found once
    /// (finding `allgs` decodes `runtime.allgadd`), read by every snapshot of its processes.
    layout: Result<Layout, String>,
}

impl Prepared {
    /// What snapshots of the binary's processes read ([`crate::snapshot::take`]).
    pub(crate) fn snapshot_layout(&self) -> Result<&Layout, SnapshotError> {
        self.layout
            .as_ref()
            .map_err(|e| SnapshotError::Layout(e.clone()))
    }
}

/// The executable a pid runs, as a path that names the same file in *our* mount namespace
/// (`/proc/PID/exe` works for containers and for binaries replaced on disk since start).
pub(crate) fn pid_exe(pid: u32) -> Result<PathBuf, TargetError> {
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(TargetError::NoProcess { pid });
    }
    let link = PathBuf::from(format!("/proc/{pid}/exe"));
    std::fs::metadata(&link).map_err(|source| TargetError::Exe { pid, source })?;
    Ok(link)
}

/// The path `std::process::Command` would run for `program` (PATH lookup).
pub(crate) fn resolve_program(program: &str) -> Result<PathBuf, TargetError> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(TargetError::NotFound {
                program: program.into(),
            })
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| TargetError::NotFound {
            program: program.into(),
        })
}

/// What to capture besides the level's runtime probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanOptions {
    /// net/http server and client spans.
    pub http: bool,
    /// database/sql spans.
    pub sql: bool,
    /// Keep URL query strings (and SQL literals: applied in userspace).
    pub keep_query: bool,
    /// CPU samples per second per CPU; 0 = off.
    pub cpu_sample_hz: u32,
}

impl Default for SpanOptions {
    fn default() -> Self {
        SpanOptions {
            http: true,
            sql: true,
            keep_query: false,
            cpu_sample_hz: 0,
        }
    }
}

/// Inspects `exe` and plans the probes of `level`, with spans by default (no CPU samples).
pub fn prepare(exe: &Path, level: Level, ringbuf_bytes: u32) -> Result<Prepared, TargetError> {
    prepare_with(exe, level, ringbuf_bytes, &SpanOptions::default())
}

/// Inspects `exe` and plans the probes of `level` and of `spans`.
pub(crate) fn prepare_with(
    exe: &Path,
    level: Level,
    ringbuf_bytes: u32,
    spans: &SpanOptions,
) -> Result<Prepared, TargetError> {
    let binary = GoBinary::open(exe)?;
    let offsets = binary.offsets()?;
    let minor = binary.version().minor;
    let runtime = RuntimeOffsets {
        g_goid: offsets.g.goid,
        g_m: offsets.g.m,
        g_parent_goid: offsets.g.parent_goid,
        g_gopc: offsets.g.gopc,
        g_startpc: offsets.g.startpc,
        m_curg: offsets.m.curg,
    };
    let mut plan = ProbePlan::new(exe, minor, runtime, level);
    plan.ringbuf_bytes = ringbuf_bytes;
    let mut warnings: Vec<String> = binary.version_warning().into_iter().collect();
    for probe in ProbeId::for_level(level) {
        match probe_site(&binary, probe) {
            Ok(Some(site)) => plan.sites.push(site),
            Ok(None) => {}
            Err(e) => warnings.push(format!("probe {} not attached: {e}", probe.symbol())),
        }
    }
    plan_spans(&binary, &offsets, spans, &mut plan, &mut warnings);
    // A binary gcap cannot snapshot is still captured (the snapshots' warnings say why).
    let layout = Layout::new(&binary, &offsets).map_err(|e| e.to_string());
    Ok(Prepared {
        binary,
        offsets,
        plan,
        warnings,
        layout,
    })
}

/// Adds the span probes (and CPU samples) `opts` asks for to `plan`. A family whose
/// functions the program does not contain (no net/http server, no database/sql) is left
/// out silently: that is the program, not a problem.
fn plan_spans(
    binary: &GoBinary,
    offsets: &GoOffsets,
    opts: &SpanOptions,
    plan: &mut ProbePlan,
    warnings: &mut Vec<String>,
) {
    plan.keep_query = opts.keep_query;
    plan.cpu_sample_hz = opts.cpu_sample_hz;
    plan.m_procid = offsets.m.procid;
    let v = binary.version();
    plan.swiss_maps = v.minor >= 24 && !binary.build_info.go_version.contains("noswissmap");
    let h = &offsets.http;
    let http = (|| {
        Some(HttpProbeOffsets {
            req_method: h.request_method?,
            req_url: h.request_url?,
            req_header: h.request_header?,
            req_content_length: h.request_content_length?,
            url_host: h.url_host?,
            url_path: h.url_path?,
            url_raw_query: h.url_raw_query?,
            resp_status_code: h.response_status_code?,
        })
    })();
    let families = [
        (SpanFamily::HttpServer, opts.http, ProbeId::HttpServe),
        (SpanFamily::HttpClient, opts.http, ProbeId::HttpRoundTrip),
        (SpanFamily::Sql, opts.sql, ProbeId::SqlQuery),
    ];
    for (family, wanted, anchor) in families {
        if !wanted || symbol_of(binary, anchor).is_none() {
            continue;
        }
        if family != SpanFamily::Sql {
            match http {
                Some(o) => plan.http = o,
                None => {
                    warnings.push(format!(
                        "{}: no net/http struct offsets for {} (DWARF or table): HTTP spans are not recorded",
                        binary.path().display(),
                        binary.build_info.go_version
                    ));
                    continue;
                }
            }
        }
        plan.spans.set(family, true);
        for probe in ProbeId::ALL
            .into_iter()
            .filter(|p| p.family() == Some(family) && !is_server_end(*p))
        {
            match probe_site(binary, probe) {
                Ok(Some(site)) => plan.sites.push(site),
                Ok(None) => {}
                Err(_) if probe.optional() => {}
                Err(e) => warnings.push(format!("probe {} not attached: {e}", probe.symbol())),
            }
        }
        if family == SpanFamily::HttpServer {
            plan_server_ends(binary, plan, warnings);
        }
    }
}

fn is_server_end(p: ProbeId) -> bool {
    matches!(
        p,
        ProbeId::HttpServeRet | ProbeId::HttpServeDone | ProbeId::Http2HandlerDone
    )
}

/// Where net/http server spans end. A span starts in `serverHandler.ServeHTTP` (HTTP/1
/// and HTTP/2 alike) and ends on the same goroutine once the handler returned: at the
/// emulated sites [`server_done_sites`] finds (one cheap hit per request), else at every RET
/// of ServeHTTP (single-stepped by the kernel, ~13 us a request), with a warning saying
/// why. Never both: a request would end twice.
fn plan_server_ends(binary: &GoBinary, plan: &mut ProbePlan, warnings: &mut Vec<String>) {
    match server_done_sites(binary) {
        Ok(sites) => plan.sites.extend(sites),
        Err(why) => {
            warnings.push(format!(
                "HTTP server spans end at the RETs of {} instead (each single-stepped by the kernel, ~13 us a request): {why}",
                ProbeId::HttpServeRet.symbol()
            ));
            match probe_site(binary, ProbeId::HttpServeRet) {
                Ok(Some(site)) => plan.sites.push(site),
                Ok(None) => {}
                Err(e) => warnings.push(format!(
                    "probe {} not attached: {e}: HTTP server spans never end",
                    ProbeId::HttpServeRet.symbol()
                )),
            }
        }
    }
}
