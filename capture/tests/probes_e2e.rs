//! End-to-end test of the BPF probes: builds tests/programs/lifecycle with several Go
//! toolchains, runs it, attaches gcap's probes before it does any work, and checks exact
//! counts of what the program is known to do. Must run as root (eBPF); fails otherwise.
//!
//! Probe sites and struct offsets come from the plan gcap itself makes (`target::prepare`:
//! inspect's ELF/pclntab/DWARF reading and prologue decoding), so this tests the probes as
//! gcap runs them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gcap::inspect::GoBinary;
use gcap::probes::records::flags;
use gcap::probes::{Level, ProbeId, ProbePlan, Probes, Record, RecordKind};

const N: usize = 100;

mod support;
use support::require_root;

/// Builds tests/programs/<name> with go1.<minor> into the cargo test tmpdir.
fn build_go(name: &str, minor: u32) -> PathBuf {
    let version = match minor {
        19 => "1.19",
        21 => "1.21.13",
        27 => "1.27.3",
        _ => panic!("no toolchain configured for go1.{minor}"),
    };
    let src = support::manifest("tests/programs")
        .join(name)
        .join("main.go");
    support::go_build(&src, version, &[], &format!("{name}-go1.{minor}"))
}

/// The plan gcap makes for `bin_path` at `level` (every probe of the level has a site), and
/// the inspected binary, to look functions up.
fn plan_for(bin_path: &Path, level: Level) -> (ProbePlan, GoBinary) {
    let p = gcap::target::prepare(bin_path, level, 0).expect("inspecting the test program");
    assert_eq!(p.plan.missing(), Vec::<ProbeId>::new());
    (p.plan, p.binary)
}

/// Entry address of a function of the test program.
fn entry(bin: &GoBinary, name: &str) -> u64 {
    bin.function(name)
        .expect("function in the test program")
        .entry
}

/// Whether `pc` is inside function `name`.
fn contains(bin: &GoBinary, name: &str, pc: u64) -> bool {
    let f = bin.function(name).expect("function in the test program");
    (f.entry..f.end).contains(&pc)
}

/// Wait reasons by Go version (shared/reference/go-runtime-probe-map.md section 3).
struct Reasons {
    io_wait: u8,
    chan_receive: u8,
    mutex: u8,
    sleep: u8,
}

fn reasons(minor: u32) -> Reasons {
    match minor {
        19 => Reasons {
            io_wait: 2,
            chan_receive: 14,
            mutex: 18,
            sleep: 19,
        },
        21..=24 => Reasons {
            io_wait: 2,
            chan_receive: 14,
            mutex: 21,
            sleep: 19,
        },
        25 => Reasons {
            io_wait: 2,
            chan_receive: 14,
            mutex: 22,
            sleep: 20,
        },
        26 | 27 => Reasons {
            io_wait: 2,
            chan_receive: 19,
            mutex: 22,
            sleep: 14,
        },
        _ => panic!("no wait-reason table for go1.{minor}"),
    }
}

struct Capture {
    pid: i32,
    events: Vec<Record>,
    hits: BTreeMap<ProbeId, u64>,
    lost: u64,
    stacks_lost: u64,
    probes: Probes,
    attach_time: Duration,
}

/// Runs the program, attaches before it starts working, drains every 50 ms until it exits.
fn capture(bin: &Path, plan: ProbePlan) -> Capture {
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the Go program");
    let pid = child.id() as i32;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");

    let t0 = Instant::now();
    let mut probes = Probes::load(plan).unwrap_or_else(|e| panic!("loading probes: {e}"));
    probes
        .attach(pid)
        .unwrap_or_else(|e| panic!("attaching: {e}"));
    let attach_time = t0.elapsed();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();

    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        probes.drain(usize::MAX, |e| events.push(e)).unwrap();
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "Go program did not finish in 60 s"
        );
        std::thread::sleep(gcap::probes::DRAIN_INTERVAL);
    };
    probes.drain(usize::MAX, |e| events.push(e)).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(status.success(), "Go program failed: {status:?}");
    assert_eq!(rest.trim(), "done");

    events.sort_by_key(|e| e.ts_ns);
    let hits = probes.hit_counts().unwrap().into_iter().collect();
    let lost = probes.lost_per_cpu().unwrap().iter().sum();
    let stacks_lost = probes.stacks_lost().unwrap();
    assert_eq!(
        probes.unblocks_lost().unwrap(),
        0,
        "injectglist walks cut short"
    );
    Capture {
        pid,
        events,
        hits,
        lost,
        stacks_lost,
        probes,
        attach_time,
    }
}

