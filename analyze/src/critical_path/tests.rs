//! The walker on hand-built scenarios with exact expected segments.

use super::*;
use crate::testkit::scenario;
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
