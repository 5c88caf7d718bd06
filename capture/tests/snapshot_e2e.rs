//! Goroutine snapshots of REAL Go programs, read while they run (as root).
//!
//! - 5,000 goroutines parked on a channel before the snapshot are all found, with their
//!   start function, creation site (the line runtime.Stack prints), wait reason, wait time,
//!   parent and parked stack, on Go 1.19, 1.21 and 1.27, stripped and PIE.
//! - `gcap -p PID` records them as snapshot 0 in the capture file, and at gcap's defaults
//!   `ganalyze` lists all 5,000 with their start function and calls them one leak suspect
//!   with their creation site and count.
//! - A program that creates and ends goroutines without pause, snapshotted 200 times,
//!   never crashes; torn reads are counted and no goroutine returned has impossible fields.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use gcap::snapshot::{Description, Limits, Process, Truncation, LIVE_STATUSES};
use gcap_format::{Capture, EventData};

mod support;

const PARKED: usize = 5000;
const SOURCE: &str = "tests/programs/snapshot/main.go";

fn build(version: &str, flags: &[&str]) -> PathBuf {
    let flavor = match flags {
        [] => "plain".to_string(),
        f => f.join("").replace(['-', '=', ' '], ""),
    };
    support::go_build(
        &support::manifest(SOURCE),
        version,
        flags,
        &format!("snapshot-{version}-{flavor}"),
    )
}

/// The line of the Go source containing `needle`.
fn line_of(needle: &str) -> u32 {
    let src = std::fs::read_to_string(support::manifest(SOURCE)).unwrap();
    src.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u32 + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in {SOURCE}"))
}

/// A running target; killed when dropped.
struct Target {
    child: Child,
    stdin: Option<ChildStdin>,
    /// What it printed before it was ready.
    said: String,
}

