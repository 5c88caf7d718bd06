//! Exports: Parquet tables for fleet queries (`parquet.rs`), a Chrome trace for Perfetto
//! (`chrome.rs`), folded stacks and a flame graph (`folded.rs`); here, what they share: the
//! states cut at span boundaries and the symbolized stacks.

mod chrome;
mod folded;
mod parquet;

use std::collections::HashMap;

use gcap_format::StackId;

use crate::capture_set::LoadedCapture;
use crate::goroutine::{reason_name, Goroutine, State, StateKind};
use crate::span::SpanIndex;

pub use chrome::chrome;
pub use folded::folded;
pub use parquet::parquet;

/// A goroutine's states split where it starts or stops serving a span of its own, each with
/// the span (index) it belonged to at the time, and whether the piece is the first of its
/// state (so per-state facts, like a wake-up, are reported once).
pub(crate) fn owned_states(index: &SpanIndex, g: &Goroutine) -> Vec<(State, Option<usize>, bool)> {
    let bounds = index.boundaries(g.key);
    let mut out = Vec::with_capacity(g.states.len());
    for s in &g.states {
        let mut at = s.start;
        for &b in bounds.iter().filter(|&&b| b > s.start && b < s.end) {
            let piece = State {
                start: at,
                end: b,
                ..s
            };
            out.push((piece, index.owner_at(g.key, at), at == s.start));
            at = b;
        }
        let piece = State { start: at, ..s };
        out.push((piece, index.owner_at(g.key, at), at == s.start));
    }
    out
}

/// Symbolized strings of (file, target, stack), computed once each.
#[derive(Default)]
struct Names {
    where_: HashMap<(u32, u32, StackId), String>,
    folded: HashMap<(u32, u32, StackId), String>,
}

impl Names {
    fn where_(&mut self, f: &LoadedCapture, file: u32, target: u32, stack: StackId) -> &str {
        self.where_
            .entry((file, target, stack))
            .or_insert_with(|| f.where_(target, stack))
    }

    /// Root-first function names joined by ';' (for folded stacks).
    fn folded(&mut self, f: &LoadedCapture, file: u32, target: u32, stack: StackId) -> &str {
        self.folded.entry((file, target, stack)).or_insert_with(|| {
            let frames = f.frames(target, stack);
            frames
                .iter()
                .rev()
                .map(|fr| fr.function.replace(';', ":"))
                .collect::<Vec<_>>()
                .join(";")
        })
    }
}

/// A state's name, with the wait reason when blocked ("blocked: chan receive").
fn state_label(f: &LoadedCapture, target: u32, s: &State) -> String {
    match s.kind {
        StateKind::Blocked => format!("blocked: {}", reason_name(f, target, s.reason)),
        k => k.name().to_string(),
    }
}
