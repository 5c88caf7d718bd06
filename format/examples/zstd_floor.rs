//! The physical floor for reading a capture: zstd's own decompression of its events blocks,
//! beside the format's full read path (decompress + checked rkyv access + decode every event),
//! on one core (thread CPU time, best of 3). Prints one JSON line.
//!
//! `cargo run --release -p gcap-format --example zstd_floor -- FILE`
//! (used by scripts/bench-vs-trace.sh; see docs/BENCHMARKS.md "gcap vs runtime/trace")
use gcap_format::Capture;

fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).expect("usage: zstd_floor FILE");
    let cap = Capture::open(&path)?;
    let bytes = std::fs::read(&path)?;
    let (mut zstd_s, mut read_s) = (f64::MAX, f64::MAX);
    let (mut events, mut raw, mut check) = (0u64, 0usize, 0u64);
    for _ in 0..3 {
        let c = thread_cpu();
        raw = 0;
        for info in cap.event_blocks() {
            let s = info.offset as usize + gcap_format::FRAME_HEADER_LEN;
            let out = zstd::bulk::decompress(
                &bytes[s..s + info.payload_len as usize],
                info.raw_len as usize,
            )?;
            raw += out.len();
        }
        zstd_s = zstd_s.min(thread_cpu() - c);

        let c = thread_cpu();
        events = 0;
        for info in cap.event_blocks() {
            let p = cap.events_block(info)?;
            p.archived().for_each_raw(|ev| {
                events += 1;
                check = check.wrapping_add(ev.goid ^ ev.ts);
            })?;
        }
        read_s = read_s.min(thread_cpu() - c);
    }
    println!(
        "{{\"events\":{events},\"compressed_bytes\":{},\"raw_bytes\":{raw},\"zstd_cpu_s\":{zstd_s:.6},\"read_cpu_s\":{read_s:.6},\"checksum\":{}}}",
        cap.event_blocks().map(|b| b.payload_len as u64).sum::<u64>(),
        check % 1000
    );
    Ok(())
}
