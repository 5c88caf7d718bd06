//! `ganalyze spans`: every HTTP and SQL span, tied to goroutines and joined across processes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ganalyze::{table, Options};

use crate::Format;

pub fn run(files: &[PathBuf], format: Format, limit: usize) -> anyhow::Result<ExitCode> {
    let opts = Options {
        keep_states: false,
        ..Options::default()
    };
    let (set, a) = super::analyze::analyze(files, opts)?;
    let rows = table::span_rows(&set, &a);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        Format::Csv => table::spans_csv(&rows, &mut out)?,
        Format::Text => write!(out, "{}", table::spans_text(&rows, limit))?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
