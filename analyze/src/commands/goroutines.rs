//! `ganalyze goroutines`: every goroutine's lifecycle, with leak suspects.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ganalyze::{table, LeakParams, Options};

use crate::Format;

pub fn run(
    files: &[PathBuf],
    format: Format,
    limit: usize,
    leak: LeakParams,
) -> anyhow::Result<ExitCode> {
    let opts = Options {
        keep_states: false,
        leak,
        ..Options::default()
    };
    let (set, a) = super::analyze::analyze(files, opts)?;
    let rows = table::goroutine_rows(&set, &a);
    let out = std::io::stdout().lock();
    let mut out = std::io::BufWriter::new(out);
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        Format::Csv => table::goroutines_csv(&rows, &mut out)?,
        Format::Text => {
            let leaks = a.leak_suspects(&set, &leak);
            write!(out, "{}", table::goroutines_text(&rows, &leaks, limit))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
