//! Write and read throughput of the format on the synthetic goroutine-heavy stream.
//!
//! `cargo run --release -p gcap-format --example bench -- [EVENTS] [TS_SHIFT]`
//!
//! Prints events/s for writing (one core: encode + zstd + BLAKE3 chain + write to a file),
//! reading on one core (mmap + zstd decompress + checked rkyv access + decode every event),
//! reading with every core (rayon), the bytes per event, and zstd's own decompression speed
//! on the same blocks as the physical limit.

mod measure;

use gcap_format::synthetic::Synthetic;
use gcap_format::{Capture, Writer, WriterOptions};
use measure::{read_all, thread_cpu, zstd_only};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000_000);
    let shift: u8 = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(WriterOptions::default().ts_shift);
    let dir = std::env::temp_dir().join(format!("gcap-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.gcap");

    // Generate first so generation time is not counted as write time.
    let mut gen = Synthetic::new(42, 2, 500.0);
    let opts = WriterOptions {
        ts_shift: shift,
        ..WriterOptions::default()
    };
    let mut w = Writer::new(gcap_format::create_file(&path, true)?, opts)?;
    gen.prepare(&mut w, 0);
    let events: Vec<_> = (0..n).map(|_| gen.next_event()).collect();

    let c = thread_cpu();
    for e in events {
        w.push(0, e)?;
    }
    let (summary, _) = w.finish()?;
    let write_s = thread_cpu() - c;

    let c = thread_cpu();
    let cap = Capture::open(&path)?;
    let (count, check) = read_all(&cap)?;
    let read_s = thread_cpu() - c;
    assert_eq!(count, n);

    // Opening alone: map, index, and every block's chain link (BLAKE3 over the whole file).
    let t = Instant::now();
    let opened = Capture::open(&path)?;
    let open_s = t.elapsed().as_secs_f64();
    assert!(opened.evidence().matches_trailer);
    drop(opened);

    let t = Instant::now();
    let per_block = cap.par_map_blocks(|p| {
        let mut c = 0u64;
        for ev in p.block().iter() {
            c = c.wrapping_add(
                ev.map_err(|e| gcap_format::Error::Invalid(e.0.into()))?
                    .goid,
            );
        }
        Ok(c)
    });
    let par_s = t.elapsed().as_secs_f64();
    assert!(per_block.iter().all(|r| r.is_ok()));

    // zstd alone on the same payloads: the floor for any reader of this file.
    let bytes = std::fs::read(&path)?;
    let c = thread_cpu();
    let raw_total = zstd_only(&cap, &bytes)?;
    let zstd_s = thread_cpu() - c;

    let threads = rayon::current_num_threads();
    println!("events                   {n}");
    println!("ts resolution            {} ns", 1u64 << shift);
    println!("file bytes               {}", summary.bytes);
    println!(
        "bytes/event              {:.3}",
        summary.bytes as f64 / n as f64
    );
    println!(
        "raw (uncompressed) B/ev  {:.3}",
        raw_total as f64 / n as f64
    );
    println!(
        "write (1 core, CPU time) {:.1} M events/s",
        n as f64 / write_s / 1e6
    );
    println!(
        "read  (1 core, CPU time) {:.1} M events/s",
        n as f64 / read_s / 1e6
    );
    println!(
        "read  ({threads} threads, wall)   {:.1} M events/s",
        n as f64 / par_s / 1e6
    );
    println!(
        "zstd decompress only     {:.1} M events/s (1 core, CPU time)",
        n as f64 / zstd_s / 1e6
    );
    println!("read time / zstd time    {:.2}x", read_s / zstd_s);
    println!(
        "open ({threads} threads, wall)   {:.1} ms for {:.1} MB (chain links checked: {:.0} MB/s)",
        open_s * 1e3,
        summary.bytes as f64 / 1e6,
        summary.bytes as f64 / 1e6 / open_s
    );
    println!("(checksum {check:x})");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
