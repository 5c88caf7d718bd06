//! Writing captures: events are buffered per target, interned strings and stacks go out in
//! dictionary blocks *before* the first events block that uses them, and every block is
//! written with a single `write` of the whole frame, so a capture cut off at any byte keeps
//! every block that was complete.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use rkyv::rancor;

use crate::chain::{chain_digest, seed_digest, Digest};
use crate::error::{Error, Result};
use crate::event::{Event, StackId, StrId};
use crate::events_block::EventsBlock;
use crate::frame::{
    BlockSummary, FileHeader, FrameHeader, Trailer, DIGEST_LEN, FILE_HEADER_LEN, FLAG_SUMMARY,
    FLAG_ZSTD, FORMAT_VERSION, FRAME_HEADER_LEN, HEADER_FLAG_ZSTD_CHECKSUMS, MAX_PAYLOAD_LEN,
    MAX_RAW_LEN, TRAILER_LEN,
};
use crate::payload::{
    BlockKind, Index, IndexEntry, Meta, Seal, Stacks, Stats, Strings, Symbol, Symbols, Target,
};
use crate::reader::{BlockInfo, Capture};

/// How the writer batches and compresses.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Events per block (per target) before the block is written.
    pub block_events: usize,
    /// Timestamps are kept in ticks of `1 << ts_shift` ns (see FORMAT.md on precision).
    pub ts_shift: u8,
    /// zstd level for block payloads.
    pub zstd_level: i32,
    /// The random file id seeding the hash chain; `None` draws one from the OS.
    pub file_id: Option<[u8; 16]>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            block_events: 1 << 16,
            ts_shift: 5,
            zstd_level: 3,
            file_id: None,
        }
    }
}

/// What a finished (or failed) writer produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Events written, by kind number.
    pub events_by_kind: Vec<(u8, u64)>,
    pub events: u64,
    pub blocks: u32,
    pub bytes: u64,
    /// The evidence digest (hex) of the finished file.
    pub digest: String,
}

/// Creates a capture file with mode 0600, refusing to follow a symlink or to replace an
/// existing file unless `force` is set (then an existing regular file is replaced).
pub fn create_file(path: &Path, force: bool) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => return Err(Error::Symlink { path: shown }),
        Ok(_) if !force => return Err(Error::Exists { path: shown }),
        Ok(_) => {
            std::fs::remove_file(path).map_err(|e| Error::io(format!("removing {shown}"), e))?
        }
        Err(_) => {}
    }
    // O_EXCL: never write through a symlink planted between the check and the open.
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Exists {
                path: shown.clone(),
            },
            _ => Error::io(format!("creating {shown}"), e),
        })?;
    // The new name must survive a host crash too, not only the bytes written under it.
    sync_dir_of(path)?;
    Ok(file)
}

/// fsyncs the directory holding `path`, so that a file created or replaced there is still
/// found after a host crash.
pub fn sync_dir_of(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing the directory {}", dir.display()), e))
}

