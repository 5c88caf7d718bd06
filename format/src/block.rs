//! Block payloads: what each kind of block holds once decompressed.
//!
//! Every payload is an rkyv archive of one of the structs below. Readers access the archive in
//! place after rkyv's checked validation (`bytecheck`), so a hostile payload is an error, not
//! undefined behaviour. Events are stored column-wise ([`EventsBlock`]) because that is what
//! makes them compress to under two bytes each.

use rkyv::{Archive, Deserialize, Serialize};

use crate::event::{Event, RawEvent, StackId, StrId, MAX_ARGS};
use crate::varint::{self, Cursor};

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

/// Events of one target, column-wise. See FORMAT.md ("Events block") for the encoding.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct EventsBlock {
    pub target: u32,
    pub count: u32,
    /// Timestamp of the first event (events are sorted by time within a block).
    pub t_min: u64,
    pub t_max: u64,
    /// Timestamps are stored in ticks of `1 << ts_shift` ns.
    pub ts_shift: u8,
    /// `schema[k]` is the number of args of event kind `k`.
    pub schema: Vec<u8>,
    pub kinds: Vec<u8>,
    pub ts: Vec<u8>,
    pub goids: Vec<u8>,
    pub args: Vec<u8>,
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

impl EventsBlock {
    /// Encodes `events` (sorted here by timestamp, stably) with timestamps truncated to ticks
    /// of `1 << ts_shift` ns.
    pub fn encode(target: u32, events: &mut [Event], ts_shift: u8) -> EventsBlock {
        events.sort_by_key(|e| e.ts);
        let mask = !((1u64 << ts_shift.min(63)) - 1);
        let mut schema: Vec<u8> = Vec::new();
        let n = events.len();
        let mut kinds = Vec::with_capacity(n);
        let mut ts = Vec::with_capacity(n * 2);
        let mut goids = Vec::with_capacity(n * 2);
        let mut args = Vec::with_capacity(n * 3);
        let t_min = events.first().map_or(0, |e| e.ts & mask);
        let t_max = events.last().map_or(0, |e| e.ts);
        let mut prev_ts = t_min;
        let mut coder = GoidCoder::default();
        let mut tids = GoidCoder::default();
        for e in events.iter() {
            let raw = e.to_raw();
            let k = raw.kind as usize;
            if schema.len() <= k {
                schema.resize(k + 1, 0);
            }
            schema[k] = raw.nargs;
            kinds.push(raw.kind);
            let t = e.ts & mask;
            varint::put(&mut ts, (t - prev_ts) >> ts_shift);
            prev_ts = t;
            varint::put(&mut goids, coder.encode(e.goid));
            let coded = coded_arg(raw.kind);
            for (i, &a) in raw.args[..raw.nargs as usize].iter().enumerate() {
                let a = match coded {
                    Coded::Goid if i == 0 => coder.encode(a),
                    Coded::Tid if i == 0 => tids.encode(a),
                    _ => a,
                };
                varint::put(&mut args, a);
            }
        }
        EventsBlock {
            target,
            count: n as u32,
            t_min,
            t_max,
            ts_shift,
            schema,
            kinds,
            ts,
            goids,
            args,
        }
    }
}

/// How the first arg of a kind is coded. Goroutine-valued args (the parent of a create, the
/// waker of an unblock) share the goid column's recent list: they are usually goroutines
/// that ran moments ago. Thread ids get a recent list of their own (a process has few).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Coded {
    Plain,
    Goid,
    Tid,
}

