//! Span records -> format events: pairs the start and end probes of HTTP server, HTTP
//! client and SQL spans per goroutine, attaches WriteHeader's status to the open server
//! span, and strips URL query strings unless `--keep-query` (the span text itself is
//! parsed in `sql.rs` and `traceparent.rs`).
//!
//! Pairing is keyed by (target, goid, kind), never by thread: a request that is
//! rescheduled onto another OS thread mid-way still pairs, and consecutive requests on one
//! keep-alive connection (same goroutine) open and close in turn. Entry probes sit after
//! the stack check, so a morestack restart cannot open a span twice. Each key holds a
//! stack (an end closes the newest open span of its kind). An end with nothing open (the
//! request was already running when gcap attached) is counted and dropped; a span still
//! open when its goroutine exits (a handler panic unwinds past the end probes) is ended
//! there with `error` (levels with the goroutine-exit probe; at `--level spans` it stays
//! open: the analysis counts it as incomplete, never with a made-up duration).
//!
//! Server spans end where the handler has returned on the goroutine that ran it: HTTP/1 in
//! `(*conn).serve` right after `serverHandler.ServeHTTP` (hijacked connections included),
//! HTTP/2 at `handlerDone`, or at ServeHTTP's RETs when a binary has neither site (see
//! `target::plan_server_ends`).

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use gcap_format::{Event, EventData, SpanKind, Writer};

use super::sql::{normalize_sql, sql_verb};
use super::traceparent::parse_traceparent;
use crate::probes::records::{span_kind, SpanStartRecord};

/// A span that started and has not ended.
#[derive(Debug, Clone)]
struct Open {
    span: u64,
    /// First final status `WriteHeader` set (server spans); 0 = none yet.
    status: u32,
    /// When it started, and its endpoint ("GET /api/orders"): server spans, when requests
    /// are tracked.
    request: Option<(u64, Box<str>)>,
}

/// A server request that ended (for the budget's slow-request trigger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) target: u32,
    /// "METHOD PATH", without the query string.
    pub(crate) endpoint: Box<str>,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// Span pairing state of one capture.
#[derive(Debug, Default)]
pub(crate) struct Spans {
    keep_query: bool,
    next_id: u64,
    open: HashMap<(u32, u64, u8), Vec<Open>>,
    /// Ends with no open span (started before the capture, or the start was lost).
    pub(crate) unmatched_ends: u64,
    /// Spans ended by their goroutine's exit rather than a RET probe.
    pub(crate) ended_by_exit: u64,
    /// Server requests ended since last taken (`None`: requests are not tracked).
    requests: Option<Vec<Request>>,
}

impl Spans {
    pub(crate) fn new(keep_query: bool) -> Spans {
        Spans {
            keep_query,
            ..Spans::default()
        }
    }

    /// Keeps the server requests that end, for [`Spans::take_requests`].
    pub(crate) fn track_requests(&mut self) {
        self.requests.get_or_insert_with(Vec::new);
    }

