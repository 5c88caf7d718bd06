//! Reading captures: map the file, find the blocks (`locate`, FORMAT.md §2), load the small
//! dictionary blocks (`dictionaries`), and hand out events blocks as validated, zero-copy
//! rkyv archives that can be decoded in parallel. `verify` checks every byte (§3).

mod dictionaries;
mod integrity;
mod locate;
mod verify;

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use memmap2::Mmap;
use rkyv::rancor;
use rkyv::util::AlignedVec;

pub use dictionaries::StackTable;
pub use integrity::Evidence;
pub use verify::VerifyReport;

use crate::error::{Error, Result};
use crate::event::{Event, RawEvent, StackId, StrId};
use crate::events_block::{ArchivedEventsBlock, ArchivedEventsBlockV1, EventsView};
use crate::frame::{
    max_ratio, ratio_ok, BlockSummary, FileHeader, FrameHeader, Trailer, FLAG_SUMMARY, FLAG_ZSTD,
    FRAME_HEADER_LEN, HEADER_FLAG_ZSTD_CHECKSUMS, RATIO_SLACK, SUMMARY_LEN, TRAILER_LEN,
    VERSION_RECORDED_CODINGS,
};
use crate::payload::{BlockKind, Meta, Seal, Stats, Symbol, Target};

thread_local! {
    /// One zstd decompression context per thread: creating one per block costs more than
    /// decompressing a small block.
    static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

/// Whether `file`, `len` bytes long, ends in a trailer recording that length: a finished
/// capture, which its writer no longer changes.
fn finished(file: &File, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut t = [0u8; TRAILER_LEN];
    len >= TRAILER_LEN as u64
        && file.read_exact_at(&mut t, len - TRAILER_LEN as u64).is_ok()
        && Trailer::decode(&t).is_some_and(|t| t.file_len == len)
}

/// Whether a zstd frame declares a content checksum: bit 2 of the Frame_Header_Descriptor,
/// the byte after the 4-byte magic (RFC 8878, section 3.1.1.1.1). zstd then checks it while
/// decompressing.
fn has_zstd_checksum(frame: &[u8]) -> bool {
    frame.len() > 4 && frame[..4] == [0x28, 0xB5, 0x2F, 0xFD] && frame[4] & 0b100 != 0
}

/// Where a block is and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    pub offset: u64,
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload_len: u32,
    pub raw_len: u32,
    /// Target id for per-target blocks, else u32::MAX.
    pub target: u32,
    pub t_min: u64,
    pub t_max: u64,
    pub events: u32,
}

impl BlockInfo {
    /// This block's entry in an index, placed at `offset` of the file that index ends.
    pub(crate) fn index_entry(&self, offset: u64) -> crate::payload::IndexEntry {
        crate::payload::IndexEntry {
            offset,
            kind: self.kind,
            seq: self.seq,
            target: self.target,
            t_min: self.t_min,
            t_max: self.t_max,
            events: self.events,
        }
    }

    /// A block known only from its frame header: no target or time range yet.
    fn from_frame(offset: u64, h: &FrameHeader) -> BlockInfo {
        BlockInfo {
            offset,
            kind: h.kind,
            flags: h.flags,
            seq: h.seq,
            payload_len: h.payload_len,
            raw_len: h.raw_len,
            target: u32::MAX,
            t_min: 0,
            t_max: 0,
            events: 0,
        }
    }
}

/// How the block list was obtained and what was lost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The file has a valid trailer and index covering every block.
    pub complete: bool,
    /// Bytes that belong to no readable block (a cut-off tail, or damage).
    pub bytes_discarded: u64,
    /// What the reader noticed, one sentence each, for warnings.
    pub warnings: Vec<String>,
}

