//! Instruction-level analysis of a Go function for probe placement.
//!
//! Why: a uprobe on a Go function's first instruction (`CMP RSP,[R14+0x10]`) must be
//! single-stepped and costs ~10 µs per hit, and it fires twice when the stack check sends
//! the call through `morestack`. The kernel emulates `PUSH RBP`, so probing there costs
//! ~0.7 µs (measured, see docs/ARCHITECTURE.md). uretprobes crash Go programs, so
//! returns are observed with ordinary uprobes on every `RET`. Both need a real decoder
//! (a byte scan for 0xC3 hits bytes inside other instructions): we use iced-x86.
//!
//! Go <= 1.20 builds frames with `SUB RSP,n; MOV [RSP+k],RBP; LEA RBP,[RSP+k]` (no PUSH),
//! so for them [`Prologue::push_rbp`] is None and [`Prologue::after_stack_check`] gives
//! the first instruction after the stack check (not emulated, but fires once per call).

use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

/// How far into a function the frame setup may start (stack check is <= 5 instructions).
const PROLOGUE_WINDOW: usize = 8;

/// Probe-relevant instruction offsets of one function (offsets are from its entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Prologue {
    /// Offset of the `PUSH RBP` that starts the frame (after the stack check), if the
    /// function has one near its start. The recommended probe site.
    pub(crate) push_rbp: Option<u64>,
    /// Offset of the first instruction after the stack-check `JBE`/`JCS` (the first
    /// instruction that runs exactly once per call), if the function has a stack check.
    pub(crate) after_stack_check: Option<u64>,
    /// Offset of the stack check's conditional jump (`JBE`/`JCS` to morestack), if any.
    /// Go 1.19/1.20 frames have no `PUSH RBP`; the jump is then the cheap probe site (the
    /// kernel emulates a Jcc, and the probe can tell from EFLAGS whether it is taken).
    pub(crate) stack_check_jump: Option<u64>,
    /// Offset of an `ENDBR64` at the entry, if any (never probe before it).
    pub(crate) endbr64: Option<u64>,
    /// Offsets of every `RET` instruction.
    pub(crate) rets: Vec<u64>,
    /// Offsets of `JMP`s leaving the function (tail calls): the function also "returns"
    /// there without a RET.
    pub(crate) tail_jumps: Vec<u64>,
    /// Number of bytes that could not be decoded (0 for well-formed Go code; the
    /// padding after a function decodes as INT3).
    pub(crate) undecodable_bytes: u64,
    /// Direct `CALL`s in code order: (offset of the CALL, target virtual address).
    pub(crate) calls: Vec<(u64, u64)>,
}

impl Prologue {
    /// The cheapest safe entry probe offset: PUSH RBP, else after the stack check, else
    /// after ENDBR64, else 0.
    pub(crate) fn entry_probe_offset(&self) -> u64 {
        self.push_rbp
            .or(self.after_stack_check)
            .or(self.endbr64.map(|o| o + 4))
            .unwrap_or(0)
    }
}

/// Decodes `code` (the bytes of a function linked at `entry`) as 64-bit x86.
pub(crate) fn analyze(code: &[u8], entry: u64) -> Prologue {
    let mut dec = Decoder::with_ip(64, code, entry, DecoderOptions::NONE);
    let end = entry + code.len() as u64;
    let mut p = Prologue::default();
    let mut ins = Instruction::default();
    let mut idx = 0usize;
    let mut stack_check_seen = false;
    let mut frame_phase = true;
    while dec.can_decode() {
        dec.decode_out(&mut ins);
        let off = ins.ip() - entry;
        if ins.is_invalid() {
            p.undecodable_bytes += ins.len() as u64;
            idx += 1;
            continue;
        }
        if frame_phase {
            if idx == 0 && ins.code() == Code::Endbr64 {
                p.endbr64 = Some(off);
            } else if is_stack_check_cmp(&ins) {
                stack_check_seen = true;
            } else if stack_check_seen && p.after_stack_check.is_none() && is_jcc(&ins) {
                p.stack_check_jump = Some(off);
                p.after_stack_check = Some(ins.next_ip() - entry);
            } else if ins.mnemonic() == Mnemonic::Push
                && ins.op0_kind() == OpKind::Register
                && ins.op0_register() == Register::RBP
            {
                p.push_rbp = Some(off);
                frame_phase = false;
            }
            if idx >= PROLOGUE_WINDOW
                || ins.mnemonic() == Mnemonic::Call
                || is_ret(&ins)
                || is_direct_jmp(&ins)
            {
                frame_phase = false;
            }
        }
        if ins.mnemonic() == Mnemonic::Call
            && matches!(ins.op0_kind(), OpKind::NearBranch64 | OpKind::NearBranch32)
        {
            p.calls.push((off, ins.near_branch_target()));
        }
        if is_ret(&ins) {
            p.rets.push(off);
        } else if (ins.mnemonic() == Mnemonic::Jmp && !is_direct_jmp(&ins))
            || (is_direct_jmp(&ins)
                && (ins.near_branch_target() < entry || ins.near_branch_target() >= end))
        {
            p.tail_jumps.push(off);
        }
        idx += 1;
    }
    p
}

