//! Spans (HTTP server and client requests, SQL queries) and how they relate.
//!
//! * A span is a SpanStart/SpanEnd pair with the same (process, span id). One without an end
//!   lasts until the capture stopped (`complete: false`).
//! * A server span belongs to the goroutine that started it (the handler). Goroutines the
//!   handler creates during the span, and the goroutines those create, at any depth, belong
//!   to the span too, from their creation until they exit or start serving a span of their
//!   own ([`SpanIndex::owner_at`]).
//! * Client and SQL spans nest under the server span their goroutine belonged to when they
//!   started (`parent`).
//! * Across processes (and files), a server span whose incoming `traceparent` names span id
//!   S in trace T is the child of the client span that sent S in trace T.

use std::collections::HashMap;

use gcap_format::{EventData, SpanKind, TraceContext};
use serde::Serialize;

use crate::analysis::FastMap;
use crate::capture_set::{CaptureSet, Ns};
use crate::goroutine::{Goroutine, GoroutineKey};

/// A span event as decoded from a block.
#[derive(Clone, Debug)]
pub(crate) struct SpanEv {
    pub key: GoroutineKey,
    pub t: Ns,
    pub data: EventData,
}

/// One span.
#[derive(Clone, Debug)]
pub struct Span {
    /// The goroutine that started it (its handler, for server spans).
    pub key: GoroutineKey,
    pub pid: u32,
    /// The capture-local span id.
    pub local_id: u64,
    /// The contract's stable id: "<pid>:<local span id>".
    pub span_id: String,
    pub kind: SpanKind,
    /// "GET /api/orders", "GET host/path", or the SQL verb.
    pub name: String,
    pub method: String,
    pub host: String,
    /// The path (HTTP) or the normalised query text (SQL).
    pub target: String,
    pub content_length: Option<u64>,
    pub start: Ns,
    /// None: still open when the capture stopped.
    pub end: Option<Ns>,
    pub status: Option<u32>,
    pub error: bool,
    /// The trace context the span carried.
    pub trace: Option<TraceContext>,
    /// Its own trace id, else its parent's.
    pub trace_id: Option<u128>,
    /// The enclosing span (index into the analysis' spans).
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    /// Goroutines that belonged to it (server spans: handler first, then by creation).
    pub goroutines: Vec<u64>,
}

impl Span {
    /// The end, or when the capture stopped for spans that never ended.
    pub fn end_or(&self, capture_end: Ns) -> Ns {
        self.end.unwrap_or(capture_end.max(self.start))
    }

    pub fn duration(&self, capture_end: Ns) -> u64 {
        (self.end_or(capture_end) - self.start).max(0) as u64
    }

    /// The contract's JSON row.
    pub fn row(&self, set: &CaptureSet, spans: &[Span]) -> SpanRow {
        let end = set.files[self.key.file as usize].end;
        SpanRow {
            pid: self.pid,
            kind: self.kind.name(),
            name: self.name.clone(),
            start_ns: set.rel(self.start),
            duration_ns: self.duration(end),
            status: self.status,
            error: self.error,
            goroutine: self.key.goid,
            parent_span: self.parent.map(|p| spans[p].span_id.clone()),
            span_id: self.span_id.clone(),
            trace_id: self.trace_id.map(|t| format!("{t:032x}")),
            complete: self.end.is_some(),
            method: self.method.clone(),
            host: self.host.clone(),
            target: self.target.clone(),
            remote_parent_span: match (self.kind, self.trace, self.parent) {
                (SpanKind::HttpServer, Some(t), None) if t.span_id != 0 => {
                    Some(format!("{:016x}", t.span_id))
                }
                _ => None,
            },
            outgoing_span: match (self.kind, self.trace) {
                (SpanKind::HttpClient, Some(t)) => Some(format!("{:016x}", t.span_id)),
                _ => None,
            },
            goroutines: self.goroutines.len() as u64,
            children: self
                .children
                .iter()
                .map(|&c| spans[c].span_id.clone())
                .collect(),
            file: set.files[self.key.file as usize].path.display().to_string(),
        }
    }
}

