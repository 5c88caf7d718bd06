//! The state machine: from the events of one goroutine to the sequence of its states.
//!
//! Events move a goroutine between its states ([`StateKind`]):
//!
//! | event | new state |
//! |---|---|
//! | GoCreate | runnable (cause: created) |
//! | GoStart{tid} | running on tid |
//! | GoStop | runnable (preempted or yielded) |
//! | GoBlock{reason, stack} | blocked (reason, where) |
//! | GoUnblock{waker} | runnable (woken by waker; 0 = the runtime or network poller) |
//! | SyscallEnter{tid, stack} / SyscallExit{tid} | syscall / running on tid |
//! | GoExit | gone |
//!
//! Every event sets the new state whatever the previous one was, so a lost event never
//! derails the rest of the goroutine. An event that does not follow from the state before it
//! (an unblock while running: the block was not recorded) is counted in `anomalies`; in a
//! capture that lost events, the interval from the previous event to it is `unknown` (cause
//! [`Cause::Lost`]): something happened there that no event describes, and counting it as
//! the earlier state would call a lost wait running time. Losses stay local: only that
//! goroutine's interval is unknown. In a capture that lost nothing, such a mismatch is a
//! transition gcap does not probe (a goroutine suspended for a GC stack scan and readied
//! again), and the earlier state is kept. A start straight after a block is no mismatch: the
//! network poller and the GC ready goroutines without a wake-up event.
//! A goroutine whose first event is not GoCreate existed before the capture: its state from
//! the capture start to its first event is inferred from that event (GoStart: it was
//! runnable; GoUnblock: blocked, reason unknown; SyscallExit: in a syscall; anything else:
//! running). Running time during which the kernel had descheduled the thread becomes
//! off_cpu ([`super::off_cpu`]).
//!
//! A capture with lifecycle windows ([`crate::coverage`]) records a goroutine's events only
//! inside them. Time outside is `unknown`. At a window's start the goroutine's state is the
//! one the latest snapshot taken since the previous window read (waiting with its reason and
//! parked stack, runnable, running, in a syscall), else unknown until its first event; a
//! state that lasts across a gap counts only in the window it began in. A goroutine first
//! seen in a snapshot is listed with the snapshot's parent, creation site and start
//! function; one missing from a later snapshot, with no event since, exited unseen. Snapshot
//! states also open the life of goroutines first seen in a snapshot of a capture without
//! windows.

use std::cell::RefCell;

use gcap_format::StackId;

use super::event::{go_status, kind::*, GEv, Snap};
use super::name::Name;
use super::off_cpu::{Hints, ThreadOff};
use super::record::{EndedBy, Goroutine, GoroutineKey, Parked, Totals};
use super::state::{Cause, State, StateKind};
use super::states::{Packed, States};
use crate::capture_set::{LoadedCapture, Ns};
use crate::coverage::inside;

/// What the capture covered of a goroutine's target.
#[derive(Clone, Copy, Default)]
pub(crate) struct Cover<'c> {
    /// Its lifecycle windows (None: the whole capture).
    pub(crate) windows: Option<&'c [(Ns, Ns)]>,
    /// When its complete snapshots were taken, in time order.
    pub(crate) snapshots: &'c [Ns],
    /// Whether the capture lost events (then a goroutine's inconsistent events mark a gap).
    pub(crate) lossy: bool,
}

impl Cover<'_> {
    /// Whether the capture's lifecycle probes were off at some time between `a` and `b`.
    fn gap_between(&self, a: Ns, b: Ns) -> bool {
        self.windows.is_some_and(|w| !inside(w, a, b))
    }
}

/// One snapshot's reading of the goroutine being built.
#[derive(Clone, Copy)]
struct Seen {
    t: Ns,
    snap: Snap,
}

impl Seen {
    /// The state the snapshot read, open from `start` (None: a status that says nothing).
    fn state(&self, start: Ns) -> Option<Open> {
        let s = &self.snap;
        let o = match s.status {
            go_status::RUNNABLE | go_status::PREEMPTED => Open {
                cause: Cause::Snapshot,
                ..open(StateKind::Runnable, start)
            },
            go_status::RUNNING | go_status::COPYSTACK => open(StateKind::Running, start),
            go_status::SYSCALL => Open {
                stack: s.stack,
                ..open(StateKind::Syscall, start)
            },
            go_status::WAITING => Open {
                reason: Some(s.reason),
                stack: s.stack,
                ..open(StateKind::Blocked, start)
            },
            _ => return None,
        };
        Some(o)
    }
}

