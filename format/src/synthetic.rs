//! A deterministic, realistic event stream for benchmarks, the format's tests and the golden
//! file (feature `synthetic`; not part of the format).
//!
//! It models a goroutine-heavy Go server: a few Ps run goroutines that are created per
//! request by an accept loop, block on channels, mutexes, the network and sleeps, wake each
//! other, enter system calls, get preempted and exit, with HTTP server spans around each
//! request. Event gaps are exponential around `mean_gap_ns`, as probes firing on two cores.

use crate::event::{Event, EventData, SpanKind, StackId, StrId};
use crate::writer::Writer;
use std::collections::VecDeque;
use std::io::Write;

/// Wait reasons used (Go 1.26+ numbering: chan receive, sync.Mutex.Lock, IO wait, sleep, select).
const REASONS: [u8; 5] = [19, 22, 2, 14, 18];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: plenty for a synthetic workload, and reproducible from a seed.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Skewed pick in 0..n: low indices are much likelier, as blocking sites are in real
    /// servers (a handful of hot places, a long tail).
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        let b = self.below(n);
        let c = self.below(n);
        a.min(b).min(c)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn exp(&mut self, mean: f64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (-(1.0 - u).ln() * mean) as u64 + 1
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Runnable,
    Running,
    Blocked,
}

struct G {
    goid: u64,
    state: State,
    span: u64,
}

/// The generator. Call [`Synthetic::prepare`] once, then [`Synthetic::next_event`].
pub struct Synthetic {
    rng: Rng,
    now: u64,
    mean_gap_ns: f64,
    next_goid: u64,
    next_span: u64,
    gs: Vec<G>,
    runq: VecDeque<usize>,
    blocked: Vec<usize>,
    ps: Vec<Option<usize>>,
    tids: Vec<u32>,
    sites: Vec<StackId>,
    block_stacks: Vec<StackId>,
    paths: Vec<StrId>,
    method: StrId,
    queue: VecDeque<Event>,
}

impl Synthetic {
    /// A generator with `procs` Ps and the given mean gap between events.
    pub fn new(seed: u64, procs: usize, mean_gap_ns: f64) -> Synthetic {
        let mut s = Synthetic {
            rng: Rng(seed | 1),
            now: 1_000_000_000,
            mean_gap_ns,
            next_goid: 2,
            next_span: 1,
            gs: Vec::new(),
            runq: VecDeque::new(),
            blocked: Vec::new(),
            ps: vec![None; procs.max(1)],
            tids: (0..procs.max(1) as u32).map(|i| 4242 + i).collect(),
            sites: Vec::new(),
            block_stacks: Vec::new(),
            paths: Vec::new(),
            method: 0,
            queue: VecDeque::new(),
        };
        // goid 1: the accept loop, always around.
        s.gs.push(G {
            goid: 1,
            state: State::Runnable,
            span: 0,
        });
        s.runq.push_back(0);
        s
    }

    /// Interns the strings and stacks the stream refers to.
    pub fn prepare<W: Write>(&mut self, w: &mut Writer<W>, target: u32) {
        self.method = w.intern("GET");
        self.paths = ["/api/orders", "/api/users", "/api/health", "/api/checkout"]
            .iter()
            .map(|p| w.intern(p))
            .collect();
        self.sites = (0..8u64)
            .map(|i| w.intern_stack(target, &[0x4a_0000 + i * 0x140]))
            .collect();
        self.block_stacks = (0..64u64)
            .map(|i| {
                let d = 3 + (i % 6);
                let pcs: Vec<u64> = (0..d)
                    .map(|j| 0x40_0000 + i * 0x333 + j * 0x1_0000)
                    .collect();
                w.intern_stack(target, &pcs)
            })
            .collect();
    }

    fn tick(&mut self) -> u64 {
        self.now += self.rng.exp(self.mean_gap_ns);
        self.now
    }

    fn emit(&mut self, goid: u64, data: EventData) {
        let ts = self.tick();
        self.queue.push_back(Event { ts, goid, data });
    }

    /// The next event of the stream.
    pub fn next_event(&mut self) -> Event {
        while self.queue.is_empty() {
            self.step();
        }
        self.queue.pop_front().expect("filled above")
    }

