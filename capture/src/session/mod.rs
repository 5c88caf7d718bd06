//! One capture, from attach to the finished file: [`run`] takes the steps in order.
//!
//! It inspects every target and loads one BPF object per binary (`attach.rs`) before
//! creating the file, attaches to the pids and starts the program (`launch.rs`), then runs
//! the capture loop (`drain.rs`): records are translated into format events (`translate/`)
//! and handed to the format writer, which writes a block whenever one fills and everything
//! pending every `flush_interval`, so a killed gcap loses at most that much. It stops on a
//! signal, after the duration, or when every target has exited (`process.rs` watches
//! them), then writes the stats (`stats.rs`), the index and the trailer.
//!
//! The budget rides on the loop (`steer.rs`): it measures what the capture costs
//! (`meter.rs`), finds slow requests (`trigger.rs`), decides which probe groups are attached
//! (`budget.rs`) and attaches, detaches and records the windows (`windows.rs`).

mod attach;
mod budget;
mod drain;
pub(crate) mod host;
mod launch;
mod meter;
pub(crate) mod process;
mod stats;
mod steer;
mod trigger;
mod windows;

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use gcap_format::{create_file, Meta, WriteSummary, Writer, WriterOptions};

use crate::probes::{self, Level, LinkKind, RunStats};
use crate::target::{self, SpanOptions};
use attach::Targets;
pub use budget::Budget;
use drain::Capture;
use launch::Launched;
use meter::Meter;
pub use steer::CostSummary;
use steer::Steer;

/// What to capture and where.
#[derive(Clone, Debug)]
pub struct Options {
    pub output: PathBuf,
    pub force: bool,
    pub pids: Vec<u32>,
    /// Program and arguments to start (exec mode) instead of attaching to pids.
    pub command: Vec<String>,
    pub duration: Option<Duration>,
    pub level: Level,
    /// Ring buffer bytes per target binary (0: the level's default).
    pub ringbuf_bytes: u32,
    /// Longest time events wait in memory before they are written.
    pub flush_interval: Duration,
    /// gcap's own command line, recorded in the capture.
    pub command_line: Vec<String>,
    /// HTTP/SQL spans, query stripping and CPU samples.
    pub spans: SpanOptions,
    /// gcap's whole cost as a share of the targets' CPU, or off (every probe, always).
    pub budget: Budget,
    /// Testing: the windowed groups are attached for the first half of every period of
    /// this length, whatever the budget says.
    pub window_test_period: Option<Duration>,
    /// SLOs whose latency thresholds say which requests are slow (opening windows).
    pub slos: Vec<gcap_slo::Slo>,
}

/// How a capture ended.
#[derive(Debug)]
pub struct Outcome {
    pub summary: WriteSummary,
    pub elapsed: Duration,
    pub lost: u64,
    pub stop_reason: String,
    /// Exit status of the program gcap started (exec mode).
    pub exit_status: Option<ExitStatus>,
    pub warnings: Vec<String>,
    /// Why the capture ended early (disk full, ...): the file holds what came before.
    pub failure: Option<String>,
    /// What the capture cost, against its budget.
    pub cost: CostSummary,
}

