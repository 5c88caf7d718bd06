//! The real `ganalyze` binary on the golden capture and on hand-built captures with known
//! contents: contract JSON shapes, CSV and text outputs, exports, and bad input.
//!
//! Captures from real gcap runs (corpus/*.gcap) are checked by `corpus_captures` when
//! present: drop a file there and it is covered.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ganalyze::testkit::scenario;
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ganalyze"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn golden() -> PathBuf {
    repo().join("corpus/golden/format-v1.gcap")
}

/// Runs ganalyze in `dir` and returns its output.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run ganalyze")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ganalyze failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

/// A temp dir holding the scenario captures under short, stable names.
fn scenarios() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("lifecycle.gcap"), scenario::lifecycle(false)).unwrap();
    std::fs::write(d.path().join("leak.gcap"), scenario::leak()).unwrap();
    std::fs::write(d.path().join("frontend.gcap"), scenario::spans()).unwrap();
    std::fs::write(d.path().join("pricing.gcap"), scenario::downstream()).unwrap();
    std::fs::write(d.path().join("windowed.gcap"), scenario::windowed(2)).unwrap();
    d
}

fn is_int(v: &Value) -> bool {
    v.is_i64() || v.is_u64()
}

/// Checks the contract's required goroutine fields and their types.
fn check_goroutine_shape(g: &Value) {
    for k in ["pid", "goid", "running_ns", "runnable_ns", "syscall_ns"] {
        assert!(is_int(&g[k]), "{k} must be an int in {g}");
    }
    for k in ["parent_goid", "created_ns", "exited_ns"] {
        assert!(
            g[k].is_null() || is_int(&g[k]),
            "{k} must be int|null in {g}"
        );
    }
    for k in ["start_function", "creation_site"] {
        assert!(g[k].is_string(), "{k} must be a string in {g}");
    }
    for k in ["blocked_ns", "wakeups_by"] {
        let m = g[k]
            .as_object()
            .unwrap_or_else(|| panic!("{k} must be an object in {g}"));
        assert!(m.values().all(is_int), "{k} values must be ints");
    }
    for goid in g["wakeups_by"].as_object().unwrap().keys() {
        goid.parse::<u64>()
            .expect("wakeups_by keys are goroutine ids");
    }
}

/// Checks the contract's required span fields and their types.
fn check_span_shape(s: &Value) {
    for k in ["pid", "start_ns", "duration_ns", "goroutine"] {
        assert!(is_int(&s[k]), "{k} must be an int in {s}");
    }
    assert!(["http_server", "http_client", "sql"].contains(&s["kind"].as_str().unwrap()));
    assert!(s["name"].is_string() && s["span_id"].is_string());
    assert!(s["error"].is_boolean());
    assert!(s["status"].is_null() || is_int(&s["status"]));
    assert!(s["parent_span"].is_null() || s["parent_span"].is_string());
    match &s["trace_id"] {
        Value::Null => {}
        Value::String(t) => assert!(t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit())),
        v => panic!("trace_id must be a string or null, not {v}"),
    }
}

fn json(dir: &Path, args: &[&str]) -> Vec<Value> {
    let text = ok(&run_in(dir, args));
    serde_json::from_str::<Value>(&text)
        .expect("valid JSON")
        .as_array()
        .expect("a JSON array")
        .clone()
}

