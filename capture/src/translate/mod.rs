//! Ring records → format events: one probe record at a time, into the events, stacks and
//! symbols of the capture file (crate `gcap-format`). A new kind of event is added here.
//!
//! `Translator::translate` picks the target a record belongs to, turns it into zero or more
//! events, and keeps what that needs across records: the BPF stack ids already interned, the
//! goroutines whose origin is in the file, the GC cycle number, and the capture's end (records
//! after it are dropped). `spans` pairs span records; `memory` reads the origin of goroutines
//! created before the capture; `symbols` queues the PCs the events name; `sql` and
//! `traceparent` parse span text.

pub(crate) mod memory;
pub(crate) mod spans;
pub mod sql;
pub(crate) mod symbols;
pub mod traceparent;

use std::collections::{HashMap, HashSet};
use std::fs::File;

use anyhow::Result;
use gcap_format::{Event, EventData, KeyValue, Writer};

use crate::inspect::offsets::GOffsets;
use crate::probes::{ProbeId, Probes, Record, RecordKind as Rec};
use crate::snapshot::{self, Snapshot};
use memory::Memory;
use spans::Spans;
use symbols::{PcQueue, Placement, Role};

/// What translation keeps about one target process.
struct TargetState {
    /// Target id in the capture file.
    id: u32,
    /// BPF stack id -> capture stack id.
    stacks: HashMap<u32, u32>,
    /// Live goroutines whose creation (or go_info) is in the file.
    known: HashSet<u64>,
    /// To read goroutines created before the capture.
    mem: Memory,
}

/// Translation state of one capture.
pub(crate) struct Translator {
    /// Processes by pid (index into `targets`).
    by_tgid: HashMap<u32, usize>,
    targets: Vec<TargetState>,
    gc_cycle: u32,
    /// Records after this time (CLOCK_MONOTONIC) are dropped: the capture has ended.
    cutoff: Option<u64>,
    spans: Spans,
    pcs: PcQueue,
}

impl Translator {
    /// `targets`: (target id, pid) of each captured process, by process index.
    pub(crate) fn new(targets: impl IntoIterator<Item = (u32, u32)>, keep_query: bool) -> Self {
        let mut t = Translator {
            by_tgid: HashMap::new(),
            targets: Vec::new(),
            gc_cycle: 0,
            cutoff: None,
            spans: Spans::new(keep_query),
            pcs: PcQueue::default(),
        };
        for (i, (id, pid)) in targets.into_iter().enumerate() {
            t.by_tgid.insert(pid, i);
            t.targets.push(TargetState {
                id,
                stacks: HashMap::new(),
                known: HashSet::new(),
                mem: Memory::new(pid),
            });
        }
        t
    }

    /// Drops every record after `end_ns` from now on.
    pub(crate) fn cut_off(&mut self, end_ns: u64) {
        self.cutoff = Some(end_ns);
    }

    /// Span pairing, and the server requests it tracks for the budget's trigger.
    pub(crate) fn spans(&mut self) -> &mut Spans {
        &mut self.spans
    }

    /// Span counters for the capture's stats block.
    pub(crate) fn span_stats(&self) -> Vec<KeyValue> {
        self.spans.stats()
    }

