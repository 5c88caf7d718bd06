//! Wall time of `Capture::open` on a file (median of 5), and what it found: for measuring how
//! a file cut before its index opens (docs/BENCHMARKS.md).
//! `cargo run --release -p gcap-format --example open_cost -- FILE`
fn main() -> gcap_format::Result<()> {
    let path = std::env::args().nth(1).expect("usage: open_cost FILE");
    let mut times = Vec::new();
    let mut found = (0, 0, false);
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let cap = gcap_format::Capture::open(&path)?;
        times.push(t.elapsed().as_secs_f64());
        found = (
            cap.event_blocks().count(),
            cap.event_count(),
            cap.recovery().complete,
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{path}: open {:.3} s (median of 5); {} events blocks, {} events, complete {}",
        times[2], found.0, found.1, found.2
    );
    Ok(())
}
