//! `ganalyze report` on the corpus captures (known causes, corpus/README.md) and on
//! hand-built captures with exact answers: root causes, healthy endpoints, snapshots of
//! the text, JSON and Markdown reports, the HTML report in a real headless Chromium, and
//! malformed SLOs on the command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use ganalyze::category::Category;
use ganalyze::report::{self, Report, SloReport};
use ganalyze::testkit::corpus::mark;
use ganalyze::testkit::scenario;
use ganalyze::{render, slo, Analysis, CaptureSet, LoadedCapture, Options};
use gcap_format::{EventData, SpanKind};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus_report(case: &str, slos: &[&str]) -> Report {
    let path = repo().join(format!("corpus/captures/{case}.gcap"));
    let set = CaptureSet::open(&[path]).unwrap();
    let a = Analysis::run(&set, &Options::default());
    let slos: Vec<_> = slos.iter().map(|s| slo::parse(s).unwrap()).collect();
    let mut r = report::build(&set, &a, &slos);
    for c in &mut r.captures {
        c.file = format!("{case}.gcap");
    }
    r
}

fn slo_of<'a>(r: &'a Report, endpoint: &str) -> &'a SloReport {
    r.slos.iter().find(|s| s.endpoint == endpoint).unwrap()
}

fn healthy(r: &Report, endpoint: &str) {
    let s = slo_of(r, endpoint);
    assert!(!s.breached, "{endpoint} must meet its SLO: {}", s.observed);
    assert!(
        s.root_causes.is_empty(),
        "{endpoint} is blamed: {:?}",
        s.root_causes
    );
    assert_eq!(s.breaching_requests, 0);
}

fn top(r: &Report, endpoint: &str) -> &'static str {
    let s = slo_of(r, endpoint);
    assert!(s.breached, "{endpoint}: {}", s.observed);
    s.root_causes[0].category.name()
}

#[test]
fn lock_convoy_is_the_refresh_goroutine_holding_the_mutex() {
    let r = corpus_report(
        "lock_convoy",
        &["GET /api/orders: p99 < 10ms", "GET /api/health: p99 < 5ms"],
    );
    assert_eq!(top(&r, "GET /api/orders"), "mutex");
    let c = &slo_of(&r, "GET /api/orders").root_causes[0];
    assert_eq!(
        c.where_,
        format!(
            "main.(*store).get (main.go:{})",
            mark("lock_convoy", "where")
        )
    );
    assert_eq!(
        c.blocker.as_deref(),
        Some(
            format!(
                "main.(*store).refresh created at main.main (main.go:{})",
                mark("lock_convoy", "go-refresh")
            )
            .as_str()
        )
    );
    assert!(c.share > 0.8, "{}", c.share);
    assert_eq!(c.activities[0].category, Category::Sleep);
    assert_eq!(
        c.activities[0].where_,
        format!(
            "main.(*store).refresh (main.go:{})",
            mark("lock_convoy", "hold")
        )
    );
    assert!(
        c.summary.contains("sleeps at main.(*store).refresh"),
        "{}",
        c.summary
    );
    assert!(!c.evidence.is_empty());
    healthy(&r, "GET /api/health");
}

#[test]
fn worker_pool_waits_on_the_channel_for_the_worker() {
    let r = corpus_report(
        "worker_pool",
        &["GET /api/work: p99 < 5ms", "GET /api/health: p99 < 50ms"],
    );
    assert_eq!(top(&r, "GET /api/work"), "chan");
    let c = &slo_of(&r, "GET /api/work").root_causes[0];
    assert_eq!(
        c.where_,
        format!("main.submit (main.go:{})", mark("worker_pool", "where"))
    );
    assert_eq!(
        c.blocker.as_deref(),
        Some(
            format!(
                "main.worker created at main.main (main.go:{})",
                mark("worker_pool", "go-worker")
            )
            .as_str()
        )
    );
    assert!(c.share > 0.5, "{}", c.share);
    // What the worker did meanwhile: the jobs ahead, on CPU.
    assert_eq!(c.activities[0].category, Category::OnCpu);
    healthy(&r, "GET /api/health");
}

