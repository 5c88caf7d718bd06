//! Phase timings of an analysis, for tuning: with `GANALYZE_TIMING` set, each phase's end
//! (seconds since the analysis started, and resident memory) goes to stderr.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

fn timing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("GANALYZE_TIMING").is_some())
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// When the current analysis started (ns since [`epoch`]), for [`phase_mark`].
static RUN_START: AtomicU64 = AtomicU64::new(0);

/// Marks the start of an analysis: the time [`phase_mark`] counts from.
pub(crate) fn start_run() {
    if timing() {
        RUN_START.store(epoch().elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// With `GANALYZE_TIMING` set, prints when a phase of the current analysis ended (seconds
/// since it started) to stderr.
pub(crate) fn phase_mark(name: &str) {
    if timing() {
        let now = epoch().elapsed().as_nanos() as u64;
        let start = RUN_START.load(Ordering::Relaxed);
        // Resident memory (Linux): most of the kernel's time is faulting in fresh pages.
        let rss = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or_else(String::new, |p| {
                format!(", {} MB resident", (p * 4096) >> 20)
            });
        eprintln!(
            "ganalyze: timing: {name} done at {:.3}s{rss}",
            now.saturating_sub(start) as f64 / 1e9
        );
    }
}
