//! Which BPF objects a capture loads and where they are attached: one object per distinct
//! target binary (its probe plan and ring buffer), serving every captured process that runs
//! that binary, attached to the pids given and to the program gcap starts.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::launch::{wait_for_exec, Launched};
use super::process::{load_bias, Proc};
use super::Options;
use crate::probes::{GroupSet, Probes};
use crate::target::{self, Prepared, TargetError};

/// One loaded BPF object (per distinct target binary) and the pids it serves.
pub(crate) struct Group {
    pub(crate) prepared: Prepared,
    pub(crate) probes: Probes,
    /// (device, inode) of the binary, to notice a target exec'ing something else.
    pub(crate) file_id: (u64, u64),
}

/// Every target of a capture, inspected and with its probes loaded, before anything is
/// attached (a bad pid leaves nothing behind).
pub(crate) struct Targets {
    pub(crate) groups: Vec<Group>,
    pub(crate) procs: Vec<Proc>,
    /// How each process's executable is shown (same order as `procs`).
    pub(crate) exes: Vec<String>,
    /// The program to start (exec mode): its group and path.
    program: Option<(usize, PathBuf)>,
    group_of: HashMap<(u64, u64), usize>,
}

impl Targets {
    /// Inspects the pids and the program of `opts` and loads one BPF object per binary.
    pub(crate) fn plan(opts: &Options, warnings: &mut Vec<String>) -> Result<Targets> {
        let mut t = Targets {
            groups: Vec::new(),
            procs: Vec::new(),
            exes: Vec::new(),
            program: None,
            group_of: HashMap::new(),
        };
        for &pid in &opts.pids {
            let exe = target::pid_exe(pid)?;
            let shown = std::fs::read_link(&exe)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| exe.display().to_string());
            let g = t
                .plan_group(opts, exe, shown.clone(), warnings)
                .map_err(|e| match e.downcast::<TargetError>() {
                    Ok(TargetError::Inspect(source)) => TargetError::Pid {
                        pid,
                        exe: shown.clone(),
                        source,
                    }
                    .into(),
                    Ok(other) => other.into(),
                    Err(e) => e,
                })?;
            t.procs.push(Proc::new(t.procs.len(), pid, g, None));
            t.exes.push(shown);
        }
        if let Some(prog) = opts.command.first() {
            let path = target::resolve_program(prog)?;
            let g = t.plan_group(opts, path.clone(), path.display().to_string(), warnings)?;
            t.program = Some((g, path));
        }
        if t.procs.is_empty() && t.program.is_none() {
            bail!("nothing to capture: give -p PID or -- PROGRAM [ARGS]");
        }
        Ok(t)
    }

    /// The group of binary `exe` (`shown` in messages): an existing one for the same file,
    /// else a new one with its probes planned and loaded.
    fn plan_group(
        &mut self,
        opts: &Options,
        exe: PathBuf,
        shown: String,
        warnings: &mut Vec<String>,
    ) -> Result<usize> {
        let meta = std::fs::metadata(&exe).with_context(|| format!("cannot read {shown}"))?;
        if let Some(&g) = self.group_of.get(&(meta.dev(), meta.ino())) {
            return Ok(g);
        }
        let prepared = target::prepare_with(&exe, opts.level, opts.ringbuf_bytes, &opts.spans)?;
        warnings.extend(prepared.warnings.iter().cloned());
        let probes = Probes::load(prepared.plan.clone())
            .with_context(|| format!("loading the eBPF probes for {shown}"))?;
        self.groups.push(Group {
            prepared,
            probes,
            file_id: (meta.dev(), meta.ino()),
        });
        self.group_of
            .insert((meta.dev(), meta.ino()), self.groups.len() - 1);
        Ok(self.groups.len() - 1)
    }

    /// Attaches to the running processes, then starts the program (`command`: program and
    /// arguments, if any) with its probes attached before it runs its first instruction.
    pub(crate) fn attach(&mut self, command: &[String]) -> Result<Option<Launched>> {
        for p in &mut self.procs {
            let g = &mut self.groups[p.group];
            g.probes
                .attach(p.pid as i32)
                .with_context(|| format!("attaching to pid {}", p.pid))?;
            p.bias = load_bias(p.pid, &g.prepared.binary);
        }
        let Some((g, path)) = &self.program else {
            return Ok(None);
        };
        let group = &mut self.groups[*g];
        let launched = Launched::start(path, &command[1..], |pid| {
            group
                .probes
                .attach_before_exec(pid as i32)
                .with_context(|| format!("attaching to {}", path.display()))
        })?;
        let pid = launched.pid();
        let bias = wait_for_exec(pid, path, &group.prepared.binary);
        self.procs.push(Proc::new(self.procs.len(), pid, *g, bias));
        self.exes.push(path.display().to_string());
        Ok(Some(launched))
    }

    /// The probe groups the targets' probes make up (those with something to attach).
    pub(crate) fn available_groups(&self) -> GroupSet {
        self.groups
            .iter()
            .flat_map(|g| g.prepared.plan.loaded_probes())
            .filter_map(GroupSet::of)
            .fold(GroupSet::NONE, GroupSet::union)
    }

    /// "pid 4242 (/usr/bin/server), ...": the captured processes, for the user.
    pub(crate) fn shown(&self) -> String {
        self.procs
            .iter()
            .zip(&self.exes)
            .map(|(p, e)| format!("pid {} ({e})", p.pid))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// One warning per probe a binary has no usable site for.
    pub(crate) fn missing_probe_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for g in &self.groups {
            for m in g.probes.missing() {
                warnings.push(format!(
                    "{} has no usable {} probe site: those events are not recorded",
                    g.prepared.plan.binary.display(),
                    m.symbol()
                ));
            }
        }
        warnings
    }
}

/// Detaches every probe of every group (each uprobe is unregistered in turn: slow).
pub(crate) fn detach_all(groups: &mut [Group]) {
    for g in groups {
        g.probes.detach_all();
    }
}
