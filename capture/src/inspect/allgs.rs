//! Where the Go runtime keeps its list of every goroutine: the addresses of `runtime.allgs`
//! (`[]*g`), `runtime.allglen` and `runtime.allgptr`, which a goroutine snapshot reads from
//! the running target.
//!
//! `runtime.allgadd` (`runtime/proc.go`) appends to `allgs` under `allglock`, then publishes
//! the array with `atomicstorep(&allgptr, &allgs[0])` and the length with
//! `atomic.Storeuintptr(&allglen, len(allgs))`, in that order, so a reader that loads
//! `allglen` before `allgptr` (as `atomicAllG` does) sees an array at least that long,
//! without the lock.
//!
//! With `.symtab` the three are symbols. Stripped binaries (`-ldflags=-s -w`) keep only
//! `.gopclntab`, which still gives `runtime.allgadd`'s code; on every Go release from 1.19
//! to 1.27 that code
//! - loads `allgs.ptr`, `allgs.len` and `allgs.cap` (three RIP-relative operands 8 bytes
//!   apart) for the `append`,
//! - stores `allgptr` and then `allglen` with `XCHG` (the atomic stores), each through a
//!   register loaded by a RIP-relative `LEA` (or directly RIP-relative).
//!
//! We decode it with iced-x86 and take exactly that. Every address must land in a
//! writable, non-executable segment, and `allgs`, `allglen`, `allgptr` must differ, or the
//! code is refused as unrecognised. Addresses are link-time virtual addresses: add the
//! process's load bias for PIE targets.

use std::collections::{BTreeSet, HashMap};

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

use super::{GoBinary, InspectError};

/// Where [`AllgAddrs`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllgSource {
    /// `.symtab` symbols.
    Symtab,
    /// Decoded from `runtime.allgadd`'s machine code.
    Code,
}

/// Link-time virtual addresses of the runtime's goroutine list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AllgAddrs {
    /// `runtime.allgs`, a slice header {ptr, len, cap}.
    pub(crate) allgs: u64,
    /// `runtime.allglen` (uintptr), stored after `allgptr`.
    pub(crate) allglen: u64,
    /// `runtime.allgptr` (**g), the published `&allgs[0]`.
    pub(crate) allgptr: u64,
    pub(crate) source: AllgSource,
}

/// The goroutine list's addresses: from `.symtab` when the binary has it, else from code.
pub(crate) fn locate(bin: &GoBinary) -> Result<AllgAddrs, InspectError> {
    match from_symtab(bin) {
        Some(a) => Ok(a),
        None => from_code(bin),
    }
}

/// `runtime.allgs`, `runtime.allglen` and `runtime.allgptr` from `.symtab`.
pub(crate) fn from_symtab(bin: &GoBinary) -> Option<AllgAddrs> {
    let sym = |n: &str| bin.elf().symbols.get(n).map(|s| s.addr);
    Some(AllgAddrs {
        allgs: sym("runtime.allgs")?,
        allglen: sym("runtime.allglen")?,
        allgptr: sym("runtime.allgptr")?,
        source: AllgSource::Symtab,
    })
}

/// The addresses as `runtime.allgadd` uses them (see the module doc).
pub(crate) fn from_code(bin: &GoBinary) -> Result<AllgAddrs, InspectError> {
    let f = bin.function("runtime.allgadd")?;
    let unrecognised = |why: &str| {
        InspectError::InPath {
        path: bin.path().to_path_buf(),
        what: format!(
            "runtime.allgadd at {:#x} does not look like Go 1.19-1.27's ({why}); goroutine snapshots need runtime.allgs: rebuild the target without -ldflags=-s",
            f.entry
        ),
    }
    };
    let code = bin
        .code(f)
        .ok_or_else(|| unrecognised("its code is not in the file"))?;
    let refs = data_references(code, f.entry);
    let allgs = refs
        .operands
        .iter()
        .copied()
        .filter(|&a| {
            refs.operands.contains(&a.wrapping_add(8))
                && refs.operands.contains(&a.wrapping_add(16))
        })
        .collect::<Vec<_>>();
    let [allgs] = allgs[..] else {
        return Err(unrecognised(&format!(
            "{} slice headers referenced instead of one",
            allgs.len()
        )));
    };
    let [allgptr, allglen] = refs.xchg_targets[..] else {
        return Err(unrecognised(&format!(
            "{} atomic stores instead of two",
            refs.xchg_targets.len()
        )));
    };
    let addrs = AllgAddrs {
        allgs,
        allglen,
        allgptr,
        source: AllgSource::Code,
    };
    let distinct = BTreeSet::from([allgs, allglen, allgptr]).len() == 3;
    let in_data = [allgs, allglen, allgptr].iter().all(|&a| is_data(bin, a));
    if !distinct || !in_data {
        return Err(unrecognised(&format!(
            "its references {addrs:?} are not three distinct variables in writable data"
        )));
    }
    Ok(addrs)
}

/// Whether `addr..addr+8` lies in a non-executable PT_LOAD segment's memory (data or bss).
fn is_data(bin: &GoBinary, addr: u64) -> bool {
    bin.elf().segments.iter().any(|s| {
        !s.executable
            && addr >= s.vaddr
            && addr.saturating_add(8) <= s.vaddr.saturating_add(s.memsz)
    })
}

/// The static data one function touches.
#[derive(Debug, Default)]
struct DataReferences {
    /// Every RIP-relative memory operand and `LEA` target.
    operands: BTreeSet<u64>,
    /// Addresses written by `XCHG` with memory (Go's atomic stores), in code order.
    xchg_targets: Vec<u64>,
}

fn data_references(code: &[u8], entry: u64) -> DataReferences {
    let mut dec = Decoder::with_ip(64, code, entry, DecoderOptions::NONE);
    let mut ins = Instruction::default();
    let mut refs = DataReferences::default();
    // Registers holding a RIP-relative LEA's address, until overwritten.
    let mut lea: HashMap<Register, u64> = HashMap::new();
    while dec.can_decode() {
        dec.decode_out(&mut ins);
        if ins.is_invalid() {
            continue;
        }
        let rip_target = ins
            .is_ip_rel_memory_operand()
            .then(|| ins.ip_rel_memory_address());
        if let Some(a) = rip_target {
            refs.operands.insert(a);
        }
        let has_mem = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
        if ins.mnemonic() == Mnemonic::Xchg && has_mem {
            let through_reg = (ins.memory_index() == Register::None
                && ins.memory_displacement64() == 0)
                .then(|| lea.get(&ins.memory_base()).copied())
                .flatten();
            if let Some(a) = rip_target.or(through_reg) {
                refs.xchg_targets.push(a);
            }
        }
        if ins.mnemonic() == Mnemonic::Call {
            lea.clear();
        } else if ins.op_count() > 0 && ins.op0_kind() == OpKind::Register {
            let r = ins.op0_register().full_register();
            match (ins.mnemonic(), rip_target) {
                (Mnemonic::Lea, Some(a)) => {
                    lea.insert(r, a);
                }
                _ => {
                    lea.remove(&r);
                }
            }
        }
    }
    refs
}
