//! Turns what the user names (a pid, or a program to start) into what a capture needs: the
//! inspected Go binary, the probe plan (sites found by decoding its functions) and the
//! `Target` record written into the capture file.

use std::path::{Path, PathBuf};

use gcap_format::{Offset, ProbeInfo};

use crate::inspect::{GoBinary, GoOffsets, InspectError};
use crate::probes::{
    HttpProbeOffsets, Level, ProbeId, ProbePlan, ProbeSite, RuntimeOffsets, Site, SpanFamily,
};

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
    pub offsets: GoOffsets,
    pub plan: ProbePlan,
    /// Problems worth a warning (e.g. a probe whose function is missing).
    pub warnings: Vec<String>,
}

/// The executable a pid runs, as a path that names the same file in *our* mount namespace
/// (`/proc/PID/exe` works for containers and for binaries replaced on disk since start).
pub fn pid_exe(pid: u32) -> Result<PathBuf, TargetError> {
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(TargetError::NoProcess { pid });
    }
    let link = PathBuf::from(format!("/proc/{pid}/exe"));
    std::fs::metadata(&link).map_err(|source| TargetError::Exe { pid, source })?;
    Ok(link)
}

/// The path `std::process::Command` would run for `program` (PATH lookup).
pub fn resolve_program(program: &str) -> Result<PathBuf, TargetError> {
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
pub fn prepare_with(
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
    Ok(Prepared {
        binary,
        offsets,
        plan,
        warnings,
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

/// The end sites of server spans, or why there are none: the HTTP/1 site in `(*conn).serve`
/// and one HTTP/2 site per HTTP/2 server implementation linked in (net/http's bundled
/// copy, Go 1.27's net/http/internal/http2, golang.org/x/net/http2): each runs handlers on
/// goroutines of its own that start spans in `serverHandler.ServeHTTP`.
pub fn server_done_sites(binary: &GoBinary) -> Result<Vec<ProbeSite>, String> {
    let mut sites = vec![conn_serve_done_site(binary)?];
    for (run, done) in http2_servers(binary) {
        sites.push(handler_done_site(binary, &run, &done)?);
    }
    Ok(sites)
}

/// HTTP/1: `(*conn).serve` runs `serverHandler{c.server}.ServeHTTP(w, w.req);
/// inFlightResponse = nil; w.cancelCtx(); if c.hijacked() { return }; w.finishRequest()`
/// (Go 1.19-1.27). The site is the `CALL (*conn).hijacked` (emulated), reached right after
/// the handler returned whether or not it hijacked the connection (`finishRequest` is not
/// called for hijacked connections). Required: exactly one direct call of each in
/// `(*conn).serve`, the hijacked one the next direct call after ServeHTTP (the
/// `cancelCtx()` between them is an indirect call).
fn conn_serve_done_site(binary: &GoBinary) -> Result<ProbeSite, String> {
    const SERVE: &str = "net/http.(*conn).serve";
    const HANDLER: &str = "net/http.serverHandler.ServeHTTP";
    const HIJACKED: &str = "net/http.(*conn).hijacked";
    let entry = |name: &str| {
        binary
            .function(name)
            .map(|f| f.entry)
            .map_err(|_| format!("{name} is not in the binary"))
    };
    let (handler, hijacked) = (entry(HANDLER)?, entry(HIJACKED)?);
    let serve = binary
        .function(SERVE)
        .map_err(|_| format!("{SERVE} is not in the binary"))?
        .clone();
    let code = binary
        .code(&serve)
        .ok_or_else(|| format!("the code of {SERVE} is not in the file"))?;
    let calls = crate::inspect::prologue::analyze(code, serve.entry).calls;
    let to = |target: u64| -> Vec<usize> {
        (0..calls.len()).filter(|&i| calls[i].1 == target).collect()
    };
    match (to(handler).as_slice(), to(hijacked).as_slice()) {
        ([h], [j]) if *j == h + 1 => Ok(ProbeSite::new(
            ProbeId::HttpServeDone,
            vec![serve.file_offset + calls[*j].0],
        )),
        (h, j) => Err(format!(
            "{SERVE} has {} direct calls of {HANDLER} and {} of {HIJACKED}, not one of each in a row",
            h.len(),
            j.len()
        )),
    }
}

/// The HTTP/2 servers linked into `binary`: (`runHandler` function, the `handlerDone` its
/// deferred closure calls).
fn http2_servers(binary: &GoBinary) -> Vec<(String, String)> {
    const BUNDLED: &str = "net/http.(*http2serverConn).runHandler";
    const RUN: &str = ".(*serverConn).runHandler";
    let mut out = Vec::new();
    for f in binary.functions().iter() {
        if f.name == BUNDLED {
            out.push((
                f.name.clone(),
                "net/http.(*http2responseWriter).handlerDone".to_string(),
            ));
        } else if let Some(pkg) = f.name.strip_suffix(RUN) {
            // net/http/internal/http2 (Go 1.27), golang.org/x/net/http2 (possibly vendored).
            if pkg.ends_with("http2") {
                out.push((
                    f.name.clone(),
                    format!("{pkg}.(*responseWriter).handlerDone"),
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// HTTP/2: `runHandler(rw, req, handler)` defers a closure that calls `rw.handlerDone()`
/// when the handler returned normally (not when it panicked). The closure's name differs
/// by version (`runHandler.func1`, `.func2` in 1.21), so it is found among `run`'s closures
/// by what it calls: `handlerDone` itself when a closure calls it (every Go 1.19-1.27 build
/// by default; the site is after handlerDone's prologue), else the closure whose pclntab
/// inline tree contains `handlerDone` (PGO builds inline it; the site is after the
/// closure's prologue, and the BPF program tells a panic from `g._panic`).
fn handler_done_site(binary: &GoBinary, run: &str, done: &str) -> Result<ProbeSite, String> {
    use crate::inspect::prologue;
    let prefix = format!("{run}.");
    let closures: Vec<_> = binary
        .functions()
        .iter()
        .filter(|f| f.name.starts_with(&prefix))
        .cloned()
        .collect();
    if let Ok(hd) = binary.function(done) {
        let called = closures.iter().any(|c| {
            binary.code(c).is_some_and(|code| {
                prologue::analyze(code, c.entry)
                    .calls
                    .iter()
                    .any(|&(_, t)| t == hd.entry)
            })
        });
        if called {
            let (file_offsets, at_jbe) = function_site(binary, ProbeId::Http2HandlerDone, done)
                .map_err(|e| e.to_string())?;
            return Ok(ProbeSite {
                at_jbe,
                ..ProbeSite::new(ProbeId::Http2HandlerDone, file_offsets)
            });
        }
    }
    let tab = binary.pclntab();
    for c in &closures {
        let Some(code) = binary.code(c) else {
            continue;
        };
        let inlines = prologue::instruction_addresses(code, c.entry)
            .into_iter()
            .any(|pc| {
                tab.frames(pc)
                    .is_some_and(|fr| fr.iter().any(|f| f.inlined && f.function == done))
            });
        if inlines {
            let (file_offsets, at_jbe) = function_site(binary, ProbeId::Http2HandlerDone, &c.name)
                .map_err(|e| e.to_string())?;
            return Ok(ProbeSite {
                at_jbe,
                panic_check: true,
                ..ProbeSite::new(ProbeId::Http2HandlerDone, file_offsets)
            });
        }
    }
    Err(format!(
        "no closure of {run} calls {done} or has it inlined"
    ))
}

/// The name `probe`'s function has in `binary` (some moved between Go versions).
fn symbol_of(binary: &GoBinary, probe: ProbeId) -> Option<&'static str> {
    symbols_of(binary, probe).into_iter().next()
}

/// Every function `probe` goes on in `binary`: the first present name, or all of them for
/// [`ProbeId::all_symbols`] probes.
fn symbols_of(binary: &GoBinary, probe: ProbeId) -> Vec<&'static str> {
    let mut found = std::iter::once(probe.symbol())
        .chain(probe.alt_symbols().iter().copied())
        .filter(|s| binary.function(s).is_ok());
    if probe.all_symbols() {
        found.collect()
    } else {
        found.next().into_iter().collect()
    }
}

/// Where `probe` goes in `binary` (file offsets), or `None` for tracepoints. Probes on
/// several functions get one site per function (each with its own JBE flag).
fn probe_sites(binary: &GoBinary, probe: ProbeId) -> Result<Vec<ProbeSite>, InspectError> {
    if matches!(probe.site(), Site::Tracepoint | Site::PerfEvent) {
        return Ok(Vec::new());
    }
    let names = symbols_of(binary, probe);
    if names.is_empty() {
        // Report the primary name as missing.
        binary.function(probe.symbol())?;
    }
    names
        .into_iter()
        .map(|name| {
            let (file_offsets, at_jbe) = function_site(binary, probe, name)?;
            Ok(ProbeSite {
                at_jbe,
                ..ProbeSite::new(probe, file_offsets)
            })
        })
        .collect()
}

/// The single site of a runtime probe.
fn probe_site(binary: &GoBinary, probe: ProbeId) -> Result<Option<ProbeSite>, InspectError> {
    if probe == ProbeId::Newproc1Ret {
        if let Some(site) = runqput_call_site(binary) {
            return Ok(Some(site));
        }
    }
    Ok(probe_sites(binary, probe)?.into_iter().next())
}

/// The `CALL runtime.runqput` in `runtime.newproc.func1` (the closure `newproc` runs on the
/// system stack: `newg := newproc1(...); runqput(pp, newg, true)`), where the new g is in
/// RBX. Probing it instead of newproc1's RETs turns a single-stepped instruction into an
/// emulated one. `None` (fall back to the RETs) unless there is exactly one such call.
fn runqput_call_site(binary: &GoBinary) -> Option<ProbeSite> {
    let closure = binary.function("runtime.newproc.func1").ok()?.clone();
    let runqput = binary.function("runtime.runqput").ok()?.entry;
    let code = binary.code(&closure)?;
    let calls: Vec<u64> = crate::inspect::prologue::analyze(code, closure.entry)
        .calls
        .iter()
        .filter(|&&(_, target)| target == runqput)
        .map(|&(off, _)| off)
        .collect();
    match calls.as_slice() {
        [off] => Some(ProbeSite {
            newg_in_rbx: true,
            ..ProbeSite::new(ProbeId::Newproc1Ret, vec![closure.file_offset + off])
        }),
        _ => None,
    }
}

/// File offsets of `probe`'s site in function `name`, and whether they are stack-check JBEs.
fn function_site(
    binary: &GoBinary,
    probe: ProbeId,
    name: &str,
) -> Result<(Vec<u64>, bool), InspectError> {
    let site = probe.site();
    let f = binary.function(name)?.clone();
    let pro = binary.prologue(name)?;
    let (offsets, at_jbe) = match site {
        Site::Returns => (pro.rets.clone(), false),
        _ => match (pro.push_rbp, pro.stack_check_jump, pro.after_stack_check) {
            // Go >= 1.21: the PUSHQ BP the kernel emulates (~0.7 us a hit).
            (Some(o), _, _) => (vec![o], false),
            // Go 1.19/1.20 frames start with SUBQ (single-stepped, ~20 us): probe the
            // stack-check JBE instead, which the kernel emulates; the BPF program drops the
            // hit when the branch to morestack is taken.
            (None, Some(jbe), _) => (vec![jbe], true),
            (None, None, Some(after)) => (vec![after], false),
            (None, None, None) => (vec![pro.entry_probe_offset()], false),
        },
    };
    Ok((offsets.iter().map(|o| f.file_offset + o).collect(), at_jbe))
}

/// The `Target` record of the capture for one process.
pub fn record(id: u32, pid: u32, exe_shown: &str, p: &Prepared) -> gcap_format::Target {
    let b = &p.binary;
    let o = &p.offsets;
    let mut offsets = vec![
        ("runtime.g.goid", o.g.goid),
        ("runtime.g.atomicstatus", o.g.atomicstatus),
        ("runtime.g.waitreason", o.g.waitreason),
        ("runtime.g.gopc", o.g.gopc),
        ("runtime.g.startpc", o.g.startpc),
        ("runtime.g.m", o.g.m),
        ("runtime.m.procid", o.m.procid),
        ("runtime.m.curg", o.m.curg),
        ("runtime.hchan.lock", o.hchan.lock),
    ];
    if let Some(v) = o.g.parent_goid {
        offsets.push(("runtime.g.parentGoid", v));
    }
    if p.plan.spans.http_server || p.plan.spans.http_client {
        let h = &p.plan.http;
        offsets.extend([
            ("net/http.Request.Method", h.req_method),
            ("net/http.Request.URL", h.req_url),
            ("net/http.Request.Header", h.req_header),
            ("net/http.Request.ContentLength", h.req_content_length),
            ("net/url.URL.Host", h.url_host),
            ("net/url.URL.Path", h.url_path),
            ("net/url.URL.RawQuery", h.url_raw_query),
            ("net/http.Response.StatusCode", h.resp_status_code),
        ]);
    }
    let max = o.wait_reasons.iter().map(|w| w.value).max().unwrap_or(0) as usize;
    let mut wait_reasons = vec![String::new(); max + 1];
    for w in &o.wait_reasons {
        wait_reasons[w.value as usize] = w.text.clone();
    }
    let mut probes = Vec::new();
    for s in &p.plan.sites {
        for &o in &s.file_offsets {
            // The function holding the site (not always the probe's own symbol: the create
            // probe may sit in runtime.newproc.func1).
            let vaddr = b
                .elf()
                .segments
                .iter()
                .find(|seg| seg.executable && o >= seg.offset && o < seg.offset + seg.filesz)
                .map(|seg| o - seg.offset + seg.vaddr);
            if let Some(f) = vaddr.and_then(|v| b.functions().containing(v)) {
                probes.push(ProbeInfo {
                    name: format!("{:?}", s.probe),
                    attach_to: f.name.clone(),
                    offset: o - f.file_offset,
                });
            }
        }
    }
    probes
        .sort_by(|a, b| (&a.name, &a.attach_to, a.offset).cmp(&(&b.name, &b.attach_to, b.offset)));
    probes.dedup_by(|a, b| (&a.name, &a.attach_to, a.offset) == (&b.name, &b.attach_to, b.offset));
    for probe in p
        .plan
        .probes()
        .filter(|p| matches!(p.site(), Site::Tracepoint | Site::PerfEvent))
    {
        probes.push(ProbeInfo {
            name: format!("{probe:?}"),
            attach_to: probe.symbol().into(),
            offset: 0,
        });
    }
    let info = b.target_info(Some(pid), Some(o.source));
    let server_end = if p.plan.site(ProbeId::HttpServeDone).is_some() {
        "emulated"
    } else if p.plan.site(ProbeId::HttpServeRet).is_some() {
        "ret"
    } else {
        "none"
    };
    let mut extra = vec![
        kv("spans.http_server", p.plan.spans.http_server.to_string()),
        kv("spans.http_client", p.plan.spans.http_client.to_string()),
        kv("spans.sql", p.plan.spans.sql.to_string()),
        kv("spans.keep_query", p.plan.keep_query.to_string()),
        kv("cpu_sample_hz", p.plan.cpu_sample_hz.to_string()),
        kv("swiss_maps", p.plan.swiss_maps.to_string()),
        kv("pie", b.is_pie().to_string()),
        kv("has_dwarf", b.has_dwarf().to_string()),
        kv("has_symtab", b.has_symtab().to_string()),
    ];
    if p.plan.spans.http_server {
        // How server spans end: "emulated" (the conn.serve / handlerDone sites), "ret"
        // (serverHandler.ServeHTTP's RETs: no such site in this binary) or "none".
        extra.push(kv("spans.http_server_end", server_end.to_string()));
    }
    if let Some(m) = info.main_module {
        extra.push(kv("main_module", m));
    }
    if let Some(id) = b.go_build_id() {
        extra.push(kv("go_build_id", id.to_string()));
    }
    gcap_format::Target {
        id,
        pid,
        exe: exe_shown.to_string(),
        build_id: b
            .gnu_build_id()
            .or(b.go_build_id())
            .unwrap_or_default()
            .to_string(),
        go_version: b.build_info.go_version.clone(),
        offsets_source: format!("{:?}", o.source).to_lowercase(),
        offsets: offsets
            .into_iter()
            .map(|(name, value)| Offset {
                name: name.into(),
                value,
            })
            .collect(),
        wait_reasons,
        probes,
        attached_mono_ns: 0,
        extra,
    }
}

fn kv(key: &str, value: String) -> gcap_format::KeyValue {
    gcap_format::KeyValue {
        key: key.into(),
        value,
    }
}

/// Load bias of a running PIE executable: where its first segment is mapped minus its link
/// address (0 for non-PIE). Found in /proc/PID/maps by the file's inode.
pub fn load_bias(pid: u32, binary: &GoBinary) -> Option<u64> {
    if !binary.is_pie() {
        return Some(0);
    }
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?.ino();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let first_vaddr = binary
        .elf()
        .segments
        .iter()
        .map(|s| s.vaddr - s.offset)
        .min()
        .unwrap_or(0);
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let mut f = line.split_whitespace();
        let range = f.next()?;
        let _perms = f.next()?;
        let offset = u64::from_str_radix(f.next()?, 16).ok()?;
        let _dev = f.next()?;
        let inode: u64 = f.next()?.parse().ok()?;
        if inode == ino && offset == 0 {
            let start = u64::from_str_radix(range.split('-').next()?, 16).ok()?;
            return Some(start.wrapping_sub(first_vaddr));
        }
    }
    None
}