    /// Symbolizes the PCs the events written so far name (see [`PcQueue::symbolize`]).
    pub(crate) fn symbolize<'a>(
        &mut self,
        w: &mut Writer<File>,
        place: impl Fn(usize) -> Placement<'a>,
    ) {
        self.pcs.symbolize(w, place);
    }

    /// Writes the events of record `r`, drained from `probes` (whose BPF object reads `g`
    /// at offsets `g_offsets`); calls `exited` with the index of a process whose exit `r`
    /// reports.
    pub(crate) fn translate(
        &mut self,
        w: &mut Writer<File>,
        probes: &mut Probes,
        g_offsets: &GOffsets,
        r: &Record,
        exited: impl FnOnce(usize),
    ) -> Result<()> {
        if self.cutoff.is_some_and(|c| r.ts_ns > c) {
            return Ok(());
        }
        let Some(pi) = self.process_of(r) else {
            return Ok(());
        };
        let target = self.targets[pi].id;
        let tid = r.tid;
        let push = |w: &mut Writer<File>, goid: u64, data: EventData| {
            w.push(
                target,
                Event {
                    ts: r.ts_ns,
                    goid,
                    data,
                },
            )
        };
        match r.kind {
            Rec::GoCreate {
                goid,
                parent_goid,
                gopc,
                startpc,
            } => {
                self.targets[pi].known.insert(goid);
                let (creation, start) = self.origin_stacks(w, pi, gopc, startpc);
                push(
                    w,
                    goid,
                    EventData::GoCreate {
                        parent: parent_goid,
                        creation,
                        start,
                    },
                )?;
            }
            Rec::GoStart { goid, g: gptr } => {
                if self.targets[pi].known.insert(goid) {
                    self.go_info(w, pi, g_offsets, gptr, goid, r.ts_ns)?;
                }
                push(w, goid, EventData::GoStart { tid })?
            }
            Rec::GoPreempt { goid } => {
                let reason = if r.probe == Some(ProbeId::Goyield) {
                    gcap_format::stop_reason::YIELD
                } else {
                    gcap_format::stop_reason::PREEMPTED
                };
                push(w, goid, EventData::GoStop { reason })?
            }
            Rec::GoBlock {
                goid,
                reason,
                stack_id,
            } => {
                let stack = self.stack(w, pi, probes, stack_id)?;
                push(w, goid, EventData::GoBlock { reason, stack })?
            }
            Rec::GoUnblock { goid, waker_goid } => {
                push(w, goid, EventData::GoUnblock { waker: waker_goid })?
            }
            Rec::SyscallEnter { goid } => push(w, goid, EventData::SyscallEnter { tid, stack: 0 })?,
            Rec::SyscallExit { goid } => push(w, goid, EventData::SyscallExit { tid })?,
            Rec::GoExit { goid } => {
                self.targets[pi].known.remove(&goid);
                push(w, goid, EventData::GoExit)?;
                self.spans.goroutine_exit(w, target, r.ts_ns, goid)?;
            }
            Rec::GcStart { goid } => {
                self.gc_cycle += 1;
                let cycle = self.gc_cycle;
                push(w, goid, EventData::GcStart { cycle })?
            }
            Rec::GcEnd { goid } => {
                let cycle = self.gc_cycle;
                push(w, goid, EventData::GcEnd { cycle })?
            }
            Rec::StwStart { goid, reason } => push(w, goid, EventData::StwStart { reason })?,
            Rec::StwEnd { goid } => push(w, goid, EventData::StwEnd)?,
            Rec::SchedSwitch {
                prev_tid,
                prev_tgid,
                next_tid,
                next_tgid,
                preempted,
                ..
            } => {
                // Each side is written under its own target, if it is one.
                let mut on_thread = |tgid: u32, data: EventData| match self.by_tgid.get(&tgid) {
                    Some(&p) => w.push(
                        self.targets[p].id,
                        Event {
                            ts: r.ts_ns,
                            goid: 0,
                            data,
                        },
                    ),
                    None => Ok(()),
                };
                on_thread(
                    prev_tgid,
                    EventData::ThreadOff {
                        tid: prev_tid,
                        runnable: preempted,
                    },
                )?;
                on_thread(
                    next_tgid,
                    EventData::ThreadOn {
                        tid: next_tid,
                        cpu: r.cpu as u32,
                    },
                )?;
            }
            Rec::ProcessExit { exit_code } => {
                exited(pi);
                let code = exit_code_of(exit_code);
                push(w, 0, EventData::ProcExit { code })?
            }
            Rec::SpanStart(ref rec) => self.spans.start(w, target, r.ts_ns, rec)?,
            Rec::SpanEnd {
                goid,
                span_kind,
                status,
                error,
            } => self
                .spans
                .end(w, target, r.ts_ns, goid, span_kind, status, error)?,
            Rec::HttpStatus { goid, code } => self.spans.http_status(target, goid, code),
            Rec::CpuSample { goid, stack_id } => {
                let stack = self.stack(w, pi, probes, stack_id)?;
                push(w, goid, EventData::CpuSample { tid, stack })?
            }
            Rec::Unknown { .. } => {}
        }
        Ok(())
    }

    /// The index of the process record `r` belongs to, if it is a target. Kernel records
    /// name their threads' processes; uprobe records come from the target.
    fn process_of(&self, r: &Record) -> Option<usize> {
        let tgid = match r.kind {
            Rec::SchedSwitch {
                prev_tgid,
                next_tgid,
                ..
            } => {
                if self.by_tgid.contains_key(&prev_tgid) {
                    prev_tgid
                } else {
                    next_tgid
                }
            }
            _ => r.tgid,
        };
        self.by_tgid.get(&tgid).copied()
    }

    /// Writes `snap` as snapshot `number` of process `pi` (`go_snapshot` and `snapshot_end`
    /// events) and queues the PCs it names.
    pub(crate) fn snapshot(
        &mut self,
        w: &mut Writer<File>,
        pi: usize,
        number: u32,
        snap: &Snapshot,
    ) -> Result<()> {
        let target = self.targets[pi].id;
        let pcs = snapshot::record(w, target, number, snap)?;
        for (set, role) in [
            (pcs.returns, Role::Return),
            (pcs.starts, Role::Start),
            (pcs.exact, Role::Exact),
        ] {
            for pc in set {
                self.pcs.want(pi, target, pc, role);
            }
        }
        Ok(())
    }

    /// First sight of goroutine `goid` (its `runtime.g` at `gptr`), created before the
    /// capture: records what its g says about where it came from.
    fn go_info(
        &mut self,
        w: &mut Writer<File>,
        pi: usize,
        g_offsets: &GOffsets,
        gptr: u64,
        goid: u64,
        ts: u64,
    ) -> Result<()> {
        let origin = self.targets[pi].mem.goroutine_origin(g_offsets, gptr, goid);
        if let Some(o) = origin {
            let (creation, start) = self.origin_stacks(w, pi, o.gopc, o.startpc);
            let data = EventData::GoInfo {
                parent: o.parent,
                creation,
                start,
            };
            w.push(self.targets[pi].id, Event { ts, goid, data })?;
        }
        Ok(())
    }

    /// The one-frame creation and start stacks of a goroutine created at `gopc` running
    /// `startpc`, with both PCs queued for symbolization.
    fn origin_stacks(
        &mut self,
        w: &mut Writer<File>,
        pi: usize,
        gopc: u64,
        startpc: u64,
    ) -> (u32, u32) {
        let target = self.targets[pi].id;
        let creation = w.intern_stack(target, &[gopc]);
        let start = w.intern_stack(target, &[startpc]);
        self.pcs.want(pi, target, gopc, Role::Return);
        self.pcs.want(pi, target, startpc, Role::Start);
        (creation, start)
    }

    /// The capture stack id of BPF stack `bpf_id` of process `pi` (0 when there is none),
    /// interned and its PCs queued on first sight.
    fn stack(
        &mut self,
        w: &mut Writer<File>,
        pi: usize,
        probes: &mut Probes,
        bpf_id: Option<u32>,
    ) -> Result<u32> {
        let Some(bpf_id) = bpf_id else {
            return Ok(0);
        };
        if let Some(&id) = self.targets[pi].stacks.get(&bpf_id) {
            return Ok(id);
        }
        let pcs: Vec<u64> = probes
            .stack(bpf_id)?
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let target = self.targets[pi].id;
        let id = w.intern_stack(target, &pcs);
        for (i, &pc) in pcs.iter().enumerate() {
            // The first frame is where the probe fired; the rest are return addresses.
            self.pcs.want(
                pi,
                target,
                pc,
                if i > 0 { Role::Return } else { Role::Exact },
            );
        }
        self.targets[pi].stacks.insert(bpf_id, id);
        Ok(id)
    }
}

/// The exit code of a kernel wait status: bits 8..16, or 128 + the terminating signal
/// (bits 0..7).
fn exit_code_of(wait_status: i32) -> i32 {
    if wait_status & 0x7f != 0 {
        128 + (wait_status & 0x7f)
    } else {
        (wait_status >> 8) & 0xff
    }
}
