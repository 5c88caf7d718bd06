//! Prints what a capture's budget did: every coverage change (the windows), the last cost
//! per target, and the budget's facts from the stats block (calibration, attach and detach
//! times). The numbers of docs/BENCHMARKS.md's budget section come from it.
//!
//! `cargo run --release -p gcap --example windows -- FILE`

use gcap_format::{Capture, EventData};

fn main() -> gcap_format::Result<()> {
    let path = std::env::args().nth(1).expect("usage: windows FILE.gcap");
    let cap = Capture::open(&path)?;
    let events = cap.events()?;
    let start = events.iter().map(|(_, e)| e.ts).min().unwrap_or(0);
    let ms = |ts: u64| ts.saturating_sub(start) as f64 / 1e6;
    let mut last_cost = std::collections::BTreeMap::new();
    for (target, e) in &events {
        match e.data {
            EventData::Coverage { groups, cause } => {
                println!(
                    "{:>10.1} ms  target {target}  groups {groups:#04x}  cause {cause}",
                    ms(e.ts)
                );
            }
            EventData::Overhead {
                budget_ppm,
                cost_ns,
                target_cpu_ns,
                hits,
            } => {
                last_cost.insert(*target, (budget_ppm, cost_ns, target_cpu_ns, hits));
            }
            _ => {}
        }
    }
    for (target, (budget_ppm, cost, cpu, hits)) in last_cost {
        println!(
            "target {target}: budget {:.2}%  cost {:.1} ms of {:.1} ms CPU = {:.2}%  hits {hits}",
            f64::from(budget_ppm) / 1e4,
            cost as f64 / 1e6,
            cpu as f64 / 1e6,
            100.0 * cost as f64 / cpu.max(1) as f64
        );
    }
    if let Some(stats) = cap.stats() {
        for kv in &stats.extra {
            if kv.key.starts_with("budget.") || kv.key.starts_with("windows.") {
                println!("{} = {}", kv.key, kv.value);
            }
        }
    }
    Ok(())
}
