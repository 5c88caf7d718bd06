//! `ganalyze spans`: every HTTP and SQL span, tied to goroutines and joined across processes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ganalyze::{table, Options};

use crate::Format;

pub fn run(files: &[PathBuf], format: Format, limit: usize) -> anyhow::Result<ExitCode> {
    let opts = Options {
        keep_states: false,
        // The spans' goroutine trees are all this needs of the goroutines.
        goroutines: false,
        ..Options::default()
    };
    let (set, a) = super::analyze::analyze(files, opts)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    match format {
        Format::Json => table::write_spans_json(&set, &a, &mut out)?,
        Format::Csv => table::spans_csv(&table::span_rows(&set, &a), &mut out)?,
        Format::Text => write!(
            out,
            "{}",
            table::spans_text(&table::span_rows(&set, &a), limit)
        )?,
    }
    out.flush()?;
    super::exit_without_freeing(set, a);
    Ok(ExitCode::SUCCESS)
}