#[test]
fn slow_downstream_is_the_price_call_and_the_backend_sleep() {
    let r = corpus_report(
        "slow_downstream",
        &[
            "GET /api/checkout: p99 < 50ms",
            "GET /api/health: p99 < 50ms",
        ],
    );
    assert_eq!(top(&r, "GET /api/checkout"), "downstream");
    let c = &slo_of(&r, "GET /api/checkout").root_causes[0];
    assert_eq!(
        c.where_,
        format!(
            "main.fetchPrice (main.go:{})",
            mark("slow_downstream", "where")
        )
    );
    let b = c.blocker.as_deref().unwrap();
    assert!(
        b.starts_with("GET 127.0.0.1:") && b.ends_with("/price"),
        "{b}"
    );
    assert!(c.share > 0.9, "{}", c.share);
    // Descended into the backend process (joined by trace context): it sleeps.
    assert_eq!(c.activities[0].category, Category::Sleep);
    assert_eq!(
        c.activities[0].where_,
        format!(
            "main.slowPrice (main.go:{})",
            mark("slow_downstream", "backend-sleep")
        )
    );
    healthy(&r, "GET /api/health");
}

#[test]
fn slow_sql_is_the_orders_query() {
    let r = corpus_report(
        "slow_sql",
        &[
            "GET /api/orders: p99 < 50ms",
            "GET /api/users: p99 < 50ms",
            "GET /api/health: p99 < 50ms",
        ],
    );
    assert_eq!(top(&r, "GET /api/orders"), "downstream");
    let c = &slo_of(&r, "GET /api/orders").root_causes[0];
    assert_eq!(
        c.where_,
        format!("main.loadOrder (main.go:{})", mark("slow_sql", "where"))
    );
    let b = c.blocker.as_deref().unwrap();
    assert!(
        b.starts_with("SELECT \"SELECT * FROM orders WHERE id = "),
        "{b}"
    );
    assert!(c.share > 0.9, "{}", c.share);
    assert_eq!(
        c.activities[0].where_,
        format!("main.serverExec (main.go:{})", mark("slow_sql", "db-sleep"))
    );
    healthy(&r, "GET /api/users");
    healthy(&r, "GET /api/health");
}

#[test]
fn gc_pressure_is_garbage_collection_in_churn() {
    let r = corpus_report(
        "gc_pressure",
        &["GET /api/alloc: p99 < 10ms", "GET /api/health: p99 < 100ms"],
    );
    assert_eq!(top(&r, "GET /api/alloc"), "gc");
    let s = slo_of(&r, "GET /api/alloc");
    let c = &s.root_causes[0];
    assert_eq!(
        c.where_,
        format!("main.churn (main.go:{})", mark("gc_pressure", "where"))
    );
    assert_eq!(c.blocker, None);
    assert!(c.share > 0.4, "{}", c.share);
    // The mark workers holding the CPUs come next.
    assert!(s
        .root_causes
        .iter()
        .any(|c| c.category == Category::Runnable));
    healthy(&r, "GET /api/health");
}

#[test]
fn cpu_starvation_is_runnable_time() {
    let r = corpus_report("cpu_starvation", &["GET /api/work: p99 < 100ms"]);
    assert_eq!(top(&r, "GET /api/work"), "runnable");
    let c = &slo_of(&r, "GET /api/work").root_causes[0];
    assert!(c.share > 0.9, "{}", c.share);
    // Who held the CPU: the two spinners (they started before gcap attached; gcap names
    // them when it first sees them run).
    assert!(
        c.blocker.as_deref().unwrap().starts_with(&format!(
            "CPU held by main.spin created at main.main (main.go:{})",
            mark("cpu_starvation", "go-spin")
        )),
        "{:?}",
        c.blocker
    );
    // /api/health: less affected, compared at p50 (corpus/README.md).
    let h = r
        .endpoints
        .iter()
        .find(|e| e.name == "GET /api/health")
        .unwrap();
    let w = r
        .endpoints
        .iter()
        .find(|e| e.name == "GET /api/work")
        .unwrap();
    assert!(w.p50_ns > 60 * h.p50_ns);
}

