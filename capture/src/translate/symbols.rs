//! The PCs events name (stack frames, creation sites, start functions) → the capture's
//! symbol table. PCs are queued as records are translated and symbolized at each flush, once
//! their process's load bias is known (while it is alive: a PIE's addresses mean nothing
//! without it), each PC once per target.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;

use gcap_format::{Symbol, Writer};

use crate::inspect::{Frame, GoBinary, Symbolizer};

/// What a PC is, which decides how it is symbolized.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Where a probe fired: the PC itself.
    Exact,
    /// A return address (stack frames, `g.gopc`): the call is the byte before it.
    Return,
    /// A goroutine's start function: named as Go's traceback names it (`go f(x)` wrappers
    /// seen through to `f`, inlined or called).
    Start,
}

/// Where the PCs of one process are symbolized.
pub(crate) struct Placement<'a> {
    /// Target id in the capture file.
    pub(crate) target: u32,
    /// Groups processes that share `binary` (one symbolizer cache per group).
    pub(crate) group: usize,
    pub(crate) binary: &'a GoBinary,
    /// Load bias; `None` while the executable is not mapped yet.
    pub(crate) bias: Option<u64>,
}

/// PCs waiting for symbolization, and those done.
#[derive(Default)]
pub(crate) struct PcQueue {
    /// (target, pc) already symbolized.
    done: HashSet<(u32, u64)>,
    /// (process index, pc, role) waiting.
    pending: Vec<(usize, u64, Role)>,
}

impl PcQueue {
    /// Queues `pc` of process `pi` (target id `target`) unless it is 0 or already done.
    pub(crate) fn want(&mut self, pi: usize, target: u32, pc: u64, role: Role) {
        if pc != 0 && !self.done.contains(&(target, pc)) {
            self.pending.push((pi, pc, role));
        }
    }

    /// Symbolizes the pending PCs of processes whose load bias is known into `w`'s symbol
    /// table; the others wait for the next call.
    pub(crate) fn symbolize<'a>(
        &mut self,
        w: &mut Writer<File>,
        place: impl Fn(usize) -> Placement<'a>,
    ) {
        let pending = std::mem::take(&mut self.pending);
        let mut by_group: BTreeMap<usize, Vec<(usize, u64, Role)>> = BTreeMap::new();
        for item in pending {
            by_group.entry(place(item.0).group).or_default().push(item);
        }
        for items in by_group.into_values() {
            let binary = place(items[0].0).binary;
            let mut sym = binary.symbolizer();
            for (pi, pc, role) in items {
                let p = place(pi);
                let target = p.target;
                if self.done.contains(&(target, pc)) {
                    continue;
                }
                let Some(bias) = p.bias else {
                    // Not mapped yet (program still starting): try again next flush.
                    self.pending.push((pi, pc, role));
                    continue;
                };
                self.done.insert((target, pc));
                let frames = frames_of(binary, &mut sym, pc, bias, role);
                let syms: Vec<Symbol> = frames
                    .iter()
                    .map(|f| Symbol {
                        pc,
                        entry: f.entry.wrapping_add(bias),
                        function: w.intern(&f.function),
                        file: w.intern(&f.file),
                        line: f.line,
                    })
                    .collect();
                w.add_symbols(target, &syms);
            }
        }
    }
}

/// The frames of runtime address `pc` of a process that runs `binary` at load bias `bias`,
/// innermost first, symbolized as its `role` says.
pub(crate) fn frames_of(
    binary: &GoBinary,
    sym: &mut Symbolizer<'_>,
    pc: u64,
    bias: u64,
    role: Role,
) -> Vec<Frame> {
    let link_pc = pc
        .wrapping_sub(bias)
        .wrapping_sub(u64::from(role == Role::Return));
    let mut frames = Vec::new();
    if role == Role::Start {
        frames.extend(binary.start_function(link_pc));
    }
    frames.extend(sym.symbolize(link_pc).unwrap_or_default().to_vec());
    frames
}
