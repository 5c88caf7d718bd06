//! `ganalyze info`: what a capture holds, for people (text) and scripts (JSON, the contract).

use std::path::PathBuf;
use std::process::ExitCode;

use ganalyze::coverage::{self, FileCoverage};
use gcap_format::{Capture, EventKind, Evidence};
use serde_json::{json, Value};

use crate::Format;

/// When a capture started and stopped, on its monotonic clock.
fn time_span(cap: &Capture) -> (u64, u64) {
    let meta = cap.meta().cloned().unwrap_or_default();
    let (t0, t1) = cap
        .time_range()
        .unwrap_or((meta.start_mono_ns, meta.start_mono_ns));
    let end = cap.stats().map_or(t1, |s| s.end_mono_ns.max(t1));
    let start = if meta.start_mono_ns > 0 {
        meta.start_mono_ns
    } else {
        t0
    };
    (start, end)
}

/// The contract's JSON object for one capture, whose coverage is `cov`.
pub(crate) fn info_json(file: &str, cap: &Capture, cov: &FileCoverage) -> Value {
    let meta = cap.meta().cloned().unwrap_or_default();
    let (start, end) = time_span(cap);
    let lost: u64 = cap.stats().map_or(0, |s| s.lost_per_cpu.iter().sum());
    let targets: Vec<Value> = cap
        .targets()
        .iter()
        .map(|t| json!({"pid": t.pid, "exe": t.exe, "go_version": t.go_version, "build_id": t.build_id}))
        .collect();
    json!({
        "file": file,
        "format_version": cap.header().version,
        "targets": targets,
        "host": meta.host,
        "kernel": meta.kernel,
        "gcap_version": meta.gcap_version,
        "level": meta.level,
        "start_unix_ns": meta.start_unix_ns,
        "duration_ns": end.saturating_sub(start),
        "events": cap.event_count(),
        "events_lost": lost,
        "blocks": cap.blocks().len(),
        "bytes": cap.len(),
        "complete": cap.recovery().complete,
        "bytes_discarded": cap.recovery().bytes_discarded,
        "digest": cap.digest(),
        "digest_matches_trailer": cap.evidence().matches_trailer,
        "trailer_digest": cap.evidence().trailer_digest,
        "chain": {
            "blocks": cap.evidence().chain_blocks,
            "head": cap.evidence().chain_head,
            "broken_links": cap.evidence().broken_links,
        },
        "sealed": cap.sealed().map(|s| json!({
            "sealed_unix_ns": s.sealed_unix_ns,
            "sealed_by": s.sealed_by,
            "source_len": s.source_len,
            "source_digest": s.source_digest,
            "blocks_kept": s.blocks_kept,
            "bytes_dropped": s.bytes_dropped,
            "chain_head": s.chain_head,
        })),
        "warnings": cap.recovery().warnings,
        "probe_hits": cap.stats().map(|s| {
            s.probes
                .iter()
                .map(|p| (format!("{}:{}", p.target, p.name), p.hits))
                .collect::<std::collections::BTreeMap<_, _>>()
        }),
        "stop_reason": cap.stats().map(|s| s.stop_reason.clone()),
        "coverage": cov.coverage(),
        "overhead": cov.overhead(),
    })
}

pub(crate) fn run(files: &[PathBuf], format: Format) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    for f in files {
        let cap = super::open(f)?;
        let (start, end) = time_span(&cap);
        let cov = FileCoverage::of_capture(&cap, start, end.max(start));
        let mut v = info_json(&f.display().to_string(), &cap, &cov);
        if format == Format::Text {
            print_text(&cap, &v, &cov);
        } else {
            v["events_by_kind"] = events_by_kind(&cap)?;
            out.push(v);
        }
    }
    match format {
        Format::Text => {}
        Format::Json => {
            let v = if out.len() == 1 {
                out.pop().expect("one")
            } else {
                Value::Array(out)
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Csv => anyhow::bail!("info has no CSV form: use --format text or json"),
    }
    Ok(ExitCode::SUCCESS)
}

fn events_by_kind(cap: &Capture) -> anyhow::Result<Value> {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for info in cap.event_blocks() {
        let p = cap.events_block(info)?;
        for ev in p.block().iter() {
            let ev = ev?;
            let name = EventKind::from_u8(ev.kind)
                .map_or_else(|| format!("kind_{}", ev.kind), |k| k.name().to_string());
            *counts.entry(name).or_default() += 1;
        }
    }
    Ok(serde_json::to_value(counts)?)
}

fn print_text(cap: &Capture, v: &Value, cov: &FileCoverage) {
    println!("{}", v["file"].as_str().unwrap_or(""));
    println!("  format version  {}", v["format_version"]);
    if let Some(m) = cap.meta() {
        println!("  host            {} ({})", m.host, m.kernel);
        println!("  gcap            {}  level {}", m.gcap_version, m.level);
        println!("  command         {}", m.command_line.join(" "));
    }
    for t in cap.targets() {
        println!(
            "  target          pid {} {} {} (build id {})",
            t.pid,
            t.exe,
            t.go_version,
            if t.build_id.is_empty() {
                "-"
            } else {
                &t.build_id
            }
        );
    }
    let dur = v["duration_ns"].as_u64().unwrap_or(0);
    println!("  duration        {:.3} s", dur as f64 / 1e9);
    println!(
        "  events          {} ({} lost)",
        v["events"], v["events_lost"]
    );
    // Captures that predate budgets recorded everything and say nothing more here.
    if cov.windowed() {
        println!("  coverage        {}", coverage::describe(&cov.coverage()));
    }
    if let Some(o) = coverage::describe_overhead(cov.overhead()) {
        println!("  overhead        {o}");
    }
    println!("  blocks          {}  bytes {}", v["blocks"], v["bytes"]);
    if v["complete"].as_bool() == Some(true) {
        println!("  complete        yes");
    } else {
        println!(
            "  complete        NO: {} bytes discarded (see warnings)",
            v["bytes_discarded"]
        );
    }
    println!("  digest          {}", v["digest"].as_str().unwrap_or(""));
    println!("  integrity       {}", integrity(cap.evidence()));
    if let Some(s) = cap.sealed() {
        println!(
            "  sealed          after the fact by {} (not finished by gcap): {} blocks kept from a {}-byte source (digest {}), {} bytes left out",
            s.sealed_by, s.blocks_kept, s.source_len, s.source_digest, s.bytes_dropped
        );
    }
}

/// What the digest printed by `info` vouches for, in one line.
fn integrity(ev: &Evidence) -> String {
    if ev.matches_trailer {
        return "every block is in the hash chain and the trailer matches: the digest pins every byte".into();
    }
    let mut why = Vec::new();
    if ev.broken_links > 0 {
        why.push(format!(
            "{} blocks do not match the hash chain (left out)",
            ev.broken_links
        ));
    }
    why.push(match &ev.trailer_digest {
        None => "no trailer (cut off, or still being written)".to_string(),
        Some(t) => format!("the trailer (digest {t}) does not match the blocks"),
    });
    format!(
        "{}; the digest is BLAKE3 of the file's bytes; the chain runs unbroken over the first {} blocks to head {}",
        why.join("; "),
        ev.chain_blocks,
        ev.chain_head
    )
}