/// Builds goroutines one after the other (one builder per thread).
pub(crate) struct Builder<'a> {
    threads: &'a ThreadOff,
    keep_states: bool,
    hints: RefCell<Hints<'a>>,
    /// The states of the goroutine being built (reused from one goroutine to the next).
    scratch: RefCell<Vec<Packed>>,
    /// Its snapshot readings (reused too).
    seen: RefCell<Vec<Seen>>,
}

/// The state being built: its start and what is known about it so far.
#[derive(Clone, Copy)]
struct Open {
    kind: StateKind,
    start: Ns,
    tid: u32,
    reason: Option<u8>,
    stack: StackId,
    cause: Cause,
}

impl<'a> Builder<'a> {
    /// `keep_states`: keep every state (else only the totals and the last state).
    pub(crate) fn new(threads: &'a ThreadOff, keep_states: bool) -> Builder<'a> {
        Builder {
            threads,
            keep_states,
            hints: Default::default(),
            scratch: Default::default(),
            seen: Default::default(),
        }
    }

    /// Builds a goroutine from its events (sorted by time); `len` is about how many there
    /// are (to size the states).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        &self,
        f: &LoadedCapture,
        key: GoroutineKey,
        pid: u32,
        events: impl Iterator<Item = GEv>,
        len: usize,
        proc_exit: Option<Ns>,
        cover: Cover,
    ) -> Goroutine {
        let mut g = Goroutine {
            key,
            pid,
            parent: None,
            creation_stack: 0,
            start_stack: 0,
            creation_site: Name::UNKNOWN,
            start_function: Name::UNKNOWN,
            was_created: false,
            first_seen: f.start,
            arrived_us: 0,
            end: f.end,
            ended_by: EndedBy::CaptureEnd,
            states: States::default(),
            last: Packed::NONE,
            totals: Totals::default(),
            samples: Box::default(),
            anomalies: 0,
            parked: None,
        };
        let mut st = std::mem::take(&mut *self.scratch.borrow_mut());
        st.clear();
        let mut seen = std::mem::take(&mut *self.seen.borrow_mut());
        seen.clear();
        let windowed = cover.windows.is_some();
        // The last event (snapshots aside), and the last block, for the parked check.
        let mut last_event: Option<Ns> = None;
        let mut last_block: Option<(Ns, u32, StackId)> = None;
        if self.keep_states {
            st.reserve(len + 1);
        }
        let mut samples = Vec::new();
        // Thread splits apply only when the capture has kernel scheduling events.
        let threads = (!self.threads.is_empty()).then_some(self.threads);
        let stop_at = proc_exit.unwrap_or(Ns::MAX);
        let mut cur: Option<Open> = None;
        for (i, e) in events.enumerate() {
            if e.t > stop_at {
                break;
            }
            if i == 0 {
                g.arrived_us = arrival(f, &e, cover);
            }
            if g.ended_by == EndedBy::Exit {
                // Events after the goroutine exited: lost or reordered events.
                g.anomalies += 1;
                continue;
            }
            let kind = e.kind;
            if kind == SNAPSHOT {
                // A reading of a goroutine that may predate the capture: its origin when no
                // creation event gave it, and the state windows opening after it start in.
                if !g.was_created && g.start_stack == 0 {
                    origin(&mut g, &e);
                }
                if i == 0 {
                    cur = Some(open(StateKind::Unknown, existed_before(&mut g, f, e.t)));
                }
                continue;
            }
            if kind == READING {
                seen.push(Seen {
                    t: e.t,
                    snap: Snap::of(&e),
                });
                continue;
            }
            last_event = Some(e.t);
            if kind == INFO {
                // Facts about a goroutine created before the capture (gcap reads them when it
                // first sees it run): no state change, and no creation time.
                if !g.was_created {
                    origin(&mut g, &e);
                }
                if i == 0 {
                    let kind = if windowed {
                        StateKind::Unknown
                    } else {
                        StateKind::Runnable
                    };
                    cur = Some(open(kind, existed_before(&mut g, f, e.t)));
                }
                continue;
            }
            if i == 0 && kind != CREATE && windowed {
                // Existed before the capture, which did not see what it was doing.
                cur = Some(open(StateKind::Unknown, existed_before(&mut g, f, e.t)));
            } else if i == 0 && kind != CREATE {
                // Existed before the capture: infer the state it was in.
                let start = existed_before(&mut g, f, e.t);
                cur = match kind {
                    START => Some(open(StateKind::Runnable, start)),
                    UNBLOCK => Some(Open {
                        reason: None,
                        ..open(StateKind::Blocked, start)
                    }),
                    SYS_OUT => Some(Open {
                        tid: e.b,
                        ..open(StateKind::Syscall, start)
                    }),
                    SYS_IN | SAMPLE => Some(Open {
                        tid: e.b,
                        ..open(StateKind::Running, start)
                    }),
                    _ => Some(open(StateKind::Running, start)),
                };
            }
            // What the event should follow (None: not known, so no transition is anomalous).
            let prev = cur
                .as_ref()
                .filter(|c| c.kind != StateKind::Unknown && !cover.gap_between(c.start, e.t))
                .map(|c| c.kind);
            if prev.is_some_and(|p| !follows(kind, p)) {
                g.anomalies += 1;
                if cover.lossy {
                    // Events were lost between the previous one and this one.
                    cur = cur.map(|c| Open {
                        cause: Cause::Lost,
                        ..open(StateKind::Unknown, c.start)
                    });
                }
            }
            let next = match kind {
                CREATE => {
                    if i == 0 {
                        g.was_created = true;
                        g.first_seen = e.t;
                        origin(&mut g, &e);
                        Some(Open {
                            cause: Cause::Created,
                            ..open(StateKind::Runnable, e.t)
                        })
                    } else {
                        g.anomalies += 1;
                        continue;
                    }
                }
                START | SYS_OUT => Some(Open {
                    tid: e.b,
                    ..open(StateKind::Running, e.t)
                }),
                STOP => Some(Open {
                    cause: if e.c == gcap_format::stop_reason::YIELD as u32 {
                        Cause::Yielded
                    } else {
                        Cause::Preempted
                    },
                    ..open(StateKind::Runnable, e.t)
                }),
                BLOCK => {
                    last_block = Some((e.t, e.c, e.b));
                    Some(Open {
                        reason: Some(e.c as u8),
                        stack: e.b,
                        ..open(StateKind::Blocked, e.t)
                    })
                }
                UNBLOCK => {
                    g.totals.wakeups_by.add(e.a, 1);
                    Some(Open {
                        cause: Cause::Woken(e.a),
                        ..open(StateKind::Runnable, e.t)
                    })
                }
                SYS_IN => Some(Open {
                    tid: e.b,
                    stack: e.c,
                    ..open(StateKind::Syscall, e.t)
                }),
                EXIT => {
                    g.end = e.t;
                    g.ended_by = EndedBy::Exit;
                    None
                }
                SAMPLE => {
                    samples.push((e.t, e.b, e.c));
                    continue;
                }
                _ => continue,
            };
            if let Some(c) = cur.take() {
                self.close_covered(&mut g, &mut st, threads, c, e.t, cover, &seen);
            }
            cur = next;
        }
        if g.ended_by != EndedBy::Exit {
            // The first snapshot after it was last seen, taken after a gap, that no longer
            // has it: it exited in that gap.
            let last_seen = last_event.max(seen.last().map(|s| s.t));
            let gone = last_seen.and_then(|l| {
                cover
                    .snapshots
                    .iter()
                    .copied()
                    .find(|&t| t > l && t <= g.end && cover.gap_between(l, t))
            });
            if let Some(t) = gone {
                g.end = t;
                g.ended_by = EndedBy::ExitedUnseen;
            } else if let Some(t) = proc_exit {
                g.end = t;
                g.ended_by = EndedBy::ProcessExit;
            }
        }
        if let Some(c) = cur.take() {
            let end = g.end;
            self.close_covered(&mut g, &mut st, threads, c, end, cover, &seen);
        }
        if g.alive_at_end() {
            g.parked = parked(&seen, cover.snapshots, last_event, last_block).map(Box::new);
        }
        if !st.is_empty() {
            g.states = States::from_packed(&st, g.states.end);
        }
        *self.scratch.borrow_mut() = st;
        *self.seen.borrow_mut() = seen;
        g.samples = samples.into_boxed_slice();
        g
    }

