//! `ganalyze`: reads `.gcap` captures and explains what the Go programs in them did.
//!
//! The command line is the contract in CONTRACT.md; each subcommand lives in
//! `commands/<name>.rs` and the analyses it uses in the library (`ganalyze::...`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod commands;

#[derive(Parser)]
#[command(
    name = "ganalyze",
    version,
    about = "Analyse gcap captures of Go programs: goroutines, spans, SLOs and their root causes",
    after_help = "Examples:\n  ganalyze info capture.gcap\n  ganalyze verify capture.gcap\n  ganalyze info --format json a.gcap b.gcap"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output formats of the listing commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Csv,
}

#[derive(Subcommand)]
enum Command {
    /// What was captured: targets, Go versions, time span, event counts, losses, digest.
    Info {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// text for people, json for scripts.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Check integrity: exit 0 when every byte is intact, 1 and where when not.
    Verify {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { files, format } => commands::info::run(&files, format),
        Command::Verify { files } => commands::verify::run(&files),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ganalyze: {e:#}");
            ExitCode::from(2)
        }
    }
}
