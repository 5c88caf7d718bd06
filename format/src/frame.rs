//! FORMAT.md §1 "File layout": the byte-level framing, i.e. the file header, the frame
//! header in front of every block, the trailer, and the limits a reader enforces.
//!
//! ```text
//! file    = header(32) frame* [trailer(68)]
//! frame   = frame_header(24) payload(payload_len) digest(32)
//! ```
//! The digest after each payload is the hash chain of §3 (module `chain`). Frame headers
//! carry their own CRC so that a reader scanning a damaged file can tell a real frame from a
//! stray magic number cheaply.

use crate::chain::Digest;
use crate::error::{Error, Result};

/// The first 8 bytes of every capture (PNG-style: catches text-mode transfers).
pub(crate) const FILE_MAGIC: [u8; 8] = *b"\x89GCAP\r\n\x1a";
/// The format version this crate writes and the newest it reads. Version 2 (FORMAT.md §6)
/// records arg codings in each events block and stores trace and span ids in a
/// fixed-width column; version-1 files are still read.
pub const FORMAT_VERSION: u16 = 2;
/// The first version whose events blocks are [`crate::EventsBlock`]s (version 1's are
/// [`crate::EventsBlockV1`]s).
pub(crate) const VERSION_RECORDED_CODINGS: u16 = 2;
pub(crate) const FILE_HEADER_LEN: usize = 32;

/// Magic at the start of every frame: "GBLK".
pub(crate) const FRAME_MAGIC: [u8; 4] = *b"GBLK";
pub const FRAME_HEADER_LEN: usize = 24;
pub(crate) const DIGEST_LEN: usize = 32;

/// Magic at the start of the trailer.
pub(crate) const TRAILER_MAGIC: [u8; 8] = *b"GCAPEND\0";
pub(crate) const TRAILER_LEN: usize = 68;

/// Frame flag: the payload is zstd-compressed (otherwise it is the raw rkyv archive).
pub(crate) const FLAG_ZSTD: u16 = 1;
/// Frame flag: the payload starts with a [`BlockSummary`] in the clear, before the zstd
/// frame, so that a reader of a file without an index learns a block's target, time range
/// and event count without decompressing it (format version 2 writes it on events blocks).
pub(crate) const FLAG_SUMMARY: u16 = 2;
/// Every frame flag this reader knows; any other bit makes the frame unreadable.
const KNOWN_FRAME_FLAGS: u16 = FLAG_ZSTD | FLAG_SUMMARY;
/// Bytes of a [`BlockSummary`].
pub(crate) const SUMMARY_LEN: usize = 24;

/// File header flag: every zstd payload carries zstd's content checksum, and a reader
/// refuses one that does not (files before this flag have none).
pub(crate) const HEADER_FLAG_ZSTD_CHECKSUMS: u16 = 1;
/// Every file header flag this reader knows; a file with another bit set was written by a
/// newer writer and is refused rather than misread.
const KNOWN_HEADER_FLAGS: u16 = HEADER_FLAG_ZSTD_CHECKSUMS;

/// Hard limits a reader enforces before allocating anything a length field asks for.
pub(crate) const MAX_PAYLOAD_LEN: u32 = 64 << 20;
pub(crate) const MAX_RAW_LEN: u32 = 64 << 20;

/// A dictionary block (every kind but events) may declare at most this many archive bytes
/// per compressed byte, plus [`RATIO_SLACK`]. Dictionaries stay in memory while a file is
/// open, and their entries are distinct (strings and stacks are deduplicated), so real ones
/// stay under 10:1; the bound keeps what a file can make a reader hold in proportion to its
/// size (a few KB cannot ask for GBs).
pub(crate) const MAX_RATIO: u64 = 256;
/// An events block may declare up to zstd's own ceiling: a zstd block holds at most
/// 128 KiB and takes at least 4 bytes (an RLE block), so no genuine frame expands further.
/// Events blocks are decoded one at a time and dropped, and real ones do compress past
/// [`MAX_RATIO`]: a snapshot of 5,000 goroutines parked at one site is 150 KB from 303 bytes.
pub(crate) const MAX_EVENTS_RATIO: u64 = 32 << 10;
/// Small blocks compress worse than large ones; this much is allowed whatever the ratio.
pub(crate) const RATIO_SLACK: u64 = 64 << 10;

/// The most archive bytes per compressed byte a block of `kind` may declare.
pub(crate) fn max_ratio(kind: u16) -> u64 {
    if kind == crate::BlockKind::Events as u16 {
        MAX_EVENTS_RATIO
    } else {
        MAX_RATIO
    }
}

