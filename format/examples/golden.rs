//! Writes the golden capture of the current format version (`corpus/golden/format-vN.gcap`)
//! that the tests read, so every later version of the reader keeps reading files written by
//! each version (`format-v1.gcap` was written by version 1 of this example).
//!
//! `cargo run -p gcap-format --example golden -- corpus/golden/format-v1.gcap`
//!
//! It is deterministic (fixed file id and seed). Do not regenerate it when the writer
//! changes: the point is that old files stay readable. Add a new golden file instead.

use gcap_format::synthetic::Synthetic;
use gcap_format::*;

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "corpus/golden/format-v1.gcap".into());
    let opts = WriterOptions {
        block_events: 1000,
        file_id: Some(*b"gcap-golden-v1\0\0"),
        ..WriterOptions::default()
    };
    let mut w = Writer::new(create_file(path.as_ref(), true)?, opts)?;
    w.write_meta(&Meta {
        host: "golden-host".into(),
        kernel: "Linux 6.18.44".into(),
        gcap_version: "0.1.0".into(),
        command_line: vec![
            "gcap".into(),
            "-o".into(),
            "format-v1.gcap".into(),
            "-p".into(),
            "4242".into(),
        ],
        start_unix_ns: 1_795_000_000_000_000_000,
        start_mono_ns: 1_000_000_000,
        level: "lifecycle".into(),
        extra: vec![KeyValue {
            key: "note".into(),
            value: "golden file".into(),
        }],
    })?;
    w.write_target(&Target {
        id: 0,
        pid: 4242,
        exe: "/usr/local/bin/orders".into(),
        build_id: "0123456789abcdef".into(),
        go_version: "go1.27.3".into(),
        offsets_source: "dwarf".into(),
        offsets: vec![Offset {
            name: "runtime.g.goid".into(),
            value: 152,
        }],
        wait_reasons: vec!["".into(), "GC assist marking".into(), "IO wait".into()],
        probes: vec![ProbeInfo {
            name: "go_block".into(),
            attach_to: "runtime.gopark".into(),
            offset: 4,
        }],
        attached_mono_ns: 1_000_000_000,
        extra: vec![],
    })?;
    let mut g = Synthetic::new(2026, 2, 500.0);
    g.prepare(&mut w, 0);
    let main_fn = w.intern("main.main");
    let file = w.intern("/src/orders/main.go");
    w.add_symbols(
        0,
        &[Symbol {
            pc: 0x4a0000,
            entry: 0x4a0000,
            function: main_fn,
            file,
            line: 42,
        }],
    );
    let mut last = 0;
    for _ in 0..5000 {
        let e = g.next_event();
        last = e.ts;
        w.push(0, e)?;
    }
    // One of every kind the synthetic stream does not produce.
    let get = w.intern("GET");
    let host = w.intern("127.0.0.1:8081");
    let path_id = w.intern("/price");
    let sql = w.intern("SELECT * FROM orders WHERE id = ?");
    let stack = w.intern_stack(0, &[0x4a0000, 0x4a1000]);
    let trace = Some(TraceContext {
        trace_id: 0x0af7651916cd43dd8448eb211c80319c,
        span_id: 0xb7ad6b7169203331,
        flags: 1,
    });
    let extra = [
        EventData::GcStart { cycle: 1 },
        EventData::StwStart { reason: 2 },
        EventData::StwEnd,
        EventData::GcEnd { cycle: 1 },
        EventData::SpanStart {
            span: 90001,
            kind: SpanKind::HttpClient,
            method: get,
            host,
            target: path_id,
            content_length: u64::MAX,
            trace,
        },
        EventData::SpanEnd {
            span: 90001,
            status: 200,
            error: false,
        },
        EventData::SpanStart {
            span: 90002,
            kind: SpanKind::Sql,
            method: w.intern("SELECT"),
            host: 0,
            target: sql,
            content_length: u64::MAX,
            trace: None,
        },
        EventData::SpanEnd {
            span: 90002,
            status: 0,
            error: true,
        },
        EventData::CpuSample { tid: 4242, stack },
        EventData::Lost { cpu: 1, count: 17 },
        EventData::ProcExit { code: 0 },
    ];
    for (i, data) in extra.into_iter().enumerate() {
        w.push(
            0,
            Event {
                ts: last + 1000 * (i as u64 + 1),
                goid: 1,
                data,
            },
        )?;
    }
    w.write_stats(&Stats {
        end_mono_ns: last + 1_000_000,
        stop_reason: "duration".into(),
        probes: vec![ProbeStat {
            target: 0,
            name: "go_block".into(),
            hits: 1234,
        }],
        lost_per_cpu: vec![0, 17],
        extra: vec![],
    })?;
    let (s, _) = w.finish()?;
    println!(
        "{path}: {} events, {} blocks, {} bytes, digest {}",
        s.events, s.blocks, s.bytes, s.digest
    );
    Ok(())
}
