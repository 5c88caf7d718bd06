//! Goroutine names equal Go's own traceback.
//!
//! - tests/programs/naming starts goroutines with every shape of `go` statement (a target
//!   inlined into the compiler's go wrapper, one the wrapper calls, a method, a method value,
//!   closures, a plain function, a `go` inside a closure), each printing its traceback; under
//!   `gcap -- PROGRAM` on Go 1.19, 1.21 and 1.27 (1.27 stripped too: the pclntab alone), the
//!   start function and creation site gcap records for each goroutine must be the bottom frame
//!   and the "created by" line Go printed.
//! - Debian's prometheus under query load: its goroutine dump (Go's tracebacks of every live
//!   goroutine) agrees with the capture, and the goroutines its queries start are named after
//!   their own closures, never after a function the closure calls (`sync.(*WaitGroup).Wait`).
//!
//! Runs as root (eBPF). Nothing is skipped.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gcap_format::{Capture, EventData};

mod support;
use support::services::{free_port, get, prometheus, ready, Server};
use support::{gcap_attached, go_build, manifest, require_root};

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

/// Parses one goroutine's traceback ("goroutine N [...]:", frames, "created by ..."); `None`
/// for a goroutine without a creator (main) or whose bottom frames Go elided.
fn traceback(block: &str) -> Option<Traceback> {
    let lines: Vec<&str> = block.lines().collect();
    let goid = lines
        .first()?
        .strip_prefix("goroutine ")?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    let created = lines.iter().position(|l| l.starts_with("created by "))?;
    if created < 2 || lines[created - 2].starts_with("...") {
        return None;
    }
    // Frames are "FUNCTION(ARGS)" then "\tFILE:LINE [+0xOFF]"; the bottom one is just above
    // "created by".
    let (function, args) = lines[created - 2].rsplit_once('(')?;
    let by = &lines[created]["created by ".len()..];
    let (by_function, parent) = match by.split_once(" in goroutine ") {
        Some((f, g)) => (f, g.parse().ok()),
        None => (by, None),
    };
    let place = lines.get(created + 1)?.trim().split(' ').next()?;
    let (file, line) = place.rsplit_once(':')?;
    let base = file.rsplit('/').next()?;
    Some(Traceback {
        goid,
        function: function.to_string(),
        inlined: args == "...)",
        created_by: format!("{by_function} ({base}:{line})"),
        parent,
    })
}

/// gcap's record of one goroutine's origin.
#[derive(Debug)]
struct Origin {
    parent: u64,
    /// "pkg.Func (file.go:LINE)".
    site: String,
    start: String,
    /// The physical function at the start PC (the start PC's last symbol).
    start_physical: String,
}

/// Every goroutine origin in the capture: created during it, or read from memory (go_info).
fn origins(cap: &Capture) -> HashMap<u64, Origin> {
    let syms = |stack| cap.symbolize(0, cap.stack(0, stack)[0]);
    let mut out = HashMap::new();
    for (_, e) in cap.events().unwrap() {
        let (EventData::GoCreate {
            parent,
            creation,
            start,
        }
        | EventData::GoInfo {
            parent,
            creation,
            start,
        }) = e.data
        else {
            continue;
        };
        let (site, start) = (&syms(creation)[0], syms(start));
        let base = cap.string(site.file).rsplit('/').next().unwrap();
        out.insert(
            e.goid,
            Origin {
                parent,
                site: format!("{} ({base}:{})", cap.string(site.function), site.line),
                start: cap.string(start[0].function).to_string(),
                start_physical: cap.string(start.last().unwrap().function).to_string(),
            },
        );
    }
    out
}