fn goid_of(e: &Record) -> Option<u64> {
    match e.kind {
        RecordKind::GoCreate { goid, .. }
        | RecordKind::GoStart { goid, .. }
        | RecordKind::GoBlock { goid, .. }
        | RecordKind::GoUnblock { goid, .. }
        | RecordKind::GoPreempt { goid }
        | RecordKind::SyscallEnter { goid }
        | RecordKind::SyscallExit { goid }
        | RecordKind::GoExit { goid } => Some(goid),
        _ => None,
    }
}

fn run_lifecycle(minor: u32, level: Level) {
    require_root();
    let bin_path = build_go("lifecycle", minor);
    let (plan, bin) = plan_for(&bin_path, level);
    let mut cap = capture(&bin_path, plan);
    let r = reasons(minor);
    let pid = cap.pid;
    let evs: Vec<&Record> = cap.events.iter().filter(|e| e.tgid == pid as u32).collect();
    eprintln!(
        "go1.{minor} {level:?}: {} events, load+attach {:?}, hits {:?}, lost {}, stacks lost {}",
        evs.len(),
        cap.attach_time,
        cap.hits,
        cap.lost,
        cap.stacks_lost
    );
    if std::env::var_os("GCAP_TEST_DUMP").is_some() {
        for e in &evs {
            eprintln!("{e:?}");
        }
    }
    assert_eq!(cap.lost, 0, "ring buffer drops");

    // Every hit of a one-record probe produced exactly one record (nothing lost or doubled).
    let mut per_probe: BTreeMap<ProbeId, u64> = BTreeMap::new();
    for e in &cap.events {
        *per_probe.entry(e.probe.unwrap()).or_default() += 1;
    }
    for (p, h) in &cap.hits {
        if *p != ProbeId::Injectglist && *p != ProbeId::SchedSwitch {
            assert_eq!(
                per_probe.get(p).copied().unwrap_or(0),
                *h,
                "records vs hits for {p}"
            );
        }
    }

    // --- creation: exactly N at the `go worker()` site, created by main (goid 1).
    let worker = entry(&bin, "main.worker");
    let coord_pc = entry(&bin, "main.coordinator");
    let mut workers = HashSet::new();
    let mut coordinator = None;
    for e in &evs {
        if let RecordKind::GoCreate {
            goid,
            parent_goid,
            gopc,
            startpc,
        } = e.kind
        {
            if startpc == worker {
                assert_eq!(parent_goid, 1, "worker {goid} parent");
                assert!(
                    contains(&bin, "main.main", gopc),
                    "worker {goid} gopc {gopc:#x} not in main.main"
                );
                assert!(workers.insert(goid), "goid {goid} created twice");
            } else if startpc == coord_pc {
                assert_eq!(parent_goid, 1);
                assert!(coordinator.replace(goid).is_none());
            }
        }
    }
    assert_eq!(workers.len(), N, "goroutines created at `go worker()`");
    let coordinator = coordinator.expect("coordinator creation seen");

    // --- per-worker timelines.
    let mut by_goid: HashMap<u64, Vec<&Record>> = HashMap::new();
    for e in &evs {
        if let Some(g) = goid_of(e) {
            by_goid.entry(g).or_default().push(e);
        }
    }
    let mut blocks_by_reason: BTreeMap<u8, usize> = BTreeMap::new();
    let (mut chan_wakes, mut mutex_wakes, mut sleep_wakes, mut io_wakes, mut io_direct) =
        (0, 0, 0, 0, 0);
    let mut exits = 0;
    let mut stack_checked = false;
    for &g in &workers {
        let tl = &by_goid[&g];
        let blocks: Vec<(usize, u8, Option<u32>)> = tl
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e.kind {
                RecordKind::GoBlock {
                    reason, stack_id, ..
                } => Some((i, reason, stack_id)),
                _ => None,
            })
            .collect();
        for b in &blocks {
            *blocks_by_reason.entry(b.1).or_default() += 1;
        }
        let seq: Vec<u8> = blocks.iter().map(|b| b.1).collect();
        assert_eq!(
            seq,
            [r.chan_receive, r.mutex, r.sleep, r.io_wait],
            "goroutine {g} block sequence"
        );
        for (k, &(i, reason, stack_id)) in blocks.iter().enumerate() {
            // What ends this block: the first unblock or start after it.
            let next = tl[i + 1..]
                .iter()
                .find(|e| {
                    matches!(
                        e.kind,
                        RecordKind::GoUnblock { .. } | RecordKind::GoStart { .. }
                    )
                })
                .unwrap_or_else(|| panic!("goroutine {g} never resumed after block {k}"));
            match (reason, next.kind.clone()) {
                (x, RecordKind::GoUnblock { waker_goid, .. }) if x == r.chan_receive => {
                    assert_eq!(waker_goid, coordinator, "chan receive waker of {g}");
                    chan_wakes += 1;
                }
                (x, RecordKind::GoUnblock { waker_goid, .. }) if x == r.mutex => {
                    assert!(
                        waker_goid == coordinator
                            || (workers.contains(&waker_goid) && waker_goid != g),
                        "mutex waker of {g} is {waker_goid}"
                    );
                    mutex_wakes += 1;
                }
                (x, RecordKind::GoUnblock { .. }) if x == r.sleep => sleep_wakes += 1,
                (x, RecordKind::GoUnblock { .. }) if x == r.io_wait => {
                    assert_ne!(
                        next.flags & flags::NETPOLL,
                        0,
                        "IO wait of {g} ended by {next:?}"
                    );
                    io_wakes += 1;
                }
                // findRunnable runs the first goroutine of a netpoll batch without
                // injectglist: its start is its unblock.
                (x, RecordKind::GoStart { .. }) if x == r.io_wait => io_direct += 1,
                (_, other) => panic!("goroutine {g}: block {reason} ended by {other:?}"),
            }
            if reason == r.chan_receive && !stack_checked {
                let sid = stack_id.expect("block stack captured");
                let stack = cap
                    .probes
                    .stack(sid)
                    .unwrap()
                    .expect("stack in map")
                    .to_vec();
                assert!(
                    stack
                        .iter()
                        .any(|&pc| contains(&bin, "main.worker", pc - 1)),
                    "chan receive stack of {g} has no main.worker frame: {stack:x?}"
                );
                stack_checked = true;
            }
        }
        let n_exit = tl
            .iter()
            .filter(|e| matches!(e.kind, RecordKind::GoExit { .. }))
            .count();
        assert_eq!(n_exit, 1, "exits of goroutine {g}");
        exits += n_exit;
        let n_start = tl
            .iter()
            .filter(|e| matches!(e.kind, RecordKind::GoStart { .. }))
            .count();
        assert!(n_start >= 5, "goroutine {g} started {n_start} times");
        if level == Level::Full {
            let enters = tl
                .iter()
                .filter(|e| matches!(e.kind, RecordKind::SyscallEnter { .. }))
                .count();
            let exits = tl
                .iter()
                .filter(|e| matches!(e.kind, RecordKind::SyscallExit { .. }))
                .count();
            // read(2) EAGAIN + read(2) after the wakeup + the raw pipe read.
            assert_eq!(enters, 3, "goroutine {g}: syscalls");
            assert_eq!(enters, exits, "goroutine {g}: syscall enters vs exits");
        }
    }
    eprintln!(
        "go1.{minor}: blocks by reason {blocks_by_reason:?}; wakes: chan {chan_wakes} (by coordinator {coordinator}), \
         mutex {mutex_wakes}, sleep {sleep_wakes}, io {io_wakes} + {io_direct} run directly by netpoll; exits {exits}"
    );
    assert_eq!(chan_wakes, N);
    assert_eq!(mutex_wakes, N);
    assert_eq!(sleep_wakes, N);
    assert_eq!(io_wakes + io_direct, N);
    // (How many go through injectglist vs straight from netpoll is a scheduling race.)
    assert_eq!(exits, N);
    assert!(stack_checked);

    // --- GC and stop-the-world: main's runtime.GC() starts one cycle from goid 1.
    let gc_starts: Vec<u64> = evs
        .iter()
        .filter_map(|e| {
            if let RecordKind::GcStart { goid } = e.kind {
                Some(goid)
            } else {
                None
            }
        })
        .collect();
    let gc_ends = evs
        .iter()
        .filter(|e| matches!(e.kind, RecordKind::GcEnd { .. }))
        .count();
    assert!(gc_starts.contains(&1), "GC start by main: {gc_starts:?}");
    assert!(gc_ends >= 1);
    let stw_starts: Vec<&Record> = evs
        .iter()
        .copied()
        .filter(|e| matches!(e.kind, RecordKind::StwStart { .. }))
        .collect();
    let stw_ends = evs
        .iter()
        .filter(|e| matches!(e.kind, RecordKind::StwEnd { .. }))
        .count();
    assert_eq!(stw_starts.len(), stw_ends, "stop/start the world pairs");
    assert!(
        stw_starts.len() >= 2 + 3,
        "GC sweep+mark termination and runtime.Stack STWs"
    );
    if minor >= 21 {
        // stwGCMarkTerm = 1, stwGCSweepTerm = 2, stwAllGoroutinesStack = 6 (runtime.Stack).
        let rs: HashSet<u8> = stw_starts
            .iter()
            .filter_map(|e| {
                if let RecordKind::StwStart { reason, .. } = e.kind {
                    Some(reason)
                } else {
                    None
                }
            })
            .collect();
        for want in [1, 2, 6] {
            assert!(rs.contains(&want), "STW reason {want} missing from {rs:?}");
        }
    }

    // --- kernel side.
    let exits: Vec<i32> = cap
        .events
        .iter()
        .filter_map(|e| match e.kind {
            RecordKind::ProcessExit { exit_code } if e.tgid == pid as u32 => Some(exit_code),
            _ => None,
        })
        .collect();
    assert_eq!(exits, [0], "process exit events");
    if level == Level::Full {
        let sw = cap
            .events
            .iter()
            .filter(|e| {
                matches!(e.kind, RecordKind::SchedSwitch { prev_tgid, next_tgid, .. }
                if prev_tgid == pid as u32 || next_tgid == pid as u32)
            })
            .count();
        assert!(sw > 0, "no sched_switch for the target");
        let others = cap
            .events
            .iter()
            .filter(|e| {
                matches!(e.kind, RecordKind::SchedSwitch { prev_tgid, next_tgid, .. }
                if prev_tgid != pid as u32 && next_tgid != pid as u32)
            })
            .count();
        assert_eq!(others, 0, "sched_switch records unrelated to the target");
    }
}

