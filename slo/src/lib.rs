//! Service-level objectives as gcap and ganalyze both read them: what one is and its
//! `--slo "ENDPOINT: OBJECTIVE"` syntax (`spec.rs`: [`Slo`], [`parse`]), SLOs from OpenSLO v1
//! files (`openslo.rs`: [`parse_openslo`]), and durations the way SLOs write them
//! (`duration.rs`). One parser: gcap's slow-request trigger and ganalyze's reports agree on
//! what an SLO says. Evaluating one over spans is the analyser's (ganalyze's `slo::eval`).

mod duration;
mod openslo;
mod spec;

pub use duration::{fmt_dur, parse_duration, short_decimal, DurationError};
pub use openslo::parse_openslo;
pub use spec::{parse, EndpointPattern, Latency, Slo, SloError};

/// A percentage rounded to six decimals, as SLOs write them (`0.999 * 100` is 99.9).
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
