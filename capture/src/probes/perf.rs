//! CPU sampling's kernel plumbing: the online CPUs, and a software cpu-clock perf event on
//! each, to which the `cpu_sample` program is attached.

/// CPUs that are online now (`/sys/devices/system/cpu/online`, e.g. "0-3,6").
pub(crate) fn online_cpus() -> Vec<i32> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut cpus = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
            cpus.extend(a..=b);
        }
    }
    if cpus.is_empty() {
        cpus.push(0);
    }
    cpus
}

/// Opens a software cpu-clock perf event sampling every task on `cpu` at `hz` per second
/// (the BPF program filters by target). Returns the fd.
pub(crate) fn cpu_clock(cpu: i32, hz: u32) -> std::io::Result<i32> {
    // struct perf_event_attr, PERF_ATTR_SIZE_VER5 (112 bytes): type u32 @0, size u32 @4,
    // config u64 @8, sample_freq u64 @16, sample_type u64 @24, read_format u64 @32, flag
    // bits u64 @40 (bit 10 = freq).
    const PERF_TYPE_SOFTWARE: u32 = 1;
    const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    let mut attr = [0u8; 112];
    attr[0..4].copy_from_slice(&PERF_TYPE_SOFTWARE.to_ne_bytes());
    attr[4..8].copy_from_slice(&112u32.to_ne_bytes());
    attr[8..16].copy_from_slice(&PERF_COUNT_SW_CPU_CLOCK.to_ne_bytes());
    attr[16..24].copy_from_slice(&u64::from(hz.max(1)).to_ne_bytes());
    attr[40..48].copy_from_slice(&(1u64 << 10).to_ne_bytes());
    // SAFETY: perf_event_open reads `attr` (a zero-initialised perf_event_attr of the size
    // it declares) and returns a new fd or -1; no memory is retained.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1 as libc::pid_t,
            cpu,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd as i32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpus_are_listed() {
        assert!(!super::online_cpus().is_empty());
    }
}
