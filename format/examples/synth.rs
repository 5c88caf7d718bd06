//! Writes a synthetic capture of N events: `cargo run --release -p gcap-format --example synth -- OUT N`
fn main() -> gcap_format::Result<()> {
    let mut a = std::env::args().skip(1);
    let out = a.next().expect("usage: synth OUT N");
    let n: u64 = a.next().map_or(1_000_000, |s| s.parse().expect("N"));
    // GCAP_ZSTD_LEVEL and GCAP_TS_SHIFT override the writer defaults (tuning experiments).
    let mut opts = gcap_format::WriterOptions::default();
    if let Some(l) = std::env::var("GCAP_ZSTD_LEVEL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.zstd_level = l;
    }
    if let Some(s) = std::env::var("GCAP_TS_SHIFT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.ts_shift = s;
    }
    let w = gcap_format::Writer::new(gcap_format::create_file(out.as_ref(), true)?, opts)?;
    let (s, _) = gcap_format::synthetic::write_capture(w, n, 42)?;
    println!(
        "{out}: {} events, {} bytes, {:.3} B/event",
        s.events,
        s.bytes,
        s.bytes as f64 / s.events as f64
    );
    Ok(())
}
