//! What an SLO is, and the contract's `--slo "ENDPOINT: OBJECTIVE"` syntax for one.
//!
//! * ENDPOINT: `METHOD PATH` (`GET /api/orders`), a PATH ending in `*` matches every path
//!   with that prefix (`GET /api/*`), and `*` alone matches every endpoint. METHOD is a
//!   word of letters (upper-cased).
//! * OBJECTIVE: `pN < DURATION` (`p99 < 200ms`, `p99.9 < 1s`: the N-th percentile of the
//!   request latencies, nearest rank) or `N% < DURATION` (`99% < 300ms`: at least N% of
//!   requests faster than DURATION), optionally followed by `, errors < N%` (requests that
//!   failed: status >= 500 or a transport error). `errors < N%` alone is accepted too.
//! * DURATION: a number and a unit: `ns`, `us` (or `µs`), `ms`, `s`, `m`.

use serde::Serialize;

use crate::duration::{fmt_dur, parse_duration, short_decimal};

/// Which requests an SLO is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EndpointPattern {
    /// None: any method.
    pub method: Option<String>,
    /// The path, or its prefix when `prefix`.
    pub path: String,
    pub prefix: bool,
}

impl EndpointPattern {
    /// Every endpoint.
    pub fn any() -> Self {
        EndpointPattern {
            method: None,
            path: String::new(),
            prefix: true,
        }
    }

    /// Does a server span named `name` ("GET /api/orders") match?
    pub fn matches(&self, name: &str) -> bool {
        let (method, path) = name.split_once(' ').unwrap_or(("", name));
        if let Some(m) = &self.method {
            if m != method {
                return false;
            }
        }
        let path = path.split('?').next().unwrap_or(path);
        if self.prefix {
            path.starts_with(&self.path)
        } else {
            path == self.path
        }
    }
}

impl std::fmt::Display for EndpointPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.method, self.prefix, self.path.is_empty()) {
            (None, true, true) => write!(f, "*"),
            (Some(m), true, _) => write!(f, "{m} {}*", self.path),
            (Some(m), false, _) => write!(f, "{m} {}", self.path),
            (None, true, false) => write!(f, "* {}*", self.path),
            (None, false, _) => write!(f, "* {}", self.path),
        }
    }
}

/// A latency objective.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Latency {
    /// The `percentile`-th percentile is below `threshold_ns`.
    Percentile { percentile: f64, threshold_ns: u64 },
    /// At least `percent`% of requests are faster than `threshold_ns`.
    Ratio { percent: f64, threshold_ns: u64 },
}

impl Latency {
    pub fn threshold_ns(&self) -> u64 {
        match *self {
            Latency::Percentile { threshold_ns, .. } | Latency::Ratio { threshold_ns, .. } => {
                threshold_ns
            }
        }
    }

    /// The fraction of requests allowed to be slower than the threshold.
    pub fn allowed_bad(&self) -> f64 {
        match *self {
            Latency::Percentile { percentile: p, .. } | Latency::Ratio { percent: p, .. } => {
                1.0 - p / 100.0
            }
        }
    }
}

/// One objective for one endpoint pattern.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Slo {
    pub name: String,
    pub endpoint: EndpointPattern,
    pub latency: Option<Latency>,
    /// Allowed error rate, in percent.
    pub errors_below_percent: Option<f64>,
}

impl Slo {
    /// The objective in the `--slo` syntax: "p99 < 200ms, errors < 1%".
    pub fn objective(&self) -> String {
        let mut parts = Vec::new();
        match self.latency {
            Some(Latency::Percentile {
                percentile,
                threshold_ns,
            }) => parts.push(format!(
                "p{} < {}",
                short_decimal(percentile),
                fmt_dur(threshold_ns)
            )),
            Some(Latency::Ratio {
                percent,
                threshold_ns,
            }) => parts.push(format!(
                "{}% < {}",
                short_decimal(percent),
                fmt_dur(threshold_ns)
            )),
            None => {}
        }
        if let Some(e) = self.errors_below_percent {
            parts.push(format!("errors < {}%", short_decimal(e)));
        }
        parts.join(", ")
    }
}

