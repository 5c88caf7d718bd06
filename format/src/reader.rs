//! Reading captures: map the file, find the blocks (from the footer index, or by scanning
//! when the file was cut off), load the small dictionary blocks, and hand out events blocks
//! as validated, zero-copy rkyv archives that can be decoded in parallel.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use memmap2::Mmap;
use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::block::{ArchivedEventsBlock, ArchivedIndex, BlockKind, Meta, Stats, Symbol, Target};
use crate::error::{Error, Result};
use crate::event::{Event, RawEvent, StackId, StrId};
use crate::frame::{
    chain_digest, hex, Digest, FileHeader, FrameHeader, Trailer, DIGEST_LEN, FILE_HEADER_LEN,
    FLAG_ZSTD, FRAME_HEADER_LEN, FRAME_MAGIC, TRAILER_LEN,
};

thread_local! {
    /// One zstd decompression context per thread: creating one per block costs more than
    /// decompressing a small block.
    static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
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
        crate::block::stack_pcs(&self.ranges, &self.pcs, id)
    }

    /// Number of stacks (id 0 included).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.len() <= 1
    }
}

/// An opened capture.
pub struct Capture {
    bytes: Bytes,
    header: FileHeader,
    blocks: Vec<BlockInfo>,
    recovery: Recovery,
    meta: Option<Meta>,
    targets: Vec<Target>,
    strings: Vec<String>,
    stacks: HashMap<u32, StackTable>,
    symbols: HashMap<u32, Vec<Symbol>>,
    stats: Option<Stats>,
    digest: Option<Digest>,
}

/// A decompressed, validated events block.
pub struct EventsPayload {
    raw: AlignedVec,
    pub info: BlockInfo,
}

impl EventsPayload {
    /// The archived block, accessed in place.
    pub fn archived(&self) -> &ArchivedEventsBlock {
        // SAFETY: `raw` was validated with rkyv's checked `access` for this exact type when the
        // payload was built (`Capture::events_block`) and is never mutated afterwards.
        unsafe { rkyv::access_unchecked::<ArchivedEventsBlock>(&self.raw) }
    }

    /// Decodes every event (raw form). Errors name the block.
    pub fn raw_events(&self) -> Result<Vec<RawEvent>> {
        self.archived()
            .iter()
            .map(|r| r.map_err(|e| Error::corrupt(self.info.offset, e.0)))
            .collect()
    }
}

