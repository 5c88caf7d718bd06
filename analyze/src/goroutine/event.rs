//! Goroutine events between decoding and reconstruction: how they are stored while every
//! block is decoded ([`Events`]: 16-byte slots and a kind column), and how the state machine
//! reads them back ([`GEv`]). The one place that knows the encoding.

use gcap_format::{EventData, RawEvent};

use crate::capture_set::Ns;

/// The kind bytes of goroutine events, as `match` patterns (storage and the state machine).
pub(crate) mod kind {
    use gcap_format::EventKind;

    pub(crate) const CREATE: u8 = EventKind::GoCreate as u8;
    pub(crate) const INFO: u8 = EventKind::GoInfo as u8;
    pub(crate) const START: u8 = EventKind::GoStart as u8;
    pub(crate) const STOP: u8 = EventKind::GoStop as u8;
    pub(crate) const BLOCK: u8 = EventKind::GoBlock as u8;
    pub(crate) const UNBLOCK: u8 = EventKind::GoUnblock as u8;
    pub(crate) const SYS_IN: u8 = EventKind::SyscallEnter as u8;
    pub(crate) const SYS_OUT: u8 = EventKind::SyscallExit as u8;
    pub(crate) const EXIT: u8 = EventKind::GoExit as u8;
    pub(crate) const SAMPLE: u8 = EventKind::CpuSample as u8;
    pub(crate) const SNAPSHOT: u8 = EventKind::GoSnapshot as u8;
    /// Not a file kind: what a snapshot read of the goroutine, the [`super::GEv`] that follows
    /// each `SNAPSHOT` one (see [`super::Snap::of`]).
    pub(crate) const READING: u8 = u8::MAX;
}
use kind::*;

/// Whether events of this kind are goroutine events (stored in [`Events`]; the rest are
/// decoded by their consumers).
#[inline]
pub(crate) fn is_goroutine_event(kind: u8) -> bool {
    matches!(
        kind,
        CREATE
            | INFO
            | START
            | SYS_OUT
            | STOP
            | BLOCK
            | UNBLOCK
            | SYS_IN
            | SAMPLE
            | EXIT
            | SNAPSHOT
    )
}

/// One goroutine event as reconstruction reads it (32 bytes: millions go through the state
/// machine, so a snapshot comes as two, its origin then its [`READING`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GEv {
    pub(crate) t: Ns,
    /// Create / info / snapshot: the parent; unblock: the waker; reading: the time waiting.
    pub(crate) a: u64,
    /// Create / info / snapshot: the creation stack; start, syscall, sample: the thread;
    /// block, reading: the stack.
    pub(crate) b: u32,
    /// Create / info / snapshot: the start stack; stop, block: the reason; syscall enter,
    /// sample: the stack; reading: status | reason << 8.
    pub(crate) c: u32,
    pub(crate) kind: u8,
}

/// A goroutine as a snapshot read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snap {
    /// How long it had been waiting (u64::MAX: unknown).
    pub(crate) waiting_ns: u64,
    /// Where it is parked.
    pub(crate) stack: u32,
    /// Go's status (`_Grunnable` = 1, ...) and wait reason.
    pub(crate) status: u8,
    pub(crate) reason: u8,
}

impl Snap {
    /// The reading of a [`GEv`] of kind [`READING`].
    pub(crate) fn of(e: &GEv) -> Snap {
        debug_assert_eq!(e.kind, READING);
        Snap {
            waiting_ns: e.a,
            stack: e.b,
            status: e.c as u8,
            reason: (e.c >> 8) as u8,
        }
    }
}

/// Go's goroutine statuses a snapshot records (`runtime/runtime2.go`).
pub(crate) mod go_status {
    pub(crate) const IDLE: u8 = 0;
    pub(crate) const RUNNABLE: u8 = 1;
    pub(crate) const RUNNING: u8 = 2;
    pub(crate) const SYSCALL: u8 = 3;
    pub(crate) const WAITING: u8 = 4;
    pub(crate) const MORIBUND: u8 = 5;
    pub(crate) const DEAD: u8 = 6;
    pub(crate) const COPYSTACK: u8 = 8;
    pub(crate) const PREEMPTED: u8 = 9;
}

