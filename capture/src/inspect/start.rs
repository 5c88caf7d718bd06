//! The function a goroutine runs, named as Go's own tracebacks name it.
//!
//! `g.startpc` is the entry of what the `go` statement handed to the runtime. For
//! `go f(x)` and `go obj.method(x)` that is a closure the compiler generates (`main.main.func1`
//! up to Go 1.21, `main.main.gowrap1` from 1.22) and marks as a wrapper (`funcID` wrapper in
//! the pclntab). Go's traceback hides wrapper frames, so a goroutine's bottom frame is what the
//! wrapper runs: the outermost function inlined into it (from Go 1.22 the compiler inlines
//! small targets into their wrapper), else the one function it calls. A real closure
//! (`go func() {...}()`) and a plain function are not wrappers: they are named after
//! themselves, whatever they call or have inlined. A wrapper that calls its target through a
//! func value (`go m(x)` with `m` a method value) keeps its own name: the binary does not say
//! what it calls.

use super::symbols::{FuncTable, Pclntab};
use super::{prologue, Func, GoBinary};
use crate::inspect::symbols::Frame;

/// Wrappers calling wrappers (a method value's `-fm` closure called by a go wrapper) are
/// followed this deep.
const MAX_WRAPPERS: usize = 4;

/// The `funcID` the linker gives wrappers in this binary. Its value moves between Go versions
/// (21 up to 1.21, 22 from 1.22, 23 from 1.25: `internal/abi/symtab.go`), but the linker
/// gives `runtime.deferreturn` that `funcID` in every version (`cmd/internal/objabi/funcid.go`).
pub(super) fn wrapper_func_id(funcs: &FuncTable, tab: &Pclntab<'_>) -> Option<u8> {
    let deferreturn = funcs.get("runtime.deferreturn")?;
    tab.func_id(tab.find(deferreturn.entry)?)
        .filter(|&id| id != 0) // 0 is a normal function: never take every function for a wrapper
}

impl GoBinary {
    /// The frame naming the function a goroutine started at `entry` runs, as Go's traceback
    /// prints its bottom frame; `None` when `entry` is not a wrapper (the function at
    /// `entry` is then the name).
    pub(crate) fn start_function(&self, entry: u64) -> Option<Frame> {
        let tab = self.pclntab();
        let mut entry = entry;
        for depth in 0..=MAX_WRAPPERS {
            let i = tab.find(entry)?;
            if !self.is_wrapper(tab.func_id(i)) {
                return (depth > 0).then(|| tab.frames(entry)?.pop()).flatten();
            }
            let inlined = tab.first_inlined_pc(i).and_then(|pc| tab.frames(pc));
            if let Some(f) = inlined.and_then(|frames| {
                frames
                    .into_iter()
                    .rev()
                    .find(|f| f.inlined && !self.is_wrapper(Some(f.func_id)))
            }) {
                return Some(f);
            }
            entry = self.only_callee(entry)?.entry;
        }
        None
    }

    fn is_wrapper(&self, func_id: Option<u8>) -> bool {
        func_id.is_some() && func_id == self.wrapper_func_id
    }

    /// The one function outside the runtime's internals that the function at `entry` calls
    /// directly (a wrapper also calls `morestack`, write barriers, `panicwrap`...).
    fn only_callee(&self, entry: u64) -> Option<&Func> {
        let f = self.funcs.containing(entry)?;
        let code = self.code(f)?;
        let mut calls = prologue::analyze(code, f.entry)
            .calls
            .into_iter()
            .filter_map(|(_, t)| self.funcs.containing(t))
            .filter(|c| !is_runtime_internal(&c.name));
        let only = calls.next()?;
        calls.all(|c| c.entry == only.entry).then_some(only)
    }
}

/// An unexported runtime function: never what a `go` statement names.
fn is_runtime_internal(name: &str) -> bool {
    name.strip_prefix("runtime.")
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_uppercase()))
}
