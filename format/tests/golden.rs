//! The golden capture written by format version 1 must keep reading the same, forever.

use gcap_format::{Capture, EventData, EventKind, SpanKind};
use std::collections::BTreeMap;

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../corpus/golden/format-v1.gcap"
);

const GOLDEN_V2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../corpus/golden/format-v2.gcap"
);

#[test]
fn golden_v1_reads_the_same() {
    reads_the_same(
        GOLDEN,
        1,
        "a08a0bcda5467e3f80887ca559f1f9b6c7eb8b356c2d1cc509ae47e66efe2854",
    );
}

/// The same events written by format version 2 (arg codings, id column, block summaries).
#[test]
fn golden_v2_reads_the_same() {
    reads_the_same(
        GOLDEN_V2,
        2,
        "870fd90abb51ad3475308669bdc2a4843ff596fd455752083e5d71778105aa49",
    );
}

fn reads_the_same(path: &str, version: u16, digest: &str) {
    let cap = Capture::open(path).expect("the golden file is readable");
    assert_eq!(cap.header().version, version);
    assert!(cap.recovery().complete);
    let v = cap.verify();
    assert!(v.intact, "{:?}", v.problems);
    assert_eq!(cap.digest(), digest);
    let meta = cap.meta().unwrap();
    assert_eq!(meta.host, "golden-host");
    assert_eq!(meta.start_unix_ns, 1_795_000_000_000_000_000);
    let t = &cap.targets()[0];
    assert_eq!((t.pid, t.go_version.as_str()), (4242, "go1.27.3"));
    assert_eq!(t.probes[0].attach_to, "runtime.gopark");
    assert_eq!(cap.stats().unwrap().lost_per_cpu, vec![0, 17]);

    let events = cap.events().unwrap();
    assert_eq!(events.len(), 5011);
    let mut by_kind = BTreeMap::new();
    for (_, e) in &events {
        *by_kind.entry(e.kind()).or_insert(0u32) += 1;
    }
    assert_eq!(by_kind[&EventKind::GoCreate], 287);
    assert_eq!(by_kind[&EventKind::GoExit], 283);
    assert_eq!(by_kind[&EventKind::SpanStart], 138);
    assert_eq!(by_kind[&EventKind::SpanEnd], 134);
    // Every kind format v1 had when the file was written (go_info came later).
    assert_eq!(by_kind.len(), 19, "every v1 kind is present");
    assert!(by_kind
        .keys()
        .all(|k| (*k as u8) <= EventKind::ProcExit as u8));

    let client = events
        .iter()
        .find_map(|(_, e)| match &e.data {
            EventData::SpanStart {
                kind: SpanKind::HttpClient,
                host,
                target,
                trace,
                ..
            } => Some((cap.string(*host), cap.string(*target), trace.unwrap())),
            _ => None,
        })
        .unwrap();
    assert_eq!(client.0, "127.0.0.1:8081");
    assert_eq!(client.1, "/price");
    assert_eq!(client.2.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
    let sym = cap.symbolize(0, 0x4a0000);
    assert_eq!(cap.string(sym[0].function), "main.main");
    assert_eq!(cap.string(sym[0].file), "/src/orders/main.go");
    assert_eq!(sym[0].line, 42);
}