/// Virtual addresses of the instructions of `code` (a function linked at `entry`), in order.
pub(crate) fn instruction_addresses(code: &[u8], entry: u64) -> Vec<u64> {
    let mut dec = Decoder::with_ip(64, code, entry, DecoderOptions::NONE);
    let mut ins = Instruction::default();
    let mut out = Vec::new();
    while dec.can_decode() {
        dec.decode_out(&mut ins);
        if !ins.is_invalid() {
            out.push(ins.ip());
        }
    }
    out
}

fn is_direct_jmp(ins: &Instruction) -> bool {
    ins.mnemonic() == Mnemonic::Jmp
        && matches!(
            ins.op0_kind(),
            OpKind::NearBranch64 | OpKind::NearBranch32 | OpKind::NearBranch16
        )
}

fn is_jcc(ins: &Instruction) -> bool {
    use Mnemonic::*;
    matches!(
        ins.mnemonic(),
        Ja | Jae | Jb | Jbe | Je | Jg | Jge | Jl | Jle | Jne | Jno | Jnp | Jns | Jo | Jp | Js
    )
}

fn is_ret(ins: &Instruction) -> bool {
    matches!(ins.mnemonic(), Mnemonic::Ret | Mnemonic::Retf)
}

/// `CMP RSP,[R14+16]` / `CMP R12,[R14+16]` (large frames) — the goroutine stack check.
fn is_stack_check_cmp(ins: &Instruction) -> bool {
    ins.mnemonic() == Mnemonic::Cmp
        && ins.op_count() == 2
        && ins.op1_kind() == OpKind::Memory
        && ins.memory_base() == Register::R14
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_prologue() {
        // cmp rsp,[r14+10h]; jbe +0x20; push rbp; mov rbp,rsp; ret; int3
        let code = [
            0x49, 0x3b, 0x66, 0x10, 0x76, 0x20, 0x55, 0x48, 0x89, 0xe5, 0xc3, 0xcc,
        ];
        let p = analyze(&code, 0x1000);
        assert_eq!(p.push_rbp, Some(6));
        assert_eq!(p.after_stack_check, Some(6));
        assert_eq!(p.stack_check_jump, Some(4));
        assert_eq!(p.rets, vec![10]);
        assert_eq!(p.entry_probe_offset(), 6);
    }

    #[test]
    fn endbr_and_no_frame() {
        // endbr64; mov eax,1; ret
        let code = [0xf3, 0x0f, 0x1e, 0xfa, 0xb8, 0x01, 0, 0, 0, 0xc3];
        let p = analyze(&code, 0);
        assert_eq!(p.endbr64, Some(0));
        assert_eq!(p.push_rbp, None);
        assert_eq!(p.rets, vec![9]);
        assert_eq!(p.entry_probe_offset(), 4);
    }

    #[test]
    fn c3_inside_an_instruction_is_not_a_ret() {
        // mov eax,0xc3c3c3c3; jmp far away (tail call)
        let code = [0xb8, 0xc3, 0xc3, 0xc3, 0xc3, 0xe9, 0, 1, 0, 0];
        let p = analyze(&code, 0);
        assert!(p.rets.is_empty());
        assert_eq!(p.tail_jumps, vec![5]);
    }
}
