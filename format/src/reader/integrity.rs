//! FORMAT.md §3 "Integrity" on every read: when a capture is opened, every frame's link in
//! the hash chain is checked before any of its bytes are used, so that every command, not
//! only `verify`, leaves out a block that was changed after gcap wrote it and says so. The
//! same pass yields the evidence digest (§3.1) and the chain head a log of gcap's can be
//! compared with.
//!
//! A frame's link needs nothing but the file: the digest it chains from is the 32 bytes just
//! before its header (the previous frame's stored digest), or the digest of the file header
//! for the frame at byte 32. So each frame is checked on its own, in parallel, and a block
//! after a damaged one is still read when its own link holds.

use super::{BlockInfo, Capture};
use crate::chain::{chain_digest, seed_digest, Digest};
use crate::frame::{Trailer, DIGEST_LEN, FILE_HEADER_LEN, FRAME_HEADER_LEN, TRAILER_LEN};
use crate::payload::BlockKind;

/// What the hash chain says about a capture, worked out when it is opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The evidence digest (FORMAT.md §3.1): the chain's last digest when the trailer
    /// matches, otherwise BLAKE3 of every byte of the file. Either way it pins every byte.
    pub digest: String,
    /// The digest the trailer records, when the file ends in a trailer with a valid CRC.
    pub trailer_digest: Option<String>,
    /// Every frame links to the one before it, the frames tile the file, and the trailer is
    /// exactly the one a writer writes after them: `digest` is then the trailer's.
    pub matches_trailer: bool,
    /// Frames from the start of the file that link to each other without a gap.
    pub chain_blocks: u32,
    /// The stored digest of the last of those frames (the file header's digest when there
    /// is none): what gcap logged as the chain head when it had written that far.
    pub chain_head: String,
    /// Frames whose link failed: left out of the capture.
    pub broken_links: u32,
}

impl Capture {
    /// Checks every frame's link, leaves out the blocks whose link fails (with a warning),
    /// and works out the evidence digest.
    pub(super) fn check_integrity(&mut self) {
        let seed = seed_digest(&self.header);
        let mut frames: Vec<BlockInfo> = self
            .blocks
            .iter()
            .chain(&self.index_frames)
            .copied()
            .collect();
        frames.sort_by_key(|f| f.offset);
        let links = self.links_hold(&seed, &frames);

        let mut head = seed;
        let mut chain_blocks = 0u32;
        let mut expect = FILE_HEADER_LEN as u64;
        for (f, &ok) in frames.iter().zip(&links) {
            if f.offset != expect || !ok {
                break;
            }
            head = self.stored_digest(f).unwrap_or(seed);
            chain_blocks += 1;
            expect = f.offset + frame_len(f);
        }
        let len = self.bytes.len() as u64;
        let trailer = (len >= (FILE_HEADER_LEN + TRAILER_LEN) as u64)
            .then(|| Trailer::decode(&self.bytes[(len - TRAILER_LEN as u64) as usize..]))
            .flatten();
        let matches_trailer = trailer.is_some_and(|t| {
            let last = frames.last();
            chain_blocks as usize == frames.len()
                && expect == len - TRAILER_LEN as u64
                && last.is_some_and(|l| {
                    l.kind == BlockKind::Index as u16 && l.offset == t.index_offset
                })
                && t.file_len == len
                && t.blocks == chain_blocks
                && t.digest == head
        });
        let digest = if matches_trailer {
            hex::encode(head)
        } else {
            blake3::hash(&self.bytes).to_hex().to_string()
        };

        let broken: Vec<BlockInfo> = frames
            .iter()
            .zip(&links)
            .filter(|(_, &ok)| !ok)
            .map(|(f, _)| *f)
            .collect();
        if !broken.is_empty() {
            self.blocks
                .retain(|b| !broken.iter().any(|x| x.offset == b.offset));
            self.recovery.complete = false;
            self.recovery.bytes_discarded += broken.iter().map(frame_len).sum::<u64>();
            for b in broken.iter().take(4) {
                let kind = BlockKind::from_u16(b.kind).map_or("unknown", |k| k.name());
                self.recovery.warnings.push(format!(
                    "block {} ({kind}) at byte {} does not match the hash chain: its bytes, or the digest stored before it, were changed after gcap wrote it; it is left out, and the rest of the capture cannot be vouched for by its digest (ganalyze verify lists every problem)",
                    b.seq, b.offset
                ));
            }
            if broken.len() > 4 {
                self.recovery.warnings.push(format!(
                    "{} more blocks do not match the hash chain and are left out",
                    broken.len() - 4
                ));
            }
        }
        self.evidence = Evidence {
            digest,
            trailer_digest: trailer.map(|t| hex::encode(t.digest)),
            matches_trailer,
            chain_blocks,
            chain_head: hex::encode(head),
            broken_links: broken.len() as u32,
        };
    }

