//! FORMAT.md §5 "Recent-list coding": goroutine and thread ids coded against the few ids
//! seen last in the block, and which args of which kinds are coded that way.

use crate::varint;

/// How the first arg of a kind is coded. Goroutine-valued args (the parent of a create, the
/// waker of an unblock) share the goid column's recent list: they are usually goroutines
/// that ran moments ago. Thread ids get a recent list of their own (a process has few).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coded {
    Plain,
    Goid,
    Tid,
}

/// How the first arg of an event of `kind` is coded.
#[inline]
pub(crate) fn coded_arg(kind: u8) -> Coded {
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
    match kind {
        CREATE | INFO | UNBLOCK => Coded::Goid,
        START | SYS_IN | SYS_OUT | OFF | ON | SAMPLE => Coded::Tid,
        _ => Coded::Plain,
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
