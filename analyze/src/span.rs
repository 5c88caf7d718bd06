//! Spans (HTTP server and client requests, SQL queries) and how they relate.
//!
//! * A span is a SpanStart/SpanEnd pair with the same (process, span id). One without an end
//!   lasts until the capture stopped (`complete: false`).
//! * A server span belongs to the goroutine that started it (the handler). Goroutines the
//!   handler creates during the span, and the goroutines those create, at any depth, belong
//!   to the span too, from their creation until the span ends, they exit or they start
//!   serving a span of their own (`SpanIndex::owner_at`). A worker started lazily by one
//!   request is not that request's once it has ended.
//! * Client and SQL spans nest under the server span their goroutine belonged to when they
//!   started (`parent`).
//! * Across processes (and files), a server span whose incoming `traceparent` names span id
//!   S in trace T is the child of the client span that sent S in trace T.

use std::collections::HashMap;

use gcap_format::{EventData, SpanKind, TraceContext};
use rustc_hash::FxHashMap;

use crate::capture_set::{CaptureSet, Ns};
use crate::coverage::FileCoverage;
use crate::goroutine::{GoroutineKey, Name};
use crate::timing::phase_mark;

/// A span event as decoded from a block.
#[derive(Clone, Debug)]
pub(crate) struct SpanEv {
    pub(crate) key: GoroutineKey,
    pub(crate) t: Ns,
    pub(crate) data: EventData,
}

/// One span.
#[derive(Clone, Debug)]
pub struct Span {
    /// The goroutine that started it (its handler, for server spans).
    pub(crate) key: GoroutineKey,
    pub(crate) pid: u32,
    /// The capture-local span id.
    pub(crate) local_id: u64,
    /// The contract's stable id: `"<pid>:<local span id>"`.
    pub(crate) span_id: String,
    pub(crate) kind: SpanKind,
    /// "GET /api/orders", "GET host/path", or the SQL verb.
    pub(crate) name: Name,
    pub(crate) method: Name,
    pub(crate) host: Name,
    /// The path (HTTP) or the normalised query text (SQL).
    pub(crate) target: Name,
    pub content_length: Option<u64>,
    pub(crate) start: Ns,
    /// None: still open when the capture stopped, or when the span probes were detached
    /// (`unseen_after`).
    pub(crate) end: Option<Ns>,
    /// For a span not seen to end: when its probes were detached, if before the capture
    /// ended (a budgeted capture records spans in windows); it ran at least until then.
    pub(crate) unseen_after: Option<Ns>,
    pub(crate) status: Option<u32>,
    pub(crate) error: bool,
    /// The trace context the span carried.
    pub(crate) trace: Option<TraceContext>,
    /// Its own trace id, else its parent's.
    pub(crate) trace_id: Option<u128>,
    /// The enclosing span (index into the analysis' spans).
    pub(crate) parent: Option<usize>,
    pub(crate) children: Vec<usize>,
    /// Goroutines that belonged to it (server spans: handler first, then by creation).
    pub(crate) goroutines: Vec<u64>,
}

impl Span {
    /// The end, or for spans not seen to end, when the capture stopped or their probes were
    /// detached (the last moment they were seen running).
    pub(crate) fn end_or(&self, capture_end: Ns) -> Ns {
        self.end
            .unwrap_or(self.unseen_after.unwrap_or(capture_end).max(self.start))
    }

    pub(crate) fn duration(&self, capture_end: Ns) -> u64 {
        (self.end_or(capture_end) - self.start).max(0) as u64
    }
}

/// Which span a goroutine belongs to at a given time.
#[derive(Clone, Debug, Default)]
pub(crate) struct SpanIndex {
    /// Server spans each goroutine served: (start, end, span), sorted.
    own: FxHashMap<GoroutineKey, Vec<(Ns, Ns, usize)>>,
    /// The span a goroutine was created into: (from, to, span); `to` is the span's end.
    inherited: FxHashMap<GoroutineKey, (Ns, Ns, usize)>,
}