    /// Whether each frame's stored digest is the digest of its header and payload chained
    /// to the 32 bytes before it (the seed for the first frame).
    fn links_hold(&self, seed: &Digest, frames: &[BlockInfo]) -> Vec<bool> {
        let check = |f: &BlockInfo| self.link_holds(seed, f);
        #[cfg(feature = "parallel")]
        {
            use rayon::prelude::*;
            frames.par_iter().map(check).collect()
        }
        #[cfg(not(feature = "parallel"))]
        {
            frames.iter().map(check).collect()
        }
    }

    pub(super) fn link_holds(&self, seed: &Digest, f: &BlockInfo) -> bool {
        let b = &self.bytes[..];
        let at = f.offset as usize;
        let prev: &[u8] = if at == FILE_HEADER_LEN {
            seed
        } else if at >= FILE_HEADER_LEN + DIGEST_LEN {
            &b[at - DIGEST_LEN..at]
        } else {
            return false;
        };
        let payload_end = at + FRAME_HEADER_LEN + f.payload_len as usize;
        let (Some(header), Some(payload), Some(stored)) = (
            b.get(at..at + FRAME_HEADER_LEN),
            b.get(at + FRAME_HEADER_LEN..payload_end),
            b.get(payload_end..payload_end + DIGEST_LEN),
        ) else {
            return false;
        };
        let prev: Digest = prev.try_into().expect("32 bytes");
        chain_digest(&prev, header, payload)[..] == *stored
    }

    pub(crate) fn stored_digest(&self, f: &BlockInfo) -> Option<Digest> {
        let end = (f.offset + frame_len(f)) as usize;
        self.bytes.get(end - DIGEST_LEN..end)?.try_into().ok()
    }

    /// What the hash chain says about this capture.
    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }
}

fn frame_len(f: &BlockInfo) -> u64 {
    (FRAME_HEADER_LEN + DIGEST_LEN) as u64 + f.payload_len as u64
}

#[cfg(test)]
pub(crate) mod tests {
    use rkyv::rancor;

    use super::*;
    use crate::frame::{FrameHeader, FLAG_ZSTD};
    use crate::payload::{Index, Meta, Target};
    use crate::writer::{Writer, WriterOptions};

    /// A finished capture with a meta, a target and a few events blocks, and its digest.
    pub(crate) fn capture() -> (Vec<u8>, String) {
        let opts = WriterOptions {
            block_events: 50,
            file_id: Some([3; 16]),
            ..WriterOptions::default()
        };
        let mut w = Writer::new(Vec::new(), opts).unwrap();
        w.write_meta(&Meta {
            host: "db1".into(),
            start_unix_ns: 1_700_000_000_000_000_000,
            ..Meta::default()
        })
        .unwrap();
        w.write_target(&Target {
            id: 0,
            pid: 4242,
            exe: "/srv/orders".into(),
            build_id: "0123abcd".into(),
            ..Target::default()
        })
        .unwrap();
        for i in 0..300u64 {
            let e = crate::event::Event {
                ts: 1_000 + i * 100,
                goid: 1 + i % 7,
                data: crate::event::EventData::GoStop {
                    reason: (i % 2) as u8,
                },
            };
            w.push(0, e).unwrap();
        }
        let (summary, bytes) = w.finish().unwrap();
        (bytes, summary.digest)
    }

