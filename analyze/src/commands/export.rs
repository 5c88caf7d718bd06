//! `ganalyze export`: Parquet tables, a Chrome/Perfetto trace, or folded stacks + flame graph.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;
use ganalyze::{export, Options};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// Hive-partitioned tables: OUT/service=NAME/capture=STEM/{goroutines,states,spans}.parquet
    Parquet,
    /// A Chrome trace JSON file (open it in Perfetto UI or chrome://tracing).
    Chrome,
    /// Folded stacks (OUT) and a flame graph SVG beside it.
    Folded,
}

pub(crate) fn run(files: &[PathBuf], format: ExportFormat, out: &Path) -> anyhow::Result<ExitCode> {
    let (set, a) = super::analyze::analyze(files, Options::default())?;
    match format {
        ExportFormat::Parquet => {
            let written = export::parquet(&set, &a, out)
                .with_context(|| format!("exporting Parquet tables to {}", out.display()))?;
            eprintln!(
                "ganalyze: wrote {} Parquet files under {} (query them all with e.g. duckdb \"SELECT * FROM read_parquet('{}/**/*.parquet', hive_partitioning=true)\")",
                written.len(),
                out.display(),
                out.display()
            );
        }
        ExportFormat::Chrome => {
            export::chrome(&set, &a, out)
                .with_context(|| format!("exporting a Chrome trace to {}", out.display()))?;
            eprintln!(
                "ganalyze: wrote {} (open it in https://ui.perfetto.dev)",
                out.display()
            );
        }
        ExportFormat::Folded => {
            let svg = export::folded(&set, &a, out)
                .with_context(|| format!("exporting folded stacks to {}", out.display()))?;
            eprintln!(
                "ganalyze: wrote {} and the flame graph {}",
                out.display(),
                svg.display()
            );
        }
    }
    super::exit_without_freeing(set, a);
    Ok(ExitCode::SUCCESS)
}
