//! Re-encodes captures through this version's writer, block for block (the same events in the
//! same blocks, the same dictionaries) and prints bytes per event before and after: what the
//! current events-block encoding saves on real captures (docs/BENCHMARKS.md).
//! `cargo run --release -p gcap-format --example reencode -- FILE... [-o DIR]`
//! With `-o DIR`, the re-encoded files are written there under the same names.
use gcap_format::{Capture, Error, Result, Writer, WriterOptions};

fn reencode(path: &str) -> Result<(Capture, Vec<u8>)> {
    let cap = Capture::open(path)?;
    let shift = match cap.event_blocks().next() {
        Some(info) => cap.events_block(info)?.block().ts_shift,
        None => 5,
    };
    let opts = WriterOptions {
        // Never split a block: the original's boundaries are kept by flushing after each.
        block_events: usize::MAX,
        ts_shift: shift,
        ..WriterOptions::default()
    };
    let mut w = Writer::new(Vec::new(), opts)?;
    if let Some(m) = cap.meta() {
        w.write_meta(m)?;
    }
    for t in cap.targets() {
        w.write_target(t)?;
    }
    let mismatch = |what: &str| {
        Error::Invalid(format!(
            "{path}: {what} ids do not re-intern in order (a lost dictionary block?)"
        ))
    };
    for (id, s) in cap.strings().iter().enumerate().skip(1) {
        if w.intern(s) as usize != id {
            return Err(mismatch("string"));
        }
    }
    for t in cap.targets() {
        if let Some(table) = cap.stacks(t.id) {
            for id in 1..table.len() as u32 {
                if w.intern_stack(t.id, table.get(id)) != id {
                    return Err(mismatch("stack"));
                }
            }
        }
        w.add_symbols(t.id, cap.symbols(t.id));
    }
    for info in cap.event_blocks() {
        let p = cap.events_block(info)?;
        let target = p.block().target;
        for raw in p.raw_events()? {
            if let Some(e) = raw.to_event() {
                w.push(target, e)?;
            }
        }
        w.flush()?;
    }
    if let Some(s) = cap.stats() {
        w.write_stats(s)?;
    }
    let (_, bytes) = w.finish()?;
    Ok((cap, bytes))
}

fn events_bytes(cap: &Capture) -> u64 {
    // Frame header, payload and digest of every events block.
    cap.event_blocks().map(|b| b.payload_len as u64 + 56).sum()
}

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let out_dir = match args.iter().position(|a| a == "-o") {
        Some(i) if i + 1 < args.len() => {
            let d = args.remove(i + 1);
            args.remove(i);
            Some(d)
        }
        _ => None,
    };
    println!(
        "| file | events | as read, B/event (events blocks) | re-encoded as v{}, B/event (events blocks) | of which the id column |",
        gcap_format::FORMAT_VERSION
    );
    println!("|---|---|---|---|---|");
    let (mut n_all, mut before_all, mut after_all) = (0u64, 0u64, 0u64);
    for path in &args {
        let (cap, bytes) = reencode(path)?;
        let new = Capture::from_vec(bytes.clone())?;
        let n = cap.event_count();
        if new.event_count() != n {
            return Err(Error::Invalid(format!("{path}: event count changed")));
        }
        let nf = n.max(1) as f64;
        let mut ids = 0u64;
        for info in new.event_blocks() {
            ids += 8 * new.events_block(info)?.block().id_count() as u64;
        }
        println!(
            "| {} | {n} | {:.2} ({:.2}) | {:.2} ({:.2}) | {:.2} |",
            std::path::Path::new(path)
                .file_name()
                .map_or(path.clone(), |f| f.to_string_lossy().into_owned()),
            cap.len() as f64 / nf,
            events_bytes(&cap) as f64 / nf,
            new.len() as f64 / nf,
            events_bytes(&new) as f64 / nf,
            ids as f64 / nf,
        );
        n_all += n;
        before_all += cap.len();
        after_all += new.len();
        if let Some(d) = &out_dir {
            let name = std::path::Path::new(path).file_name().unwrap_or_default();
            std::fs::write(std::path::Path::new(d).join(name), &bytes).map_err(|e| Error::Io {
                context: format!("writing into {d}"),
                source: e,
            })?;
        }
    }
    let nf = n_all.max(1) as f64;
    println!(
        "| all | {n_all} | {:.2} | {:.2} | |",
        before_all as f64 / nf,
        after_all as f64 / nf
    );
    Ok(())
}
