//! Reads a target's memory through `/proc/PID/mem`: the `runtime.g` of a goroutine created
//! before the capture began, to learn where it came from when it is first seen running.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::inspect::offsets::GOffsets;

/// Where a goroutine came from, as its `runtime.g` records it.
pub(crate) struct Origin {
    pub(crate) parent: u64,
    /// `g.gopc`: the return address of the `go` statement.
    pub(crate) gopc: u64,
    /// `g.startpc`: the function the goroutine started.
    pub(crate) startpc: u64,
}

/// One process's memory, opened on first need.
pub(crate) struct Memory {
    pid: u32,
    file: Option<File>,
}

impl Memory {
    pub(crate) fn new(pid: u32) -> Memory {
        Memory { pid, file: None }
    }

    /// The origin of goroutine `goid` from its `runtime.g` at `gptr` (field offsets `o`);
    /// `None` if it cannot be read or the g was reused meanwhile.
    pub(crate) fn goroutine_origin(
        &mut self,
        o: &GOffsets,
        gptr: u64,
        goid: u64,
    ) -> Option<Origin> {
        if self.file.is_none() {
            self.file = File::open(format!("/proc/{}/mem", self.pid)).ok();
        }
        let mem = self.file.as_ref()?;
        let word = |off: u64| {
            let mut b = [0u8; 8];
            mem.read_exact_at(&mut b, gptr.checked_add(off)?).ok()?;
            Some(u64::from_le_bytes(b))
        };
        if gptr == 0 || word(o.goid)? != goid {
            return None;
        }
        let parent = o.parent_goid.and_then(word).unwrap_or(0);
        Some(Origin {
            parent,
            gopc: word(o.gopc)?,
            startpc: word(o.startpc)?,
        })
    }
}
