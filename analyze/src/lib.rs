//! `ganalyze` as a library: reconstruct what the Go programs in `.gcap` captures did.
//!
//! ```text
//! CaptureSet::open(files)            several files = one incident, on one time axis
//!   -> Analysis::run(&set, &opts)    goroutine lifecycles (parallel over events blocks)
//!        .goroutines                 per goroutine: states, totals, wakers
//!        .spans                      spans tied to goroutine trees and joined by trace context
//!   -> export::{parquet, chrome, folded}, table::{goroutine rows, span rows}
//!   -> report::build(&set, &a, &slos)  slo (spec, OpenSLO, evaluation) -> critical_path
//!                                    (each slow request's waits) -> root_cause (ranked, worded
//!                                    by category; failure: why failed requests failed)
//!                                    -> render::{text, json, markdown, html}
//! ```
//! Durations and numbers are written and read in `units`, latency statistics computed in
//! `latency`, and the root-cause categories (names, colours, wording) defined in `category`.
//! What each capture covered (its lifecycle windows) and cost is read in [`coverage`]: time
//! outside the windows is unknown, and only requests wholly inside them are explained.
//!
//! Times inside the library are nanoseconds on one axis for every file of a set
//! ([`Ns`], Unix-epoch based); `CaptureSet::rel` turns them into the contract's
//! "nanoseconds since the capture's start".

pub mod analysis;
pub mod capture_set;
pub mod category;
pub mod coverage;
pub(crate) mod critical_path;
pub mod error;
pub mod export;
pub(crate) mod failure;
pub mod goroutine;
pub(crate) mod latency;
pub mod render;
pub mod report;
pub mod root_cause;
pub mod slo;
pub mod span;
pub mod table;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
mod timing;
pub mod units;

pub use analysis::{Analysis, Options};
pub use capture_set::{CaptureSet, LoadedCapture, Ns};
pub use error::{AnalyzeError, Result};
pub use goroutine::{Goroutine, GoroutineKey, LeakParams, LeakSuspect, State};
pub use span::Span;
