//! Whole-file tests: round trips through a real file, truncation at every byte of the last
//! blocks, and tampering detection.

use gcap_format::synthetic::{write_capture, Synthetic};
use gcap_format::{Capture, Event, EventData, Meta, Stats, Symbol, Target, Writer, WriterOptions};
use proptest::prelude::*;

fn opts(block_events: usize) -> WriterOptions {
    WriterOptions {
        block_events,
        ts_shift: 0,
        file_id: Some([1; 16]),
        ..WriterOptions::default()
    }
}

/// A small multi-block capture with every dictionary kind and a known event list.
fn small_capture(block_events: usize, n: u64) -> (Vec<u8>, Vec<Event>) {
    let mut w = Writer::new(Vec::new(), opts(block_events)).unwrap();
    w.write_meta(&Meta {
        host: "h".into(),
        ..Meta::default()
    })
    .unwrap();
    w.write_target(&Target {
        id: 0,
        pid: 99,
        exe: "/srv/app".into(),
        go_version: "go1.21.13".into(),
        ..Target::default()
    })
    .unwrap();
    let mut g = Synthetic::new(7, 2, 300.0);
    g.prepare(&mut w, 0);
    let f = w.intern("main.main");
    let file = w.intern("main.go");
    w.add_symbols(
        0,
        &[Symbol {
            pc: 0x4a0000,
            entry: 0x4a0000,
            function: f,
            file,
            line: 12,
        }],
    );
    let mut events = Vec::new();
    for _ in 0..n {
        let e = g.next_event();
        events.push(e.clone());
        w.push(0, e).unwrap();
    }
    w.write_stats(&Stats {
        stop_reason: "test".into(),
        lost_per_cpu: vec![0, 3],
        ..Stats::default()
    })
    .unwrap();
    let (_, bytes) = w.finish().unwrap();
    events.sort_by_key(|e| e.ts);
    (bytes, events)
}

#[test]
fn roundtrip_through_a_file() {
    let dir = tempdir();
    let path = dir.join("a.gcap");
    let f = gcap_format::create_file(&path, false).unwrap();
    let w = Writer::new(f, opts(1000)).unwrap();
    let (summary, _) = write_capture(w, 10_000, 3).unwrap();
    let cap = Capture::open(&path).unwrap();
    assert!(cap.recovery().complete);
    assert_eq!(cap.event_count(), 10_000);
    assert_eq!(summary.events, 10_000);
    assert_eq!(cap.digest(), summary.digest);
    let v = cap.verify();
    assert!(v.intact, "{:?}", v.problems);
    // Mode 0600, and no overwrite without force.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(matches!(
        gcap_format::create_file(&path, false),
        Err(gcap_format::Error::Exists { .. })
    ));
    let link = dir.join("link.gcap");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(matches!(
        gcap_format::create_file(&link, true),
        Err(gcap_format::Error::Symlink { .. })
    ));
    assert!(gcap_format::create_file(&path, true).is_ok());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dictionaries_and_events_read_back() {
    let (bytes, events) = small_capture(100, 1000);
    let cap = Capture::from_vec(bytes).unwrap();
    assert_eq!(cap.meta().unwrap().host, "h");
    assert_eq!(cap.targets()[0].pid, 99);
    assert_eq!(cap.stats().unwrap().lost_per_cpu, vec![0, 3]);
    let read: Vec<Event> = cap.events().unwrap().into_iter().map(|(_, e)| e).collect();
    assert_eq!(read, events);
    let sym = cap.symbolize(0, 0x4a0000);
    assert_eq!(cap.string(sym[0].function), "main.main");
    assert_eq!(sym[0].line, 12);
    // Stacks referenced by events resolve.
    for e in &read {
        if let EventData::GoBlock { stack, .. } = e.data {
            assert!(!cap.stack(0, stack).is_empty());
        }
    }
}