    /// The server requests that ended since the last call.
    pub(crate) fn take_requests(&mut self) -> Vec<Request> {
        self.requests
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Server requests still running: (target, endpoint, start).
    pub(crate) fn open_requests(&self) -> impl Iterator<Item = (u32, &str, u64)> {
        self.open.iter().flat_map(|((target, _, _), spans)| {
            spans.iter().filter_map(move |o| {
                o.request
                    .as_ref()
                    .map(|(start, endpoint)| (*target, &**endpoint, *start))
            })
        })
    }

    /// Spans started and not (yet) ended.
    pub(crate) fn open_count(&self) -> usize {
        self.open.values().map(Vec::len).sum()
    }

    /// Counters for the capture's stats block.
    pub(crate) fn stats(&self) -> Vec<gcap_format::KeyValue> {
        let kv = |key: &str, v: u64| gcap_format::KeyValue {
            key: key.into(),
            value: v.to_string(),
        };
        vec![
            kv("spans.started", self.next_id),
            kv("spans.open_at_end", self.open_count() as u64),
            kv("spans.unmatched_ends", self.unmatched_ends),
            kv("spans.ended_by_goroutine_exit", self.ended_by_exit),
        ]
    }

    /// A span-start record of `target` at `ts`.
    pub(crate) fn start<W: Write>(
        &mut self,
        w: &mut Writer<W>,
        target: u32,
        ts: u64,
        rec: &SpanStartRecord,
    ) -> Result<()> {
        let Some(kind) = SpanKind::from_u8(rec.span_kind) else {
            return Ok(());
        };
        self.next_id += 1;
        let span = self.next_id;
        let mut request = None;
        let (method, host, text) = match kind {
            SpanKind::Sql => {
                let sql = rec.target.text();
                let text = if self.keep_query {
                    sql.trim().to_string()
                } else {
                    normalize_sql(&sql)
                };
                (sql_verb(&sql), String::new(), text)
            }
            SpanKind::HttpServer | SpanKind::HttpClient => {
                let mut method = rec.method.text();
                if method.is_empty() {
                    method = "GET".into(); // net/http: "" means GET (client requests)
                }
                let mut path = rec.target.text();
                if kind == SpanKind::HttpServer && self.requests.is_some() {
                    request = Some((ts, format!("{method} {path}").into_boxed_str()));
                }
                if self.keep_query && !rec.query.bytes.is_empty() {
                    path.push('?');
                    path.push_str(&rec.query.text());
                }
                let host = if kind == SpanKind::HttpClient {
                    rec.host.text()
                } else {
                    String::new()
                };
                (method, host, path)
            }
        };
        let data = EventData::SpanStart {
            span,
            kind,
            method: w.intern(&method),
            host: if host.is_empty() { 0 } else { w.intern(&host) },
            target: w.intern(&text),
            content_length: u64::try_from(rec.content_length).unwrap_or(u64::MAX),
            trace: rec
                .traceparent
                .as_ref()
                .and_then(|t| parse_traceparent(&t.bytes)),
        };
        self.open
            .entry((target, rec.goid, rec.span_kind))
            .or_default()
            .push(Open {
                span,
                status: 0,
                request,
            });
        w.push(
            target,
            Event {
                ts,
                goid: rec.goid,
                data,
            },
        )?;
        Ok(())
    }

    /// `WriteHeader(code)` on `goid`: the first final status of its open server span.
    pub(crate) fn http_status(&mut self, target: u32, goid: u64, code: u64) {
        let Some(open) = self
            .open
            .get_mut(&(target, goid, span_kind::HTTP_SERVER))
            .and_then(|v| v.last_mut())
        else {
            return;
        };
        // 1xx (other than 101 Switching Protocols) are informational: not the status.
        let final_code = code >= 200 || code == 101;
        if open.status == 0 && final_code && code <= 999 {
            open.status = code as u32;
        }
    }

    /// A span-end probe fired on `goid`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn end<W: Write>(
        &mut self,
        w: &mut Writer<W>,
        target: u32,
        ts: u64,
        goid: u64,
        kind: u8,
        status: u64,
        error: bool,
    ) -> Result<()> {
        let key = (target, goid, kind);
        let Some(open) = self.open.get_mut(&key).and_then(|v| v.pop()) else {
            self.unmatched_ends += 1;
            return Ok(());
        };
        if self.open.get(&key).is_some_and(|v| v.is_empty()) {
            self.open.remove(&key);
        }
        if let (Some(requests), Some((start, endpoint))) = (&mut self.requests, open.request) {
            requests.push(Request {
                target,
                endpoint,
                start,
                end: ts,
            });
        }
        let (status, error) = match kind {
            // The handler panicked (seen at an HTTP/2 end site): as at a goroutine exit,
            // the status is what it wrote, if anything.
            span_kind::HTTP_SERVER if error => (open.status, true),
            // No WriteHeader before the handler returned: net/http answers 200.
            span_kind::HTTP_SERVER => {
                let s = if open.status == 0 { 200 } else { open.status };
                (s, s >= 500)
            }
            span_kind::HTTP_CLIENT => {
                let s = u32::try_from(status).unwrap_or(0);
                (s, error || s >= 500)
            }
            _ => (0, error),
        };
        push_end(w, target, ts, goid, open.span, status, error)
    }

    /// Goroutine `goid` exited: spans it still has open end here, in error (a panic
    /// unwound past the function's RETs).
    pub(crate) fn goroutine_exit<W: Write>(
        &mut self,
        w: &mut Writer<W>,
        target: u32,
        ts: u64,
        goid: u64,
    ) -> Result<()> {
        if self.open.is_empty() {
            return Ok(());
        }
        for kind in [
            span_kind::HTTP_SERVER,
            span_kind::HTTP_CLIENT,
            span_kind::SQL,
        ] {
            if let Some(spans) = self.open.remove(&(target, goid, kind)) {
                for open in spans.into_iter().rev() {
                    self.ended_by_exit += 1;
                    push_end(w, target, ts, goid, open.span, open.status, true)?;
                }
            }
        }
        Ok(())
    }
}

/// Writes the end of `span`.
#[allow(clippy::too_many_arguments)]
fn push_end<W: Write>(
    w: &mut Writer<W>,
    target: u32,
    ts: u64,
    goid: u64,
    span: u64,
    status: u32,
    error: bool,
) -> Result<()> {
    w.push(
        target,
        Event {
            ts,
            goid,
            data: EventData::SpanEnd {
                span,
                status,
                error,
            },
        },
    )?;
    Ok(())
}
