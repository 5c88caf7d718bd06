//! The known facts of each corpus case (corpus/README.md), checked on the real gcap captures
//! in corpus/captures through the ganalyze binary's contract JSON: counts against the load
//! generator's own numbers for the same run, parentage, creation sites and start functions,
//! wait reasons, wakers, span-goroutine ties and cross-process joins.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn capture(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../corpus/captures/{case}.gcap"))
}

fn ganalyze(cmd: &str, case: &str) -> Vec<Value> {
    json_of(&[cmd, "--format", "json"], case)
        .as_array()
        .unwrap()
        .clone()
}

/// Requests per path the load generator sent in the same run.
fn loadgen(case: &str) -> HashMap<String, u64> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../corpus/captures/{case}.loadgen.json"));
    let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v["urls"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(url, s)| {
            let path = format!("/{}", url.splitn(4, '/').nth(3).unwrap());
            (path, s["count"].as_u64().unwrap())
        })
        .collect()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// Every request the load generator made is one server span with a trace id, served by a
/// goroutine that is in the goroutine list.
fn spans_match_load(case: &str) -> (Vec<Value>, Vec<Value>) {
    let spans = ganalyze("spans", case);
    let gs = ganalyze("goroutines", case);
    let ids: HashSet<(u64, u64)> = gs
        .iter()
        .map(|g| (g["pid"].as_u64().unwrap(), g["goid"].as_u64().unwrap()))
        .collect();
    for (path, n) in loadgen(case) {
        let name = format!("GET {path}");
        let count = spans
            .iter()
            .filter(|x| s(x, "kind") == "http_server" && s(x, "name") == name)
            .count() as u64;
        assert_eq!(count, n, "{case}: {name} spans vs requests sent");
    }
    for x in spans.iter().filter(|x| s(x, "kind") == "http_server") {
        assert!(
            x["trace_id"].is_string(),
            "{case}: span without trace id: {x}"
        );
        let key = (x["pid"].as_u64().unwrap(), x["goroutine"].as_u64().unwrap());
        assert!(
            ids.contains(&key),
            "{case}: span on unknown goroutine {key:?}"
        );
    }
    (spans, gs)
}

fn by_start<'a>(gs: &'a [Value], f: &str) -> Vec<&'a Value> {
    gs.iter().filter(|g| s(g, "start_function") == f).collect()
}

#[test]
fn lifecycle() {
    let gs = ganalyze("goroutines", "lifecycle");
    let workers = by_start(&gs, "main.worker");
    assert_eq!(workers.len(), 100);
    for w in workers {
        assert_eq!(s(w, "creation_site"), "main.main (main.go:160)");
        assert_eq!(w["parent_goid"], 1);
        assert!(w["created_ns"].is_u64() && w["exited_ns"].is_u64());
        for reason in ["chan receive", "sync.Mutex.Lock", "sleep"] {
            assert!(
                w["blocked_ns"][reason].as_u64().unwrap() > 0,
                "{reason}: {w}"
            );
        }
        assert!(
            w["wakeups_by"]["1"].as_u64().unwrap() >= 1,
            "main releases the chan: {w}"
        );
    }
}

#[test]
fn lock_convoy() {
    let (_, gs) = spans_match_load("lock_convoy");
    let refresh = by_start(&gs, "main.(*store).refresh");
    assert_eq!(refresh.len(), 1);
    assert_eq!(s(refresh[0], "creation_site"), "main.main (main.go:93)");
    assert!(refresh[0]["blocked_ns"]["sleep"].as_u64().unwrap() > 1_000_000_000);
    // Handlers waiting on the mutex are woken by the refresher.
    let rid = refresh[0]["goid"].to_string();
    let woken = gs
        .iter()
        .filter(|g| s(g, "start_function") == "net/http.(*conn).serve")
        .filter(|g| g["wakeups_by"][&rid].as_u64().unwrap_or(0) > 0)
        .count();
    assert!(woken > 0, "no handler woken by the refresher");
}

#[test]
fn worker_pool() {
    let (_, gs) = spans_match_load("worker_pool");
    let workers = by_start(&gs, "main.worker");
    assert_eq!(workers.len(), 1, "the pool has one worker");
    assert_eq!(s(workers[0], "creation_site"), "main.main (main.go:73)");
    let wid = workers[0]["goid"].to_string();
    let served = gs
        .iter()
        .filter(|g| s(g, "start_function") == "net/http.(*conn).serve")
        .filter(|g| g["wakeups_by"][&wid].as_u64().unwrap_or(0) > 0)
        .count();
    assert!(served > 0, "handlers are woken by the worker");
}