/// How a goroutine event is stored: 16 bytes plus its kind byte (a separate column). Fields
/// as in [`GEv`]: `x` is `b`, `y` is `c`. An unblock's waker is split over `x` (low half) and
/// `y` (high half); a create or info event takes two slots, the second (kind [`CONT`])
/// holding the parent in `t`. A snapshot takes three: its parked stack in `x` and status |
/// reason << 8 in `y`, then the parent, creation and start stacks as a create's second slot,
/// then the waiting time in `t`.
#[derive(Clone, Copy, Default)]
struct Slot {
    t: Ns,
    x: u32,
    y: u32,
}

/// The kind of the slots after the first of a create, info or snapshot event.
const CONT: u8 = 0;

/// How many slots an event of this kind takes.
#[inline]
fn slots_of(kind: u8) -> u32 {
    match kind {
        CREATE | INFO => 2,
        SNAPSHOT => 3,
        _ => 1,
    }
}

/// Goroutine events as stored: a column of slots and a column of their kinds.
#[derive(Default)]
pub(crate) struct Events {
    slots: Vec<Slot>,
    kinds: Vec<u8>,
}

impl Events {
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.kinds.clear();
    }

    /// Room for `n` more slots.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        self.kinds.reserve(n);
    }

    /// How many slots are stored.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Stores a goroutine event (kind [`is_goroutine_event`]) at `t`; returns how many slots
    /// it took. 0: not stored (malformed arguments, which `to_event` rejects, a CPU sample
    /// outside any goroutine, or a snapshot of a goroutine slot not in use).
    #[inline]
    pub(crate) fn push(&mut self, raw: &RawEvent, t: Ns) -> u32 {
        // `to_event` is the one place that knows each kind's arguments.
        let Some(ev) = raw.to_event() else { return 0 };
        if let EventData::GoSnapshot {
            status,
            reason,
            waiting_ns,
            parent,
            creation,
            start,
            stack,
            ..
        } = ev.data
        {
            if matches!(
                status,
                go_status::IDLE | go_status::MORIBUND | go_status::DEAD
            ) {
                return 0;
            }
            let slots = [
                Slot {
                    t,
                    x: stack,
                    y: status as u32 | (reason as u32) << 8,
                },
                Slot {
                    t: parent as i64,
                    x: creation,
                    y: start,
                },
                Slot {
                    t: waiting_ns as i64,
                    x: 0,
                    y: 0,
                },
            ];
            self.slots.extend_from_slice(&slots);
            self.kinds.extend_from_slice(&[raw.kind, CONT, CONT]);
            return 3;
        }
        let (x, y, cont) = match ev.data {
            EventData::GoCreate {
                parent,
                creation,
                start,
            }
            | EventData::GoInfo {
                parent,
                creation,
                start,
            } => (creation, start, Some(parent)),
            EventData::GoStart { tid } | EventData::SyscallExit { tid } => (tid, 0, None),
            EventData::GoStop { reason } => (0, reason as u32, None),
            EventData::GoBlock { reason, stack } => (stack, reason as u32, None),
            EventData::GoUnblock { waker } => (waker as u32, (waker >> 32) as u32, None),
            EventData::SyscallEnter { tid, stack } => (tid, stack, None),
            EventData::CpuSample { tid, stack } if raw.goid != 0 => (tid, stack, None),
            EventData::GoExit => (0, 0, None),
            _ => return 0,
        };
        self.slots.push(Slot { t, x, y });
        self.kinds.push(raw.kind);
        match cont {
            Some(parent) => {
                self.slots.push(Slot {
                    t: parent as i64,
                    x: 0,
                    y: 0,
                });
                self.kinds.push(CONT);
                2
            }
            None => 1,
        }
    }

    /// Appends the event whose first slot is `from`'s slot `i`; returns how many slots it
    /// took.
    pub(crate) fn copy_event(&mut self, from: &Events, i: usize) -> u32 {
        let n = slots_of(from.kinds[i]);
        let r = i..i + n as usize;
        self.slots.extend_from_slice(&from.slots[r.clone()]);
        self.kinds.extend_from_slice(&from.kinds[r]);
        n
    }

    /// The slots reordered by group (a counting sort: no comparison, order kept within a
    /// group): `group[i]` is the group of slot `i`, `at[g]` where group `g` starts in the
    /// result, with every group's start and length adding up to [`Events::len`].
    pub(crate) fn sorted_by_group(&self, group: &[u32], mut at: Vec<u32>) -> Events {
        let m = self.slots.len();
        let mut slots: Vec<Slot> = Vec::with_capacity(m);
        let mut kinds: Vec<u8> = Vec::with_capacity(m);
        {
            let (ds, dk) = (slots.spare_capacity_mut(), kinds.spare_capacity_mut());
            for (i, &g) in group.iter().enumerate().take(m) {
                let j = at[g as usize] as usize;
                at[g as usize] += 1;
                ds[j].write(self.slots[i]);
                dk[j].write(self.kinds[i]);
            }
        }
        // SAFETY: the groups' lengths add up to `m` and each group's positions were written
        // exactly once above (`at[g]` runs from the group's start to the next group's start),
        // so every element below `m` is initialised.
        unsafe {
            slots.set_len(m);
            kinds.set_len(m);
        }
        Events { slots, kinds }
    }

    /// The events of the run `start..start + len`.
    pub(crate) fn run(&self, start: u32, len: u32) -> Run<'_> {
        let r = start as usize..(start + len) as usize;
        Run {
            slots: &self.slots[r.clone()],
            kinds: &self.kinds[r],
        }
    }
}