/// Bytes of a capture: a memory map of a file, or an owned buffer.
enum Bytes {
    Map(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An opened capture.
pub struct Capture {
    bytes: Bytes,
    header: FileHeader,
    /// Every block but index blocks, in file order, without those whose chain link failed.
    blocks: Vec<BlockInfo>,
    /// The index frames found (one in a finished file).
    index_frames: Vec<BlockInfo>,
    recovery: Recovery,
    evidence: Evidence,
    meta: Option<Meta>,
    targets: Vec<Target>,
    strings: Vec<String>,
    stacks: HashMap<u32, StackTable>,
    symbols: HashMap<u32, Vec<Symbol>>,
    stats: Option<Stats>,
    seal: Option<Seal>,
}

/// A decompressed, validated events block.
pub struct EventsPayload {
    raw: AlignedVec,
    /// Which layout `raw` holds: [`ArchivedEventsBlock`] (format version 2 on) or
    /// [`ArchivedEventsBlockV1`].
    v1: bool,
    pub info: BlockInfo,
}

impl EventsPayload {
    /// The block, read in place.
    pub fn block(&self) -> EventsView<'_> {
        if self.v1 {
            // SAFETY: `raw` was validated with rkyv's checked `access` for this exact type
            // when the payload was built (`Capture::events_block`) and is never mutated
            // afterwards.
            EventsView::from(unsafe { rkyv::access_unchecked::<ArchivedEventsBlockV1>(&self.raw) })
        } else {
            // SAFETY: as above, validated as this type in `Capture::events_block`.
            EventsView::from(unsafe { rkyv::access_unchecked::<ArchivedEventsBlock>(&self.raw) })
        }
    }

    /// Decodes every event (raw form). Errors name the block.
    pub fn raw_events(&self) -> Result<Vec<RawEvent>> {
        self.block()
            .iter()
            .map(|r| r.map_err(|e| Error::corrupt(self.info.offset, e.0)))
            .collect()
    }
}

impl Capture {
    /// Opens a capture file: memory-mapped when it is finished (it ends in a trailer that
    /// records its length), read into memory otherwise. A file still being written, or cut
    /// back by a writer after a full disk, may shrink while it is open, and a shrunk map
    /// kills the reader with SIGBUS on its next access; a copy in memory cannot shrink.
    pub fn open(path: impl AsRef<Path>) -> Result<Capture> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let mut file = File::open(path).map_err(|e| Error::io(format!("opening {shown}"), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {shown}"), e))?
            .len();
        let bytes = if finished(&file, len) {
            // SAFETY: the map is read-only, and a finished capture is not written again;
            // one cut short by someone else while open could still fault (RELIABILITY.md
            // §3 says so). A file that changes underneath gives at worst bytes that every
            // read path validates, never undefined behaviour in safe code.
            Bytes::Map(
                unsafe { Mmap::map(&file) }
                    .map_err(|e| Error::io(format!("mapping {shown}"), e))?,
            )
        } else {
            use std::io::Read;
            // What is there now, at most the length seen: the file may grow or shrink.
            let mut v = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.by_ref()
                .take(len)
                .read_to_end(&mut v)
                .map_err(|e| Error::io(format!("reading {shown}"), e))?;
            Bytes::Owned(v)
        };
        Self::from_bytes_inner(bytes)
    }

    /// Opens a capture held in memory.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Capture> {
        Self::from_bytes_inner(Bytes::Owned(bytes))
    }

    fn from_bytes_inner(bytes: Bytes) -> Result<Capture> {
        let header = FileHeader::decode(&bytes)?;
        let mut cap = Capture {
            bytes,
            header,
            blocks: Vec::new(),
            index_frames: Vec::new(),
            recovery: Recovery::default(),
            evidence: Evidence::default(),
            meta: None,
            targets: Vec::new(),
            strings: vec![String::new()],
            stacks: HashMap::new(),
            symbols: HashMap::new(),
            stats: None,
            seal: None,
        };
        if !cap.load_index() {
            cap.scan();
        }
        // Before any payload is used: a block whose link fails is left out everywhere.
        cap.check_integrity();
        cap.load_dictionaries()?;
        Ok(cap)
    }

    /// The bytes of the file from `start`, `len` of them, if it has them.
    pub(crate) fn raw(&self, start: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(start).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.bytes.get(start..end)
    }

    /// The summary in front of a block's payload, when its frame has one.
    fn summary(&self, info: &BlockInfo) -> Option<BlockSummary> {
        if info.flags & FLAG_SUMMARY == 0 {
            return None;
        }
        let start = (info.offset as usize).checked_add(FRAME_HEADER_LEN)?;
        BlockSummary::decode(self.bytes.get(start..)?)
    }

    /// A block known from its frame: with its summary's target, time range and count when
    /// the frame has one (otherwise those are unknown until the block is decoded).
    fn block_at(&self, offset: u64, h: &FrameHeader) -> BlockInfo {
        let info = BlockInfo::from_frame(offset, h);
        match self.summary(&info) {
            Some(s) => BlockInfo {
                target: s.target,
                events: s.events,
                t_min: s.t_min,
                t_max: s.t_max,
                ..info
            },
            None => info,
        }
    }

