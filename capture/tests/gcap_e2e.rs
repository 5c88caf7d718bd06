//! End-to-end tests of the `gcap` binary: build corpus/lifecycle (100 goroutines with known
//! behaviour) with real Go toolchains, run it under `gcap -o FILE -- PROGRAM`, and check the
//! capture against what the program reports about itself: exact counts, the parent tree,
//! creation sites and start functions by name and line, wait reasons, wakers and stacks.
//! Runs as root (eBPF); fails with a clear message otherwise. Nothing is skipped.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;

use gcap_format::{Capture, EventData};

mod support;
use support::{go_build, manifest, require_root};

const WORKERS: usize = 100;

/// Builds a corpus program with `go build FLAGS` into the test tmpdir.
fn build(case: &str, version: &str, flags: &[&str]) -> PathBuf {
    let src = manifest("../corpus").join(case).join("main.go");
    let tag = flags.join("").replace(['-', '=', ' ', '"'], "");
    go_build(&src, version, flags, &format!("{case}-go{version}{tag}"))
}

/// Runs `gcap --budget off ARGS` (every transition: the counts below are exact), returning
/// (stdout, stderr).
fn gcap(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gcap"))
        .args(["--budget", "off"])
        .args(args)
        .output()
        .expect("running gcap");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What the lifecycle program prints about itself (one JSON line).
struct Facts {
    main_goid: u64,
    worker_goids: Vec<u64>,
    go_line: u32,
    chan_line: u32,
}

fn facts(stdout: &str) -> Facts {
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON facts in the program's output: {stdout}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    Facts {
        main_goid: v["main_goid"].as_u64().unwrap(),
        worker_goids: v["worker_goids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_u64().unwrap())
            .collect(),
        go_line: v["go_statement_line"].as_u64().unwrap() as u32,
        chan_line: v["lines"]["chan_receive"].as_u64().unwrap() as u32,
    }
}

/// Function, file and line of a PC's innermost frame, from the capture alone.
fn sym(cap: &Capture, pc: u64) -> (String, String, u32) {
    let s = cap
        .symbolize(0, pc)
        .first()
        .unwrap_or_else(|| panic!("no symbol for pc {pc:#x} in the capture"));
    (
        cap.string(s.function).to_string(),
        cap.string(s.file).to_string(),
        s.line,
    )
}

/// Captures the lifecycle program built with `version` and `flags`, and checks everything.
fn lifecycle(version: &str, flags: &[&str], full: bool) {
    require_root();
    let bin = build("lifecycle", version, flags);
    let out = support::tmp_capture(&format!(
        "{}-{full}.gcap",
        bin.file_name().unwrap().to_string_lossy()
    ));
    let level = if full { "full" } else { "lifecycle" };
    let (ok, stdout, stderr) = gcap(&[
        "-o",
        out.to_str().unwrap(),
        "--level",
        level,
        "--",
        bin.to_str().unwrap(),
    ]);
    assert!(ok, "gcap failed: {stderr}");
    assert!(
        stderr.contains("stopped: targets exited"),
        "summary: {stderr}"
    );
    assert!(stderr.contains(" 0 lost"), "summary: {stderr}");
    let f = facts(&stdout);
    assert_eq!(f.worker_goids.len(), WORKERS);

    let cap = Capture::open(&out).unwrap();
    let v = cap.verify();
    assert!(v.intact, "{:?}", v.problems);
    let t = &cap.targets()[0];
    assert!(
        t.go_version.starts_with(&format!("go{version}")),
        "{}",
        t.go_version
    );
    let reason = |n: u8| t.wait_reasons.get(n as usize).cloned().unwrap_or_default();
    let events = cap.events().unwrap();
    let workers: std::collections::HashSet<u64> = f.worker_goids.iter().copied().collect();

    // Creations: exactly the 100 workers come from the go statement in main.main.
    let mut created = 0;
    for (_, e) in &events {
        if let EventData::GoCreate {
            parent,
            creation,
            start,
        } = e.data
        {
            if !workers.contains(&e.goid) {
                continue;
            }
            created += 1;
            assert_eq!(parent, f.main_goid, "parent of goroutine {}", e.goid);
            let (func, file, line) = sym(&cap, cap.stack(0, creation)[0]);
            assert_eq!(
                (func.as_str(), line),
                ("main.main", f.go_line),
                "creation site"
            );
            assert!(file.ends_with("lifecycle/main.go"), "{file}");
            let (start_fn, _, _) = sym(&cap, cap.stack(0, start)[0]);
            assert_eq!(
                start_fn, "main.worker",
                "start function of goroutine {}",
                e.goid
            );
        }
    }
    assert_eq!(created, WORKERS, "worker creations");

    // Per worker: the sequence of blocks, each followed by its unblock and waker.
    let mut blocks: HashMap<u64, Vec<(String, u32)>> = HashMap::new();
    let mut wakers: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut exits = 0;
    let mut chan_stack_ok = 0;
    for (_, e) in &events {
        if !workers.contains(&e.goid) {
            continue;
        }
        match e.data {
            EventData::GoBlock { reason: r, stack } => {
                let text = reason(r);
                if text == "chan receive" {
                    let pcs = cap.stack(0, stack);
                    if pcs.iter().any(|&pc| {
                        sym(&cap, pc).0 == "main.worker" && sym(&cap, pc).2 == f.chan_line
                    }) {
                        chan_stack_ok += 1;
                    }
                }
                blocks.entry(e.goid).or_default().push((text, stack));
            }
            EventData::GoUnblock { waker } => wakers.entry(e.goid).or_default().push(waker),
            EventData::GoExit => exits += 1,
            _ => {}
        }
    }
    assert_eq!(exits, WORKERS, "worker exits");
    assert_eq!(
        chan_stack_ok, WORKERS,
        "chan receive stacks naming main.worker at line {}",
        f.chan_line
    );
    let mutex = if version == "1.19" {
        "semacquire"
    } else {
        "sync.Mutex.Lock"
    };
    let mut per_reason: BTreeMap<String, usize> = BTreeMap::new();
    for (g, bs) in &blocks {
        let reasons: Vec<&str> = bs.iter().map(|(r, _)| r.as_str()).collect();
        for r in ["chan receive", mutex, "sleep"] {
            assert_eq!(
                reasons.iter().filter(|x| **x == r).count(),
                1,
                "goroutine {g}: {reasons:?}"
            );
        }
        for r in reasons {
            *per_reason.entry(r.to_string()).or_default() += 1;
        }
        // The chan receive (its first block) is released by main.
        assert_eq!(
            wakers[g].first(),
            Some(&f.main_goid),
            "waker of goroutine {g}'s chan receive"
        );
        // Nobody wakes itself.
        assert!(!wakers[g].contains(g), "goroutine {g} woke itself");
    }
    assert_eq!(blocks.len(), WORKERS);
    assert_eq!(per_reason["chan receive"], WORKERS);
    assert_eq!(per_reason[mutex], WORKERS);
    assert_eq!(per_reason["sleep"], WORKERS);
    if full {
        // The blocking pipe read is a system call, recorded at --level full.
        let mut sys: HashMap<u64, usize> = HashMap::new();
        for (_, e) in &events {
            if workers.contains(&e.goid) && matches!(e.data, EventData::SyscallEnter { .. }) {
                *sys.entry(e.goid).or_default() += 1;
            }
        }
        assert_eq!(sys.len(), WORKERS, "every worker's syscalls are recorded");
    }
    assert!(events
        .iter()
        .any(|(_, e)| matches!(e.data, EventData::ProcExit { code: 0 })));
}

#[test]
fn lifecycle_go1_27() {
    lifecycle("1.27.3", &[], false);
}

#[test]
fn lifecycle_go1_27_stripped() {
    lifecycle("1.27.3", &["-ldflags=-s -w"], false);
}

#[test]
fn lifecycle_go1_27_full() {
    lifecycle("1.27.3", &[], true);
}

#[test]
fn lifecycle_go1_27_pie() {
    lifecycle("1.27.3", &["-buildmode=pie"], false);
}

#[test]
fn lifecycle_go1_21() {
    lifecycle("1.21.13", &[], false);
}

#[test]
fn lifecycle_go1_21_stripped() {
    lifecycle("1.21.13", &["-ldflags=-s -w"], true);
}

#[test]
fn lifecycle_go1_19() {
    lifecycle("1.19", &[], false);
}

#[test]
fn lifecycle_go1_19_stripped() {
    lifecycle("1.19", &["-ldflags=-s -w"], true);
}

#[test]
fn bad_targets_are_clear_errors() {
    require_root();
    let out = support::tmp_capture("bad.gcap");
    let o = out.to_str().unwrap();
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let (ok, _, err) = gcap(&["-o", o, "-p", &pid]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(!ok);
    assert!(err.contains("is not a Go program"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    assert!(!out.exists(), "no file is left behind for a bad target");
    let (ok, _, err) = gcap(&["-o", o, "-p", "999999999"]);
    assert!(!ok && err.contains("no process with pid"), "{err}");
    let (ok, _, err) = gcap(&["-o", o]);
    assert!(!ok && err.contains("nothing to capture"), "{err}");
    let (ok, _, err) = gcap(&["-o", o, "-d", "soon", "-p", "1"]);
    assert!(!ok && err.contains("not a duration"), "{err}");
    // An existing file is never overwritten without --force.
    std::fs::write(&out, b"keep me").unwrap();
    let bin = build("lifecycle", "1.27.3", &[]);
    let (ok, _, err) = gcap(&["-o", o, "--", bin.to_str().unwrap()]);
    assert!(!ok && err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
}
