//! What one uprobe hit costs the thread that hits it, measured on this machine at the start
//! of every capture (the cost is measured with or without a budget): gcap times calls of a
//! tiny function of its own with and without a do-nothing probe (bpf/calibrate.bpf.c), once
//! on an instruction the kernel emulates (the `PUSH RBP` gcap's Go probes sit on, and their
//! JBE and CALL sites) and once on one it single-steps (as at a `RET`). The program's own
//! run time, from the kernel's BPF statistics, is subtracted: the real programs' run time is
//! measured the same way.

use std::mem::MaybeUninit;
use std::path::PathBuf;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::OpenObject;

use super::links::LinkKind;
use super::stats::{program_runs, ProgramRuns};
use super::{ProbeError, Result};
use crate::session::host::thread_cpu_ns;

use super::skeleton::CalibrateSkelBuilder;

// The calibration target: a frame set up and torn down, as a Go function's prologue does.
// Its first instruction is emulated by the kernel's uprobe code (PUSH), its second is
// single-stepped (MOV).
std::arch::global_asm!(
    ".text",
    ".globl gcap_calibration_site",
    ".type gcap_calibration_site,@function",
    ".p2align 4",
    "gcap_calibration_site:",
    "push rbp",
    "mov rbp, rsp",
    "pop rbp",
    "ret",
    ".size gcap_calibration_site, .-gcap_calibration_site",
);

extern "C" {
    fn gcap_calibration_site();
}

/// Offset of the single-stepped `MOV RBP, RSP` in the calibration site.
const STEPPED_OFFSET: u64 = 1;

/// Calls per timing of an emulated and of a single-stepped site (~15 and ~25 ms).
const EMULATED_CALLS: u32 = 20_000;
const STEPPED_CALLS: u32 = 2_000;
/// Timings per site; the lowest counts (the others met interference).
const ROUNDS: usize = 3;

/// What one uprobe hit costs the thread that hits it, beyond the program's own run time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrapCost {
    /// On an instruction the kernel emulates (PUSH, Jcc, CALL), ns.
    pub emulated_ns: f64,
    /// On an instruction it single-steps out of line (RET, MOV, ...), ns.
    pub stepped_ns: f64,
}

impl TrapCost {
    /// The cost of a hit on a site of that kind.
    pub fn per_hit(&self, stepped: bool) -> f64 {
        if stepped {
            self.stepped_ns
        } else {
            self.emulated_ns
        }
    }
}

/// Measures [`TrapCost`] with uprobes attached as `kind` says. BPF run-time statistics
/// must be on (see [`super::RunStats`]). Takes about 0.1 s.
pub fn calibrate(kind: LinkKind) -> Result<TrapCost> {
    let mut storage = MaybeUninit::<OpenObject>::uninit();
    let mut open = CalibrateSkelBuilder::default()
        .open(&mut storage)
        .map_err(ProbeError::from_load)?;
    kind.prepare(&mut open.progs.calibrate);
    let skel = open.load().map_err(ProbeError::from_load)?;
    let prog = &skel.progs.calibrate;

    let (binary, entry) = own_site()?;
    let pid = std::process::id() as i32;
    let baseline = |calls| {
        (0..ROUNDS)
            .map(|_| time_calls(calls))
            .fold(f64::MAX, f64::min)
    };
    let trap = |offset: u64, calls: u32| -> Result<f64> {
        let links = kind
            .attach(prog, pid, &binary, &[(offset, 0)])
            .map_err(|(_, source)| ProbeError::Calibration(source))?;
        let mut best = f64::MAX;
        for _ in 0..ROUNDS {
            let before = runs(prog);
            let per_call = time_calls(calls);
            let after = runs(prog);
            let program_ns = if after.runs > before.runs {
                (after.run_ns - before.run_ns) as f64 / (after.runs - before.runs) as f64
            } else {
                0.0
            };
            best = best.min(per_call - program_ns);
        }
        drop(links);
        Ok(best)
    };
    let emulated = trap(entry, EMULATED_CALLS)? - baseline(EMULATED_CALLS);
    let stepped = trap(entry + STEPPED_OFFSET, STEPPED_CALLS)? - baseline(STEPPED_CALLS);
    Ok(TrapCost {
        emulated_ns: emulated.max(0.0),
        stepped_ns: stepped.max(emulated).max(0.0),
    })
}

fn runs(prog: &libbpf_rs::ProgramMut<'_>) -> ProgramRuns {
    use std::os::fd::AsFd;
    program_runs(prog.as_fd())
}

/// CPU time of this thread per call of the calibration site, over `calls` calls, in ns
/// (the trap's kernel time is charged to the thread, time it waits for a CPU is not).
fn time_calls(calls: u32) -> f64 {
    let start = thread_cpu_ns();
    for _ in 0..calls {
        // SAFETY: the site saves and restores RBP and returns; it touches nothing else.
        unsafe { gcap_calibration_site() };
    }
    (thread_cpu_ns() - start) as f64 / f64::from(calls)
}

/// gcap's executable and the file offset of the calibration site in it (found through
/// /proc/self/maps, so a PIE load address needs no symbol lookup).
fn own_site() -> Result<(PathBuf, u64)> {
    let addr = gcap_calibration_site as *const () as u64;
    let io = |source| ProbeError::Process {
        pid: std::process::id() as i32,
        source,
    };
    let exe = std::fs::read_link("/proc/self/exe").map_err(io)?;
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(io)?;
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(offset)) = (f.first(), f.get(2)) else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let parse = |s: &str| u64::from_str_radix(s, 16).unwrap_or(0);
        let (start, end, offset) = (parse(start), parse(end), parse(offset));
        if (start..end).contains(&addr) {
            return Ok((exe, addr - start + offset));
        }
    }
    Err(ProbeError::Plan(
        "the calibration site is not in a mapping of gcap's executable".into(),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_site_is_in_our_executable() {
        let (exe, off) = super::own_site().unwrap();
        assert!(exe.exists());
        assert!(off > 0);
        // The bytes there are the site's: PUSH RBP; MOV RBP, RSP.
        let bytes = std::fs::read(&exe).unwrap();
        assert_eq!(
            &bytes[off as usize..off as usize + 4],
            &[0x55, 0x48, 0x89, 0xe5]
        );
    }

    /// Needs root (loads a BPF program), as every capture test.
    #[test]
    fn hits_cost_what_the_kernel_charges() {
        let _stats = crate::probes::RunStats::enable().unwrap();
        for kind in [super::LinkKind::Multi, super::LinkKind::PerSite] {
            let c = super::calibrate(kind).unwrap();
            eprintln!("{kind:?}: {c:?}");
            // An emulated hit costs at least a trap (~0.3 us on bare metal), a stepped one
            // more; both well under a millisecond.
            assert!(c.emulated_ns > 100.0 && c.emulated_ns < 100_000.0, "{c:?}");
            assert!(c.stepped_ns >= c.emulated_ns && c.stepped_ns < 1e6, "{c:?}");
        }
    }
}
