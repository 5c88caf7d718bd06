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
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let written = (|| -> anyhow::Result<()> {
        let rows = table::span_rows(&set, &a);
        match format {
            Format::Json => table::write_json(rows, &mut out)?,
            Format::Csv => table::spans_csv(rows, &mut out)?,
            Format::Text => {
                let rows: Vec<_> = rows.collect();
                write!(out, "{}", table::spans_text(&rows, limit))?;
            }
        }
        Ok(out.flush()?)
    })();
    super::exit_without_freeing(set, a);
    // A closed pipe (`| head`) is an error here and a quiet success in `main`.
    written?;
    Ok(ExitCode::SUCCESS)
}
