//! One module per subcommand.

pub(crate) mod analyze;
pub(crate) mod export;
pub(crate) mod goroutines;
pub(crate) mod info;
pub(crate) mod report;
pub(crate) mod spans;
pub(crate) mod verify;

use anyhow::Context;
use gcap_format::Capture;
use std::path::Path;

/// Opens a capture and prints the reader's recovery warnings to stderr.
pub(crate) fn open(path: &Path) -> anyhow::Result<Capture> {
    let cap = Capture::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    for w in &cap.recovery().warnings {
        eprintln!("ganalyze: warning: {}: {w}", path.display());
    }
    Ok(cap)
}

/// Ends a command's use of a large analysis without freeing it: the process exits right
/// after, and the kernel takes the memory back at once, while freeing millions of states,
/// maps and names one by one took a good part of a second on large captures.
pub(crate) fn exit_without_freeing(set: ganalyze::CaptureSet, a: ganalyze::Analysis) {
    std::mem::forget(a);
    std::mem::forget(set);
}
