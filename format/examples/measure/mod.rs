//! What the benchmark examples (`bench`, `zstd_floor`) measure, written once: the thread CPU
//! clock, zstd alone on a capture's events blocks (the floor for any reader), and the
//! format's full read path.

use gcap_format::{Capture, FRAME_HEADER_LEN};

/// CPU seconds the calling thread has used: on a shared, noisy machine this is what "per
/// core" means.
pub fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Decompresses every events block of `cap` (whose file bytes are `bytes`) with zstd alone;
/// returns the decompressed bytes.
pub fn zstd_only(cap: &Capture, bytes: &[u8]) -> std::io::Result<usize> {
    let mut raw = 0;
    for info in cap.event_blocks() {
        let s = info.offset as usize + FRAME_HEADER_LEN;
        let out = zstd::bulk::decompress(
            &bytes[s..s + info.payload_len as usize],
            info.raw_len as usize,
        )?;
        raw += out.len();
    }
    Ok(raw)
}

/// Decodes every event of `cap` on this thread; returns the event count and a checksum that
/// keeps the work from being optimised away.
pub fn read_all(cap: &Capture) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let (mut events, mut check) = (0u64, 0u64);
    for info in cap.event_blocks() {
        let p = cap.events_block(info)?;
        p.block().for_each_raw(|ev| {
            events += 1;
            check = check.wrapping_add(ev.goid ^ ev.ts);
        })?;
    }
    Ok((events, check))
}
