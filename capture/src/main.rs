//! `gcap`: capture goroutine lifecycles and spans from running Go programs into a `.gcap`
//! file (see `ganalyze` to read it). The command line is the project contract.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use gcap::probes::Level;
use gcap::session::{self, Budget, CostSummary, Options};
use gcap_format::EventKind;

#[derive(Parser, Debug)]
#[command(
    name = "gcap",
    version,
    about = "Capture goroutine lifecycles, wait reasons, wakers and spans from running Go programs (eBPF; needs root)",
    long_about = "Capture goroutine lifecycles, wait reasons, wakers and spans from running Go programs \
into a .gcap file, with no change to the target. gcap attaches eBPF uprobes to the Go runtime \
(after each function's stack check, never uretprobes) and kernel tracepoints, drains them on a \
timer and writes compressed, hash-chained blocks, so a capture cut short keeps every complete \
block. Analyse the file anywhere with `ganalyze`.",
    after_help = "Examples:\n  \
sudo gcap -o incident.gcap -p 4242 -d 30s          attach to a running service for 30 s\n  \
sudo gcap -o a.gcap -p 4242 -p 4343                two processes, until Ctrl-C\n  \
sudo gcap -o run.gcap -- ./server -addr :8080       start a program and capture all of its life\n  \
sudo gcap -o deep.gcap --level full -p 4242 -d 5s   add syscalls, kernel scheduling, deeper stacks\n\n\
Stops on Ctrl-C / SIGTERM, after --duration, or when every target has exited; then prints one summary line."
)]
struct Cli {
    /// Capture file to write (created with mode 0600; never overwritten without --force).
    /// Example: -o incident.gcap
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,

    /// Attach to this running Go process; repeat for several. Example: -p 4242 -p 4343
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pids: Vec<u32>,

    /// Stop after this long (e.g. 500ms, 10s, 2m, 1h). Default: until Ctrl-C or the targets exit.
    #[arg(short = 'd', long = "duration", value_name = "DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,

    /// What to record: `spans` (cheapest), `lifecycle` (default: everything `ganalyze report`
    /// needs), `full` (+ syscalls, kernel scheduling, 127-frame stacks). Example: --level full
    #[arg(long, value_enum, default_value = "lifecycle")]
    level: LevelArg,

    /// Overwrite FILE if it exists (never through a symlink).
    #[arg(long)]
    force: bool,

    /// Ring buffer size per target binary in MiB, a power of two (default: 8, 32 at --level full).
    /// Larger buffers lose fewer events in bursts. Example: --ring-mib 64
    #[arg(long, value_name = "MIB")]
    ring_mib: Option<u32>,

    /// Write buffered events at least this often, bounding what a killed gcap can lose.
    /// Example: --flush 500ms
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    flush: Duration,

    /// Capture net/http server and client spans (default on; --no-http to turn off).
    #[arg(long, overrides_with = "no_http")]
    http: bool,
    /// Do not capture net/http spans.
    #[arg(long, overrides_with = "http")]
    no_http: bool,
    /// Capture database/sql query spans (default on; --no-sql to turn off).
    #[arg(long, overrides_with = "no_sql")]
    sql: bool,
    /// Do not capture database/sql spans.
    #[arg(long, overrides_with = "sql")]
    no_sql: bool,
    /// Record URL query strings and SQL literals (off by default: they may hold personal data).
    #[arg(long)]
    keep_query: bool,

    /// Record CPU samples (thread, goroutine, user stack) at every level; on by default at
    /// --level full. Example: --cpu-samples --sample-hz 199
    #[arg(long, overrides_with = "no_cpu_samples")]
    cpu_samples: bool,
    /// Do not record CPU samples (not even at --level full).
    #[arg(long, overrides_with = "cpu_samples")]
    no_cpu_samples: bool,
    /// CPU sampling frequency per CPU, in Hz (when CPU samples are on).
    #[arg(long, value_name = "HZ", default_value = "99", value_parser = clap::value_parser!(u32).range(1..=10000))]
    sample_hz: u32,