impl Target {
    fn start(bin: &Path, args: &[&str], ready: &str) -> Target {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut said = String::new();
        if !ready.is_empty() {
            let mut out = BufReader::new(child.stdout.take().unwrap());
            loop {
                let mut line = String::new();
                assert_ne!(
                    out.read_line(&mut line).unwrap(),
                    0,
                    "target exited: {said}"
                );
                said.push_str(&line);
                if line.starts_with(ready) {
                    break;
                }
            }
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        }
        Target { child, stdin, said }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the target finish (closes its stdin) and returns its exit status.
    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < until, "target did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Function names of a described goroutine's stack, innermost first.
fn functions(d: &Description) -> Vec<String> {
    d.stack.iter().map(|f| f.function.clone()).collect()
}

fn name(f: &Option<gcap::inspect::Frame>) -> (String, u32) {
    f.as_ref()
        .map_or_else(Default::default, |f| (f.function.clone(), f.line))
}

/// The "created by" line number runtime.Stack printed for one parked goroutine.
fn printed_creation_line(said: &str) -> u32 {
    let after = said
        .split("created by main.spawn")
        .nth(1)
        .unwrap_or_else(|| panic!("no creation in {said}"));
    let at = after.find("main.go:").unwrap() + "main.go:".len();
    after[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// What runtime.Stack printed of one parked goroutine: its goid, the text in brackets
/// ("chan receive") and the functions of its stack.
fn printed_goroutine(said: &str) -> (u64, String, Vec<String>) {
    let block = said
        .split("one:\n")
        .nth(1)
        .expect("the program's runtime.Stack output");
    let header = block.lines().next().unwrap();
    // "goroutine 18 [chan receive]:"
    let goid = header.split(' ').nth(1).unwrap().parse().unwrap();
    let state = header[header.find('[').unwrap() + 1..header.find(']').unwrap()].to_string();
    let functions = block
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("created by"))
        .filter(|l| !l.starts_with('\t'))
        .map(|l| l[..l.rfind('(').unwrap()].to_string())
        .collect();
    (goid, state, functions)
}

fn parked_case(version: &str, flags: &[&str]) {
    let bin = build(version, flags);
    let target = Target::start(&bin, &["park", &PARKED.to_string()], "parked ");
    let started = Instant::now();
    let process = Process::open(target.pid()).unwrap();
    let snap = process.take().unwrap();
    let what = format!("go{version} {flags:?}");
    let minor: u32 = version.split('.').nth(1).unwrap().parse().unwrap();

    let creation_line = line_of("// creation site");
    assert_eq!(
        printed_creation_line(&target.said),
        creation_line,
        "{what}: runtime.Stack and the source disagree"
    );
    let workers: Vec<_> = snap
        .goroutines
        .iter()
        .map(|g| (g, process.describe(g)))
        .filter(|(_, d)| name(&d.start).0 == "main.parkedWorker")
        .collect();
    assert_eq!(
        workers.len(),
        PARKED,
        "{what}: {} goroutines in all, torn {}",
        snap.goroutines.len(),
        snap.torn
    );
    assert!(
        snap.torn <= 5,
        "{what}: {} torn in a quiet program",
        snap.torn
    );
    // The goroutine the program printed, as it printed it.
    let (goid, state, printed) = printed_goroutine(&target.said);
    let (_, d) = workers
        .iter()
        .find(|(g, _)| g.goid == goid)
        .unwrap_or_else(|| panic!("{what}: goroutine {goid} not in the snapshot"));
    assert_eq!(
        (d.status.as_str(), &d.wait_reason),
        ("waiting", &state),
        "{what}"
    );
    let ours = functions(d);
    let mut rest = ours.iter();
    assert!(
        printed.iter().all(|f| rest.any(|o| o == f)),
        "{what}: runtime.Stack printed {printed:?}, the snapshot has {ours:?}"
    );
    let main_goid = 1;
    let mut goids = HashSet::new();
    for (g, d) in &workers {
        assert!(goids.insert(g.goid), "{what}: goid {} twice", g.goid);
        assert_eq!(
            name(&d.creation),
            ("main.spawn".to_string(), creation_line),
            "{what}: creation site of goroutine {}",
            g.goid
        );
        assert_eq!(
            (d.status.as_str(), d.wait_reason.as_str()),
            ("waiting", "chan receive"),
            "{what}"
        );
        assert_eq!(g.parent, if minor >= 21 { main_goid } else { 0 }, "{what}");
        // The target ran a GC after parking them: waitsince is set.
        let waited = g.waiting_ns.expect("waiting time after a GC");
        assert!(
            waited < started.elapsed().as_nanos() as u64 + 60_000_000_000,
            "{what}: waiting {waited} ns"
        );
        let frames = functions(d);
        // `<-release` in parkedWorker, called by the `go` statement's wrapper.
        assert_eq!(
            frames[..frames.len().min(4)],
            [
                "runtime.gopark",
                "runtime.chanrecv",
                "runtime.chanrecv1",
                "main.parkedWorker"
            ],
            "{what}"
        );
        assert_eq!(
            frames.last().map(String::as_str),
            Some("runtime.goexit"),
            "{what}: {frames:?}"
        );
    }
    assert!(target.finish().success(), "{what}: target failed");
}

#[test]
fn parked_goroutines_go1_19() {
    support::require_root();
    parked_case("1.19", &[]);
    parked_case("1.19", &["-ldflags=-s -w"]);
}

#[test]
fn parked_goroutines_go1_21() {
    support::require_root();
    parked_case("1.21.13", &[]);
}

/// Every other toolchain of scripts/install-deps/go-versions, default build.
#[test]
fn parked_goroutines_every_toolchain() {
    support::require_root();
    for version in gcap_testenv::go_versions() {
        if !["1.19", "1.21.13", "1.27.3"].contains(&version) {
            parked_case(version, &[]);
        }
    }
}

#[test]
fn parked_goroutines_go1_27() {
    support::require_root();
    parked_case("1.27.3", &[]);
    parked_case("1.27.3", &["-ldflags=-s -w"]);
    parked_case("1.27.3", &["-buildmode=pie"]);
}

/// `gcap -p PID` records the goroutines parked before it attached as snapshot 0.
#[test]
fn capture_starts_with_a_snapshot() {
    support::require_root();
    let version = "1.27.3";
    let bin = build(version, &[]);
    let target = Target::start(&bin, &["park", &PARKED.to_string()], "parked ");
    let out = support::tmp_capture("snapshot-at-start.gcap");
    let res = Command::new(env!("CARGO_BIN_EXE_gcap"))
        .args(["-p", &target.pid().to_string(), "-d", "1s", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "gcap failed: {stderr}");
    assert!(!stderr.contains("no goroutine snapshot"), "{stderr}");

    let cap = Capture::open(&out).unwrap();
    assert!(cap.verify().intact);
    let function = |pc: u64| {
        cap.symbolize(0, pc)
            .first()
            .map(|s| cap.string(s.function).to_string())
            .unwrap_or_default()
    };
    let creation_line = line_of("// creation site");
    let (mut parked, mut recorded, mut ends) = (0, 0, Vec::new());
    for (_, e) in cap.events().unwrap() {
        match e.data {
            EventData::GoSnapshot {
                creation,
                start,
                stack,
                snapshot,
                ..
            } => {
                // A lifecycle window may open later and take its own snapshot.
                if snapshot != 0 {
                    continue;
                }
                recorded += 1;
                let start = cap.stack(0, start)[0];
                if function(start) != "main.parkedWorker" {
                    continue;
                }
                parked += 1;
                let site = cap.symbolize(0, cap.stack(0, creation)[0])[0];
                assert_eq!(
                    (cap.string(site.function), site.line),
                    ("main.spawn", creation_line)
                );
                let frames: Vec<String> =
                    cap.stack(0, stack).iter().map(|&pc| function(pc)).collect();
                assert_eq!(frames.first().map(String::as_str), Some("runtime.gopark"));
                assert!(
                    frames.iter().any(|f| f == "main.parkedWorker"),
                    "{frames:?}"
                );
            }
            EventData::SnapshotEnd {
                snapshot,
                goroutines,
                torn,
            } if snapshot == 0 => ends.push((snapshot, goroutines, torn)),
            _ => {}
        }
    }
    assert_eq!(parked, PARKED);
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!((ends[0].0, ends[0].1), (0, recorded));
    assert!(target.finish().success());
}

/// At gcap's defaults (a budget, lifecycle only in windows), goroutines parked before gcap
/// attached and never running again are what `ganalyze` shows of them: all listed with their
/// start function, and one leak suspect with their creation site and count.
#[test]
fn old_goroutines_are_listed_and_suspected_at_defaults() {
    support::require_root();
    let bin = build("1.27.3", &[]);
    let target = Target::start(&bin, &["park", &PARKED.to_string()], "parked ");
    let out = support::capture_at_defaults("old-goroutines.gcap", target.pid(), "3s");
    let site = format!("main.spawn (main.go:{})", line_of("// creation site"));

    let gs = support::ganalyze_json(&["goroutines", "--format", "json"], &out);
    let parked: Vec<_> = gs
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["start_function"] == "main.parkedWorker")
        .collect();
    assert_eq!(parked.len(), PARKED);
    assert!(parked.iter().all(|g| g["creation_site"] == site.as_str()));

    let r = support::ganalyze_json(&["report", "--format", "json"], &out);
    let suspects = r["goroutines"]["leak_suspects"].as_array().unwrap();
    let ours: Vec<_> = suspects
        .iter()
        .filter(|l| l["creation_site"] == site.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{suspects:#?}");
    assert_eq!(ours[0]["count"], PARKED as u64);
    assert_eq!(ours[0]["blocked_on"], "chan receive");
    assert_eq!(
        suspects[0]["creation_site"],
        site.as_str(),
        "not ranked first"
    );
    assert!(target.finish().success());
}

/// Goroutines created and ending without pause: 200 snapshots never disturb the target,
/// torn reads are counted, and every goroutine returned is possible.
fn busy_case(version: &str) {
    const ROUNDS: usize = 200;
    let bin = build(version, &[]);
    let mut target = Target::start(&bin, &["busy"], "");
    // Let it get going.
    std::thread::sleep(Duration::from_millis(300));
    let process = Process::open(target.pid()).unwrap();
    let depth = process.limits().depth;
    let (mut torn, mut seen, mut stacks, mut to_goexit) = (0u64, 0usize, 0usize, 0usize);
    for round in 0..ROUNDS {
        let snap = process.take().unwrap();
        assert!(
            target.child.try_wait().unwrap().is_none(),
            "go{version}: the target died at snapshot {round}"
        );
        torn += u64::from(snap.torn);
        seen += snap.goroutines.len();
        assert!(snap.truncated.is_none(), "{:?}", snap.truncated);
        let mut goids = HashSet::new();
        for g in &snap.goroutines {
            let d = process.describe(g);
            let what = format!("go{version} snapshot {round}: {g:?} {d:?}");
            assert!(g.goid > 0 && goids.insert(g.goid), "{what}");
            assert!(LIVE_STATUSES.contains(&d.status.as_str()), "{what}");
            assert!(d.start.is_some() && d.creation.is_some(), "{what}");
            if d.status == "waiting" {
                assert!(!d.wait_reason.is_empty(), "{what}");
                assert!(!g.stack.is_empty(), "{what}");
                // Every PC of the stack is in a Go function.
                assert!(d.stack.len() >= g.stack.len(), "{what}");
                stacks += 1;
                let complete = d
                    .stack
                    .last()
                    .is_some_and(|f| f.function == "runtime.goexit")
                    || g.stack.len() == depth;
                to_goexit += usize::from(complete);
            } else {
                assert!(g.stack.is_empty() && g.wait_reason == 0, "{what}");
                assert!(g.waiting_ns.is_none(), "{what}");
            }
        }
    }
    eprintln!(
        "go{version}: {ROUNDS} snapshots, {seen} goroutines, {torn} torn, {stacks} stacks ({to_goexit} down to goexit)"
    );
    assert!(seen > ROUNDS, "go{version}: almost no goroutines seen");
    assert!(
        torn > 0,
        "go{version}: a busy program showed no torn read in {ROUNDS} snapshots"
    );
    assert_eq!(to_goexit, stacks, "go{version}: stacks not down to goexit");
    drop(target.stdin.take());
    let status = target.finish();
    assert!(
        status.success(),
        "go{version}: busy target exited with {status}"
    );
}

#[test]
fn busy_program_go1_19() {
    support::require_root();
    busy_case("1.19");
}

#[test]
fn busy_program_go1_21() {
    support::require_root();
    busy_case("1.21.13");
}

#[test]
fn busy_program_go1_27() {
    support::require_root();
    busy_case("1.27.3");
}

/// Each bound of [`Limits`] holds on a real target and says it cut the snapshot.
#[test]
fn bounds_hold() {
    support::require_root();
    let bin = build("1.27.3", &[]);
    let target = Target::start(&bin, &["park", &PARKED.to_string()], "parked ");
    let mut process = Process::open(target.pid()).unwrap();
    let full = process.take().unwrap();
    assert_eq!(full.truncated, None);
    assert!(full.allglen >= PARKED as u64);
    let defaults = process.limits();
    let mut cut = |limits: Limits| {
        process.set_limits(limits);
        process.take().unwrap()
    };
    let few = cut(Limits {
        goroutines: 100,
        ..defaults
    });
    assert_eq!(few.truncated, Some(Truncation::Goroutines));
    assert!(few.goroutines.len() + (few.dead + few.torn) as usize <= 100);
    let shallow = cut(Limits {
        depth: 2,
        ..defaults
    });
    assert!(shallow.goroutines.iter().all(|g| g.stack.len() <= 2));
    assert_eq!(shallow.goroutines.len(), full.goroutines.len());
    let frames = cut(Limits {
        frames: 50,
        ..defaults
    });
    assert_eq!(frames.truncated, Some(Truncation::Frames));
    assert!(
        frames
            .goroutines
            .iter()
            .map(|g| g.stack.len())
            .sum::<usize>()
            <= 50
    );
    let bytes = cut(Limits {
        bytes: 100_000,
        ..defaults
    });
    assert_eq!(bytes.truncated, Some(Truncation::Bytes));
    assert!(bytes.bytes_read <= 100_000);
    let late = cut(Limits {
        time: Duration::ZERO,
        ..defaults
    });
    assert_eq!(late.truncated, Some(Truncation::Time));
    assert!(late.goroutines.is_empty());
    assert!(target.finish().success());
}
