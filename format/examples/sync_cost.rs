//! What durable writes cost: writes a capture in flush intervals of `EVENTS` events each,
//! once with `Writer::flush` and once with `Writer::flush_durably` (fdatasync), next to each
//! other in DIR, and prints the wall time a flush takes either way.
//! `cargo run --release -p gcap-format --example sync_cost -- DIR [FLUSHES] [EVENTS]`
use std::time::Instant;

use gcap_format::synthetic::Synthetic;
use gcap_format::{Writer, WriterOptions};

fn main() -> gcap_format::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(
        args.next()
            .expect("usage: sync_cost DIR [FLUSHES] [EVENTS]"),
    );
    let flushes: usize = args.next().map_or(50, |a| a.parse().expect("FLUSHES"));
    let per_flush: usize = args.next().map_or(100_000, |a| a.parse().expect("EVENTS"));
    for durable in [false, true] {
        let path = dir.join(format!("sync-cost-{durable}.gcap"));
        let mut w = Writer::new(
            gcap_format::create_file(&path, true)?,
            WriterOptions::default(),
        )?;
        let mut g = Synthetic::new(42, 2, 500.0);
        g.prepare(&mut w, 0);
        let mut flush_s = Vec::with_capacity(flushes);
        for _ in 0..flushes {
            for _ in 0..per_flush {
                w.push(0, g.next_event())?;
            }
            let t = Instant::now();
            if durable {
                w.flush_durably()?;
            } else {
                w.flush()?;
            }
            flush_s.push(t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        let (summary, _) = if durable {
            w.finish_durably()?
        } else {
            w.finish()?
        };
        gcap_format::sync_dir_of(&path)?;
        let finish_s = t.elapsed().as_secs_f64();
        flush_s.sort_by(f64::total_cmp);
        let mean = flush_s.iter().sum::<f64>() / flush_s.len() as f64;
        println!(
            "{:<13} {} flushes of {} events ({:.0} KB each): mean {:.2} ms, p50 {:.2} ms, max {:.2} ms; finish {:.2} ms",
            if durable { "flush_durably" } else { "flush" },
            flushes,
            per_flush,
            summary.bytes as f64 / flushes as f64 / 1e3,
            mean * 1e3,
            flush_s[flush_s.len() / 2] * 1e3,
            flush_s[flush_s.len() - 1] * 1e3,
            finish_s * 1e3
        );
        std::fs::remove_file(&path).map_err(|e| gcap_format::Error::Io {
            context: "removing the benchmark file".into(),
            source: e,
        })?;
    }
    Ok(())
}
