//! Service-level objectives: parsing (`--slo` strings and OpenSLO v1 YAML) and evaluation
//! over a capture's server spans.
//!
//! # `--slo "ENDPOINT: OBJECTIVE"` (the contract's syntax)
//! * ENDPOINT: `METHOD PATH` (`GET /api/orders`), a PATH ending in `*` matches every path
//!   with that prefix (`GET /api/*`), and `*` alone matches every endpoint. METHOD is a
//!   word of letters (upper-cased).
//! * OBJECTIVE: `pN < DURATION` (`p99 < 200ms`, `p99.9 < 1s`: the N-th percentile of the
//!   request latencies, nearest rank) or `N% < DURATION` (`99% < 300ms`: at least N% of
//!   requests faster than DURATION), optionally followed by `, errors < N%` (requests that
//!   failed: status >= 500 or a transport error). `errors < N%` alone is accepted too.
//! * DURATION: a number and a unit: `ns`, `us` (or `µs`), `ms`, `s`, `m`.
//!
//! # `--slo-file FILE`: the accepted OpenSLO v1 subset
//! One or more YAML documents (`---` separated). Documents of `kind: SLO` are turned into
//! objectives; `kind: SLI` documents may be referenced by `indicatorRef`; other kinds
//! (Service, AlertPolicy, ...) are ignored. In an SLO:
//! * `apiVersion: openslo/v1`, `metadata.name` (the SLO's name; `displayName` is used
//!   when present);
//! * `spec.indicator` (inline, with `metadata` and `spec`) or `spec.indicatorRef` (the name
//!   of an SLI document in the same file). The indicator's spec is either
//!   - `thresholdMetric: {metricSource: {type: gcap/ganalyze, spec: {endpoint: "GET /api/orders"}}}`:
//!     request latency; each objective `{op: lt|lte, value: V, target: T}` means
//!     "p(100·T) < V" (e.g. target 0.99, value 0.2 → `p99 < 200ms`), or
//!   - `ratioMetric: {good|bad: {metricSource: ...}, total: {metricSource: ...}}`, where the
//!     metric source's spec names the `endpoint` and either `latency: DURATION` (good =
//!     requests faster than it: each objective's `target` T gives `100·T% < latency`) or
//!     `errors: true` (bad = failed requests: `errors < 100·(1−T)%`).
//! * `spec.objectives`: a list; each becomes one SLO (named `NAME/DISPLAYNAME` when there
//!   are several). `value` is in seconds when it is a number, or a duration string
//!   (`200ms`). `target` is a fraction in (0, 1).
//! * `timeWindow`, `budgetingMethod`, `service` and `description` are accepted and ignored
//!   (the capture is the window; budgeting is by occurrences).
//!
//! See `analyze/tests/data/slos.yaml` for a complete example.

use serde::Serialize;

use crate::span::Span;
use gcap_format::SpanKind;

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
            }) => parts.push(format!("p{} < {}", num(percentile), fmt_dur(threshold_ns))),
            Some(Latency::Ratio {
                percent,
                threshold_ns,
            }) => parts.push(format!("{}% < {}", num(percent), fmt_dur(threshold_ns))),
            None => {}
        }
        if let Some(e) = self.errors_below_percent {
            parts.push(format!("errors < {}%", num(e)));
        }
        parts.join(", ")
    }
}

fn num(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A duration the way SLOs write them: "200ms", "1s", "1.5s", "250us".
fn multiple(x: u64, of: u64) -> bool {
    x / of * of == x
}

pub fn fmt_dur(ns: u64) -> String {
    if ns > 0 && multiple(ns, 60_000_000_000) {
        format!("{}m", ns / 60_000_000_000)
    } else if ns > 0 && multiple(ns, 1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns >= 1_000_000_000 {
        format!("{}s", num(ns as f64 / 1e9))
    } else if ns >= 1_000_000 {
        format!("{}ms", num(ns as f64 / 1e6))
    } else if ns >= 1_000 {
        format!("{}us", num(ns as f64 / 1e3))
    } else {
        format!("{ns}ns")
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

/// Parses a duration with a unit: "200ms", "1.5s", "250us", "2m", "100ns".
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "{s:?} is not a duration (write a number and a unit: 200ms, 1.5s, 250us)"
        ));
    }
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (write e.g. 200ms, 1.5s, 250us)"))?;
    let mul = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "" => {
            return Err(format!(
                "{s:?} has no unit (write {num}ms or {num}s; units: ns, us, ms, s, m)"
            ))
        }
        u => {
            return Err(format!(
                "{u:?} is not a duration unit (use ns, us, ms, s or m, e.g. 200ms)"
            ))
        }
    };
    let ns = v * mul;
    if ns.is_nan() || ns < 1.0 || !ns.is_finite() || ns > 1e18 {
        return Err(format!(
            "{s:?} is not a usable threshold (it must be at least 1ns, e.g. 200ms)"
        ));
    }
    Ok(ns.round() as u64)
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
pub fn parse_endpoint(input: &str, s: &str) -> Result<EndpointPattern, SloError> {
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
        let threshold_ns = parse_duration(rhs).map_err(|e| err(input, e, OBJ_HINT))?;
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

// ---------------------------------------------------------------------------------------
// OpenSLO

use serde_norway::Value as Yaml;

fn yaml_err(file: &str, doc: usize, problem: impl std::fmt::Display) -> SloError {
    SloError(format!(
        "{file}: document {doc}: {problem}; see `ganalyze report --help` or analyze/tests/data/slos.yaml for the accepted OpenSLO v1 form (kind: SLO, indicator with thresholdMetric or ratioMetric from metricSource type gcap/ganalyze, objectives with op/value/target)"
    ))
}

fn get<'a>(v: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    let mut v = v;
    for k in path {
        v = v.get(*k)?;
    }
    Some(v)
}