    /// Decompresses a block's payload into an aligned buffer, enforcing its declared size.
    fn decompress(&self, info: &BlockInfo) -> Result<AlignedVec> {
        // A summary in front of the zstd frame is not part of it.
        let skip = if info.flags & FLAG_SUMMARY != 0 {
            SUMMARY_LEN
        } else {
            0
        };
        let start = (info.offset as usize) + FRAME_HEADER_LEN;
        let payload = self
            .bytes
            .get(start + skip..start + info.payload_len as usize)
            .ok_or_else(|| Error::corrupt(info.offset, "block payload out of bounds"))?;
        if !ratio_ok(info.kind, payload.len() as u32, info.raw_len) {
            return Err(Error::corrupt(
                info.offset,
                format!(
                    "block declares {} bytes from {} compressed, beyond the reader's bound of {}:1 (plus {} KiB): the file is damaged or hostile",
                    info.raw_len,
                    payload.len(),
                    max_ratio(info.kind),
                    RATIO_SLACK >> 10
                ),
            ));
        }
        let mut out = AlignedVec::<16>::with_capacity(info.raw_len as usize);
        if info.flags & FLAG_ZSTD != 0 {
            // Exactly one zstd frame: bytes after it (a skippable frame, say) would be data
            // the digest covers but no reader shows.
            match zstd::zstd_safe::find_frame_compressed_size(payload) {
                Ok(n) if n == payload.len() => {}
                _ => {
                    return Err(Error::corrupt(
                        info.offset,
                        "block payload is not exactly one zstd frame",
                    ))
                }
            }
            if self.header.flags & HEADER_FLAG_ZSTD_CHECKSUMS != 0 && !has_zstd_checksum(payload) {
                return Err(Error::corrupt(
                    info.offset,
                    "zstd frame lacks the content checksum this file's header promises",
                ));
            }
            // The zstd frame must declare exactly the raw length the header does: a lying
            // header is refused before anything is allocated for it.
            match zstd::zstd_safe::get_frame_content_size(payload) {
                Ok(Some(n)) if n == info.raw_len as u64 => {}
                _ => {
                    return Err(Error::corrupt(
                        info.offset,
                        "zstd frame size differs from the declared block size",
                    ))
                }
            }
            // The declared raw length bounds the allocation; zstd refuses to write past it.
            out.resize(info.raw_len as usize, 0);
            let n = DCTX
                .with(|d| match d.borrow_mut().as_mut() {
                    Some(d) => d.decompress_to_buffer(payload, out.as_mut_slice()),
                    None => zstd::bulk::decompress_to_buffer(payload, out.as_mut_slice()),
                })
                .map_err(|e| Error::corrupt(info.offset, format!("zstd: {e}")))?;
            if n != info.raw_len as usize {
                return Err(Error::corrupt(
                    info.offset,
                    "decompressed size differs from the declared size",
                ));
            }
        } else {
            if payload.len() != info.raw_len as usize {
                return Err(Error::corrupt(info.offset, "raw block length mismatch"));
            }
            out.extend_from_slice(payload);
        }
        Ok(out)
    }

    /// Decompresses and validates an events block.
    pub fn events_block(&self, info: &BlockInfo) -> Result<EventsPayload> {
        if info.kind != BlockKind::Events as u16 {
            return Err(Error::Invalid(format!(
                "block at byte {} is not an events block",
                info.offset
            )));
        }
        let raw = self.decompress(info)?;
        let bad = |e: rancor::BoxedError| Error::corrupt(info.offset, format!("events: {e}"));
        let v1 = self.header.version < VERSION_RECORDED_CODINGS;
        let view = if v1 {
            EventsView::from(
                rkyv::access::<ArchivedEventsBlockV1, rancor::BoxedError>(&raw).map_err(bad)?,
            )
        } else {
            EventsView::from(
                rkyv::access::<ArchivedEventsBlock, rancor::BoxedError>(&raw).map_err(bad)?,
            )
        };
        view.check()
            .map_err(|e| Error::corrupt(info.offset, e.to_string()))?;
        if let Some(s) = self.summary(info) {
            if (s.target, s.events, s.t_min, s.t_max)
                != (view.target, view.count, view.t_min, view.t_max)
            {
                return Err(Error::corrupt(
                    info.offset,
                    "events block summary differs from the block's content",
                ));
            }
        }
        Ok(EventsPayload {
            raw,
            v1,
            info: *info,
        })
    }

