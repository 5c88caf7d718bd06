//! FORMAT.md §2 "Finding blocks": from the trailer and index when the file is complete, by
//! scanning frame by frame (resynchronising on damage) when it is not.

use rkyv::rancor;

use super::{BlockInfo, Capture};
use crate::chain::seed_digest;
use crate::error::{Error, Result};
use crate::frame::{FrameHeader, Trailer, DIGEST_LEN, FILE_HEADER_LEN, FRAME_MAGIC, TRAILER_LEN};
use crate::payload::{ArchivedIndex, BlockKind};

impl Capture {
    /// Uses the trailer and index when both are intact; false means "scan instead".
    pub(super) fn load_index(&mut self) -> bool {
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
        let info = BlockInfo::from_frame(trailer.index_offset, &index_header);
        // The index is trusted only when it is the chain's last link and the trailer holds
        // its digest: an index edited after the fact is never used to find blocks.
        let index_end = (trailer.index_offset + index_header.frame_len()) as usize;
        if !self.link_holds(&seed_digest(&self.header), &info)
            || b[index_end - DIGEST_LEN..index_end] != trailer.digest
        {
            return false;
        }
        let Ok(raw) = self.decompress(&info) else {
            return false;
        };
        let Ok(index) = rkyv::access::<ArchivedIndex, rancor::BoxedError>(&raw) else {
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
            // An events count above the archive's size cannot be true (every event takes at
            // least its kind byte): readers size things by it.
            if offset != expect_offset
                || h.kind != e.kind.to_native()
                || h.seq != e.seq.to_native()
                || e.events.to_native() > h.raw_len
            {
                return false;
            }
            expect_offset = offset + h.frame_len();
            blocks.push(BlockInfo {
                target: e.target.to_native(),
                t_min: e.t_min.to_native(),
                t_max: e.t_max.to_native(),
                events: e.events.to_native(),
                ..BlockInfo::from_frame(offset, &h)
            });
        }
        if expect_offset != trailer.index_offset || trailer.blocks as usize != blocks.len() + 1 {
            return false;
        }
        self.blocks = blocks;
        self.index_frames = vec![info];
        self.recovery.complete = true;
        true
    }

    /// Reads and checks the frame header at `offset`, and that the whole frame is present.
    pub(super) fn frame_at(&self, offset: u64) -> Result<FrameHeader> {
        let b = &self.bytes[..];
        let start = usize::try_from(offset).map_err(|_| Error::corrupt(offset, "offset"))?;
        let h = FrameHeader::decode(b.get(start..).unwrap_or(&[]), offset)?;
        if offset + h.frame_len() > b.len() as u64 {
            return Err(Error::corrupt(offset, "block cut short"));
        }
        Ok(h)
    }

    /// Finds every complete block by walking frames and resynchronising on damage.
    pub(super) fn scan(&mut self) {
        let len = self.bytes.len() as u64;
        let mut pos = FILE_HEADER_LEN as u64;
        let mut discarded = 0u64;
        let mut blocks = Vec::new();
        let mut damaged_at: Vec<u64> = Vec::new();
        while pos < len {
            match self.frame_at(pos) {
                Ok(h) => {
                    if h.kind == BlockKind::Index as u16 {
                        self.index_frames.push(BlockInfo::from_frame(pos, &h));
                    } else {
                        blocks.push(self.block_at(pos, &h));
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
}