fn get_str<'a>(v: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Yaml::as_str)
}

/// Parses an OpenSLO v1 file (see the module docs for the accepted subset).
pub fn parse_openslo(file: &str, text: &str) -> Result<Vec<Slo>, SloError> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for (i, d) in serde_norway::Deserializer::from_str(text).enumerate() {
        let v = Yaml::deserialize(d).map_err(|e| {
            SloError(format!(
                "{file}: not valid YAML: {}; the file holds OpenSLO v1 documents (see analyze/tests/data/slos.yaml)",
                e.to_string().replace('\n', " ")
            ))
        })?;
        if !v.is_null() {
            docs.push((i + 1, v));
        }
    }
    if docs.is_empty() {
        return Err(SloError(format!(
            "{file}: no YAML documents; it should hold OpenSLO v1 documents with kind: SLO (see analyze/tests/data/slos.yaml)"
        )));
    }
    let mut slis = std::collections::HashMap::new();
    for (i, d) in &docs {
        if !d.is_mapping() {
            return Err(yaml_err(file, *i, "is not a mapping"));
        }
        if get_str(d, &["kind"]) == Some("SLI") {
            let name = get_str(d, &["metadata", "name"])
                .ok_or_else(|| yaml_err(file, *i, "an SLI without metadata.name"))?;
            slis.insert(
                name.to_string(),
                get(d, &["spec"]).cloned().unwrap_or(Yaml::Null),
            );
        }
    }
    let mut out = Vec::new();
    for (i, d) in &docs {
        let i = *i;
        match get_str(d, &["apiVersion"]) {
            Some("openslo/v1") => {}
            Some(v) => {
                return Err(yaml_err(
                    file,
                    i,
                    format!("apiVersion {v:?} is not supported (use openslo/v1)"),
                ))
            }
            None => return Err(yaml_err(file, i, "apiVersion is missing (openslo/v1)")),
        }
        let Some(kind) = get_str(d, &["kind"]) else {
            return Err(yaml_err(file, i, "kind is missing (SLO)"));
        };
        if kind != "SLO" {
            continue;
        }
        let name = get_str(d, &["metadata", "displayName"])
            .or_else(|| get_str(d, &["metadata", "name"]))
            .ok_or_else(|| yaml_err(file, i, "metadata.name is missing"))?
            .to_string();
        let indicator = if let Some(ind) = get(d, &["spec", "indicator"]) {
            get(ind, &["spec"]).unwrap_or(ind).clone()
        } else if let Some(r) = get_str(d, &["spec", "indicatorRef"]) {
            slis.get(r).cloned().ok_or_else(|| {
                yaml_err(
                    file,
                    i,
                    format!("indicatorRef {r:?} names no SLI document in this file"),
                )
            })?
        } else {
            return Err(yaml_err(
                file,
                i,
                "spec.indicator (or spec.indicatorRef) is missing",
            ));
        };
        let objectives = get(d, &["spec", "objectives"])
            .and_then(Yaml::as_sequence)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| yaml_err(file, i, "spec.objectives must be a non-empty list"))?;
        for (k, o) in objectives.iter().enumerate() {
            let oname = match get_str(o, &["displayName"]).or_else(|| get_str(o, &["name"])) {
                Some(n) if objectives.len() > 1 => format!("{name}/{n}"),
                _ if objectives.len() > 1 => format!("{name}/{}", k + 1),
                _ => name.clone(),
            };
            out.push(objective_to_slo(file, i, oname, &indicator, o)?);
        }
    }
    if out.is_empty() {
        return Err(SloError(format!(
            "{file}: no document of kind: SLO; see analyze/tests/data/slos.yaml"
        )));
    }
    Ok(out)
}

