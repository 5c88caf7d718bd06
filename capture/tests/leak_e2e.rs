//! Leak suspects on a real service: Debian's prometheus under query load, captured at gcap's
//! defaults. Its fixed background goroutines (a couple at `(*Manager).Run` blocked in
//! `select` the whole capture) are stuck but do not pile up: `ganalyze goroutines`, told to
//! list every group of stuck goroutines, lists them, and the report names none of them a
//! leak suspect. Any suspect the report keeps grew in Go's own goroutine dumps taken at the
//! capture's start and end, or is a pile of a thousand.
//!
//! Runs as root (eBPF). Nothing is skipped.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::services::{get, prometheus};
use support::{gcap_attached, require_root};

/// How many goroutines Go's dump (`debug=2`) lists per "created by" function.
fn created_by(dump: &str) -> HashMap<String, u64> {
    let mut n = HashMap::new();
    for line in dump.lines() {
        if let Some(by) = line.strip_prefix("created by ") {
            let f = by.split(" in goroutine ").next().unwrap_or(by);
            *n.entry(f.to_string()).or_default() += 1;
        }
    }
    n
}

#[test]
fn prometheus_background_goroutines_are_not_leak_suspects() {
    require_root();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("leak-prometheus");
    let _ = std::fs::remove_dir_all(&dir);
    let (server, port) = prometheus(&dir);
    // Let its background goroutines start and park (rule manager, scrape loops, TSDB).
    std::thread::sleep(Duration::from_secs(2));
    let file = support::tmp_capture("leak-prometheus.gcap");
    let pid = server.0.id().to_string();
    let before = get(port, "/debug/pprof/goroutine?debug=2").unwrap();
    let mut gcap = gcap_attached(&["-o", file.to_str().unwrap(), "-p", &pid, "-d", "6s"]);
    // Bounded query load: 5 s or 1,000 queries, whichever comes first.
    let t = Instant::now();
    let mut sent = 0;
    while t.elapsed() < Duration::from_secs(5) && sent < 1_000 {
        let q = "/api/v1/query?query=rate(prometheus_http_requests_total%5B1m%5D)";
        get(port, q).unwrap_or_else(|r| panic!("{q}: {r}"));
        sent += 1;
    }
    let after = get(port, "/debug/pprof/goroutine?debug=2").unwrap();
    assert!(gcap.wait().unwrap().success(), "gcap failed");
    drop(server);

    // Stuck for a fifth of the capture, grown or not: the fixed workers are there (what the
    // report listed as leaks before it judged growth and count).
    let listing = Command::new(support::ganalyze())
        .args([
            "goroutines",
            "--leak-min-growth",
            "0",
            "--leak-min-fraction",
            "0.2",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("(*Manager).Run ("),
        "no stuck (*Manager).Run goroutines listed: {listing}"
    );

    let r = support::ganalyze_json(&["report", "--format", "json"], &file);
    let suspects = r["goroutines"]["leak_suspects"].as_array().unwrap();
    let (start, end) = (created_by(&before), created_by(&after));
    for l in suspects {
        let site = l["creation_site"].as_str().unwrap();
        assert!(!site.contains("(*Manager).Run ("), "fixed worker: {l:#}");
        let function = site.split(" (").next().unwrap();
        // Go's dumps name the creating function with its full package path.
        let count = |d: &HashMap<String, u64>| -> u64 {
            d.iter()
                .filter(|(f, _)| f.ends_with(function))
                .map(|(_, n)| n)
                .sum()
        };
        assert!(
            count(&end) > count(&start) || l["count"].as_u64().unwrap() >= 1_000,
            "{l:#}: {} goroutines at the start, {} at the end",
            count(&start),
            count(&end)
        );
    }
    println!(
        "prometheus: {sent} queries; leak suspects: {:#?}",
        suspects
            .iter()
            .map(|l| format!("{} x{} {}", l["creation_site"], l["count"], l["growth"]))
            .collect::<Vec<_>>()
    );
}
