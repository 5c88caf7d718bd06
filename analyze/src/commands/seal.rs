//! `ganalyze seal FILE -o OUT`: turns a capture gcap did not finish (cut off by a crash, a
//! kill or a full disk, or damaged) into a finished, indexed one whose seal block says it
//! was sealed after the fact. The source is not changed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

pub(crate) fn run(file: &Path, out: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let cap = super::open(file)?;
    if cap.evidence().matches_trailer {
        anyhow::bail!(
            "{} is already finished (intact, with its index and trailer): there is nothing to seal",
            file.display()
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let f = gcap_format::create_file(out, force)?;
    let (_, f) = gcap_format::seal(
        &cap,
        f,
        concat!("ganalyze ", env!("CARGO_PKG_VERSION")),
        now,
    )
    .with_context(|| format!("sealing {} into {}", file.display(), out.display()))?;
    f.sync_all()
        .with_context(|| format!("syncing {} to disk", out.display()))?;
    gcap_format::sync_dir_of(out)?;
    let sealed = gcap_format::Capture::open(out)
        .with_context(|| format!("reading back {}", out.display()))?;
    let s = sealed
        .sealed()
        .context("the sealed file has no seal block")?;
    println!(
        "{}: sealed from {}: {} blocks, {} events kept, {} bytes left out; digest {} (the source's: {})",
        out.display(),
        file.display(),
        s.blocks_kept,
        sealed.event_count(),
        s.bytes_dropped,
        sealed.digest(),
        s.source_digest
    );
    Ok(ExitCode::SUCCESS)
}