#[test]
fn goroutine_leak_lists_the_leaking_go_statement() {
    let r = corpus_report("goroutine_leak", &["GET /api/health: p99 < 50ms"]);
    let l = &r.goroutines.leak_suspects;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(
        l[0].creation_site,
        format!(
            "main.search (main.go:{})",
            mark("goroutine_leak", "go-leak")
        )
    );
    assert_eq!(l[0].blocked_on, "chan receive");
    assert_eq!(
        l[0].where_,
        format!(
            "main.leakyWorker (main.go:{})",
            mark("goroutine_leak", "blocked")
        )
    );
    let searches = r
        .endpoints
        .iter()
        .find(|e| e.name == "GET /api/search")
        .unwrap()
        .count;
    assert!(
        l[0].count >= searches * 9 / 10 && l[0].count <= searches,
        "{} of {searches}",
        l[0].count
    );
    assert!(r.goroutines.alive_at_end >= l[0].count);
    // One a search, all through the capture: they piled up during it, far beyond the
    // requests in flight (the load generator sends one at a time).
    assert!(l[0].growth >= l[0].count * 8 / 10, "{:?}", l[0]);
    assert_eq!(l[0].requests_in_flight, 1);
    let text = render::text::render(&r, false);
    let leaks = &text[text.find("Leak suspects").unwrap()..];
    insta::assert_snapshot!(
        "goroutine_leak_suspects_text",
        leaks.lines().take(2).collect::<Vec<_>>().join("\n")
    );
    healthy(&r, "GET /api/health");
}

#[test]
fn without_slos_every_endpoint_is_summarised_and_the_slowest_flagged() {
    let r = corpus_report("lock_convoy", &[]);
    assert!(r.slos.is_empty());
    let slow: Vec<_> = r.endpoints.iter().filter(|e| e.slowest).collect();
    assert_eq!(slow.len(), 1);
    assert_eq!(slow[0].name, "GET /api/orders");
    assert!(r
        .hint
        .as_deref()
        .unwrap()
        .contains("--slo \"GET /api/orders: p99 < "));
}

// ---- hand-built captures: exact answers, snapshots ------------------------------------

fn convoy_report() -> Report {
    let set = CaptureSet::from_bytes("convoy.gcap", scenario::convoy()).unwrap();
    let a = Analysis::run(&set, &Options::default());
    let slos = vec![
        slo::parse("GET /api/orders: p99 < 500us").unwrap(),
        slo::parse("GET /api/health: p99 < 1ms").unwrap(),
    ];
    report::build(&set, &a, &slos)
}

fn checkout_report() -> Report {
    let set = CaptureSet::from_loaded(vec![
        LoadedCapture::new(
            "frontend.gcap".into(),
            gcap_format::Capture::from_vec(scenario::checkout()).unwrap(),
        ),
        LoadedCapture::new(
            "backend.gcap".into(),
            gcap_format::Capture::from_vec(scenario::checkout_backend()).unwrap(),
        ),
    ])
    .unwrap();
    let a = Analysis::run(&set, &Options::default());
    report::build(
        &set,
        &a,
        &[slo::parse("GET /api/checkout: 99% < 500ns, errors < 1%").unwrap()],
    )
}

#[test]
fn convoy_exact_root_cause() {
    let r = convoy_report();
    let s = slo_of(&r, "GET /api/orders");
    assert!(s.breached);
    assert_eq!((s.requests, s.breaching_requests), (3, 1));
    assert_eq!(s.observed, "p99 = 1.00ms");
    // 1 of 3 requests bad, 1% allowed.
    assert!((s.budget_burn.unwrap() - 100.0 / 3.0).abs() < 1e-9);
    // Breaching request: mutex 820 µs; baseline: none of it. on_cpu 150 vs 55: excess 95.
    // runnable 30 vs 0. Total excess 945 µs.
    let c = &s.root_causes;
    assert_eq!(c[0].category, Category::Mutex);
    assert_eq!(c[0].where_, "main.(*store).get (store.go:41)");
    assert_eq!(
        c[0].blocker.as_deref(),
        Some("main.(*store).refresh created at main.main (main.go:88)")
    );
    assert_eq!(c[0].breaching_mean_ns, 820_000);
    assert_eq!(c[0].baseline_mean_ns, 0);
    assert!((c[0].share - 820.0 / 945.0).abs() < 1e-9, "{}", c[0].share);
    assert_eq!(c[0].evidence[0].span, "100:1");
    assert_eq!(c[0].evidence[0].goroutine, 10);
    assert_eq!(c[0].evidence[0].at_ns, 300_000);
    assert_eq!(c[0].evidence[0].duration_ns, 820_000);
    assert_eq!(c[1].category, Category::OnCpu);
    assert!((c[1].share - 95.0 / 945.0).abs() < 1e-9);
    assert_eq!(c[2].category, Category::Runnable);
    healthy(&r, "GET /api/health");
    let e = s.example.as_ref().unwrap();
    assert_eq!(e.span, "100:1");
    assert_eq!(e.segments.len(), 6);
}