    /// Keep gcap's whole cost (probe traps and BPF time in the targets' threads, plus gcap's
    /// own CPU) within PCT percent of the targets' CPU, measured as it runs; `off` records
    /// every transition for the whole capture. Within the budget, spans stay on whenever they
    /// fit (else they are windowed too, with a warning); goroutine lifecycles (and at --level
    /// full syscalls, kernel scheduling and CPU samples) are recorded in windows of 200 ms,
    /// as often as the budget pays for. Slow requests (see --slo) open a window at once, even
    /// with the budget spent: triggered windows overdraw at most 10 s of budget (each spends
    /// half of what is left, so later slow spells find some), repaid before the next window,
    /// and stay open at most 5 s in any minute. A capture of T seconds thus costs at most the
    /// budget over T + 10 s, plus the second spans take to be priced. The budget is never
    /// less than 5 ms of CPU a second (gcap's own polling costs ~1.6 ms a second): a target
    /// using under a quarter of a CPU gets that floor.
    /// Example: --budget 5, --budget off
    #[arg(long, value_name = "PCT|off", default_value = "2")]
    budget: Budget,

    /// With a budget, requests to ENDPOINT slower than the objective's threshold are slow:
    /// they open a window at once (without one: when at least 5% of an endpoint's requests
    /// of the last second take over twice the p99 of its requests of the 10 s before: a
    /// slowdown, never a service slow all along). Same syntax as `ganalyze report
    /// --slo`; repeatable.
    /// Example: --slo "GET /api/orders: p99 < 200ms"
    #[arg(long = "slo", value_name = "ENDPOINT: OBJECTIVE", value_parser = gcap_slo::parse)]
    slos: Vec<gcap_slo::Slo>,

    /// SLOs from an OpenSLO v1 YAML file, as `ganalyze report --slo-file` reads it (see
    /// --slo). Example: --slo-file slos.yaml
    #[arg(long, value_name = "FILE", value_parser = parse_slo_file)]
    slo_file: Option<SloFile>,

    /// Testing: attach the windowed probes for the first half of every period of this length,
    /// whatever the budget says.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, hide = true)]
    window_test_period: Option<Duration>,

    /// Program to start and capture, with its arguments (after `--`). Example: -- ./server -addr :8080
    #[arg(last = true, value_name = "PROGRAM [ARGS]")]
    command: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LevelArg {
    Spans,
    Lifecycle,
    Full,
}

/// The SLOs of an OpenSLO file.
#[derive(Clone, Debug)]
struct SloFile(Vec<gcap_slo::Slo>);

fn parse_slo_file(path: &str) -> Result<SloFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    gcap_slo::parse_openslo(path, &text)
        .map(SloFile)
        .map_err(|e| e.to_string())
}

/// Parses `500ms`, `10s`, `2m`, `1h` (any duration humantime reads, e.g. `1m30s`), or a
/// bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let secs: f64 = s.parse().map_err(|_| not_a_duration(s))?;
        Duration::try_from_secs_f64(secs).map_err(|_| not_a_duration(s))?
    } else {
        // humantime wants a digit before the point: ".5s" is "0.5s".
        let digits_first = if s.starts_with('.') {
            format!("0{s}")
        } else {
            s.to_string()
        };
        humantime::parse_duration(&digits_first).map_err(|e| match e {
            humantime::DurationError::UnknownUnit { unit, .. } if !unit.is_empty() => {
                format!("unknown unit {unit:?} in {s:?}: use ms, s, m or h")
            }
            _ => not_a_duration(s),
        })?
    };
    if d.is_zero() || d.as_secs_f64() >= 1e9 {
        return Err(format!("{s:?} must be a positive duration"));
    }
    Ok(d)
}