#[test]
fn slow_downstream_joins_two_processes() {
    let (spans, _) = spans_match_load("slow_downstream");
    let by_id: HashMap<&str, &Value> = spans.iter().map(|x| (s(x, "span_id"), x)).collect();
    let pids: HashSet<u64> = spans.iter().map(|x| x["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 2, "frontend and backend");
    let backend: Vec<&Value> = spans
        .iter()
        .filter(|x| s(x, "name") == "GET /price")
        .collect();
    let clients = spans
        .iter()
        .filter(|x| s(x, "kind") == "http_client")
        .count();
    assert_eq!(backend.len(), clients);
    for b in backend {
        let parent = by_id[s(b, "parent_span")];
        assert_eq!(s(parent, "kind"), "http_client");
        assert_ne!(parent["pid"], b["pid"], "joined across processes");
        assert_eq!(parent["trace_id"], b["trace_id"]);
        // The client call nests in the frontend's server span.
        assert_eq!(
            s(by_id[s(parent, "parent_span")], "name"),
            "GET /api/checkout"
        );
    }
}

#[test]
fn slow_sql_nests_queries_under_requests() {
    let (spans, _) = spans_match_load("slow_sql");
    let by_id: HashMap<&str, &Value> = spans.iter().map(|x| (s(x, "span_id"), x)).collect();
    let sql: Vec<&Value> = spans.iter().filter(|x| s(x, "kind") == "sql").collect();
    let requests = spans
        .iter()
        .filter(|x| s(x, "kind") == "http_server")
        .count();
    assert_eq!(sql.len(), requests, "one query per request");
    for q in sql {
        assert_eq!(s(q, "name"), "SELECT");
        assert_eq!(s(by_id[s(q, "parent_span")], "kind"), "http_server");
    }
}

#[test]
fn goroutine_leak() {
    let (_, gs) = spans_match_load("goroutine_leak");
    let leaked = by_start(&gs, "main.leakyWorker");
    assert_eq!(
        leaked.len() as u64,
        loadgen("goroutine_leak")["/api/search"]
    );
    for g in leaked {
        assert_eq!(s(g, "creation_site"), "main.search (main.go:40)");
        assert!(g["exited_ns"].is_null(), "still alive at the end");
        assert!(g["blocked_ns"]["chan receive"].as_u64().unwrap() > 0);
    }
}

#[test]
fn cpu_starvation() {
    let (_, gs) = spans_match_load("cpu_starvation");
    let spinners = by_start(&gs, "main.spin");
    assert_eq!(spinners.len(), 2);
    for sp in &spinners {
        assert_eq!(s(sp, "creation_site"), "main.main (main.go:66)");
    }
    // The handlers spend most of their time runnable, not running.
    let handlers = by_start(&gs, "net/http.(*conn).serve");
    let runnable: u64 = handlers
        .iter()
        .map(|g| g["runnable_ns"].as_u64().unwrap())
        .sum();
    let running: u64 = handlers
        .iter()
        .map(|g| g["running_ns"].as_u64().unwrap())
        .sum();
    assert!(
        runnable > 10 * running,
        "runnable {runnable} vs running {running}"
    );
}

#[test]
fn gc_pressure() {
    spans_match_load("gc_pressure");
    let out = Command::new(env!("CARGO_BIN_EXE_ganalyze"))
        .args(["info", "--format", "json"])
        .arg(capture("gc_pressure"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["events_by_kind"]["gc_start"].as_u64().unwrap() >= 10,
        "{}",
        v["events_by_kind"]
    );
}

/// The binary's JSON output of `args` on one case's capture.
fn json_of(args: &[&str], case: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ganalyze"))
        .args(args)
        .arg(capture(case))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every corpus capture predates budgets: it recorded every transition, so it is covered
/// throughout, no goroutine has unknown time, and every breaching request is explained.
#[test]
fn captures_without_windows_are_covered_throughout() {
    for case in [
        "lifecycle",
        "lock_convoy",
        "worker_pool",
        "slow_downstream",
        "slow_sql",
        "goroutine_leak",
        "cpu_starvation",
        "gc_pressure",
    ] {
        let info = json_of(&["info", "--format", "json"], case);
        let c = &info["coverage"];
        assert_eq!(c["spans"].as_f64(), Some(1.0), "{case}");
        assert_eq!(c["lifecycle"].as_f64(), Some(1.0), "{case}");
        assert_eq!(c["windows"], 1, "{case}");
        assert!(info["overhead"]["budget"].is_null(), "{case}");
        assert!(info["overhead"]["measured"].is_null(), "{case}");
        assert!(info["overhead"].is_null(), "{case}");
        for g in ganalyze("goroutines", case) {
            assert_eq!(g["unknown_ns"], 0, "{case}: goroutine {}", g["goid"]);
        }
        // An SLO that matches no request is an error: the lifecycle case serves none.
        let slo: &[&str] = if case == "lifecycle" {
            &[]
        } else {
            &["--slo", "*: p50 < 1ms"]
        };
        let r = json_of(&[&["report", "--format", "json"][..], slo].concat(), case);
        assert_eq!(r["captures"][0]["coverage"], *c, "{case}");
        for s in r["slos"].as_array().unwrap() {
            assert_eq!(s["explained_requests"], s["breaching_requests"], "{case}");
        }
    }
}