#[test]
fn snapshots_of_hand_built_reports() {
    for (name, r) in [("convoy", convoy_report()), ("checkout", checkout_report())] {
        insta::assert_snapshot!(format!("{name}_text"), render::text::render(&r, false));
        insta::assert_snapshot!(format!("{name}_json"), render::json(&r));
        insta::assert_snapshot!(format!("{name}_markdown"), render::markdown::render(&r));
    }
}

#[test]
fn snapshots_of_corpus_reports() {
    for (case, slos) in [
        (
            "lock_convoy",
            ["GET /api/orders: p99 < 10ms", "GET /api/health: p99 < 5ms"],
        ),
        (
            "slow_sql",
            ["GET /api/orders: p99 < 50ms", "GET /api/users: p99 < 50ms"],
        ),
    ] {
        let r = corpus_report(case, &slos);
        insta::assert_snapshot!(
            format!("corpus_{case}_text"),
            render::text::render(&r, false)
        );
        insta::assert_snapshot!(format!("corpus_{case}_json"), render::json(&r));
        insta::assert_snapshot!(
            format!("corpus_{case}_markdown"),
            render::markdown::render(&r)
        );
    }
}

#[test]
fn json_has_the_contract_shape() {
    let r = corpus_report("lock_convoy", &["GET /api/orders: p99 < 10ms"]);
    let v: serde_json::Value = serde_json::from_str(&render::json(&r)).unwrap();
    for k in [
        "file",
        "targets",
        "start_unix_ns",
        "duration_ns",
        "events",
        "events_lost",
    ] {
        assert!(!v["captures"][0][k].is_null(), "captures.{k}");
    }
    for k in ["pid", "exe", "go_version"] {
        assert!(!v["captures"][0]["targets"][0][k].is_null(), "targets.{k}");
    }
    for k in ["created", "exited", "alive_at_end", "leak_suspects"] {
        assert!(!v["goroutines"][k].is_null(), "goroutines.{k}");
    }
    for k in [
        "name", "count", "errors", "p50_ns", "p90_ns", "p99_ns", "max_ns",
    ] {
        assert!(!v["endpoints"][0][k].is_null(), "endpoints.{k}");
    }
    let s = &v["slos"][0];
    for k in [
        "name",
        "endpoint",
        "objective",
        "observed",
        "breached",
        "breaching_requests",
        "explained_requests",
        "root_causes",
    ] {
        assert!(!s[k].is_null(), "slos.{k}");
    }
    // A capture that recorded every transition explains every breaching request.
    assert_eq!(s["explained_requests"], s["breaching_requests"]);
    let cov = &v["captures"][0]["coverage"];
    assert_eq!(
        (cov["spans"].as_f64(), cov["lifecycle"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(cov["windows"], 1);
    let c = &s["root_causes"][0];
    assert_eq!(c["category"], "mutex");
    assert!(c["share"].as_f64().unwrap() > 0.0 && c["share"].as_f64().unwrap() <= 1.0);
    assert!(c["where"].is_string() && c["summary"].is_string());
    assert!(c["blocker"].is_string() || c["blocker"].is_null());
    for k in ["span", "goroutine", "at_ns", "duration_ns"] {
        assert!(!c["evidence"][0][k].is_null(), "evidence.{k}");
    }
    let shares: Vec<f64> = s["root_causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["share"].as_f64().unwrap())
        .collect();
    assert!(shares.windows(2).all(|w| w[0] >= w[1]), "sorted by share");
}

// ---- budgeted captures: lifecycle windows and snapshots -------------------------------

fn windowed_report(slow_inside: usize) -> Report {
    let set = CaptureSet::from_bytes("windowed.gcap", scenario::windowed(slow_inside)).unwrap();
    let a = Analysis::run(&set, &Options::default());
    report::build(
        &set,
        &a,
        &[slo::parse("GET /api/orders: p99 < 500us").unwrap()],
    )
}

#[test]
fn only_requests_inside_lifecycle_windows_are_explained() {
    let r = windowed_report(6);
    let c = &r.captures[0];
    assert!(c.windowed);
    assert!((c.coverage.lifecycle - 0.8).abs() < 1e-9);
    assert_eq!((c.coverage.spans, c.coverage.windows), (1.0, 2));
    let o = c.overhead.unwrap();
    assert_eq!(o.budget, Some(0.02));
    assert!((o.measured - 0.015).abs() < 1e-12);
    let s = slo_of(&r, "GET /api/orders");
    // Six inside the windows, one straddling the first one's end, one between them.
    assert_eq!((s.breaching_requests, s.explained_requests), (8, 6));
    // Latencies count every request, covered or not: six fast ones of 50 µs, one of 100.
    assert_eq!((s.requests, s.baseline_mean_ns), (15, 400_000 / 7));
    assert_eq!(s.lifecycle_covered, Some(0.8));
    assert_eq!(s.fuller_capture, None);
    let top = &s.root_causes[0];
    assert_eq!(top.category, Category::Mutex);
    assert_eq!(top.where_, "main.(*store).get (store.go:41)");
    // The blocker is named from the snapshots: it was created before the capture.
    assert_eq!(
        top.blocker.as_deref(),
        Some("main.(*store).refresh created at main.main (main.go:88)")
    );
    assert_eq!(top.requests, 6);
    assert_eq!(top.breaching_mean_ns, 550_000);
    // Every cause and the example come from the explained requests (spans 100:100..105),
    // never the straddling (100:300) or the uncovered (100:301) one.
    for c in &s.root_causes {
        for e in &c.evidence {
            assert!(!["100:300", "100:301"].contains(&e.span.as_str()), "{e:?}");
        }
        assert_ne!(
            c.where_,
            "unknown (outside the capture's lifecycle windows)"
        );
    }
    let e = s.example.as_ref().unwrap();
    assert!(e.span.starts_with("100:10"), "{}", e.span);
    // Three goroutines parked at one place in both snapshots since before the capture, and
    // one more since 600 µs: a handful of workers that did not pile up, no leak suspect.
    assert_eq!(r.goroutines.leak_suspects, vec![]);
    let text = render::text::render(&r, false);
    assert!(
        text.contains("explained 6 of 8 breaching requests (lifecycle covered 80% of the capture)")
    );
    assert!(!text.contains("too few"));
}

#[test]
fn too_few_explained_requests_name_a_fuller_capture() {
    let r = windowed_report(2);
    let s = slo_of(&r, "GET /api/orders");
    assert!(s.breached);
    assert_eq!((s.breaching_requests, s.explained_requests), (4, 2));
    assert!(s.root_causes.is_empty(), "{:?}", s.root_causes);
    assert_eq!(
        s.fuller_capture.as_deref(),
        Some("gcap -o full.gcap -p 100 --budget off -d 30s")
    );
    let text = render::text::render(&r, false);
    assert!(text.contains("explained 2 of 4 breaching requests"));
    assert!(text.contains(
        "too few to rank causes (fewer than 5 explained): for a fuller capture, run `gcap -o full.gcap -p 100 --budget off -d 30s`"
    ));
    let html = render::html::render(&r);
    assert!(html.contains("Explained 2 of 4 breaching requests"));
    assert!(html.contains("run <code>gcap -o full.gcap -p 100 --budget off -d 30s</code>"));
}

#[test]
fn snapshots_of_windowed_reports() {
    for (name, n) in [("windowed", 6), ("windowed_few", 2)] {
        let r = windowed_report(n);
        insta::assert_snapshot!(format!("{name}_text"), render::text::render(&r, false));
        insta::assert_snapshot!(format!("{name}_markdown"), render::markdown::render(&r));
    }
    insta::assert_snapshot!("windowed_json", render::json(&windowed_report(6)));
}

// ---- the command line ----------------------------------------------------------------

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ganalyze"))
}

#[test]
fn malformed_slos_exit_2_with_one_line() {
    let cap = repo().join("corpus/captures/lock_convoy.gcap");
    for spec in [
        "GET /api/orders p99 < 10ms",
        "GET /x: p99 < 10",
        "GET /x: p99 > 1s",
        "",
    ] {
        let out = bin()
            .arg("report")
            .arg(&cap)
            .args(["--slo", spec])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{spec:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{spec:?}: {err}");
        assert!(err.starts_with("ganalyze: invalid SLO"), "{err}");
        assert!(out.stdout.is_empty());
    }
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bad.yaml");
    std::fs::write(
        &f,
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\n",
    )
    .unwrap();
    let out = bin()
        .arg("report")
        .arg(&cap)
        .arg("--slo-file")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
}

#[test]
fn cli_formats_and_slo_file() {
    let cap = repo().join("corpus/captures/lock_convoy.gcap");
    let data = repo().join("analyze/tests/data/slos.yaml");
    let d = tempfile::tempdir().unwrap();
    for (fmt, check) in [
        ("json", "\"root_causes\""),
        ("markdown", "# ganalyze report"),
        ("html", "<svg"),
        ("text", "SLO orders-latency"),
    ] {
        let out_file = d.path().join(format!("r.{fmt}"));
        let out = bin()
            .arg("report")
            .arg(&cap)
            .arg("--slo-file")
            .arg(&data)
            .args(["--format", fmt, "-o"])
            .arg(&out_file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&out_file).unwrap();
        assert!(text.contains(check), "{fmt}: {text}");
        assert!(!text.contains("\x1b["), "no colour in files");
    }
}

// ---- HTML in a real browser ------------------------------------------------------------

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|c| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|d| Path::new(d).join(c))
                .find(|p| p.exists())
        })
}