    /// Closes state `c` at `end` where the capture covered it, and pieces the rest: time
    /// outside the windows is unknown; in each window after the one `c` began in (or in every
    /// window, when `c` is unknown), the goroutine is in the state the latest snapshot since
    /// the previous window read, else unknown.
    #[allow(clippy::too_many_arguments)]
    fn close_covered(
        &self,
        g: &mut Goroutine,
        st: &mut Vec<Packed>,
        threads: Option<&ThreadOff>,
        c: Open,
        end: Ns,
        cover: Cover,
        seen: &[Seen],
    ) {
        let end = end.max(c.start);
        let Some(windows) = cover.windows else {
            // Covered throughout: only a goroutine first seen in a snapshot has an unknown
            // start, which the snapshot explains.
            let c = match c.kind {
                StateKind::Unknown if c.cause != Cause::Lost => reading(seen, Ns::MIN, end)
                    .and_then(|s| s.state(c.start))
                    .unwrap_or(c),
                _ => c,
            };
            self.close(g, st, threads, c, end);
            return;
        };
        let i0 = windows.partition_point(|w| w.1 <= c.start);
        let mut prev_end = i0.checked_sub(1).map_or(Ns::MIN, |i| windows[i].1);
        let mut at = c.start;
        for (k, &(ws, we)) in windows[i0..].iter().enumerate() {
            // The windows from the one `c` begins in to the one `end` falls in; a state of
            // no length inside a window still counts (a wake-up and a start in one tick).
            if (k > 0 && at >= end) || ws > end || (ws == end && end > c.start) {
                break;
            }
            if ws > at {
                self.push(g, st, state_of(&open(StateKind::Unknown, at), ws));
                at = ws;
            }
            let piece_end = we.min(end);
            // (A gap of lost events is known to be one, in the window it began in.)
            let known = c.kind != StateKind::Unknown || c.cause == Cause::Lost;
            let piece = if known && c.start >= ws {
                Open { start: at, ..c }
            } else {
                reading(seen, prev_end, piece_end)
                    .and_then(|s| s.state(at))
                    .unwrap_or_else(|| open(StateKind::Unknown, at))
            };
            self.close(g, st, threads, piece, piece_end);
            at = piece_end;
            prev_end = we;
        }
        if at < end {
            self.push(g, st, state_of(&open(StateKind::Unknown, at), end));
        }
    }

