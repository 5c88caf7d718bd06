//! Goroutine-reconstruction throughput of `ganalyze` on a large synthetic capture.
//!
//! ```text
//! cargo run --release -p ganalyze --example reconstruct_bench -- [EVENTS] [FILE]
//! ```
//! EVENTS defaults to 50,000,000; FILE to $TMPDIR/ganalyze-bench-EVENTS.gcap, which is
//! written once (gcap_format's synthetic goroutine-heavy server stream, seed 7) and reused.
//! The analysis (decode every block, per-goroutine merge, state machines, span correlation)
//! runs on rayon pools of 1 and 2 threads, with every state interval kept (what `report` and
//! `export` need) and with totals only (what `goroutines` and `spans` need); it prints events/s (wall),
//! events per CPU-second (user + system time of the process over the analysis, so page
//! faults count), and the peak resident memory. `GANALYZE_TIMING=1` adds per-phase times.

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

/// User and system CPU seconds of this process so far.
fn cpu_secs() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(ru.ru_utime), s(ru.ru_stime))
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
        let states = std::env::var("GANALYZE_BENCH_STATES").map_or(true, |v| v != "0");
        return measure(&path, threads.parse()?, states);
    }
    for states in ["1", "0"] {
        for threads in ["1", "2"] {
            let status = std::process::Command::new(std::env::current_exe()?)
                .arg(events.to_string())
                .arg(&path)
                .env("GANALYZE_BENCH_THREADS", threads)
                .env("GANALYZE_BENCH_STATES", states)
                .status()?;
            if !status.success() {
                return Err(format!("the {threads}-thread run failed: {status}").into());
            }
        }
    }
    Ok(())
}

fn measure(path: &Path, threads: usize, states: bool) -> Result<(), Box<dyn std::error::Error>> {
    let set = CaptureSet::open(&[path])?;
    let n = set.event_count();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    // Start the pool's threads before the clock does.
    pool.install(|| rayon::broadcast(|_| ()));
    let (u0, s0) = cpu_secs();
    let t = Instant::now();
    let opts = Options {
        keep_states: states,
        ..Options::default()
    };
    let a = pool.install(|| Analysis::run(&set, &opts));
    let secs = t.elapsed().as_secs_f64();
    let (u1, s1) = cpu_secs();
    let (user, sys) = (u1 - u0, s1 - s0);
    let intervals: usize = a.goroutines.iter().map(|g| g.states.len()).sum();
    println!(
        "threads={threads} states={}: {n} events in {secs:.3}s wall, {:.3}s CPU ({user:.3} user + {sys:.3} sys): {:.2} M events/s, {:.2} M events/s per thread, {:.2} M events per CPU-second ({} goroutines, {} states, {} spans; peak RSS {} MB)",
        if states { "kept" } else { "totals only" },
        user + sys,
        n as f64 / secs / 1e6,
        n as f64 / secs / 1e6 / threads as f64,
        n as f64 / (user + sys) / 1e6,
        a.goroutines.len(),
        intervals,
        a.spans.len(),
        peak_rss_mb()
    );
    // The process ends here: freeing the analysis piece by piece would only cost time.
    std::mem::forget(a);
    Ok(())
}
