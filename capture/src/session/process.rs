//! A target process while it is captured: its ids, where its executable is mapped (load
//! bias, needed to symbolize its PCs), and whether it is still there for our probes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::inspect::GoBinary;

/// Per-process state of the session.
pub(crate) struct Proc {
    /// Target id in the capture file.
    pub(crate) id: u32,
    pub(crate) pid: u32,
    /// Index of the BPF object (per distinct binary) that serves it.
    pub(crate) group: usize,
    /// Where its executable is mapped; None until it has been seen running the captured
    /// binary (a program gcap starts runs the shell that holds it first).
    pub(crate) bias: Option<u64>,
    pub(crate) exited: bool,
}

impl Proc {
    pub(crate) fn new(id: usize, pid: u32, group: usize, bias: Option<u64>) -> Proc {
        Proc {
            id: id as u32,
            pid,
            group,
            bias,
            exited: false,
        }
    }

    /// Notices an exit, reads the load bias once the executable is mapped, and ends the
    /// capture of a process that exec'd something other than `file_id` (device, inode).
    pub(crate) fn refresh(
        &mut self,
        binary: &GoBinary,
        file_id: (u64, u64),
        warnings: &mut Vec<String>,
    ) {
        if !self.exited && !Path::new(&format!("/proc/{}", self.pid)).exists() {
            self.exited = true;
        }
        if self.exited {
            return;
        }
        let now = std::fs::metadata(format!("/proc/{}/exe", self.pid))
            .map(|m| (m.dev(), m.ino()))
            .ok();
        if now == Some(file_id) {
            if self.bias.is_none() {
                self.bias = load_bias(self.pid, binary);
            }
        } else if self.bias.is_some() && now.is_some() {
            // A target that exec'd another program is gone for our probes.
            warnings.push(format!(
                "pid {} exec'd another program; its capture ends there",
                self.pid
            ));
            self.exited = true;
        }
    }
}

/// The target id a group's own records (lost counts, probe hits) are written under: that of
/// its first process.
pub(crate) fn first_target(procs: &[Proc], group: usize) -> u32 {
    procs.iter().find(|p| p.group == group).map_or(0, |p| p.id)
}

/// Load bias of a running PIE executable: where its first segment is mapped minus its link
/// address (0 for non-PIE). Found in /proc/PID/maps by the file's inode.
pub(crate) fn load_bias(pid: u32, binary: &GoBinary) -> Option<u64> {
    if !binary.is_pie() {
        return Some(0);
    }
    let ino = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?.ino();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let first_vaddr = binary
        .elf()
        .segments
        .iter()
        .map(|s| s.vaddr - s.offset)
        .min()
        .unwrap_or(0);
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let mut f = line.split_whitespace();
        let range = f.next()?;
        let _perms = f.next()?;
        let offset = u64::from_str_radix(f.next()?, 16).ok()?;
        let _dev = f.next()?;
        let inode: u64 = f.next()?.parse().ok()?;
        if inode == ino && offset == 0 {
            let start = u64::from_str_radix(range.split('-').next()?, 16).ok()?;
            return Some(start.wrapping_sub(first_vaddr));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::inspect::tests::{testbin, Flavor};

    /// A program gcap starts runs the shell that holds it until it execs: a process not yet
    /// seen running the captured binary has not "exec'd another program" (seen under load,
    /// where the exec came after the first refresh); one that was seen has.
    #[test]
    fn only_a_target_seen_running_the_binary_can_exec_another() {
        let bin = testbin("1.27.3", Flavor::Normal);
        let binary = GoBinary::open(&bin).unwrap();
        let m = std::fs::metadata(&bin).unwrap();
        // This test process plays the shell: its executable is not the Go binary.
        let pid = std::process::id();
        let mut warnings = Vec::new();

        let mut held = Proc::new(0, pid, 0, None);
        held.refresh(&binary, (m.dev(), m.ino()), &mut warnings);
        assert!(!held.exited && held.bias.is_none(), "{warnings:?}");
        assert!(warnings.is_empty());

        let mut running = Proc::new(0, pid, 0, Some(0));
        running.refresh(&binary, (m.dev(), m.ino()), &mut warnings);
        assert!(running.exited);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }
}