/// Whether a block's declared archive size is within [`max_ratio`] of its payload size.
pub(crate) fn ratio_ok(kind: u16, payload_len: u32, raw_len: u32) -> bool {
    raw_len as u64 <= max_ratio(kind) * payload_len as u64 + RATIO_SLACK
}

/// The 32-byte file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub version: u16,
    pub flags: u16,
    /// Random per capture; seeds the hash chain so two captures never share digests.
    pub file_id: [u8; 16],
}

impl FileHeader {
    pub(crate) fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[0..8].copy_from_slice(&FILE_MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..28].copy_from_slice(&self.file_id);
        let crc = crc32fast::hash(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Result<FileHeader> {
        if b.len() < FILE_HEADER_LEN || b[0..8] != FILE_MAGIC {
            return Err(Error::NotACapture);
        }
        let crc = u32::from_le_bytes(b[28..32].try_into().unwrap());
        if crc != crc32fast::hash(&b[0..28]) {
            return Err(Error::corrupt(0, "file header checksum mismatch"));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let flags = u16::from_le_bytes([b[10], b[11]]);
        if flags & !KNOWN_HEADER_FLAGS != 0 {
            return Err(Error::UnsupportedFlags {
                flags,
                known: KNOWN_HEADER_FLAGS,
            });
        }
        Ok(FileHeader {
            version,
            flags,
            file_id: b[12..28].try_into().unwrap(),
        })
    }
}

/// The 24-byte header in front of every block's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub kind: u16,
    pub flags: u16,
    /// 0, 1, 2, ... in file order: a removed or reordered block breaks the sequence.
    pub seq: u32,
    pub payload_len: u32,
    /// Length of the payload once decompressed (the rkyv archive).
    pub raw_len: u32,
}

impl FrameHeader {
    pub(crate) fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[0..4].copy_from_slice(&FRAME_MAGIC);
        b[4..6].copy_from_slice(&self.kind.to_le_bytes());
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12..16].copy_from_slice(&self.payload_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.raw_len.to_le_bytes());
        let crc = crc32fast::hash(&b[0..20]);
        b[20..24].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a frame header at file offset `at` (for error messages).
    pub(crate) fn decode(b: &[u8], at: u64) -> Result<FrameHeader> {
        if b.len() < FRAME_HEADER_LEN {
            return Err(Error::corrupt(at, "frame header cut short"));
        }
        if b[0..4] != FRAME_MAGIC {
            return Err(Error::corrupt(
                at,
                "no block magic where a block should start",
            ));
        }
        let word = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        if word(20) != crc32fast::hash(&b[0..20]) {
            return Err(Error::corrupt(at, "block header checksum mismatch"));
        }
        let h = FrameHeader {
            kind: u16::from_le_bytes([b[4], b[5]]),
            flags: u16::from_le_bytes([b[6], b[7]]),
            seq: word(8),
            payload_len: word(12),
            raw_len: word(16),
        };
        if h.flags & !KNOWN_FRAME_FLAGS != 0 {
            return Err(Error::corrupt(
                at,
                format!("block header has unknown flags {:#06x}", h.flags),
            ));
        }
        if h.flags & FLAG_SUMMARY != 0 && (h.payload_len as usize) < SUMMARY_LEN {
            return Err(Error::corrupt(
                at,
                "block header promises a summary its payload has no room for",
            ));
        }
        if h.payload_len > MAX_PAYLOAD_LEN {
            return Err(Error::TooLarge {
                offset: at,
                declared: h.payload_len as u64,
                limit: MAX_PAYLOAD_LEN as u64,
            });
        }
        if h.raw_len > MAX_RAW_LEN {
            return Err(Error::TooLarge {
                offset: at,
                declared: h.raw_len as u64,
                limit: MAX_RAW_LEN as u64,
            });
        }
        Ok(h)
    }

    /// Total bytes of the frame on disk.
    pub(crate) fn frame_len(&self) -> u64 {
        (FRAME_HEADER_LEN + DIGEST_LEN) as u64 + self.payload_len as u64
    }
}

/// What an events block holds, written in the clear at the start of its payload (frame flag
/// [`FLAG_SUMMARY`]): what the index says of the block, for files without one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockSummary {
    pub target: u32,
    pub events: u32,
    pub t_min: u64,
    pub t_max: u64,
}

impl BlockSummary {
    pub(crate) fn encode(&self) -> [u8; SUMMARY_LEN] {
        let mut b = [0u8; SUMMARY_LEN];
        b[0..4].copy_from_slice(&self.target.to_le_bytes());
        b[4..8].copy_from_slice(&self.events.to_le_bytes());
        b[8..16].copy_from_slice(&self.t_min.to_le_bytes());
        b[16..24].copy_from_slice(&self.t_max.to_le_bytes());
        b
    }

