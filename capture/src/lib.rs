//! gcap: capture goroutine lifecycles and spans from running Go programs with eBPF.
//!
//! `inspect` reads the target binary (pure Rust), `probes` loads and drains the BPF programs
//! in `bpf/`, `target` turns a pid or program into a probe plan, and `session` runs a capture
//! into a `.gcap` file (crate `gcap-format`).

pub mod inspect;
pub mod probes;
pub mod session;
pub mod spans;
pub mod target;
