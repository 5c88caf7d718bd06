//! Goroutine-reconstruction throughput of `ganalyze` on a large synthetic capture.
//!
//! ```text
//! cargo run --release -p ganalyze --example reconstruct_bench -- [EVENTS] [FILE]
//! ```
//! EVENTS defaults to 50,000,000; FILE to $TMPDIR/ganalyze-bench-EVENTS.gcap, which is
//! written once (gcap_format's synthetic goroutine-heavy server stream, seed 7) and reused.
//! The analysis (decode every block, per-goroutine merge, state machines with states kept,
//! span correlation) runs on rayon pools of 1 and 2 threads; it prints events/s and
//! events/s per thread, and the peak resident memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ganalyze::{Analysis, CaptureSet, Options};
use gcap_format::synthetic::Synthetic;
use gcap_format::{create_file, Meta, Target, Writer, WriterOptions};

fn write(path: &Path, events: u64) -> Result<(), Box<dyn std::error::Error>> {
    eprintln!(
        "writing {events} synthetic events to {} ...",
        path.display()
    );
    let t = Instant::now();
    let mut w = Writer::new(create_file(path, true)?, WriterOptions::default())?;
    w.write_meta(&Meta {
        host: "bench".into(),
        start_unix_ns: 1_790_000_000_000_000_000,
        start_mono_ns: 1_000_000_000,
        level: "lifecycle".into(),
        ..Meta::default()
    })?;
    w.write_target(&Target {
        id: 0,
        pid: 4242,
        exe: "/usr/local/bin/synthetic-server".into(),
        go_version: "go1.27.3".into(),
        ..Target::default()
    })?;
    let mut s = Synthetic::new(7, 2, 500.0);
    s.prepare(&mut w, 0);
    let step = (events / 20).max(1);
    for i in 0..events {
        w.push(0, s.next_event())?;
        if (i + 1) % step == 0 {
            eprint!(
                "\r  {:>3}% ({} events, {} MB)",
                (i + 1) * 100 / events,
                i + 1,
                w.bytes_written() >> 20
            );
            std::io::stderr().flush().ok();
        }
    }
    let (summary, _) = w.finish()?;
    eprintln!(
        "\r  done: {} events, {} blocks, {:.1} MB, {:.2} bytes/event, in {:.1}s",
        summary.events,
        summary.blocks,
        summary.bytes as f64 / 1e6,
        summary.bytes as f64 / summary.events as f64,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb / 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .map_or(Ok(50_000_000), |s| s.replace('_', "").parse())?;
    let path = args.next().map_or_else(
        || std::env::temp_dir().join(format!("ganalyze-bench-{events}.gcap")),
        PathBuf::from,
    );
    let reuse = gcap_format::Capture::open(&path)
        .map(|c| c.recovery().complete && c.event_count() == events)
        .unwrap_or(false);
    if !reuse {
        write(&path, events)?;
    } else if std::env::var_os("GANALYZE_BENCH_THREADS").is_none() {
        eprintln!("reusing {}", path.display());
    }
    // Each configuration runs in a fresh process, so none inherits another's heap.
    if let Ok(threads) = std::env::var("GANALYZE_BENCH_THREADS") {
        return measure(&path, threads.parse()?);
    }
    for threads in ["1", "2"] {
        let status = std::process::Command::new(std::env::current_exe()?)
            .arg(events.to_string())
            .arg(&path)
            .env("GANALYZE_BENCH_THREADS", threads)
            .status()?;
        if !status.success() {
            return Err(format!("the {threads}-thread run failed: {status}").into());
        }
    }
    Ok(())
}

fn measure(path: &Path, threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    let set = CaptureSet::open(&[path])?;
    let n = set.event_count();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let t = Instant::now();
    let a = pool.install(|| Analysis::run(&set, &Options::default()));
    let secs = t.elapsed().as_secs_f64();
    let states: usize = a.goroutines.iter().map(|g| g.states.len()).sum();
    println!(
        "threads={threads}: {n} events in {secs:.2}s: {:.2} M events/s, {:.2} M events/s per thread ({} goroutines, {} states, {} spans; peak RSS {} MB)",
        n as f64 / secs / 1e6,
        n as f64 / secs / 1e6 / threads as f64,
        a.goroutines.len(),
        states,
        a.spans.len(),
        peak_rss_mb()
    );
    Ok(())
}