/// The contract's `spans --format json` object (extra fields after the required ones).
#[derive(Clone, Debug, Serialize)]
pub struct SpanRow {
    pub pid: u32,
    pub kind: &'static str,
    pub name: String,
    pub start_ns: i64,
    pub duration_ns: u64,
    pub status: Option<u32>,
    pub error: bool,
    pub goroutine: u64,
    pub parent_span: Option<String>,
    pub span_id: String,
    pub trace_id: Option<String>,
    /// false: still open when the capture stopped (duration runs to the capture end).
    pub complete: bool,
    pub method: String,
    pub host: String,
    pub target: String,
    /// Server spans whose caller was not captured: the caller's span id (16 hex).
    pub remote_parent_span: Option<String>,
    /// Client spans: the span id sent in the outgoing traceparent (16 hex).
    pub outgoing_span: Option<String>,
    /// How many goroutines belonged to it.
    pub goroutines: u64,
    pub children: Vec<String>,
    pub file: String,
}

/// Which span a goroutine belongs to at a given time.
#[derive(Clone, Debug, Default)]
pub struct SpanIndex {
    /// Server spans each goroutine served: (start, end, span), sorted.
    own: HashMap<GoroutineKey, Vec<(Ns, Ns, usize)>>,
    /// The span a goroutine was created into: (from, span).
    inherited: HashMap<GoroutineKey, (Ns, usize)>,
}

impl SpanIndex {
    /// The server span goroutine `key` belongs to at time `t`, if any.
    pub fn owner_at(&self, key: GoroutineKey, t: Ns) -> Option<usize> {
        if let Some(v) = self.own.get(&key) {
            let i = v.partition_point(|s| s.0 <= t);
            if i > 0 {
                let (_, end, s) = v[i - 1];
                return (t <= end).then_some(s);
            }
        }
        self.inherited
            .get(&key)
            .filter(|(from, _)| *from <= t)
            .map(|&(_, s)| s)
    }

    /// Times at which goroutine `key` starts or stops serving a span of its own.
    pub fn boundaries(&self, key: GoroutineKey) -> Vec<Ns> {
        self.own.get(&key).map_or_else(Vec::new, |v| {
            v.iter().flat_map(|&(a, b, _)| [a, b]).collect()
        })
    }
}

