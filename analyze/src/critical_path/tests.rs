//! The walker on hand-built scenarios with exact expected segments.

use super::*;
use crate::testkit::{incident, scenario};
use crate::{CaptureSet, LoadedCapture, Options};

fn run(set: &CaptureSet) -> Analysis {
    Analysis::run(set, &Options::default())
}

/// (start, end, category, where, blocker, activity, activity_where, goid) relative to the set.
type Row = (
    i64,
    i64,
    &'static str,
    String,
    Option<String>,
    &'static str,
    String,
    u64,
);

fn rows(set: &CaptureSet, segs: &[Segment], unit: i64) -> Vec<Row> {
    segs.iter()
        .map(|s| {
            (
                set.rel(s.start) / unit,
                set.rel(s.end) / unit,
                s.category.name(),
                s.where_.clone(),
                s.blocker.clone(),
                s.activity.name(),
                s.activity_where.clone(),
                s.goroutine.goid,
            )
        })
        .collect()
}

fn span_named(a: &Analysis, name: &str) -> usize {
    a.spans.iter().position(|s| s.name == name).unwrap()
}

#[test]
fn convoy_follows_the_lock_holder() {
    let set = CaptureSet::from_bytes("c.gcap", scenario::convoy()).unwrap();
    let a = run(&set);
    let w = Walker::new(&set, &a);
    let path = w.path(span_named(&a, "GET /api/orders"));
    let u = "unknown".to_string();
    let get = "main.(*store).get (store.go:41)".to_string();
    let refresh = Some("main.(*store).refresh created at main.main (main.go:88)".to_string());
    assert_eq!(
        rows(&set, &path, 1000),
        vec![
            (200, 300, "on_cpu", u.clone(), None, "on_cpu", u.clone(), 10),
            (
                300,
                1100,
                "mutex",
                get.clone(),
                refresh.clone(),
                "sleep",
                "main.(*store).refresh (store.go:60)".into(),
                7
            ),
            (
                1100,
                1110,
                "mutex",
                get.clone(),
                refresh.clone(),
                "runnable",
                u.clone(),
                7
            ),
            (
                1110,
                1120,
                "mutex",
                get.clone(),
                refresh.clone(),
                "on_cpu",
                u.clone(),
                7
            ),
            (
                1120,
                1150,
                "runnable",
                u.clone(),
                None,
                "runnable",
                u.clone(),
                10
            ),
            (
                1150,
                1200,
                "on_cpu",
                u.clone(),
                None,
                "on_cpu",
                u.clone(),
                10
            ),
        ]
    );
    // The segments tile the request.
    let total: u64 = path.iter().map(Segment::duration).sum();
    assert_eq!(total, 1_000_000);
}

#[test]
fn depth_limit_keeps_the_wait_itself() {
    let set = CaptureSet::from_bytes("c.gcap", scenario::convoy()).unwrap();
    let a = run(&set);
    let mut w = Walker::new(&set, &a);
    w.max_depth = 0;
    let path = w.path(span_named(&a, "GET /api/orders"));
    let r = rows(&set, &path, 1000);
    assert_eq!(
        r[1],
        (
            300,
            1120,
            "mutex",
            "main.(*store).get (store.go:41)".into(),
            None,
            "mutex",
            "main.(*store).get (store.go:41)".into(),
            10
        )
    );
}

#[test]
fn sql_span_is_downstream() {
    let set = CaptureSet::from_bytes("s.gcap", scenario::spans()).unwrap();
    let a = run(&set);
    let w = Walker::new(&set, &a);
    let path = w.path(span_named(&a, "GET /api/orders"));
    let u = "unknown".to_string();
    let sql = Some("SELECT \"SELECT id FROM orders WHERE id = ?\"".to_string());
    assert_eq!(
        rows(&set, &path, 1),
        vec![
            (100, 700, "on_cpu", u.clone(), None, "on_cpu", u.clone(), 10),
            (
                700,
                800,
                "downstream",
                u.clone(),
                sql,
                "on_cpu",
                u.clone(),
                10
            ),
            (
                800,
                1000,
                "on_cpu",
                u.clone(),
                None,
                "on_cpu",
                u.clone(),
                10
            ),
        ]
    );
}

