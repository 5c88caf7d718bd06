//! `ganalyze report`: SLOs, their breaches and root causes, as text, JSON, Markdown or HTML.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;
use ganalyze::{render, report, slo, Options};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    Text,
    Json,
    Markdown,
    Html,
}

/// Parses every `--slo` and the `--slo-file`; the first problem is the error.
pub(crate) fn slos(specs: &[String], file: Option<&Path>) -> anyhow::Result<Vec<slo::Slo>> {
    let mut out = Vec::new();
    for s in specs {
        out.push(slo::parse(s)?);
    }
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the SLO file {}", f.display()))?;
        out.extend(slo::parse_openslo(&f.display().to_string(), &text)?);
    }
    Ok(out)
}

pub(crate) fn run(
    files: &[PathBuf],
    specs: &[String],
    slo_file: Option<&Path>,
    format: ReportFormat,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    // SLOs first: a typo should not cost an analysis.
    let slos = slos(specs, slo_file)?;
    let (set, a) = super::analyze::analyze(files, Options::default())?;
    // An SLO that matches nothing is a mistake, not an objective met.
    slo::require_requests(&slos, &a.spans)?;
    let r = report::build(&set, &a, &slos);
    super::exit_without_freeing(set, a);
    let color =
        out.is_none() && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = match format {
        ReportFormat::Text => render::text::render(&r, color),
        ReportFormat::Json => render::json(&r),
        ReportFormat::Markdown => render::markdown::render(&r),
        ReportFormat::Html => render::html::render(&r),
    };
    match out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes())?;
            o.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
