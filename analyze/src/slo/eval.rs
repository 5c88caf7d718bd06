//! Evaluating an SLO over a capture's requests: which requests it covers, which breach
//! it, the observed value and the error-budget burn.
//!
//! A request still running when the capture stopped counts with its duration so far (a
//! lower bound): it breaches once that bound reaches the threshold. Leaving it out would
//! bias every figure towards fast requests (the longer a request, the likelier it is still
//! running), exactly when requests hang.

use gcap_format::SpanKind;

use super::{round6, Latency, Slo, SloError};
use crate::latency;
use crate::span::Span;
use crate::units::{fmt_dur, fmt_ns, short_decimal};

/// An SLO evaluated over the server spans of a capture set.
#[derive(Clone, Debug)]
pub(crate) struct Evaluation {
    /// Indices (into the analysis' spans) of the server spans it covers.
    pub requests: Vec<usize>,
    /// How many of them were still running when the capture stopped (their duration is a
    /// lower bound).
    pub open: u64,
    /// Of those, the ones slower than the threshold (at or above it).
    pub breaching: Vec<usize>,
    pub errors: u64,
    /// The observed value of the latency objective ("p99 = 31.2ms", "97.4% < 300ms").
    pub observed: String,
    pub observed_ns: Option<u64>,
    pub good_fraction: Option<f64>,
    pub error_rate: f64,
    pub latency_breached: bool,
    pub errors_breached: bool,
    /// Bad fraction / allowed bad fraction (1.0: the whole budget used).
    pub budget_burn: Option<f64>,
    pub error_budget_burn: Option<f64>,
}

impl Evaluation {
    pub(crate) fn breached(&self) -> bool {
        self.latency_breached || self.errors_breached
    }
}

/// Checks that every SLO covers at least one captured request: an endpoint that matches
/// nothing (a typo such as `GET /api/order` for `GET /api/orders`) must not pass as "no
/// requests: met". The error lists the endpoints seen, busiest first.
pub fn require_requests(slos: &[Slo], spans: &[Span]) -> Result<(), SloError> {
    let servers = || spans.iter().filter(|s| s.kind == SpanKind::HttpServer);
    let Some(slo) = slos
        .iter()
        .find(|slo| !servers().any(|s| slo.endpoint.matches(&s.name)))
    else {
        return Ok(());
    };
    let mut seen: std::collections::BTreeMap<&str, u64> = Default::default();
    for s in servers() {
        *seen.entry(s.name.as_str()).or_default() += 1;
    }
    let mut seen: Vec<(&str, u64)> = seen.into_iter().collect();
    seen.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    const LISTED: usize = 10;
    let listed: Vec<String> = seen
        .iter()
        .take(LISTED)
        .map(|(name, n)| format!("{name} ({n})"))
        .collect();
    let title = format!("{}: {}", slo.endpoint, slo.objective());
    Err(SloError(if seen.is_empty() {
        format!(
            "the SLO {title:?} matches no request: the capture has no HTTP server requests (capture while the service is serving, at --level spans or above)"
        )
    } else {
        format!(
            "the SLO {title:?} matches no captured request; endpoints seen: {}{}; give one of them, or a pattern such as \"GET /api/*\"",
            listed.join(", "),
            if seen.len() > LISTED {
                format!(" and {} more", seen.len() - LISTED)
            } else {
                String::new()
            }
        )
    }))
}

/// Is this span a failed request?
pub(crate) fn is_error(s: &Span) -> bool {
    s.error || s.status.is_some_and(|c| c >= 500)
}

/// Evaluates `slo` over the server spans (`dur` gives a span's duration, up to the end of
/// the capture for spans still open).
pub(crate) fn evaluate(slo: &Slo, spans: &[Span], dur: impl Fn(&Span) -> u64) -> Evaluation {
    let requests: Vec<usize> = spans
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == SpanKind::HttpServer && slo.endpoint.matches(&s.name))
        .map(|(i, _)| i)
        .collect();
    let n = requests.len();
    let open = requests.iter().filter(|&&i| spans[i].end.is_none()).count() as u64;
    let errors = requests.iter().filter(|&&i| is_error(&spans[i])).count() as u64;
    let error_rate = if n == 0 {
        0.0
    } else {
        errors as f64 / n as f64
    };
    let mut ev = Evaluation {
        breaching: Vec::new(),
        errors,
        observed: String::new(),
        observed_ns: None,
        good_fraction: None,
        error_rate,
        latency_breached: false,
        errors_breached: false,
        budget_burn: None,
        error_budget_burn: None,
        requests,
        open,
    };
    let mut observed = Vec::new();
    if let Some(l) = slo.latency {
        let t = l.threshold_ns();
        // (duration, still open), sorted: an open request's duration is a lower bound.
        let mut d: Vec<(u64, bool)> = ev
            .requests
            .iter()
            .map(|&i| (dur(&spans[i]), spans[i].end.is_none()))
            .collect();
        d.sort_unstable();
        ev.breaching = ev
            .requests
            .iter()
            .copied()
            .filter(|&i| dur(&spans[i]) >= t)
            .collect();
        let bad = ev.breaching.len() as u64;
        let good_count = n as u64 - bad;
        let good = if n == 0 {
            1.0
        } else {
            good_count as f64 / n as f64
        };
        ev.good_fraction = Some(good);
        if n > 0 {
            ev.budget_burn = Some((1.0 - good) / l.allowed_bad());
        }
        match l {
            Latency::Percentile { percentile, .. } => {
                let v = if n == 0 {
                    0
                } else {
                    d[latency::rank(n, percentile) - 1].0
                };
                ev.observed_ns = (n > 0).then_some(v);
                ev.latency_breached = n > 0 && v >= t;
                // The true percentile is higher when an open request at or below it may
                // have run past it.
                let at_least = d.iter().take_while(|x| x.0 <= v).any(|x| x.1);
                observed.push(if n == 0 {
                    "no requests".to_string()
                } else {
                    format!(
                        "p{} {} {}",
                        short_decimal(percentile),
                        if at_least { "≥" } else { "=" },
                        fmt_ns(v)
                    )
                });
            }
            Latency::Ratio { percent, .. } => {
                ev.latency_breached =
                    n > 0 && latency::below_percent(good_count, n as u64, percent);
                observed.push(if n == 0 {
                    "no requests".to_string()
                } else {
                    format!(
                        "{}% < {}",
                        short_decimal(round6(good * 100.0))
                            .chars()
                            .take(7)
                            .collect::<String>(),
                        fmt_dur(t)
                    )
                });
            }
        }
    }
    if let Some(e) = slo.errors_below_percent {
        ev.errors_breached = n > 0 && !latency::below_percent(errors, n as u64, e);
        ev.error_budget_burn = (n > 0).then(|| error_rate / (e / 100.0));
        observed.push(format!("errors {:.2}%", error_rate * 100.0));
    }
    ev.observed = observed.join(", ");
    ev
}
