//! The `.gcap` capture file format.
//!
//! A capture is what `gcap` recorded about one or more Go processes: goroutine lifecycles,
//! spans, kernel scheduling and the metadata needed to analyse them anywhere. The file is
//! built to be evidence: written under load on a production host, cut off at any byte
//! without losing a complete block, and tamper-evident.
//!
//! ```text
//! file    = header(32) frame* [trailer(68)]
//! frame   = frame_header(24) payload digest(32)      payload = zstd(rkyv archive)
//! digest  = BLAKE3(previous digest || frame_header || payload)
//! ```
//! Blocks ([`BlockKind`]) hold the capture metadata ([`Meta`]), target processes
//! ([`Target`]), interned strings, stacks and symbols, column-encoded events
//! ([`EventsBlock`]), counters ([`Stats`]) and, last, the index. `docs/FORMAT.md` in the
//! repository is the byte-exact specification; `corpus/golden/` holds a file of each format
//! version that this reader must keep reading (`format/tests/golden.rs`).
//!
//! # Where each part of the specification lives
//!
//! | FORMAT.md | module |
//! |---|---|
//! | §1 File layout: file header, frame header, trailer, limits | `frame` |
//! | §2 Finding blocks: the index, or scanning a cut-off file | `reader::locate` |
//! | §3 Integrity: the hash chain | `chain`; checked by `reader::verify` |
//! | §4 Block payloads | `payload`; loaded by `reader::dictionaries` |
//! | §5 Events blocks: the columns | `events_block` |
//! | §5 Varints and zigzag | `varint` |
//! | §5 Recent-list coding | `recent_list` |
//! | §5.1 Event kinds | `event` |
//!
//! [`Writer`] (`writer`) produces all of them; [`Capture`] (`reader`) reads them. The
//! modules are private: everything a user needs is re-exported at the crate root. The one
//! public module, `synthetic` (behind the `synthetic` feature), generates a realistic event
//! stream for tests, benchmarks and the golden file; it is not part of the format.
//!
//! # Example
//! ```
//! use gcap_format::{Capture, Event, EventData, Meta, Target, Writer, WriterOptions};
//!
//! let mut w = Writer::new(Vec::new(), WriterOptions::default())?;
//! w.write_meta(&Meta { host: "db1".into(), ..Meta::default() })?;
//! w.write_target(&Target { id: 0, pid: 42, go_version: "go1.27.3".into(), ..Target::default() })?;
//! let site = w.intern_stack(0, &[0x4a1f20]);
//! w.push(0, Event { ts: 1_000, goid: 7, data: EventData::GoCreate { parent: 1, creation: site, start: site } })?;
//! w.push(0, Event { ts: 2_000, goid: 7, data: EventData::GoExit })?;
//! let (summary, bytes) = w.finish()?;
//! assert_eq!(summary.events, 2);
//!
//! let cap = Capture::from_vec(bytes)?;
//! assert!(cap.verify().intact);
//! assert_eq!(cap.targets()[0].pid, 42);
//! let events = cap.events()?;
//! assert_eq!(events[1].1.data, EventData::GoExit);
//! # Ok::<(), gcap_format::Error>(())
//! ```

#![warn(unreachable_pub)]

mod chain;
mod error;
mod event;
mod events_block;
mod frame;
mod payload;
mod reader;
mod recent_list;
#[cfg(feature = "synthetic")]
pub mod synthetic;
mod varint;
mod writer;

pub use error::{one_line, Error, Result};
pub use event::{
    coverage_cause, probe_group, stop_reason, ArgCoding, Event, EventData, EventKind, RawEvent,
    SpanKind, StackId, StrId, TraceContext, BUDGET_FLOOR_NS_PER_S, MAX_ARGS,
};
pub use events_block::{
    ArchivedEventsBlock, ArchivedEventsBlockV1, DecodeError, EventsBlock, EventsBlockV1,
    EventsIter, EventsView,
};
pub use frame::{FileHeader, FORMAT_VERSION, FRAME_HEADER_LEN};
pub use payload::{
    BlockKind, KeyValue, Meta, Offset, ProbeInfo, ProbeStat, Seal, Stats, Symbol, Target,
};
pub use reader::{BlockInfo, Capture, EventsPayload, Evidence, Recovery, StackTable, VerifyReport};
pub use writer::{create_file, seal, sync_dir_of, WriteSummary, Writer, WriterOptions};