/// Turns a capture gcap did not finish (cut off by a crash, a kill or a full disk, or
/// damaged) into a finished one, written to `out`: the file header and the source's
/// unbroken chain of frames from byte 32 are copied byte for byte (so every digest gcap
/// published for them still matches), then a [`Seal`] block saying what was done, the index
/// and the trailer. Everything after the first break in the chain is left out and counted.
/// The sealed file's evidence digest is new; the seal records the source's.
pub fn seal<W: Write>(
    cap: &Capture,
    mut out: W,
    sealed_by: &str,
    sealed_unix_ns: u64,
) -> Result<(WriteSummary, W)> {
    if cap.evidence().matches_trailer {
        return Err(Error::Invalid(
            "the capture is already finished (intact, with its index and trailer): there is nothing to seal".into(),
        ));
    }
    let chain = cap.evidence().chain_blocks as usize;
    let mut kept: Vec<BlockInfo> = Vec::new();
    let mut end = FILE_HEADER_LEN as u64;
    for b in cap.blocks() {
        // Blocks in file order; an index frame or a broken link leaves a gap in offsets.
        if kept.len() == chain || b.offset != end {
            break;
        }
        kept.push(*b);
        end = b.offset + (FRAME_HEADER_LEN + DIGEST_LEN) as u64 + b.payload_len as u64;
    }
    let prefix = cap
        .raw(0, end)
        .ok_or_else(|| Error::Invalid("the capture is shorter than its blocks".into()))?;
    let head = match kept.last() {
        Some(b) => cap.stored_digest(b),
        None => Some(seed_digest(cap.header())),
    }
    .ok_or_else(|| Error::Invalid("the capture is shorter than its blocks".into()))?;
    out.write_all(prefix)
        .map_err(|e| Error::io("writing the sealed capture", e))?;
    let index = kept.iter().map(|b| b.index_entry(b.offset)).collect();
    let mut w = Writer::resume(
        out,
        WriterOptions::default(),
        head,
        end,
        kept.len() as u32,
        index,
    )?;
    let seal = Seal {
        sealed_unix_ns,
        sealed_by: sealed_by.to_owned(),
        source_len: cap.len(),
        source_digest: cap.digest().to_owned(),
        blocks_kept: kept.len() as u32,
        bytes_dropped: cap.len() - end,
        chain_head: hex::encode(head),
        extra: Vec::new(),
    };
    w.write_block(BlockKind::Seal, &seal, u32::MAX, (0, 0, 0))?;
    w.finish()
}

fn random_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    if getrandom::fill(&mut id).is_ok() {
        return id;
    }
    // No OS randomness: a hash of time and pid is unique enough to seed a chain.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let h = blake3::hash(
        &[
            t.to_le_bytes().as_slice(),
            &std::process::id().to_le_bytes(),
        ]
        .concat(),
    );
    id.copy_from_slice(&h.as_bytes()[..16]);
    id
}

#[derive(Default)]
struct TargetState {
    events: Vec<Event>,
    stacks: HashMap<Box<[u64]>, StackId>,
    next_stack: StackId,
    pending_stacks: Stacks,
    pending_symbols: Vec<Symbol>,
}

impl Writer<File> {
    /// Writes every buffered block (as [`Writer::flush`]) and waits until the file's data
    /// is on stable storage: a host crash then loses at most what came after this call.
    pub fn flush_durably(&mut self) -> Result<()> {
        self.flush()?;
        self.out
            .sync_data()
            .map_err(|e| Error::io("syncing the capture to disk", e))
    }

    /// [`Writer::finish`], then waits until the whole file (data and metadata) is on stable
    /// storage. Call [`sync_dir_of`] after it before reporting success.
    pub fn finish_durably(self) -> Result<(WriteSummary, File)> {
        let (summary, file) = self.finish()?;
        file.sync_all()
            .map_err(|e| Error::io("syncing the finished capture to disk", e))?;
        Ok((summary, file))
    }

    /// After a failed write (disk full, quota), cuts the file back to the end of the last
    /// complete block, which also frees the space the partial block took, and lets the
    /// writer continue: a later [`Writer::finish`] can then often still write the stats,
    /// index and trailer. Events buffered but not written are dropped (and counted in the
    /// returned number); the file stays readable either way.
    pub fn recover_from_write_error(&mut self) -> Result<u64> {
        use std::io::Seek;
        self.out
            .set_len(self.offset)
            .and_then(|_| self.out.seek(std::io::SeekFrom::Start(self.offset)))
            .map_err(|e| Error::io("cutting the capture back to its last complete block", e))?;
        self.failed = None;
        let dropped = self.pending_events() as u64;
        // Dictionary entries may have been lost with the failed block: write no more events
        // or dictionaries, only what `finish` adds (stats, index, trailer).
        for t in self.targets.values_mut() {
            t.events.clear();
            t.pending_stacks = Stacks::default();
            t.pending_symbols.clear();
        }
        self.pending_strings.strings.clear();
        self.closed_for_events = true;
        Ok(dropped)
    }
}