impl SpanIndex {
    /// The server span goroutine `key` belongs to at time `t`, if any.
    pub(crate) fn owner_at(&self, key: GoroutineKey, t: Ns) -> Option<usize> {
        if let Some(v) = self.own.get(&key) {
            let i = v.partition_point(|s| s.0 <= t);
            if i > 0 {
                let (_, end, s) = v[i - 1];
                return (t <= end).then_some(s);
            }
        }
        self.inherited
            .get(&key)
            .filter(|&&(from, to, _)| from <= t && t <= to)
            .map(|&(_, _, s)| s)
    }

    /// Times at which goroutine `key` starts or stops serving a span of its own.
    pub(crate) fn boundaries(&self, key: GoroutineKey) -> Vec<Ns> {
        self.own.get(&key).map_or_else(Vec::new, |v| {
            v.iter().flat_map(|&(a, b, _)| [a, b]).collect()
        })
    }
}

/// The name of a span, per the contract.
pub(crate) fn span_name(kind: SpanKind, method: &str, host: &str, target: &str) -> String {
    match kind {
        SpanKind::HttpServer => join(method, target),
        SpanKind::HttpClient => {
            let path = if target.is_empty() || target.starts_with('/') {
                target.to_string()
            } else {
                format!("/{target}")
            };
            join(method, &format!("{host}{path}"))
        }
        SpanKind::Sql => {
            if !method.trim().is_empty() {
                method.trim().to_uppercase()
            } else {
                let verb = target.split_whitespace().next().unwrap_or("");
                if verb.is_empty() {
                    "sql".into()
                } else {
                    verb.to_uppercase()
                }
            }
        }
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (false, false) => format!("{a} {b}"),
        (false, true) => a.to_string(),
        _ => b.to_string(),
    }
}

/// How many spans gcap saw end without having seen them start (they were running when it
/// attached), from the files' stats: it records only their number, not what they were.
fn started_before(set: &CaptureSet) -> Option<String> {
    let n: u64 = set
        .files
        .iter()
        .filter_map(|f| f.cap.stats())
        .flat_map(|s| &s.extra)
        .filter(|kv| kv.key == "spans.unmatched_ends")
        .filter_map(|kv| kv.value.parse::<u64>().ok())
        .sum();
    (n > 0).then(|| format!(
        "{n} requests or calls were already running when the capture started: only their end was seen, so no endpoint or SLO counts them (the longer a request, the likelier it is among them)"
    ))
}

/// The spans' warnings without the spans: ends without a recorded start.
pub(crate) fn unpaired(set: &CaptureSet, evs: Vec<SpanEv>) -> Vec<String> {
    let order = time_order(&evs);
    let mut open: FxHashMap<(u32, u32, u64), ()> = FxHashMap::default();
    let mut orphan_ends = 0u64;
    for &(_, i) in &order {
        let e = &evs[i as usize];
        match e.data {
            EventData::SpanStart { span, .. } => {
                open.insert((e.key.file, e.key.target, span), ());
            }
            EventData::SpanEnd { span, .. }
                if open.remove(&(e.key.file, e.key.target, span)).is_none() =>
            {
                orphan_ends += 1;
            }
            _ => {}
        }
    }
    orphan_warning(orphan_ends)
        .into_iter()
        .chain(started_before(set))
        .collect()
}

/// (time, index) of every event in time order, stable (ties in file and block order): the
/// keys are sorted rather than the events themselves.
fn time_order(evs: &[SpanEv]) -> Vec<(Ns, u32)> {
    let mut order: Vec<(Ns, u32)> = evs
        .iter()
        .enumerate()
        .map(|(i, e)| (e.t, i as u32))
        .collect();
    if !order.windows(2).all(|w| w[0] <= w[1]) {
        order.sort_unstable();
    }
    order
}