    /// The summary at the start of `b`, if there are enough bytes.
    pub(crate) fn decode(b: &[u8]) -> Option<BlockSummary> {
        let b = b.get(..SUMMARY_LEN)?;
        Some(BlockSummary {
            target: u32::from_le_bytes(b[0..4].try_into().ok()?),
            events: u32::from_le_bytes(b[4..8].try_into().ok()?),
            t_min: u64::from_le_bytes(b[8..16].try_into().ok()?),
            t_max: u64::from_le_bytes(b[16..24].try_into().ok()?),
        })
    }
}

/// The 68-byte trailer at the very end of a finished capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Trailer {
    /// Offset of the index block's frame.
    pub index_offset: u64,
    /// Length of the whole file, trailer included: appended bytes are detected.
    pub file_len: u64,
    /// Number of frames in the file (index block included).
    pub blocks: u32,
    /// The digest of the last frame (the index): the capture's evidence digest.
    pub digest: Digest,
}

impl Trailer {
    pub(crate) fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut b = [0u8; TRAILER_LEN];
        b[0..8].copy_from_slice(&TRAILER_MAGIC);
        b[8..16].copy_from_slice(&self.index_offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.file_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.blocks.to_le_bytes());
        // 28..32 reserved, zero.
        b[32..64].copy_from_slice(&self.digest);
        let crc = crc32fast::hash(&b[0..64]);
        b[64..68].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes the trailer from the last [`TRAILER_LEN`] bytes, if they are one.
    pub(crate) fn decode(b: &[u8]) -> Option<Trailer> {
        if b.len() != TRAILER_LEN || b[0..8] != TRAILER_MAGIC {
            return None;
        }
        if u32::from_le_bytes(b[64..68].try_into().unwrap()) != crc32fast::hash(&b[0..64])
            || b[28..32] != [0; 4]
        {
            return None;
        }
        Some(Trailer {
            index_offset: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            file_len: u64::from_le_bytes(b[16..24].try_into().unwrap()),
            blocks: u32::from_le_bytes(b[24..28].try_into().unwrap()),
            digest: b[32..64].try_into().unwrap(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_checks() {
        let h = FileHeader {
            version: FORMAT_VERSION,
            flags: 0,
            file_id: [7; 16],
        };
        let b = h.encode();
        assert_eq!(FileHeader::decode(&b).unwrap(), h);
        for i in 0..FILE_HEADER_LEN {
            let mut c = b;
            c[i] ^= 1;
            assert!(FileHeader::decode(&c).is_err(), "flip at {i} undetected");
        }
    }

    #[test]
    fn unknown_flag_bits_are_refused() {
        for bit in 2..16 {
            let h = FileHeader {
                version: FORMAT_VERSION,
                flags: HEADER_FLAG_ZSTD_CHECKSUMS | 1 << bit,
                file_id: [7; 16],
            };
            assert!(matches!(
                FileHeader::decode(&h.encode()),
                Err(Error::UnsupportedFlags { .. })
            ));
            let f = FrameHeader {
                kind: 6,
                flags: FLAG_ZSTD | 1 << bit,
                seq: 0,
                payload_len: 10,
                raw_len: 10,
            };
            assert!(
                FrameHeader::decode(&f.encode(), 0).is_err(),
                "frame flag bit {bit}"
            );
        }
    }

    #[test]
    fn a_summary_needs_room() {
        let f = FrameHeader {
            kind: 6,
            flags: FLAG_ZSTD | FLAG_SUMMARY,
            seq: 0,
            payload_len: SUMMARY_LEN as u32 - 1,
            raw_len: 10,
        };
        assert!(FrameHeader::decode(&f.encode(), 0).is_err());
        let s = BlockSummary {
            target: 3,
            events: 70_000,
            t_min: 1 << 40,
            t_max: (1 << 40) + 5,
        };
        assert_eq!(BlockSummary::decode(&s.encode()), Some(s));
    }

    #[test]
    fn frame_header_rejects_huge_lengths() {
        let h = FrameHeader {
            kind: 6,
            flags: FLAG_ZSTD,
            seq: 3,
            payload_len: MAX_PAYLOAD_LEN + 1,
            raw_len: 10,
        };
        assert!(matches!(
            FrameHeader::decode(&h.encode(), 0),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn trailer_roundtrip() {
        let t = Trailer {
            index_offset: 1234,
            file_len: 99999,
            blocks: 17,
            digest: [9; 32],
        };
        let b = t.encode();
        assert_eq!(Trailer::decode(&b), Some(t));
        for i in 0..TRAILER_LEN {
            let mut c = b;
            c[i] ^= 0x40;
            assert_ne!(Trailer::decode(&c), Some(t), "flip at {i} undetected");
        }
    }
}