    fn step(&mut self) {
        let p = self.rng.below(self.ps.len() as u64) as usize;
        let tid = self.tids[p];
        let Some(gi) = self.ps[p] else {
            if let Some(gi) = self.runq.pop_front() {
                self.gs[gi].state = State::Running;
                self.ps[p] = Some(gi);
                let goid = self.gs[gi].goid;
                self.emit(goid, EventData::GoStart { tid });
            } else if let Some(i) = self.pick_blocked() {
                // Nothing runnable: the network poller wakes someone.
                self.wake(i, 0);
            }
            return;
        };
        let goid = self.gs[gi].goid;
        let roll = self.rng.below(100);
        if gi == 0 {
            // The accept loop: create a handler with a span, then wait on the network.
            if roll < 70 && self.gs.len() < 4096 {
                let child = self.next_goid;
                self.next_goid += 1;
                let site = self.sites[self.rng.below(2) as usize];
                let start = self.sites[2 + self.rng.below(2) as usize];
                self.emit(
                    child,
                    EventData::GoCreate {
                        parent: goid,
                        creation: site,
                        start,
                    },
                );
                let span = self.next_span;
                self.next_span += 1;
                self.gs.push(G {
                    goid: child,
                    state: State::Runnable,
                    span,
                });
                self.runq.push_back(self.gs.len() - 1);
            } else {
                self.block(p, gi, 2);
            }
            return;
        }
        let span = self.gs[gi].span;
        match roll {
            0..=39 => {
                let r = REASONS[self.rng.below(REASONS.len() as u64) as usize];
                if span != 0 && span & (1 << 63) == 0 && self.rng.chance(30) {
                    let target = self.paths[self.rng.below(self.paths.len() as u64) as usize];
                    let method = self.method;
                    self.emit(
                        goid,
                        EventData::SpanStart {
                            span,
                            kind: SpanKind::HttpServer,
                            method,
                            host: 0,
                            target,
                            content_length: 0,
                            trace: None,
                        },
                    );
                    self.gs[gi].span = span | 1 << 63; // started
                }
                self.block(p, gi, r);
            }
            40..=64 => {
                if let Some(i) = self.pick_blocked() {
                    self.wake(i, goid);
                }
            }
            65..=74 => {
                let stack =
                    self.block_stacks[self.rng.below(self.block_stacks.len() as u64) as usize];
                self.emit(goid, EventData::SyscallEnter { tid, stack });
                self.emit(goid, EventData::SyscallExit { tid });
            }
            75..=84 => {
                self.emit(goid, EventData::GoStop { reason: 0 });
                self.gs[gi].state = State::Runnable;
                self.runq.push_back(gi);
                self.ps[p] = None;
            }
            85..=96 => {
                if span & (1 << 63) != 0 {
                    let status = if self.rng.chance(3) { 500 } else { 200 };
                    self.emit(
                        goid,
                        EventData::SpanEnd {
                            span: span & !(1 << 63),
                            status,
                            error: status >= 500,
                        },
                    );
                }
                self.emit(goid, EventData::GoExit);
                self.ps[p] = None;
                // Swap-remove keeps the table small; fix up indices that pointed at the last.
                let last = self.gs.len() - 1;
                self.gs.swap_remove(gi);
                if gi != last {
                    for slot in self.ps.iter_mut().flatten() {
                        if *slot == last {
                            *slot = gi;
                        }
                    }
                    for q in self.runq.iter_mut().chain(self.blocked.iter_mut()) {
                        if *q == last {
                            *q = gi;
                        }
                    }
                }
            }
            _ => {
                self.emit(
                    0,
                    EventData::ThreadOff {
                        tid,
                        runnable: true,
                    },
                );
                self.emit(0, EventData::ThreadOn { tid, cpu: p as u32 });
            }
        }
    }

    fn block(&mut self, p: usize, gi: usize, reason: u8) {
        let goid = self.gs[gi].goid;
        let stack = self.block_stacks[self.rng.skewed(self.block_stacks.len() as u64) as usize];
        self.emit(goid, EventData::GoBlock { reason, stack });
        self.gs[gi].state = State::Blocked;
        self.blocked.push(gi);
        self.ps[p] = None;
    }

    fn pick_blocked(&mut self) -> Option<usize> {
        if self.blocked.is_empty() {
            return None;
        }
        // Mostly recent blockers: wake-ups follow blocks closely in real servers.
        let n = self.blocked.len() as u64;
        let i = (n - 1 - self.rng.below(n.min(16))) as usize;
        Some(self.blocked.swap_remove(i))
    }

    fn wake(&mut self, gi: usize, waker: u64) {
        if self.gs[gi].state != State::Blocked {
            return;
        }
        let goid = self.gs[gi].goid;
        self.emit(goid, EventData::GoUnblock { waker });
        self.gs[gi].state = State::Runnable;
        self.runq.push_back(gi);
    }
}

/// Writes a complete synthetic capture of `events` events to `w` (target 0, pid 4242).
pub fn write_capture<W: Write>(
    mut w: Writer<W>,
    events: u64,
    seed: u64,
) -> crate::Result<(crate::WriteSummary, W)> {
    w.write_meta(&crate::Meta {
        host: "synthetic".into(),
        kernel: "Linux 6.18".into(),
        gcap_version: env!("CARGO_PKG_VERSION").into(),
        command_line: vec!["synthetic".into()],
        start_unix_ns: 1_790_000_000_000_000_000,
        start_mono_ns: 1_000_000_000,
        level: "lifecycle".into(),
        extra: vec![],
    })?;
    w.write_target(&crate::Target {
        id: 0,
        pid: 4242,
        exe: "/usr/local/bin/synthetic-server".into(),
        go_version: "go1.27.3".into(),
        ..Default::default()
    })?;
    let mut s = Synthetic::new(seed, 2, 500.0);
    s.prepare(&mut w, 0);
    for _ in 0..events {
        let e = s.next_event();
        w.push(0, e)?;
    }
    w.finish()
}