#[test]
fn lifecycle_go1_27() {
    run_lifecycle(27, Level::Lifecycle);
}

#[test]
fn lifecycle_go1_21() {
    run_lifecycle(21, Level::Lifecycle);
}

#[test]
fn lifecycle_go1_19() {
    run_lifecycle(19, Level::Lifecycle);
}

#[test]
fn full_go1_27() {
    run_lifecycle(27, Level::Full);
}

#[test]
fn full_go1_19() {
    run_lifecycle(19, Level::Full);
}

/// Runs tests/programs/gosched with `n` Gosched calls, optionally under probes; returns the
/// program's ns per call and the probe hits.
fn run_gosched(
    bin: &Path,
    n: u32,
    plan: Option<ProbePlan>,
) -> (u64, BTreeMap<ProbeId, u64>, usize) {
    let mut child = Command::new(bin)
        .arg(n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting gosched");
    let pid = child.id() as i32;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let mut probes = plan.map(|p| {
        let mut pr = Probes::load(p).unwrap_or_else(|e| panic!("loading probes: {e}"));
        pr.attach(pid).unwrap_or_else(|e| panic!("attaching: {e}"));
        pr
    });
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(child.wait().unwrap().success());
    let ns: u64 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("gosched printed {line:?}"));
    let (mut hits, mut events) = (BTreeMap::new(), 0);
    if let Some(pr) = probes.as_mut() {
        pr.drain(usize::MAX, |_| events += 1).unwrap();
        assert_eq!(
            pr.lost_per_cpu().unwrap().iter().sum::<u64>(),
            0,
            "ring buffer drops"
        );
        hits = pr.hit_counts().unwrap().into_iter().collect();
    }
    (ns, hits, events)
}