/// `stripped`: built with `-ldflags=-s -w` (no symbol table, no DWARF): names come from the
/// pclntab alone.
fn names_equal_go_traceback(version: &str, stripped: bool) {
    require_root();
    assert!(
        gcap_testenv::go_versions().contains(&version),
        "Go {version} is not in scripts/install-deps/go-versions"
    );
    let minor: u32 = version.split('.').nth(1).unwrap().parse().unwrap();
    let src = manifest("tests/programs/naming/main.go");
    let (flags, name): (&[&str], _) = if stripped {
        (&["-ldflags=-s -w"], format!("naming-go{version}-stripped"))
    } else {
        (&[], format!("naming-go{version}"))
    };
    let bin = go_build(&src, version, flags, &name);
    let file = support::tmp_capture(&format!("{name}.gcap"));
    // Every goroutine's creation is recorded (--budget off): each is named from it.
    let out = Command::new(env!("CARGO_BIN_EXE_gcap"))
        .args(["--budget", "off", "-o", file.to_str().unwrap(), "--"])
        .arg(&bin)
        .output()
        .expect("running gcap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gcap failed: {stderr}");
    assert!(stderr.contains(" 0 lost"), "summary: {stderr}");
    // The program prints "=== KIND" before each traceback.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let go: HashMap<&str, Traceback> = stdout
        .split("=== ")
        .skip(1)
        .map(|b| {
            let (kind, tb) = b.split_once('\n').unwrap();
            (
                kind,
                traceback(tb).unwrap_or_else(|| panic!("{kind}: {tb}")),
            )
        })
        .collect();
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
    let recorded = origins(&Capture::open(&file).unwrap());
    for kind in kinds {
        let tb = &go[kind];
        let what = format!("go{version} {kind}: {tb:?}");
        let o = recorded
            .get(&tb.goid)
            .unwrap_or_else(|| panic!("{what}: not in the capture"));
        assert_eq!(o.site, tb.created_by, "creation site of {what}");
        if let Some(p) = tb.parent {
            assert_eq!(o.parent, p, "parent of {what}");
        }
        // A wrapper that calls its target through a func value (`go m(x)` with a method
        // value; `go func(a T) {...}(x)` before Go 1.22, which does not inline the closure)
        // says nothing in the binary about what it calls: gcap names the goroutine after the
        // wrapper itself, never after something it merely calls.
        let through_func_value = kind == "value" || (kind == "closure-args" && minor < 22);
        if through_func_value {
            assert_eq!(o.start, o.start_physical, "start function of {what}");
            assert!(
                o.start.starts_with("main.main.func") || o.start.starts_with("main.main.gowrap"),
                "start function of {what}: {o:?}"
            );
        } else {
            assert_eq!(o.start, tb.function, "start function of {what}");
        }
    }
}

#[test]
fn names_equal_go_traceback_go1_19() {
    names_equal_go_traceback("1.19", false);
}

#[test]
fn names_equal_go_traceback_go1_21() {
    names_equal_go_traceback("1.21.13", false);
}

#[test]
fn names_equal_go_traceback_go1_27() {
    names_equal_go_traceback("1.27.3", false);
}

#[test]
fn names_equal_go_traceback_go1_27_stripped() {
    names_equal_go_traceback("1.27.3", true);
}

