//! Exec mode: starting the program to capture so that not one event of its life is missed,
//! and reaping it for its exit status.
//!
//! A shell holds the program until the probes are attached to its pid, then execs it (same
//! pid). The program's stdin/stdout/stderr are gcap's.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::process::load_bias;
use crate::inspect::GoBinary;

/// The program gcap started.
pub(crate) struct Launched {
    child: Child,
    exit_status: Option<ExitStatus>,
}

impl Launched {
    /// Starts `path args`, runs `attach(pid)` while the shell holds it, then lets it exec.
    pub(crate) fn start(
        path: &Path,
        args: &[String],
        attach: impl FnOnce(u32) -> Result<()>,
    ) -> Result<Launched> {
        let (child, release) = spawn_held(path, args)?;
        attach(child.id())?;
        drop(release); // closing the pipe lets the shell exec the program
        Ok(Launched {
            child,
            exit_status: None,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reaps the program if it has exited: true once it has.
    pub(crate) fn poll(&mut self) -> bool {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exit_status = Some(status);
            return true;
        }
        false
    }

    /// The kernel's exit record can beat the reaping: once the program is known to have
    /// exited, waits up to a second for it to be reaped so its exit status is reported (an
    /// exec'd one keeps running).
    pub(crate) fn reap_exited(&mut self, exited: bool) {
        if self.exit_status.is_some() || !exited {
            return;
        }
        let until = Instant::now() + Duration::from_secs(1);
        while self.exit_status.is_none() && Instant::now() < until {
            self.exit_status = self.child.try_wait().ok().flatten();
            if self.exit_status.is_none() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// The program's exit status, once reaped.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        self.exit_status
    }
}

/// Waits (briefly) until `pid` has exec'd `path`, and returns its load bias, which must be
/// read while the process lives: a short program may be gone by the first drain.
pub(crate) fn wait_for_exec(pid: u32, path: &Path, binary: &GoBinary) -> Option<u64> {
    let want = std::fs::metadata(path).ok()?.ino();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let now = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?.ino();
        if now == want {
            // Until then the pid runs the shell that holds it: nothing is known of it yet
            // (a loaded machine may take a while to exec).
            if let Some(b) = load_bias(pid, binary) {
                return Some(b);
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    None
}

/// Starts `path args` under `sh`, which waits until the returned pipe is closed, then execs
/// it (keeping the pid).
fn spawn_held(path: &Path, args: &[String]) -> Result<(Child, std::fs::File)> {
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