fn not_a_duration(s: &str) -> String {
    format!("{s:?} is not a duration: use e.g. 500ms, 10s, 2m or 1h")
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// "cost 1.8% of the targets' CPU (budget 2%: lifecycle in 9 windows, 1.5% of the time)".
fn cost_line(c: &CostSummary) -> String {
    let pct = |x: f64| {
        let p = x * 100.0;
        if p >= 10.0 || p == p.round() {
            format!("{p:.0}%")
        } else {
            format!("{p:.1}%")
        }
    };
    let cost = format!("cost {} of the targets' CPU", pct(c.ratio));
    match c.budget {
        Budget::Off => format!("{cost} (no budget)"),
        Budget::Share(b) => format!(
            "{cost} (budget {}{}: lifecycle in {} window{}, {} of the time)",
            pct(b),
            c.floor.map_or(String::new(), |f| format!(
                ", {} with its floor of 5 ms of CPU a second",
                pct(f)
            )),
            c.lifecycle_windows,
            if c.lifecycle_windows == 1 { "" } else { "s" },
            pct(c.lifecycle_share)
        ),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gcap: {}", gcap_format::one_line(e.as_ref()));
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.pids.is_empty() && cli.command.is_empty() {
        anyhow::bail!(
            "nothing to capture: give -p PID (repeatable) or -- PROGRAM [ARGS] (see gcap --help)"
        );
    }
    if !cli.pids.is_empty() && !cli.command.is_empty() {
        anyhow::bail!("give either -p PID or -- PROGRAM, not both");
    }
    let ringbuf_bytes = match cli.ring_mib {
        None => 0,
        Some(m) if m.is_power_of_two() && m <= 1024 => m << 20,
        Some(m) => anyhow::bail!("--ring-mib {m}: must be a power of two between 1 and 1024"),
    };
    let level = match cli.level {
        LevelArg::Spans => Level::Spans,
        LevelArg::Lifecycle => Level::Lifecycle,
        LevelArg::Full => Level::Full,
    };
    let samples = !cli.no_cpu_samples && (cli.cpu_samples || level == Level::Full);
    let spans = gcap::target::SpanOptions {
        http: !cli.no_http,
        sql: !cli.no_sql,
        keep_query: cli.keep_query,
        cpu_sample_hz: if samples { cli.sample_hz } else { 0 },
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let opts = Options {
        output: cli.output.clone(),
        force: cli.force,
        pids: cli.pids,
        command: cli.command,
        duration: cli.duration,
        level,
        ringbuf_bytes,
        flush_interval: cli.flush,
        command_line: std::env::args().collect(),
        spans,
        budget: cli.budget,
        window_test_period: cli.window_test_period,
        slos: cli
            .slos
            .into_iter()
            .chain(cli.slo_file.into_iter().flat_map(|f| f.0))
            .collect(),
    };
    // The capture runs on its own thread; this one only waits (signals set `stop`).
    let worker = std::thread::Builder::new()
        .name("gcap-capture".into())
        .spawn(move || session::run(&opts, stop))?;
    let out = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the capture thread panicked"))??;
    for w in &out.warnings {
        eprintln!("gcap: warning: {w}");
    }
    let s = &out.summary;
    let kinds: Vec<String> = s
        .events_by_kind
        .iter()
        .map(|(k, n)| {
            let name = EventKind::from_u8(*k).map_or("unknown", |k| k.name());
            format!("{name} {n}")
        })
        .collect();
    let per_event = if s.events > 0 {
        s.bytes as f64 / s.events as f64
    } else {
        0.0
    };
    eprintln!(
        "gcap: {:.1}s, {} events ({}), {} lost, {} written to {} ({:.2} B/event), stopped: {}{}; {}; digest {}",
        out.elapsed.as_secs_f64(),
        s.events,
        if kinds.is_empty() {
            "none".into()
        } else {
            kinds.join(", ")
        },
        out.lost,
        human_bytes(s.bytes),
        cli.output.display(),
        per_event,
        out.stop_reason,
        out.exit_status
            .map(|st| format!("; program {st}"))
            .unwrap_or_default(),
        cost_line(&out.cost),
        s.digest
    );
    if let Some(f) = &out.failure {
        eprintln!(
            "gcap: the capture stopped early: {f}; {} is complete up to that point",
            cli.output.display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration(".5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn cli_parses() {
        Cli::command().debug_assert();
    }
    use clap::CommandFactory;
}
