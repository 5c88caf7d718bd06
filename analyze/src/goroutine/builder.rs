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
//! Every event sets the new state whatever the previous one was, so a lost event costs one
//! wrong interval, never the rest of the goroutine (the mismatch is counted in `anomalies`).
//! A goroutine whose first event is not GoCreate existed before the capture: its state from
//! the capture start to its first event is inferred from that event (GoStart: it was
//! runnable; GoUnblock: blocked, reason unknown; SyscallExit: in a syscall; anything else:
//! running). Running time during which the kernel had descheduled the thread becomes
//! off_cpu ([`super::off_cpu`]).

use std::cell::RefCell;

use gcap_format::StackId;

use super::event::{kind::*, GEv};
use super::name::Name;
use super::off_cpu::{Hints, ThreadOff};
use super::record::{EndedBy, Goroutine, GoroutineKey, Totals};
use super::state::{Cause, State, StateKind};
use super::states::{Packed, States};
use crate::capture_set::{LoadedCapture, Ns};

/// Builds goroutines one after the other (one builder per thread).
pub(crate) struct Builder<'a> {
    threads: &'a ThreadOff,
    keep_states: bool,
    hints: RefCell<Hints<'a>>,
    /// The states of the goroutine being built (reused from one goroutine to the next).
    scratch: RefCell<Vec<Packed>>,
}

/// The state being built: its start and what is known about it so far.
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
            end: f.end,
            ended_by: EndedBy::CaptureEnd,
            states: States::default(),
            last: Packed::NONE,
            totals: Totals::default(),
            samples: Box::default(),
            anomalies: 0,
        };
        let mut st = std::mem::take(&mut *self.scratch.borrow_mut());
        st.clear();
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
            if g.ended_by == EndedBy::Exit {
                // Events after the goroutine exited: lost or reordered events.
                g.anomalies += 1;
                continue;
            }
            let kind = e.kind;
            if kind == INFO {
                // Facts about a goroutine created before the capture (gcap reads them when it
                // first sees it run): no state change, and no creation time.
                if !g.was_created {
                    g.parent = Some(e.a);
                    g.creation_stack = e.b;
                    g.start_stack = e.c;
                }
                if i == 0 {
                    let start = f.start.min(e.t);
                    g.first_seen = start;
                    cur = Some(open(StateKind::Runnable, start));
                }
                continue;
            }
            if i == 0 && kind != CREATE {
                // Existed before the capture: infer the state it was in.
                let start = f.start.min(e.t);
                g.first_seen = start;
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
            let prev = cur.as_ref().map(|c| c.kind);
            let next = match kind {
                CREATE => {
                    if i == 0 {
                        g.was_created = true;
                        g.first_seen = e.t;
                        g.parent = Some(e.a);
                        g.creation_stack = e.b;
                        g.start_stack = e.c;
                        Some(Open {
                            cause: Cause::Created,
                            ..open(StateKind::Runnable, e.t)
                        })
                    } else {
                        g.anomalies += 1;
                        continue;
                    }
                }
                START => {
                    if prev != Some(StateKind::Runnable) {
                        g.anomalies += 1;
                    }
                    Some(Open {
                        tid: e.b,
                        ..open(StateKind::Running, e.t)
                    })
                }
                STOP => {
                    if prev != Some(StateKind::Running) {
                        g.anomalies += 1;
                    }
                    Some(Open {
                        cause: if e.c == gcap_format::stop_reason::YIELD as u32 {
                            Cause::Yielded
                        } else {
                            Cause::Preempted
                        },
                        ..open(StateKind::Runnable, e.t)
                    })
                }
                BLOCK => {
                    if prev != Some(StateKind::Running) {
                        g.anomalies += 1;
                    }
                    Some(Open {
                        reason: Some(e.c as u8),
                        stack: e.b,
                        ..open(StateKind::Blocked, e.t)
                    })
                }
                UNBLOCK => {
                    if prev != Some(StateKind::Blocked) {
                        g.anomalies += 1;
                    }
                    g.totals.wakeups_by.add(e.a, 1);
                    Some(Open {
                        cause: Cause::Woken(e.a),
                        ..open(StateKind::Runnable, e.t)
                    })
                }
                SYS_IN => {
                    if prev != Some(StateKind::Running) {
                        g.anomalies += 1;
                    }
                    Some(Open {
                        tid: e.b,
                        stack: e.c,
                        ..open(StateKind::Syscall, e.t)
                    })
                }
                SYS_OUT => {
                    if prev != Some(StateKind::Syscall) {
                        g.anomalies += 1;
                    }
                    Some(Open {
                        tid: e.b,
                        ..open(StateKind::Running, e.t)
                    })
                }
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
                self.close(&mut g, &mut st, threads, c, e.t);
            }
            cur = next;
        }
        if g.ended_by != EndedBy::Exit {
            if let Some(t) = proc_exit {
                g.end = t;
                g.ended_by = EndedBy::ProcessExit;
            }
        }
        if let Some(c) = cur.take() {
            let end = g.end;
            self.close(&mut g, &mut st, threads, c, end);
        }
        if !st.is_empty() {
            g.states = States::from_packed(&st, g.states.end);
        }
        *self.scratch.borrow_mut() = st;
        g.samples = samples.into_boxed_slice();
        g
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
        let s = State {
            start: c.start,
            end: end.max(c.start),
            kind: c.kind,
            tid: c.tid,
            reason: c.reason,
            stack: c.stack,
            cause: c.cause,
        };
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
