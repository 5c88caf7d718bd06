//! Decompression bombs: small, well-chained files whose blocks declare (and really hold)
//! huge archives. The reader must refuse them within the bounds FORMAT.md states (§1.2
//! "Reader limits"), measured here as the peak of the heap it allocates while opening,
//! decoding and verifying each file.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use gcap_format::Capture;

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The same layout as the format's strings block (rkyv archives are structural).
#[derive(rkyv::Archive, rkyv::Serialize)]
struct Strings {
    first_id: u32,
    strings: Vec<String>,
}

/// The same layout as the format's stacks block.
#[derive(rkyv::Archive, rkyv::Serialize)]
struct Stacks {
    target: u32,
    first_id: u32,
    lens: Vec<u16>,
    pcs: Vec<u64>,
}

/// Builds a capture frame by frame, chained as a writer chains it, with no trailer.
struct Forge {
    bytes: Vec<u8>,
    prev: [u8; 32],
    seq: u32,
}

impl Forge {
    fn new() -> Forge {
        let mut h = [0u8; 32];
        h[0..8].copy_from_slice(b"\x89GCAP\r\n\x1a");
        h[8..10].copy_from_slice(&1u16.to_le_bytes());
        h[10..12].copy_from_slice(&1u16.to_le_bytes()); // zstd checksums
        h[12..28].copy_from_slice(&[0x5a; 16]);
        let crc = crc32fast::hash(&h[0..28]);
        h[28..32].copy_from_slice(&crc.to_le_bytes());
        Forge {
            prev: *blake3::hash(&h).as_bytes(),
            bytes: h.to_vec(),
            seq: 0,
        }
    }

    fn frame(&mut self, kind: u16, raw: &[u8]) {
        let mut z = zstd::bulk::Compressor::new(19).unwrap();
        z.include_checksum(true).unwrap();
        let payload = z.compress(raw).unwrap();
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(b"GBLK");
        h[4..6].copy_from_slice(&kind.to_le_bytes());
        h[6..8].copy_from_slice(&1u16.to_le_bytes());
        h[8..12].copy_from_slice(&self.seq.to_le_bytes());
        h[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        let crc = crc32fast::hash(&h[0..20]);
        h[20..24].copy_from_slice(&crc.to_le_bytes());
        let mut d = blake3::Hasher::new();
        d.update(&self.prev);
        d.update(&h);
        d.update(&payload);
        self.prev = *d.finalize().as_bytes();
        self.bytes.extend_from_slice(&h);
        self.bytes.extend_from_slice(&payload);
        self.bytes.extend_from_slice(&self.prev);
        self.seq += 1;
    }
}

/// Peak heap bytes allocated by opening, decoding and verifying `bytes`, and the capture's
/// warnings.
fn peak_reading(bytes: &[u8]) -> (usize, Vec<String>) {
    let copy = bytes.to_vec();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let warnings = match Capture::from_vec(copy) {
        Ok(cap) => {
            let _ = cap.events();
            let v = cap.verify();
            assert!(!v.intact, "a bomb must not verify as intact");
            cap.recovery().warnings.clone()
        }
        Err(e) => vec![e.to_string()],
    };
    (PEAK.load(Ordering::Relaxed) - base, warnings)
}

#[test]
fn bombs_are_refused_within_the_stated_bounds() {
    const BLOCKS: u32 = 8;
    // Strings: 1M empty strings a block (8 MiB of archive, 24 MiB as Strings in memory).
    let mut strings = Forge::new();
    let block = Strings {
        first_id: 1,
        strings: vec![String::new(); 1 << 20],
    };
    for i in 0..BLOCKS {
        let b = Strings {
            first_id: 1 + i * (1 << 20),
            strings: block.strings.clone(),
        };
        strings.frame(3, &rkyv::to_bytes::<rancor::BoxedError>(&b).unwrap());
    }
    drop(block);
    // Stacks: 4M empty stacks a block (8 MiB of archive, 32 MiB of ranges in memory).
    let mut stacks = Forge::new();
    for i in 0..BLOCKS {
        let b = Stacks {
            target: 0,
            first_id: 1 + i * (4 << 20),
            lens: vec![0; 4 << 20],
            pcs: Vec::new(),
        };
        stacks.frame(4, &rkyv::to_bytes::<rancor::BoxedError>(&b).unwrap());
    }
    for (name, f) in [("strings", &strings), ("stacks", &stacks)] {
        let len = f.bytes.len();
        let (peak, warnings) = peak_reading(&f.bytes);
        // The stated bound: 256 archive bytes per stored byte plus 64 KiB a block; memory
        // for what is kept is a small multiple of that. The old reader took 200+ MiB here.
        let bound = 4 * (256 * len + BLOCKS as usize * (64 << 10)) + (1 << 20);
        eprintln!(
            "{name} bomb: {len} bytes on disk, peak heap {peak} bytes while read (bound {bound})"
        );
        assert!(peak < bound, "{name}: peak {peak} bytes, bound {bound}");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("beyond the reader's bound")),
            "{name}: {warnings:?}"
        );
    }
}
