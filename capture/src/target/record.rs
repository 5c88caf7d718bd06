//! The `Target` record a capture file holds for each process: its binary, Go version, the
//! struct offsets and wait reasons the probes used, where each probe went, and how spans
//! were captured.

use gcap_format::{Offset, ProbeInfo};

use super::Prepared;
use crate::probes::{ProbeId, Site};

/// The `Target` record of the capture for one process.
pub(crate) fn record(id: u32, pid: u32, exe_shown: &str, p: &Prepared) -> gcap_format::Target {
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
