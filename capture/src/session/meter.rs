//! What gcap costs the targets, measured while it runs: probe hits (the kernel's count of
//! each BPF program's runs, each charged the trap cost calibrated at start for its kind of
//! site), the programs' own run time (the kernel's BPF statistics), and gcap's own CPU time
//! (getrusage), against the CPU time the targets' threads used (`/proc/PID/task/*/schedstat`,
//! in nanoseconds), all counted from the start of the capture.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use crate::probes::{GroupSet, Probes, ProgramRuns, RunStats, TrapCost};

/// Cumulative costs since the capture started, per target (in the session's process order).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Reading {
    /// gcap's cost charged to each target, ns.
    pub(crate) cost_ns: Vec<f64>,
    /// Each target's CPU time, ns.
    pub(crate) target_cpu_ns: Vec<u64>,
    /// Probe hits charged to each target.
    pub(crate) hits: Vec<u64>,
    /// Of the total cost: the span probes' hits and run time, ns.
    pub(crate) spans_ns: f64,
    /// Of the total cost: gcap's own CPU, ns.
    pub(crate) own_ns: f64,
}

impl Reading {
    pub(crate) fn cost(&self) -> f64 {
        self.cost_ns.iter().sum()
    }

    pub(crate) fn target_cpu(&self) -> u64 {
        self.target_cpu_ns.iter().sum()
    }

    /// gcap's cost as a fraction of the targets' CPU (0 while they used none).
    pub(crate) fn ratio(&self) -> f64 {
        match self.target_cpu() {
            0 => 0.0,
            t => self.cost() / t as f64,
        }
    }
}

/// How often a target's thread list is read again (its threads' statistics files stay
/// open in between: opening /proc files is most of what reading them costs).
const RELIST: Duration = Duration::from_secs(1);

/// One thread's scheduler statistics.
#[derive(Debug)]
struct Thread {
    /// `/proc/PID/task/TID/schedstat`, open (None once the thread is gone).
    file: Option<File>,
    /// CPU time when first seen (threads older than the capture count from its start).
    base: u64,
    /// The latest reading (kept after the thread exits).
    last: u64,
}

/// One target process's CPU time, from its threads' scheduler statistics.
#[derive(Debug)]
struct TargetCpu {
    pid: u32,
    /// Binary group (BPF object) serving it.
    group: usize,
    threads: HashMap<u32, Thread>,
    listed: Option<Instant>,
}

impl TargetCpu {
    fn new(pid: u32, group: usize) -> TargetCpu {
        TargetCpu {
            pid,
            group,
            threads: HashMap::new(),
            listed: None,
        }
    }

    /// CPU ns its threads used since the capture started. A thread that exits between
    /// two readings loses what it ran since the last one, a thread that starts and exits
    /// between two listings all of it.
    fn read(&mut self) -> u64 {
        if self.listed.is_none_or(|t| t.elapsed() >= RELIST) {
            let first = self.listed.is_none();
            self.listed = Some(Instant::now());
            if let Ok(dir) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) {
                for entry in dir.flatten() {
                    let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                        continue;
                    };
                    if let Entry::Vacant(v) = self.threads.entry(tid) {
                        let file = File::open(entry.path().join("schedstat")).ok();
                        let now = file.as_ref().and_then(read_schedstat).unwrap_or(0);
                        v.insert(Thread {
                            file,
                            base: if first { now } else { 0 },
                            last: now,
                        });
                    }
                }
            }
        }
        for t in self.threads.values_mut() {
            match t.file.as_ref().map(read_schedstat) {
                Some(Some(ns)) => t.last = t.last.max(ns),
                Some(None) => t.file = None,
                None => {}
            }
        }
        self.threads.values().map(|t| t.last - t.base).sum()
    }
}

