//! Loading the dictionary blocks of FORMAT.md §4 (meta, targets, strings, stacks, symbols,
//! stats) into memory when a capture is opened; events blocks stay on disk until asked for.

use rkyv::rancor;

use super::Capture;
use crate::error::{Error, Result};
use crate::event::StackId;
use crate::frame::FLAG_SUMMARY;
use crate::payload::{
    ArchivedStacks, ArchivedStrings, ArchivedSymbols, BlockKind, Meta, Seal, Stats, Symbol, Target,
};

/// A stack table of one target.
#[derive(Clone, Debug, Default)]
pub struct StackTable {
    /// `(start, len)` into `pcs` for each stack id (index 0 is the empty stack).
    ranges: Vec<(u32, u32)>,
    pcs: Vec<u64>,
}

impl StackTable {
    /// PCs of a stack, innermost first (empty for id 0 or an unknown id).
    pub fn get(&self, id: StackId) -> &[u64] {
        match self.ranges.get(id as usize) {
            Some(&(start, len)) => self
                .pcs
                .get(start as usize..start as usize + len as usize)
                .unwrap_or(&[]),
            None => &[],
        }
    }

    /// Number of stacks (id 0 included).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.len() <= 1
    }
}

/// The archive bytes of all dictionary blocks (meta, targets, strings, stacks, symbols,
/// stats) a reader loads from one file: they stay in memory while it is open.
pub(crate) const MAX_DICTIONARY_BYTES: u64 = 256 << 20;
/// Strings, stacks, stack frames and symbols a reader loads from one file, together: each
/// costs memory beyond its bytes in the archive (a 2-byte stack length is an 8-byte range).
pub(crate) const MAX_DICTIONARY_ENTRIES: u64 = 16 << 20;

/// What the dictionaries loaded so far have used of the budgets above.
#[derive(Default)]
struct Budget {
    bytes: u64,
    entries: u64,
}

impl Budget {
    /// Takes `n` entries from the budget, or says why a block cannot have them.
    fn take_entries(&mut self, offset: u64, n: u64) -> Result<()> {
        if self.entries + n > MAX_DICTIONARY_ENTRIES {
            return Err(Error::corrupt(
                offset,
                format!("the dictionaries would exceed the reader's budget of {MAX_DICTIONARY_ENTRIES} entries per file: the file is damaged or hostile"),
            ));
        }
        self.entries += n;
        Ok(())
    }
}

