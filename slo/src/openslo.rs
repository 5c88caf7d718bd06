//! `--slo-file FILE`: SLOs from OpenSLO v1 YAML, the accepted subset.
//!
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
//! Every field is optional in the types below, so that a missing one is named in the
//! error with its right form; a field of the wrong type is named by its path.
//!
//! See `analyze/tests/data/slos.yaml` for a complete example.

use std::collections::HashMap;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_norway::Value as Yaml;

use crate::spec::{parse_endpoint, parse_threshold};
use crate::{round6, EndpointPattern, Latency, Slo, SloError};

/// What every document says about itself.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: Option<String>,
    kind: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: Option<String>,
    display_name: Option<String>,
}

/// A `kind: SLI` document; its spec is read as an [`IndicatorSpec`] when an SLO refers
/// to it (one nobody refers to is not read).
#[derive(Deserialize)]
struct SliDocument {
    metadata: Option<Metadata>,
    spec: Option<Yaml>,
}

/// A `kind: SLO` document.
#[derive(Deserialize)]
struct SloDocument {
    metadata: Option<Metadata>,
    spec: Option<SloSpec>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SloSpec {
    indicator: Option<InlineIndicator>,
    indicator_ref: Option<String>,
    objectives: Option<Vec<Objective>>,
}

/// `spec.indicator`: an SLI written in place, with its own `spec` (or, leniently, the
/// indicator's fields right there).
#[derive(Deserialize)]
struct InlineIndicator {
    spec: Option<IndicatorSpec>,
    #[serde(flatten)]
    bare: IndicatorSpec,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndicatorSpec {
    threshold_metric: Option<Metric>,
    ratio_metric: Option<RatioMetric>,
}

#[derive(Deserialize)]
struct RatioMetric {
    good: Option<Metric>,
    bad: Option<Metric>,
    total: Option<Metric>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metric {
    metric_source: Option<MetricSource>,
}

#[derive(Deserialize)]
struct MetricSource {
    #[serde(rename = "type")]
    kind: Option<String>,
    spec: Option<SourceSpec>,
}

/// What ganalyze measures: the endpoint, and for a ratio what a good or bad request is.
#[derive(Deserialize)]
struct SourceSpec {
    endpoint: Option<String>,
    latency: Option<Threshold>,
    errors: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Objective {
    display_name: Option<String>,
    name: Option<String>,
    op: Option<String>,
    value: Option<Threshold>,
    target: Option<f64>,
}

/// A threshold: seconds as a number, or a DURATION string. Anything else is kept to be
/// reported with the right form.
#[derive(Deserialize)]
#[serde(untagged)]
enum Threshold {
    Seconds(f64),
    Duration(String),
    Other(IgnoredAny),
}

fn yaml_err(file: &str, doc: usize, problem: impl std::fmt::Display) -> SloError {
    SloError(format!(
        "{file}: document {doc}: {problem}; see `ganalyze report --help` or analyze/tests/data/slos.yaml for the accepted OpenSLO v1 form (kind: SLO, indicator with thresholdMetric or ratioMetric from metricSource type gcap/ganalyze, objectives with op/value/target)"
    ))
}

/// Reads `v` as a `T`; a field of the wrong type is named by its path below `at`.
fn typed<T: DeserializeOwned>(file: &str, doc: usize, at: &str, v: Yaml) -> Result<T, SloError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let at = match (at, path.as_str()) {
            (at, ".") => at.to_string(),
            ("", path) => path.to_string(),
            (at, path) => format!("{at}.{path}"),
        };
        yaml_err(file, doc, format!("{at}: {}", e.inner()))
    })
}

/// Parses an OpenSLO v1 file (see the module docs for the accepted subset).
pub fn parse_openslo(file: &str, text: &str) -> Result<Vec<Slo>, SloError> {
    // Every document is read as YAML first, so that a syntax error anywhere is reported
    // as such before any document is looked at.
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
    let mut headers = Vec::with_capacity(docs.len());
    let mut slis = HashMap::new();
    for (i, d) in &docs {
        if !d.is_mapping() {
            return Err(yaml_err(file, *i, "is not a mapping"));
        }
        let h: Header = typed(file, *i, "", d.clone())?;
        if h.kind.as_deref() == Some("SLI") {
            let sli: SliDocument = typed(file, *i, "", d.clone())?;
            let name = sli
                .metadata
                .and_then(|m| m.name)
                .ok_or_else(|| yaml_err(file, *i, "an SLI without metadata.name"))?;
            slis.insert(name, sli.spec.unwrap_or(Yaml::Null));
        }
        headers.push(h);
    }
    let mut out = Vec::new();
    for ((i, d), h) in docs.into_iter().zip(headers) {
        match h.api_version.as_deref() {
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
        let Some(kind) = h.kind else {
            return Err(yaml_err(file, i, "kind is missing (SLO)"));
        };
        if kind != "SLO" {
            continue;
        }
        let slo: SloDocument = typed(file, i, "", d)?;
        out.extend(slo_objectives(file, i, slo, &slis)?);
    }
    if out.is_empty() {
        return Err(SloError(format!(
            "{file}: no document of kind: SLO; see analyze/tests/data/slos.yaml"
        )));
    }
    Ok(out)
}

/// The SLOs of document `i`, one per objective.
fn slo_objectives(
    file: &str,
    i: usize,
    slo: SloDocument,
    slis: &HashMap<String, Yaml>,
) -> Result<Vec<Slo>, SloError> {
    let metadata = slo.metadata.unwrap_or_default();
    let name = metadata
        .display_name
        .or(metadata.name)
        .ok_or_else(|| yaml_err(file, i, "metadata.name is missing"))?;
    let spec = slo.spec.unwrap_or_default();
    let indicator = if let Some(ind) = spec.indicator {
        ind.spec.unwrap_or(ind.bare)
    } else if let Some(r) = spec.indicator_ref {
        let Some(sli) = slis.get(&r) else {
            return Err(yaml_err(
                file,
                i,
                format!("indicatorRef {r:?} names no SLI document in this file"),
            ));
        };
        let sli: Option<IndicatorSpec> =
            typed(file, i, &format!("the spec of SLI {r:?}"), sli.clone())?;
        sli.unwrap_or_default()
    } else {
        return Err(yaml_err(
            file,
            i,
            "spec.indicator (or spec.indicatorRef) is missing",
        ));
    };
    let objectives = spec
        .objectives
        .filter(|o| !o.is_empty())
        .ok_or_else(|| yaml_err(file, i, "spec.objectives must be a non-empty list"))?;
    let several = objectives.len() > 1;
    objectives
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let oname = match o.display_name.as_ref().or(o.name.as_ref()) {
                Some(n) if several => format!("{name}/{n}"),
                _ if several => format!("{name}/{}", k + 1),
                _ => name.clone(),
            };
            objective_to_slo(file, i, oname, &indicator, o)
        })
        .collect()
}