/// The name of a span, per the contract.
pub fn span_name(kind: SpanKind, method: &str, host: &str, target: &str) -> String {
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

/// Pairs span events into spans and relates them; returns warnings too.
pub(crate) fn build(
    set: &CaptureSet,
    goroutines: &[Goroutine],
    mut evs: Vec<SpanEv>,
) -> (Vec<Span>, SpanIndex, Vec<String>) {
    let mut warnings = Vec::new();
    evs.sort_by_key(|e| e.t);
    let mut open: FastMap<(u32, u32, u64), usize> = FastMap::default();
    let mut spans: Vec<Span> = Vec::new();
    let mut orphan_ends = 0u64;
    for e in evs {
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
                let (m, h, t) = (
                    f.cap.string(method).to_string(),
                    f.cap.string(host).to_string(),
                    f.cap.string(target).to_string(),
                );
                let pid = f.pid(e.key.target);
                open.insert((e.key.file, e.key.target, span), spans.len());
                spans.push(Span {
                    key: e.key,
                    pid,
                    local_id: span,
                    span_id: format!("{pid}:{span}"),
                    kind,
                    name: span_name(kind, &m, &h, &t),
                    method: m,
                    host: h,
                    target: t,
                    content_length: (content_length != u64::MAX).then_some(content_length),
                    start: e.t,
                    end: None,
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
    if orphan_ends > 0 {
        warnings.push(format!(
            "{orphan_ends} spans ended without a recorded start (started before the capture, or the start was lost): left out"
        ));
    }
    // Time order (stable: ties keep file order).
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| {
        (
            spans[i].start,
            spans[i].key.file,
            spans[i].pid,
            spans[i].local_id,
        )
    });
    let mut spans: Vec<Span> = {
        let mut slots: Vec<Option<Span>> = spans.into_iter().map(Some).collect();
        order
            .iter()
            .filter_map(|&i| slots[i].take())
            .collect::<Vec<_>>()
    };

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
    let mut created: Vec<&Goroutine> = goroutines
        .iter()
        .filter(|g| g.created.is_some() && g.parent.is_some())
        .collect();
    created.sort_by_key(|g| (g.created, g.key));
    for g in created {
        let (Some(tc), Some(p)) = (g.created, g.parent) else {
            continue;
        };
        let parent = GoroutineKey { goid: p, ..g.key };
        if let Some(s) = index.owner_at(parent, tc) {
            index.inherited.insert(g.key, (tc, s));
            spans[s].goroutines.push(g.key.goid);
        }
    }
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
    for (i, s) in spans.iter_mut().enumerate() {
        if let (SpanKind::HttpServer, Some(t)) = (s.kind, s.trace) {
            if let Some(&c) = clients.get(&(t.trace_id, t.span_id)) {
                if c != i {
                    s.parent = Some(c);
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
    use crate::testkit::scenario;
    use crate::{Analysis, CaptureSet, LoadedCapture, Options};

    fn analyse(set: &CaptureSet) -> Analysis {
        Analysis::run(set, &Options::default())
    }

    fn by_id<'a>(rows: &'a [SpanRow], id: &str) -> &'a SpanRow {
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
        let rows: Vec<SpanRow> = a.spans.iter().map(|s| s.row(&set, &a.spans)).collect();
        assert_eq!(rows.len(), 4);
        let server = by_id(&rows, "4242:1");
        assert_eq!(server.kind, "http_server");
        assert_eq!(server.name, "GET /api/orders");
        assert_eq!((server.start_ns, server.duration_ns), (100, 900));
        assert_eq!(server.status, Some(200));
        assert_eq!(server.goroutine, 10);
        assert_eq!(server.parent_span, None);
        assert_eq!(
            server.trace_id.as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(
            server.remote_parent_span.as_deref(),
            Some("00f067aa0ba902b7")
        );
        let s1 = a.spans.iter().find(|s| s.local_id == 1).unwrap();
        assert_eq!(s1.goroutines, vec![10, 11, 12]);

        let client = by_id(&rows, "4242:2");
        assert_eq!(client.kind, "http_client");
        assert_eq!(client.name, "GET 127.0.0.1:8081/price");
        assert_eq!(client.goroutine, 12);
        assert_eq!(client.parent_span.as_deref(), Some("4242:1"));
        assert_eq!(client.outgoing_span.as_deref(), Some("b7ad6b7169203331"));

        let sql = by_id(&rows, "4242:3");
        assert_eq!((sql.kind, sql.name.as_str()), ("sql", "SELECT"));
        assert_eq!(sql.parent_span.as_deref(), Some("4242:1"));
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
            (pay.status, pay.error, pay.trace_id.as_deref()),
            (Some(503), true, None)
        );
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
        let rows: Vec<SpanRow> = a.spans.iter().map(|s| s.row(&set, &a.spans)).collect();
        let down = by_id(&rows, "5151:9");
        assert_eq!(down.parent_span.as_deref(), Some("4242:2"));
        assert_eq!(down.remote_parent_span, None);
        // Its clock started 1 µs later: 450 ns on its clock is 1450 ns on the set's.
        assert_eq!(down.start_ns, 1450);
        assert_eq!(
            down.trace_id.as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(by_id(&rows, "4242:2").children, vec!["5151:9".to_string()]);
    }
}
