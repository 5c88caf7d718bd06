//! `ganalyze goroutines`: every goroutine's lifecycle, with leak suspects.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ganalyze::{table, LeakParams, Options};

use crate::Format;

pub(crate) fn run(
    files: &[PathBuf],
    format: Format,
    limit: usize,
    leak: LeakParams,
) -> anyhow::Result<ExitCode> {
    let opts = Options {
        keep_states: false,
        // Nothing here lists spans.
        spans: false,
        leak,
        ..Options::default()
    };
    let (set, a) = super::analyze::analyze(files, opts)?;
    super::list(set, a, |set, a, out| {
        let rows = table::goroutine_rows(set, a);
        match format {
            Format::Json => table::write_json(rows, out)?,
            Format::Csv => table::goroutines_csv(rows, out)?,
            Format::Text => {
                let rows: Vec<_> = rows.collect();
                let leaks = a.leak_suspects(set, &leak);
                write!(out, "{}", table::coverage_notes(set, a))?;
                write!(out, "{}", table::goroutines_text(&rows, &leaks, limit))?;
            }
        }
        Ok(())
    })
}