/// The spec of a metric source of ganalyze (`what` names the metric in errors).
fn source_spec<'a>(
    file: &str,
    i: usize,
    m: &'a Metric,
    what: &str,
) -> Result<&'a SourceSpec, SloError> {
    let ms = m
        .metric_source
        .as_ref()
        .ok_or_else(|| yaml_err(file, i, format!("{what}.metricSource is missing")))?;
    match ms.kind.as_deref() {
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
    ms.spec
        .as_ref()
        .ok_or_else(|| yaml_err(file, i, format!("{what}.metricSource.spec is missing")))
}

fn endpoint_of(
    file: &str,
    i: usize,
    spec: &SourceSpec,
    what: &str,
) -> Result<EndpointPattern, SloError> {
    let e = spec.endpoint.as_deref().ok_or_else(|| {
        yaml_err(
            file,
            i,
            format!("{what}.metricSource.spec.endpoint is missing (e.g. \"GET /api/orders\")"),
        )
    })?;
    parse_endpoint(e, e).map_err(|x| yaml_err(file, i, x.0))
}

fn threshold_ns(file: &str, i: usize, v: Option<&Threshold>, what: &str) -> Result<u64, SloError> {
    match v {
        Some(&Threshold::Seconds(f)) if f > 0.0 && f.is_finite() => Ok((f * 1e9).round() as u64),
        Some(Threshold::Seconds(f)) => Err(yaml_err(
            file,
            i,
            format!("{what} {f} must be above 0 (seconds)"),
        )),
        Some(Threshold::Duration(s)) => {
            parse_threshold(s).map_err(|e| yaml_err(file, i, format!("{what}: {e}")))
        }
        Some(Threshold::Other(_)) | None => Err(yaml_err(
            file,
            i,
            format!("{what} must be a number of seconds or a duration such as 200ms"),
        )),
    }
}

fn target_of(file: &str, i: usize, o: &Objective) -> Result<f64, SloError> {
    let t = o.target.ok_or_else(|| {
        yaml_err(
            file,
            i,
            "objective.target is missing (a fraction such as 0.99)",
        )
    })?;
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
    ind: &IndicatorSpec,
    o: &Objective,
) -> Result<Slo, SloError> {
    if let Some(tm) = &ind.threshold_metric {
        let spec = source_spec(file, i, tm, "thresholdMetric")?;
        let endpoint = endpoint_of(file, i, spec, "thresholdMetric")?;
        match o.op.as_deref() {
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
        let threshold_ns = threshold_ns(file, i, o.value.as_ref(), "objective.value")?;
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
    if let Some(rm) = &ind.ratio_metric {
        let total = rm
            .total
            .as_ref()
            .ok_or_else(|| yaml_err(file, i, "ratioMetric.total is missing"))?;
        let total_spec = source_spec(file, i, total, "ratioMetric.total")?;
        let total_ep = endpoint_of(file, i, total_spec, "ratioMetric.total")?;
        let (which, part) = match (&rm.good, &rm.bad) {
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
        let spec = source_spec(file, i, part, &what)?;
        let endpoint = endpoint_of(file, i, spec, &what)?;
        if endpoint != total_ep {
            return Err(yaml_err(
                file,
                i,
                format!("ratioMetric.{which} and total name different endpoints"),
            ));
        }
        let target = target_of(file, i, o)?;
        return match (which, spec.errors == Some(true), &spec.latency) {
            ("good", false, Some(l)) => Ok(Slo {
                name,
                endpoint,
                latency: Some(Latency::Ratio {
                    percent: round6(target * 100.0),
                    threshold_ns: threshold_ns(
                        file,
                        i,
                        Some(l),
                        &format!("{what}.metricSource.spec.latency"),
                    )?,
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

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = include_str!("../../analyze/tests/data/slos.yaml");

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

    const MALFORMED_YAML: &[(&str, &str)] = &[
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
