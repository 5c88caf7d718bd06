//! Kernel side of gcap: loads the BPF programs of `bpf/gcap.bpf.c`, configures them for one
//! target binary, attaches them to processes and drains their ring buffer.
//!
//! Usage: [`Probes::load`] with a [`ProbePlan`], [`Probes::attach`] each pid that runs the
//! plan's binary, then call [`Probes::drain`] every [`DRAIN_INTERVAL`] (records are submitted
//! without wakeups, so nothing arrives by itself) until the targets exit; read
//! [`Probes::hit_counts`] / [`Probes::lost_per_cpu`] for the summary.
//!
//! What the records do and do not cover (for the analyzer):
//! - Unblocks come from `runtime.ready` (with the waker goroutine, read from `g0.m.curg`
//!   when `ready` runs on the system stack) and `runtime.injectglist` (netpoll; waker 0).
//!   `findRunnable` runs the first goroutine of each netpoll batch directly, without either:
//!   for that one the next `GoStart` is the unblock (it runs at once, so runnable time ~0).
//! - Waker 0 with [`records::flags::WAKER_UNKNOWN`]: woken from the scheduler / timers /
//!   sysmon with no user goroutine on the M (e.g. every `time.Sleep` wakeup).
//! - Events are exactly-once per call: body probes sit after the stack check (or on its JBE
//!   with the taken-branch hit dropped), so a morestack restart is not counted twice.
//! - Ring order is per-CPU interleaved: sort by `ts_ns` (`CLOCK_MONOTONIC`) before use.

mod calibration;
mod error;
mod group;
mod links;
mod perf;
mod plan;
pub mod records;
mod skeleton;
mod stats;

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

pub use calibration::{calibrate, TrapCost};
pub use error::{ProbeError, Result};
pub use group::GroupSet;
pub use links::LinkKind;
pub(crate) use plan::{HttpProbeOffsets, RuntimeOffsets, Site, SpanFamily};
pub use plan::{Level, ProbeId, ProbePlan, ProbeSite};
pub use records::{Record, RecordKind};
pub use stats::{ProgramRuns, RunStats};

use skeleton::types::gcap_lost;
use skeleton::{GcapSkel, GcapSkelBuilder};

/// How often the owner should call [`Probes::drain`]: records are submitted with
/// `BPF_RB_NO_WAKEUP`, so the ring must be polled on a timer.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(50);

/// Loaded BPF programs for one target binary, and their attachments.
pub struct Probes {
    // Field order is drop order: links and the ring go before the skeleton they refer to.
    /// Uprobe links by process.
    links: Vec<(i32, ProbeId, Link)>,
    /// Links of detached groups still being released (waited for on drop).
    releases: Vec<links::Release>,
    /// Links that serve every process (tracepoints and CPU-sample perf events, filtered in
    /// BPF by the `targets` map).
    object_links: Vec<(ProbeId, Link)>,
    ring: RingBuffer<'static>,
    /// Records copied out by the ring callback, length-prefixed, decoded by `drain`.
    staged: Arc<Mutex<Vec<u8>>>,
    skel: GcapSkel<'static>,
    plan: ProbePlan,
    stack_cache: HashMap<u32, Vec<u64>>,
    /// Processes attached (their uprobes are those of `groups`).
    attached: Vec<i32>,
    /// Probe groups attached now.
    groups: GroupSet,
    link_kind: LinkKind,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes")
            .field("binary", &self.plan.binary)
            .field("level", &self.plan.level)
            .field("attached", &self.pids())
            .finish()
    }
}

fn map_err(map: &'static str) -> impl FnOnce(libbpf_rs::Error) -> ProbeError {
    move |source| ProbeError::Map { map, source }
}

impl Probes {
    /// Opens, configures and loads the BPF object for `plan` (verifier included) and attaches
    /// the kernel tracepoints. No uprobe is attached until [`Probes::attach`]. Uprobes are
    /// attached with the cheapest links the kernel has ([`LinkKind::detect`]).
    pub fn load(plan: ProbePlan) -> Result<Probes> {
        Probes::load_with(plan, LinkKind::detect())
    }