fn metric_source(file: &str, i: usize, v: &Yaml, what: &str) -> Result<Yaml, SloError> {
    let ms = get(v, &["metricSource"])
        .ok_or_else(|| yaml_err(file, i, format!("{what}.metricSource is missing")))?;
    match get_str(ms, &["type"]) {
        Some("gcap/ganalyze") | Some("ganalyze") | Some("gcap") => {}
        Some(t) => {
            return Err(yaml_err(
                file,
                i,
                format!("{what}.metricSource.type {t:?} is not supported (use gcap/ganalyze)"),
            ))
        }
        None => {
            return Err(yaml_err(
                file,
                i,
                format!("{what}.metricSource.type is missing (gcap/ganalyze)"),
            ))
        }
    }
    get(ms, &["spec"])
        .cloned()
        .ok_or_else(|| yaml_err(file, i, format!("{what}.metricSource.spec is missing")))
}

fn endpoint_of(file: &str, i: usize, spec: &Yaml, what: &str) -> Result<EndpointPattern, SloError> {
    let e = get_str(spec, &["endpoint"]).ok_or_else(|| {
        yaml_err(
            file,
            i,
            format!("{what}.metricSource.spec.endpoint is missing (e.g. \"GET /api/orders\")"),
        )
    })?;
    parse_endpoint(e, e).map_err(|x| yaml_err(file, i, x.0))
}

fn yaml_duration(file: &str, i: usize, v: &Yaml, what: &str) -> Result<u64, SloError> {
    if let Some(f) = v.as_f64() {
        if f > 0.0 && f.is_finite() {
            return Ok((f * 1e9).round() as u64);
        }
        return Err(yaml_err(
            file,
            i,
            format!("{what} {f} must be above 0 (seconds)"),
        ));
    }
    if let Some(s) = v.as_str() {
        return parse_duration(s).map_err(|e| yaml_err(file, i, format!("{what}: {e}")));
    }
    Err(yaml_err(
        file,
        i,
        format!("{what} must be a number of seconds or a duration such as 200ms"),
    ))
}

fn target_of(file: &str, i: usize, o: &Yaml) -> Result<f64, SloError> {
    let t = get(o, &["target"]).ok_or_else(|| {
        yaml_err(
            file,
            i,
            "objective.target is missing (a fraction such as 0.99)",
        )
    })?;
    let t = t
        .as_f64()
        .ok_or_else(|| yaml_err(file, i, "objective.target must be a number such as 0.99"))?;
    if !(t > 0.0 && t < 1.0) {
        return Err(yaml_err(
            file,
            i,
            format!("objective.target {t} must be above 0 and below 1 (e.g. 0.99)"),
        ));
    }
    Ok(t)
}

