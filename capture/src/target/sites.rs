//! Where each probe goes in a binary: file offsets found by decoding its functions (after
//! the stack check, at RETs, at a CALL), including the sites where net/http server spans
//! end (HTTP/1 in `(*conn).serve`, HTTP/2 at `handlerDone`).

use crate::inspect::{prologue, GoBinary, InspectError};
use crate::probes::{ProbeId, ProbeSite, Site};

/// The end sites of server spans, or why there are none: the HTTP/1 site in `(*conn).serve`
/// and one HTTP/2 site per HTTP/2 server implementation linked in (net/http's bundled
/// copy, Go 1.27's net/http/internal/http2, golang.org/x/net/http2): each runs handlers on
/// goroutines of its own that start spans in `serverHandler.ServeHTTP`.
pub(crate) fn server_done_sites(binary: &GoBinary) -> Result<Vec<ProbeSite>, String> {
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
    let calls = prologue::analyze(code, serve.entry).calls;
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
            let (file_offsets, at_jbe, stepped) =
                function_site(binary, ProbeId::Http2HandlerDone, done)
                    .map_err(|e| e.to_string())?;
            return Ok(ProbeSite {
                at_jbe,
                stepped,
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
            let (file_offsets, at_jbe, stepped) =
                function_site(binary, ProbeId::Http2HandlerDone, &c.name)
                    .map_err(|e| e.to_string())?;
            return Ok(ProbeSite {
                at_jbe,
                stepped,
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
pub(super) fn symbol_of(binary: &GoBinary, probe: ProbeId) -> Option<&'static str> {
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
            let (file_offsets, at_jbe, stepped) = function_site(binary, probe, name)?;
            Ok(ProbeSite {
                at_jbe,
                stepped,
                ..ProbeSite::new(probe, file_offsets)
            })
        })
        .collect()
}

/// The single site of a runtime probe.
pub(super) fn probe_site(
    binary: &GoBinary,
    probe: ProbeId,
) -> Result<Option<ProbeSite>, InspectError> {
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
    let calls: Vec<u64> = prologue::analyze(code, closure.entry)
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

/// File offsets of `probe`'s site in function `name`, whether they are stack-check JBEs,
/// and whether the kernel single-steps them.
fn function_site(
    binary: &GoBinary,
    probe: ProbeId,
    name: &str,
) -> Result<(Vec<u64>, bool, bool), InspectError> {
    let site = probe.site();
    let f = binary.function(name)?.clone();
    let pro = binary.prologue(name)?;
    let (offsets, at_jbe, stepped) = match site {
        Site::Returns => (pro.rets.clone(), false, true),
        _ => match (pro.push_rbp, pro.stack_check_jump, pro.after_stack_check) {
            // Go >= 1.21: the PUSHQ BP the kernel emulates (~0.7 us a hit).
            (Some(o), _, _) => (vec![o], false, false),
            // Go 1.19/1.20 frames start with SUBQ (single-stepped, ~20 us): probe the
            // stack-check JBE instead, which the kernel emulates; the BPF program drops the
            // hit when the branch to morestack is taken.
            (None, Some(jbe), _) => (vec![jbe], true, false),
            (None, None, Some(after)) => (vec![after], false, true),
            (None, None, None) => (vec![pro.entry_probe_offset()], false, true),
        },
    };
    Ok((
        offsets.iter().map(|o| f.file_offset + o).collect(),
        at_jbe,
        stepped,
    ))
}
