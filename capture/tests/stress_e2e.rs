//! Stress: while gcap captures it, a target starts 100k goroutines whose stacks grow deeply
//! and often, then exits mid-capture. The target must behave exactly as without gcap (same
//! output, exit 0), gcap must finish a valid file with every event or a counted loss, and
//! gcap's memory must stay bounded. Runs as root.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use gcap_format::{Capture, EventData};

mod support;

fn build_stress() -> PathBuf {
    support::go_build(
        &support::manifest("tests/programs/stress/main.go"),
        "1.27.3",
        &[],
        "stress-go1.27",
    )
}

#[test]
// gcap is reaped with wait4 (not Child::wait) to read its peak RSS.
#[allow(clippy::zombie_processes)]
fn hundred_thousand_goroutines_with_stack_growth() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "stress test loads eBPF: run as root"
    );
    let bin = build_stress();
    let baseline = Command::new(&bin).output().unwrap();
    assert!(baseline.status.success());

    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stress.gcap");
    let _ = std::fs::remove_file(&file);
    let child = Command::new(env!("CARGO_BIN_EXE_gcap"))
        .arg("-o")
        .arg(&file)
        .args(["--budget", "off", "-d", "120s", "--"])
        .arg(&bin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut stdout = child.stdout.unwrap();
    let mut stderr = child.stderr.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let ereader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it and the status for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child; the pointers are valid for the duration of the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid);
    let out = reader.join().unwrap();
    let err = ereader.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "gcap failed: {err}"
    );
    // The target's output is unchanged by the capture.
    assert_eq!(
        out,
        String::from_utf8_lossy(&baseline.stdout),
        "target output changed"
    );
    assert!(err.contains("stopped: targets exited"), "{err}");
    assert!(err.contains("program exit status: 0"), "{err}");
    // gcap's memory stays bounded (ru_maxrss is in KiB).
    assert!(ru.ru_maxrss < 64 * 1024, "gcap used {} KiB", ru.ru_maxrss);

    let cap = Capture::open(&file).unwrap();
    let v = cap.verify();
    assert!(v.intact, "{:?}", v.problems);
    let events = cap.events().unwrap();
    let created = events
        .iter()
        .filter(|(_, e)| matches!(e.data, EventData::GoCreate { .. }))
        .count();
    let lost: u64 = cap.stats().unwrap().lost_per_cpu.iter().sum();
    let lost_events = support::lost_in_events(&events);
    // Every loss is counted, in the stats and as events.
    assert_eq!(lost, lost_events);
    if lost == 0 {
        // 100k workers plus the runtime's own goroutines (and main's).
        assert!((100_000..100_020).contains(&created), "{created} creations");
    } else {
        assert!(
            created as u64 + lost >= 100_000,
            "{created} creations, {lost} lost"
        );
    }
    assert!(events
        .iter()
        .any(|(_, e)| matches!(e.data, EventData::ProcExit { code: 0 })));
}
