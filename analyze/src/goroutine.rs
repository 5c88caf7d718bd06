//! Goroutine lifecycles: from the events of one goroutine to the sequence of its states.
//!
//! A goroutine is, at any moment, in one of five states (`StateKind`): running on an OS
//! thread, runnable (wanting a P), blocked (parked with one of Go's wait reasons), in a
//! system call, or running but with its thread descheduled by the kernel (`off_cpu`, from the
//! ThreadOff/ThreadOn events of the thread it runs on). A sixth, `unknown`, is time the
//! capture did not cover (outside its lifecycle windows, see `crate::coverage`) and no
//! snapshot of the goroutine explained.
//!
//! | file | what it holds |
//! |---|---|
//! | `record.rs` | [`Goroutine`]: everything reconstructed about one goroutine, and its key |
//! | `state.rs` | [`State`]: one interval of its life, and how it reads in a sentence |
//! | `states.rs` | [`States`]: its states stored compactly |
//! | `counts.rs` | `Counts`: blocked time per wait reason, wake-ups per waker |
//! | `name.rs` | `Name`: symbolized names shared by everything that has them |
//! | `event.rs` | goroutine events between decoding and reconstruction (their encoding) |
//! | `off_cpu.rs` | when the kernel had descheduled the targets' threads |
//! | `builder.rs` | the state machine: events to states |
//! | `leak.rs` | [`LeakSuspect`]s: goroutines stuck at one place and piling up there |
//! | `tests.rs` | known answers of all of it on hand-built captures |

mod builder;
mod counts;
pub(crate) mod event;
mod leak;
mod name;
pub(crate) mod off_cpu;
mod record;
mod state;
mod states;
#[cfg(test)]
mod tests;

pub(crate) use builder::{Builder, Cover};
pub(crate) use counts::Counts;
pub(crate) use leak::{leak_suspects, requests_in_flight};
pub use leak::{LeakParams, LeakSuspect};
pub(crate) use name::symbolize;
pub(crate) use name::Name;
pub(crate) use record::EndedBy;
pub use record::{Goroutine, GoroutineKey};
pub use state::State;
pub(crate) use state::StateKind;
pub(crate) use state::{describe_state, reason_name, Cause, LOST, UNCOVERED};
pub use states::{States, StatesIter};
