//! What gcap costs the target, per probe hit, and what it costs itself at a fixed event rate.
//!
//! ```sh
//! cargo build --release -p gcap && sudo target/release/examples/probe_cost   # or:
//! cargo build --release -p gcap && cargo run --release -p gcap --example probe_cost -- [ROUNDS]
//! ```
//! It builds capture/benches/probebench (Go 1.27) and, for each mode (a runtime operation in a
//! loop) and capture level, alternates runs without and with gcap attached (ROUNDS of each,
//! default 3), and prints medians: ns per operation without and with gcap, probe hits per
//! operation (from the capture's own hit counters) and the cost per hit,
//! (with - without) / hits. Then it runs a fixed event rate and prints gcap's CPU and peak
//! RSS. Run as root; results go in docs/BENCHMARKS.md.
//!
//! ```sh
//! sudo target/release/examples/probe_cost --bpf-stats [ROUNDS]
//! ```
//! instead measures how long each BPF program runs per hit (the kernel's own accounting,
//! `kernel.bpf_stats_enabled=1` for the duration, read with libbpf's program query): the
//! lifecycle modes at `--level lifecycle` and syscalls at `--level full`, ROUNDS runs each
//! (default 3), medians. The rest of a hit's cost is the uprobe trap itself (~0.7 µs at an
//! emulated site: docs/BENCHMARKS.md, the table of one uprobe hit at each kind of site).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn build() -> PathBuf {
    let out = std::env::temp_dir().join("gcap-probebench");
    let ok = Command::new(gcap_testenv::go_toolchain(gcap_testenv::newest_go()))
        .args(["build", "-o"])
        .arg(&out)
        .arg(repo().join("capture/benches/probebench/main.go"))
        .env("GO111MODULE", "off")
        .status()
        .expect("go build (run scripts/install-deps.sh)")
        .success();
    assert!(ok, "building probebench failed");
    out
}

fn ns_per_op(json: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("probebench JSON");
    v["ns_per_op"].as_f64().unwrap()
}

fn baseline(pb: &Path, args: &[&str]) -> f64 {
    let out = Command::new(pb).args(args).output().unwrap();
    ns_per_op(&String::from_utf8_lossy(&out.stdout))
}

struct Traced {
    ns_per_op: f64,
    ops: u64,
    hits: u64,
    events: u64,
    gcap_cpu_s: f64,
    gcap_maxrss_kib: i64,
}

