//! The budgeted capture on a real Go service under load (tests/programs/budget, loaded by
//! corpus/loadgen): a default capture stays within its budget and records its windows and
//! cost; windows toggled ten times a second for a minute, on Go 1.19, 1.21 and 1.27, never
//! crash or stall a loaded service, never change what the stack-growth stress program
//! prints, and every record lies inside a window of its group; `--budget off` records everything, with one coverage
//! event; slow requests open a window at once. Runs as root.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use gcap_format::{coverage_cause, probe_group, Capture, Event, EventData};

mod support;
use support::{go_build, manifest, require_root, tmp_capture};

/// The service built with go`version`, and the load generator.
fn binaries(version: &str) -> (PathBuf, PathBuf) {
    let service = go_build(
        &manifest("tests/programs/budget/main.go"),
        version,
        &[],
        &format!("budget-go{version}"),
    );
    let loadgen = go_build(
        &manifest("../corpus/loadgen/main.go"),
        "1.27.3",
        &[],
        "loadgen",
    );
    (service, loadgen)
}

/// A running service and its address; killed when dropped.
struct Service {
    child: Child,
    url: String,
}

impl Service {
    fn start(bin: &Path, args: &[&str]) -> Service {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the service");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_string();
        Service {
            child,
            url: format!("http://{addr}/work"),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running (not crashed).
    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the load: `rate` requests a second from 4 closed-loop clients for `secs`.
fn load(loadgen: &Path, url: &str, rate: u32, secs: u32) -> Child {
    Command::new(loadgen)
        .args(["-url", url, "-c", "4"])
        .args(["-rate", &rate.to_string(), "-d", &format!("{secs}s")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting loadgen")
}

/// The load's summary: (responses, errors).
fn responses(loadgen: Child) -> (u64, u64) {
    let out = loadgen.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("loadgen's JSON");
    (v["count"].as_u64().unwrap(), v["errors"].as_u64().unwrap())
}

/// Runs gcap on `pid` with `args`; returns the file and gcap's stderr.
fn gcap(name: &str, pid: u32, args: &[&str]) -> (PathBuf, String) {
    let file = tmp_capture(&format!("{name}.gcap"));
    let out = Command::new(env!("CARGO_BIN_EXE_gcap"))
        .arg("-o")
        .arg(&file)
        .args(["-p", &pid.to_string()])
        .args(args)
        .output()
        .expect("running gcap");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "gcap failed: {err}");
    (file, err)
}

/// The probe group whose probes record an event of this kind (None: recorded whatever is
/// attached).
fn group_of(data: &EventData) -> Option<u32> {
    Some(match data {
        EventData::GoCreate { .. }
        | EventData::GoStart { .. }
        | EventData::GoStop { .. }
        | EventData::GoBlock { .. }
        | EventData::GoUnblock { .. }
        | EventData::GoExit
        | EventData::GoInfo { .. }
        | EventData::GcStart { .. }
        | EventData::GcEnd { .. }
        | EventData::StwStart { .. }
        | EventData::StwEnd => probe_group::LIFECYCLE,
        EventData::SyscallEnter { .. } | EventData::SyscallExit { .. } => probe_group::SYSCALLS,
        EventData::ThreadOn { .. } | EventData::ThreadOff { .. } => probe_group::SCHED,
        EventData::CpuSample { .. } => probe_group::SAMPLES,
        EventData::SpanStart { .. } | EventData::SpanEnd { .. } => probe_group::SPANS,
        _ => return None,
    })
}

/// Each target's coverage changes: (time, groups, cause), in time order.
fn coverage(events: &[(u32, Event)]) -> BTreeMap<u32, Vec<(u64, u32, u8)>> {
    let mut by_target: BTreeMap<u32, Vec<(u64, u32, u8)>> = BTreeMap::new();
    for (t, e) in events {
        if let EventData::Coverage { groups, cause } = e.data {
            by_target.entry(*t).or_default().push((e.ts, groups, cause));
        }
    }
    for v in by_target.values_mut() {
        v.sort_by_key(|c| c.0);
    }
    by_target
}

/// Every event of a probe group lies in a window of that group: at or after a coverage
/// change that names the group and at or before the next one. Returns how many were checked.
fn all_inside_windows(events: &[(u32, Event)]) -> usize {
    let cov = coverage(events);
    let mut checked = 0;
    for (t, e) in events {
        let Some(g) = group_of(&e.data) else {
            continue;
        };
        let changes = &cov[t];
        let i = changes.partition_point(|c| c.0 <= e.ts);
        assert!(i > 0, "{e:?} before the first coverage event");
        let (at, groups, _) = changes[i - 1];
        let inside = groups & g != 0 || (at == e.ts && i > 1 && changes[i - 2].1 & g != 0);
        assert!(
            inside,
            "{e:?} outside the windows of group {g}: {changes:?}"
        );
        checked += 1;
    }
    checked
}

/// The last `overhead` event of each target: (budget ppm, cost ns, target CPU ns, hits).
fn overhead(events: &[(u32, Event)]) -> BTreeMap<u32, (u32, u64, u64, u64)> {
    let mut last = BTreeMap::new();
    for (t, e) in events {
        if let EventData::Overhead {
            budget_ppm,
            cost_ns,
            target_cpu_ns,
            hits,
        } = e.data
        {
            last.insert(*t, (budget_ppm, cost_ns, target_cpu_ns, hits));
        }
    }
    last
}

fn count(events: &[(u32, Event)], f: impl Fn(&EventData) -> bool) -> usize {
    events.iter().filter(|(_, e)| f(&e.data)).count()
}

/// `gcap -p PID` with no options on a loaded service: spans of every request, lifecycle
/// windows, the cost in the file, and that cost within the 2% budget.
#[test]
fn default_capture_stays_within_the_budget() {
    require_root();
    let (bin, loadgen) = binaries("1.27.3");
    let svc = Service::start(&bin, &["-work", "2ms"]);
    let rate = 200;
    let lg = load(&loadgen, &svc.url, rate, 46);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (file, err) = gcap("budget-default", svc.pid(), &["-d", "40s"]);
    let (sent, errors) = responses(lg);
    assert_eq!(errors, 0);
    assert!(sent > 0);

    let cap = Capture::open(&file).unwrap();
    assert!(cap.verify().intact);
    let events = cap.events().unwrap();
    // Spans never left: every request of the 40 s has its span.
    assert!(!err.contains("spans are recorded in windows"), "{err}");
    let cov = coverage(&events);
    let changes = &cov[&0];
    assert_eq!(changes[0].2, coverage_cause::START);
    assert!(
        changes[..changes.len() - 1]
            .iter()
            .all(|c| c.1 & probe_group::SPANS != 0),
        "{changes:?}"
    );
    let spans = count(&events, |d| matches!(d, EventData::SpanEnd { .. }));
    let expected = 40 * rate as usize;
    assert!(
        spans * 100 >= expected * 95 && spans * 100 <= expected * 105,
        "{spans} spans for about {expected} requests"
    );
    // At least one lifecycle window, with goroutine events in it.
    let windows = changes
        .iter()
        .filter(|c| c.1 & probe_group::LIFECYCLE != 0 && c.2 == coverage_cause::DUTY_CYCLE)
        .count();
    assert!(windows >= 1, "{changes:?}\n{err}");
    assert!(count(&events, |d| matches!(d, EventData::GoCreate { .. })) > 0);
    assert_eq!(changes.last().unwrap().2, coverage_cause::STOP);
    // A snapshot of the goroutines at the start and at every lifecycle window.
    let opened = changes
        .windows(2)
        .filter(|c| c[0].1 & probe_group::LIFECYCLE == 0 && c[1].1 & probe_group::LIFECYCLE != 0)
        .count();
    let snapshots = count(&events, |d| matches!(d, EventData::SnapshotEnd { .. }));
    assert_eq!(snapshots, 1 + opened, "{changes:?}");
    all_inside_windows(&events);
    // The cost, as the file states it, is within the budget (and is not nothing).
    let o = overhead(&events);
    let (budget_ppm, cost, cpu, hits) = o[&0];
    assert_eq!(budget_ppm, 20_000);
    assert!(hits > 0 && cost > 0 && cpu > 0);
    let ratio = cost as f64 / cpu as f64;
    assert!(ratio <= 0.025, "cost {ratio:.4} of the target's CPU; {err}");
    assert!(
        count(&events, |d| matches!(d, EventData::Overhead { .. })) >= 30,
        "overhead events every second"
    );
    assert!(err.contains("(budget 2%: lifecycle in"), "{err}");
}

/// The load's summary: (responses, errors, p99 ns, max ns).
fn latencies(loadgen: Child) -> (u64, u64, u64, u64) {
    let out = loadgen.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("loadgen's JSON");
    let n = |k: &str| v[k].as_u64().unwrap();
    (n("count"), n("errors"), n("p99_ns"), n("max_ns"))
}

/// Lifecycle windows opened per second, from the first coverage change to the last (the
/// capture's stop).
fn windows_per_second(events: &[(u32, Event)]) -> f64 {
    let changes = &coverage(events)[&0];
    let opened = changes
        .iter()
        .filter(|c| c.1 & probe_group::LIFECYCLE != 0)
        .count();
    let ns = changes.last().unwrap().0 - changes[0].0;
    opened as f64 * 1e9 / ns.max(1) as f64
}

/// Windows toggled ten times a second (`--window-test-period 100ms`: the lifecycle probes
/// attached for the first half of every 100 ms) for a minute, on a service under load: the
/// target keeps serving every request without stalling, and every record lies inside a
/// window of its group.
fn windows_toggled(version: &str) {
    require_root();
    let (bin, loadgen) = binaries(version);
    let mut svc = Service::start(&bin, &["-work", "200us"]);
    let lg = load(&loadgen, &svc.url, 500, 64);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (file, err) = gcap(
        &format!("budget-toggle-go{version}"),
        svc.pid(),
        &["-d", "60s", "--window-test-period", "100ms"],
    );
    let (sent, errors, p99, max) = latencies(lg);
    assert!(svc.alive(), "the service died");
    assert_eq!(errors, 0, "failed requests");
    // Paced at 500/s for 64 s: a stalled service would have served far fewer.
    assert!(sent >= 64 * 500 * 9 / 10, "{sent} responses");
    eprintln!(
        "go{version}: {sent} requests of 200 µs while toggling: p99 {:.1} ms, max {:.1} ms",
        p99 as f64 / 1e6,
        max as f64 / 1e6
    );
    // An attach write-protects the probed text pages for a few ms: a request may wait that
    // long, never much more (the bound leaves room for a busy test machine).
    assert!(p99 < 25_000_000, "p99 {p99} ns: the target stalled");

    let cap = Capture::open(&file).unwrap();
    assert!(cap.verify().intact);
    let events = cap.events().unwrap();
    let rate = windows_per_second(&events);
    assert!(rate >= 9.0, "{rate:.1} windows a second; {err}");
    let checked = all_inside_windows(&events);
    assert!(
        count(&events, |d| matches!(d, EventData::GoCreate { .. })) > 1000,
        "lifecycle recorded in the windows"
    );
    assert!(checked > 10_000);
}

/// The stack-growth stress program (goroutines whose stacks grow and are copied again and
/// again) under windows toggled ten times a second for a minute: it prints exactly what it
/// prints without gcap, and exits 0.
fn stress_toggled(version: &str) {
    require_root();
    // Each run keeps both CPUs busy: run together they would measure the machine, not gcap.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let bin = go_build(
        &manifest("tests/programs/stress/main.go"),
        version,
        &[],
        &format!("stress-go{version}"),
    );
    let args = ["-n", "20000"];
    let baseline = Command::new(&bin).args(args).output().unwrap();
    assert!(baseline.status.success());
    let once = String::from_utf8_lossy(&baseline.stdout).into_owned();

    let file = tmp_capture(&format!("budget-toggle-stress-go{version}.gcap"));
    let out = support::succeed(
        Command::new(env!("CARGO_BIN_EXE_gcap"))
            .arg("-o")
            .arg(&file)
            .args(["--window-test-period", "100ms", "-d", "120s", "--"])
            .arg(&bin)
            .args(args)
            .args(["-for", "60s"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("program exit status: 0"), "{err}");
    let said = String::from_utf8_lossy(&out.stdout);
    let rounds = said.lines().count();
    assert!(rounds >= 2, "{said}");
    for line in said.lines() {
        assert_eq!(format!("{line}\n"), once, "go{version}: output changed");
    }

    let cap = Capture::open(&file).unwrap();
    assert!(cap.verify().intact);
    let events = cap.events().unwrap();
    let rate = windows_per_second(&events);
    eprintln!("go{version}: {rounds} stress rounds, {rate:.1} windows a second");
    assert!(rate >= 9.0, "{rate:.1} windows a second; {err}");
    all_inside_windows(&events);
}

#[test]
fn windows_toggled_go1_19() {
    windows_toggled("1.19");
}

#[test]
fn windows_toggled_go1_21() {
    windows_toggled("1.21.13");
}

#[test]
fn windows_toggled_go1_27() {
    windows_toggled("1.27.3");
}

#[test]
fn stress_toggled_go1_19() {
    stress_toggled("1.19");
}

#[test]
fn stress_toggled_go1_21() {
    stress_toggled("1.21.13");
}

#[test]
fn stress_toggled_go1_27() {
    stress_toggled("1.27.3");
}

/// `--budget off`: every group for the whole capture, one coverage event, the cost
/// measured with no budget.
#[test]
fn budget_off_records_everything() {
    require_root();
    let (bin, loadgen) = binaries("1.27.3");
    let svc = Service::start(&bin, &["-work", "200us"]);
    let lg = load(&loadgen, &svc.url, 200, 6);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (file, err) = gcap("budget-off", svc.pid(), &["-d", "3s", "--budget", "off"]);
    responses(lg);
    let cap = Capture::open(&file).unwrap();
    let events = cap.events().unwrap();
    let cov = coverage(&events);
    assert_eq!(
        cov[&0],
        vec![(
            cov[&0][0].0,
            probe_group::SPANS | probe_group::LIFECYCLE,
            coverage_cause::START
        )]
    );
    let (budget_ppm, cost, cpu, _) = overhead(&events)[&0];
    assert_eq!(budget_ppm, 0);
    assert!(cost > 0 && cpu > 0);
    assert!(err.contains("(no budget)"), "{err}");
    assert!(count(&events, |d| matches!(d, EventData::GoCreate { .. })) > 500);
}

/// Requests that turn slow open a window at once (cause: slow requests), judged by the
/// endpoint's running p99 (`slo` None) or by an SLO given to gcap. Returns when the first
/// triggered window opened, since the capture started.
fn slow_requests_open_a_window(name: &str, slo: Option<&str>) -> u64 {
    require_root();
    let (bin, loadgen) = binaries("1.27.3");
    let svc = Service::start(
        &bin,
        // Slow by far more than the tail that other tests running beside this one add
        // to a 2 ms request on a small machine.
        &["-work", "2ms", "-slow-after", "9s", "-slow", "500ms"],
    );
    let lg = load(&loadgen, &svc.url, 200, 22);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let mut args = vec!["-d", "18s"];
    if let Some(slo) = slo {
        args.extend(["--slo", slo]);
    }
    let (file, err) = gcap(name, svc.pid(), &args);
    responses(lg);
    let cap = Capture::open(&file).unwrap();
    let events = cap.events().unwrap();
    let cov = coverage(&events);
    let start = cov[&0][0].0;
    let triggered: Vec<u64> = cov[&0]
        .iter()
        .filter(|c| c.2 == coverage_cause::TRIGGER && c.1 & probe_group::LIFECYCLE != 0)
        .map(|c| c.0 - start)
        .collect();
    assert!(!triggered.is_empty(), "{:?}\n{err}", cov[&0]);
    // The service turns slow 9 s after it started, about 8 s into the capture: the window
    // opens within a couple of seconds of it, never before.
    assert!(
        triggered[0] >= 7_000_000_000 && triggered[0] <= 11_000_000_000,
        "{triggered:?} {:?}\n{err}",
        cov[&0]
            .iter()
            .map(|c| (c.0 - start, c.1, c.2))
            .collect::<Vec<_>>()
    );
    all_inside_windows(&events);
    triggered[0]
}

#[test]
fn slow_requests_open_a_window_by_the_running_p99() {
    slow_requests_open_a_window("budget-trigger-p99", None);
}

#[test]
fn slow_requests_open_a_window_by_an_slo() {
    // The threshold sits far above what the tests and builds running beside this one make
    // of a 2-ms request on a 2-core machine (20 ms, then 100 ms, were crossed there), and
    // below the slowdown.
    slow_requests_open_a_window("budget-trigger-slo", Some("GET /work: p99 < 300ms"));
}
