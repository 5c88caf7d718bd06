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
//! ([`EventsBlock`]), counters ([`Stats`]) and, last, the index. docs/FORMAT.md is the
//! byte-exact specification.
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

pub mod block;
pub mod error;
pub mod event;
pub mod frame;
pub mod reader;
pub mod synthetic;
pub mod varint;
pub mod writer;

pub use block::{
    BlockKind, EventsBlock, KeyValue, Meta, Offset, ProbeInfo, ProbeStat, Stats, Symbol, Target,
};
pub use error::{Error, Result};
pub use event::{Event, EventData, EventKind, RawEvent, SpanKind, StackId, StrId, TraceContext};
pub use reader::{BlockInfo, Capture, EventsPayload, Recovery, VerifyReport};
pub use writer::{create_file, WriteSummary, Writer, WriterOptions};
