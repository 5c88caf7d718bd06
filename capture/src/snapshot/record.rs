//! A [`Snapshot`] as capture events: one `go_snapshot` per goroutine and a `snapshot_end`,
//! all at the snapshot's time, with stacks interned in the target's stack table.

use std::collections::BTreeSet;
use std::io::Write;

use gcap_format::{Event, EventData, Writer};

use super::Snapshot;

/// The PCs a recorded snapshot references, for the capture's symbol table, by how each is
/// symbolized.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotPcs {
    /// Return addresses: `gopc` and every stack frame (the call is the byte before).
    pub(crate) returns: BTreeSet<u64>,
    /// Start functions' entries (`startpc`).
    pub(crate) starts: BTreeSet<u64>,
    /// PCs that name the instruction itself: resume PCs at a function's entry.
    pub(crate) exact: BTreeSet<u64>,
}

/// Writes `snap` as snapshot number `number` of `target`: a `go_snapshot` per goroutine
/// (creation stack `[gopc]`, start stack `[startpc]`, as `go_create` has them) and a
/// `snapshot_end`. Returns the PCs to symbolize.
pub(crate) fn record<W: Write>(
    w: &mut Writer<W>,
    target: u32,
    number: u32,
    snap: &Snapshot,
) -> gcap_format::Result<SnapshotPcs> {
    let mut pcs = SnapshotPcs::default();
    for g in &snap.goroutines {
        let creation = w.intern_stack(target, &[g.gopc]);
        let start = w.intern_stack(target, &[g.startpc]);
        let stack = w.intern_stack(target, &g.stack);
        pcs.returns.insert(g.gopc);
        let returns = match (g.resumes_at_entry, g.stack.split_first()) {
            (true, Some((&first, rest))) => {
                pcs.exact.insert(first);
                rest
            }
            _ => &g.stack[..],
        };
        pcs.returns.extend(returns.iter().copied());
        pcs.starts.insert(g.startpc);
        w.push(
            target,
            Event {
                ts: snap.taken_ns,
                goid: g.goid,
                data: EventData::GoSnapshot {
                    status: g.status,
                    reason: g.wait_reason,
                    waiting_ns: g.waiting_ns.unwrap_or(u64::MAX),
                    parent: g.parent,
                    creation,
                    start,
                    stack,
                    snapshot: number,
                },
            },
        )?;
    }
    pcs.returns.remove(&0);
    pcs.starts.remove(&0);
    w.push(
        target,
        Event {
            ts: snap.taken_ns,
            goid: 0,
            data: EventData::SnapshotEnd {
                snapshot: number,
                goroutines: u32::try_from(snap.goroutines.len()).unwrap_or(u32::MAX),
                torn: snap.torn,
            },
        },
    )?;
    Ok(pcs)
}
