//! FORMAT.md §4 "Block payloads": the kinds of block and what each holds once
//! decompressed.
//!
//! Every payload is an rkyv archive of one of the structs below (the events block, §5, has
//! its own module: `events_block`). Readers access the archive in place after rkyv's checked
//! validation (`bytecheck`), so a hostile payload is an error, not undefined behaviour.

use rkyv::{Archive, Deserialize, Serialize};

use crate::event::StrId;

// The archive layout FORMAT.md §4 specifies (little-endian, aligned, 32-bit relative
// pointers), checked when the crate is built: a layout feature enabled anywhere in a build
// changes every archive, so it must fail the build rather than misread captures.
const _: () = {
    use core::mem::{align_of, size_of};
    // A vector is a 32-bit relative pointer and a 32-bit length.
    assert!(size_of::<rkyv::Archived<Vec<u8>>>() == 8);
    // Aligned: an archived u64 is 8-aligned (unaligned would make it 1).
    assert!(align_of::<rkyv::Archived<u64>>() == 8);
    assert!(size_of::<rkyv::Archived<u64>>() == 8);
};

/// The kind of a block, stored in its frame header. Readers skip kinds they do not know.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    Meta = 1,
    Target = 2,
    Strings = 3,
    Stacks = 4,
    Symbols = 5,
    Events = 6,
    Stats = 7,
    Index = 8,
    Seal = 9,
}

impl BlockKind {
    pub fn from_u16(v: u16) -> Option<BlockKind> {
        Some(match v {
            1 => BlockKind::Meta,
            2 => BlockKind::Target,
            3 => BlockKind::Strings,
            4 => BlockKind::Stacks,
            5 => BlockKind::Symbols,
            6 => BlockKind::Events,
            7 => BlockKind::Stats,
            8 => BlockKind::Index,
            9 => BlockKind::Seal,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            BlockKind::Meta => "meta",
            BlockKind::Target => "target",
            BlockKind::Strings => "strings",
            BlockKind::Stacks => "stacks",
            BlockKind::Symbols => "symbols",
            BlockKind::Events => "events",
            BlockKind::Stats => "stats",
            BlockKind::Index => "index",
            BlockKind::Seal => "seal",
        }
    }
}

/// A free-form key/value pair: room for facts later versions add without a new block kind.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// The capture as a whole (the first block of every file).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Meta {
    /// Host name of the machine captured on.
    pub host: String,
    /// `uname -sr` of that machine's kernel.
    pub kernel: String,
    pub gcap_version: String,
    /// gcap's own command line.
    pub command_line: Vec<String>,
    /// Wall-clock time at capture start, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// CLOCK_MONOTONIC at the same instant: every event timestamp is on this clock.
    pub start_mono_ns: u64,
    /// Capture level name (e.g. "lifecycle").
    pub level: String,
    pub extra: Vec<KeyValue>,
}

/// A probe gcap attached to a target, as recorded for the reader.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ProbeInfo {
    /// gcap's name for the probe (e.g. "go_block").
    pub name: String,
    /// The function or tracepoint it is attached to.
    pub attach_to: String,
    /// Offset of the probe from the function's entry (0 for tracepoints).
    pub offset: u64,
}

/// A struct offset or constant gcap read from the target (name like "runtime.g.goid").
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Offset {
    pub name: String,
    pub value: u64,
}

/// One target process.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Target {
    /// Capture-local target id that events and stack blocks refer to.
    pub id: u32,
    pub pid: u32,
    pub exe: String,
    /// GNU build id (hex), or Go's build id when there is none.
    pub build_id: String,
    /// e.g. "go1.27.3".
    pub go_version: String,
    /// Where the offsets came from: "dwarf" or "table".
    pub offsets_source: String,
    pub offsets: Vec<Offset>,
    /// Go's wait-reason strings indexed by the target's wait-reason number.
    pub wait_reasons: Vec<String>,
    pub probes: Vec<ProbeInfo>,
    /// CLOCK_MONOTONIC when the probes were attached.
    pub attached_mono_ns: u64,
    pub extra: Vec<KeyValue>,
}

