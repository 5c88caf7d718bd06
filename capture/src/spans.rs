//! Span records -> format events: pairs the start and end probes of HTTP server, HTTP
//! client and SQL spans per goroutine, attaches WriteHeader's status to the open server
//! span, parses W3C `traceparent`, and strips URL query strings and SQL literals unless
//! `--keep-query`.
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
use gcap_format::{Event, EventData, SpanKind, TraceContext, Writer};

use crate::probes::records::{span_kind, SpanStartRecord};

/// A span that started and has not ended.
#[derive(Debug, Clone, Copy)]
struct Open {
    span: u64,
    /// First final status `WriteHeader` set (server spans); 0 = none yet.
    status: u32,
}

/// Span pairing state of one capture.
#[derive(Debug, Default)]
pub struct Spans {
    keep_query: bool,
    next_id: u64,
    open: HashMap<(u32, u64, u8), Vec<Open>>,
    /// Ends with no open span (started before the capture, or the start was lost).
    pub unmatched_ends: u64,
    /// Spans ended by their goroutine's exit rather than a RET probe.
    pub ended_by_exit: u64,
}

impl Spans {
    pub fn new(keep_query: bool) -> Spans {
        Spans {
            keep_query,
            ..Spans::default()
        }
    }

    /// Spans started and not (yet) ended.
    pub fn open_count(&self) -> usize {
        self.open.values().map(Vec::len).sum()
    }

