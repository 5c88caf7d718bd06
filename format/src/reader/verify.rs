//! FORMAT.md §3 "Integrity": `Capture::verify` walks the hash chain and checks every frame,
//! payload, the index and the trailer, and says in one sentence per problem what is wrong.

use rkyv::rancor;

use super::{BlockInfo, Capture};
use crate::chain::{chain_digest, seed_digest, Digest};
use crate::error::{Error, Result};
use crate::frame::{
    FrameHeader, Trailer, DIGEST_LEN, FILE_HEADER_LEN, FRAME_HEADER_LEN, TRAILER_LEN,
};
use crate::payload::{
    ArchivedIndex, ArchivedMeta, ArchivedSeal, ArchivedStacks, ArchivedStats, ArchivedStrings,
    ArchivedSymbols, ArchivedTarget, BlockKind,
};

impl Capture {
    /// Checks every byte: header, each frame's checksum, sequence number and chained digest,
    /// each payload's decompression and archive validity, the index and the trailer.
    pub fn verify(&self) -> VerifyReport {
        let b = &self.bytes[..];
        let mut problems = Vec::new();
        let mut prev = seed_digest(&self.header);
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
                    let info = self.block_at(pos, &h);
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
            digest: hex::encode(prev),
            blocks: frames,
            problems,
        }
    }

    fn check_payload(&self, info: &BlockInfo) -> Result<()> {
        if info.kind == BlockKind::Events as u16 {
            // Decompressed, validated as its file's version's layout, and every event decoded.
            let p = self.events_block(info)?;
            if let Some(Err(e)) = p.block().iter().find(|r| r.is_err()) {
                return Err(Error::corrupt(info.offset, e.0));
            }
            return Ok(());
        }
        let raw = self.decompress(info)?;
        let bad =
            |e: rancor::BoxedError| Error::corrupt(info.offset, format!("invalid archive: {e}"));
        match BlockKind::from_u16(info.kind) {
            Some(BlockKind::Meta) => valid::<ArchivedMeta>(&raw),
            Some(BlockKind::Target) => valid::<ArchivedTarget>(&raw),
            Some(BlockKind::Strings) => valid::<ArchivedStrings>(&raw),
            Some(BlockKind::Stacks) => valid::<ArchivedStacks>(&raw),
            Some(BlockKind::Symbols) => valid::<ArchivedSymbols>(&raw),
            Some(BlockKind::Stats) => valid::<ArchivedStats>(&raw),
            Some(BlockKind::Index) => valid::<ArchivedIndex>(&raw),
            Some(BlockKind::Seal) => valid::<ArchivedSeal>(&raw),
            Some(BlockKind::Events) | None => Ok(()),
        }
        .map_err(bad)
    }
}

/// Checks that `raw` is a valid archive of `T` (rkyv's checked access).
fn valid<T>(raw: &[u8]) -> std::result::Result<(), rancor::BoxedError>
where
    T: rkyv::Portable
        + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::BoxedError>>,
{
    rkyv::access::<T, rancor::BoxedError>(raw).map(|_| ())
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
