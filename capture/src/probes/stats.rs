//! What the kernel measures of BPF programs: how often each ran and for how long
//! (`bpf_prog_info.run_cnt` / `run_time_ns`). The kernel only keeps those counts while
//! someone holds statistics on ([`RunStats::enable`]); gcap holds them for the capture, and
//! they switch off by themselves when gcap exits, however it exits (unlike the
//! `kernel.bpf_stats_enabled` sysctl, which a killed gcap could leave on).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libbpf_rs::libbpf_sys;

/// BPF run-time statistics kept on while this lives.
#[derive(Debug)]
pub struct RunStats {
    _fd: OwnedFd,
}

impl RunStats {
    /// Asks the kernel to count every BPF program's runs and run time (`BPF_ENABLE_STATS`;
    /// needs CAP_SYS_ADMIN). Costs two clock reads per program run.
    pub fn enable() -> std::io::Result<RunStats> {
        // SAFETY: bpf_enable_stats only issues the BPF_ENABLE_STATS command; it returns a
        // new fd we own, or a negative errno.
        let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
        if fd < 0 {
            return Err(std::io::Error::from_raw_os_error(-fd));
        }
        // SAFETY: fd is a fresh descriptor returned to us above and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(RunStats { _fd: fd })
    }
}

/// Runs of one BPF program so far, and the time they took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgramRuns {
    pub runs: u64,
    pub run_ns: u64,
}

/// The kernel's counts for the program `prog` (zero when it cannot say).
pub(crate) fn program_runs(prog: BorrowedFd<'_>) -> ProgramRuns {
    // SAFETY: bpf_prog_info is plain data (integers and pointers the kernel only writes
    // through when their counts are non-zero; they stay zero here).
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: `info` is valid for `len` bytes, and the fd is a live BPF program.
    let rc = unsafe {
        libbpf_sys::bpf_prog_get_info_by_fd(prog.as_fd().as_raw_fd(), &mut info, &mut len)
    };
    if rc != 0 {
        return ProgramRuns::default();
    }
    ProgramRuns {
        runs: info.run_cnt,
        run_ns: info.run_time_ns,
    }
}