    /// Counters for the capture's stats block.
    pub fn stats(&self) -> Vec<gcap_format::KeyValue> {
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
    pub fn start<W: Write>(
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
            .push(Open { span, status: 0 });
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
    pub fn http_status(&mut self, target: u32, goid: u64, code: u64) {
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
    pub fn end<W: Write>(
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
        w.push(
            target,
            Event {
                ts,
                goid,
                data: EventData::SpanEnd {
                    span: open.span,
                    status,
                    error,
                },
            },
        )?;
        Ok(())
    }

    /// Goroutine `goid` exited: spans it still has open end here, in error (a panic
    /// unwound past the function's RETs).
    pub fn goroutine_exit<W: Write>(
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
                    w.push(
                        target,
                        Event {
                            ts,
                            goid,
                            data: EventData::SpanEnd {
                                span: open.span,
                                status: open.status,
                                error: true,
                            },
                        },
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Parses a W3C `traceparent` value: `VV-<32 hex trace id>-<16 hex parent id>-<2 hex
/// flags>` (version ff and all-zero ids are invalid; a future version may append fields
/// after a `-`).
pub fn parse_traceparent(v: &[u8]) -> Option<TraceContext> {
    let s = std::str::from_utf8(v).ok()?.trim();
    if s.len() < 55 || !s.is_char_boundary(55) {
        return None;
    }
    let (head, rest) = s.split_at(55);
    let b = head.as_bytes();
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let hex = |x: &str| {
        x.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    let (ver, trace, span, flags) = (&head[0..2], &head[3..35], &head[36..52], &head[53..55]);
    if !(hex(ver) && hex(trace) && hex(span) && hex(flags)) || ver == "ff" {
        return None;
    }
    if ver == "00" && !rest.is_empty() {
        return None;
    }
    if !rest.is_empty() && !rest.starts_with('-') {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let span_id = u64::from_str_radix(span, 16).ok()?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(TraceContext {
        trace_id,
        span_id,
        flags: u8::from_str_radix(flags, 16).ok()?,
    })
}

/// The SQL statement's verb: its first keyword, upper-cased ("SELECT", "INSERT", ...), after
/// leading whitespace, parentheses and comments.
pub fn sql_verb(sql: &str) -> String {
    let mut s = sql.trim_start();
    loop {
        if let Some(r) = s.strip_prefix("--") {
            s = r.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = s.strip_prefix("/*") {
            s = r.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = s.strip_prefix('(') {
            s = r.trim_start();
        } else {
            break;
        }
    }
    s.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Replaces SQL literals with `?`: quoted strings ('..', with '' escapes; E'..', $$..$$
/// and $tag$..$tag$ dollar quoting) and numbers that are not part of an identifier or a
/// `$1` placeholder. Identifiers ("quoted" too), keywords, placeholders and comments stay.
/// Whitespace runs become one space.
pub fn normalize_sql(sql: &str) -> String {
    let b: Vec<char> = sql.trim().chars().collect();
    let mut out = String::with_capacity(sql.len());
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let prev = out.chars().last();
        if c == '\''
            || ((c == 'E' || c == 'e') && b.get(i + 1) == Some(&'\'') && !prev.is_some_and(ident))
        {
            // string literal
            i += if c == '\'' { 1 } else { 2 };
            while i < b.len() {
                if b[i] == '\'' {
                    if b.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                if b[i] == '\\' && c != '\'' {
                    i += 1;
                }
                i += 1;
            }
            out.push('?');
        } else if c == '$' && !prev.is_some_and(ident) && dollar_tag(&b[i..]).is_some() {
            let tag = dollar_tag(&b[i..]).unwrap_or_default();
            let t: Vec<char> = tag.chars().collect();
            i += t.len();
            while i < b.len() && !b[i..].starts_with(&t) {
                i += 1;
            }
            i = (i + t.len()).min(b.len());
            out.push('?');
        } else if c == '"' || c == '`' {
            // quoted identifier: copy verbatim
            out.push(c);
            i += 1;
            while i < b.len() {
                out.push(b[i]);
                i += 1;
                if b[i - 1] == c {
                    break;
                }
            }
        } else if c.is_ascii_digit() && !prev.is_some_and(ident) {
            // number: 42, 4.2, .5e3, 0x1F
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == '.'
                    || ((b[i] == '+' || b[i] == '-') && matches!(b[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            out.push('?');
        } else if c == '-' && b.get(i + 1) == Some(&'-') {
            while i < b.len() && b[i] != '\n' {
                out.push(b[i]);
                i += 1;
            }
        } else if c.is_whitespace() {
            while i < b.len() && b[i].is_whitespace() {
                i += 1;
            }
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `$tag$` or `$$` at the start of `s` (PostgreSQL dollar quoting; `$1` is a placeholder).
fn dollar_tag(s: &[char]) -> Option<String> {
    let end = s.iter().skip(1).position(|&c| c == '$')? + 1;
    let tag = &s[1..end];
    if tag.first().is_some_and(|c| c.is_ascii_digit())
        || !tag.iter().all(|c| c.is_alphanumeric() || *c == '_')
    {
        return None;
    }
    Some(s[..=end].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents() {
        let t =
            parse_traceparent(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        assert_eq!(t.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
        assert_eq!(t.span_id, 0xb7ad6b7169203331);
        assert_eq!(t.flags, 1);
        for bad in [
            &b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"[..],
            b"00-00000000000000000000000000000000-b7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            b"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
            b"00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(
                parse_traceparent(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // A future version may carry more fields.
        assert!(
            parse_traceparent(b"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-abcd")
                .is_some()
        );
    }

    #[test]
    fn sql_literals() {
        assert_eq!(
            normalize_sql("SELECT * FROM orders WHERE id = 42"),
            "SELECT * FROM orders WHERE id = ?"
        );
        assert_eq!(
            normalize_sql(
                "select name  from t1\n where a='it''s' AND b IN (1, 2.5, -3e-2) and c=$1"
            ),
            "select name from t1 where a=? AND b IN (?, ?, -?) and c=$1"
        );
        assert_eq!(
            normalize_sql("INSERT INTO \"Users 2\" (x) VALUES (E'a\\'b', $$raw 'x'$$, 0x1F)"),
            "INSERT INTO \"Users 2\" (x) VALUES (?, ?, ?)"
        );
        assert_eq!(
            normalize_sql("update t set v=$tag$x$tag$ where k=?"),
            "update t set v=? where k=?"
        );
        assert_eq!(sql_verb("  /* hi */ select 1"), "SELECT");
        assert_eq!(sql_verb("-- c\n(SELECT 1)"), "SELECT");
        assert_eq!(sql_verb("insert into x"), "INSERT");
        assert_eq!(sql_verb(""), "");
    }
}