/// Runs a whole capture. `stop` is set by the signal handler.
pub fn run(opts: &Options, stop: Arc<AtomicBool>) -> Result<Outcome> {
    host::check_privileges()?;
    let mut warnings = Vec::new();
    // The kernel counts every run of the programs loaded from now on: the cost is measured.
    // With `--budget off` too (as the trap calibration below): nothing is steered then, but
    // the cost is still recorded (`overhead` events) and stated in the summary.
    let stats = match RunStats::enable() {
        Ok(s) => Some(s),
        Err(e) => {
            warnings.push(format!(
                "the kernel's BPF statistics are not available ({e}; they need CAP_SYS_ADMIN): the measured cost leaves out the BPF programs' run time"
            ));
            None
        }
    };
    // Inspect every target before creating the file: a bad pid leaves nothing behind.
    let mut targets = Targets::plan(opts, &mut warnings)?;
    // What one probe hit costs a target's thread: the meter charges every hit with it.
    let trap = probes::calibrate(LinkKind::detect())?;
    let available = targets.available_groups();
    let initial = Steer::initial_groups(opts.budget, available);
    for g in &mut targets.groups {
        g.probes.set_groups(initial)?;
    }

    let file = create_file(&opts.output, opts.force)?;
    let mut w = Writer::new(file, WriterOptions::default())?;
    w.write_meta(&meta(opts))?;

    let mut program = targets.attach(&opts.command)?;
    let attached = host::monotonic_ns();
    for (p, exe) in targets.procs.iter().zip(&targets.exes) {
        let mut rec = target::record(p.id, p.pid, exe, &targets.groups[p.group].prepared);
        rec.attached_mono_ns = attached;
        w.write_target(&rec)?;
    }
    let procs: Vec<(u32, usize)> = targets.procs.iter().map(|p| (p.pid, p.group)).collect();
    let mut steer = Steer::new(
        opts.budget,
        Meter::new(stats, trap, &procs),
        available,
        opts.window_test_period,
        opts.slos.clone(),
    );
    let ids: Vec<u32> = targets.procs.iter().map(|p| p.id).collect();
    steer.start(&mut w, &ids, attached, initial)?;
    // One line when the probes are in place (scripts wait for it before loading a target).
    eprintln!(
        "gcap: capturing {} at level {:?} into {}; Ctrl-C to stop",
        targets.shown(),
        opts.level,
        opts.output.display()
    );
    warnings.extend(targets.missing_probe_warnings());

    let mut cap = Capture::new(
        w,
        targets.groups,
        targets.procs,
        opts.spans.keep_query,
        steer,
    );
    // Snapshot 0 of each process attached to (they come first): its goroutines, including
    // those parked since before the capture, which no probe would show.
    for pi in 0..opts.pids.len() {
        if let Err(e) = cap.snapshot(pi, 0) {
            let pid = cap.procs[pi].pid;
            warnings.push(format!("no goroutine snapshot of pid {pid}: {e:#}"));
        }
    }
    let began = Instant::now();
    let (stop_reason, mut failure) =
        cap.run_until_stop(opts, &stop, began, &mut program, &mut warnings);
    if let Some(p) = program.as_mut() {
        p.reap_exited(cap.procs.last().is_some_and(|p| p.exited));
    }
    // The capture ends now.
    let end_ns = host::monotonic_ns();
    cap.end(end_ns, &mut failure, &mut warnings);
    let stop_reason = match &failure {
        Some(f) => format!("{stop_reason}: {f}"),
        None => stop_reason,
    };

    let exit_status = program.as_ref().and_then(Launched::exit_status);
    let cost = cap.steer.summary(end_ns);
    let (stats, lost) = stats::collect(&cap, end_ns, &stop_reason, exit_status);
    let shown = opts.output.display();
    let summary = cap
        .w
        .write_stats(&stats)
        .and_then(|_| cap.w.finish_durably())
        .and_then(|(summary, _)| {
            // Only once the file and its name are on disk is the summary a promise.
            gcap_format::sync_dir_of(&opts.output)?;
            Ok(summary)
        })
        .with_context(|| {
            format!(
                "{}could not finish {shown}; it holds every block written before (ganalyze reads it, verify reports it unfinished)",
                failure.as_ref().map(|f| format!("{f}; ")).unwrap_or_default()
            )
        })?;
    // A program gcap started and that still runs (stopped by signal or duration) is left
    // running, as in attach mode: the user decides what to do with it.
    drop(program);
    Ok(Outcome {
        summary,
        elapsed: began.elapsed(),
        lost,
        stop_reason,
        exit_status,
        warnings,
        failure,
        cost,
    })
}

/// The capture's `Meta`: the host, gcap, and when the capture starts.
fn meta(opts: &Options) -> Meta {
    let start_mono = host::monotonic_ns();
    Meta {
        host: host::hostname(),
        kernel: host::kernel_release(),
        gcap_version: env!("CARGO_PKG_VERSION").into(),
        command_line: opts.command_line.clone(),
        start_unix_ns: host::unix_ns(),
        start_mono_ns: start_mono,
        level: format!("{:?}", opts.level).to_lowercase(),
        extra: vec![],
    }
}