#[test]
fn golden_goroutines_and_spans_json_follow_the_contract() {
    let here = repo();
    let g = golden();
    let gs = json(
        &here,
        &["goroutines", "--format", "json", g.to_str().unwrap()],
    );
    assert_eq!(gs.len(), 288);
    gs.iter().for_each(check_goroutine_shape);
    let spans = json(&here, &["spans", "--format", "json", g.to_str().unwrap()]);
    assert_eq!(spans.len(), 138);
    spans.iter().for_each(check_span_shape);
    let client = spans.iter().find(|s| s["kind"] == "http_client").unwrap();
    assert_eq!(client["name"], "GET 127.0.0.1:8081/price");
    assert_eq!(client["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert!(spans
        .iter()
        .any(|s| s["kind"] == "sql" && s["name"] == "SELECT"));
}

#[test]
fn golden_csv_and_text() {
    let here = repo();
    let g = golden();
    let text = ok(&run_in(
        &here,
        &["goroutines", "--format", "csv", g.to_str().unwrap()],
    ));
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    assert_eq!(&headers[0], "pid");
    assert_eq!(&headers[1], "goid");
    assert_eq!(r.records().count(), 288);
    let text = ok(&run_in(
        &here,
        &["spans", "--format", "csv", g.to_str().unwrap()],
    ));
    assert_eq!(
        csv::Reader::from_reader(text.as_bytes()).records().count(),
        138
    );
    let text = ok(&run_in(&here, &["goroutines", g.to_str().unwrap()]));
    assert!(text.starts_with("288 goroutines in 1 process"), "{text}");
    assert!(text.contains("more not shown"));
    let text = ok(&run_in(
        &here,
        &["spans", "--limit", "0", g.to_str().unwrap()],
    ));
    assert!(text.contains("GET /api/orders"));
    assert!(!text.contains("more not shown"));
}

#[test]
fn snapshots_of_known_captures() {
    let d = scenarios();
    let p = d.path();
    insta::assert_snapshot!(
        "goroutines_lifecycle_json",
        ok(&run_in(
            p,
            &["goroutines", "--format", "json", "lifecycle.gcap"]
        ))
    );
    insta::assert_snapshot!(
        "goroutines_lifecycle_text",
        ok(&run_in(p, &["goroutines", "lifecycle.gcap"]))
    );
    // Its stuck goroutines did not pile up: listed as suspects only when told to list
    // every group of stuck goroutines.
    assert!(!ok(&run_in(p, &["goroutines", "leak.gcap"])).contains("Leak suspects"));
    insta::assert_snapshot!(
        "goroutines_leak_text",
        ok(&run_in(
            p,
            &["goroutines", "--leak-min-growth", "0", "leak.gcap"]
        ))
    );
    insta::assert_snapshot!(
        "spans_two_services_json",
        ok(&run_in(
            p,
            &["spans", "--format", "json", "frontend.gcap", "pricing.gcap"]
        ))
    );
    insta::assert_snapshot!(
        "spans_two_services_text",
        ok(&run_in(p, &["spans", "frontend.gcap", "pricing.gcap"]))
    );
    // A budgeted capture: what it covered and cost, unknown time, unseen exits.
    insta::assert_snapshot!(
        "info_windowed_text",
        ok(&run_in(p, &["info", "windowed.gcap"]))
    );
    insta::assert_snapshot!(
        "goroutines_windowed_text",
        ok(&run_in(p, &["goroutines", "windowed.gcap"]))
    );
}

#[test]
fn info_json_has_coverage_and_overhead() {
    let d = scenarios();
    let info = |file: &str| -> Value {
        serde_json::from_str(&ok(&run_in(d.path(), &["info", "--format", "json", file]))).unwrap()
    };
    let v = info("windowed.gcap");
    let c = &v["coverage"];
    assert_eq!(c["lifecycle"].as_f64(), Some(0.8));
    assert_eq!(c["spans"].as_f64(), Some(1.0));
    assert_eq!(c["windows"], 2);
    let o = &v["overhead"];
    assert_eq!(o["budget"].as_f64(), Some(0.02));
    assert!((o["measured"].as_f64().unwrap() - 0.015).abs() < 1e-12);
    // A capture that predates budgets: covered by its level, cost unknown.
    let v = info("lifecycle.gcap");
    assert_eq!(v["coverage"]["lifecycle"].as_f64(), Some(1.0));
    assert_eq!(v["coverage"]["windows"], 1);
    assert!(v["overhead"]["budget"].is_null() && v["overhead"]["measured"].is_null());
    // No measurement: no `overhead` object (a present one always has a measured float).
    assert!(v["overhead"].is_null(), "{v}");
    // Goroutine rows say how much of each life was not covered.
    let gs = json(
        d.path(),
        &["goroutines", "--format", "json", "windowed.gcap"],
    );
    let g7 = gs.iter().find(|g| g["goid"] == 7).unwrap();
    assert_eq!(g7["unknown_ns"], 2_000_000);
    assert_eq!(g7["start_function"], "main.(*store).refresh");
    let g50 = gs.iter().find(|g| g["goid"] == 50).unwrap();
    assert_eq!(g50["ended_by"], "exited_unseen");
    assert!(g50["exited_ns"].is_null());
}

#[test]
fn spans_join_across_files() {
    let d = scenarios();
    let spans = json(
        d.path(),
        &["spans", "--format", "json", "frontend.gcap", "pricing.gcap"],
    );
    spans.iter().for_each(check_span_shape);
    let down = spans.iter().find(|s| s["span_id"] == "5151:9").unwrap();
    assert_eq!(down["parent_span"], "4242:2");
    assert_eq!(down["start_ns"], 1450);
    let client = spans.iter().find(|s| s["span_id"] == "4242:2").unwrap();
    assert_eq!(client["parent_span"], "4242:1");
}

#[test]
fn exports() {
    use polars::prelude::*;
    let d = scenarios();
    let p = d.path();
    let out = run_in(
        p,
        &[
            "export",
            "frontend.gcap",
            "pricing.gcap",
            "--format",
            "parquet",
            "-o",
            "pq",
        ],
    );
    ok(&out);
    for (svc, cap, spans) in [("frontend", "frontend", 4), ("pricing", "pricing", 1)] {
        let dir = p
            .join("pq")
            .join(format!("service={svc}"))
            .join(format!("capture={cap}"));
        for t in ["goroutines", "states", "spans"] {
            assert!(
                dir.join(format!("{t}.parquet")).exists(),
                "{t} in {}",
                dir.display()
            );
        }
        let df = ParquetReader::new(std::fs::File::open(dir.join("spans.parquet")).unwrap())
            .finish()
            .unwrap();
        assert_eq!(df.height(), spans);
        assert!(df.column("trace_id").is_ok());
    }
    ok(&run_in(
        p,
        &[
            "export",
            "lifecycle.gcap",
            "--format",
            "chrome",
            "-o",
            "trace.json",
        ],
    ));
    let v: Value = serde_json::from_slice(&std::fs::read(p.join("trace.json")).unwrap()).unwrap();
    let evs = v["traceEvents"].as_array().unwrap();
    assert!(evs.iter().any(|e| e["ph"] == "X"));
    assert!(evs.iter().any(|e| e["ph"] == "s") && evs.iter().any(|e| e["ph"] == "f"));
    ok(&run_in(
        p,
        &[
            "export",
            "frontend.gcap",
            "--format",
            "folded",
            "-o",
            "fe.folded",
        ],
    ));
    let folded = std::fs::read_to_string(p.join("fe.folded")).unwrap();
    assert!(folded
        .lines()
        .all(|l| l.rsplit(' ').next().unwrap().parse::<u64>().is_ok()));
    assert!(std::fs::read_to_string(p.join("fe.svg"))
        .unwrap()
        .contains("<svg"));
}

#[test]
fn bad_input_is_one_clear_line_and_non_zero() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(p.join("notes.txt"), "hello, not a capture").unwrap();
    for args in [
        &["goroutines", "missing.gcap"][..],
        &["spans", "notes.txt"],
        &["export", "notes.txt", "--format", "chrome", "-o", "x.json"],
    ] {
        let out = run_in(p, args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("ganalyze: "), "{err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn a_closed_pipe_ends_a_listing_quietly() {
    // `ganalyze goroutines FILE | head`: the reader is gone before the listing is written.
    let g = golden();
    for cmd in ["goroutines", "spans"] {
        for format in ["text", "json", "csv"] {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            let out = bin()
                .args([cmd, "--format", format, "--limit", "0", g.to_str().unwrap()])
                .stdout(writer)
                .output()
                .expect("run ganalyze");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{cmd} {format}: {}: {err}",
                out.status
            );
            // (The golden capture's loss warning is fine.)
            assert!(
                err.lines().all(|l| l.starts_with("ganalyze: warning: ")),
                "{cmd} {format}: {err}"
            );
        }
    }
}

#[test]
fn truncated_capture_warns_and_still_answers() {
    let d = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(golden()).unwrap();
    std::fs::write(d.path().join("cut.gcap"), &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = run_in(d.path(), &["goroutines", "--format", "json", "cut.gcap"]);
    let text = ok(&out);
    let gs: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(!gs.is_empty() && gs.len() < 288);
    gs.iter().for_each(check_goroutine_shape);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning"), "{err}");
}

#[test]
fn corpus_captures() {
    // Real gcap captures of the corpus workloads, when they have been recorded.
    let Ok(dir) = std::fs::read_dir(repo().join("corpus")) else {
        return;
    };
    let here = repo();
    for e in dir.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "gcap") {
            continue;
        }
        let f = path.to_str().unwrap();
        json(&here, &["goroutines", "--format", "json", f])
            .iter()
            .for_each(check_goroutine_shape);
        json(&here, &["spans", "--format", "json", f])
            .iter()
            .for_each(check_span_shape);
    }
}