/// Why an SLO string or file was not accepted. The message is one line, names the
/// problem and shows the right form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SloError(pub String);

const EXAMPLE: &str = r#"expected "ENDPOINT: OBJECTIVE", e.g. "GET /api/orders: p99 < 200ms" or "*: 99% < 300ms, errors < 1%""#;

fn err(input: &str, problem: impl std::fmt::Display, hint: &str) -> SloError {
    SloError(format!("invalid SLO {input:?}: {problem}; {hint}"))
}

/// The largest threshold accepted (about 31 years).
const MAX_THRESHOLD_NS: u64 = 1_000_000_000_000_000_000;

/// Reads an objective's threshold: a DURATION of at least 1ns.
pub(crate) fn parse_threshold(s: &str) -> Result<u64, String> {
    match parse_duration(s) {
        Ok(ns) if (1..=MAX_THRESHOLD_NS).contains(&ns) => Ok(ns),
        Ok(_) => Err(format!(
            "{:?} is not a usable threshold (it must be at least 1ns, e.g. 200ms)",
            s.trim()
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if v >= 100.0 {
        return Err(format!(
            "{v} is out of range: it must be below 100 (a 100% objective has no error budget: use 99.9)"
        ));
    }
    if v.is_nan() || v <= 0.0 {
        return Err(format!("{v} is out of range: it must be above 0"));
    }
    Ok(v)
}

/// Parses an endpoint pattern: "GET /api/orders", "GET /api/*", "*".
pub(crate) fn parse_endpoint(input: &str, s: &str) -> Result<EndpointPattern, SloError> {
    const HINT: &str =
        r#"the endpoint is "METHOD PATH" (e.g. "GET /api/orders" or "GET /api/*") or "*" for all"#;
    let s = s.trim();
    if s.is_empty() {
        return Err(err(input, "the endpoint is missing", HINT));
    }
    if s == "*" {
        return Ok(EndpointPattern::any());
    }
    let mut words = s.split_whitespace();
    let (Some(method), Some(path), None) = (words.next(), words.next(), words.next()) else {
        return Err(err(input, format!("{s:?} is not an endpoint"), HINT));
    };
    let method = if method == "*" {
        None
    } else if method.chars().all(|c| c.is_ascii_alphabetic()) {
        Some(method.to_ascii_uppercase())
    } else {
        return Err(err(
            input,
            format!("{method:?} is not an HTTP method"),
            HINT,
        ));
    };
    if !path.starts_with('/') {
        return Err(err(
            input,
            format!("the path {path:?} must start with \"/\""),
            HINT,
        ));
    }
    let (path, prefix) = match path.strip_suffix('*') {
        Some(p) => (p, true),
        None => (path, false),
    };
    if path.contains('*') {
        return Err(err(
            input,
            format!("\"*\" may only end the path ({path:?})"),
            HINT,
        ));
    }
    Ok(EndpointPattern {
        method,
        path: path.to_string(),
        prefix,
    })
}

/// Parses `--slo "ENDPOINT: OBJECTIVE"`.
pub fn parse(input: &str) -> Result<Slo, SloError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(SloError(format!(
            "invalid SLO {input:?}: it is empty; {EXAMPLE}"
        )));
    }
    let Some(colon) = s.rfind(':') else {
        return Err(err(
            input,
            "no \":\" between the endpoint and the objective",
            EXAMPLE,
        ));
    };
    let endpoint = parse_endpoint(input, &s[..colon])?;
    let objective = s[colon + 1..].trim();
    if objective.is_empty() {
        return Err(err(input, "the objective is missing", EXAMPLE));
    }
    let (latency, errors) = parse_objective(input, objective)?;
    let mut slo = Slo {
        name: String::new(),
        endpoint,
        latency,
        errors_below_percent: errors,
    };
    slo.name = format!("{}: {}", slo.endpoint, slo.objective());
    Ok(slo)
}

const OBJ_HINT: &str = r#"the objective is "pN < DURATION" or "N% < DURATION", optionally followed by ", errors < N%" (e.g. "p99 < 200ms, errors < 1%")"#;

fn parse_objective(
    input: &str,
    objective: &str,
) -> Result<(Option<Latency>, Option<f64>), SloError> {
    let mut latency = None;
    let mut errors = None;
    for part in objective.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(err(input, "an empty clause between commas", OBJ_HINT));
        }
        let (lhs, rhs) = split_op(input, part)?;
        if lhs.eq_ignore_ascii_case("errors") {
            if errors.is_some() {
                return Err(err(input, "the errors objective is given twice", OBJ_HINT));
            }
            let Some(pct) = rhs.strip_suffix('%') else {
                return Err(err(
                    input,
                    format!("the error rate {rhs:?} must be a percentage"),
                    "write e.g. \"errors < 1%\"",
                ));
            };
            errors = Some(parse_percent(pct).map_err(|e| {
                err(
                    input,
                    format!("error rate: {e}"),
                    "write e.g. \"errors < 1%\"",
                )
            })?);
            continue;
        }
        if latency.is_some() {
            return Err(err(
                input,
                "more than one latency objective",
                "give each one its own --slo (e.g. --slo \"GET /x: p50 < 50ms\" --slo \"GET /x: p99 < 200ms\")",
            ));
        }
        let threshold_ns = parse_threshold(rhs).map_err(|e| err(input, e, OBJ_HINT))?;
        if let Some(p) = lhs.strip_prefix(['p', 'P']) {
            let percentile = parse_percent(p)
                .map_err(|e| err(input, format!("percentile p{p}: {e}"), OBJ_HINT))?;
            latency = Some(Latency::Percentile {
                percentile,
                threshold_ns,
            });
        } else if let Some(p) = lhs.strip_suffix('%') {
            let percent =
                parse_percent(p).map_err(|e| err(input, format!("{p}%: {e}"), OBJ_HINT))?;
            latency = Some(Latency::Ratio {
                percent,
                threshold_ns,
            });
        } else {
            return Err(err(
                input,
                format!(
                    "{lhs:?} is neither a percentile (p99) nor a percentage (99%) nor \"errors\""
                ),
                OBJ_HINT,
            ));
        }
    }
    Ok((latency, errors))
}