/// One goroutine's events in one block.
#[derive(Clone, Copy)]
pub(crate) struct Run<'a> {
    slots: &'a [Slot],
    kinds: &'a [u8],
}

impl<'a> Run<'a> {
    pub(crate) fn first_t(&self) -> Option<Ns> {
        self.slots.first().map(|s| s.t)
    }

    pub(crate) fn last_t(&self) -> Option<Ns> {
        let i = self.kinds.iter().rposition(|&k| k != CONT)?;
        Some(self.slots[i].t)
    }

    /// The events as [`GEv`]s.
    pub(crate) fn iter(self) -> RunIter<'a> {
        RunIter {
            slots: self.slots,
            kinds: self.kinds,
            i: 0,
        }
    }
}

/// The events of a run as [`GEv`]s.
pub(crate) struct RunIter<'a> {
    slots: &'a [Slot],
    kinds: &'a [u8],
    i: usize,
}

impl Iterator for RunIter<'_> {
    type Item = GEv;

    #[inline]
    fn next(&mut self) -> Option<GEv> {
        let i = self.i;
        let s = *self.slots.get(i)?;
        let kind = self.kinds[i];
        self.i = i + 1;
        let (a, b, c) = match kind {
            CREATE | INFO => {
                let parent = self.slots[i + 1].t as u64;
                self.i = i + 2;
                (parent, s.x, s.y)
            }
            SNAPSHOT => {
                // Its origin now, its reading next (from the slot after this one).
                let origin = self.slots[i + 1];
                (origin.t as u64, origin.x, origin.y)
            }
            CONT => {
                // Only a snapshot's continuation is reached: its reading.
                debug_assert_eq!(self.kinds[i - 1], SNAPSHOT);
                let first = self.slots[i - 1];
                self.i = i + 2;
                return Some(GEv {
                    t: first.t,
                    a: self.slots[i + 1].t as u64,
                    b: first.x,
                    c: first.y,
                    kind: READING,
                });
            }
            UNBLOCK => (s.x as u64 | (s.y as u64) << 32, 0, 0),
            _ => (0, s.x, s.y),
        };
        Some(GEv {
            t: s.t,
            a,
            b,
            c,
            kind,
        })
    }
}
