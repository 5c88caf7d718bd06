//! Reads every event of a capture on one thread (for profiling the read path, e.g. under
//! `valgrind --tool=callgrind`, whose instruction counts are repeatable on a busy machine).
//! `cargo run --release -p gcap-format --example read -- FILE`
fn main() -> gcap_format::Result<()> {
    let path = std::env::args().nth(1).expect("usage: read FILE");
    let cap = gcap_format::Capture::open(&path)?;
    let (mut n, mut check) = (0u64, 0u64);
    for info in cap.event_blocks() {
        let p = cap.events_block(info)?;
        p.block()
            .for_each_raw(|ev| {
                n += 1;
                check = check.wrapping_add(ev.goid ^ ev.ts ^ ev.args[0]);
            })
            .map_err(|e| gcap_format::Error::Invalid(e.to_string()))?;
    }
    println!("{n} events (checksum {check:x})");
    Ok(())
}