/// Cutting the file anywhere inside its last blocks keeps every block that was complete.
#[test]
fn truncation_at_every_byte_of_the_last_blocks() {
    let (bytes, _) = small_capture(50, 600);
    let full = Capture::from_vec(bytes.clone()).unwrap();
    let blocks = full.blocks().to_vec();
    assert!(blocks.len() > 10);
    // Cover the last four blocks, the index and the trailer.
    let from = blocks[blocks.len() - 4].offset as usize;
    let index_end = (bytes.len() - 68) as u64;
    eprintln!(
        "cutting at each of {} offsets (last 4 blocks, index, trailer)",
        bytes.len() - from
    );
    for cut in from..bytes.len() {
        let cap = Capture::from_vec(bytes[..cut].to_vec()).unwrap();
        let complete: Vec<_> = blocks
            .iter()
            .filter(|b| b.offset + frame_len(b) <= cut as u64)
            .collect();
        assert_eq!(cap.blocks().len(), complete.len(), "cut at {cut}");
        assert!(!cap.recovery().complete);
        let mut end = complete.last().map_or(32, |b| b.offset + frame_len(b));
        // A complete index frame (file cut inside the trailer) is readable, not discarded.
        if cut as u64 >= index_end {
            end = index_end;
        }
        assert_eq!(
            cap.recovery().bytes_discarded,
            cut as u64 - end,
            "cut at {cut}"
        );
        let expect: u64 = complete.iter().map(|b| b.events as u64).sum();
        assert_eq!(cap.event_count(), expect, "cut at {cut}");
        assert_eq!(cap.events().unwrap().len() as u64, expect);
        assert!(!cap.verify().intact);
    }
}

fn frame_len(b: &gcap_format::BlockInfo) -> u64 {
    24 + 32 + b.payload_len as u64
}

/// Every single-byte change anywhere in a small capture is caught by verify.
#[test]
fn verify_catches_every_flipped_byte() {
    let (bytes, _) = small_capture(100, 300);
    assert!(Capture::from_vec(bytes.clone()).unwrap().verify().intact);
    eprintln!("flipping each of {} bytes", bytes.len());
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        match Capture::from_vec(b) {
            Err(_) => {} // the header itself was hit: refused outright
            Ok(cap) => assert!(!cap.verify().intact, "flip at byte {i} undetected"),
        }
    }
}

