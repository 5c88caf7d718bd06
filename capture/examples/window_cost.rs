//! What opening and closing a window costs: the wall time of attaching and of detaching the
//! lifecycle probe group to a loaded Go service, with each kind of uprobe link (one
//! `uprobe_multi` link per program, or one perf-event uprobe per site), and gcap's CPU for it.
//!
//! ```sh
//! cargo build --release -p gcap --examples
//! sudo target/release/examples/window_cost [TOGGLES]      # default 20
//! ```
//! It builds capture/tests/programs/budget and corpus/loadgen (Go 1.27), loads the service
//! (200 requests a second), loads gcap's probes for it with spans attached, then opens and
//! closes the lifecycle group TOGGLES times (100 ms open, 100 ms closed) and prints the median
//! and worst attach times, how long a detach takes to return (the links' closes have started)
//! and until the links are gone (released in the background), and the CPU of this process
//! per toggle. Run as root;
//! results go in docs/BENCHMARKS.md.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gcap::probes::{GroupSet, Level, LinkKind, Probes};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn build(src: &str, name: &str) -> PathBuf {
    let out = std::env::temp_dir().join(name);
    let ok = Command::new(gcap_testenv::go_toolchain(gcap_testenv::newest_go()))
        .args(["build", "-o"])
        .arg(&out)
        .arg(repo().join(src))
        .env("GO111MODULE", "off")
        .status()
        .expect("go build (run scripts/install-deps.sh)")
        .success();
    assert!(ok, "building {src} failed");
    out
}

/// This process's CPU time (user + system), ms.
fn own_cpu_ms() -> f64 {
    // SAFETY: rusage is plain data; getrusage fills it for this process.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid rusage to write.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ms = |tv: libc::timeval| tv.tv_sec as f64 * 1e3 + tv.tv_usec as f64 / 1e3;
    ms(ru.ru_utime) + ms(ru.ru_stime)
}

fn median_max(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[v.len() - 1])
}

fn main() {
    let toggles: usize = std::env::args()
        .nth(1)
        .map_or(20, |s| s.parse().expect("TOGGLES"));
    let service = build(
        "capture/tests/programs/budget/main.go",
        "gcap-budget-service",
    );
    let loadgen = build("corpus/loadgen/main.go", "gcap-loadgen");
    let mut svc = Command::new(&service)
        .args(["-work", "500us"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(svc.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!(
        "http://{}/work",
        line.trim().strip_prefix("listening on ").unwrap()
    );
    let secs = (toggles as f64 * 0.25 * 2.0 + 10.0) as u64;
    let mut load = Command::new(&loadgen)
        .args([
            "-url",
            &url,
            "-c",
            "4",
            "-rate",
            "200",
            "-d",
            &format!("{secs}s"),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let prepared = gcap::target::prepare(&service, Level::Lifecycle, 0).expect("inspecting");
    println!("| links | attach, median | attach, worst | detach returns, median | links gone, median | links gone, worst | gcap CPU per toggle |");
    println!("|---|---|---|---|---|---|---|");
    for kind in [LinkKind::Multi, LinkKind::PerSite] {
        let mut probes = Probes::load_with(prepared.plan.clone(), kind).expect("loading");
        probes.set_groups(GroupSet::SPANS).unwrap();
        probes.attach(svc.id() as i32).expect("attaching");
        let (mut attach, mut detach, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        let cpu = own_cpu_ms();
        for _ in 0..toggles {
            let t = Instant::now();
            probes
                .set_groups(GroupSet::SPANS.union(GroupSet::LIFECYCLE))
                .unwrap();
            attach.push(t.elapsed().as_secs_f64() * 1e3);
            std::thread::sleep(Duration::from_millis(100));
            let t = Instant::now();
            probes.set_groups(GroupSet::SPANS).unwrap();
            detach.push(t.elapsed().as_secs_f64() * 1e3);
            std::thread::sleep(Duration::from_millis(100));
            gone.extend(
                probes
                    .released()
                    .into_iter()
                    .map(|(from, to)| (to - from) as f64 / 1e6),
            );
            probes.drain(usize::MAX, |_| {}).unwrap();
        }
        let cpu = (own_cpu_ms() - cpu) / toggles as f64;
        let (am, ax) = median_max(attach);
        let (dm, _) = median_max(detach);
        let (gm, gx) = median_max(gone);
        println!("| {kind:?} | {am:.1} ms | {ax:.1} ms | {dm:.2} ms | {gm:.1} ms | {gx:.1} ms | {cpu:.1} ms |");
    }
    let _ = load.kill();
    let _ = load.wait();
    let _ = svc.kill();
    let _ = svc.wait();
}