/// Writes a capture to any `Write` (normally a file from [`create_file`]).
pub struct Writer<W: Write> {
    out: W,
    opts: WriterOptions,
    offset: u64,
    seq: u32,
    prev: Digest,
    index: Vec<IndexEntry>,
    strings: HashMap<Box<str>, StrId>,
    pending_strings: Strings,
    next_string: StrId,
    targets: HashMap<u32, TargetState>,
    compressor: zstd::bulk::Compressor<'static>,
    frame: Vec<u8>,
    events_by_kind: [u64; 256],
    failed: Option<String>,
    /// Set after recovering from a write error: events are dropped from then on.
    closed_for_events: bool,
}

impl<W: Write> Writer<W> {
    /// Writes the file header and returns a writer ready for blocks.
    pub fn new(mut out: W, opts: WriterOptions) -> Result<Self> {
        let header = FileHeader {
            version: FORMAT_VERSION,
            flags: HEADER_FLAG_ZSTD_CHECKSUMS,
            file_id: opts.file_id.unwrap_or_else(random_id),
        };
        out.write_all(&header.encode())
            .map_err(|e| Error::io("writing the capture header", e))?;
        Self::resume(
            out,
            opts,
            seed_digest(&header),
            FILE_HEADER_LEN as u64,
            0,
            Vec::new(),
        )
    }

    /// A writer that continues a file already written up to `offset`, with `seq` frames
    /// whose last stored digest is `prev`, and `index` entries for them.
    fn resume(
        out: W,
        opts: WriterOptions,
        prev: Digest,
        offset: u64,
        seq: u32,
        index: Vec<IndexEntry>,
    ) -> Result<Self> {
        let mut compressor = zstd::bulk::Compressor::new(opts.zstd_level)
            .map_err(|e| Error::io("starting zstd", e))?;
        // The chain catches any change to the stored bytes; zstd's checksum of the content
        // also catches a decompressor or memory fault turning good bytes into bad events.
        compressor
            .include_checksum(true)
            .map_err(|e| Error::io("starting zstd", e))?;
        Ok(Writer {
            out,
            offset,
            seq,
            prev,
            index,
            strings: HashMap::new(),
            pending_strings: Strings {
                first_id: 1,
                strings: Vec::new(),
            },
            next_string: 1,
            targets: HashMap::new(),
            compressor,
            frame: Vec::new(),
            events_by_kind: [0; 256],
            failed: None,
            closed_for_events: false,
            opts,
        })
    }

    /// Writes the capture's metadata block (first, by convention).
    pub fn write_meta(&mut self, meta: &Meta) -> Result<()> {
        self.write_block(BlockKind::Meta, meta, u32::MAX, (0, 0, 0))
    }

    /// Declares a target process; its events, stacks and symbols use `target.id`.
    pub fn write_target(&mut self, target: &Target) -> Result<()> {
        self.targets.entry(target.id).or_default();
        self.write_block(BlockKind::Target, target, target.id, (0, 0, 0))
    }

    /// Interns a string; the id is valid in events and symbols written after this call.
    pub fn intern(&mut self, s: &str) -> StrId {
        if s.is_empty() {
            return 0;
        }
        if let Some(&id) = self.strings.get(s) {
            return id;
        }
        let id = self.next_string;
        self.next_string += 1;
        self.strings.insert(s.into(), id);
        self.pending_strings.strings.push(s.to_owned());
        id
    }

    /// Interns a stack (innermost PC first) of `target`.
    pub fn intern_stack(&mut self, target: u32, pcs: &[u64]) -> StackId {
        if pcs.is_empty() {
            return 0;
        }
        let pcs = &pcs[..pcs.len().min(u16::MAX as usize)];
        let t = self.targets.entry(target).or_default();
        if let Some(&id) = t.stacks.get(pcs) {
            return id;
        }
        if t.next_stack == 0 {
            t.next_stack = 1;
            t.pending_stacks.first_id = 1;
        }
        let id = t.next_stack;
        t.next_stack += 1;
        t.stacks.insert(pcs.into(), id);
        t.pending_stacks.target = target;
        t.pending_stacks.lens.push(pcs.len() as u16);
        t.pending_stacks.pcs.extend_from_slice(pcs);
        id
    }

