//! `ganalyze report` on the testkit's incidents (`testkit::incident`): the verdicts and
//! causes that are easy to get wrong, with snapshots of the text they give.

use std::time::Instant;

use ganalyze::category::Category;
use ganalyze::report::{self, Report, SloReport};
use ganalyze::testkit::{analysed, corpus, incident};
use ganalyze::{render, slo, Analysis, CaptureSet, Options};

fn report_of(name: &str, bytes: Vec<u8>, slos: &[&str]) -> Report {
    let (set, a) = analysed(name, bytes);
    let slos: Vec<_> = slos.iter().map(|s| slo::parse(s).unwrap()).collect();
    report::build(&set, &a, &slos)
}

fn slo_of<'a>(r: &'a Report, endpoint: &str) -> &'a SloReport {
    r.slos.iter().find(|s| s.endpoint == endpoint).unwrap()
}

/// Requests still running when the capture stopped count with their duration so far: five
/// requests hanging for 10 s among 100 of 1 µs breach `p99 < 100ms`.
#[test]
fn hung_requests_breach() {
    let r = report_of(
        "hung.gcap",
        incident::hung(),
        &["GET /api/orders: p99 < 100ms"],
    );
    let s = slo_of(&r, "GET /api/orders");
    assert!(s.breached, "{}", s.observed);
    assert_eq!(
        (s.requests, s.open_requests, s.breaching_requests),
        (105, 5, 5)
    );
    // The 104th of 105: the second-longest hung request, a lower bound.
    assert_eq!(s.observed, "p99 ≥ 9.999s");
    let c = &s.root_causes[0];
    assert_eq!(c.category, Category::Chan);
    assert_eq!(c.where_, "main.(*api).orders (main.go:30)");
    assert!(c.share > 0.99, "{}", c.share);
    let e = r
        .endpoints
        .iter()
        .find(|e| e.name == "GET /api/orders")
        .unwrap();
    assert_eq!(
        (e.count, e.open_requests, e.max_ns),
        (105, 5, 10_000_000_000)
    );
    insta::assert_snapshot!("hung_text", render::text::render(&r, false));
}

/// A timer or a context deadline ending a `select` is `sleep`, not `chan`.
#[test]
fn timers_and_deadlines_are_sleep() {
    let r = report_of(
        "timers.gcap",
        incident::timers(),
        &["GET /api/*: p99 < 1ms"],
    );
    let s = slo_of(&r, "GET /api/*");
    assert!(s.breached);
    let sleeps: Vec<&str> = s
        .root_causes
        .iter()
        .filter(|c| c.category == Category::Sleep)
        .map(|c| c.where_.as_str())
        .collect();
    assert_eq!(
        sleeps,
        ["main.poll (main.go:40)", "main.withDeadline (main.go:60)"]
    );
    assert!(s.root_causes.iter().all(|c| c.category != Category::Chan));
    assert!(s
        .root_causes
        .iter()
        .all(|c| c.category != Category::Sleep || c.blocker.is_none()));
    // No request met the SLO: nothing to compare with, and the report says so.
    for c in &s.root_causes {
        assert!(
            c.summary
                .contains("(no request met the SLO to compare with)")
                && !c.summary.contains("vs 0ns"),
            "{}",
            c.summary
        );
    }
    insta::assert_snapshot!("timers_text", render::text::render(&r, false));
}

/// A WaitGroup fan-out is the slow worker's sleep, never a lock, on Go 1.21 (where Wait
/// parks as `semacquire`) as on 1.27.
#[test]
fn wait_group_is_the_slow_worker() {
    for version in ["go1.21.13", "go1.27.3"] {
        let r = report_of(
            "fanout.gcap",
            incident::wait_group(version),
            &["GET /api/fanout: p99 < 1ms"],
        );
        let s = slo_of(&r, "GET /api/fanout");
        let c = &s.root_causes[0];
        assert_eq!(
            (c.category, c.where_.as_str()),
            (Category::Sleep, "main.work (main.go:30)"),
            "{version}"
        );
        assert!(
            s.root_causes.iter().all(|c| c.category != Category::Mutex),
            "{version}: {:?}",
            s.root_causes
        );
    }
}