fn objective_to_slo(
    file: &str,
    i: usize,
    name: String,
    ind: &Yaml,
    o: &Yaml,
) -> Result<Slo, SloError> {
    if let Some(tm) = get(ind, &["thresholdMetric"]) {
        let spec = metric_source(file, i, tm, "thresholdMetric")?;
        let endpoint = endpoint_of(file, i, &spec, "thresholdMetric")?;
        match get_str(o, &["op"]) {
            Some("lt") | Some("lte") => {}
            Some(op) => {
                return Err(yaml_err(
                    file,
                    i,
                    format!("objective op {op:?}: latency objectives use op: lt (or lte)"),
                ))
            }
            None => return Err(yaml_err(file, i, "objective.op is missing (lt)")),
        }
        let threshold_ns = yaml_duration(
            file,
            i,
            get(o, &["value"]).unwrap_or(&Yaml::Null),
            "objective.value",
        )?;
        let target = target_of(file, i, o)?;
        return Ok(Slo {
            name,
            endpoint,
            latency: Some(Latency::Percentile {
                percentile: round6(target * 100.0),
                threshold_ns,
            }),
            errors_below_percent: None,
        });
    }
    if let Some(rm) = get(ind, &["ratioMetric"]) {
        let total =
            get(rm, &["total"]).ok_or_else(|| yaml_err(file, i, "ratioMetric.total is missing"))?;
        let total_spec = metric_source(file, i, total, "ratioMetric.total")?;
        let total_ep = endpoint_of(file, i, &total_spec, "ratioMetric.total")?;
        let (which, part) = match (get(rm, &["good"]), get(rm, &["bad"])) {
            (Some(g), None) => ("good", g),
            (None, Some(b)) => ("bad", b),
            _ => {
                return Err(yaml_err(
                    file,
                    i,
                    "ratioMetric needs exactly one of good or bad",
                ))
            }
        };
        let what = format!("ratioMetric.{which}");
        let spec = metric_source(file, i, part, &what)?;
        let endpoint = endpoint_of(file, i, &spec, &what)?;
        if endpoint != total_ep {
            return Err(yaml_err(
                file,
                i,
                format!("ratioMetric.{which} and total name different endpoints"),
            ));
        }
        let target = target_of(file, i, o)?;
        let errors = get(&spec, &["errors"]).and_then(Yaml::as_bool) == Some(true);
        let latency = get(&spec, &["latency"]);
        return match (which, errors, latency) {
            ("good", false, Some(l)) => Ok(Slo {
                name,
                endpoint,
                latency: Some(Latency::Ratio {
                    percent: round6(target * 100.0),
                    threshold_ns: yaml_duration(file, i, l, &format!("{what}.metricSource.spec.latency"))?,
                }),
                errors_below_percent: None,
            }),
            ("bad", true, None) => Ok(Slo {
                name,
                endpoint,
                latency: None,
                errors_below_percent: Some(round6((1.0 - target) * 100.0)),
            }),
            _ => Err(yaml_err(
                file,
                i,
                "ratioMetric: use good with spec.latency (requests faster than it) or bad with spec.errors: true",
            )),
        };
    }
    Err(yaml_err(
        file,
        i,
        "the indicator has neither thresholdMetric nor ratioMetric",
    ))
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

// ---------------------------------------------------------------------------------------
// Evaluation

/// An SLO evaluated over the server spans of a capture set.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Indices (into the analysis' spans) of the complete server spans it covers.
    pub requests: Vec<usize>,
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
    pub fn breached(&self) -> bool {
        self.latency_breached || self.errors_breached
    }
}

/// Is this span a failed request?
pub fn is_error(s: &Span) -> bool {
    s.error || s.status.is_some_and(|c| c >= 500)
}

