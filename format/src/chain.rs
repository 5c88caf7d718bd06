//! FORMAT.md §3 "Integrity: the hash chain": every frame's digest commits to the previous
//! one, starting from the file header, so the last digest (the evidence digest) pins every
//! byte before it.
//!
//! ```text
//! d(-1) = BLAKE3(file header)
//! d(i)  = BLAKE3(d(i-1) || frame_header(i) || payload(i))
//! ```
//! The writer extends the chain; `Capture::verify` (in `reader::verify`) walks it.

use crate::frame::{FileHeader, DIGEST_LEN};

/// A BLAKE3 digest.
pub(crate) type Digest = [u8; DIGEST_LEN];

/// The chain's starting digest: BLAKE3 of the encoded file header.
pub(crate) fn seed_digest(header: &FileHeader) -> Digest {
    *blake3::hash(&header.encode()).as_bytes()
}

/// The digest of a frame, chained to the previous one.
pub(crate) fn chain_digest(prev: &Digest, header: &[u8], payload: &[u8]) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(header);
    h.update(payload);
    *h.finalize().as_bytes()
}