fn split_op<'a>(input: &str, part: &'a str) -> Result<(&'a str, &'a str), SloError> {
    if let Some(i) = part.find("<=") {
        return Err(err(
            input,
            format!("{:?} uses \"<=\"", &part[i..]),
            "objectives are strict: write \"<\" (e.g. \"p99 < 200ms\")",
        ));
    }
    if part.contains('>') {
        return Err(err(
            input,
            format!("{part:?} uses \">\""),
            "an objective says what must stay below a bound: write \"<\" (e.g. \"p99 < 200ms\")",
        ));
    }
    let Some((l, r)) = part.split_once('<') else {
        return Err(err(input, format!("{part:?} has no \"<\""), OBJ_HINT));
    };
    let (l, r) = (l.trim(), r.trim());
    if l.is_empty() || r.is_empty() || r.contains('<') || r.contains(char::is_whitespace) {
        return Err(err(
            input,
            format!("{part:?} is not an objective"),
            OBJ_HINT,
        ));
    }
    Ok((l, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_examples() {
        let s = parse("GET /api/orders: p99 < 200ms").unwrap();
        assert_eq!(
            s.endpoint,
            EndpointPattern {
                method: Some("GET".into()),
                path: "/api/orders".into(),
                prefix: false
            }
        );
        assert_eq!(
            s.latency,
            Some(Latency::Percentile {
                percentile: 99.0,
                threshold_ns: 200_000_000
            })
        );
        assert_eq!(s.objective(), "p99 < 200ms");
        let s = parse("GET /api/*: 99% < 300ms, errors < 1%").unwrap();
        assert!(s.endpoint.prefix);
        assert!(s.endpoint.matches("GET /api/orders"));
        assert!(!s.endpoint.matches("POST /api/orders"));
        assert!(!s.endpoint.matches("GET /health"));
        assert_eq!(s.errors_below_percent, Some(1.0));
        assert_eq!(s.objective(), "99% < 300ms, errors < 1%");
        let s = parse("*: p99.9 < 1s").unwrap();
        assert!(s.endpoint.matches("POST /x"));
        assert_eq!(s.objective(), "p99.9 < 1s");
        assert_eq!(s.endpoint.to_string(), "*");
    }

    #[test]
    fn thresholds() {
        assert_eq!(parse_threshold("1.5ms"), Ok(1_500_000));
        assert_eq!(parse_threshold("250µs"), Ok(250_000));
        for s in ["0ms", "1000000001s"] {
            assert_eq!(
                parse_threshold(s),
                Err(format!(
                    "{s:?} is not a usable threshold (it must be at least 1ns, e.g. 200ms)"
                ))
            );
        }
    }

    /// Every malformed input gives one line naming the problem and showing the right form.
    /// (This table is quoted in docs/RELIABILITY.md.)
    const MALFORMED: &[&str] = &[
        "",
        "   ",
        "GET /api/orders p99 < 200ms",
        ": p99 < 200ms",
        "GET /api/orders:",
        "GET: p99 < 200ms",
        "/api/orders: p99 < 200ms",
        "GET api/orders: p99 < 200ms",
        "GET /api/*/x: p99 < 200ms",
        "GE-T /x: p99 < 200ms",
        "GET /x /y: p99 < 200ms",
        "GET /x: p99 200ms",
        "GET /x: p99 > 200ms",
        "GET /x: p99 <= 200ms",
        "GET /x: p99 < 200",
        "GET /x: p99 < 200xs",
        "GET /x: p99 < ms",
        "GET /x: p99 < 0ms",
        "GET /x: p99 < 2 00ms",
        "GET /x: p100 < 1s",
        "GET /x: p0 < 1s",
        "GET /x: pX < 1s",
        "GET /x: 100% < 1s",
        "GET /x: 99 < 1s",
        "GET /x: latency < 1s",
        "GET /x: p99 < 1s,",
        "GET /x: p99 < 1s, p90 < 500ms",
        "GET /x: p99 < 1s, errors < 1",
        "GET /x: p99 < 1s, errors > 1%",
        "GET /x: p99 < 1s, errors < 150%",
        "GET /x: p99 < 1s, errors < 1%, errors < 2%",
        "GET /x: p99 < 1s < 2s",
    ];

    #[test]
    fn malformed_slos_are_rejected_with_one_line() {
        for input in MALFORMED {
            let e = parse(input).expect_err(input).to_string();
            assert!(!e.contains('\n'), "{input:?}: {e}");
            assert!(e.starts_with("invalid SLO"), "{input:?}: {e}");
            assert!(
                e.contains("e.g.") || e.contains("write"),
                "{input:?} gives no example: {e}"
            );
        }
        if std::env::var_os("GANALYZE_PRINT_SLO_ERRORS").is_some() {
            for input in MALFORMED {
                println!("| `{input}` | {} |", parse(input).unwrap_err());
            }
        }
        // Specific problems are named.
        let msg = |s: &str| parse(s).unwrap_err().to_string();
        assert!(msg("GET /x: p99 < 200").contains("no unit"));
        assert!(msg("GET /x: p99 < 200xs").contains("\"xs\" is not a duration unit"));
        assert!(msg("GET /x: p99 > 200ms").contains("\">\""));
        assert!(msg("GET /x: p100 < 1s").contains("no error budget"));
        assert!(msg("GET api/orders: p99 < 200ms").contains("must start with \"/\""));
        assert!(msg("GET /api/orders p99 < 200ms").contains("no \":\""));
    }

    #[test]
    fn lenient_forms() {
        assert!(parse(" get /x :p99<1s ").is_ok());
        assert!(parse("GET /x: errors < 0.5%").unwrap().latency.is_none());
        assert!(parse("* /api/*: p50 < 1ms")
            .unwrap()
            .endpoint
            .method
            .is_none());
    }
}
