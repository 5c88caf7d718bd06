//! The span listing's rows: one per span, in the contract's field order, borrowed from the
//! analysis; what the JSON, CSV, text and Parquet listings are made of.

use gcap_format::SpanKind;
use serde::Serialize;

use crate::analysis::Analysis;
use crate::capture_set::CaptureSet;
use crate::span::Span;

/// The contract's `spans --format json` object (extra fields after the required ones),
/// borrowed from the analysis (`SpanRow::new`): what the JSON, CSV, text and Parquet listings
/// are made of.
#[derive(Clone, Debug, Serialize)]
pub struct SpanRow<'a> {
    pub(crate) pid: u32,
    pub(crate) kind: &'static str,
    pub(crate) name: &'a str,
    pub(crate) start_ns: i64,
    pub(crate) duration_ns: u64,
    pub(crate) status: Option<u32>,
    pub(crate) error: bool,
    pub(crate) goroutine: u64,
    pub(crate) parent_span: Option<&'a str>,
    pub(crate) span_id: &'a str,
    pub(crate) trace_id: Option<Hex>,
    /// false: still open when the capture stopped (duration runs to the capture end).
    pub(crate) complete: bool,
    pub(crate) method: &'a str,
    pub(crate) host: &'a str,
    pub(crate) target: &'a str,
    /// Server spans whose caller was not captured: the caller's span id (16 hex).
    pub(crate) remote_parent_span: Option<Hex>,
    /// Client spans: the span id sent in the outgoing traceparent (16 hex).
    pub(crate) outgoing_span: Option<Hex>,
    /// How many goroutines belonged to it.
    pub(crate) goroutines: u64,
    pub(crate) children: SpanIds<'a>,
    pub(crate) file: &'a str,
}

impl<'a> SpanRow<'a> {
    /// The row of a span, borrowed from it, the analysis' spans and the capture.
    pub(crate) fn new(s: &'a Span, set: &'a CaptureSet, spans: &'a [Span]) -> SpanRow<'a> {
        let f = &set.files[s.key.file as usize];
        SpanRow {
            pid: s.pid,
            kind: s.kind.name(),
            name: s.name.as_str(),
            start_ns: set.rel(s.start),
            duration_ns: s.duration(f.end),
            status: s.status,
            error: s.error,
            goroutine: s.key.goid,
            parent_span: s.parent.map(|p| spans[p].span_id.as_str()),
            span_id: &s.span_id,
            trace_id: s.trace_id.map(|t| Hex(t, 32)),
            complete: s.end.is_some(),
            method: s.method.as_str(),
            host: s.host.as_str(),
            target: s.target.as_str(),
            remote_parent_span: match (s.kind, s.trace, s.parent) {
                (SpanKind::HttpServer, Some(t), None) if t.span_id != 0 => {
                    Some(Hex(t.span_id.into(), 16))
                }
                _ => None,
            },
            outgoing_span: match (s.kind, s.trace) {
                (SpanKind::HttpClient, Some(t)) => Some(Hex(t.span_id.into(), 16)),
                _ => None,
            },
            goroutines: s.goroutines.len() as u64,
            children: SpanIds {
                ids: &s.children,
                spans,
            },
            file: &f.name,
        }
    }
}

/// Every span's row, in start order.
pub fn span_rows<'a>(
    set: &'a CaptureSet,
    a: &'a Analysis,
) -> impl ExactSizeIterator<Item = SpanRow<'a>> + 'a {
    a.spans.iter().map(move |s| SpanRow::new(s, set, &a.spans))
}

/// A trace or span id: lower-case hex of a number, zero-padded to a width (32, 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex(pub(crate) u128, pub(crate) usize);

impl std::fmt::Display for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:0w$x}", self.0, w = self.1)
    }
}

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The ids of some of the analysis' spans (a span's children).
#[derive(Clone, Copy)]
pub struct SpanIds<'a> {
    ids: &'a [usize],
    spans: &'a [Span],
}

impl<'a> SpanIds<'a> {
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &'a str> + 'a {
        let spans = self.spans;
        self.ids.iter().map(move |&i| spans[i].span_id.as_str())
    }
}

impl Serialize for SpanIds<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl std::fmt::Debug for SpanIds<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
