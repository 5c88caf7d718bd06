//! One capture, from attach to the finished file.
//!
//! The capture thread drains every target's ring buffer on a timer (records are submitted
//! without wakeups), translates probe records into format events, and hands them to the
//! format writer, which writes a block whenever one fills and everything pending every
//! `flush_interval`, so a killed gcap loses at most that much. PCs are symbolized
//! incrementally (while the target is alive, with its load bias) into the capture's symbol
//! table. It stops on a signal, after the duration, or when every target has exited, then
//! writes the stats, the index and the trailer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use gcap_format::{
    create_file, Event, EventData, KeyValue, Meta, ProbeStat, Stats, Symbol, WriteSummary, Writer,
    WriterOptions,
};

use crate::probes::{self, Level, ProbeId, Probes, Record, RecordKind as Rec};
use crate::spans::Spans;
use crate::target::{self, Prepared, SpanOptions};

/// What to capture and where.
#[derive(Clone, Debug)]
pub struct Options {
    pub output: PathBuf,
    pub force: bool,
    pub pids: Vec<u32>,
    /// Program and arguments to start (exec mode) instead of attaching to pids.
    pub command: Vec<String>,
    pub duration: Option<Duration>,
    pub level: Level,
    /// Ring buffer bytes per target binary (0: the level's default).
    pub ringbuf_bytes: u32,
    /// Longest time events wait in memory before they are written.
    pub flush_interval: Duration,
    /// gcap's own command line, recorded in the capture.
    pub command_line: Vec<String>,
    /// HTTP/SQL spans, query stripping and CPU samples.
    pub spans: SpanOptions,
}

/// How a capture ended.
#[derive(Debug)]
pub struct Outcome {
    pub summary: WriteSummary,
    pub elapsed: Duration,
    pub lost: u64,
    pub stop_reason: String,
    /// Exit status of the program gcap started (exec mode).
    pub exit_status: Option<ExitStatus>,
    pub warnings: Vec<String>,
    /// Why the capture ended early (disk full, ...): the file holds what came before.
    pub failure: Option<String>,
}

/// One loaded BPF object (per distinct target binary) and the pids it serves.
struct Group {
    prepared: Prepared,
    probes: Probes,
    /// (device, inode) of the binary, to notice a target exec'ing something else.
    file_id: (u64, u64),
}

/// Per-process state.
struct Proc {
    id: u32,
    pid: u32,
    group: usize,
    bias: Option<u64>,
    exited: bool,
    /// BPF stack id -> capture stack id.
    stacks: HashMap<u32, u32>,
    /// Live goroutines whose creation (or go_info) is in the file.
    known: HashSet<u64>,
    /// /proc/PID/mem, opened on first need, to read goroutines created before the capture.
    mem: Option<std::fs::File>,
}