#[test]
fn downstream_descends_into_the_captured_backend() {
    let fe = gcap_format::Capture::from_vec(scenario::checkout()).unwrap();
    let be = gcap_format::Capture::from_vec(scenario::checkout_backend()).unwrap();
    let set = CaptureSet::from_loaded(vec![
        LoadedCapture::new("frontend.gcap".into(), fe),
        LoadedCapture::new("backend.gcap".into(), be),
    ])
    .unwrap();
    let a = run(&set);
    let w = Walker::new(&set, &a);
    let path = w.path(span_named(&a, "GET /api/checkout"));
    let u = "unknown".to_string();
    let site = "main.fetchPrice (main.go:106)".to_string();
    let call = Some("GET 127.0.0.1:9000/price".to_string());
    let between = "between the services".to_string();
    assert_eq!(
        rows(&set, &path, 1),
        vec![
            (100, 200, "on_cpu", u.clone(), None, "on_cpu", u.clone(), 10),
            (
                200,
                300,
                "downstream",
                site.clone(),
                call.clone(),
                "network",
                between.clone(),
                10
            ),
            (
                300,
                320,
                "downstream",
                site.clone(),
                call.clone(),
                "on_cpu",
                u.clone(),
                20
            ),
            (
                320,
                780,
                "downstream",
                site.clone(),
                call.clone(),
                "sleep",
                "main.slowPrice (main.go:56)".into(),
                20
            ),
            (
                780,
                790,
                "downstream",
                site.clone(),
                call.clone(),
                "runnable",
                u.clone(),
                20
            ),
            (
                790,
                800,
                "downstream",
                site.clone(),
                call.clone(),
                "on_cpu",
                u.clone(),
                20
            ),
            (
                800,
                900,
                "downstream",
                site.clone(),
                call.clone(),
                "network",
                between,
                10
            ),
            (900, 1000, "on_cpu", u.clone(), None, "on_cpu", u, 10),
        ]
    );
}

/// A `select` a timer ends is `sleep`; so is one a context deadline ends, and the goroutine
/// `time.AfterFunc` started for it (created during the wait) is never followed.
#[test]
fn timers_and_deadlines_are_sleep() {
    let set = CaptureSet::from_bytes("t.gcap", incident::timers()).unwrap();
    let a = run(&set);
    let w = Walker::new(&set, &a);
    let u = "unknown".to_string();
    let poll = "main.poll (main.go:40)".to_string();
    assert_eq!(
        rows(&set, &w.path(span_named(&a, "GET /api/poll")), 100_000),
        vec![
            (10, 11, "on_cpu", u.clone(), None, "on_cpu", u.clone(), 10),
            (11, 61, "sleep", poll.clone(), None, "sleep", poll, 10),
            (
                61,
                62,
                "runnable",
                u.clone(),
                None,
                "runnable",
                u.clone(),
                10
            ),
            (62, 63, "on_cpu", u.clone(), None, "on_cpu", u.clone(), 10),
        ]
    );
    let ctx = "main.withDeadline (main.go:60)".to_string();
    assert_eq!(
        rows(&set, &w.path(span_named(&a, "GET /api/ctx")), 100_000),
        vec![
            (100, 101, "on_cpu", u.clone(), None, "on_cpu", u.clone(), 11),
            (101, 151, "sleep", ctx.clone(), None, "sleep", ctx, 11),
            (
                151,
                152,
                "runnable",
                u.clone(),
                None,
                "runnable",
                u.clone(),
                11
            ),
            (152, 153, "on_cpu", u.clone(), None, "on_cpu", u, 11),
        ]
    );
}

/// `sync.WaitGroup.Wait` is never a lock, on any Go version: before 1.24 it parks as
/// `semacquire`, and the stack says it is a WaitGroup. Followed, it is the slow worker's
/// sleep; not followed (depth 0), the waiter's own segment is `other`.
#[test]
fn wait_group_is_never_a_lock() {
    for version in ["go1.21.13", "go1.27.3"] {
        let set = CaptureSet::from_bytes("w.gcap", incident::wait_group(version)).unwrap();
        let a = run(&set);
        let mut w = Walker::new(&set, &a);
        let req = span_named(&a, "GET /api/fanout");
        let path = rows(&set, &w.path(req), 10_000);
        assert_eq!(
            path[1],
            (
                110,
                607,
                "sleep",
                "main.work (main.go:30)".into(),
                None,
                "sleep",
                "main.work (main.go:30)".into(),
                12
            ),
            "{version}: {path:?}"
        );
        assert!(path.iter().all(|r| r.2 != "mutex"), "{version}: {path:?}");
        w.max_depth = 0;
        let own = rows(&set, &w.path(req), 10_000);
        assert_eq!(
            own[1],
            (
                110,
                615,
                "other",
                "main.fanout (main.go:50)".into(),
                None,
                "other",
                "main.fanout (main.go:50)".into(),
                10
            ),
            "{version}: {own:?}"
        );
    }
}

/// A worker the first request started lazily is not that request's once it has ended: the
/// second request waits for the worker, not for "other requests".
#[test]
fn a_lazily_started_worker_is_not_its_first_requests() {
    let set = CaptureSet::from_bytes("l.gcap", incident::lazy_worker()).unwrap();
    let a = run(&set);
    let w = Walker::new(&set, &a);
    let second = a.spans.iter().position(|s| s.local_id == 2).unwrap();
    let path = w.path(second);
    let waits: Vec<_> = path
        .iter()
        .filter(|s| s.category == Category::Chan)
        .collect();
    assert!(!waits.is_empty(), "{path:?}");
    for s in waits {
        assert_eq!(
            s.blocker.as_deref(),
            Some("main.worker created at main.(*pool).start (main.go:20)"),
            "{s:?}"
        );
        assert_eq!(s.where_, "main.submit (main.go:40)");
    }
}
