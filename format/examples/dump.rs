//! Prints a capture's events with symbolized stacks (debugging aid).
//! `cargo run -p gcap-format --example dump -- FILE [LIMIT]`
use gcap_format::{Capture, EventData};

fn main() -> gcap_format::Result<()> {
    let mut a = std::env::args().skip(1);
    let path = a.next().expect("usage: dump FILE [LIMIT]");
    let limit: usize = a.next().map_or(usize::MAX, |s| s.parse().expect("LIMIT"));
    let cap = Capture::open(&path)?;
    let where_ = |t: u32, pc: u64| -> String {
        match cap.symbolize(t, pc).first() {
            Some(s) => format!(
                "{} ({}:{})",
                cap.string(s.function),
                cap.string(s.file),
                s.line
            ),
            None => format!("{pc:#x}?"),
        }
    };
    for (t, e) in cap.events()?.into_iter().take(limit) {
        let extra = match &e.data {
            EventData::GoCreate {
                creation, start, ..
            } => format!(
                " at {} start {}",
                cap.stack(t, *creation)
                    .first()
                    .map_or("-".into(), |&pc| where_(t, pc)),
                cap.stack(t, *start)
                    .first()
                    .map_or("-".into(), |&pc| where_(t, pc))
            ),
            EventData::GoBlock { stack, .. } => {
                let frames: Vec<String> = cap
                    .stack(t, *stack)
                    .iter()
                    .map(|&pc| where_(t, pc))
                    .collect();
                format!(" [{}]", frames.join(" <- "))
            }
            _ => String::new(),
        };
        println!("{} t{} g{} {:?}{}", e.ts, t, e.goid, e.data, extra);
    }
    Ok(())
}
