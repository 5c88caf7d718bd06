//! Goroutine names equal Go's own traceback: tests/programs/naming starts goroutines with every
//! shape of `go` statement (a target inlined into the compiler's go wrapper, one the wrapper
//! calls, a method, a method value, closures, a plain function, a `go` inside a closure), each
//! printing its traceback; under `gcap -- PROGRAM`, the start function and creation site gcap
//! records for each goroutine must be the bottom frame and the "created by" line Go printed.
//! Runs as root (eBPF) on Go 1.19, 1.21 and 1.27. Nothing is skipped.

use std::collections::HashMap;
use std::process::Command;

use gcap_format::{Capture, EventData};

mod support;
use support::{go_build, manifest, require_root};

/// What Go's traceback of one goroutine says.
#[derive(Debug)]
struct Traceback {
    goid: u64,
    /// The bottom frame's function: what Go calls the goroutine's function.
    function: String,
    /// Whether that frame is inlined (printed with `(...)` arguments).
    inlined: bool,
    /// "created by" as gcap writes locations: "pkg.Func (file.go:LINE)".
    created_by: String,
    /// "in goroutine N" (Go 1.21+).
    parent: Option<u64>,
}

/// The tracebacks the program printed, by kind ("=== KIND" before each).
fn tracebacks(stdout: &str) -> HashMap<String, Traceback> {
    let mut out = HashMap::new();
    for block in stdout.split("=== ").skip(1) {
        let lines: Vec<&str> = block.lines().collect();
        let kind = lines[0].trim().to_string();
        let goid = lines[1]
            .strip_prefix("goroutine ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{kind}: no goroutine header in {block}"));
        let created = lines
            .iter()
            .position(|l| l.starts_with("created by "))
            .unwrap_or_else(|| panic!("{kind}: no \"created by\" in {block}"));
        // Frames are "FUNCTION(ARGS)" then "\tFILE:LINE [+0xOFF]"; the bottom one is just
        // above "created by".
        let bottom = lines[created - 2];
        let (function, args) = bottom
            .rsplit_once('(')
            .unwrap_or_else(|| panic!("{kind}: frame {bottom:?}"));
        let by = &lines[created]["created by ".len()..];
        let (by_function, parent) = match by.split_once(" in goroutine ") {
            Some((f, g)) => (f, Some(g.parse().unwrap())),
            None => (by, None),
        };
        let place = lines[created + 1].trim().split(' ').next().unwrap();
        let (file, line) = place.rsplit_once(':').unwrap();
        let base = file.rsplit('/').next().unwrap();
        out.insert(
            kind,
            Traceback {
                goid,
                function: function.to_string(),
                inlined: args == "...)",
                created_by: format!("{by_function} ({base}:{line})"),
                parent,
            },
        );
    }
    out
}

/// gcap's record of one goroutine: (parent, creation site, start function, the start PC's
/// physical function).
fn recorded(cap: &Capture, goid: u64) -> (u64, String, String, String) {
    let events = cap.events().unwrap();
    let (parent, creation, start) = events
        .iter()
        .find_map(|(_, e)| match e.data {
            EventData::GoCreate {
                parent,
                creation,
                start,
            } if e.goid == goid => Some((parent, creation, start)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no creation of goroutine {goid} in the capture"));
    let syms = |stack| cap.symbolize(0, cap.stack(0, stack)[0]);
    let site = &syms(creation)[0];
    let base = cap
        .string(site.file)
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let start = syms(start);
    (
        parent,
        format!("{} ({base}:{})", cap.string(site.function), site.line),
        cap.string(start[0].function).to_string(),
        cap.string(start.last().unwrap().function).to_string(),
    )
}

fn names_equal_go_traceback(version: &str) {
    require_root();
    assert!(
        gcap_testenv::go_versions().contains(&version),
        "Go {version} is not in scripts/deps/go-versions"
    );
    let minor: u32 = version.split('.').nth(1).unwrap().parse().unwrap();
    let src = manifest("tests/programs/naming/main.go");
    let bin = go_build(&src, version, &[], &format!("naming-go{version}"));
    let file = support::tmp_capture(&format!("naming-go{version}.gcap"));
    let out = Command::new(env!("CARGO_BIN_EXE_gcap"))
        .args(["-o", file.to_str().unwrap(), "--"])
        .arg(&bin)
        .output()
        .expect("running gcap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gcap failed: {stderr}");
    assert!(stderr.contains(" 0 lost"), "summary: {stderr}");
    let go = tracebacks(&String::from_utf8_lossy(&out.stdout));
    let kinds = [
        "inlined",
        "called",
        "method",
        "value",
        "closure",
        "closure-args",
        "plain",
        "nested",
    ];
    assert_eq!(go.len(), kinds.len(), "{go:?}");
    // The case the names are for: from Go 1.22 the compiler inlines small `go` targets into
    // their wrapper, and Go's traceback still names the target.
    if minor >= 22 {
        for kind in ["inlined", "method", "nested", "closure-args"] {
            assert!(go[kind].inlined, "go{version} {kind}: not inlined: {go:?}");
        }
    }
    let cap = Capture::open(&file).unwrap();
    for kind in kinds {
        let tb = &go[kind];
        let (parent, site, start, physical) = recorded(&cap, tb.goid);
        let what = format!("go{version} {kind} (goroutine {}): {tb:?}", tb.goid);
        assert_eq!(site, tb.created_by, "creation site of {what}");
        if let Some(p) = tb.parent {
            assert_eq!(parent, p, "parent of {what}");
        }
        // A wrapper that calls its target through a func value (`go m(x)` with a method
        // value; `go func(a T) {...}(x)` before Go 1.22, which does not inline the closure)
        // says nothing in the binary about what it calls: gcap names the goroutine after the
        // wrapper itself, never after something it merely calls.
        let through_func_value = kind == "value" || (kind == "closure-args" && minor < 22);
        if through_func_value {
            assert_eq!(start, physical, "start function of {what}");
            assert!(
                start.starts_with("main.main.func") || start.starts_with("main.main.gowrap"),
                "start function of {what}: {start}"
            );
        } else {
            assert_eq!(start, tb.function, "start function of {what}");
        }
    }
}

#[test]
fn names_equal_go_traceback_go1_19() {
    names_equal_go_traceback("1.19");
}

#[test]
fn names_equal_go_traceback_go1_21() {
    names_equal_go_traceback("1.21.13");
}

#[test]
fn names_equal_go_traceback_go1_27() {
    names_equal_go_traceback("1.27.3");
}