/// `seal` turns a cut corpus capture (format version 1) into a finished one that `verify`
/// calls intact, `info` says was sealed after the fact, and that holds what the cut file
/// held; a finished file is refused, and OUT is not overwritten without --force.
#[test]
fn seal_finishes_a_cut_capture() {
    let d = tempfile::tempdir().unwrap();
    let src = std::fs::read(repo().join("corpus/captures/lock_convoy.gcap")).unwrap();
    std::fs::write(d.path().join("cut.gcap"), &src[..src.len() * 6 / 10]).unwrap();
    let out = run_in(d.path(), &["seal", "cut.gcap", "-o", "sealed.gcap"]);
    let said = ok(&out);
    assert!(said.contains("sealed from cut.gcap"), "{said}");
    ok(&run_in(d.path(), &["verify", "sealed.gcap"]));
    let info = |f: &str| -> Value {
        serde_json::from_str(&ok(&run_in(d.path(), &["info", "--format", "json", f]))).unwrap()
    };
    let (cut, sealed) = (info("cut.gcap"), info("sealed.gcap"));
    assert_eq!(cut["complete"], false);
    assert!(cut["sealed"].is_null());
    assert_eq!(sealed["complete"], true);
    assert_eq!(sealed["events"], cut["events"]);
    assert_eq!(sealed["events_by_kind"], cut["events_by_kind"]);
    assert_eq!(sealed["sealed"]["source_digest"], cut["digest"]);
    assert_eq!(sealed["sealed"]["chain_head"], cut["chain"]["head"]);
    assert!(sealed["sealed"]["sealed_by"]
        .as_str()
        .unwrap()
        .starts_with("ganalyze "));
    let text = ok(&run_in(d.path(), &["info", "sealed.gcap"]));
    assert!(text.contains("sealed          after the fact"), "{text}");
    // Again into the same OUT: refused without --force, done with it.
    let again = run_in(d.path(), &["seal", "cut.gcap", "-o", "sealed.gcap"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    ok(&run_in(
        d.path(),
        &["seal", "cut.gcap", "-o", "sealed.gcap", "--force"],
    ));
    // A finished capture has nothing to seal.
    let done = run_in(d.path(), &["seal", "sealed.gcap", "-o", "twice.gcap"]);
    assert_eq!(done.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&done.stderr).contains("nothing to seal"));
    assert!(!d.path().join("twice.gcap").exists());
}
