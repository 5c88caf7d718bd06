//! The machine gcap runs on: whether it may load BPF programs, the clock BPF timestamps
//! use, and the host facts recorded in the capture's `Meta`.

use anyhow::{bail, Result};

/// Checks that gcap may load BPF programs, before touching anything.
pub(crate) fn check_privileges() -> Result<()> {
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

/// CLOCK_MONOTONIC in nanoseconds: the clock of every record's timestamp.
pub(crate) fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// The calling thread's CPU time in nanoseconds (kernel time it was charged included, time
/// it waited for a CPU not).
pub(crate) fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Wall-clock time in nanoseconds since the Unix epoch.
pub(crate) fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

/// "Linux 6.8.0-...": the kernel's type and release.
pub(crate) fn kernel_release() -> String {
    let os = std::fs::read_to_string("/proc/sys/kernel/ostype").unwrap_or_default();
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{} {}", os.trim(), rel.trim())
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
