//! How long a goroutine snapshot takes, and how much it reads, for targets with many parked
//! goroutines.
//!
//! ```sh
//! cargo build --release -p gcap --examples
//! sudo target/release/examples/snapshot_cost [ROUNDS] [N ...]
//! ```
//! It builds capture/tests/programs/snapshot (newest Go) and, for each N (default 5000 and
//! 100000), starts it parking N goroutines, takes ROUNDS snapshots (default 10) with
//! `gcap::snapshot::Process::take`, and prints the median and the worst wall time, the
//! median CPU time of the snapshot (its own thread, user + system: what it costs whatever
//! else runs), the goroutines found, torn reads, bytes read from the target and stack
//! frames. Run as root; results go in docs/BENCHMARKS.md.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gcap::snapshot::Process;

fn build() -> PathBuf {
    let out = std::env::temp_dir().join("gcap-snapshot-cost");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/snapshot/main.go");
    let ok = Command::new(gcap_testenv::go_toolchain(gcap_testenv::newest_go()))
        .args(["build", "-o"])
        .arg(&out)
        .arg(src)
        .env("GO111MODULE", "off")
        .env("CGO_ENABLED", "0")
        .status()
        .expect("go build (run scripts/install-deps.sh)")
        .success();
    assert!(ok, "building the snapshot program failed");
    out
}

/// CPU time of this thread (the snapshot's own cost, whatever else the machine runs).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(10, |a| a.parse().expect("ROUNDS"));
    let mut sizes: Vec<usize> = args.map(|a| a.parse().expect("N")).collect();
    if sizes.is_empty() {
        sizes = vec![5000, 100_000];
    }
    let bin = build();
    println!(
        "{:>8} {:>10} {:>10} {:>10} {:>10} {:>6} {:>10} {:>9}",
        "parked", "median", "worst", "cpu", "found", "torn", "read", "frames"
    );
    for n in sizes {
        let mut target = Command::new(&bin)
            .args(["park", &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(target.stdout.take().unwrap());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 && !line.starts_with("parked ") {
            line.clear();
        }
        let process = Process::open(target.id()).unwrap();
        let mut times: Vec<Duration> = Vec::new();
        let mut cpu: Vec<Duration> = Vec::new();
        let mut last = None;
        for _ in 0..rounds {
            let before = thread_cpu();
            let snap = process.take().unwrap();
            cpu.push(thread_cpu() - before);
            times.push(snap.elapsed);
            last = Some(snap);
        }
        times.sort();
        cpu.sort();
        let snap = last.unwrap();
        let frames: usize = snap.goroutines.iter().map(|g| g.stack.len()).sum();
        println!(
            "{:>8} {:>10.1?} {:>10.1?} {:>10.1?} {:>10} {:>6} {:>8.1}MB {:>9}",
            n,
            times[times.len() / 2],
            times[times.len() - 1],
            cpu[cpu.len() / 2],
            snap.goroutines.len(),
            snap.torn,
            snap.bytes_read as f64 / 1e6,
            frames
        );
        let _ = target.kill();
        let _ = target.wait();
    }
}
