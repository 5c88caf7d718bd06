//! Compressed size of each events-block column on the synthetic stream (tuning aid).
//! `cargo run --release -p gcap-format --example columns -- [TS_SHIFT]`
use gcap_format::synthetic::Synthetic;
use gcap_format::{EventsBlock, Writer, WriterOptions};

fn main() {
    let shift: u8 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(4);
    let mut w = Writer::new(Vec::new(), WriterOptions::default()).unwrap();
    let mut g = Synthetic::new(42, 2, 500.0);
    g.prepare(&mut w, 0);
    let mut events: Vec<_> = (0..65536).map(|_| g.next_event()).collect();
    let b = EventsBlock::encode(0, &mut events, shift);
    let n = b.count as f64;
    for (name, col) in [
        ("kinds", &b.kinds),
        ("ts", &b.ts),
        ("goids", &b.goids),
        ("args", &b.args),
    ] {
        let z = zstd::bulk::compress(col, 3).unwrap();
        println!(
            "{name:6} raw {:.2} B/ev  zstd {:.3} B/ev",
            col.len() as f64 / n,
            z.len() as f64 / n
        );
    }
}