    #[inline]
    fn close(
        &self,
        g: &mut Goroutine,
        st: &mut Vec<Packed>,
        threads: Option<&ThreadOff>,
        c: Open,
        end: Ns,
    ) {
        let s = state_of(&c, end);
        if let (StateKind::Running, Some(_)) = (s.kind, threads) {
            if s.tid != 0 && self.split(g, st, s) {
                return;
            }
        }
        self.push(g, st, s);
    }

    /// Splits a running state where its thread was descheduled; false when it never was.
    fn split(&self, g: &mut Goroutine, st: &mut Vec<Packed>, s: State) -> bool {
        let key = (g.key.file, g.key.target, s.tid);
        let found = self.hints.borrow_mut().find(self.threads, key, s.start);
        let Some((iv, mut i)) = found else {
            return false;
        };
        let mut at = s.start;
        let mut split = false;
        while i < iv.len() && iv[i].0 < s.end {
            let (a, b) = (iv[i].0.max(s.start), iv[i].1.min(s.end));
            if b > a {
                if a > at {
                    self.push(
                        g,
                        st,
                        State {
                            start: at,
                            end: a,
                            ..s
                        },
                    );
                }
                self.push(
                    g,
                    st,
                    State {
                        start: a,
                        end: b,
                        kind: StateKind::OffCpu,
                        ..s
                    },
                );
                at = b;
                split = true;
            }
            i += 1;
        }
        if split && at < s.end {
            self.push(g, st, State { start: at, ..s });
        }
        split
    }

    #[inline]
    fn push(&self, g: &mut Goroutine, st: &mut Vec<Packed>, s: State) {
        let d = s.duration();
        match s.kind {
            StateKind::Running => g.totals.running_ns += d,
            StateKind::Runnable => g.totals.runnable_ns += d,
            StateKind::Syscall => g.totals.syscall_ns += d,
            StateKind::OffCpu => g.totals.off_cpu_ns += d,
            StateKind::Blocked => g.totals.blocked_ns.add(s.reason, d),
            // The rest of its life: see `Goroutine::unknown_ns`.
            StateKind::Unknown => {}
        }
        // The states tile the goroutine's life: each starts where the previous one ended.
        debug_assert!(g.last.is_none() || g.states.end == s.start);
        let p = Packed::pack(&s);
        if self.keep_states {
            st.push(p);
        }
        g.last = p;
        g.states.end = s.end;
    }
}