#[inline]
fn coded_arg(kind: u8) -> Coded {
    use crate::EventKind as K;
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

/// Entries in the recently-seen goroutine list.
const MRU: usize = 8;

/// Codes goroutine ids against the last [`MRU`] distinct ids seen in the block: a hit is its
/// position (0..8, one byte that compresses well); a miss is `8 + zigzag(id - previous miss)`.
/// Events of a goroutine cluster in time, so most ids are hits.
#[derive(Clone, Debug, Default)]
struct GoidCoder {
    recent: [u64; MRU],
    last_miss: u64,
}

impl GoidCoder {
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
    fn encode(&mut self, g: u64) -> u64 {
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
    fn decode(&mut self, v: u64) -> u64 {
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

/// Why an events block could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed events block: {0}")]
pub struct DecodeError(pub &'static str);

/// Iterates over the events of an archived events block without copying its columns.
pub struct EventsIter<'a> {
    remaining: u32,
    schema: &'a [u8],
    kinds: &'a [u8],
    kind_pos: usize,
    ts: Cursor<'a>,
    goids: Cursor<'a>,
    args: Cursor<'a>,
    shift: u8,
    prev_ts: u64,
    coder: GoidCoder,
    tids: GoidCoder,
    failed: bool,
}

impl ArchivedEventsBlock {
    /// The events, in time order. Malformed columns end the iteration with one `Err`.
    pub fn iter(&self) -> EventsIter<'_> {
        EventsIter {
            remaining: self.count.to_native(),
            schema: self.schema.as_slice(),
            kinds: self.kinds.as_slice(),
            kind_pos: 0,
            ts: Cursor::new(self.ts.as_slice()),
            goids: Cursor::new(self.goids.as_slice()),
            args: Cursor::new(self.args.as_slice()),
            shift: self.ts_shift,
            prev_ts: self.t_min.to_native(),
            coder: GoidCoder::default(),
            tids: GoidCoder::default(),
            failed: false,
        }
    }
}

impl ArchivedEventsBlock {
    /// Calls `f` for every event in time order, reusing one [`RawEvent`]: the fastest way to
    /// read a block. Stops at the first malformed column.
    #[inline]
    pub fn for_each_raw(&self, mut f: impl FnMut(&RawEvent)) -> Result<(), DecodeError> {
        let mut it = self.iter();
        let mut ev = RawEvent {
            kind: 0,
            ts: 0,
            goid: 0,
            nargs: 0,
            args: [0; MAX_ARGS],
        };
        for _ in 0..it.remaining {
            it.decode_into(&mut ev)?;
            f(&ev);
        }
        it.finish_check()
    }
}

impl<'a> EventsIter<'a> {
    #[inline]
    fn next_event(&mut self) -> Result<RawEvent, DecodeError> {
        let mut ev = RawEvent {
            kind: 0,
            ts: 0,
            goid: 0,
            nargs: 0,
            args: [0; MAX_ARGS],
        };
        self.decode_into(&mut ev)?;
        Ok(ev)
    }

    /// Decodes the next event into `ev` (args past `nargs` keep stale values).
    #[inline(always)]
    fn decode_into(&mut self, ev: &mut RawEvent) -> Result<(), DecodeError> {
        let kind = *self
            .kinds
            .get(self.kind_pos)
            .ok_or(DecodeError("kinds column shorter than the event count"))?;
        self.kind_pos += 1;
        let nargs = *self
            .schema
            .get(kind as usize)
            .ok_or(DecodeError("event kind missing from the block schema"))?;
        let dt = self
            .ts
            .get()
            .ok_or(DecodeError("timestamp column truncated"))?;
        if self.shift > 63 || dt.leading_zeros() < self.shift as u32 {
            return Err(DecodeError("timestamp delta out of range"));
        }
        self.prev_ts = self
            .prev_ts
            .checked_add(dt << self.shift)
            .ok_or(DecodeError("timestamp overflow"))?;
        let dg = self
            .goids
            .get()
            .ok_or(DecodeError("goroutine column truncated"))?;
        ev.kind = kind;
        ev.ts = self.prev_ts;
        ev.goid = self.coder.decode(dg);
        ev.nargs = nargs.min(MAX_ARGS as u8);
        let coded = coded_arg(kind);
        for i in 0..nargs as usize {
            let mut a = self
                .args
                .get()
                .ok_or(DecodeError("args column truncated"))?;
            if i == 0 {
                match coded {
                    Coded::Goid => a = self.coder.decode(a),
                    Coded::Tid => a = self.tids.decode(a),
                    Coded::Plain => {}
                }
            }
            if i < MAX_ARGS {
                ev.args[i] = a;
            }
        }
        Ok(())
    }

    fn finish_check(&self) -> Result<(), DecodeError> {
        if self.kind_pos != self.kinds.len()
            || !self.ts.is_empty()
            || !self.goids.is_empty()
            || !self.args.is_empty()
        {
            return Err(DecodeError("columns longer than the event count"));
        }
        Ok(())
    }
}

impl Iterator for EventsIter<'_> {
    type Item = Result<RawEvent, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            // Check once, at the end, that nothing was left over.
            self.failed = true;
            return self.finish_check().err().map(Err);
        }
        self.remaining -= 1;
        let r = self.next_event();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

/// Resolves a stack id to PCs in an owned stack table (id 0 is the empty stack).
pub fn stack_pcs<'a>(table: &[(u32, u32)], pcs: &'a [u64], id: StackId) -> &'a [u64] {
    match table.get(id as usize) {
        Some(&(start, len)) => pcs
            .get(start as usize..start as usize + len as usize)
            .unwrap_or(&[]),
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::any_event;
    use proptest::prelude::*;

    fn roundtrip(target: u32, mut events: Vec<Event>, shift: u8) -> Vec<Event> {
        let block = EventsBlock::encode(target, &mut events, shift);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&block).unwrap();
        let archived = rkyv::access::<ArchivedEventsBlock, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(archived.target.to_native(), target);
        archived
            .iter()
            .map(|r| r.unwrap().to_event().unwrap())
            .collect()
    }

    proptest! {
        #[test]
        fn events_roundtrip(mut events in proptest::collection::vec(any_event(), 0..200)) {
            // Keep timestamps within a realistic span so deltas fit.
            for e in &mut events { e.ts %= 1 << 62; }
            let mut sorted = events.clone();
            sorted.sort_by_key(|e| e.ts);
            prop_assert_eq!(roundtrip(7, events, 0), sorted);
        }

        #[test]
        fn events_roundtrip_quantised(mut events in proptest::collection::vec(any_event(), 0..50), shift in 0u8..10) {
            for e in &mut events { e.ts %= 1 << 62; }
            let mut expect = events.clone();
            expect.sort_by_key(|e| e.ts);
            for e in &mut expect { e.ts &= !((1u64 << shift) - 1); }
            prop_assert_eq!(roundtrip(1, events, shift), expect);
        }
    }

    #[test]
    fn short_columns_are_errors_not_panics() {
        let mut events = vec![
            Event {
                ts: 10,
                goid: 5,
                data: crate::EventData::GoStart { tid: 3 },
            };
            3
        ];
        let mut block = EventsBlock::encode(0, &mut events, 0);
        block.args.pop();
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&block).unwrap();
        let archived = rkyv::access::<ArchivedEventsBlock, rkyv::rancor::Error>(&bytes).unwrap();
        let results: Vec<_> = archived.iter().collect();
        assert!(results.last().unwrap().is_err());
        block.count = 2;
        block.args.push(3);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&block).unwrap();
        let archived = rkyv::access::<ArchivedEventsBlock, rkyv::rancor::Error>(&bytes).unwrap();
        assert!(
            archived.iter().any(|r| r.is_err()),
            "leftover bytes must be reported"
        );
    }
}
