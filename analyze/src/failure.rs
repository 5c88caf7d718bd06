//! Root causes of an error-rate breach: why the failed requests failed. Each failed request
//! is put down to the first captured call it made that failed (an HTTP call answered with
//! 5xx or an error, a SQL query that returned an error), else to the status it answered
//! with, else to a panic or an aborted response; causes are ranked by how many of the failed
//! requests they explain (their `share`).

use std::collections::BTreeMap;

use gcap_format::SpanKind;

use crate::category::Category;
use crate::critical_path::{call_name, Walker};
use crate::root_cause::{Evidence, RootCause};
use crate::slo::is_error;
use crate::span::Span;

/// Why one request failed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Why {
    /// A call it made failed: (where it was made, the call, how it failed).
    Call(String, String, String),
    /// It answered with this 5xx status, no captured call having failed.
    Status(u32),
    /// It ended in error without a status: the handler panicked or the response was
    /// aborted.
    Aborted,
}

/// The first failing call of server span `req`, with how it failed.
fn failing_call(spans: &[Span], req: usize) -> Option<(usize, String)> {
    spans[req]
        .children
        .iter()
        .copied()
        .filter(|&c| spans[c].kind != SpanKind::HttpServer)
        .find_map(|c| {
            let s = &spans[c];
            match (s.status, s.error) {
                (Some(code), _) if code >= 500 => Some((c, format!("answered {code}"))),
                (_, true) => Some((c, "returned an error".to_string())),
                _ => None,
            }
        })
}

/// The causes of the failed requests among `requests`, most frequent first.
pub(crate) fn explain(w: &Walker, requests: &[usize], endpoint: &str) -> Vec<RootCause> {
    let spans = &w.a.spans;
    let failed: Vec<usize> = requests
        .iter()
        .copied()
        .filter(|&i| is_error(&spans[i]))
        .collect();
    // (request, when the cause struck, how long the request took) per cause.
    let mut by: BTreeMap<Why, Vec<(usize, i64, u64)>> = BTreeMap::new();
    for &r in &failed {
        let s = &spans[r];
        let end = s.end_or(w.set.files[s.key.file as usize].end);
        let duration = s.duration(w.set.files[s.key.file as usize].end);
        let (why, at) = match failing_call(spans, r) {
            Some((c, how)) => (
                Why::Call(w.call_site(c), call_name(&spans[c]), how),
                spans[c].start,
            ),
            None => match s.status {
                Some(code) if code >= 500 => (Why::Status(code), end),
                _ => (Why::Aborted, end),
            },
        };
        by.entry(why).or_default().push((r, at, duration));
    }
    let n = failed.len().max(1) as f64;
    let mut out: Vec<RootCause> = by
        .into_iter()
        .map(|(why, reqs)| {
            let share = reqs.len() as f64 / n;
            let count = format!("{} of {} failed requests", reqs.len(), failed.len());
            let (category, where_, blocker, summary) = match why {
                Why::Call(at, call, how) => (
                    Category::Downstream,
                    at.clone(),
                    Some(call.clone()),
                    format!(
                        "{:.0}% of the errors: {endpoint} failed after the call {call}{} {how} ({count}). Look at the called service, or handle its failure.",
                        share * 100.0,
                        if at == "unknown" { String::new() } else { format!(" in {at}") },
                    ),
                ),
                Why::Status(code) => (
                    Category::Other,
                    "unknown".to_string(),
                    None,
                    format!(
                        "{:.0}% of the errors: {endpoint} answered {code} with no captured call failing ({count}); the handler chose that status: look at its error paths.",
                        share * 100.0
                    ),
                ),
                Why::Aborted => (
                    Category::Other,
                    "unknown".to_string(),
                    None,
                    format!(
                        "{:.0}% of the errors: {endpoint} ended in error without a status: the handler panicked or the response was aborted ({count}); the capture records no panic site: look for panics in the service's log.",
                        share * 100.0
                    ),
                ),
            };
            let mut ev = reqs.clone();
            ev.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
            RootCause {
                category,
                share,
                where_,
                blocker,
                evidence: ev
                    .iter()
                    .take(3)
                    .map(|&(r, at, d)| Evidence {
                        span: spans[r].span_id.clone(),
                        goroutine: spans[r].key.goid,
                        at_ns: w.set.rel(at),
                        duration_ns: d,
                    })
                    .collect(),
                summary,
                breaching_mean_ns: crate::latency::mean(reqs.iter().map(|x| x.2)),
                baseline_mean_ns: 0,
                requests: reqs.len(),
                activities: Vec::new(),
            }
        })
        .collect();
    // Most requests first; ties in cause order (deterministic).
    out.sort_by_key(|c| std::cmp::Reverse(c.requests));
    out
}