/// The state `c` closed at `end`.
fn state_of(c: &Open, end: Ns) -> State {
    State {
        start: c.start,
        end: end.max(c.start),
        kind: c.kind,
        tid: c.tid,
        reason: c.reason,
        stack: c.stack,
        cause: c.cause,
    }
}

/// The latest snapshot reading taken from `from` to `to`.
fn reading(seen: &[Seen], from: Ns, to: Ns) -> Option<&Seen> {
    seen.iter().rev().find(|s| s.t <= to && s.t >= from)
}

/// Whether a goroutine stayed parked: waiting at one place (reason and stack) in every
/// snapshot of its target from the first that had it on, and no event since (a worker that
/// runs between snapshots and parks at the same place again is not stuck). Parked since its
/// last block, when that was there, else since the first such snapshot less the time it had
/// been waiting then, when Go recorded it.
fn parked(
    seen: &[Seen],
    snapshots: &[Ns],
    last_event: Option<Ns>,
    last_block: Option<(Ns, u32, StackId)>,
) -> Option<Parked> {
    let first = seen.first()?;
    let (reason, stack) = (first.snap.reason, first.snap.stack);
    let same = |s: &Seen| {
        s.snap.status == go_status::WAITING && s.snap.reason == reason && s.snap.stack == stack
    };
    if !seen.iter().all(same) || last_event.is_some_and(|t| t > first.t) {
        return None;
    }
    let expected = snapshots.iter().filter(|&&t| t >= first.t);
    if !expected.clone().all(|&t| seen.iter().any(|s| s.t == t)) {
        return None;
    }
    let since = match last_block {
        Some((t, r, st)) if last_event == Some(t) && r == reason as u32 && st == stack => t,
        _ if first.snap.waiting_ns != u64::MAX => first
            .t
            .saturating_sub(first.snap.waiting_ns.min(i64::MAX as u64) as i64),
        _ => first.t,
    };
    Some(Parked {
        since,
        reason,
        stack,
    })
}

/// Takes a goroutine's origin (parent, creation and start stacks) from a create, info or
/// snapshot event.
fn origin(g: &mut Goroutine, e: &GEv) {
    g.parent = Some(e.a);
    g.creation_stack = e.b;
    g.start_stack = e.c;
}

/// When a goroutine whose first event is `e` joined the ones the capture knows of, in µs
/// after the capture start: its creation; else the start when the capture saw it from there
/// (no gap in the lifecycle probes before it, or read by the first snapshot), else when
/// first seen.
fn arrival(f: &LoadedCapture, e: &GEv, cover: Cover) -> u32 {
    let at_start = e.kind != CREATE
        && (!cover.gap_between(f.start, e.t) || cover.snapshots.first().is_some_and(|&s| e.t <= s));
    if at_start {
        0
    } else {
        u32::try_from((e.t - f.start).max(0) / 1_000).unwrap_or(u32::MAX)
    }
}

/// A goroutine first seen at `t` that existed before the capture: its life is followed from
/// the capture's start, which this returns.
fn existed_before(g: &mut Goroutine, f: &LoadedCapture, t: Ns) -> Ns {
    g.first_seen = f.start.min(t);
    g.first_seen
}

fn open(kind: StateKind, start: Ns) -> Open {
    Open {
        kind,
        start,
        tid: 0,
        reason: None,
        stack: 0,
        cause: Cause::Unknown,
    }
}

/// Whether a transition of this kind follows from state `prev`; one that does not is an
/// anomaly (a lost, reordered or unprobed transition). A start may follow a block: the
/// network poller and the GC's idle workers are readied without a wake-up event.
fn follows(kind: u8, prev: StateKind) -> bool {
    match kind {
        START => matches!(prev, StateKind::Runnable | StateKind::Blocked),
        STOP | BLOCK | SYS_IN => prev == StateKind::Running,
        UNBLOCK => prev == StateKind::Blocked,
        SYS_OUT => prev == StateKind::Syscall,
        _ => true,
    }
}
