//! `ganalyze spans`: every HTTP and SQL span, tied to goroutines and joined across processes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ganalyze::{table, Options};

use crate::Format;

pub(crate) fn run(files: &[PathBuf], format: Format, limit: usize) -> anyhow::Result<ExitCode> {
    let opts = Options {
        keep_states: false,
        // The spans' goroutine trees are all this needs of the goroutines.
        goroutines: false,
        ..Options::default()
    };
    let (set, a) = super::analyze::analyze(files, opts)?;
    super::list(set, a, |set, a, out| {
        let rows = table::span_rows(set, a);
        match format {
            Format::Json => table::write_json(rows, out)?,
            Format::Csv => table::spans_csv(rows, out)?,
            Format::Text => {
                let rows: Vec<_> = rows.collect();
                write!(out, "{}", table::coverage_notes(set, a))?;
                write!(out, "{}", table::spans_text(&rows, limit))?;
            }
        }
        Ok(())
    })
}
