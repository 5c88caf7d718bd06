//! Shared by the analysing subcommands: open the set, run the analysis with a progress bar,
//! print warnings.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ganalyze::{Analysis, CaptureSet, Options};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Opens the files as one incident and analyses them. Warnings go to stderr.
pub(crate) fn analyze(
    files: &[PathBuf],
    mut opts: Options,
) -> anyhow::Result<(CaptureSet, Analysis)> {
    let set = CaptureSet::open(files)?;
    for w in &set.warnings {
        eprintln!("ganalyze: warning: {w}");
    }
    let bar = progress(set.event_count(), "reconstructing goroutines");
    if let Some(b) = &bar {
        let b = b.clone();
        opts.progress = Some(Arc::new(move |n| b.inc(n)));
    }
    let a = Analysis::run(&set, &opts);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for w in &a.warnings {
        eprintln!("ganalyze: warning: {w}");
    }
    Ok((set, a))
}

/// A progress bar on stderr that shows itself only when stderr is a terminal and the work
/// has taken more than a second.
#[derive(Clone)]
pub(crate) struct Progress {
    bar: ProgressBar,
    started: Instant,
    shown: Arc<AtomicBool>,
    lock: Arc<Mutex<()>>,
}

impl Progress {
    pub(crate) fn inc(&self, n: u64) {
        self.bar.inc(n);
        if !self.shown.load(Ordering::Relaxed) && self.started.elapsed() > Duration::from_secs(1) {
            let _g = self.lock.lock();
            if !self.shown.swap(true, Ordering::Relaxed) {
                self.bar.set_draw_target(ProgressDrawTarget::stderr());
            }
        }
    }

    pub(crate) fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// A progress bar over `total` units, or None when stderr is not a terminal.
pub(crate) fn progress(total: u64, what: &str) -> Option<Progress> {
    if !std::io::stderr().is_terminal() || total == 0 {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {human_pos}/{human_len} events ({per_sec}, {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    Some(Progress {
        bar,
        started: Instant::now(),
        shown: Arc::new(AtomicBool::new(false)),
        lock: Arc::new(Mutex::new(())),
    })
}