    /// [`Probes::load`], with uprobes attached by `link_kind` links.
    pub fn load_with(plan: ProbePlan, link_kind: LinkKind) -> Result<Probes> {
        plan.validate()?;
        // The skeleton borrows its OpenObject storage for as long as it lives; Probes owns
        // the skeleton, so the storage must outlive it: leak it (one small allocation per
        // load; the BPF object itself is closed when the skeleton drops).
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = GcapSkelBuilder::default()
            .open(storage)
            .map_err(ProbeError::from_load)?;

        // Frames per stored stack (block stacks and CPU samples share the map).
        let samples = plan.cpu_sample_hz > 0;
        let depth = if samples {
            plan.level.stack_depth().max(32)
        } else {
            plan.level.stack_depth().max(1)
        };
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or(ProbeError::Plan("BPF object has no .rodata".into()))?;
        let o = &plan.offsets;
        rodata.cfg.g_goid = o.g_goid;
        rodata.cfg.g_m = o.g_m;
        rodata.cfg.g_parent_goid = o.g_parent_goid.unwrap_or(0);
        rodata.cfg.g_gopc = o.g_gopc;
        rodata.cfg.g_startpc = o.g_startpc;
        rodata.cfg.g_schedlink = o.g_goid + 8;
        rodata.cfg.m_curg = o.m_curg;
        rodata.cfg.go_minor = plan.go_minor;
        rodata.cfg.block_stacks = u32::from(plan.block_stacks);
        rodata.cfg.stw_reason_in_al = u32::from(plan.go_minor >= 21);
        rodata.cfg.map_swiss = u32::from(plan.swiss_maps);
        rodata.cfg.m_procid = plan.m_procid;
        let h = &plan.http;
        rodata.cfg.req_method = h.req_method;
        rodata.cfg.req_url = h.req_url;
        rodata.cfg.req_header = h.req_header;
        rodata.cfg.req_content_length = h.req_content_length;
        rodata.cfg.url_host = h.url_host;
        rodata.cfg.url_path = h.url_path;
        rodata.cfg.url_raw_query = h.url_raw_query;
        rodata.cfg.resp_status_code = h.resp_status_code;
        rodata.cfg.keep_query = u32::from(plan.keep_query);
        rodata.cfg.stack_depth = depth;

        open.maps
            .events
            .set_max_entries(plan.ringbuf_size())
            .map_err(map_err("events"))?;
        open.maps
            .stacks
            .set_value_size(depth * 8)
            .map_err(map_err("stacks"))?;
        if !plan.block_stacks && !samples {
            // Keep the (unused) map tiny; it is preallocated.
            open.maps
                .stacks
                .set_max_entries(1)
                .map_err(map_err("stacks"))?;
        } else if plan.level == Level::Full {
            open.maps
                .stacks
                .set_max_entries(8192)
                .map_err(map_err("stacks"))?;
        }

        // Only programs the plan attaches get loaded (and verified).
        let wanted = plan.loaded_probes();
        for p in ProbeId::ALL {
            let mut prog = skeleton::open_program(open.open_object_mut(), p);
            prog.set_autoload(wanted.contains(&p));
            link_kind.prepare(&mut prog);
        }

        let skel = open.load().map_err(ProbeError::from_load)?;

        let staged = Arc::new(Mutex::new(Vec::with_capacity(64 << 10)));
        let sink = Arc::clone(&staged);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&skel.maps.events, move |data: &[u8]| {
                let mut buf = sink.lock().unwrap_or_else(|p| p.into_inner());
                buf.extend_from_slice(&(data.len() as u32).to_ne_bytes());
                buf.extend_from_slice(data);
                0
            })
            .map_err(map_err("events"))?;
        let ring = builder.build().map_err(map_err("events"))?;

