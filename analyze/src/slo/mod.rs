//! Service-level objectives: what one is, its `--slo` syntax and OpenSLO v1 files are crate
//! `gcap_slo`'s (shared with gcap), re-exported here; their evaluation over a capture's
//! server spans is `eval.rs`.

mod eval;

pub use eval::require_requests;
pub(crate) use eval::{evaluate, is_error};
use gcap_slo::round6;
pub use gcap_slo::{parse, parse_openslo, EndpointPattern, Latency, Slo, SloError};