/// The second request waits for the worker the first one started, not for "other
/// requests" (the first request had ended long before).
#[test]
fn lazy_worker_is_the_blocker() {
    let r = report_of(
        "lazy.gcap",
        incident::lazy_worker(),
        &["GET /api/orders: p99 < 5ms"],
    );
    let s = slo_of(&r, "GET /api/orders");
    let c = &s.root_causes[0];
    assert_eq!(c.category, Category::Chan);
    assert_eq!(
        c.blocker.as_deref(),
        Some("main.worker created at main.(*pool).start (main.go:20)")
    );
    insta::assert_snapshot!("lazy_worker_text", render::text::render(&r, false));
}

/// 100,000 requests on one keep-alive connection, one query each: the root causes take
/// less than twice the rest of the report (the walk finds a request's calls by binary
/// search, not by scanning every call the connection made). In a capture that lost events,
/// every breaching request is checked for lost time, and only the sampled baseline.
#[test]
fn keep_alive_root_causes_are_linear() {
    for lost in [false, true] {
        let bytes = incident::keep_alive(100_000, lost);
        let t = Instant::now();
        let (set, a) = analysed("conn.gcap", bytes);
        let analysis = t.elapsed();
        let t = Instant::now();
        report::build(&set, &a, &[]);
        let plain = t.elapsed();
        let slos = [slo::parse("GET /api/items: p99 < 1ms").unwrap()];
        let t = Instant::now();
        let r = report::build(&set, &a, &slos);
        let causes = t.elapsed().saturating_sub(plain);
        let s = slo_of(&r, "GET /api/items");
        assert_eq!(
            (s.requests, s.breaching_requests, s.explained_requests),
            (100_000, 2_000, 2_000)
        );
        assert_eq!(s.root_causes[0].category, Category::Downstream);
        let rest = analysis + plain;
        let ratio = causes.as_secs_f64() / rest.as_secs_f64();
        println!(
            "keep-alive, 100k requests (lost events: {lost}): root causes {causes:?}, the rest {rest:?}: ratio {ratio:.2}"
        );
        assert!(
            ratio < 2.0,
            "lost {lost}: root causes took {ratio:.2}× the rest"
        );
    }
}

/// Shares are real differences of means: the slow query is matched with the fast runs of
/// the same query (which never blocked, so their location is unknown), and the CPU the
/// slow request did not spend is not clamped away from the excess.
#[test]
fn shares_compare_the_same_call() {
    let r = report_of(
        "query.gcap",
        incident::slow_query(),
        &["GET /api/orders: p95 < 1ms"],
    );
    let s = slo_of(&r, "GET /api/orders");
    assert_eq!((s.requests, s.breaching_requests), (10, 1));
    let c = &s.root_causes[0];
    assert_eq!(c.category, Category::Downstream);
    assert_eq!(c.where_, "main.loadOrder (main.go:118)");
    assert_eq!(
        (c.breaching_mean_ns, c.baseline_mean_ns),
        (10_000_000, 100_000)
    );
    // 9.9 ms of an excess of 9.71 ms (CPU: 20 µs against 210 µs).
    assert!((c.share - 9.9 / 9.71).abs() < 1e-9, "{}", c.share);
    assert_eq!(s.root_causes.len(), 1, "{:?}", s.root_causes);
    assert!(
        c.summary
            .contains("vs 100.0µs in requests that met the SLO"),
        "{}",
        c.summary
    );
}