/// Checks that gcap may load BPF programs, before touching anything.
pub fn check_privileges() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(());
    }
    // Without root, CAP_BPF (39) and CAP_PERFMON (38) in the effective set are enough.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if eff & (1 << 39) != 0 && eff & (1 << 38) != 0 {
        return Ok(());
    }
    bail!("gcap needs root (or CAP_BPF and CAP_PERFMON) to load eBPF probes: run it with sudo")
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn kernel_release() -> String {
    let os = std::fs::read_to_string("/proc/sys/kernel/ostype").unwrap_or_default();
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{} {}", os.trim(), rel.trim())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Runs a whole capture. `stop` is set by the signal handler.
pub fn run(opts: &Options, stop: Arc<AtomicBool>) -> Result<Outcome> {
    check_privileges()?;
    let mut warnings = Vec::new();

    // Inspect every target before creating the file: a bad pid leaves nothing behind.
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: HashMap<(u64, u64), usize> = HashMap::new();
    let mut procs: Vec<Proc> = Vec::new();
    let mut exes: Vec<String> = Vec::new();
    let mut plan_group =
        |exe: PathBuf, shown: String, warnings: &mut Vec<String>| -> Result<usize> {
            let meta = std::fs::metadata(&exe).with_context(|| format!("cannot read {shown}"))?;
            if let Some(&g) = group_of.get(&(meta.dev(), meta.ino())) {
                return Ok(g);
            }
            let prepared = target::prepare_with(&exe, opts.level, opts.ringbuf_bytes, &opts.spans)?;
            warnings.extend(prepared.warnings.iter().cloned());
            let probes = Probes::load(prepared.plan.clone())
                .with_context(|| format!("loading the eBPF probes for {shown}"))?;
            groups.push(Group {
                prepared,
                probes,
                file_id: (meta.dev(), meta.ino()),
            });
            group_of.insert((meta.dev(), meta.ino()), groups.len() - 1);
            Ok(groups.len() - 1)
        };
    for &pid in &opts.pids {
        let exe = target::pid_exe(pid)?;
        let shown = std::fs::read_link(&exe)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| exe.display().to_string());
        let g = plan_group(exe, shown.clone(), &mut warnings).map_err(|e| match e
            .downcast::<target::TargetError>(
        ) {
            Ok(target::TargetError::Inspect(source)) => target::TargetError::Pid {
                pid,
                exe: shown.clone(),
                source,
            }
            .into(),
            Ok(other) => other.into(),
            Err(e) => e,
        })?;
        procs.push(Proc {
            id: procs.len() as u32,
            pid,
            group: g,
            bias: None,
            exited: false,
            stacks: HashMap::new(),
            known: HashSet::new(),
            mem: None,
        });
        exes.push(shown);
    }
    let mut program: Option<(usize, PathBuf)> = None;
    if let Some(prog) = opts.command.first() {
        let path = target::resolve_program(prog)?;
        let g = plan_group(path.clone(), path.display().to_string(), &mut warnings)?;
        program = Some((g, path));
    }
    if procs.is_empty() && program.is_none() {
        bail!("nothing to capture: give -p PID or -- PROGRAM [ARGS]");
    }

    let file = create_file(&opts.output, opts.force)?;
    let mut w = Writer::new(file, WriterOptions::default())?;
    let start_mono = monotonic_ns();
    let start_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    w.write_meta(&Meta {
        host: hostname(),
        kernel: kernel_release(),
        gcap_version: env!("CARGO_PKG_VERSION").into(),
        command_line: opts.command_line.clone(),
        start_unix_ns: start_unix,
        start_mono_ns: start_mono,
        level: format!("{:?}", opts.level).to_lowercase(),
        extra: vec![],
    })?;

    // Attach to running processes.
    for p in &mut procs {
        let g = &mut groups[p.group];
        g.probes
            .attach(p.pid as i32)
            .with_context(|| format!("attaching to pid {}", p.pid))?;
        p.bias = target::load_bias(p.pid, &g.prepared.binary);
    }
    // Start the program: a shell holds it until the probes are attached, then execs it
    // (same pid), so not one event of its life is missed.
    let mut child: Option<Child> = None;
    if let Some((g, path)) = &program {
        let (c, release) = spawn_held(path, &opts.command[1..])?;
        let pid = c.id();
        groups[*g]
            .probes
            .attach_before_exec(pid as i32)
            .with_context(|| format!("attaching to {}", path.display()))?;
        drop(release); // closing the pipe lets the shell exec the program
        let bias = wait_for_exec(pid, path, &groups[*g].prepared.binary);
        procs.push(Proc {
            id: procs.len() as u32,
            pid,
            group: *g,
            bias,
            exited: false,
            stacks: HashMap::new(),
            known: HashSet::new(),
            mem: None,
        });
        exes.push(path.display().to_string());
        child = Some(c);
    }
    let attached = monotonic_ns();
    for (p, exe) in procs.iter().zip(&exes) {
        let mut rec = target::record(p.id, p.pid, exe, &groups[p.group].prepared);
        rec.attached_mono_ns = attached;
        w.write_target(&rec)?;
    }
    // One line when the probes are in place (scripts wait for it before loading a target).
    eprintln!(
        "gcap: capturing {} at level {:?} into {}; Ctrl-C to stop",
        procs
            .iter()
            .zip(&exes)
            .map(|(p, e)| format!("pid {} ({e})", p.pid))
            .collect::<Vec<_>>()
            .join(", "),
        opts.level,
        opts.output.display()
    );
    for g in &groups {
        for m in g.probes.missing() {
            warnings.push(format!(
                "{} has no usable {} probe site: those events are not recorded",
                g.prepared.plan.binary.display(),
                m.symbol()
            ));
        }
    }

    let mut cap = Capture {
        w,
        procs,
        by_tgid: HashMap::new(),
        pcs_done: HashSet::new(),
        pcs_pending: Vec::new(),
        gc_cycle: 0,
        lost_seen: BTreeMap::new(),
        cutoff: None,
        spans: Spans::new(opts.spans.keep_query),
    };
    for (i, p) in cap.procs.iter().enumerate() {
        cap.by_tgid.insert(p.pid, i);
    }

    let began = Instant::now();
    let mut last_flush = Instant::now();
    let mut exit_status = None;
    // A write error (disk full) or a probe error ends the loop; the file is then finished
    // as well as it can be, never left with a partial block.
    let mut failure: Option<String> = None;
    let stop_reason = loop {
        std::thread::sleep(probes::DRAIN_INTERVAL);
        let step = cap.drain_all(&mut groups).and_then(|_| {
            if last_flush.elapsed() >= opts.flush_interval {
                last_flush = Instant::now();
                cap.flush(&groups)
            } else {
                Ok(())
            }
        });
        if let Err(e) = step {
            failure = Some(format!("{e:#}"));
            break "error".to_string();
        }
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                exit_status = Some(status);
                if let Some(p) = cap.procs.last_mut() {
                    p.exited = true;
                }
            }
        }
        for p in &mut cap.procs {
            if !p.exited && !std::path::Path::new(&format!("/proc/{}", p.pid)).exists() {
                p.exited = true;
            }
            if p.bias.is_none() && !p.exited {
                p.bias = target::load_bias(p.pid, &groups[p.group].prepared.binary);
            }
            // A target that exec'd another program is gone for our probes.
            if !p.exited && p.bias.is_some() {
                let now = std::fs::metadata(format!("/proc/{}/exe", p.pid))
                    .map(|m| (m.dev(), m.ino()))
                    .ok();
                if now.is_some() && now != Some(groups[p.group].file_id) {
                    warnings.push(format!(
                        "pid {} exec'd another program; its capture ends there",
                        p.pid
                    ));
                    p.exited = true;
                }
            }
        }
        if stop.load(Ordering::Relaxed) {
            break "signal".to_string();
        }
        if opts.duration.is_some_and(|d| began.elapsed() >= d) {
            break "duration".to_string();
        }
        if cap.procs.iter().all(|p| p.exited) {
            break "targets exited".to_string();
        }
    };
    // The kernel's exit record can beat the child's reaping: give a program gcap started a
    // moment to be reaped so its exit status is reported (an exec'd one keeps running).
    if let (Some(c), None) = (child.as_mut(), exit_status) {
        if cap.procs.last().is_some_and(|p| p.exited) {
            let until = Instant::now() + Duration::from_secs(1);
            while exit_status.is_none() && Instant::now() < until {
                exit_status = c.try_wait().ok().flatten();
                if exit_status.is_none() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    // The capture ends now. Detaching takes a while (each uprobe is unregistered in turn),
    // and records from probes still attached meanwhile would describe a half-observed
    // program (wake-ups without the runs that follow them): drop everything after this.
    let end_ns = monotonic_ns();
    cap.cutoff = Some(end_ns);
    if failure.is_none() {
        // Let in-flight records land, then take the last of them.
        std::thread::sleep(probes::DRAIN_INTERVAL);
        let last = cap.drain_all(&mut groups).and_then(|_| {
            for g in &mut groups {
                g.probes.detach_all();
            }
            cap.drain_all(&mut groups)?;
            cap.flush(&groups)
        });
        if let Err(e) = last {
            failure = Some(format!("{e:#}"));
        }
    }
    for g in &mut groups {
        g.probes.detach_all();
    }
    if failure.is_some() {
        // Cut off the partial block a failed write left; what was written stays readable.
        if let Ok(n) = cap.w.recover_from_write_error() {
            if n > 0 {
                warnings.push(format!("{n} buffered events could not be written"));
            }
        }
    }
    let stop_reason = match &failure {
        Some(f) => format!("{stop_reason}: {f}"),
        None => stop_reason,
    };

    let mut stats = Stats {
        end_mono_ns: end_ns,
        stop_reason: stop_reason.clone(),
        ..Stats::default()
    };
    let mut lost_total = 0;
    for (gi, g) in groups.iter().enumerate() {
        let first = cap.procs.iter().find(|p| p.group == gi).map_or(0, |p| p.id);
        for (probe, hits) in g.probes.hit_counts().unwrap_or_default() {
            stats.probes.push(ProbeStat {
                target: first,
                name: format!("{probe:?}"),
                hits,
            });
        }
        let lost = g.probes.lost_per_cpu().unwrap_or_default();
        if stats.lost_per_cpu.len() < lost.len() {
            stats.lost_per_cpu.resize(lost.len(), 0);
        }
        for (i, n) in lost.iter().enumerate() {
            stats.lost_per_cpu[i] += n;
            lost_total += n;
        }
        stats.extra.push(KeyValue {
            key: format!("target{first}.stacks_lost"),
            value: g.probes.stacks_lost().unwrap_or(0).to_string(),
        });
        stats.extra.push(KeyValue {
            key: format!("target{first}.unblocks_lost"),
            value: g.probes.unblocks_lost().unwrap_or(0).to_string(),
        });
    }
    stats.extra.extend(cap.spans.stats());
    if let Some(s) = exit_status {
        stats.extra.push(KeyValue {
            key: "program_exit_status".into(),
            value: s.to_string(),
        });
    }
    let shown = opts.output.display();
    let summary = cap
        .w
        .write_stats(&stats)
        .and_then(|_| cap.w.finish())
        .map(|(summary, _)| summary)
        .with_context(|| {
            format!(
                "{}could not finish {shown}; it holds every block written before (ganalyze reads it, verify reports it unfinished)",
                failure.as_ref().map(|f| format!("{f}; ")).unwrap_or_default()
            )
        })?;
    // A program gcap started and that still runs (stopped by signal or duration) is left
    // running, as in attach mode: the user decides what to do with it.
    drop(child);
    Ok(Outcome {
        summary,
        elapsed: began.elapsed(),
        lost: lost_total,
        stop_reason,
        exit_status,
        warnings,
        failure,
    })
}

/// Waits (briefly) until `pid` has exec'd `path`, and returns its load bias, which must be
/// read while the process lives: a short program may be gone by the first drain.
fn wait_for_exec(
    pid: u32,
    path: &std::path::Path,
    binary: &crate::inspect::GoBinary,
) -> Option<u64> {
    if !binary.is_pie() {
        return Some(0);
    }
    let want = std::fs::metadata(path).ok()?.ino();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let now = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?.ino();
        if now == want {
            if let Some(b) = target::load_bias(pid, binary) {
                return Some(b);
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    None
}

/// Starts `path args` under `sh`, which waits until the returned pipe is closed, then execs
/// it (keeping the pid). The program's stdin/stdout/stderr are gcap's.
fn spawn_held(path: &std::path::Path, args: &[String]) -> Result<(Child, std::fs::File)> {
    use std::os::unix::process::CommandExt;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two file descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("cannot create a pipe: {}", std::io::Error::last_os_error());
    }
    let (rd, wr) = (fds[0], fds[1]);
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("read -r _ <&9; exec 9<&-; exec \"$0\" \"$@\"")
        .arg(path)
        .args(args);
    // SAFETY: the closure only calls dup2, which is async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(rd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", path.display()));
    // SAFETY: rd is our own descriptor from pipe2 and is not used after this.
    unsafe { libc::close(rd) };
    // SAFETY: wr is our own descriptor from pipe2; the File takes sole ownership.
    let release = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(wr) };
    Ok((child?, release))
}

/// What a PC is, which decides how it is symbolized.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Where a probe fired: the PC itself.
    Exact,
    /// A return address (stack frames, `g.gopc`): the call is the byte before it.
    Return,
    /// A goroutine's start function: see through `go f(x)` wrappers to `f`.
    Start,
}

/// The capture's moving parts while it runs.
struct Capture {
    w: Writer<std::fs::File>,
    procs: Vec<Proc>,
    by_tgid: HashMap<u32, usize>,
    /// (target, pc) already symbolized.
    pcs_done: HashSet<(u32, u64)>,
    /// PCs waiting for symbolization.
    pcs_pending: Vec<(usize, u64, Role)>,
    gc_cycle: u32,
    lost_seen: BTreeMap<(usize, usize), u64>,
    /// Records after this time (CLOCK_MONOTONIC) are dropped: the capture has ended.
    cutoff: Option<u64>,
    spans: Spans,
}

impl Capture {
    fn drain_all(&mut self, groups: &mut [Group]) -> Result<()> {
        let mut recs: Vec<Record> = Vec::new();
        for (gi, g) in groups.iter_mut().enumerate() {
            recs.clear();
            g.probes.drain(|r| recs.push(r))?;
            for r in &recs {
                self.translate(g, r)?;
            }
            // Lost records as events, so the analysis knows when the gaps were.
            if let Ok(lost) = g.probes.lost_per_cpu() {
                for (cpu, n) in lost.into_iter().enumerate() {
                    let seen = self.lost_seen.entry((gi, cpu)).or_insert(0);
                    if n > *seen {
                        let count = n - *seen;
                        *seen = n;
                        let target = self
                            .procs
                            .iter()
                            .find(|p| p.group == gi)
                            .map_or(0, |p| p.id);
                        self.w.push(
                            target,
                            Event {
                                ts: monotonic_ns(),
                                goid: 0,
                                data: EventData::Lost {
                                    cpu: cpu as u32,
                                    count,
                                },
                            },
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    fn translate(&mut self, g: &mut Group, r: &Record) -> Result<()> {
        if self.cutoff.is_some_and(|c| r.ts_ns > c) {
            return Ok(());
        }
        // Kernel records name their threads' processes; uprobe records come from the target.
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
        let Some(&pi) = self.by_tgid.get(&tgid) else {
            return Ok(());
        };
        let target = self.procs[pi].id;
        let tid = r.tid;
        let push = |w: &mut Writer<std::fs::File>, goid: u64, data: EventData| {
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
                self.procs[pi].known.insert(goid);
                let creation = self.w.intern_stack(target, &[gopc]);
                let start = self.w.intern_stack(target, &[startpc]);
                self.want_pc(pi, gopc, Role::Return);
                self.want_pc(pi, startpc, Role::Start);
                push(
                    &mut self.w,
                    goid,
                    EventData::GoCreate {
                        parent: parent_goid,
                        creation,
                        start,
                    },
                )?;
            }
            Rec::GoStart { goid, g: gptr } => {
                if self.procs[pi].known.insert(goid) {
                    // First sight of a goroutine created before the capture: record what
                    // its g says about where it came from.
                    if let Some((parent, gopc, startpc)) = self.read_g(pi, g, gptr, goid) {
                        let creation = self.w.intern_stack(target, &[gopc]);
                        let start = self.w.intern_stack(target, &[startpc]);
                        self.want_pc(pi, gopc, Role::Return);
                        self.want_pc(pi, startpc, Role::Start);
                        push(
                            &mut self.w,
                            goid,
                            EventData::GoInfo {
                                parent,
                                creation,
                                start,
                            },
                        )?;
                    }
                }
                push(&mut self.w, goid, EventData::GoStart { tid })?
            }
            Rec::GoPreempt { goid } => {
                let reason = if r.probe == Some(ProbeId::Goyield) {
                    gcap_format::stop_reason::YIELD
                } else {
                    gcap_format::stop_reason::PREEMPTED
                };
                push(&mut self.w, goid, EventData::GoStop { reason })?
            }
            Rec::GoBlock {
                goid,
                reason,
                stack_id,
            } => {
                let stack = match stack_id {
                    Some(id) => self.stack(pi, g, id)?,
                    None => 0,
                };
                push(&mut self.w, goid, EventData::GoBlock { reason, stack })?
            }
            Rec::GoUnblock { goid, waker_goid } => push(
                &mut self.w,
                goid,
                EventData::GoUnblock { waker: waker_goid },
            )?,
            Rec::SyscallEnter { goid } => {
                push(&mut self.w, goid, EventData::SyscallEnter { tid, stack: 0 })?
            }
            Rec::SyscallExit { goid } => push(&mut self.w, goid, EventData::SyscallExit { tid })?,
            Rec::GoExit { goid } => {
                self.procs[pi].known.remove(&goid);
                push(&mut self.w, goid, EventData::GoExit)?;
                self.spans
                    .goroutine_exit(&mut self.w, target, r.ts_ns, goid)?;
            }
            Rec::GcStart { goid } => {
                self.gc_cycle += 1;
                let cycle = self.gc_cycle;
                push(&mut self.w, goid, EventData::GcStart { cycle })?
            }
            Rec::GcEnd { goid } => {
                let cycle = self.gc_cycle;
                push(&mut self.w, goid, EventData::GcEnd { cycle })?
            }
            Rec::StwStart { goid, reason } => {
                push(&mut self.w, goid, EventData::StwStart { reason })?
            }
            Rec::StwEnd { goid } => push(&mut self.w, goid, EventData::StwEnd)?,
            Rec::SchedSwitch {
                prev_tid,
                prev_tgid,
                next_tid,
                next_tgid,
                preempted,
                ..
            } => {
                if let Some(&p) = self.by_tgid.get(&prev_tgid) {
                    let t = self.procs[p].id;
                    self.w.push(
                        t,
                        Event {
                            ts: r.ts_ns,
                            goid: 0,
                            data: EventData::ThreadOff {
                                tid: prev_tid,
                                runnable: preempted,
                            },
                        },
                    )?;
                }
                if let Some(&p) = self.by_tgid.get(&next_tgid) {
                    let t = self.procs[p].id;
                    self.w.push(
                        t,
                        Event {
                            ts: r.ts_ns,
                            goid: 0,
                            data: EventData::ThreadOn {
                                tid: next_tid,
                                cpu: r.cpu as u32,
                            },
                        },
                    )?;
                }
            }
            Rec::ProcessExit { exit_code } => {
                // Kernel wait status: exit code in bits 8..16, terminating signal in 0..7.
                let code = if exit_code & 0x7f != 0 {
                    128 + (exit_code & 0x7f)
                } else {
                    (exit_code >> 8) & 0xff
                };
                self.procs[pi].exited = true;
                push(&mut self.w, 0, EventData::ProcExit { code })?
            }
            Rec::SpanStart(ref rec) => self.spans.start(&mut self.w, target, r.ts_ns, rec)?,
            Rec::SpanEnd {
                goid,
                span_kind,
                status,
                error,
            } => self
                .spans
                .end(&mut self.w, target, r.ts_ns, goid, span_kind, status, error)?,
            Rec::HttpStatus { goid, code } => self.spans.http_status(target, goid, code),
            Rec::CpuSample { goid, stack_id } => {
                let stack = match stack_id {
                    Some(id) => self.stack(pi, g, id)?,
                    None => 0,
                };
                push(&mut self.w, goid, EventData::CpuSample { tid, stack })?
            }
            Rec::Unknown { .. } => {}
        }
        Ok(())
    }

    fn stack(&mut self, pi: usize, g: &mut Group, bpf_id: u32) -> Result<u32> {
        if let Some(&id) = self.procs[pi].stacks.get(&bpf_id) {
            return Ok(id);
        }
        let pcs: Vec<u64> = g
            .probes
            .stack(bpf_id)?
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let target = self.procs[pi].id;
        let id = self.w.intern_stack(target, &pcs);
        for (i, &pc) in pcs.iter().enumerate() {
            // The first frame is where the probe fired; the rest are return addresses.
            self.want_pc(pi, pc, if i > 0 { Role::Return } else { Role::Exact });
        }
        self.procs[pi].stacks.insert(bpf_id, id);
        Ok(id)
    }

    /// Reads (parent goid, gopc, startpc) of goroutine `goid` from its `runtime.g` at `gptr`
    /// in the target's memory; `None` if it cannot be read or the g was reused meanwhile.
    fn read_g(&mut self, pi: usize, g: &Group, gptr: u64, goid: u64) -> Option<(u64, u64, u64)> {
        use std::os::unix::fs::FileExt;
        let o = &g.prepared.offsets.g;
        let p = &mut self.procs[pi];
        if p.mem.is_none() {
            p.mem = std::fs::File::open(format!("/proc/{}/mem", p.pid)).ok();
        }
        let mem = p.mem.as_ref()?;
        let word = |off: u64| {
            let mut b = [0u8; 8];
            mem.read_exact_at(&mut b, gptr.checked_add(off)?).ok()?;
            Some(u64::from_le_bytes(b))
        };
        if gptr == 0 || word(o.goid)? != goid {
            return None;
        }
        let parent = o.parent_goid.and_then(word).unwrap_or(0);
        Some((parent, word(o.gopc)?, word(o.startpc)?))
    }

    fn want_pc(&mut self, pi: usize, pc: u64, role: Role) {
        let target = self.procs[pi].id;
        if pc != 0 && !self.pcs_done.contains(&(target, pc)) {
            self.pcs_pending.push((pi, pc, role));
        }
    }

    /// Symbolizes pending PCs (of processes whose load bias is known) and writes everything
    /// buffered.
    fn flush(&mut self, groups: &[Group]) -> Result<()> {
        let pending = std::mem::take(&mut self.pcs_pending);
        let mut by_group: BTreeMap<usize, Vec<(usize, u64, Role)>> = BTreeMap::new();
        for item in pending {
            by_group
                .entry(self.procs[item.0].group)
                .or_default()
                .push(item);
        }
        for (gi, items) in by_group {
            let binary = &groups[gi].prepared.binary;
            let mut sym = binary.symbolizer();
            for (pi, pc, role) in items {
                let target = self.procs[pi].id;
                if self.pcs_done.contains(&(target, pc)) {
                    continue;
                }
                let Some(bias) = self.procs[pi].bias else {
                    // Not mapped yet (program still starting): try again next flush.
                    self.pcs_pending.push((pi, pc, role));
                    continue;
                };
                self.pcs_done.insert((target, pc));
                let link_pc = pc
                    .wrapping_sub(bias)
                    .wrapping_sub(u64::from(role == Role::Return));
                let mut frames = Vec::new();
                if role == Role::Start {
                    if let Some(callee) = binary.go_wrapper_callee(link_pc) {
                        frames.extend(sym.symbolize(callee.entry).unwrap_or_default().to_vec());
                    }
                }
                frames.extend(sym.symbolize(link_pc).unwrap_or_default().to_vec());
                let syms: Vec<Symbol> = frames
                    .iter()
                    .map(|f| Symbol {
                        pc,
                        entry: f.entry.wrapping_add(bias),
                        function: self.w.intern(&f.function),
                        file: self.w.intern(&f.file),
                        line: f.line,
                    })
                    .collect();
                self.w.add_symbols(target, &syms);
            }
        }
        self.w.flush()?;
        Ok(())
    }
}
