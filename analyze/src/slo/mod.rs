//! Service-level objectives: what one is and its `--slo` syntax (`spec.rs`: [`Slo`],
//! [`parse`]), SLOs from OpenSLO v1 files (`openslo.rs`: [`parse_openslo`]), and their
//! evaluation over a capture's server spans (`eval.rs`).

mod eval;
mod openslo;
mod spec;

pub use eval::require_requests;
pub(crate) use eval::{evaluate, is_error};
pub use openslo::parse_openslo;
pub use spec::{parse, EndpointPattern, Latency, Slo, SloError};

/// A percentage rounded to six decimals, as SLOs write them (`0.999 * 100` is 99.9).
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