/// The CPU time (first field) of an open schedstat file, read again from its start.
fn read_schedstat(f: &File) -> Option<u64> {
    let mut buf = [0u8; 96];
    let n = f.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Measures what the capture costs. Holds the kernel's BPF statistics on while it lives.
#[derive(Debug)]
pub(crate) struct Meter {
    trap: TrapCost,
    /// None without CAP_SYS_ADMIN: probe hits then come from gcap's own counters, and the
    /// programs' run time is not counted.
    stats: Option<RunStats>,
    targets: Vec<TargetCpu>,
    gcap_cpu_start: u64,
}

impl Meter {
    /// Starts measuring: `targets` are (pid, binary group) in process order; `trap` the
    /// calibrated hit cost. BPF statistics must have been on since the probes were loaded
    /// (`stats`), so that every run is counted.
    pub(crate) fn new(stats: Option<RunStats>, trap: TrapCost, targets: &[(u32, usize)]) -> Meter {
        let mut m = Meter {
            trap,
            stats,
            targets: targets
                .iter()
                .map(|&(pid, group)| TargetCpu::new(pid, group))
                .collect(),
            gcap_cpu_start: own_cpu_ns(),
        };
        for t in &mut m.targets {
            t.read();
        }
        m
    }

    /// The calibrated trap cost.
    pub(crate) fn trap(&self) -> TrapCost {
        self.trap
    }

    /// Reads every counter. `groups[g]` are the probes of binary group `g`. gcap's own CPU
    /// and each object's probe cost are shared out between the targets in proportion to
    /// their CPU time (one target per binary: all of it).
    pub(crate) fn read<'a>(&mut self, groups: impl Iterator<Item = &'a Probes>) -> Reading {
        let cpu: Vec<u64> = self.targets.iter_mut().map(TargetCpu::read).collect();
        let total_cpu: u64 = cpu.iter().sum();
        let mut cost = vec![0.0; cpu.len()];
        let mut hits = vec![0u64; cpu.len()];
        let mut spans_ns = 0.0;
        for (gi, probes) in groups.enumerate() {
            let members: Vec<usize> = (0..cpu.len())
                .filter(|&i| self.targets[i].group == gi)
                .collect();
            let group_cpu: u64 = members.iter().map(|&i| cpu[i]).sum();
            let (mut g_cost, mut g_hits) = (0.0, 0u64);
            let counted = match self.stats {
                Some(_) => Vec::new(),
                None => probes.hit_counts().unwrap_or_default(),
            };
            for (probe, mut runs, stepped) in probes.program_runs() {
                if self.stats.is_none() {
                    let hits = counted.iter().find(|(p, _)| *p == probe).map_or(0, |h| h.1);
                    runs = ProgramRuns {
                        runs: hits,
                        run_ns: 0,
                    };
                }
                let c = self.probe_cost(runs, stepped);
                if GroupSet::of(probe) == Some(GroupSet::SPANS) {
                    spans_ns += c;
                }
                g_cost += c;
                g_hits += runs.runs;
            }
            for &i in &members {
                let share = share(cpu[i], group_cpu, members.len());
                cost[i] += g_cost * share;
                hits[i] += (g_hits as f64 * share).round() as u64;
            }
        }
        let own = own_cpu_ns().saturating_sub(self.gcap_cpu_start) as f64;
        for (i, c) in cost.iter_mut().enumerate() {
            *c += own * share(cpu[i], total_cpu, cpu.len());
        }
        Reading {
            cost_ns: cost,
            target_cpu_ns: cpu,
            hits,
            spans_ns,
            own_ns: own,
        }
    }

    /// What `runs` of a program cost the threads that hit its sites.
    fn probe_cost(&self, runs: ProgramRuns, stepped: bool) -> f64 {
        runs.runs as f64 * self.trap.per_hit(stepped) + runs.run_ns as f64
    }
}

/// The share of a whole that a part of `part` out of `whole` gets (equal parts of `n` while
/// nothing was used).
fn share(part: u64, whole: u64, n: usize) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64
    } else {
        1.0 / n.max(1) as f64
    }
}

/// gcap's CPU time (every thread, user and system), ns.
pub(crate) fn own_cpu_ns() -> u64 {
    // SAFETY: rusage is plain data; getrusage fills it for this process.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid rusage to write.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ns = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000;
    ns(ru.ru_utime) + ns(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::super::host::thread_cpu_ns;
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(share(1, 4, 2), 0.25);
        assert_eq!(share(0, 0, 2), 0.5);
        assert_eq!(share(0, 0, 0), 1.0);
    }

    #[test]
    fn own_threads_are_counted() {
        let mut t = TargetCpu::new(std::process::id(), 0);
        // Counted from the first reading: only what threads of this test process (other
        // tests run beside it) ran between their listing and their read.
        assert!(t.read() < 20_000_000);
        // 50 ms of this thread's CPU (the machine may be busy: not of wall time).
        let start = thread_cpu_ns();
        while thread_cpu_ns() - start < 50_000_000 {
            std::hint::black_box(0);
        }
        // The kernel brings a running thread's count up to date at its ticks.
        assert!(t.read() >= 30_000_000, "50 ms of spinning counted");
    }

    #[test]
    fn ratio() {
        let r = Reading {
            cost_ns: vec![10.0, 10.0],
            target_cpu_ns: vec![500, 500],
            hits: vec![1, 1],
            spans_ns: 0.0,
            own_ns: 0.0,
        };
        assert_eq!(r.ratio(), 0.02);
        assert_eq!(Reading::default().ratio(), 0.0);
    }
}
