//! `ganalyze`: reads `.gcap` captures and explains what the Go programs in them did.
//!
//! The command line is the project contract (kept with the issues, not in this repository;
//! README.md shows every command); each subcommand lives in `commands/<name>.rs` and the
//! analyses it uses in the library (`ganalyze::...`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod commands;

#[derive(Parser)]
#[command(
    name = "ganalyze",
    version,
    about = "Analyse gcap captures of Go programs: goroutines, spans, SLOs and their root causes",
    after_help = "Examples:\n  ganalyze info capture.gcap\n  ganalyze verify capture.gcap\n  ganalyze info --format json a.gcap b.gcap\n  ganalyze goroutines capture.gcap\n  ganalyze spans --format json frontend.gcap backend.gcap\n  ganalyze seal cut.gcap -o sealed.gcap\n  ganalyze export capture.gcap --format chrome -o trace.json\n  ganalyze report capture.gcap --slo \"GET /api/orders: p99 < 200ms\"\n  ganalyze report a.gcap b.gcap --slo-file slos.yaml --format html -o report.html"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output formats of the listing commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
    Csv,
}

/// What the listing commands (goroutines, spans) share.
#[derive(Args)]
struct Listing {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Rows shown in text tables (0: all). JSON and CSV always list everything.
    #[arg(long, default_value_t = 50)]
    limit: usize,
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
        #[command(flatten)]
        listing: Listing,
        /// A goroutine alive at the end is stuck when blocked at least this long ...
        #[arg(long, default_value = "1s", value_parser = ganalyze::units::parse_duration)]
        leak_min_blocked: u64,
        /// ... and for at least this fraction of the capture.
        #[arg(long, default_value_t = 0.5)]
        leak_min_fraction: f64,
        /// Stuck goroutines from one creation site, blocked at one place, are leak suspects
        /// when at least this many arrived during the capture after the first (0: every
        /// group of stuck goroutines) ...
        #[arg(long, default_value_t = ganalyze::LeakParams::default().min_growth)]
        leak_min_growth: u64,
        /// ... or when there are at least this many of them.
        #[arg(long, default_value_t = ganalyze::LeakParams::default().min_pile)]
        leak_min_pile: u64,
    },
    /// Every HTTP server, HTTP client and SQL span, with its goroutine, parent span and trace.
    Spans {
        #[command(flatten)]
        listing: Listing,
    },
    /// SLOs over the captured requests and the root causes of their breaches: for each slow
    /// request, its critical path (what it waited for, following wake-ups into the
    /// goroutines it waited on and calls into captured downstream services), ranked by the
    /// share of the excess latency over the requests that met the objective.
    #[command(
        after_help = "SLO specs (--slo, repeatable):\n  \"GET /api/orders: p99 < 200ms\"          the 99th percentile below 200ms\n  \"GET /api/*: 99% < 300ms, errors < 1%\"   99% of requests faster than 300ms, under 1% errors\n  \"*: p99.9 < 1s\"                          every endpoint\nDurations: ns, us, ms, s, m. --slo-file takes OpenSLO v1 YAML (kind: SLO with a\nthresholdMetric or ratioMetric whose metricSource has type gcap/ganalyze and names the\nendpoint; objectives with op/value/target); see README.md."
    )]
    Report {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// An objective, "ENDPOINT: OBJECTIVE" (repeatable).
        #[arg(long = "slo", value_name = "SPEC")]
        slo: Vec<String>,
        /// OpenSLO v1 YAML file with more objectives.
        #[arg(long = "slo-file", value_name = "FILE")]
        slo_file: Option<PathBuf>,
        /// text (for a terminal), json (the contract), markdown (tickets), html (one file).
        #[arg(long, value_enum, default_value = "text")]
        format: commands::report::ReportFormat,
        /// Write here instead of stdout.
        #[arg(short = 'o', long = "output")]
        out: Option<PathBuf>,
    },
    /// Finish a capture gcap did not (cut off or damaged): its intact blocks, copied byte for
    /// byte, then a seal block saying it was sealed after the fact, an index and a trailer.
    Seal {
        file: PathBuf,
        /// The sealed capture (created with mode 0600; never overwritten without --force).
        #[arg(short = 'o', long = "output")]
        out: PathBuf,
        /// Overwrite OUT if it exists.
        #[arg(long)]
        force: bool,
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
            listing: l,
            leak_min_blocked,
            leak_min_fraction,
            leak_min_growth,
            leak_min_pile,
        } => commands::goroutines::run(
            &l.files,
            l.format,
            l.limit,
            ganalyze::LeakParams {
                min_blocked_ns: leak_min_blocked,
                min_fraction: leak_min_fraction,
                min_growth: leak_min_growth,
                min_pile: leak_min_pile,
            },
        ),
        Command::Spans { listing: l } => commands::spans::run(&l.files, l.format, l.limit),
        Command::Report {
            files,
            slo,
            slo_file,
            format,
            out,
        } => commands::report::run(&files, &slo, slo_file.as_deref(), format, out.as_deref()),
        Command::Export { files, format, out } => commands::export::run(&files, format, &out),
        Command::Seal { file, out, force } => commands::seal::run(&file, &out, force),
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
            eprintln!("ganalyze: {}", gcap_format::one_line(e.as_ref()));
            ExitCode::from(2)
        }
    }
}
