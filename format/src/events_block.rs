//! FORMAT.md §5 "Events blocks": the events of one target stored column-wise (kinds,
//! time deltas, goroutine ids, args) so that zstd sees homogeneous streams; that is what
//! makes an event compress to under two bytes. [`EventsBlock::encode`] writes the columns;
//! [`ArchivedEventsBlock::iter`] and [`ArchivedEventsBlock::for_each_raw`] read them in
//! place, rejecting a malformed block with a [`DecodeError`] rather than a panic.

use rkyv::{Archive, Deserialize, Serialize};

use crate::event::{Event, RawEvent, MAX_ARGS};
use crate::recent_list::{coded_arg, Coded, RecentList};
use crate::varint::{self, Cursor};

/// Events of one target, column-wise (FORMAT.md §5 has the encoding).
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
        let mut goroutines = RecentList::default();
        let mut threads = RecentList::default();
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
            varint::put(&mut goids, goroutines.encode(e.goid));
            let coded = coded_arg(raw.kind);
            for (i, &a) in raw.args[..raw.nargs as usize].iter().enumerate() {
                let a = match coded {
                    Coded::Goid if i == 0 => goroutines.encode(a),
                    Coded::Tid if i == 0 => threads.encode(a),
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

/// The event a decoder starts from and overwrites.
const BLANK: RawEvent = RawEvent {
    kind: 0,
    ts: 0,
    goid: 0,
    nargs: 0,
    args: [0; MAX_ARGS],
};

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
    goroutines: RecentList,
    threads: RecentList,
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
            goroutines: RecentList::default(),
            threads: RecentList::default(),
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
        let mut ev = BLANK;
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
        let mut ev = BLANK;
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
        ev.goid = self.goroutines.decode(dg);
        ev.nargs = nargs.min(MAX_ARGS as u8);
        let coded = coded_arg(kind);
        for i in 0..nargs as usize {
            let mut a = self
                .args
                .get()
                .ok_or(DecodeError("args column truncated"))?;
            if i == 0 {
                match coded {
                    Coded::Goid => a = self.goroutines.decode(a),
                    Coded::Tid => a = self.threads.decode(a),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::any_event;
    use crate::event::EventData;
    use proptest::prelude::*;

    fn roundtrip(target: u32, mut events: Vec<Event>, shift: u8) -> Vec<Event> {
        let block = EventsBlock::encode(target, &mut events, shift);
        let bytes = rkyv::to_bytes::<rancor::BoxedError>(&block).unwrap();
        let archived = rkyv::access::<ArchivedEventsBlock, rancor::BoxedError>(&bytes).unwrap();
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
                data: EventData::GoStart { tid: 3 },
            };
            3
        ];
        let mut block = EventsBlock::encode(0, &mut events, 0);
        block.args.pop();
        let bytes = rkyv::to_bytes::<rancor::BoxedError>(&block).unwrap();
        let archived = rkyv::access::<ArchivedEventsBlock, rancor::BoxedError>(&bytes).unwrap();
        let results: Vec<_> = archived.iter().collect();
        assert!(results.last().unwrap().is_err());
        block.count = 2;
        block.args.push(3);
        let bytes = rkyv::to_bytes::<rancor::BoxedError>(&block).unwrap();
        let archived = rkyv::access::<ArchivedEventsBlock, rancor::BoxedError>(&bytes).unwrap();
        assert!(
            archived.iter().any(|r| r.is_err()),
            "leftover bytes must be reported"
        );
    }
}