#[test]
fn verify_catches_removed_reordered_and_appended_blocks() {
    let (bytes, _) = small_capture(100, 1000);
    let cap = Capture::from_vec(bytes.clone()).unwrap();
    let b = cap.blocks().to_vec();
    let (x, y) = (&b[4], &b[5]);
    let (xs, xe) = (x.offset as usize, (x.offset + frame_len(x)) as usize);
    let ye = (y.offset + frame_len(y)) as usize;
    // Removed.
    let mut removed = bytes[..xs].to_vec();
    removed.extend_from_slice(&bytes[xe..]);
    assert!(!Capture::from_vec(removed).unwrap().verify().intact);
    // Swapped.
    let mut swapped = bytes[..xs].to_vec();
    swapped.extend_from_slice(&bytes[xe..ye]);
    swapped.extend_from_slice(&bytes[xs..xe]);
    swapped.extend_from_slice(&bytes[ye..]);
    assert_eq!(swapped.len(), bytes.len());
    assert!(!Capture::from_vec(swapped).unwrap().verify().intact);
    // Appended.
    for extra in [&b"x"[..], &bytes[xs..xe]] {
        let mut appended = bytes.clone();
        appended.extend_from_slice(extra);
        let cap = Capture::from_vec(appended).unwrap();
        assert!(!cap.verify().intact);
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(matches!(
        Capture::from_vec(vec![]),
        Err(gcap_format::Error::NotACapture)
    ));
    assert!(Capture::from_vec(b"hello world, not a capture at all".to_vec()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Arbitrary corruption of a real capture never panics and never allocates without bound.
    #[test]
    fn corrupted_files_never_panic(seed in any::<u64>(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..20)) {
        let (mut bytes, _) = small_capture(64, 200 + seed % 200);
        for (pos, v) in flips {
            let n = bytes.len();
            bytes[pos % n] = v;
        }
        if let Ok(cap) = Capture::from_vec(bytes) {
            let _ = cap.events();
            let _ = cap.verify();
        }
    }
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "gcap-format-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A block whose header claims a bigger raw size than its zstd frame (a decompression bomb
/// or a lie) is refused before allocation, and the rest of the file still reads.
#[test]
fn lying_raw_length_is_refused() {
    let (mut bytes, _) = small_capture(100, 1000);
    let cap = Capture::from_vec(bytes.clone()).unwrap();
    let target = *cap.event_blocks().nth(2).unwrap();
    // The size checks themselves, below the chain: a frame declaring 60 MiB from a few
    // hundred bytes is beyond the ratio bound; a smaller lie differs from the zstd frame.
    let lie = gcap_format::BlockInfo {
        raw_len: 60 << 20,
        ..target
    };
    let err = cap.events_block(&lie).err().unwrap().to_string();
    assert!(
        err.contains("beyond the reader's bound of 32768:1"),
        "{err}"
    );
    let lie = gcap_format::BlockInfo {
        raw_len: target.raw_len + 1000,
        ..target
    };
    let err = cap.events_block(&lie).err().unwrap().to_string();
    assert!(err.contains("zstd frame size differs"), "{err}");
    // The same lie written into the file (header CRC fixed) breaks the block's chain link:
    // the block is left out with a warning before anything is decompressed.
    let at = target.offset as usize;
    bytes[at + 16..at + 20].copy_from_slice(&(60u32 << 20).to_le_bytes());
    let crc = crc32(&bytes[at..at + 20]);
    bytes[at + 20..at + 24].copy_from_slice(&crc.to_le_bytes());
    let cap = Capture::from_vec(bytes).unwrap();
    assert!(cap.blocks().iter().all(|b| b.offset != target.offset));
    assert!(!cap.recovery().complete);
    assert!(
        cap.recovery()
            .warnings
            .iter()
            .any(|w| w.contains("does not match the hash chain")),
        "{:?}",
        cap.recovery().warnings
    );
    assert!(!cap.verify().intact);
    // The other blocks are fine.
    assert!(
        cap.event_blocks()
            .filter(|b| cap.events_block(b).is_ok())
            .count()
            >= 9
    );
}

fn crc32(b: &[u8]) -> u32 {
    // The same CRC-32 (IEEE) the format uses, computed bitwise to stay independent of it.
    let mut crc = !0u32;
    for &x in b {
        crc ^= x as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A write that fails midway (disk full) leaves a partial block; recovering cuts it off and
/// the capture can still be finished into a complete, intact file.
#[test]
fn recovers_from_a_failed_write() {
    let dir = tempdir();
    let path = dir.join("full.gcap");
    let f = gcap_format::create_file(&path, false).unwrap();
    let mut w = Writer::new(f, opts(100)).unwrap();
    w.write_meta(&Meta::default()).unwrap();
    let mut g = Synthetic::new(1, 2, 300.0);
    g.prepare(&mut w, 0);
    for _ in 0..1000 {
        w.push(0, g.next_event()).unwrap();
    }
    w.flush().unwrap();
    let good = w.bytes_written();
    // Simulate the partial frame a full disk leaves behind.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"GBLK\x06\x00\x01\x00partial").unwrap();
    }
    assert!(std::fs::metadata(&path).unwrap().len() > good);
    w.recover_from_write_error().unwrap();
    w.push(0, g.next_event()).unwrap(); // dropped: the writer is closed for events
    let (summary, _) = w.finish().unwrap();
    assert_eq!(summary.events, 1000);
    let cap = Capture::open(&path).unwrap();
    assert!(cap.recovery().complete);
    assert!(cap.verify().intact, "{:?}", cap.verify().problems);
    assert_eq!(cap.event_count(), 1000);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every single-bit flip of a real capture is either refused, warned about (the capture is
/// then not complete), or reads exactly as the original: nothing decodes silently wrong.
/// `GCAP_FLIP_FILE` sweeps another file; `GCAP_FLIP_BITS=1` flips one bit per byte (cycling
/// through the bit positions) instead of all eight.
#[test]
fn no_bit_flip_decodes_silently() {
    let path = std::env::var("GCAP_FLIP_FILE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../corpus/captures/lifecycle.gcap"
        )
        .into()
    });
    let bits: usize = std::env::var("GCAP_FLIP_BITS")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(8);
    let bytes = std::fs::read(&path).unwrap();
    let original = Capture::from_vec(bytes.clone()).unwrap();
    assert!(original.recovery().complete && original.recovery().warnings.is_empty());
    let facts = |c: &Capture| {
        (
            c.meta().cloned(),
            c.targets().to_vec(),
            c.stats().cloned(),
            c.blocks().len(),
            c.events().ok(),
        )
    };
    let expect = facts(&original);
    let (mut refused, mut warned, mut same) = (0u64, 0u64, 0u64);
    for i in 0..bytes.len() {
        for k in 0..bits {
            let bit = if bits == 1 { i % 8 } else { k };
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            match Capture::from_vec(b) {
                Err(_) => refused += 1,
                Ok(cap) if !cap.recovery().complete && !cap.recovery().warnings.is_empty() => {
                    warned += 1
                }
                Ok(cap) => {
                    assert!(
                        facts(&cap) == expect,
                        "flipping bit {bit} of byte {i} changed what the capture says, with no warning"
                    );
                    same += 1;
                }
            }
        }
    }
    eprintln!("{path}: {refused} flips refused, {warned} warned about, {same} read the same");
}

/// A capture still being written (no trailer) that shrinks while it is open, as gcap's cut
/// back after a full disk does, is read from memory: no SIGBUS, the same events.
#[test]
fn a_file_that_shrinks_while_open_is_still_read() {
    let dir = tempdir();
    let path = dir.join("live.gcap");
    let f = gcap_format::create_file(&path, false).unwrap();
    let mut w = Writer::new(f, opts(100)).unwrap();
    w.write_meta(&Meta::default()).unwrap();
    let mut g = Synthetic::new(5, 2, 300.0);
    g.prepare(&mut w, 0);
    for _ in 0..2000 {
        w.push(0, g.next_event()).unwrap();
    }
    w.flush().unwrap();
    let cap = Capture::open(&path).unwrap();
    let before = cap.events().unwrap();
    assert_eq!(before.len(), 2000);
    // Cut the file to a tenth, under the open capture, then read every block again.
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 10)
        .unwrap();
    assert_eq!(cap.events().unwrap(), before);
    assert!(!cap.verify().intact);
    drop(w);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A lost strings block (its payload zeroed on disk) costs its own strings only: later
/// strings blocks still place their entries at their ids. (A block whose stored digest is
/// lost too takes the next block with it: nothing then vouches for that one's bytes.)
#[test]
fn a_lost_strings_block_leaves_a_gap_not_a_refusal() {
    let mut w = Writer::new(Vec::new(), opts(100)).unwrap();
    w.write_meta(&Meta::default()).unwrap();
    let a = w.intern("first.block");
    w.flush().unwrap();
    let b = w.intern("second.block");
    w.flush().unwrap();
    let c = w.intern("third.block");
    let (_, mut bytes) = w.finish().unwrap();
    let cap = Capture::from_vec(bytes.clone()).unwrap();
    assert_eq!(
        [cap.string(a), cap.string(b), cap.string(c)],
        ["first.block", "second.block", "third.block"]
    );
    let second = cap.blocks()[2];
    assert_eq!(second.kind, 3, "the second strings block");
    let start = second.offset as usize + 24;
    let end = start + second.payload_len as usize;
    bytes[start..end].fill(0);
    let cap = Capture::from_vec(bytes).unwrap();
    assert!(!cap.recovery().complete);
    assert_eq!(cap.string(a), "first.block");
    assert_eq!(cap.string(b), "", "the lost string is unknown");
    assert_eq!(
        cap.string(c),
        "third.block",
        "{:?}",
        cap.recovery().warnings
    );
}

/// Recomputes every frame's digest from the one at `from` on, as someone rewriting the file
/// would (the frames must tile the bytes from `from` to the end).
fn rechain(b: &mut [u8], from: usize) {
    let mut prev: [u8; 32] = b[from - 32..from].try_into().unwrap();
    let mut pos = from;
    while pos + 24 <= b.len() {
        let payload_len = u32::from_le_bytes(b[pos + 12..pos + 16].try_into().unwrap()) as usize;
        let end = pos + 24 + payload_len;
        let mut h = blake3::Hasher::new();
        h.update(&prev);
        h.update(&b[pos..end]);
        prev = *h.finalize().as_bytes();
        b[end..end + 32].copy_from_slice(&prev);
        pos = end + 32;
    }
}

/// A file cut before its index opens from the frames' summaries: no events block is
/// decompressed at open. Each events block's zstd frame is broken here (and the chain
/// recomputed, so only decompressing could tell): the open still counts every event and
/// finds the time range, and only reading the events finds the damage.
#[test]
fn a_cut_file_opens_without_decompressing_its_events() {
    let (bytes, events) = small_capture(1000, 5000);
    let full = Capture::from_vec(bytes.clone()).unwrap();
    let evs: Vec<_> = full.event_blocks().copied().collect();
    assert_eq!(evs.len(), 5);
    let cut_at = (evs.last().unwrap().offset + frame_len(evs.last().unwrap())) as usize;
    let mut cut = bytes[..cut_at].to_vec();
    for b in &evs {
        // The zstd magic, after the 24-byte frame header and the 24-byte summary.
        cut[b.offset as usize + 48] ^= 0xff;
    }
    rechain(&mut cut, evs[0].offset as usize);
    let cap = Capture::from_vec(cut).unwrap();
    assert!(!cap.recovery().complete);
    assert!(
        cap.recovery()
            .warnings
            .iter()
            .all(|w| !w.contains("damaged block")),
        "{:?}",
        cap.recovery().warnings
    );
    assert_eq!(cap.event_count(), 5000);
    assert_eq!(
        cap.time_range(),
        Some((events[0].ts, events.last().unwrap().ts))
    );
    assert!(cap.events().is_err(), "the broken blocks fail when read");
    assert!(!cap.verify().intact);
}

/// A summary that disagrees with its block is refused when the block is read.
#[test]
fn a_lying_summary_is_refused() {
    let (bytes, _) = small_capture(1000, 2000);
    let full = Capture::from_vec(bytes.clone()).unwrap();
    let first = *full.event_blocks().next().unwrap();
    let mut b = bytes.clone();
    // The summary's event count, after the 24-byte frame header and the 4-byte target.
    let at = first.offset as usize + 24 + 4;
    b[at] ^= 1;
    let trailer_at = b.len() - 68;
    let mut cut = b[..trailer_at].to_vec();
    rechain(&mut cut, first.offset as usize);
    let cap = Capture::from_vec(cut).unwrap();
    let info = *cap.event_blocks().next().unwrap();
    let e = cap.events_block(&info).err().expect("refused");
    assert!(e.to_string().contains("summary"), "{e}");
    assert!(!cap.verify().intact);
}

/// `seal` keeps the cut file's blocks byte for byte, adds a seal block, an index and a
/// trailer: the result is complete and intact, says it was sealed, and holds every event
/// the cut file did.
#[test]
fn a_cut_capture_seals_into_a_finished_one() {
    let (bytes, _) = small_capture(500, 3000);
    let full = Capture::from_vec(bytes.clone()).unwrap();
    let blocks: Vec<_> = full.blocks().to_vec();
    // Cut in the middle of the fourth events block.
    let evs: Vec<_> = full.event_blocks().copied().collect();
    let cut_at = evs[3].offset as usize + 40;
    let cut = Capture::from_vec(bytes[..cut_at].to_vec()).unwrap();
    let (_, out) =
        gcap_format::seal(&cut, Vec::new(), "test 1.0", 1_800_000_000_000_000_000).unwrap();
    let sealed = Capture::from_vec(out.clone()).unwrap();
    assert!(
        sealed.recovery().complete,
        "{:?}",
        sealed.recovery().warnings
    );
    let v = sealed.verify();
    assert!(v.intact, "{:?}", v.problems);
    assert!(sealed.evidence().matches_trailer);
    assert_eq!(sealed.event_count(), cut.event_count());
    assert_eq!(sealed.event_count(), 1500);
    assert_eq!(sealed.events().unwrap(), cut.events().unwrap());
    let kept = blocks.iter().filter(|b| b.offset < evs[3].offset).count();
    let end = evs[3].offset as usize;
    assert_eq!(
        out[..end],
        bytes[..end],
        "the kept frames are copied byte for byte"
    );
    let s = sealed.sealed().expect("the seal block is read");
    assert_eq!(s.sealed_by, "test 1.0");
    assert_eq!(s.blocks_kept as usize, kept);
    assert_eq!(s.bytes_dropped, (cut_at - end) as u64);
    assert_eq!(s.source_len, cut_at as u64);
    assert_eq!(s.source_digest, cut.digest());
    assert_eq!(s.chain_head, cut.evidence().chain_head);
    // gcap's own files carry no seal, and a finished file is not sealed again.
    assert!(full.sealed().is_none());
    assert!(gcap_format::seal(&full, Vec::new(), "t", 0).is_err());
    assert!(gcap_format::seal(&sealed, Vec::new(), "t", 0).is_err());
}

/// Damage in the middle: only the unbroken chain before it is kept (what follows cannot be
/// shown to belong to the capture's chain).
#[test]
fn sealing_stops_at_the_first_broken_link() {
    let (bytes, _) = small_capture(500, 3000);
    let full = Capture::from_vec(bytes.clone()).unwrap();
    let evs: Vec<_> = full.event_blocks().copied().collect();
    let mut b = bytes.clone();
    b[evs[2].offset as usize + 60] ^= 0x10;
    let damaged = Capture::from_vec(b).unwrap();
    assert!(!damaged.recovery().complete);
    let (_, out) = gcap_format::seal(&damaged, Vec::new(), "t", 0).unwrap();
    let sealed = Capture::from_vec(out).unwrap();
    assert!(sealed.verify().intact);
    assert_eq!(sealed.event_count(), 1000);
    let s = sealed.sealed().unwrap();
    assert_eq!(s.bytes_dropped, bytes.len() as u64 - evs[2].offset);
}

/// A goroutine leak's snapshot (many goroutines parked at one site) compresses far past the
/// dictionaries' 256:1 bound; the reader must still read it, since it is real evidence.
#[test]
fn a_snapshot_of_one_site_compresses_past_256_and_still_reads() {
    let mut w = Writer::new(Vec::new(), opts(65_536)).unwrap();
    w.write_meta(&Meta::default()).unwrap();
    w.write_target(&Target {
        id: 0,
        pid: 99,
        ..Target::default()
    })
    .unwrap();
    let site = w.intern_stack(0, &[0x4a0010, 0x4a0020]);
    let parked = w.intern_stack(0, &[0x401000, 0x4a0030]);
    const N: u64 = 20_000;
    for goid in 0..N {
        let data = EventData::GoSnapshot {
            status: 4,
            reason: 7,
            waiting_ns: u64::MAX,
            parent: 1,
            creation: site,
            start: site,
            stack: parked,
            snapshot: 0,
        };
        w.push(
            0,
            Event {
                ts: 1_000,
                goid: 100 + goid,
                data,
            },
        )
        .unwrap();
    }
    let (_, bytes) = w.finish().unwrap();
    let cap = Capture::from_vec(bytes).unwrap();
    let events = cap
        .blocks()
        .iter()
        .find(|b| b.kind == gcap_format::BlockKind::Events as u16)
        .unwrap();
    let ratio = events.raw_len as f64 / events.payload_len as f64;
    assert!(ratio > 256.0, "the block compresses only {ratio:.0}:1");
    assert!(cap.verify().intact, "{:?}", cap.verify().problems);
    assert_eq!(cap.events().unwrap().len() as u64, N);
    assert!(
        cap.recovery().warnings.is_empty(),
        "{:?}",
        cap.recovery().warnings
    );
}