#[test]
fn html_report_renders_in_headless_chromium() {
    // Never skipped: scripts/test.sh installs chromium before running the tests.
    let chrome = chromium().expect("chromium is missing: scripts/install-deps.sh installs it");
    let r = corpus_report(
        "lock_convoy",
        &["GET /api/orders: p99 < 10ms", "GET /api/health: p99 < 5ms"],
    );
    let html = render::html::render(&r);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network"
    );
    let d = tempfile::tempdir().unwrap();
    let page = d.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let shot = d.path().join("shot.png");
    let profile = d.path().join("profile");
    let status = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,1600")
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1200, 1600));
    let ch = info.color_type.samples();
    // The plots sit in the upper part of the page: count coloured (not white, not grey
    // text) pixels there.
    let (mut coloured, mut red) = (0u64, 0u64);
    for y in 0..800usize {
        for x in 0..1200usize {
            let i = (y * info.width as usize + x) * ch;
            let (r, g, b) = (buf[i] as i32, buf[i + 1] as i32, buf[i + 2] as i32);
            if (r - g).abs() > 30 || (g - b).abs() > 30 || (r - b).abs() > 30 {
                coloured += 1;
                if r > 180 && g < 120 && b < 120 {
                    red += 1;
                }
            }
        }
    }
    assert!(
        coloured > 20_000,
        "the plots are missing: {coloured} coloured pixels"
    );
    assert!(red > 500, "no slow (red) bars or mutex segments: {red}");
}

