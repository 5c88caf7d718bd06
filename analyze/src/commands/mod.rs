//! One module per subcommand.

pub(crate) mod analyze;
pub(crate) mod export;
pub(crate) mod goroutines;
pub(crate) mod info;
pub(crate) mod report;
pub(crate) mod seal;
pub(crate) mod spans;
pub(crate) mod verify;

use std::io::{BufWriter, StdoutLock, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use ganalyze::{Analysis, CaptureSet};
use gcap_format::Capture;

/// Opens a capture and prints the reader's recovery warnings to stderr.
pub(crate) fn open(path: &Path) -> anyhow::Result<Capture> {
    let cap = Capture::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    for w in &cap.recovery().warnings {
        eprintln!("ganalyze: warning: {}: {w}", path.display());
    }
    Ok(cap)
}

/// Writes a listing of the analysis to stdout (buffered), then ends the analysis' use.
pub(crate) fn list(
    set: CaptureSet,
    a: Analysis,
    write: impl FnOnce(
        &CaptureSet,
        &Analysis,
        &mut BufWriter<StdoutLock<'static>>,
    ) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let written = write(&set, &a, &mut out).and_then(|()| Ok(out.flush()?));
    exit_without_freeing(set, a);
    // A closed pipe (`| head`) is an error here and a quiet success in `main`.
    written?;
    Ok(ExitCode::SUCCESS)
}

/// Ends a command's use of a large analysis without freeing it: the process exits right
/// after, and the kernel takes the memory back at once, while freeing millions of states,
/// maps and names one by one took a good part of a second on large captures.
pub(crate) fn exit_without_freeing(set: CaptureSet, a: Analysis) {
    std::mem::forget(a);
    std::mem::forget(set);
}