#[test]
fn prometheus_under_query_load() {
    require_root();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("naming-prometheus");
    let _ = std::fs::remove_dir_all(&dir);
    let (server, port) = prometheus(&dir);
    let file = support::tmp_capture("naming-prometheus.gcap");
    let pid = server.0.id().to_string();
    let mut gcap = gcap_attached(&["-o", file.to_str().unwrap(), "-p", &pid, "-d", "5s"]);

    // Bounded query load: 3 s or 600 queries, whichever comes first.
    let queries = [
        "/api/v1/query?query=up",
        "/api/v1/query?query=rate(prometheus_http_requests_total%5B1m%5D)",
    ];
    let t = Instant::now();
    let mut sent = 0;
    while t.elapsed() < Duration::from_secs(3) && sent < 600 {
        let q = queries[sent % queries.len()];
        get(port, q).unwrap_or_else(|r| panic!("{q}: {r}"));
        sent += 1;
    }
    // Go's own tracebacks of every live goroutine, taken while the capture runs.
    let dump = get(port, "/debug/pprof/goroutine?debug=2").unwrap();
    assert!(gcap.wait().unwrap().success(), "gcap failed");
    drop(server);

    let recorded = origins(&Capture::open(&file).unwrap());
    // Every goroutine a query's Select starts is named after its own closure: one per querier
    // (merge.go:127) and the one that waits for them (merge.go:134), whose first call is
    // sync.(*WaitGroup).Wait.
    let select = "storage.(*mergeGenericQuerier).Select (";
    let from_select: Vec<&Origin> = recorded
        .values()
        .filter(|o| o.site.contains(select))
        .collect();
    assert!(
        from_select.len() >= sent,
        "{sent} queries, {} goroutines from Select",
        from_select.len()
    );
    for o in &from_select {
        assert!(
            o.start.starts_with(
                "github.com/prometheus/prometheus/storage.(*mergeGenericQuerier).Select.func"
            ),
            "{o:?}"
        );
    }
    for o in recorded.values() {
        assert!(
            !o.start.starts_with("sync."),
            "named after a function its closure calls: {o:?}"
        );
    }
    // Long-lived goroutines: gcap's names equal the dump's, except where the go wrapper calls
    // its target through a func value or an interface (prometheus is built by Go 1.19, which
    // never inlines into wrappers): gcap then names the wrapper itself, never another function.
    let mut compared = 0;
    let mut wrapper_named = Vec::new();
    for tb in dump.split("\n\n").filter_map(traceback) {
        // A goroutine created but not yet run shows only runtime.goexit.
        let Some(o) = recorded
            .get(&tb.goid)
            .filter(|_| tb.function != "runtime.goexit")
        else {
            continue;
        };
        compared += 1;
        assert_eq!(o.site, tb.created_by, "creation site of {tb:?}");
        assert!(
            o.start == tb.function || o.start == o.start_physical,
            "start function of {tb:?}: {o:?}"
        );
        if o.start != tb.function {
            wrapper_named.push(format!("{} (Go: {})", o.start, tb.function));
        }
    }
    println!(
        "prometheus: {sent} queries; {} goroutines started by Select; {compared} goroutines of \
         Go's dump compared, {} named after their go wrapper: {wrapper_named:?}",
        from_select.len(),
        wrapper_named.len()
    );
    assert!(
        compared >= 3,
        "only {compared} goroutines of the dump were captured: {dump}"
    );
}

/// Debian's caddy (stripped, externally linked, an older Go) idle behind gcap at its defaults:
/// its own long-lived goroutines, parked before gcap attached and never running during the
/// capture, are listed by `ganalyze goroutines` with their names.
#[test]
fn caddy_goroutines_are_named_at_defaults() {
    require_root();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("naming-caddy");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let config = dir.join("caddy.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"admin": {{"disabled": true}},
                "apps": {{"http": {{"servers": {{"s": {{"listen": ["127.0.0.1:{port}"],
                  "routes": [{{"handle": [{{"handler": "static_response", "body": "ok"}}]}}]}}}}}}}}}}"#
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("caddy.log")).unwrap();
    let child = Command::new("caddy")
        .args(["run", "--config"])
        .arg(&config)
        // caddy keeps state under $HOME and the XDG directories: keep them in the test's.
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting caddy (Debian package caddy: run scripts/install-deps.sh)");
    let server = Server(child);
    ready(port, "/", &dir.join("caddy.log"));
    let file = support::capture_at_defaults("naming-caddy.gcap", server.0.id(), "2s");
    drop(server);

    let gs = support::ganalyze_json(&["goroutines", "--format", "json"], &file);
    let caddy: Vec<&str> = gs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["start_function"].as_str())
        .filter(|f| f.starts_with("github.com/caddyserver/"))
        .collect();
    println!("caddy: {} of its own goroutines: {caddy:?}", caddy.len());
    assert!(
        !caddy.is_empty(),
        "no github.com/caddyserver goroutine listed: {gs:#}"
    );
}