    /// Every block, in file order (the index block excluded).
    pub fn blocks(&self) -> &[BlockInfo] {
        &self.blocks
    }

    /// The events blocks, in file order.
    pub fn event_blocks(&self) -> impl Iterator<Item = &BlockInfo> {
        self.blocks
            .iter()
            .filter(|b| b.kind == BlockKind::Events as u16)
    }

    /// Decodes every events block in parallel and maps each through `f`, in file order.
    #[cfg(feature = "parallel")]
    pub fn par_map_blocks<T, F>(&self, f: F) -> Vec<Result<T>>
    where
        T: Send,
        F: Fn(&EventsPayload) -> Result<T> + Sync + Send,
    {
        use rayon::prelude::*;
        let infos: Vec<BlockInfo> = self.event_blocks().copied().collect();
        infos
            .par_iter()
            .map(|info| self.events_block(info).and_then(|p| f(&p)))
            .collect()
    }

    /// Every event of every target as `(target, event)`, sorted by time. Kinds this version
    /// does not know are skipped. Convenient for small captures and tests; analyses of large
    /// captures should use [`Capture::par_map_blocks`].
    pub fn events(&self) -> Result<Vec<(u32, Event)>> {
        let mut out = Vec::new();
        for info in self.event_blocks() {
            let p = self.events_block(info)?;
            let target = p.block().target;
            for raw in p.raw_events()? {
                if let Some(e) = raw.to_event() {
                    out.push((target, e));
                }
            }
        }
        out.sort_by_key(|(_, e)| e.ts);
        Ok(out)
    }

    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub fn meta(&self) -> Option<&Meta> {
        self.meta.as_ref()
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// What `ganalyze seal` recorded, when this capture was sealed after the fact rather than
    /// finished by gcap.
    pub fn sealed(&self) -> Option<&Seal> {
        self.seal.as_ref()
    }

    pub fn stats(&self) -> Option<&Stats> {
        self.stats.as_ref()
    }

    /// An interned string (empty for 0 or an unknown id).
    pub fn string(&self, id: StrId) -> &str {
        self.strings.get(id as usize).map_or("", |s| s.as_str())
    }

    /// The string table, indexed by id (id 0 is the empty string; a lost block's ids are
    /// empty too).
    pub fn strings(&self) -> &[String] {
        &self.strings
    }

    /// Every symbol of a target, sorted by PC.
    pub fn symbols(&self, target: u32) -> &[Symbol] {
        self.symbols.get(&target).map_or(&[], |v| v.as_slice())
    }

    /// The stack table of a target.
    pub fn stacks(&self, target: u32) -> Option<&StackTable> {
        self.stacks.get(&target)
    }

    /// PCs of a stack of a target.
    pub fn stack(&self, target: u32, id: StackId) -> &[u64] {
        self.stacks.get(&target).map_or(&[], |t| t.get(id))
    }

    /// The source locations of a PC (inlined frames innermost first; empty when unknown).
    pub fn symbolize(&self, target: u32, pc: u64) -> &[Symbol] {
        let Some(v) = self.symbols.get(&target) else {
            return &[];
        };
        let lo = v.partition_point(|s| s.pc < pc);
        let hi = v.partition_point(|s| s.pc <= pc);
        &v[lo..hi]
    }

    /// Total events according to the block list.
    pub fn event_count(&self) -> u64 {
        self.event_blocks().map(|b| b.events as u64).sum()
    }

    /// First and last event time over all events blocks.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        let mut it = self.event_blocks().filter(|b| b.events > 0);
        let first = it.next()?;
        Some(it.fold((first.t_min, first.t_max), |(a, b), x| {
            (a.min(x.t_min), b.max(x.t_max))
        }))
    }

    /// Total size in bytes.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The evidence digest (FORMAT.md §3.1): the trailer's when the file is intact and
    /// finished, else BLAKE3 of the file's bytes. [`Capture::evidence`] says which.
    pub fn digest(&self) -> &str {
        &self.evidence.digest
    }
}
