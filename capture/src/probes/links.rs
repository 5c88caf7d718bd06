//! How a program's uprobes are attached to one process: one `uprobe_multi` link for all of
//! a probe's sites where the kernel has them, else one perf-event uprobe per site.
//!
//! Why it matters: a budgeted capture attaches and detaches whole probe groups several times
//! a second. Unregistering perf-event uprobes one by one took 1.4-2.3 s per capture here;
//! a `uprobe_multi` link registers or unregisters every site of a program in one syscall.
//! The links are chosen when the object is loaded (a program is loaded for one kind of
//! link), by kernel release: `uprobe_multi` exists since Linux 6.6, but its pid filter only
//! matched the thread group from 6.12 on.

use std::path::Path;
use std::sync::{Arc, Barrier};

use libbpf_rs::{Link, OpenProgramMut, ProgramAttachType, ProgramMut, UprobeMultiOpts, UprobeOpts};

use crate::session::host::monotonic_ns;

/// The first kernel whose `uprobe_multi` links filter by process as gcap needs.
const MULTI_SINCE: (u32, u32) = (6, 12);

/// How uprobes are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// One `uprobe_multi` link per (program, binary, pid).
    Multi,
    /// One perf-event uprobe per site.
    PerSite,
}

impl LinkKind {
    /// The cheapest kind the running kernel supports.
    pub fn detect() -> LinkKind {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        LinkKind::for_release(&release)
    }

    fn for_release(release: &str) -> LinkKind {
        let mut nums = release
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let version = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
        if version >= MULTI_SINCE {
            LinkKind::Multi
        } else {
            LinkKind::PerSite
        }
    }

    /// Prepares an opened uprobe program for this kind of link (the kernel checks a
    /// `uprobe_multi` link's program was loaded for one). Other programs are left alone.
    pub(crate) fn prepare(self, prog: &mut OpenProgramMut<'_>) {
        let uprobe = prog.section().to_string_lossy().starts_with("uprobe");
        if self == LinkKind::Multi && uprobe {
            prog.set_attach_type(ProgramAttachType::TraceUprobeMulti);
        }
    }

    /// Attaches `prog` to `sites` ((file offset, attach cookie)) of `binary` in process
    /// `pid`. On failure, the offset that failed (the first one for a multi link).
    pub(crate) fn attach(
        self,
        prog: &ProgramMut<'_>,
        pid: i32,
        binary: &Path,
        sites: &[(u64, u64)],
    ) -> Result<Vec<Link>, (u64, libbpf_rs::Error)> {
        match self {
            LinkKind::Multi => {
                if sites.is_empty() {
                    return Ok(Vec::new());
                }
                let opts = UprobeMultiOpts {
                    offsets: sites.iter().map(|&(off, _)| off as usize).collect(),
                    cookies: sites.iter().map(|&(_, cookie)| cookie).collect(),
                    ..Default::default()
                };
                // An empty pattern: the sites are given as offsets.
                prog.attach_uprobe_multi_with_opts(pid, binary, "", opts)
                    .map(|link| vec![link])
                    .map_err(|e| (sites[0].0, e))
            }
            LinkKind::PerSite => sites
                .iter()
                .map(|&(off, cookie)| {
                    let opts = UprobeOpts {
                        cookie,
                        ..Default::default()
                    };
                    prog.attach_uprobe_with_opts(pid, binary, off as usize, opts)
                        .map_err(|e| (off, e))
                })
                .collect(),
        }
    }
}

/// Links being released in the background.
///
/// Each uprobe link's release unregisters its sites at once (from then on no hit runs its
/// program) and then waits for the kernel to be done with the programs: an RCU grace
/// period, ~20 ms here, ~60 ms under load. Closed one after the other the waits add up
/// (~220 ms for the lifecycle group); closed from one thread each they overlap. And nothing
/// needs to wait for them: a window ends when its detach starts, and records after that are
/// dropped. So a detach returns once every link's close has begun, and windows can be
/// toggled faster than a grace period.
pub(crate) struct Release {
    /// (start, end) of the release, monotonic ns.
    done: std::thread::JoinHandle<(u64, u64)>,
}

impl Release {
    /// Starts closing `links`, each from its own thread, and returns once every close has
    /// started (so a group attached again next cannot run its programs twice per hit).
    pub(crate) fn start(links: Vec<Link>) -> Release {
        let started = Arc::new(Barrier::new(links.len() + 1));
        let barrier = Arc::clone(&started);
        let from = monotonic_ns();
        let done = std::thread::spawn(move || {
            std::thread::scope(|s| {
                for link in links {
                    let barrier = Arc::clone(&barrier);
                    s.spawn(move || {
                        barrier.wait();
                        drop(link);
                    });
                }
            });
            (from, monotonic_ns())
        });
        started.wait();
        Release { done }
    }

    /// Whether every link is gone.
    pub(crate) fn finished(&self) -> bool {
        self.done.is_finished()
    }

    /// Waits until every link is gone: (start, end) of the release, monotonic ns.
    pub(crate) fn wait(self) -> (u64, u64) {
        self.done.join().unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_by_release() {
        assert_eq!(LinkKind::for_release("6.18.44-fc-v1147\n"), LinkKind::Multi);
        assert_eq!(LinkKind::for_release("6.12.0"), LinkKind::Multi);
        assert_eq!(LinkKind::for_release("6.11.9-amd64"), LinkKind::PerSite);
        assert_eq!(LinkKind::for_release("5.17.1"), LinkKind::PerSite);
        assert_eq!(LinkKind::for_release(""), LinkKind::PerSite);
    }
}