/// Cost of a probe hit, measured on a scheduler round trip (runtime.Gosched: one
/// goschedImpl + one execute hit per call). Prints the numbers; asserts every call was seen.
fn cost_per_hit(minor: u32) {
    require_root();
    let bin_path = build_go("gosched", minor);
    let n = 200_000;
    let (base, _, _) = run_gosched(&bin_path, n, None);
    let (mut plan, _) = plan_for(&bin_path, Level::Lifecycle);
    plan.ringbuf_bytes = 64 << 20; // the whole run fits: drained only at the end
    let (with, hits, events) = run_gosched(&bin_path, n, Some(plan));
    let gosched = hits[&ProbeId::Gosched];
    let execute = hits[&ProbeId::Execute];
    eprintln!(
        "go1.{minor} runtime.Gosched: {base} ns/call without probes, {with} ns/call with; {gosched} goschedImpl + \
         {execute} execute hits, {events} events: {:.0} ns per probe hit",
        (with.saturating_sub(base)) as f64 / 2.0
    );
    assert!(
        gosched >= u64::from(n),
        "goschedImpl hits {gosched} < {n} calls"
    );
    assert!(
        execute >= u64::from(n),
        "execute hits {execute} < {n} calls"
    );
}

#[test]
fn cost_per_hit_go1_27() {
    cost_per_hit(27);
}