/// A `--level spans` capture: requests, no goroutine lifecycle. A breach is reported, and
/// what cannot be attributed says so and how to capture what would explain it.
#[test]
fn spans_level_breach_asks_for_a_lifecycle_capture() {
    let report_at = |level: &str| {
        let mut b = ganalyze::testkit::CaptureBuilder::with_level(
            7,
            "/srv/api",
            1_800_000_000_000_000_000,
            level,
        );
        let (get, path) = (b.string("GET"), b.string("/api/items"));
        for i in 0..20u64 {
            let start = i * 10_000_000;
            // One request in ten takes 5 ms, the others 100 us.
            let d = if i % 10 == 9 { 5_000_000 } else { 100_000 };
            b.ev(
                start,
                100 + i,
                EventData::SpanStart {
                    span: i + 1,
                    kind: SpanKind::HttpServer,
                    method: get,
                    host: 0,
                    target: path,
                    content_length: u64::MAX,
                    trace: None,
                },
            );
            b.ev(
                start + d,
                100 + i,
                EventData::SpanEnd {
                    span: i + 1,
                    status: 200,
                    error: false,
                },
            );
        }
        let set = CaptureSet::from_bytes("api.gcap", b.finish()).unwrap();
        let a = Analysis::run(&set, &Options::default());
        report::build(&set, &a, &[slo::parse("GET /api/*: p99 < 1ms").unwrap()])
    };
    let r = report_at("spans");
    let s = slo_of(&r, "GET /api/*");
    assert!(s.breached);
    assert_eq!(s.breaching_requests, 2);
    let c = &s.root_causes[0];
    assert_eq!(c.category, Category::Other);
    assert!(
        c.summary.contains("--level lifecycle") && c.summary.starts_with("100% of the excess"),
        "{}",
        c.summary
    );
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("capture level is spans")));
    // The same requests captured at lifecycle get neither (their causes are the walk's).
    let r = report_at("lifecycle");
    assert!(!r
        .warnings
        .iter()
        .any(|w| w.contains("capture level is spans")));
    let s = slo_of(&r, "GET /api/*");
    assert!(s
        .root_causes
        .iter()
        .all(|c| !c.summary.contains("--level lifecycle")));
}