impl Capture {
    /// Memory-maps and opens a capture file.
    pub fn open(path: impl AsRef<Path>) -> Result<Capture> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|e| Error::io(format!("opening {shown}"), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {shown}"), e))?
            .len();
        let bytes = if len == 0 {
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only; captures are not modified while analysed (a file
            // changing underneath would at worst give garbage bytes, which every read path
            // validates, never undefined behaviour in safe code that checks bounds).
            Bytes::Map(
                unsafe { Mmap::map(&file) }
                    .map_err(|e| Error::io(format!("mapping {shown}"), e))?,
            )
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
            recovery: Recovery::default(),
            meta: None,
            targets: Vec::new(),
            strings: vec![String::new()],
            stacks: HashMap::new(),
            symbols: HashMap::new(),
            stats: None,
            digest: None,
        };
        if !cap.load_index() {
            cap.scan();
        }
        cap.load_dictionaries()?;
        Ok(cap)
    }

    /// Uses the trailer and index when both are intact; false means "scan instead".
    fn load_index(&mut self) -> bool {
        let b = &self.bytes[..];
        if b.len() < FILE_HEADER_LEN + TRAILER_LEN {
            return false;
        }
        let Some(trailer) = Trailer::decode(&b[b.len() - TRAILER_LEN..]) else {
            return false;
        };
        if trailer.file_len != b.len() as u64 {
            return false;
        }
        let Ok(index_header) = self.frame_at(trailer.index_offset) else {
            return false;
        };
        if index_header.kind != BlockKind::Index as u16
            || trailer.index_offset + index_header.frame_len() != (b.len() - TRAILER_LEN) as u64
        {
            return false;
        }
        let info = BlockInfo {
            offset: trailer.index_offset,
            kind: index_header.kind,
            flags: index_header.flags,
            seq: index_header.seq,
            payload_len: index_header.payload_len,
            raw_len: index_header.raw_len,
            target: u32::MAX,
            t_min: 0,
            t_max: 0,
            events: 0,
        };
        let Ok(raw) = self.decompress(&info) else {
            return false;
        };
        let Ok(index) = rkyv::access::<ArchivedIndex, rancor::Error>(&raw) else {
            return false;
        };
        let mut blocks = Vec::with_capacity(index.entries.len());
        let mut expect_offset = FILE_HEADER_LEN as u64;
        for e in index.entries.iter() {
            let offset = e.offset.to_native();
            // Index entries must tile the file exactly, in order, and match their frames.
            let Ok(h) = self.frame_at(offset) else {
                return false;
            };
            if offset != expect_offset || h.kind != e.kind.to_native() || h.seq != e.seq.to_native()
            {
                return false;
            }
            expect_offset = offset + h.frame_len();
            blocks.push(BlockInfo {
                offset,
                kind: h.kind,
                flags: h.flags,
                seq: h.seq,
                payload_len: h.payload_len,
                raw_len: h.raw_len,
                target: e.target.to_native(),
                t_min: e.t_min.to_native(),
                t_max: e.t_max.to_native(),
                events: e.events.to_native(),
            });
        }
        if expect_offset != trailer.index_offset {
            return false;
        }
        self.blocks = blocks;
        self.recovery.complete = true;
        self.digest = Some(trailer.digest);
        true
    }

    /// Reads and checks the frame header at `offset`, and that the whole frame is present.
    fn frame_at(&self, offset: u64) -> Result<FrameHeader> {
        let b = &self.bytes[..];
        let start = usize::try_from(offset).map_err(|_| Error::corrupt(offset, "offset"))?;
        let h = FrameHeader::decode(b.get(start..).unwrap_or(&[]), offset)?;
        if offset + h.frame_len() > b.len() as u64 {
            return Err(Error::corrupt(offset, "block cut short"));
        }
        Ok(h)
    }

    /// Finds every complete block by walking frames and resynchronising on damage.
    fn scan(&mut self) {
        let len = self.bytes.len() as u64;
        let mut pos = FILE_HEADER_LEN as u64;
        let mut discarded = 0u64;
        let mut blocks = Vec::new();
        let mut damaged_at: Vec<u64> = Vec::new();
        while pos < len {
            match self.frame_at(pos) {
                Ok(h) => {
                    if h.kind != BlockKind::Index as u16 {
                        blocks.push(BlockInfo {
                            offset: pos,
                            kind: h.kind,
                            flags: h.flags,
                            seq: h.seq,
                            payload_len: h.payload_len,
                            raw_len: h.raw_len,
                            target: u32::MAX,
                            t_min: 0,
                            t_max: 0,
                            events: 0,
                        });
                    }
                    pos += h.frame_len();
                }
                Err(_) => {
                    // A finished file's trailer is not damage.
                    if len - pos == TRAILER_LEN as u64
                        && Trailer::decode(&self.bytes[pos as usize..]).is_some()
                    {
                        break;
                    }
                    let next = self.find_magic(pos + 1).unwrap_or(len);
                    if damaged_at.len() < 8 {
                        damaged_at.push(pos);
                    }
                    discarded += next - pos;
                    pos = next;
                }
            }
        }
        self.recovery.complete = false;
        self.recovery.bytes_discarded = discarded;
        let mut msg = format!(
            "capture has no valid index (cut off or damaged): recovered {} blocks by scanning",
            blocks.len()
        );
        if discarded > 0 {
            msg.push_str(&format!(
                ", {discarded} unreadable bytes discarded (first at byte {})",
                damaged_at.first().copied().unwrap_or(0)
            ));
        }
        self.recovery.warnings.push(msg);
        self.blocks = blocks;
    }

    fn find_magic(&self, from: u64) -> Option<u64> {
        let b = &self.bytes[..];
        let from = from as usize;
        b.get(from..)?
            .windows(FRAME_MAGIC.len())
            .position(|w| w == FRAME_MAGIC)
            .map(|p| (from + p) as u64)
    }

    /// Decompresses a block's payload into an aligned buffer, enforcing its declared size.
    fn decompress(&self, info: &BlockInfo) -> Result<AlignedVec> {
        let start = (info.offset as usize) + FRAME_HEADER_LEN;
        let payload = self
            .bytes
            .get(start..start + info.payload_len as usize)
            .ok_or_else(|| Error::corrupt(info.offset, "block payload out of bounds"))?;
        let mut out = AlignedVec::<16>::with_capacity(info.raw_len as usize);
        if info.flags & FLAG_ZSTD != 0 {
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

    fn load_dictionaries(&mut self) -> Result<()> {
        use crate::block::{ArchivedStacks, ArchivedStrings, ArchivedSymbols};
        let mut problems = Vec::new();
        let infos = self.blocks.clone();
        for (i, info) in infos.iter().enumerate() {
            let Some(kind) = BlockKind::from_u16(info.kind) else {
                continue; // a newer kind: skip it
            };
            let raw = match kind {
                BlockKind::Meta
                | BlockKind::Target
                | BlockKind::Strings
                | BlockKind::Stacks
                | BlockKind::Symbols
                | BlockKind::Stats => match self.decompress(info) {
                    Ok(r) => r,
                    Err(e) => {
                        problems.push(e.to_string());
                        continue;
                    }
                },
                BlockKind::Events if !self.recovery.complete => {
                    // Scanned files lack the index's counts: read them from the block.
                    match self.events_block(info) {
                        Ok(p) => {
                            let a = p.archived();
                            self.blocks[i].target = a.target.to_native();
                            self.blocks[i].t_min = a.t_min.to_native();
                            self.blocks[i].t_max = a.t_max.to_native();
                            self.blocks[i].events = a.count.to_native();
                        }
                        Err(e) => problems.push(e.to_string()),
                    }
                    continue;
                }
                _ => continue,
            };
            let bad =
                |e: rancor::Error| Error::corrupt(info.offset, format!("{}: {e}", kind.name()));
            let r: Result<()> = (|| {
                match kind {
                    BlockKind::Meta => {
                        let m = rkyv::from_bytes::<Meta, rancor::Error>(&raw).map_err(bad)?;
                        self.meta.get_or_insert(m);
                    }
                    BlockKind::Target => {
                        let t = rkyv::from_bytes::<Target, rancor::Error>(&raw).map_err(bad)?;
                        self.blocks[i].target = t.id;
                        self.targets.retain(|x| x.id != t.id);
                        self.targets.push(t);
                    }
                    BlockKind::Stats => {
                        self.stats =
                            Some(rkyv::from_bytes::<Stats, rancor::Error>(&raw).map_err(bad)?);
                    }
                    BlockKind::Strings => {
                        let s =
                            rkyv::access::<ArchivedStrings, rancor::Error>(&raw).map_err(bad)?;
                        if s.first_id.to_native() as usize != self.strings.len() {
                            return Err(Error::corrupt(info.offset, "string ids out of sequence"));
                        }
                        self.strings
                            .extend(s.strings.iter().map(|x| x.as_str().to_owned()));
                    }
                    BlockKind::Stacks => {
                        let s = rkyv::access::<ArchivedStacks, rancor::Error>(&raw).map_err(bad)?;
                        let target = s.target.to_native();
                        self.blocks[i].target = target;
                        let table = self.stacks.entry(target).or_insert_with(|| StackTable {
                            ranges: vec![(0, 0)],
                            pcs: Vec::new(),
                        });
                        if s.first_id.to_native() as usize != table.ranges.len() {
                            return Err(Error::corrupt(info.offset, "stack ids out of sequence"));
                        }
                        let total: u64 = s.lens.iter().map(|l| l.to_native() as u64).sum();
                        if total != s.pcs.len() as u64 {
                            return Err(Error::corrupt(info.offset, "stack lengths do not add up"));
                        }
                        let mut at = table.pcs.len() as u32;
                        for l in s.lens.iter() {
                            let l = l.to_native() as u32;
                            table.ranges.push((at, l));
                            at += l;
                        }
                        table.pcs.extend(s.pcs.iter().map(|p| p.to_native()));
                    }
                    BlockKind::Symbols => {
                        let s =
                            rkyv::access::<ArchivedSymbols, rancor::Error>(&raw).map_err(bad)?;
                        let target = s.target.to_native();
                        self.blocks[i].target = target;
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

    /// Decompresses and validates an events block.
    pub fn events_block(&self, info: &BlockInfo) -> Result<EventsPayload> {
        if info.kind != BlockKind::Events as u16 {
            return Err(Error::Invalid(format!(
                "block at byte {} is not an events block",
                info.offset
            )));
        }
        let raw = self.decompress(info)?;
        rkyv::access::<ArchivedEventsBlock, rancor::Error>(&raw)
            .map_err(|e| Error::corrupt(info.offset, format!("events: {e}")))?;
        Ok(EventsPayload { raw, info: *info })
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
            let target = p.archived().target.to_native();
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

    pub fn stats(&self) -> Option<&Stats> {
        self.stats.as_ref()
    }

    /// An interned string (empty for 0 or an unknown id).
    pub fn string(&self, id: StrId) -> &str {
        self.strings.get(id as usize).map_or("", |s| s.as_str())
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

    /// The evidence digest from the trailer (None when the file has none).
    pub fn digest(&self) -> Option<String> {
        self.digest.map(|d| hex(&d))
    }

    /// Checks every byte: header, each frame's checksum, sequence number and chained digest,
    /// each payload's decompression and archive validity, the index and the trailer.
    pub fn verify(&self) -> VerifyReport {
        let b = &self.bytes[..];
        let mut problems = Vec::new();
        let mut prev = self.header.seed_digest();
        let mut pos = FILE_HEADER_LEN as u64;
        let mut seq = 0u32;
        let mut frames = 0u32;
        let mut last_frame: Option<(u64, FrameHeader)> = None;
        let end = b.len() as u64;
        let trailer_at = end.saturating_sub(TRAILER_LEN as u64);
        let trailer = (end >= (FILE_HEADER_LEN + TRAILER_LEN) as u64)
            .then(|| Trailer::decode(&b[trailer_at as usize..]))
            .flatten();
        let frames_end = if trailer.is_some() { trailer_at } else { end };
        while pos < frames_end {
            match self.frame_at(pos) {
                Ok(h) if pos + h.frame_len() <= frames_end => {
                    let s = pos as usize;
                    let hdr = &b[s..s + FRAME_HEADER_LEN];
                    let payload =
                        &b[s + FRAME_HEADER_LEN..s + FRAME_HEADER_LEN + h.payload_len as usize];
                    let ds = s + FRAME_HEADER_LEN + h.payload_len as usize;
                    let stored: Digest = b[ds..ds + DIGEST_LEN].try_into().expect("32 bytes");
                    if h.seq != seq {
                        problems.push(format!(
                            "block at byte {pos} has sequence number {} where {seq} was expected: a block was removed, inserted or reordered",
                            h.seq
                        ));
                    }
                    if chain_digest(&prev, hdr, payload) != stored {
                        problems.push(format!(
                            "block {} at byte {pos} does not match its digest: its bytes or an earlier block's were changed",
                            h.seq
                        ));
                    }
                    let info = BlockInfo {
                        offset: pos,
                        kind: h.kind,
                        flags: h.flags,
                        seq: h.seq,
                        payload_len: h.payload_len,
                        raw_len: h.raw_len,
                        target: u32::MAX,
                        t_min: 0,
                        t_max: 0,
                        events: 0,
                    };
                    if let Err(e) = self.check_payload(&info) {
                        problems.push(e.to_string());
                    }
                    prev = stored;
                    seq = h.seq.wrapping_add(1);
                    frames += 1;
                    last_frame = Some((pos, h));
                    pos += h.frame_len();
                }
                Ok(_) | Err(_) => {
                    problems.push(format!(
                        "unreadable bytes from byte {pos} to {frames_end}: the file was cut off or damaged there"
                    ));
                    break;
                }
            }
        }
        match trailer {
            None => problems.push(
                "no valid trailer at the end of the file: the capture was cut off, or bytes were changed, removed or appended at its end".into(),
            ),
            Some(t) => {
                if t.file_len != end {
                    problems.push(format!(
                        "the trailer records a {}-byte file but it has {end} bytes: bytes were removed or appended",
                        t.file_len
                    ));
                }
                if t.digest != prev {
                    problems.push("the trailer's digest does not match the last block".into());
                }
                if t.blocks != frames {
                    problems.push(format!(
                        "the trailer records {} blocks but {frames} were found",
                        t.blocks
                    ));
                }
                match last_frame {
                    Some((at, h)) if at == t.index_offset && h.kind == BlockKind::Index as u16 => {}
                    _ => problems.push("the trailer does not point at the index block".into()),
                }
            }
        }
        if !self.recovery.complete && problems.is_empty() {
            problems.push("the index does not describe the blocks found".into());
        }
        VerifyReport {
            intact: problems.is_empty(),
            digest: hex(&prev),
            blocks: frames,
            problems,
        }
    }

    fn check_payload(&self, info: &BlockInfo) -> Result<()> {
        use crate::block::*;
        let raw = self.decompress(info)?;
        let bad = |e: rancor::Error| Error::corrupt(info.offset, format!("invalid archive: {e}"));
        match BlockKind::from_u16(info.kind) {
            Some(BlockKind::Meta) => rkyv::access::<ArchivedMeta, rancor::Error>(&raw).map(|_| ()),
            Some(BlockKind::Target) => {
                rkyv::access::<ArchivedTarget, rancor::Error>(&raw).map(|_| ())
            }
            Some(BlockKind::Strings) => {
                rkyv::access::<ArchivedStrings, rancor::Error>(&raw).map(|_| ())
            }
            Some(BlockKind::Stacks) => {
                rkyv::access::<ArchivedStacks, rancor::Error>(&raw).map(|_| ())
            }
            Some(BlockKind::Symbols) => {
                rkyv::access::<ArchivedSymbols, rancor::Error>(&raw).map(|_| ())
            }
            Some(BlockKind::Stats) => {
                rkyv::access::<ArchivedStats, rancor::Error>(&raw).map(|_| ())
            }
            Some(BlockKind::Index) => {
                rkyv::access::<ArchivedIndex, rancor::Error>(&raw).map(|_| ())
            }
            Some(BlockKind::Events) => {
                let a = rkyv::access::<ArchivedEventsBlock, rancor::Error>(&raw).map_err(bad)?;
                if let Some(Err(e)) = a.iter().find(|r| r.is_err()) {
                    return Err(Error::corrupt(info.offset, e.0));
                }
                Ok(())
            }
            None => Ok(()),
        }
        .map_err(bad)
    }
}

/// The result of [`Capture::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// True when every check passed.
    pub intact: bool,
    /// The digest of the last readable block (equals the trailer's when intact).
    pub digest: String,
    pub blocks: u32,
    /// One sentence per problem, with byte offsets.
    pub problems: Vec<String>,
}
