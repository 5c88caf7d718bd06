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
    after_help = "Examples:\n  ganalyze info capture.gcap\n  ganalyze verify capture.gcap\n  ganalyze info --format json a.gcap b.gcap\n  ganalyze goroutines capture.gcap\n  ganalyze spans --format json frontend.gcap backend.gcap\n  ganalyze export capture.gcap --format chrome -o trace.json"
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
    /// Every goroutine: parent, creation site, start function, time running, runnable, in
    /// syscalls, blocked (by Go wait reason), who woke it; leak suspects.
    Goroutines {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Rows shown in text tables (0: all). JSON and CSV always list everything.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// A goroutine alive at the end is a leak suspect when blocked at least this long ...
        #[arg(long, default_value = "1s", value_parser = commands::analyze::parse_duration)]
        leak_min_blocked: u64,
        /// ... and for at least this fraction of the capture.
        #[arg(long, default_value_t = 0.5)]
        leak_min_fraction: f64,
    },
    /// Every HTTP server, HTTP client and SQL span, with its goroutine, parent span and trace.
    Spans {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Rows shown in text tables (0: all). JSON and CSV always list everything.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Export for other tools: Parquet tables, a Chrome/Perfetto trace, or a flame graph.
    Export {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum)]
        format: commands::export::ExportFormat,
        /// Output: a directory (parquet) or a file (chrome, folded).
        #[arg(short = 'o', long = "output")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { files, format } => commands::info::run(&files, format),
        Command::Verify { files } => commands::verify::run(&files),
        Command::Goroutines {
            files,
            format,
            limit,
            leak_min_blocked,
            leak_min_fraction,
        } => commands::goroutines::run(
            &files,
            format,
            limit,
            ganalyze::LeakParams {
                min_blocked_ns: leak_min_blocked,
                min_fraction: leak_min_fraction,
            },
        ),
        Command::Spans {
            files,
            format,
            limit,
        } => commands::spans::run(&files, format, limit),
        Command::Export { files, format, out } => commands::export::run(&files, format, &out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // `ganalyze ... | head` closes the pipe early: not an error worth a message.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("ganalyze: {e:#}");
            ExitCode::from(2)
        }
    }
}