        let mut probes = Probes {
            links: Vec::new(),
            releases: Vec::new(),
            object_links: Vec::new(),
            ring,
            staged,
            skel,
            plan,
            stack_cache: HashMap::new(),
            attached: Vec::new(),
            groups: GroupSet::NONE,
            link_kind,
        };
        // Probes outside any group (process exit) stay attached for the whole capture.
        probes.attach_object_probes(&|p| GroupSet::of(p).is_none())?;
        probes.set_groups(GroupSet::ALL)?;
        Ok(probes)
    }

    /// How this object's uprobes are attached.
    pub fn link_kind(&self) -> LinkKind {
        self.link_kind
    }

    /// The probe groups attached now.
    pub fn groups(&self) -> GroupSet {
        self.groups
    }

    /// Attaches the probes of the groups in `groups` that are not attached yet, to every
    /// attached process (and the tracepoints and perf events of those groups), and
    /// detaches those of the groups not in `groups`. Records of a detached group may still
    /// arrive until the next drain. A failed attach leaves what did attach in place
    /// ([`Probes::groups`] says which groups are complete).
    pub fn set_groups(&mut self, groups: GroupSet) -> Result<()> {
        let gone = self.groups.minus(groups);
        if !gone.is_empty() {
            let drop = in_groups(gone);
            let (closing, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.links)
                .into_iter()
                .partition(|(_, p, _)| drop(*p));
            self.links = kept;
            let (closing_objects, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.object_links)
                .into_iter()
                .partition(|(p, _)| drop(*p));
            self.object_links = kept;
            let closing: Vec<Link> = closing
                .into_iter()
                .map(|(_, _, l)| l)
                .chain(closing_objects.into_iter().map(|(_, l)| l))
                .collect();
            if !closing.is_empty() {
                self.releases.push(links::Release::start(closing));
            }
            self.groups = self.groups.minus(gone);
        }
        let added = groups.minus(self.groups);
        if added.is_empty() {
            return Ok(());
        }
        let new = in_groups(added);
        let attached = self.attach_object_probes(&new).and_then(|_| {
            self.attached.clone().into_iter().try_for_each(|pid| {
                match self.attach_uprobes_of(pid, &new) {
                    // A process that has exited has nothing to attach to: it is done.
                    Err(_) if !std::path::Path::new(&format!("/proc/{pid}")).exists() => {
                        self.detach(pid)
                    }
                    r => r,
                }
            })
        });
        if let Err(e) = attached {
            // All or nothing per group: `groups` stays the truth.
            self.links.retain(|(_, p, _)| !new(*p));
            self.object_links.retain(|(p, _)| !new(*p));
            return Err(e);
        }
        self.groups = self.groups.union(added);
        Ok(())
    }

    /// Attaches the tracepoints and CPU-sample perf events of the probes `new` selects.
    fn attach_object_probes(&mut self, new: &dyn Fn(ProbeId) -> bool) -> Result<()> {
        let wanted = self.plan.loaded_probes();
        for p in wanted
            .iter()
            .filter(|p| p.site() == Site::Tracepoint && new(**p))
        {
            let link = skeleton::program(self.skel.object(), *p)
                .attach()
                .map_err(|source| ProbeError::Tracepoint { probe: *p, source })?;
            self.object_links.push((*p, link));
        }
        if wanted.contains(&ProbeId::CpuSample) && new(ProbeId::CpuSample) {
            let prog = skeleton::program(self.skel.object(), ProbeId::CpuSample);
            for cpu in perf::online_cpus() {
                let pfd = perf::cpu_clock(cpu, self.plan.cpu_sample_hz).map_err(|source| {
                    ProbeError::PerfEvent {
                        cpu,
                        source: source.into(),
                    }
                })?;
                match prog.attach_perf_event(pfd) {
                    // The link owns the perf event fd from here on (closed on detach).
                    Ok(link) => self.object_links.push((ProbeId::CpuSample, link)),
                    Err(source) => {
                        // SAFETY: pfd is our own perf event fd, not owned by anything else.
                        unsafe { libc::close(pfd) };
                        return Err(ProbeError::PerfEvent { cpu, source });
                    }
                }
            }
        }
        Ok(())
    }

    /// Uprobes of the level that the plan has no site for (so are not recorded).
    pub(crate) fn missing(&self) -> Vec<ProbeId> {
        self.plan.missing()
    }

    /// Attaches every uprobe of the plan to `pid` and adds it to the tracepoint filter.
    /// `pid` must be running the plan's binary (same file: device and inode).
    pub fn attach(&mut self, pid: i32) -> Result<()> {
        self.check_binary(pid)?;
        self.attach_uprobes(pid)
    }

    /// Attaches to `pid` before it has exec'd the plan's binary (gcap starting a program:
    /// the child waits in a shell until the probes are in place, then execs). Uprobes are
    /// keyed by file and filtered by pid, so they fire once the exec happens.
    pub(crate) fn attach_before_exec(&mut self, pid: i32) -> Result<()> {
        self.attach_uprobes(pid)
    }

    fn check_binary(&self, pid: i32) -> Result<()> {
        let exe = format!("/proc/{pid}/exe");
        let target =
            std::fs::metadata(&exe).map_err(|source| ProbeError::Process { pid, source })?;
        let ours = std::fs::metadata(&self.plan.binary).map_err(|source| ProbeError::Binary {
            path: self.plan.binary.clone(),
            source,
        })?;
        if (target.dev(), target.ino()) != (ours.dev(), ours.ino()) {
            return Err(ProbeError::WrongBinary {
                pid,
                binary: self.plan.binary.clone(),
            });
        }
        Ok(())
    }

    fn attach_uprobes(&mut self, pid: i32) -> Result<()> {
        if self.attached.contains(&pid) {
            return Ok(());
        }
        let groups = self.groups;
        if let Err(e) = self.attach_uprobes_of(pid, &|p| groups.attaches(p)) {
            self.links.retain(|(p, _, _)| *p != pid);
            return Err(e);
        }
        self.skel
            .maps
            .targets
            .update(&(pid as u32).to_ne_bytes(), &[1], MapFlags::ANY)
            .map_err(map_err("targets"))?;
        self.attached.push(pid);
        Ok(())
    }

    /// Attaches the uprobes of the probes `new` selects to `pid`: one link per program (or
    /// per site, see [`LinkKind`]).
    fn attach_uprobes_of(&mut self, pid: i32, new: &dyn Fn(ProbeId) -> bool) -> Result<()> {
        for probe in self.plan.probes() {
            if !new(probe) || matches!(probe.site(), Site::Tracepoint | Site::PerfEvent) {
                continue;
            }
            // The cookie tells the program how its site reads (see ProbeSite::cookie).
            let sites: Vec<(u64, u64)> = self
                .plan
                .sites
                .iter()
                .filter(|s| s.probe == probe)
                .flat_map(|s| s.file_offsets.iter().map(|&off| (off, s.cookie())))
                .collect();
            let prog = skeleton::program(self.skel.object(), probe);
            let links = self
                .link_kind
                .attach(&prog, pid, &self.plan.binary, &sites)
                .map_err(|(offset, source)| ProbeError::Attach {
                    probe,
                    binary: self.plan.binary.clone(),
                    offset,
                    pid,
                    source,
                })?;
            self.links
                .extend(links.into_iter().map(|link| (pid, probe, link)));
        }
        Ok(())
    }

    /// Removes `pid`'s uprobes and its tracepoint filter entry (events already in the ring
    /// are still delivered by the next drain).
    pub(crate) fn detach(&mut self, pid: i32) -> Result<()> {
        self.links.retain(|(p, _, _)| *p != pid);
        self.attached.retain(|p| *p != pid);
        match self.skel.maps.targets.delete(&(pid as u32).to_ne_bytes()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ProbeError::Map {
                map: "targets",
                source,
            }),
        }
    }

    /// Pids currently attached.
    pub(crate) fn pids(&self) -> Vec<i32> {
        self.attached.clone()
    }

    /// The kernel's run counts of each loaded program (see [`RunStats`]: zero unless
    /// statistics are on), and whether its sites are single-stepped.
    pub fn program_runs(&self) -> Vec<(ProbeId, ProgramRuns, bool)> {
        use std::os::fd::AsFd;
        self.plan
            .loaded_probes()
            .into_iter()
            .map(|p| {
                let prog = skeleton::program(self.skel.object(), p);
                let stepped = self
                    .plan
                    .sites
                    .iter()
                    .any(|s| s.probe == p && s.stepped && !s.file_offsets.is_empty());
                (p, stats::program_runs(prog.as_fd()), stepped)
            })
            .collect()
    }

    /// Decodes up to `max` records now in the ring buffer into `sink`, in ring order (per-CPU
    /// producers interleave, so timestamps are only nearly sorted). Returns how many. The
    /// bound keeps gcap's memory independent of how fast the targets produce: a caller that
    /// wants the ring empty calls again while it gets `max`.
    pub fn drain(&mut self, max: usize, mut sink: impl FnMut(Record)) -> Result<usize> {
        let got = self.ring.consume_raw_n(max);
        if got < 0 {
            return Err(map_err("events")(libbpf_rs::Error::from_raw_os_error(-got)));
        }
        let buf = std::mem::take(&mut *self.staged.lock().unwrap_or_else(|p| p.into_inner()));
        let mut n = 0;
        let mut rest = &buf[..];
        while rest.len() >= 4 {
            let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let (rec, tail) = rest[4..].split_at(len.min(rest.len() - 4));
            if let Some(record) = Record::decode(rec) {
                sink(record);
                n += 1;
            }
            rest = tail;
        }
        // Hand the allocation back to the callback for the next round.
        let mut staged = self.staged.lock().unwrap_or_else(|p| p.into_inner());
        if staged.is_empty() {
            let mut buf = buf;
            buf.clear();
            *staged = buf;
        }
        Ok(n)
    }

    /// Hits per probe, summed over CPUs (only probes the plan attaches).
    pub fn hit_counts(&self) -> Result<Vec<(ProbeId, u64)>> {
        self.plan
            .probes()
            .map(|p| {
                Ok((
                    p,
                    self.percpu_sum(&self.skel.maps.hits, p as u32, "hits")?
                        .iter()
                        .sum(),
                ))
            })
            .collect()
    }

    /// Events dropped because the ring buffer was full, per CPU.
    pub fn lost_per_cpu(&self) -> Result<Vec<u64>> {
        self.percpu_sum(&self.skel.maps.lost, gcap_lost::GCAP_LOST_RINGBUF.0, "lost")
    }

    /// Unblock events lost because an injectglist list was longer than the BPF walk bound (512).
    pub fn unblocks_lost(&self) -> Result<u64> {
        Ok(self
            .percpu_sum(&self.skel.maps.lost, gcap_lost::GCAP_LOST_GLIST.0, "lost")?
            .iter()
            .sum())
    }

    /// Block events whose stack could not be stored (hash-bucket collision or full map):
    /// the event is kept without a stack.
    pub fn stacks_lost(&self) -> Result<u64> {
        Ok(self
            .percpu_sum(&self.skel.maps.lost, gcap_lost::GCAP_LOST_STACK.0, "lost")?
            .iter()
            .sum())
    }

    fn percpu_sum(
        &self,
        map: &libbpf_rs::MapMut<'_>,
        key: u32,
        name: &'static str,
    ) -> Result<Vec<u64>> {
        let vals = map
            .lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err(name))?
            .unwrap_or_default();
        Ok(vals
            .iter()
            .map(|v| {
                v.get(..8)
                    .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
            })
            .collect())
    }

    /// The user stack (return addresses, innermost first) a block event refers to.
    /// Cached: stack ids never change meaning (the BPF side never replaces a stored stack).
    pub fn stack(&mut self, stack_id: u32) -> Result<Option<&[u64]>> {
        if !self.stack_cache.contains_key(&stack_id) {
            let Some(raw) = self
                .skel
                .maps
                .stacks
                .lookup(&stack_id.to_ne_bytes(), MapFlags::ANY)
                .map_err(map_err("stacks"))?
            else {
                return Ok(None);
            };
            let pcs: Vec<u64> = raw
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
                .take_while(|&pc| pc != 0)
                .collect();
            self.stack_cache.insert(stack_id, pcs);
        }
        Ok(self.stack_cache.get(&stack_id).map(|v| &v[..]))
    }

    /// The releases of detached groups that have ended since the last call: (start, end),
    /// monotonic ns.
    pub fn released(&mut self) -> Vec<(u64, u64)> {
        let (done, going): (Vec<_>, Vec<_>) = std::mem::take(&mut self.releases)
            .into_iter()
            .partition(|r| r.finished());
        self.releases = going;
        done.into_iter().map(links::Release::wait).collect()
    }

    /// Detaches everything and waits until every link is gone (also done on drop).
    pub(crate) fn detach_all(&mut self) {
        for pid in self.pids() {
            let _ = self.detach(pid);
        }
        self.object_links.clear();
        self.groups = GroupSet::NONE;
        for r in self.releases.drain(..) {
            r.wait();
        }
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        // No probe of this object may outlive it.
        for r in self.releases.drain(..) {
            r.wait();
        }
    }
}

/// Selects the probes of the groups in `set` (never those outside every group).
fn in_groups(set: GroupSet) -> impl Fn(ProbeId) -> bool {
    move |p| GroupSet::of(p).is_some_and(|g| set.contains(g))
}

#[cfg(test)]
mod tests {
    /// The owner may drain from another thread.
    fn assert_send<T: Send>() {}
    #[test]
    fn probes_is_send() {
        assert_send::<super::Probes>();
    }
}