/// New entries of the string table: ids `first_id ..first_id + strings.len()`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Strings {
    pub first_id: u32,
    pub strings: Vec<String>,
}

/// New entries of a target's stack table: stack `first_id + i` is
/// `pcs[sum(lens[..i]) .. sum(lens[..=i])]`, innermost frame first.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Stacks {
    pub target: u32,
    pub first_id: u32,
    pub lens: Vec<u16>,
    pub pcs: Vec<u64>,
}

/// A PC's source location. Several entries with the same `pc` describe inlined frames,
/// innermost first.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Symbol {
    pub pc: u64,
    /// Entry PC of the (physical) function holding `pc`.
    pub entry: u64,
    pub function: StrId,
    pub file: StrId,
    pub line: u32,
}

/// Symbols for PCs of one target.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Symbols {
    pub target: u32,
    pub symbols: Vec<Symbol>,
}

/// Per-probe hit counts.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ProbeStat {
    pub target: u32,
    pub name: String,
    pub hits: u64,
}

/// Counters gcap writes when it stops (and may write periodically; the last one wins).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Stats {
    /// CLOCK_MONOTONIC when the capture stopped.
    pub end_mono_ns: u64,
    /// Why it stopped ("duration", "signal", "targets exited", "disk full: ...").
    pub stop_reason: String,
    pub probes: Vec<ProbeStat>,
    /// Events lost per CPU (ring buffer full), index = CPU number.
    pub lost_per_cpu: Vec<u64>,
    pub extra: Vec<KeyValue>,
}

/// Written by `ganalyze seal` (not by gcap) when it turned a cut or damaged capture into a
/// finished one: the blocks before it are the source's unbroken chain from its start,
/// byte for byte; nothing after them was kept.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Seal {
    /// Wall-clock time of the sealing, ns since the Unix epoch.
    pub sealed_unix_ns: u64,
    /// What sealed it, e.g. "ganalyze 0.1.0".
    pub sealed_by: String,
    /// The source file's length and evidence digest (BLAKE3 of all its bytes, as `info`
    /// printed it for the cut file).
    pub source_len: u64,
    pub source_digest: String,
    /// Frames kept from the source (the chain from byte 32 up to its first break or end).
    pub blocks_kept: u32,
    /// Bytes of the source not kept: a cut-off tail, damage, and any block after a break.
    pub bytes_dropped: u64,
    /// The stored digest of the last frame kept: the chain head gcap had logged when it had
    /// written that far.
    pub chain_head: String,
    pub extra: Vec<KeyValue>,
}

/// One block in the index.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IndexEntry {
    /// Byte offset of the block's frame header.
    pub offset: u64,
    pub kind: u16,
    pub seq: u32,
    /// Target id (events, stacks, symbols blocks), else u32::MAX.
    pub target: u32,
    pub t_min: u64,
    pub t_max: u64,
    pub events: u32,
}

/// The footer index: every block before it.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Index {
    pub entries: Vec<IndexEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_little_endian_with_32_bit_pointers() {
        // Endianness cannot be seen in a type's size: look at the bytes.
        let s = Strings {
            first_id: 0x0102_0304,
            strings: vec!["ab".into()],
        };
        let b = rkyv::to_bytes::<rancor::BoxedError>(&s).unwrap();
        // Root at the end: the u32 first_id, then the vector's 4-byte offset and 4-byte length.
        let root = &b[b.len() - 12..];
        assert_eq!(root[0..4], [4, 3, 2, 1]);
        assert_eq!(root[8..12], [1, 0, 0, 0]);
    }

    #[test]
    fn errors_say_what_failed() {
        // rancor's default error drops its message in release builds; BoxedError keeps it.
        let mut raw = rkyv::util::AlignedVec::<16>::new();
        raw.extend_from_slice(&[0xff; 16]);
        let Err(e) = rkyv::access::<ArchivedStrings, rancor::BoxedError>(&raw) else {
            panic!("sixteen 0xff bytes are not a strings archive");
        };
        let msg = e.to_string();
        assert!(!msg.contains("without error information"), "{msg}");
        assert!(msg.len() > 20, "{msg}");
    }
}