    /// Rewrites a finished capture block by block: `edit` may replace a block's archive
    /// (kind, archive) -> new archive. The index and trailer are rebuilt to fit; with
    /// `rechain` every digest is recomputed as a forger would, else the stored digests are
    /// kept as they were.
    pub(crate) fn rewrite(
        bytes: &[u8],
        edit: impl Fn(BlockKind, &[u8]) -> Option<Vec<u8>>,
        rechain: bool,
    ) -> Vec<u8> {
        let cap = Capture::from_vec(bytes.to_vec()).unwrap();
        assert!(cap.recovery().complete);
        let mut out = bytes[..FILE_HEADER_LEN].to_vec();
        let mut prev = seed_digest(&cap.header);
        let mut index = Index::default();
        let mut seq = 0u32;
        let mut zstd = zstd::bulk::Compressor::new(3).unwrap();
        zstd.include_checksum(true).unwrap();
        // (kind, archive, or the original payload and flags when unchanged, stored digest)
        let mut put = |out: &mut Vec<u8>,
                       kind: u16,
                       raw: Result<&[u8], (&[u8], u32, u16)>,
                       stored: Digest|
         -> Digest {
            let (payload, raw_len, flags) = match raw {
                Ok(raw) => (zstd.compress(raw).unwrap(), raw.len(), FLAG_ZSTD),
                Err((payload, raw_len, flags)) => (payload.to_vec(), raw_len as usize, flags),
            };
            let h = FrameHeader {
                kind,
                flags,
                seq,
                payload_len: payload.len() as u32,
                raw_len: raw_len as u32,
            }
            .encode();
            let d = if rechain {
                chain_digest(&prev, &h, &payload)
            } else {
                stored
            };
            out.extend_from_slice(&h);
            out.extend_from_slice(&payload);
            out.extend_from_slice(&d);
            prev = d;
            seq += 1;
            d
        };
        for b in cap.blocks() {
            let raw = cap.decompress(b).unwrap();
            let kind = BlockKind::from_u16(b.kind).unwrap();
            let edited = edit(kind, &raw);
            let start = b.offset as usize + FRAME_HEADER_LEN;
            let original = &bytes[start..start + b.payload_len as usize];
            let raw = edited.as_deref().ok_or((original, b.raw_len, b.flags));
            index.entries.push(b.index_entry(out.len() as u64));
            put(&mut out, b.kind, raw, cap.stored_digest(b).unwrap());
        }
        let index_offset = out.len() as u64;
        let index_info = cap.index_frames[0];
        let raw = rkyv::to_bytes::<rancor::BoxedError>(&index).unwrap();
        let digest = put(
            &mut out,
            BlockKind::Index as u16,
            Ok(&raw),
            cap.stored_digest(&index_info).unwrap(),
        );
        let t = Trailer {
            index_offset,
            file_len: out.len() as u64 + TRAILER_LEN as u64,
            blocks: cap.blocks().len() as u32 + 1,
            digest,
        };
        out.extend_from_slice(&t.encode());
        out
    }

    /// Re-encodes the metadata and the target, as the forger did.
    fn forge(kind: BlockKind, raw: &[u8]) -> Option<Vec<u8>> {
        let bytes = match kind {
            BlockKind::Meta => {
                let mut m = rkyv::from_bytes::<Meta, rancor::BoxedError>(raw).unwrap();
                m.host = "elsewhere".into();
                m.start_unix_ns += 3_600_000_000_000;
                rkyv::to_bytes::<rancor::BoxedError>(&m).unwrap()
            }
            BlockKind::Target => {
                let mut t = rkyv::from_bytes::<Target, rancor::BoxedError>(raw).unwrap();
                t.exe = "/usr/bin/innocent".into();
                t.build_id = "deadbeef".into();
                rkyv::to_bytes::<rancor::BoxedError>(&t).unwrap()
            }
            _ => return None,
        };
        Some(bytes.to_vec())
    }