/// A mistyped endpoint is an error that lists the endpoints seen, not "no requests: met"
/// with exit 0 (a CI gate would pass).
#[test]
fn an_slo_matching_nothing_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let cap = d.path().join("lazy.gcap");
    std::fs::write(&cap, incident::lazy_worker()).unwrap();
    let run = |spec: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ganalyze"))
            .arg("report")
            .arg(&cap)
            .args(["--slo", spec])
            .output()
            .unwrap()
    };
    let out = run("GET /api/order: p99 < 200ms");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    let err: Vec<&str> = err.lines().filter(|l| !l.contains("warning")).collect();
    assert_eq!(
        err,
        [
            r#"ganalyze: the SLO "GET /api/order: p99 < 200ms" matches no captured request; endpoints seen: GET /api/orders (3); give one of them, or a pattern such as "GET /api/*""#
        ]
    );
    assert!(run("GET /api/orders: p99 < 200ms").status.success());
    assert!(run("GET /api/*: p99 < 200ms").status.success());
}

/// An SLO breached on errors alone gets causes: the failing query, then the status chosen
/// with no failing call.
#[test]
fn error_breaches_have_causes() {
    let r = report_of(
        "pay.gcap",
        incident::failing(),
        &["POST /api/pay: p99 < 1s, errors < 5%"],
    );
    let s = slo_of(&r, "POST /api/pay");
    assert!(s.breached && s.errors_breached && !s.latency_breached);
    assert_eq!(s.errors, 4);
    let c: Vec<_> = s
        .root_causes
        .iter()
        .map(|c| {
            (
                c.category,
                c.where_.as_str(),
                c.blocker.as_deref(),
                c.share,
                c.requests,
            )
        })
        .collect();
    assert_eq!(
        c,
        [
            (
                Category::Downstream,
                "main.charge (main.go:77)",
                Some(r#"INSERT "INSERT INTO payments VALUES (?)""#),
                0.75,
                3
            ),
            (Category::Other, "unknown", None, 0.25, 1),
        ]
    );
    assert_eq!(s.root_causes[0].evidence.len(), 3);
    insta::assert_snapshot!("failing_text", render::text::render(&r, false));
}

/// A wait whose block event was lost is not running time: the two requests whose sleep was
/// lost are not explained (their handler's state is unknown then), they do not feed the
/// causes, and the report says so, instead of ranking `on_cpu` ("profile the handler").
#[test]
fn lost_events_leave_requests_unexplained() {
    let r = report_of(
        "lost.gcap",
        incident::lost_block(),
        &["GET /api/orders: p99 < 1ms"],
    );
    let s = slo_of(&r, "GET /api/orders");
    assert_eq!(
        (
            s.breaching_requests,
            s.explained_requests,
            s.unexplained_by_losses
        ),
        (10, 8, 2)
    );
    let c: Vec<_> = s
        .root_causes
        .iter()
        .map(|c| (c.category, c.where_.as_str(), c.requests))
        .collect();
    assert_eq!(c, [(Category::Sleep, "main.(*api).orders (main.go:30)", 8)]);
    let text = render::text::render(&r, false);
    assert!(
        text.contains("explained 8 of 10 breaching requests (2 cross time whose events were lost while capturing)"),
        "{text}"
    );
    insta::assert_snapshot!("lost_text", text);
}

// ---- the same incidents in real Go programs (corpus/, captured with gcap) -------------

fn corpus_report(name: &str, slos: &[&str]) -> Report {
    let set = CaptureSet::open(&[corpus::capture(name)]).unwrap();
    let a = Analysis::run(&set, &Options::default());
    let slos: Vec<_> = slos.iter().map(|s| slo::parse(s).unwrap()).collect();
    let mut r = report::build(&set, &a, &slos);
    // The snapshots name the file, not where the checkout is.
    r.captures[0].file = format!("{name}.gcap");
    r
}

#[test]
fn corpus_hung_request() {
    let r = corpus_report(
        "hung_request",
        &[
            "GET /api/orders: p99 < 100ms",
            "GET /api/health: p99 < 50ms",
        ],
    );
    let s = slo_of(&r, "GET /api/orders");
    assert!(s.breached, "{}", s.observed);
    assert!(s.observed.starts_with("p99 ≥ "), "{}", s.observed);
    assert!(s.open_requests >= 5, "{} open", s.open_requests);
    assert!(s.breaching_requests >= 5);
    let c = &s.root_causes[0];
    assert_eq!(c.category, Category::Chan);
    assert_eq!(
        c.where_,
        format!(
            "main.(*api).orders (main.go:{})",
            corpus::mark("hung_request", "where")
        )
    );
    assert_eq!(c.blocker, None);
    assert!(!slo_of(&r, "GET /api/health").breached);
    insta::assert_snapshot!("corpus_hung_request_text", render::text::render(&r, false));
}

#[test]
fn corpus_timers_and_deadlines_are_sleep() {
    let r = corpus_report(
        "timer_timeout",
        &["GET /api/poll: p99 < 5ms", "GET /api/ctx: p99 < 5ms"],
    );
    for (endpoint, func, m) in [
        ("GET /api/poll", "main.poll", "poll"),
        ("GET /api/ctx", "main.withDeadline", "deadline"),
    ] {
        let s = slo_of(&r, endpoint);
        let c = &s.root_causes[0];
        assert_eq!(
            c.category,
            Category::Sleep,
            "{endpoint}: {:?}",
            s.root_causes
        );
        assert_eq!(
            c.where_,
            format!("{func} (main.go:{})", corpus::mark("timer_timeout", m))
        );
        assert_eq!(c.blocker, None, "{endpoint}");
        assert!(c.share > 0.8, "{endpoint}: {}", c.share);
        assert!(
            s.root_causes.iter().all(|c| c.category != Category::Chan),
            "{endpoint}: {:?}",
            s.root_causes
        );
    }
    insta::assert_snapshot!("corpus_timer_timeout_text", render::text::render(&r, false));
}

#[test]
fn corpus_wait_group_is_the_slow_part_on_go_1_21_and_1_27() {
    for (name, go) in [("wait_group_go1.21", "go1.21"), ("wait_group", "go1.27")] {
        let r = corpus_report(name, &["GET /api/fanout: p99 < 5ms"]);
        assert!(
            r.captures[0].targets[0].go_version.starts_with(go),
            "{name}"
        );
        let s = slo_of(&r, "GET /api/fanout");
        let c = &s.root_causes[0];
        assert_eq!(
            (c.category, c.where_.clone()),
            (
                Category::Sleep,
                format!("main.work (main.go:{})", corpus::mark("wait_group", "slow"))
            ),
            "{name}: {:?}",
            s.root_causes
        );
        assert!(
            s.root_causes.iter().all(|c| c.category != Category::Mutex),
            "{name}: {:?}",
            s.root_causes
        );
    }
}

#[test]
fn corpus_lazy_worker_is_the_blocker() {
    let r = corpus_report("lazy_worker", &["GET /api/orders: p99 < 10ms"]);
    let s = slo_of(&r, "GET /api/orders");
    let c = &s.root_causes[0];
    assert_eq!(c.category, Category::Chan, "{:?}", s.root_causes);
    assert_eq!(
        c.where_,
        format!(
            "main.(*pool).submit (main.go:{})",
            corpus::mark("lazy_worker", "where")
        )
    );
    assert_eq!(
        c.blocker.as_deref(),
        Some(
            format!(
                "main.worker created at main.(*pool).spawn (main.go:{})",
                corpus::mark("lazy_worker", "go-worker")
            )
            .as_str()
        )
    );
    assert!(s.root_causes.iter().all(|c| !c
        .blocker
        .as_deref()
        .unwrap_or("")
        .starts_with("other ")));
    insta::assert_snapshot!("corpus_lazy_worker_text", render::text::render(&r, false));
}