    /// Adds symbols for PCs of `target` (written before the next events block).
    pub fn add_symbols(&mut self, target: u32, symbols: &[Symbol]) {
        let t = self.targets.entry(target).or_default();
        t.pending_symbols.extend_from_slice(symbols);
    }

    /// Buffers one event; a full block is written out.
    pub fn push(&mut self, target: u32, event: Event) -> Result<()> {
        if self.closed_for_events {
            return Ok(());
        }
        let t = self.targets.entry(target).or_default();
        t.events.push(event);
        if t.events.len() >= self.opts.block_events {
            self.flush_target(target)?;
        }
        Ok(())
    }

    /// Writes every buffered dictionary entry and event (call it on a timer so a killed
    /// writer loses at most one interval).
    pub fn flush(&mut self) -> Result<()> {
        let mut ids: Vec<u32> = self.targets.keys().copied().collect();
        ids.sort_unstable();
        self.flush_dictionaries()?;
        for id in ids {
            self.flush_target(id)?;
        }
        Ok(())
    }

    /// Writes a stats block (probe hits, losses).
    pub fn write_stats(&mut self, stats: &Stats) -> Result<()> {
        self.write_block(BlockKind::Stats, stats, u32::MAX, (0, 0, 0))
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// Events buffered but not yet written.
    pub fn pending_events(&self) -> usize {
        self.targets.values().map(|t| t.events.len()).sum()
    }

    /// Flushes, writes the index and the trailer, and returns what was written.
    pub fn finish(mut self) -> Result<(WriteSummary, W)> {
        self.flush()?;
        let index = Index {
            entries: self.index.clone(),
        };
        let index_offset = self.offset;
        self.write_block(BlockKind::Index, &index, u32::MAX, (0, 0, 0))?;
        let file_len = self.offset + TRAILER_LEN as u64;
        let trailer = Trailer {
            index_offset,
            file_len,
            blocks: self.seq,
            digest: self.prev,
        };
        self.out
            .write_all(&trailer.encode())
            .and_then(|_| self.out.flush())
            .map_err(|e| Error::io("writing the capture trailer", e))?;
        self.offset = file_len;
        let summary = self.summary();
        Ok((summary, self.out))
    }

    /// What has been written so far.
    pub fn summary(&self) -> WriteSummary {
        let events_by_kind: Vec<(u8, u64)> = self
            .events_by_kind
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(k, &n)| (k as u8, n))
            .collect();
        WriteSummary {
            events: events_by_kind.iter().map(|(_, n)| n).sum(),
            events_by_kind,
            blocks: self.seq,
            bytes: self.offset,
            digest: hex::encode(self.prev),
        }
    }

