//! gcap: capture goroutine lifecycles and spans from running Go programs with eBPF.
//!
//! `inspect` reads the target binary (pure Rust), `target` turns a pid or program into a
//! probe plan (where each probe goes in that binary), `probes` loads, attaches and drains
//! the BPF programs in `bpf/`, `translate` turns their records into format events, and
//! `session` runs a capture into a `.gcap` file (crate `gcap-format`): the attach, the
//! capture loop, the end. `snapshot` reads every goroutine of a running target from its
//! memory (a capture starts with one of each process it attaches to).

pub mod inspect;
pub mod probes;
pub mod session;
pub mod snapshot;
pub mod target;
pub mod translate;
