//! FORMAT.md §5 "Recent-list coding" and "Argument codings": goroutine and thread ids coded
//! against the few ids seen last in the block, and how each arg is stored.

use crate::varint;

/// How an arg is stored in the args column (FORMAT.md §5, "Argument codings"). Version-2
/// blocks record it for every arg of every kind they hold, so that a reader that does not
/// know a kind still decodes it, and keeps its recent lists in step.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgCoding {
    /// A plain varint.
    Plain = 0,
    /// Coded against the goroutine recent list (shared with the goid column).
    Goroutine = 1,
    /// Coded against the thread recent list.
    Thread = 2,
    /// 0, or 1 + the position of a 64-bit value in the block's `ids` column.
    Id = 3,
}

impl ArgCoding {
    /// The coding with this number, if this version knows it.
    pub fn from_u8(v: u8) -> Option<ArgCoding> {
        Some(match v {
            0 => ArgCoding::Plain,
            1 => ArgCoding::Goroutine,
            2 => ArgCoding::Thread,
            3 => ArgCoding::Id,
            _ => return None,
        })
    }
}

/// How arg `i` of `kind` is coded in a version-1 block, which does not record it: the first
/// arg of the kinds below, every other arg plain. Fixed forever for version-1 files; new
/// files record their codings instead.
#[inline]
pub(crate) fn legacy_coding(kind: u8, i: usize) -> ArgCoding {
    use crate::event::EventKind as K;
    const CREATE: u8 = K::GoCreate as u8;
    const INFO: u8 = K::GoInfo as u8;
    const UNBLOCK: u8 = K::GoUnblock as u8;
    const START: u8 = K::GoStart as u8;
    const SYS_IN: u8 = K::SyscallEnter as u8;
    const SYS_OUT: u8 = K::SyscallExit as u8;
    const OFF: u8 = K::ThreadOff as u8;
    const ON: u8 = K::ThreadOn as u8;
    const SAMPLE: u8 = K::CpuSample as u8;
    match (kind, i) {
        (CREATE | INFO | UNBLOCK, 0) => ArgCoding::Goroutine,
        (START | SYS_IN | SYS_OUT | OFF | ON | SAMPLE, 0) => ArgCoding::Thread,
        _ => ArgCoding::Plain,
    }
}

/// Entries in a recent list.
const MRU: usize = 8;

/// Codes ids against the last [`MRU`] distinct ids seen in the block: a hit is its position
/// (0..8, one byte that compresses well); a miss is `8 + zigzag(id - previous miss)`. Events
/// of a goroutine cluster in time, so most ids are hits.
#[derive(Clone, Debug, Default)]
pub(crate) struct RecentList {
    recent: [u64; MRU],
    last_miss: u64,
}

impl RecentList {
    #[inline]
    fn touch(&mut self, i: usize, g: u64) {
        // Moves entries 0..i one place down and puts `g` first. Written as a select per
        // entry: both `copy_within` and a plain shifting loop became a memmove call per
        // event, while this compiles to a few vector blends.
        let i = i.min(MRU - 1);
        let old = self.recent;
        let mut new = [g; MRU];
        for j in 1..MRU {
            new[j] = if j <= i { old[j - 1] } else { old[j] };
        }
        self.recent = new;
    }

    #[inline]
    pub(crate) fn encode(&mut self, g: u64) -> u64 {
        if let Some(i) = self.recent.iter().position(|&x| x == g) {
            self.touch(i, g);
            return i as u64;
        }
        let v = MRU as u64 + varint::zigzag(g.wrapping_sub(self.last_miss) as i64);
        self.last_miss = g;
        self.touch(MRU - 1, g);
        v
    }

    #[inline]
    pub(crate) fn decode(&mut self, v: u64) -> u64 {
        if v < MRU as u64 {
            let g = self.recent[v as usize];
            self.touch(v as usize, g);
            return g;
        }
        let g = self
            .last_miss
            .wrapping_add(varint::unzigzag(v - MRU as u64) as u64);
        self.last_miss = g;
        self.touch(MRU - 1, g);
        g
    }
}