    fn flush_dictionaries(&mut self) -> Result<()> {
        if !self.pending_strings.strings.is_empty() {
            let block = std::mem::take(&mut self.pending_strings);
            self.write_block(BlockKind::Strings, &block, u32::MAX, (0, 0, 0))?;
            self.pending_strings.first_id = self.next_string;
        }
        let mut ids: Vec<u32> = self.targets.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let t = self.targets.get_mut(&id).expect("listed above");
            if !t.pending_stacks.lens.is_empty() {
                let next = t.next_stack;
                let block = std::mem::take(&mut t.pending_stacks);
                t.pending_stacks.first_id = next;
                self.write_block(BlockKind::Stacks, &block, id, (0, 0, 0))?;
            }
            let t = self.targets.get_mut(&id).expect("listed above");
            if !t.pending_symbols.is_empty() {
                let block = Symbols {
                    target: id,
                    symbols: std::mem::take(&mut t.pending_symbols),
                };
                self.write_block(BlockKind::Symbols, &block, id, (0, 0, 0))?;
            }
        }
        Ok(())
    }

    fn flush_target(&mut self, target: u32) -> Result<()> {
        let Some(t) = self.targets.get_mut(&target) else {
            return Ok(());
        };
        if t.events.is_empty() {
            return Ok(());
        }
        let mut events = std::mem::take(&mut t.events);
        // Dictionaries first: a reader of a truncated file never sees an id it cannot resolve.
        self.flush_dictionaries()?;
        let block = EventsBlock::encode(target, &mut events, self.opts.ts_shift);
        for k in &block.kinds {
            self.events_by_kind[*k as usize] += 1;
        }
        let range = (block.t_min, block.t_max, block.count);
        let r = self.write_block(BlockKind::Events, &block, target, range);
        // Reuse the allocation for the next block.
        events.clear();
        if let Some(t) = self.targets.get_mut(&target) {
            if t.events.is_empty() {
                t.events = events;
            }
        }
        r
    }

    fn write_block<T>(
        &mut self,
        kind: BlockKind,
        value: &T,
        target: u32,
        (t_min, t_max, events): (u64, u64, u32),
    ) -> Result<()>
    where
        T: for<'a> rkyv::Serialize<
            rkyv::api::high::HighSerializer<
                rkyv::util::AlignedVec,
                rkyv::ser::allocator::ArenaHandle<'a>,
                rancor::BoxedError,
            >,
        >,
    {
        if let Some(why) = &self.failed {
            return Err(Error::Poisoned(why.clone()));
        }
        let raw = rkyv::to_bytes::<rancor::BoxedError>(value)
            .map_err(|e| Error::Invalid(format!("archiving a {} block: {e}", kind.name())))?;
        if raw.len() > MAX_RAW_LEN as usize {
            return Err(Error::Invalid(format!(
                "a {} block of {} bytes exceeds the format's limit; write smaller blocks",
                kind.name(),
                raw.len()
            )));
        }
        let compressed = self
            .compressor
            .compress(&raw)
            .map_err(|e| Error::io("compressing a block", e))?;
        // Events blocks carry their summary in the clear, in front of the zstd frame, so
        // that a file cut before its index opens without decompressing them.
        let summary = (kind == BlockKind::Events).then(|| {
            BlockSummary {
                target,
                events,
                t_min,
                t_max,
            }
            .encode()
        });
        let payload_len = compressed.len() + summary.map_or(0, |s| s.len());
        if payload_len > MAX_PAYLOAD_LEN as usize {
            return Err(Error::Invalid(format!(
                "a compressed {} block exceeds the format's limit",
                kind.name()
            )));
        }
        let header = FrameHeader {
            kind: kind as u16,
            flags: if summary.is_some() {
                FLAG_ZSTD | FLAG_SUMMARY
            } else {
                FLAG_ZSTD
            },
            seq: self.seq,
            payload_len: payload_len as u32,
            raw_len: raw.len() as u32,
        }
        .encode();
        self.frame.clear();
        self.frame.extend_from_slice(&header);
        if let Some(s) = &summary {
            self.frame.extend_from_slice(s);
        }
        self.frame.extend_from_slice(&compressed);
        let digest = chain_digest(&self.prev, &header, &self.frame[FRAME_HEADER_LEN..]);
        self.frame.extend_from_slice(&digest);
        if let Err(e) = self.out.write_all(&self.frame) {
            let err = Error::io(
                format!("writing block {} at byte {}", self.seq, self.offset),
                e,
            );
            self.failed = Some(err.to_string());
            return Err(err);
        }
        if kind != BlockKind::Index {
            self.index.push(IndexEntry {
                offset: self.offset,
                kind: kind as u16,
                seq: self.seq,
                target,
                t_min,
                t_max,
                events,
            });
        }
        self.offset += (FRAME_HEADER_LEN + payload_len + digest.len()) as u64;
        self.seq += 1;
        self.prev = digest;
        Ok(())
    }
}
