//! What the end-to-end tests share: the root check and building Go programs with the real
//! toolchains scripts/install-deps.sh installs (standard library only, no module proxy).

#![allow(dead_code)] // each test file uses a subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Capture tests load eBPF programs: fail (never skip) without root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "these tests load eBPF programs: run them as root");
}

/// A path under the crate, e.g. "tests/programs/stress/main.go".
pub fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Builds `src` with go`version` and `go build FLAGS` into the test tmpdir as `name`.
pub fn go_build(src: &Path, version: &str, flags: &[&str], name: &str) -> PathBuf {
    go_build_in(src, version, flags, name, None)
}

/// [`go_build`] with a GOPATH of Go sources (Debian's /usr/share/gocode for lib/pq).
pub fn go_build_in(
    src: &Path,
    version: &str,
    flags: &[&str],
    name: &str,
    gopath: Option<&Path>,
) -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out = tmp.join(name);
    let gopath = gopath.map_or_else(|| tmp.join("gopath"), Path::to_path_buf);
    let status = Command::new(gcap_testenv::go_toolchain(version))
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(src)
        .env("GOCACHE", tmp.join(format!("gocache-{version}")))
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .status()
        .expect("running go build");
    assert!(
        status.success(),
        "go build {flags:?} of {} with go{version} failed",
        src.display()
    );
    out
}

/// Starts `gcap --budget off ARGS` (every transition: what the callers check) and waits
/// until it reports its probes attached.
pub fn gcap_attached(args: &[&str]) -> Child {
    let mut g = Command::new(env!("CARGO_BIN_EXE_gcap"))
        .args(["--budget", "off"])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(g.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut err, &mut line).unwrap();
        assert!(n > 0, "gcap exited before attaching");
        if line.contains("capturing") {
            break;
        }
    }
    // Keep draining stderr so gcap never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    g
}

/// A fresh path for a capture file in the test tmpdir.
pub fn tmp_capture(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// Runs `cmd` to its end; fails the test, with what it printed on stderr, unless it
/// succeeds.
pub fn succeed(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{:?} failed ({}): {}",
        cmd.get_program(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Captures `pid` for `duration` with `gcap -p PID -d DURATION` and no other flag (gcap's
/// defaults, as a user's first capture) into the test tmpdir as `name`.
pub fn capture_at_defaults(name: &str, pid: u32, duration: &str) -> PathBuf {
    let file = tmp_capture(name);
    succeed(
        Command::new(env!("CARGO_BIN_EXE_gcap"))
            .args(["-p", &pid.to_string(), "-d", duration, "-o"])
            .arg(&file),
    );
    file
}

/// Records lost, as the capture's `Lost` events count them.
pub fn lost_in_events(events: &[(u32, gcap_format::Event)]) -> u64 {
    events
        .iter()
        .map(|(_, e)| match e.data {
            gcap_format::EventData::Lost { count, .. } => count,
            _ => 0,
        })
        .sum()
}

/// The `ganalyze` binary beside gcap's: the tests that check what a user reads of a capture
/// run it as a user would. `cargo test --workspace` builds it (analyze's own tests need it);
/// after `cargo test -p gcap` alone, build it first with `cargo build -p ganalyze`.
pub fn ganalyze() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_gcap")).with_file_name("ganalyze");
    assert!(
        bin.exists(),
        "no ganalyze at {}: run `cargo build -p ganalyze` (or cargo test --workspace)",
        bin.display()
    );
    bin
}

/// `ganalyze ARGS` (a JSON output), parsed.
pub fn ganalyze_json(args: &[&str], file: &Path) -> serde_json::Value {
    let out = succeed(Command::new(ganalyze()).args(args).arg(file));
    serde_json::from_slice(&out.stdout).unwrap()
}

pub mod services;
