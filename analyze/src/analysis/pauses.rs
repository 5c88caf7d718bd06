//! Garbage-collection cycles and stop-the-world pauses, paired from their start and end
//! events.

use gcap_format::EventKind;
use rustc_hash::FxHashMap;

use crate::capture_set::Ns;

/// Garbage collection and stop-the-world intervals, per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pause {
    pub(crate) file: u32,
    pub(crate) target: u32,
    pub(crate) start: Ns,
    pub(crate) end: Ns,
    /// true: stop-the-world; false: a GC cycle (start to mark end).
    pub(crate) stw: bool,
}

/// Pairs each target's GC and STW events (time, kind), per (file, target), into pauses in
/// time order; a start without an end is left out.
pub(super) fn pair(events: FxHashMap<(u32, u32), Vec<(Ns, EventKind)>>) -> Vec<Pause> {
    let mut pauses = Vec::new();
    for ((file, target), mut v) in events {
        v.sort_by_key(|x| x.0);
        let (mut gc, mut stw) = (None, None);
        for (t, k) in v {
            match k {
                EventKind::GcStart => gc = Some(t),
                EventKind::StwStart => stw = Some(t),
                EventKind::GcEnd | EventKind::StwEnd => {
                    let open = if k == EventKind::GcEnd {
                        gc.take()
                    } else {
                        stw.take()
                    };
                    if let Some(start) = open {
                        pauses.push(Pause {
                            file,
                            target,
                            start,
                            end: t,
                            stw: k == EventKind::StwEnd,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    pauses.sort_by_key(|p| (p.start, p.file, p.target));
    pauses
}
