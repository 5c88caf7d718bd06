//! The physical floor for reading a capture: zstd's own decompression of its events blocks,
//! beside the format's full read path (decompress + checked rkyv access + decode every event),
//! on one core (thread CPU time, best of 3). Prints one JSON line.
//!
//! `cargo run --release -p gcap-format --example zstd_floor -- FILE`
//! (used by scripts/bench-vs-trace.sh; see docs/BENCHMARKS.md "gcap vs runtime/trace")
mod measure;

use gcap_format::Capture;
use measure::{read_all, thread_cpu, zstd_only};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).expect("usage: zstd_floor FILE");
    let cap = Capture::open(&path)?;
    let bytes = std::fs::read(&path)?;
    let (mut zstd_s, mut read_s) = (f64::MAX, f64::MAX);
    let (mut events, mut raw, mut check) = (0u64, 0usize, 0u64);
    for _ in 0..3 {
        let c = thread_cpu();
        raw = zstd_only(&cap, &bytes)?;
        zstd_s = zstd_s.min(thread_cpu() - c);

        let c = thread_cpu();
        let (n, sum) = read_all(&cap)?;
        read_s = read_s.min(thread_cpu() - c);
        events = n;
        check = check.wrapping_add(sum);
    }
    println!(
        "{{\"events\":{events},\"compressed_bytes\":{},\"raw_bytes\":{raw},\"zstd_cpu_s\":{zstd_s:.6},\"read_cpu_s\":{read_s:.6},\"checksum\":{}}}",
        cap.event_blocks().map(|b| b.payload_len as u64).sum::<u64>(),
        check % 1000
    );
    Ok(())
}