    #[test]
    fn an_intact_capture_matches_its_trailer() {
        let (bytes, digest) = capture();
        let cap = Capture::from_vec(bytes.clone()).unwrap();
        let ev = cap.evidence();
        assert!(ev.matches_trailer);
        assert_eq!(ev.digest, digest);
        assert_eq!(ev.trailer_digest.as_deref(), Some(digest.as_str()));
        assert_eq!(ev.chain_head, digest);
        assert_eq!(ev.chain_blocks as usize, cap.blocks().len() + 1);
        assert_eq!(ev.broken_links, 0);
        assert!(cap.recovery().warnings.is_empty());
        // Rewriting without changing anything and keeping the digests gives the same file.
        assert_eq!(rewrite(&bytes, |_, _| None, false), bytes);
    }

    #[test]
    fn metadata_edited_without_rechaining_is_left_out_with_a_warning() {
        let (bytes, digest) = capture();
        let forged = rewrite(&bytes, forge, false);
        let cap = Capture::from_vec(forged).unwrap();
        assert!(!cap.recovery().complete, "a forged file is not complete");
        let w = &cap.recovery().warnings;
        assert!(
            w.iter()
                .filter(|w| w.contains("does not match the hash chain"))
                .count()
                >= 2,
            "{w:?}"
        );
        // The forged blocks are never shown as the capture's.
        assert!(cap.meta().is_none_or(|m| m.host != "elsewhere"));
        assert!(cap.targets().iter().all(|t| t.exe != "/usr/bin/innocent"));
        let ev = cap.evidence();
        assert!(!ev.matches_trailer);
        assert_ne!(ev.digest, digest);
        // The meta, the target, and the index rebuilt for their new lengths.
        assert_eq!(ev.broken_links, 3);
        assert!(!cap.verify().intact);
        // The events blocks still link and still read.
        assert_eq!(cap.events().unwrap().len(), 300);
    }

    #[test]
    fn a_rechained_forgery_is_self_consistent_but_its_digest_differs() {
        let (bytes, digest) = capture();
        let forged = rewrite(&bytes, forge, true);
        let cap = Capture::from_vec(forged).unwrap();
        // Nothing inside the file can tell: only the digest published when it was written.
        assert!(cap.evidence().matches_trailer);
        assert!(cap.verify().intact);
        assert_eq!(cap.meta().unwrap().host, "elsewhere");
        assert_ne!(cap.digest(), digest);
    }

    #[test]
    fn a_cut_file_is_digested_whole_and_keeps_its_chain_head() {
        let (bytes, _) = capture();
        let full = Capture::from_vec(bytes.clone()).unwrap();
        let third = full.blocks()[2];
        let end = (third.offset + frame_len(&third)) as usize;
        let head = hex::encode(full.stored_digest(&third).unwrap());
        // Three files with the same complete blocks and different tails.
        let mut digests = Vec::new();
        for tail in [&b""[..], b"GBLK", b"\0\0\0\0\0\0\0\0"] {
            let mut cut = bytes[..end].to_vec();
            cut.extend_from_slice(tail);
            let cap = Capture::from_vec(cut.clone()).unwrap();
            let ev = cap.evidence();
            assert!(!ev.matches_trailer);
            assert_eq!(ev.trailer_digest, None);
            assert_eq!(ev.chain_blocks, 3);
            assert_eq!(ev.chain_head, head);
            assert_eq!(ev.digest, blake3::hash(&cut).to_hex().to_string());
            digests.push(ev.digest.clone());
        }
        digests.dedup();
        assert_eq!(digests.len(), 3);
    }

    #[test]
    fn a_block_after_a_damaged_header_still_links() {
        let (mut bytes, _) = capture();
        let full = Capture::from_vec(bytes.clone()).unwrap();
        let victim = full.blocks()[3];
        bytes[victim.offset as usize + 5] ^= 1; // kind: the header CRC fails
        let cap = Capture::from_vec(bytes).unwrap();
        // Only the damaged block is lost: the next one chains from the digest before it.
        assert_eq!(cap.evidence().broken_links, 0);
        assert_eq!(cap.evidence().chain_blocks, 3);
        assert_eq!(cap.blocks().len(), full.blocks().len() - 1);
    }
}