fn orphan_warning(orphan_ends: u64) -> Option<String> {
    (orphan_ends > 0).then(|| format!(
        "{orphan_ends} spans ended without a recorded start (started before the capture, or the start was lost): left out"
    ))
}

/// Pairs span events into spans and relates them; returns warnings too.
/// `coverage`: each file's, for spans whose end came after their probes were detached.
/// `created`: (creation time, goroutine, parent) of the goroutines created during the capture.
pub(crate) fn build(
    set: &CaptureSet,
    coverage: &[FileCoverage],
    mut created: Vec<(Ns, GoroutineKey, u64)>,
    evs: Vec<SpanEv>,
) -> (Vec<Span>, SpanIndex, Vec<String>) {
    let mut warnings = Vec::new();
    let order = time_order(&evs);
    let mut open: FxHashMap<(u32, u32, u64), usize> = FxHashMap::default();
    let mut spans: Vec<Span> = Vec::with_capacity(evs.len() / 2 + 1);
    let mut orphan_ends = 0u64;
    // Strings and names are shared by the spans that have the same ones.
    let mut strings: FxHashMap<(u32, u32), Name> = FxHashMap::default();
    let mut names: FxHashMap<(u32, u8, u32, u32, u32), Name> = FxHashMap::default();
    let mut pids: FxHashMap<(u32, u32), u32> = FxHashMap::default();
    for &(_, i) in &order {
        let e = &evs[i as usize];
        let f = &set.files[e.key.file as usize];
        match e.data {
            EventData::SpanStart {
                span,
                kind,
                method,
                host,
                target,
                content_length,
                trace,
            } => {
                let file = e.key.file;
                let mut string = |id: u32| {
                    strings
                        .entry((file, id))
                        .or_insert_with(|| Name::new(f.cap.string(id)))
                        .clone()
                };
                let (m, h, t) = (string(method), string(host), string(target));
                let name = names
                    .entry((file, kind as u8, method, host, target))
                    .or_insert_with(|| Name::new(&span_name(kind, &m, &h, &t)))
                    .clone();
                let pid = *pids
                    .entry((file, e.key.target))
                    .or_insert_with(|| f.pid(e.key.target));
                open.insert((e.key.file, e.key.target, span), spans.len());
                spans.push(Span {
                    key: e.key,
                    pid,
                    local_id: span,
                    span_id: format!("{pid}:{span}"),
                    kind,
                    name,
                    method: m,
                    host: h,
                    target: t,
                    content_length: (content_length != u64::MAX).then_some(content_length),
                    start: e.t,
                    end: None,
                    unseen_after: None,
                    status: None,
                    error: false,
                    trace_id: trace.map(|c| c.trace_id).filter(|&t| t != 0),
                    trace,
                    parent: None,
                    children: Vec::new(),
                    goroutines: Vec::new(),
                });
            }
            EventData::SpanEnd {
                span,
                status,
                error,
            } => match open.remove(&(e.key.file, e.key.target, span)) {
                Some(i) => {
                    let s = &mut spans[i];
                    s.end = Some(e.t.max(s.start));
                    s.status = (status != 0).then_some(status);
                    s.error = error;
                }
                None => orphan_ends += 1,
            },
            _ => {}
        }
    }
    drop(order);
    drop(evs);
    for s in spans.iter_mut().filter(|s| s.end.is_none()) {
        s.unseen_after = coverage[s.key.file as usize].spans_detached_after(s.key.target, s.start);
    }
    phase_mark("spans: paired");
    warnings.extend(orphan_warning(orphan_ends));
    warnings.extend(started_before(set));
    // Time order (stable: ties keep file order). Spans were made in start order already,
    // so this only reorders spans that started at the same instant.
    let key = |s: &Span| (s.start, s.key.file, s.pid, s.local_id);
    if !spans.windows(2).all(|w| key(&w[0]) <= key(&w[1])) {
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_by_key(|&i| key(&spans[i]));
        // Move each span to its place in place: the ones already there stay put.
        let mut dest = vec![0usize; order.len()];
        for (to, &from) in order.iter().enumerate() {
            dest[from] = to;
        }
        for p in 0..dest.len() {
            while dest[p] != p {
                let q = dest[p];
                spans.swap(p, q);
                dest.swap(p, q);
            }
        }
    }

    phase_mark("spans: sorted");
    // Server spans owned by their handler goroutine.
    let mut index = SpanIndex::default();
    for (i, s) in spans.iter().enumerate() {
        if s.kind == SpanKind::HttpServer {
            let end = s.end_or(set.files[s.key.file as usize].end);
            index.own.entry(s.key).or_default().push((s.start, end, i));
        }
    }
    for v in index.own.values_mut() {
        v.sort_unstable();
    }
    for s in spans.iter_mut() {
        if s.kind == SpanKind::HttpServer {
            s.goroutines.push(s.key.goid);
        }
    }
    // Goroutines created into a span, in creation order (parents before children).
    if !index.own.is_empty() {
        // At most every created goroutine inherits a span: no rehashing as the map grows
        // (the table's pages that no entry lands in are never touched).
        index.inherited.reserve(created.len());
        created.sort_unstable();
        for (tc, key, p) in created {
            let parent = GoroutineKey { goid: p, ..key };
            if let Some(s) = index.owner_at(parent, tc) {
                let to = spans[s].end_or(set.files[spans[s].key.file as usize].end);
                index.inherited.insert(key, (tc, to, s));
                spans[s].goroutines.push(key.goid);
            }
        }
    }
    phase_mark("spans: goroutine trees");
    // Client and SQL spans under the server span of their goroutine tree.
    for s in spans.iter_mut() {
        if s.kind != SpanKind::HttpServer {
            s.parent = index.owner_at(s.key, s.start);
        }
    }
    // Across processes: outgoing client span id == incoming server parent id, same trace.
    let mut clients: HashMap<(u128, u64), usize> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        if let (SpanKind::HttpClient, Some(t)) = (s.kind, s.trace) {
            if t.trace_id != 0 && t.span_id != 0 {
                clients.insert((t.trace_id, t.span_id), i);
            }
        }
    }
    if !clients.is_empty() {
        for (i, s) in spans.iter_mut().enumerate() {
            if let (SpanKind::HttpServer, Some(t)) = (s.kind, s.trace) {
                if let Some(&c) = clients.get(&(t.trace_id, t.span_id)) {
                    if c != i {
                        s.parent = Some(c);
                    }
                }
            }
        }
    }
    // Trace ids flow down to spans that carried none; children lists.
    for i in 0..spans.len() {
        if spans[i].trace_id.is_none() {
            let mut p = spans[i].parent;
            let mut hops = 0;
            while let (Some(j), true) = (p, hops < 64) {
                if let Some(t) = spans[j].trace_id {
                    spans[i].trace_id = Some(t);
                    break;
                }
                p = spans[j].parent;
                hops += 1;
            }
        }
        if let Some(p) = spans[i].parent {
            spans[p].children.push(i);
        }
    }
    (spans, index, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{span_rows, Hex, SpanRow};
    use crate::testkit::scenario;
    use crate::{Analysis, CaptureSet, LoadedCapture, Options};

    fn analyse(set: &CaptureSet) -> Analysis {
        Analysis::run(set, &Options::default())
    }

    fn hex(h: Option<Hex>) -> Option<String> {
        h.map(|h| h.to_string())
    }

    fn by_id<'a>(rows: &'a [SpanRow<'a>], id: &str) -> &'a SpanRow<'a> {
        rows.iter().find(|r| r.span_id == id).unwrap()
    }

    #[test]
    fn names() {
        assert_eq!(
            span_name(SpanKind::HttpServer, "GET", "", "/api/orders"),
            "GET /api/orders"
        );
        assert_eq!(
            span_name(SpanKind::HttpClient, "GET", "127.0.0.1:8080", "/price"),
            "GET 127.0.0.1:8080/price"
        );
        assert_eq!(
            span_name(SpanKind::Sql, "", "", "select * from t"),
            "SELECT"
        );
        assert_eq!(span_name(SpanKind::Sql, "update", "", ""), "UPDATE");
        assert_eq!(span_name(SpanKind::Sql, "", "", ""), "sql");
    }

    #[test]
    fn server_span_owns_its_goroutine_tree() {
        let set = CaptureSet::from_bytes("t.gcap", scenario::spans()).unwrap();
        let a = analyse(&set);
        let rows: Vec<SpanRow> = span_rows(&set, &a).collect();
        assert_eq!(rows.len(), 4);
        let server = by_id(&rows, "4242:1");
        assert_eq!(server.kind, "http_server");
        assert_eq!(server.name, "GET /api/orders");
        assert_eq!((server.start_ns, server.duration_ns), (100, 900));
        assert_eq!(server.status, Some(200));
        assert_eq!(server.goroutine, 10);
        assert_eq!(server.parent_span, None);
        assert_eq!(
            hex(server.trace_id).as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(
            hex(server.remote_parent_span).as_deref(),
            Some("00f067aa0ba902b7")
        );
        let s1 = a.spans.iter().find(|s| s.local_id == 1).unwrap();
        assert_eq!(s1.goroutines, vec![10, 11, 12]);

        let client = by_id(&rows, "4242:2");
        assert_eq!(client.kind, "http_client");
        assert_eq!(client.name, "GET 127.0.0.1:8081/price");
        assert_eq!(client.goroutine, 12);
        assert_eq!(client.parent_span, Some("4242:1"));
        assert_eq!(
            hex(client.outgoing_span).as_deref(),
            Some("b7ad6b7169203331")
        );

        let sql = by_id(&rows, "4242:3");
        assert_eq!((sql.kind, sql.name), ("sql", "SELECT"));
        assert_eq!(sql.parent_span, Some("4242:1"));
        assert!(sql.error);
        assert_eq!(sql.status, None);
        assert_eq!(
            sql.trace_id, server.trace_id,
            "inherited from the server span"
        );

        // g11 served span 4 later: from then on it belongs to span 4, not span 1.
        let k11 = GoroutineKey {
            file: 0,
            target: 0,
            goid: 11,
        };
        let i1 = a.spans.iter().position(|s| s.local_id == 1).unwrap();
        let i4 = a.spans.iter().position(|s| s.local_id == 4).unwrap();
        assert_eq!(a.span_index.owner_at(k11, set.start + 500), Some(i1));
        assert_eq!(a.span_index.owner_at(k11, set.start + 1300), Some(i4));
        assert_eq!(a.span_index.owner_at(k11, set.start + 1600), None);
        // g13 was created after span 1 ended.
        let k13 = GoroutineKey { goid: 13, ..k11 };
        assert_eq!(a.span_index.owner_at(k13, set.start + 1200), None);
        let pay = by_id(&rows, "4242:4");
        assert_eq!(
            (pay.status, pay.error, hex(pay.trace_id).as_deref()),
            (Some(503), true, None)
        );
    }

    #[test]
    fn without_spans_the_warnings_stay() {
        let mut b = crate::testkit::CaptureBuilder::new(1, "/x");
        b.ev(
            10,
            4,
            EventData::SpanEnd {
                span: 9,
                status: 200,
                error: false,
            },
        );
        let mut bytes = vec![b.finish(), scenario::spans()];
        for bytes in bytes.drain(..) {
            let set = CaptureSet::from_bytes("t.gcap", bytes).unwrap();
            let with = analyse(&set);
            let without = Analysis::run(
                &set,
                &Options {
                    spans: false,
                    ..Options::default()
                },
            );
            assert!(without.spans.is_empty());
            assert_eq!(with.warnings, without.warnings);
            assert_eq!(with.goroutines.len(), without.goroutines.len());
            // And the spans without the goroutines: the same spans.
            let spans_only = Analysis::run(
                &set,
                &Options {
                    goroutines: false,
                    keep_states: false,
                    ..Options::default()
                },
            );
            assert!(spans_only.goroutines.is_empty());
            assert_eq!(with.warnings, spans_only.warnings);
            let rows = |a: &Analysis| {
                serde_json::to_string(&span_rows(&set, a).collect::<Vec<_>>()).unwrap()
            };
            assert_eq!(rows(&with), rows(&spans_only));
        }
    }

    /// Requests gcap saw only end (running when it attached) are said, with their number.
    /// A span whose probes were detached before it ended (a budgeted capture records spans
    /// in windows) lasted until the detach, not until the capture's end: it is no hung
    /// request. One that was still running when the capture stopped lasts until then.
    #[test]
    fn spans_cut_by_their_window_last_until_the_detach() {
        use gcap_format::{coverage_cause as cause, probe_group as group};
        const MS: u64 = 1_000_000;
        let mut b = crate::testkit::CaptureBuilder::new(1, "/x");
        let (get, path) = (b.string("GET"), b.string("/a"));
        let cov = |b: &mut crate::testkit::CaptureBuilder, t: u64, groups: u32, c: u8| {
            b.ev(t * MS, 0, EventData::Coverage { groups, cause: c });
        };
        cov(&mut b, 0, group::SPANS, cause::START);
        b.server_span(MS, 5, 1, get, path);
        cov(&mut b, 4, 0, cause::DUTY_CYCLE);
        cov(&mut b, 6, group::SPANS, cause::DUTY_CYCLE);
        b.server_span(7 * MS, 6, 2, get, path);
        b.end(10 * MS);
        let set = b.into_set();
        let a = analyse(&set);
        let end = set.files[0].end;
        let durations: Vec<u64> = a.spans.iter().map(|s| s.duration(end)).collect();
        assert_eq!(durations, [3 * MS, 3 * MS]);
        // The handler goroutine owned its span until the detach, no longer.
        let (key, start) = (a.spans[0].key, a.spans[0].start);
        assert_eq!(a.span_index.owner_at(key, start + MS as Ns), Some(0));
        assert_eq!(a.span_index.owner_at(key, start + 4 * MS as Ns), None);
    }

    #[test]
    fn spans_running_before_the_capture_are_said() {
        let mut b = crate::testkit::CaptureBuilder::new(1, "/x");
        b.ev(10, 4, EventData::GoStart { tid: 1 })
            .stat("spans.unmatched_ends", 3);
        let set = b.into_set();
        for spans in [true, false] {
            let a = Analysis::run(
                &set,
                &Options {
                    spans,
                    ..Options::default()
                },
            );
            assert!(
                a.warnings
                    .iter()
                    .any(|w| w.starts_with("3 requests or calls were already running")),
                "{:?}",
                a.warnings
            );
        }
    }

    #[test]
    fn processes_join_by_trace_context() {
        let a_cap = gcap_format::Capture::from_vec(scenario::spans()).unwrap();
        let b_cap = gcap_format::Capture::from_vec(scenario::downstream()).unwrap();
        let set = CaptureSet::from_loaded(vec![
            LoadedCapture::new("frontend.gcap".into(), a_cap),
            LoadedCapture::new("pricing.gcap".into(), b_cap),
        ])
        .unwrap();
        let a = analyse(&set);
        let rows: Vec<SpanRow> = span_rows(&set, &a).collect();
        let down = by_id(&rows, "5151:9");
        assert_eq!(down.parent_span, Some("4242:2"));
        assert_eq!(down.remote_parent_span, None);
        // Its clock started 1 µs later: 450 ns on its clock is 1450 ns on the set's.
        assert_eq!(down.start_ns, 1450);
        assert_eq!(
            hex(down.trace_id).as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(
            by_id(&rows, "4242:2").children.iter().collect::<Vec<_>>(),
            ["5151:9"]
        );
    }
}