/// Go 1.19's prologue has no PUSHQ BP (`SUBQ $n, SP; MOVQ BP, ..`): the probe instruction
/// is single-stepped, which this shows.
#[test]
fn cost_per_hit_go1_19() {
    cost_per_hit(19);
}

/// The spans level attaches no runtime probe: only process exit is recorded. Attaching to a
/// process that runs another binary is refused.
#[test]
fn spans_level_and_wrong_binary() {
    require_root();
    let bin_path = build_go("gosched", 27);
    let (plan, _) = plan_for(&bin_path, Level::Spans);
    assert!(plan.missing().is_empty());
    let mut probes = Probes::load(plan).unwrap_or_else(|e| panic!("loading probes: {e}"));
    let me = std::process::id() as i32;
    let err = probes.attach(me).unwrap_err();
    assert!(
        matches!(err, gcap::probes::ProbeError::WrongBinary { .. }),
        "{err}"
    );

    let mut child = Command::new(&bin_path)
        .arg("1000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting gosched");
    let pid = child.id() as i32;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    probes.attach(pid).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(child.wait().unwrap().success());
    let mut events = Vec::new();
    probes.drain(usize::MAX, |e| events.push(e)).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].tgid, pid as u32);
    assert_eq!(events[0].kind, RecordKind::ProcessExit { exit_code: 0 });
    let hits = probes.hit_counts().unwrap();
    assert_eq!(hits, [(ProbeId::ProcessExit, 1)]);
}