/// Evaluates `slo` over the complete server spans (`end` gives the capture end per span).
pub fn evaluate(slo: &Slo, spans: &[Span], dur: impl Fn(&Span) -> u64) -> Evaluation {
    let requests: Vec<usize> = spans
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.kind == SpanKind::HttpServer && s.end.is_some() && slo.endpoint.matches(&s.name)
        })
        .map(|(i, _)| i)
        .collect();
    let n = requests.len();
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
    };
    let mut observed = Vec::new();
    if let Some(l) = slo.latency {
        let t = l.threshold_ns();
        let mut d: Vec<u64> = ev.requests.iter().map(|&i| dur(&spans[i])).collect();
        d.sort_unstable();
        ev.breaching = ev
            .requests
            .iter()
            .copied()
            .filter(|&i| dur(&spans[i]) >= t)
            .collect();
        let bad = ev.breaching.len() as f64;
        let good = if n == 0 { 1.0 } else { 1.0 - bad / n as f64 };
        ev.good_fraction = Some(good);
        if n > 0 {
            ev.budget_burn = Some((1.0 - good) / l.allowed_bad());
        }
        match l {
            Latency::Percentile { percentile, .. } => {
                let v = crate::table::percentile(&d, percentile);
                ev.observed_ns = (n > 0).then_some(v);
                ev.latency_breached = n > 0 && v >= t;
                observed.push(if n == 0 {
                    "no requests".to_string()
                } else {
                    format!("p{} = {}", num(percentile), crate::table::fmt_ns(v))
                });
            }
            Latency::Ratio { percent, .. } => {
                ev.latency_breached = n > 0 && good * 100.0 < percent;
                observed.push(if n == 0 {
                    "no requests".to_string()
                } else {
                    format!(
                        "{}% < {}",
                        num(round6(good * 100.0))
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
        ev.errors_breached = n > 0 && error_rate * 100.0 >= e;
        ev.error_budget_burn = (n > 0).then(|| error_rate / (e / 100.0));
        observed.push(format!("errors {:.2}%", error_rate * 100.0));
    }
    ev.observed = observed.join(", ");
    ev
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
    fn durations() {
        for (s, ns) in [
            ("100ns", 100),
            ("250us", 250_000),
            ("250µs", 250_000),
            ("1.5ms", 1_500_000),
            ("200ms", 200_000_000),
            ("1s", 1_000_000_000),
            ("2m", 120_000_000_000),
        ] {
            assert_eq!(parse_duration(s), Ok(ns), "{s}");
        }
        assert_eq!(fmt_dur(200_000_000), "200ms");
        assert_eq!(fmt_dur(1_500_000_000), "1.5s");
        assert_eq!(fmt_dur(120_000_000_000), "2m");
        assert_eq!(fmt_dur(250_000), "250us");
    }

    /// Every malformed input gives one line naming the problem and showing the right form.
    /// (This table is quoted in docs/RELIABILITY.md.)
    pub const MALFORMED: &[&str] = &[
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

    const GOOD: &str = include_str!("../tests/data/slos.yaml");

    #[test]
    fn openslo_example_file() {
        let v = parse_openslo("slos.yaml", GOOD).unwrap();
        let got: Vec<(String, String, String)> = v
            .iter()
            .map(|s| (s.name.clone(), s.endpoint.to_string(), s.objective()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "orders-latency".into(),
                    "GET /api/orders".into(),
                    "p99 < 200ms".into()
                ),
                ("api-fast".into(), "GET /api/*".into(), "99% < 300ms".into()),
                (
                    "api-errors".into(),
                    "GET /api/*".into(),
                    "errors < 1%".into()
                ),
                (
                    "health/p50".into(),
                    "GET /api/health".into(),
                    "p50 < 1ms".into()
                ),
                (
                    "health/p99".into(),
                    "GET /api/health".into(),
                    "p99.9 < 10ms".into()
                ),
            ]
        );
    }

    pub const MALFORMED_YAML: &[(&str, &str)] = &[
        ("not yaml", "kind: [SLO"),
        ("empty", ""),
        ("no SLO", "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: x}\n"),
        ("old api", "apiVersion: openslo/v1alpha\nkind: SLO\n"),
        ("no indicator", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {objectives: [{op: lt, value: 0.2, target: 0.99}]}\n"),
        ("no objectives", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  indicator:\n    spec:\n      thresholdMetric:\n        metricSource: {type: gcap/ganalyze, spec: {endpoint: GET /x}}\n"),
        ("prometheus source", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  indicator:\n    spec:\n      thresholdMetric:\n        metricSource: {type: Prometheus, spec: {query: x}}\n  objectives: [{op: lt, value: 0.2, target: 0.99}]\n"),
        ("bad endpoint", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  indicator:\n    spec:\n      thresholdMetric:\n        metricSource: {type: gcap/ganalyze, spec: {endpoint: /x}}\n  objectives: [{op: lt, value: 0.2, target: 0.99}]\n"),
        ("gt op", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  indicator:\n    spec:\n      thresholdMetric:\n        metricSource: {type: gcap/ganalyze, spec: {endpoint: GET /x}}\n  objectives: [{op: gt, value: 0.2, target: 0.99}]\n"),
        ("target 99", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  indicator:\n    spec:\n      thresholdMetric:\n        metricSource: {type: gcap/ganalyze, spec: {endpoint: GET /x}}\n  objectives: [{op: lt, value: 0.2, target: 99}]\n"),
        ("value unit", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  indicator:\n    spec:\n      thresholdMetric:\n        metricSource: {type: gcap/ganalyze, spec: {endpoint: GET /x}}\n  objectives: [{op: lt, value: 200xs, target: 0.99}]\n"),
        ("missing ref", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  indicatorRef: nope\n  objectives: [{op: lt, value: 0.2, target: 0.99}]\n"),
        ("ratio both", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  indicator:\n    spec:\n      ratioMetric:\n        good: {metricSource: {type: gcap/ganalyze, spec: {endpoint: GET /x, latency: 1s}}}\n        bad: {metricSource: {type: gcap/ganalyze, spec: {endpoint: GET /x, errors: true}}}\n        total: {metricSource: {type: gcap/ganalyze, spec: {endpoint: GET /x}}}\n  objectives: [{target: 0.99}]\n"),
    ];

    #[test]
    fn malformed_openslo_files() {
        for (what, text) in MALFORMED_YAML {
            let e = parse_openslo("f.yaml", text).expect_err(what).to_string();
            assert!(!e.contains('\n'), "{what}: {e}");
            assert!(e.starts_with("f.yaml"), "{what}: {e}");
            assert!(
                e.contains("slos.yaml"),
                "{what}: no pointer to the example: {e}"
            );
        }
        if std::env::var_os("GANALYZE_PRINT_SLO_ERRORS").is_some() {
            for (what, text) in MALFORMED_YAML {
                println!(
                    "| {what} | {} |",
                    parse_openslo("f.yaml", text).unwrap_err()
                );
            }
        }
    }
}