/// Starts probebench `args` + `flags` (it waits for a line on stdin before its loop) and
/// gcap attached to it at `level`; returns once gcap says its probes are in place, with gcap's
/// stderr, which the caller keeps open until gcap exited (gcap's summary goes there).
fn attached(
    gcap: &Path,
    pb: &Path,
    args: &[&str],
    flags: &[&str],
    level: &str,
) -> (PathBuf, Child, Child, BufReader<ChildStderr>) {
    let file = std::env::temp_dir().join("gcap-probe-cost.gcap");
    let _ = std::fs::remove_file(&file);
    let target = Command::new(pb)
        .args(args)
        .args(flags)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut g = Command::new(gcap)
        .arg("-o")
        .arg(&file)
        // Every hit, whatever it costs: the point is to measure it.
        .args([
            "--budget",
            "off",
            "--level",
            level,
            "-p",
            &target.id().to_string(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(g.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("capturing") {
        line.clear();
    }
    (file, target, g, err)
}

/// Runs probebench with -wait, attaches gcap at `level`, releases it, and collects numbers.
// gcap is reaped with wait4 (not Child::wait) to read its CPU time and peak RSS.
#[allow(clippy::zombie_processes)]
fn traced(gcap: &Path, pb: &Path, args: &[&str], level: &str) -> Traced {
    let (file, mut target, g, _stderr) = attached(gcap, pb, args, &["-wait"], level);
    target.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = target.wait_with_output().unwrap();
    let mut status = 0;
    // SAFETY: plain-data rusage filled by wait4 for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: g is our child; pointers are valid for the call.
    unsafe { libc::wait4(g.id() as i32, &mut status, 0, &mut ru) };
    let cap = gcap_format::Capture::open(&file).expect("capture");
    let hits = cap
        .stats()
        .map_or(0, |s| s.probes.iter().map(|p| p.hits).sum());
    let json: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let cpu = ru.ru_utime.tv_sec as f64
        + ru.ru_utime.tv_usec as f64 / 1e6
        + ru.ru_stime.tv_sec as f64
        + ru.ru_stime.tv_usec as f64 / 1e6;
    Traced {
        ns_per_op: json["ns_per_op"].as_f64().unwrap(),
        ops: json["n"].as_u64().unwrap(),
        hits,
        events: cap.event_count(),
        gcap_cpu_s: cpu,
        gcap_maxrss_kib: ru.ru_maxrss,
    }
}

/// Run counts and run time of BPF programs, by program id (libbpf's program query; run_time_ns
/// and run_cnt count while kernel.bpf_stats_enabled is 1).
fn bpf_progs() -> std::collections::HashMap<u64, (String, u64, u64)> {
    libbpf_rs::query::ProgInfoIter::default()
        .map(|p| {
            (
                p.id as u64,
                (
                    p.name.to_string_lossy().into_owned(),
                    p.run_cnt,
                    p.run_time_ns,
                ),
            )
        })
        .collect()
}

/// Runs probebench `args` under gcap at `level` and returns, per BPF program gcap loaded,
/// (runs, total run time in ns), read while the programs are still attached.
fn traced_bpf_stats(
    gcap: &Path,
    pb: &Path,
    args: &[&str],
    level: &str,
) -> std::collections::BTreeMap<String, (u64, u64)> {
    let before = bpf_progs();
    let (_file, mut target, mut g, _stderr) = attached(gcap, pb, args, &["-wait", "-hold"], level);
    let mut stdin = target.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    // The loop is over when probebench prints its result; it then holds until told to exit.
    let mut result = String::new();
    BufReader::new(target.stdout.take().unwrap())
        .read_line(&mut result)
        .unwrap();
    let after = bpf_progs();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    target.wait().unwrap();
    g.wait().unwrap();
    after
        .into_iter()
        .filter(|(id, _)| !before.contains_key(id))
        .map(|(_, (name, cnt, ns))| (name, (cnt, ns)))
        .collect()
}

/// `--bpf-stats`: BPF program time per hit, per program and mode.
fn bpf_stats(gcap: &Path, pb: &Path, rounds: usize) {
    const KNOB: &str = "/proc/sys/kernel/bpf_stats_enabled";
    let was = std::fs::read_to_string(KNOB).unwrap_or_else(|_| "0".into());
    std::fs::write(KNOB, "1").expect("enabling kernel.bpf_stats_enabled (run as root)");
    println!(
        "| program | mode (level) | runs per op | BPF ns per run (median of {rounds}) | runs |"
    );
    println!("|---|---|---|---|---|");
    let runs = [
        ("gosched", "lifecycle"),
        ("chan", "lifecycle"),
        ("spawn", "lifecycle"),
        ("mutex", "lifecycle"),
        ("syscall", "full"),
    ];
    for (mode, level) in runs {
        let n = 200_000u64;
        let mut per: std::collections::BTreeMap<String, Vec<(u64, u64)>> = Default::default();
        for _ in 0..rounds {
            let args = ["-mode", mode, "-n", &n.to_string()];
            for (name, v) in traced_bpf_stats(gcap, pb, &args, level) {
                per.entry(name).or_default().push(v);
            }
        }
        for (name, v) in per {
            let cnt = median(v.iter().map(|&(c, _)| c as f64).collect());
            // Programs that ran a handful of times (process exit, a stray GC) say nothing.
            if cnt < 1000.0 {
                continue;
            }
            let ns = median(v.iter().map(|&(c, t)| t as f64 / c.max(1) as f64).collect());
            println!(
                "| {name} | {mode} ({level}) | {:.2} | {ns:.0} | {cnt:.0} |",
                cnt / n as f64
            );
        }
    }
    let _ = std::fs::write(KNOB, was.trim());
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let stats = args.first().is_some_and(|a| a == "--bpf-stats");
    if stats {
        args.remove(0);
    }
    let rounds: usize = args.first().map_or(3, |s| s.parse().unwrap());
    let gcap = repo().join("target/release/gcap");
    assert!(
        gcap.exists(),
        "build gcap first: cargo build --release -p gcap"
    );
    let pb = build();
    if stats {
        bpf_stats(&gcap, &pb, rounds);
        return;
    }
    println!("| mode | level | ns/op without | ns/op with | ratio | probe hits/op | ns per hit |");
    println!("|---|---|---|---|---|---|---|");
    for mode in ["gosched", "chan", "spawn", "mutex", "syscall"] {
        for level in ["spans", "lifecycle", "full"] {
            let args = ["-mode", mode, "-n", "200000"];
            let (mut base, mut with, mut hits) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                base.push(baseline(&pb, &args));
                let t = traced(&gcap, &pb, &args, level);
                with.push(t.ns_per_op);
                hits.push(t.hits as f64 / t.ops as f64);
            }
            let (b, w, h) = (median(base), median(with), median(hits));
            let per_hit = if h > 0.01 {
                format!("{:.0}", (w - b) / h)
            } else {
                "-".into()
            };
            println!(
                "| {mode} | {level} | {b:.0} | {w:.0} | {:.2} | {h:.2} | {per_hit} |",
                w / b
            );
        }
    }
    println!();
    println!("| fixed rate | level | events/s | gcap CPU % of one core | gcap CPU µs/event | gcap peak RSS |");
    println!("|---|---|---|---|---|---|");
    for level in ["lifecycle", "full"] {
        let secs = 10;
        let t = traced(
            &gcap,
            &pb,
            &["-rate", "20000", "-secs", &secs.to_string()],
            level,
        );
        let eps = t.events as f64 / secs as f64;
        println!(
            "| 20k chan round trips/s | {level} | {eps:.0} | {:.1} | {:.2} | {} MiB |",
            100.0 * t.gcap_cpu_s / secs as f64,
            1e6 * t.gcap_cpu_s / t.events.max(1) as f64,
            t.gcap_maxrss_kib / 1024
        );
    }
}