impl Capture {
    pub(super) fn load_dictionaries(&mut self) -> Result<()> {
        let mut problems = Vec::new();
        let mut budget = Budget::default();
        let infos = self.blocks.clone();
        for (i, info) in infos.iter().enumerate() {
            let Some(kind) = BlockKind::from_u16(info.kind) else {
                continue; // a newer kind: skip it
            };
            let is_dictionary = !matches!(kind, BlockKind::Events | BlockKind::Index);
            if is_dictionary && budget.bytes + info.raw_len as u64 > MAX_DICTIONARY_BYTES {
                problems.push(Error::corrupt(
                    info.offset,
                    format!("the dictionary blocks exceed the reader's budget of {} MiB per file: the file is damaged or hostile", MAX_DICTIONARY_BYTES >> 20),
                ).to_string());
                continue;
            }
            let raw = match kind {
                BlockKind::Meta
                | BlockKind::Target
                | BlockKind::Strings
                | BlockKind::Stacks
                | BlockKind::Symbols
                | BlockKind::Stats
                | BlockKind::Seal => match self.decompress(info) {
                    Ok(r) => {
                        budget.bytes += r.len() as u64;
                        r
                    }
                    Err(e) => {
                        problems.push(e.to_string());
                        continue;
                    }
                },
                BlockKind::Events if !self.recovery.complete && info.flags & FLAG_SUMMARY != 0 => {
                    // The frame's summary already gave the counts: the block is not
                    // decompressed until it is read (and then checked against it). A
                    // count above the archive's size cannot be true.
                    if info.events > info.raw_len {
                        problems.push(
                            Error::corrupt(info.offset, "events block summary counts more events than its archive has bytes")
                                .to_string(),
                        );
                        self.blocks[i].events = 0;
                    }
                    continue;
                }
                BlockKind::Events if !self.recovery.complete => {
                    // Scanned files lack the index's counts: read them from the block.
                    match self.events_block(info) {
                        Ok(p) if p.block().count as usize != p.block().kinds_len() => {
                            problems.push(
                                Error::corrupt(
                                    info.offset,
                                    "events block count differs from its kinds column",
                                )
                                .to_string(),
                            );
                        }
                        Ok(p) => {
                            let a = p.block();
                            self.blocks[i].target = a.target;
                            self.blocks[i].t_min = a.t_min;
                            self.blocks[i].t_max = a.t_max;
                            self.blocks[i].events = a.count;
                        }
                        Err(e) => problems.push(e.to_string()),
                    }
                    continue;
                }
                _ => continue,
            };
            let bad = |e: rancor::BoxedError| {
                Error::corrupt(info.offset, format!("{}: {e}", kind.name()))
            };
            let r: Result<()> = (|| {
                match kind {
                    BlockKind::Meta => {
                        let m = rkyv::from_bytes::<Meta, rancor::BoxedError>(&raw).map_err(bad)?;
                        self.meta.get_or_insert(m);
                    }
                    BlockKind::Target => {
                        let t =
                            rkyv::from_bytes::<Target, rancor::BoxedError>(&raw).map_err(bad)?;
                        self.blocks[i].target = t.id;
                        self.targets.retain(|x| x.id != t.id);
                        self.targets.push(t);
                    }
                    BlockKind::Seal => {
                        self.seal =
                            Some(rkyv::from_bytes::<Seal, rancor::BoxedError>(&raw).map_err(bad)?);
                    }
                    BlockKind::Stats => {
                        self.stats =
                            Some(rkyv::from_bytes::<Stats, rancor::BoxedError>(&raw).map_err(bad)?);
                    }
                    BlockKind::Strings => {
                        let s = rkyv::access::<ArchivedStrings, rancor::BoxedError>(&raw)
                            .map_err(bad)?;
                        // Entries go at their ids: after a lost block, a gap of unknown
                        // (empty) strings, and the later blocks still resolve.
                        let first = s.first_id.to_native() as usize;
                        if first < self.strings.len() {
                            return Err(Error::corrupt(
                                info.offset,
                                "string ids overlap those of an earlier block",
                            ));
                        }
                        let gap = (first - self.strings.len()) as u64;
                        budget.take_entries(info.offset, gap + s.strings.len() as u64)?;
                        self.strings.resize(first, String::new());
                        self.strings
                            .extend(s.strings.iter().map(|x| x.as_str().to_owned()));
                    }
                    BlockKind::Stacks => {
                        let s = rkyv::access::<ArchivedStacks, rancor::BoxedError>(&raw)
                            .map_err(bad)?;
                        let target = s.target.to_native();
                        self.blocks[i].target = target;
                        let table = self.stacks.entry(target).or_insert_with(|| StackTable {
                            ranges: vec![(0, 0)],
                            pcs: Vec::new(),
                        });
                        let first = s.first_id.to_native() as usize;
                        if first < table.ranges.len() {
                            return Err(Error::corrupt(
                                info.offset,
                                "stack ids overlap those of an earlier block",
                            ));
                        }
                        let total: u64 = s.lens.iter().map(|l| l.to_native() as u64).sum();
                        if total != s.pcs.len() as u64 {
                            return Err(Error::corrupt(info.offset, "stack lengths do not add up"));
                        }
                        let gap = (first - table.ranges.len()) as u64;
                        budget.take_entries(info.offset, gap + s.lens.len() as u64 + total)?;
                        // As for strings: a lost block leaves empty stacks, not a refusal.
                        table.ranges.resize(first, (0, 0));
                        let mut at = table.pcs.len() as u32;
                        for l in s.lens.iter() {
                            let l = l.to_native() as u32;
                            table.ranges.push((at, l));
                            at += l;
                        }
                        table.pcs.extend(s.pcs.iter().map(|p| p.to_native()));
                    }
                    BlockKind::Symbols => {
                        let s = rkyv::access::<ArchivedSymbols, rancor::BoxedError>(&raw)
                            .map_err(bad)?;
                        let target = s.target.to_native();
                        self.blocks[i].target = target;
                        budget.take_entries(info.offset, s.symbols.len() as u64)?;
                        let v = self.symbols.entry(target).or_default();
                        v.extend(s.symbols.iter().map(|x| Symbol {
                            pc: x.pc.to_native(),
                            entry: x.entry.to_native(),
                            function: x.function.to_native(),
                            file: x.file.to_native(),
                            line: x.line.to_native(),
                        }));
                    }
                    _ => {}
                }
                Ok(())
            })();
            if let Err(e) = r {
                problems.push(e.to_string());
            }
        }
        for v in self.symbols.values_mut() {
            // Stable: inlined frames of one PC keep their innermost-first order.
            v.sort_by_key(|s| s.pc);
        }
        if !problems.is_empty() {
            self.recovery.complete = false;
            for p in problems.iter().take(8) {
                self.recovery
                    .warnings
                    .push(format!("skipped a damaged block: {p}"));
            }
        }
        if self.meta.is_none() {
            self.recovery
                .warnings
                .push("the capture's metadata block is missing or damaged".into());
        }
        Ok(())
    }
}
