//! Known-answer scenarios shared by the unit tests, the CLI tests and the docs: each a
//! capture's bytes, with what an analysis must find in it.

use gcap_format::{EventData, SpanKind, TraceContext};

use super::{reason, CaptureBuilder};

/// g1 (existing before the capture) creates g2 and g3 (at main.main, main.go:10, start
/// main.worker) and waits on a channel; g3 blocks on a mutex at main.worker
/// (main.go:25) until g2 unlocks it, makes a syscall, wakes g1 and exits; thread 11 is
/// descheduled for 50 ns while g1 runs on it. `reverse` pushes the events in reverse
/// order so that blocks overlap in time.
///
/// Answers (ns): g1 runnable 70, running 380, off_cpu 50, chan receive 500, woken by g3;
/// g2 created 100, runnable 110, running 210, exited 420; g3 created 150, runnable 200,
/// running 170, sync.Mutex.Lock 90, syscall 100, woken by g2, exited 710.
pub fn lifecycle(reverse: bool) -> Vec<u8> {
    let mut b = CaptureBuilder::new(4242, "/usr/local/bin/orders");
    let site = b.func(0x1000, "main.main", "/src/orders/main.go", 10);
    let start = b.func(0x2000, "main.worker", "/src/orders/main.go", 20);
    b.symbol(
        0x3000,
        "sync.(*Mutex).Lock",
        "/usr/lib/go/src/sync/mutex.go",
        90,
    );
    b.symbol(0x3100, "main.worker", "/src/orders/main.go", 25);
    b.symbol(
        0x3200,
        "runtime.gopark",
        "/usr/lib/go/src/runtime/proc.go",
        400,
    );
    b.symbol(0x3300, "main.main", "/src/orders/main.go", 12);
    b.symbol(
        0x3400,
        "syscall.Syscall",
        "/usr/lib/go/src/syscall/syscall.go",
        7,
    );
    b.symbol(0x3500, "main.worker", "/src/orders/main.go", 30);
    let mutex = b.stack(&[0x3000, 0x3100]);
    let chan = b.stack(&[0x3200, 0x3300]);
    let sys = b.stack(&[0x3400, 0x3500]);
    let evs = vec![
        (50, 1, EventData::GoStart { tid: 10 }),
        (
            100,
            2,
            EventData::GoCreate {
                parent: 1,
                creation: site,
                start,
            },
        ),
        (
            150,
            3,
            EventData::GoCreate {
                parent: 1,
                creation: site,
                start,
            },
        ),
        (
            200,
            1,
            EventData::GoBlock {
                reason: reason::CHAN_RECEIVE,
                stack: chan,
            },
        ),
        (210, 2, EventData::GoStart { tid: 10 }),
        (300, 3, EventData::GoStart { tid: 11 }),
        (
            310,
            3,
            EventData::GoBlock {
                reason: reason::MUTEX,
                stack: mutex,
            },
        ),
        (400, 3, EventData::GoUnblock { waker: 2 }),
        (420, 2, EventData::GoExit),
        (450, 3, EventData::GoStart { tid: 10 }),
        (
            500,
            3,
            EventData::SyscallEnter {
                tid: 10,
                stack: sys,
            },
        ),
        (600, 3, EventData::SyscallExit { tid: 10 }),
        (700, 1, EventData::GoUnblock { waker: 3 }),
        (710, 3, EventData::GoExit),
        (720, 1, EventData::GoStart { tid: 11 }),
        (
            750,
            0,
            EventData::ThreadOff {
                tid: 11,
                runnable: true,
            },
        ),
        (800, 0, EventData::ThreadOn { tid: 11, cpu: 1 }),
    ];
    let evs: Vec<_> = if reverse {
        evs.into_iter().rev().collect()
    } else {
        evs
    };
    for (t, g, d) in evs {
        b.ev(t, g, d);
    }
    b.end(1000);
    b.finish()
}

/// Two goroutines created at main.startWorkers (leak.go:5) blocked on a channel receive
/// at main.leaky (leak.go:7): g5 from 20 ns to the end (3 s: a leak suspect), g6 from
/// 2.5 s (0.5 s: not one). g7 exits.
pub fn leak() -> Vec<u8> {
    let mut b = CaptureBuilder::new(77, "/srv/leaky");
    let site = b.func(0x1000, "main.startWorkers", "/src/leaky/leak.go", 5);
    let start = b.func(0x2000, "main.leaky", "/src/leaky/leak.go", 6);
    b.symbol(
        0x3000,
        "runtime.gopark",
        "/usr/lib/go/src/runtime/proc.go",
        400,
    );
    b.symbol(
        0x3010,
        "runtime.chanrecv1",
        "/usr/lib/go/src/runtime/chan.go",
        500,
    );
    b.symbol(0x3100, "main.leaky", "/src/leaky/leak.go", 7);
    let st = b.stack(&[0x3000, 0x3010, 0x3100]);
    for g in [5u64, 6, 7] {
        b.ev(
            g,
            g,
            EventData::GoCreate {
                parent: 1,
                creation: site,
                start,
            },
        );
    }
    b.ev(10, 5, EventData::GoStart { tid: 3 });
    b.ev(
        20,
        5,
        EventData::GoBlock {
            reason: reason::CHAN_RECEIVE,
            stack: st,
        },
    );
    b.ev(30, 7, EventData::GoStart { tid: 3 });
    b.ev(40, 7, EventData::GoExit);
    b.ev(2_500_000_000, 6, EventData::GoStart { tid: 4 });
    b.ev(
        2_500_000_000,
        6,
        EventData::GoBlock {
            reason: reason::CHAN_RECEIVE,
            stack: st,
        },
    );
    b.end(3_000_000_000);
    b.finish()
}

pub const TRACE: u128 = 0x0af7651916cd43dd8448eb211c80319c;
pub const CALLER_SPAN: u64 = 0x00f067aa0ba902b7;
pub const OUTGOING_SPAN: u64 = 0xb7ad6b7169203331;

/// A server span `GET /api/orders` (span 1, handler g10, 100..1000 ns, 200, incoming
/// trace TRACE from CALLER_SPAN). g10 creates g11 at 200, g11 creates g12 at 300; g12
/// makes a client call `GET 127.0.0.1:8081/price` (span 2, 400..600, traceparent
/// OUTGOING_SPAN); g10 runs `SELECT` (span 3, 700..800, error). After the span g10
/// creates g13 (1100), which belongs to no span. Server span 4 (`POST /api/pay`,
/// 1200..1500, status 503, error) never sees its goroutines do anything else.
pub fn spans() -> Vec<u8> {
    spans_with(4242, "/usr/local/bin/frontend", 1_800_000_000_000_000_000)
}

pub fn spans_with(pid: u32, exe: &str, start_unix: u64) -> Vec<u8> {
    let mut b = CaptureBuilder::with_start(pid, exe, start_unix);
    let site = b.func(0x1000, "main.handle", "/src/fe/main.go", 40);
    let start = b.func(0x2000, "main.fetch", "/src/fe/main.go", 60);
    let (get, post, sel) = (b.string("GET"), b.string("POST"), b.string("SELECT"));
    let (orders, price, pay) = (
        b.string("/api/orders"),
        b.string("/price"),
        b.string("/api/pay"),
    );
    let host = b.string("127.0.0.1:8081");
    let query = b.string("SELECT id FROM orders WHERE id = ?");
    b.ev(50, 10, EventData::GoStart { tid: 1 });
    b.ev(
        100,
        10,
        EventData::SpanStart {
            span: 1,
            kind: SpanKind::HttpServer,
            method: get,
            host: 0,
            target: orders,
            content_length: u64::MAX,
            trace: Some(TraceContext {
                trace_id: TRACE,
                span_id: CALLER_SPAN,
                flags: 1,
            }),
        },
    );
    b.ev(
        200,
        11,
        EventData::GoCreate {
            parent: 10,
            creation: site,
            start,
        },
    );
    b.ev(250, 11, EventData::GoStart { tid: 2 });
    b.ev(
        300,
        12,
        EventData::GoCreate {
            parent: 11,
            creation: site,
            start,
        },
    );
    b.ev(350, 12, EventData::GoStart { tid: 3 });
    b.ev(
        400,
        12,
        EventData::SpanStart {
            span: 2,
            kind: SpanKind::HttpClient,
            method: get,
            host,
            target: price,
            content_length: 0,
            trace: Some(TraceContext {
                trace_id: TRACE,
                span_id: OUTGOING_SPAN,
                flags: 1,
            }),
        },
    );
    b.ev(
        600,
        12,
        EventData::SpanEnd {
            span: 2,
            status: 200,
            error: false,
        },
    );
    b.ev(650, 12, EventData::GoExit);
    b.ev(
        700,
        10,
        EventData::SpanStart {
            span: 3,
            kind: SpanKind::Sql,
            method: sel,
            host: 0,
            target: query,
            content_length: u64::MAX,
            trace: None,
        },
    );
    b.ev(
        800,
        10,
        EventData::SpanEnd {
            span: 3,
            status: 0,
            error: true,
        },
    );
    b.ev(
        1000,
        10,
        EventData::SpanEnd {
            span: 1,
            status: 200,
            error: false,
        },
    );
    b.ev(
        1100,
        13,
        EventData::GoCreate {
            parent: 10,
            creation: site,
            start,
        },
    );
    b.ev(
        1200,
        11,
        EventData::SpanStart {
            span: 4,
            kind: SpanKind::HttpServer,
            method: post,
            host: 0,
            target: pay,
            content_length: 12,
            trace: None,
        },
    );
    b.ev(
        1500,
        11,
        EventData::SpanEnd {
            span: 4,
            status: 503,
            error: true,
        },
    );
    b.end(2000);
    b.finish()
}

/// The downstream service of [`spans`]: pid 5151, its capture started 1 µs after the
/// frontend's; server span 9 `GET /price` on g20 at 450..550 ns (its own clock), called
/// with traceparent (TRACE, OUTGOING_SPAN).
pub fn downstream() -> Vec<u8> {
    let mut b =
        CaptureBuilder::with_start(5151, "/usr/local/bin/pricing", 1_800_000_000_000_001_000);
    let (get, price) = (b.string("GET"), b.string("/price"));
    b.ev(440, 20, EventData::GoStart { tid: 7 });
    b.ev(
        450,
        20,
        EventData::SpanStart {
            span: 9,
            kind: SpanKind::HttpServer,
            method: get,
            host: 0,
            target: price,
            content_length: u64::MAX,
            trace: Some(TraceContext {
                trace_id: TRACE,
                span_id: OUTGOING_SPAN,
                flags: 1,
            }),
        },
    );
    b.ev(
        550,
        20,
        EventData::SpanEnd {
            span: 9,
            status: 200,
            error: false,
        },
    );
    b.end(1000);
    b.finish()
}

/// A lock convoy with exact answers (times in µs after the capture start, pid 100).
/// g7 (existing before the capture; its stacks end in `main.main.gowrap1` at main.go:88
/// under `main.(*store).refresh`) sleeps 1000 µs at store.go:60 while holding the lock,
/// from 100 to 1100, runs 1110..1120 and unlocks, waking g10.
///
/// * request 1, `GET /api/orders` on g10, 200..1200: running 200..300, blocked on
///   `sync.Mutex.Lock` at `main.(*store).get (store.go:41)` 300..1120, woken by g7,
///   runnable 1120..1150, running 1150..1200;
/// * requests 2 and 3, `GET /api/orders` on g11 at 1300..1350 and 1400..1460: running;
/// * request 4, `GET /api/health` on g12 at 1500..1510: running.
///
/// Critical path of request 1: on_cpu 100, mutex 820 (blocker g7: sleep 800, runnable
/// 10, on_cpu 10), runnable 30, on_cpu 50.
pub fn convoy() -> Vec<u8> {
    const US: u64 = 1000;
    let mut b = CaptureBuilder::new(100, "/srv/orders");
    b.symbol(
        0x10,
        "runtime.gopark",
        "/usr/lib/go/src/runtime/proc.go",
        457,
    );
    b.symbol(
        0x11,
        "sync.(*Mutex).Lock",
        "/usr/lib/go/src/sync/mutex.go",
        90,
    );
    b.symbol(0x12, "time.Sleep", "/usr/lib/go/src/runtime/time.go", 368);
    b.symbol(
        0x13,
        "runtime.goexit",
        "/usr/lib/go/src/runtime/asm_amd64.s",
        1264,
    );
    b.symbol(0x20, "main.(*store).get", "/src/orders/store.go", 41);
    b.symbol(0x21, "main.handler", "/src/orders/main.go", 30);
    b.symbol(0x30, "main.(*store).refresh", "/src/orders/store.go", 60);
    b.symbol(0x31, "main.main.gowrap1", "/src/orders/main.go", 88);
    let lock = b.stack(&[0x10, 0x11, 0x20, 0x21]);
    let sleep = b.stack(&[0x10, 0x12, 0x30, 0x31, 0x13]);
    let (get, orders, health) = (
        b.string("GET"),
        b.string("/api/orders"),
        b.string("/api/health"),
    );
    b.ev(0, 7, EventData::GoStart { tid: 1 });
    b.ev(
        100 * US,
        7,
        EventData::GoBlock {
            reason: reason::SLEEP,
            stack: sleep,
        },
    );
    b.ev(190 * US, 10, EventData::GoStart { tid: 2 });
    b.server_span(200 * US, 10, 1, get, orders);
    b.ev(
        300 * US,
        10,
        EventData::GoBlock {
            reason: reason::MUTEX,
            stack: lock,
        },
    );
    b.ev(1100 * US, 7, EventData::GoUnblock { waker: 0 });
    b.ev(1110 * US, 7, EventData::GoStart { tid: 1 });
    b.ev(1120 * US, 10, EventData::GoUnblock { waker: 7 });
    b.ev(
        1130 * US,
        7,
        EventData::GoBlock {
            reason: reason::SLEEP,
            stack: sleep,
        },
    );
    b.ev(1150 * US, 10, EventData::GoStart { tid: 2 });
    b.end_span(1200 * US, 10, 1, 200);
    b.ev(1290 * US, 11, EventData::GoStart { tid: 3 });
    b.server_span(1300 * US, 11, 2, get, orders);
    b.end_span(1350 * US, 11, 2, 200);
    b.server_span(1400 * US, 11, 3, get, orders);
    b.end_span(1460 * US, 11, 3, 200);
    b.ev(1490 * US, 12, EventData::GoStart { tid: 4 });
    b.server_span(1500 * US, 12, 4, get, health);
    b.end_span(1510 * US, 12, 4, 200);
    b.end(2000 * US);
    b.finish()
}

/// A frontend (pid 200) whose `GET /api/checkout` (g10, 100..1000 ns) calls
/// `GET 127.0.0.1:9000/price` itself (client span 200..900, traceparent OUTGOING_SPAN)
/// and waits in `select` under `main.fetchPrice (main.go:106)` 250..880 (woken by the
/// runtime), runnable until 890. Its backend (pid 201, [`checkout_backend`]).
pub fn checkout() -> Vec<u8> {
    let mut b = CaptureBuilder::with_start(200, "/srv/frontend", 1_800_000_000_000_000_000);
    b.symbol(
        0x10,
        "runtime.gopark",
        "/usr/lib/go/src/runtime/proc.go",
        457,
    );
    b.symbol(
        0x11,
        "runtime.selectgo",
        "/usr/lib/go/src/runtime/select.go",
        351,
    );
    b.symbol(
        0x12,
        "net/http.(*persistConn).roundTrip",
        "/usr/lib/go/src/net/http/transport.go",
        2800,
    );
    b.symbol(
        0x13,
        "net/http.(*Client).Do",
        "/usr/lib/go/src/net/http/client.go",
        590,
    );
    b.symbol(0x20, "main.fetchPrice", "/src/shop/main.go", 106);
    b.symbol(0x21, "main.frontend", "/src/shop/main.go", 130);
    let st = b.stack(&[0x10, 0x11, 0x12, 0x13, 0x20, 0x21]);
    let (get, checkout, price, host) = (
        b.string("GET"),
        b.string("/api/checkout"),
        b.string("/price"),
        b.string("127.0.0.1:9000"),
    );
    b.ev(90, 10, EventData::GoStart { tid: 1 });
    b.server_span(100, 10, 1, get, checkout);
    b.ev(
        200,
        10,
        EventData::SpanStart {
            span: 2,
            kind: SpanKind::HttpClient,
            method: get,
            host,
            target: price,
            content_length: 0,
            trace: Some(TraceContext {
                trace_id: TRACE,
                span_id: OUTGOING_SPAN,
                flags: 1,
            }),
        },
    );
    b.ev(
        250,
        10,
        EventData::GoBlock {
            reason: reason::SELECT,
            stack: st,
        },
    );
    b.ev(880, 10, EventData::GoUnblock { waker: 0 });
    b.ev(890, 10, EventData::GoStart { tid: 1 });
    b.end_span(900, 10, 2, 200);
    b.end_span(1000, 10, 1, 200);
    b.end(2000);
    b.finish()
}

/// The backend of [`checkout`] (pid 201, same clock): `GET /price` on g20 at 300..800 ns
/// (traceparent OUTGOING_SPAN), running 300..320, sleeping at
/// `main.slowPrice (main.go:56)` 320..780, runnable 780..790, running to 800.
pub fn checkout_backend() -> Vec<u8> {
    let mut b = CaptureBuilder::with_start(201, "/srv/backend", 1_800_000_000_000_000_000);
    b.symbol(
        0x10,
        "runtime.gopark",
        "/usr/lib/go/src/runtime/proc.go",
        457,
    );
    b.symbol(0x12, "time.Sleep", "/usr/lib/go/src/runtime/time.go", 368);
    b.symbol(0x20, "main.slowPrice", "/src/shop/main.go", 56);
    let st = b.stack(&[0x10, 0x12, 0x20]);
    let (get, price) = (b.string("GET"), b.string("/price"));
    b.ev(290, 20, EventData::GoStart { tid: 5 });
    b.ev(
        300,
        20,
        EventData::SpanStart {
            span: 9,
            kind: SpanKind::HttpServer,
            method: get,
            host: 0,
            target: price,
            content_length: u64::MAX,
            trace: Some(TraceContext {
                trace_id: TRACE,
                span_id: OUTGOING_SPAN,
                flags: 1,
            }),
        },
    );
    b.ev(
        320,
        20,
        EventData::GoBlock {
            reason: reason::SLEEP,
            stack: st,
        },
    );
    b.ev(780, 20, EventData::GoUnblock { waker: 0 });
    b.ev(790, 20, EventData::GoStart { tid: 5 });
    b.end_span(800, 20, 9, 200);
    b.end(2000);
    b.finish()
}

/// One goroutine in a snapshot: (goid, Go status, wait reason, parked stack, creation
/// stack, start stack, ns it had been waiting or u64::MAX).
type InSnapshot = (u64, u8, u8, u32, u32, u32, u64);

/// Records snapshot `number` at `at` ns: a `go_snapshot` per goroutine and its end.
fn snapshot(b: &mut CaptureBuilder, at: u64, number: u32, goroutines: &[InSnapshot]) {
    for &(goid, status, reason, stack, creation, start, waiting_ns) in goroutines {
        b.ev(
            at,
            goid,
            EventData::GoSnapshot {
                status,
                reason,
                waiting_ns,
                // g1 is the main goroutine; the accept loop started the rest.
                parent: (goid != 1) as u64,
                creation,
                start,
                stack,
                snapshot: number,
            },
        );
    }
    b.ev(
        at,
        0,
        EventData::SnapshotEnd {
            snapshot: number,
            goroutines: goroutines.len() as u32,
            torn: 0,
        },
    );
}

/// A budgeted capture of the lock convoy (pid 100, times in µs, 0..10000): spans all along,
/// goroutine lifecycles in two windows, 0..4000 and 6000..10000 (80% of the capture), with a
/// snapshot at the start of each (0 and 6000) and gcap's cost (1.5% of the target's CPU,
/// budget 2%).
///
/// * g7, `main.(*store).refresh` created at `main.main (main.go:88)` (known only from the
///   snapshots), sleeps at store.go:60 holding the store's lock, waking to unlock it for each
///   slow request;
/// * `slow_inside` (at most 6) slow `GET /api/orders` requests inside the windows, alternately
///   in each (at 200, 6200, 1200, 7200, 2200, 8200), 700 µs each: on their handler (created
///   by g1 20 µs before) running 50, blocked on `sync.Mutex.Lock` at
///   `main.(*store).get (store.go:41)` 550 until g7 unlocks, runnable 10, running 90; each
///   followed by a fast one (50 µs, 50 µs after it);
/// * a slow request straddling the first window's end (g90, 3900..4500, blocked on the
///   mutex from 3950 and gone by the second snapshot), and one between the windows (g91,
///   4200..4800, no lifecycle event), followed by a fast one (g92, 5000..5100);
/// * g100, g101, g102, `main.leaky` created at `main.startWorkers (leak.go:5)`, parked on a
///   channel receive at `main.leaky (leak.go:7)` in both snapshots, waiting 10 s at the
///   first; g60, created there at 500 µs, blocked there from 600 µs and parked there in the
///   second snapshot; g1, the accept loop, in IO wait in both (wait time unknown);
/// * g50, running in snapshot 0, blocked in `select` 300..3500, running at the first
///   window's end and absent from snapshot 1: it exited unseen.
pub fn windowed(slow_inside: usize) -> Vec<u8> {
    use gcap_format::{coverage_cause as cause, probe_group as group};
    const US: u64 = 1000;
    assert!(slow_inside <= 6, "the windows hold at most 6 slow requests");
    let mut b = CaptureBuilder::new(100, "/srv/orders");
    for (pc, f, file, line) in [
        (
            0x10,
            "runtime.gopark",
            "/usr/lib/go/src/runtime/proc.go",
            457,
        ),
        (
            0x11,
            "sync.(*Mutex).Lock",
            "/usr/lib/go/src/sync/mutex.go",
            90,
        ),
        (0x12, "time.Sleep", "/usr/lib/go/src/runtime/time.go", 368),
        (
            0x13,
            "runtime.goexit",
            "/usr/lib/go/src/runtime/asm_amd64.s",
            1264,
        ),
        (
            0x14,
            "runtime.chanrecv1",
            "/usr/lib/go/src/runtime/chan.go",
            489,
        ),
        (
            0x15,
            "runtime.selectgo",
            "/usr/lib/go/src/runtime/select.go",
            351,
        ),
        (
            0x16,
            "internal/poll.(*FD).Accept",
            "/usr/lib/go/src/internal/poll/fd_unix.go",
            620,
        ),
        (0x20, "main.(*store).get", "/src/orders/store.go", 41),
        (0x21, "main.handler", "/src/orders/main.go", 30),
        (0x30, "main.(*store).refresh", "/src/orders/store.go", 60),
        (0x31, "main.main.gowrap1", "/src/orders/main.go", 88),
        (0x40, "main.leaky", "/src/orders/leak.go", 7),
        (0x50, "main.poll", "/src/orders/poll.go", 12),
        (
            0x60,
            "net/http.(*Server).Serve",
            "/usr/lib/go/src/net/http/server.go",
            3454,
        ),
    ] {
        b.symbol(pc, f, file, line);
    }
    let lock = b.stack(&[0x10, 0x11, 0x20, 0x21]);
    let sleep = b.stack(&[0x10, 0x12, 0x30, 0x31, 0x13]);
    let leak = b.stack(&[0x10, 0x14, 0x40]);
    let select = b.stack(&[0x10, 0x15, 0x50]);
    let accept = b.stack(&[0x10, 0x16, 0x60]);
    let main_site = b.func(0x70, "main.main", "/src/orders/main.go", 88);
    let refresh = b.func(0x71, "main.(*store).refresh", "/src/orders/store.go", 55);
    let workers_site = b.func(0x72, "main.startWorkers", "/src/orders/leak.go", 5);
    let leaky = b.func(0x73, "main.leaky", "/src/orders/leak.go", 6);
    let poll = b.func(0x74, "main.poll", "/src/orders/poll.go", 10);
    let serve_site = b.func(
        0x75,
        "net/http.(*Server).Serve",
        "/usr/lib/go/src/net/http/server.go",
        3460,
    );
    let conn = b.func(
        0x76,
        "net/http.(*conn).serve",
        "/usr/lib/go/src/net/http/server.go",
        1990,
    );
    let main_start = b.func(0x77, "main.main", "/src/orders/main.go", 80);
    let (get, orders) = (b.string("GET"), b.string("/api/orders"));
    let coverage = |b: &mut CaptureBuilder, at: u64, groups: u32, cause: u8| {
        b.ev(at * US, 0, EventData::Coverage { groups, cause });
    };
    let both = group::SPANS | group::LIFECYCLE;
    coverage(&mut b, 0, both, cause::START);
    coverage(&mut b, 4000, group::SPANS, cause::DUTY_CYCLE);
    coverage(&mut b, 6000, both, cause::DUTY_CYCLE);
    coverage(&mut b, 10_000, 0, cause::STOP);
    const WAITING: u8 = 4;
    const RUNNING: u8 = 2;
    let parked: Vec<InSnapshot> = [100, 101, 102]
        .iter()
        .map(|&g| {
            (
                g,
                WAITING,
                reason::CHAN_RECEIVE,
                leak,
                workers_site,
                leaky,
                10_000_000_000,
            )
        })
        .collect();
    let acceptor = (1, WAITING, reason::IO_WAIT, accept, 0, main_start, u64::MAX);
    let refresher = (
        7,
        WAITING,
        reason::SLEEP,
        sleep,
        main_site,
        refresh,
        50 * US * US,
    );
    let mut first = vec![
        acceptor,
        refresher,
        (50, RUNNING, 0, 0, main_site, poll, u64::MAX),
    ];
    first.extend(parked.iter().copied());
    snapshot(&mut b, 0, 0, &first);
    let mut second = vec![
        acceptor,
        (7, WAITING, reason::SLEEP, sleep, main_site, refresh, US),
        // g60 blocked at 600 µs and never moved.
        (
            60,
            WAITING,
            reason::CHAN_RECEIVE,
            leak,
            workers_site,
            leaky,
            5400 * US,
        ),
    ];
    // Still parked, 6 ms longer.
    second.extend(
        parked
            .iter()
            .map(|&(g, st, r, at, site, f, waiting)| (g, st, r, at, site, f, waiting + 6000 * US)),
    );
    snapshot(&mut b, 6000 * US, 1, &second);
    b.ev(
        4000 * US,
        0,
        EventData::Overhead {
            budget_ppm: 20_000,
            cost_ns: 1_000_000,
            target_cpu_ns: 100_000_000,
            hits: 500,
        },
    );
    let create = |b: &mut CaptureBuilder, at: u64, g: u64| {
        b.ev(
            at * US,
            g,
            EventData::GoCreate {
                parent: 1,
                creation: serve_site,
                start: conn,
            },
        );
    };
    for k in 0..slow_inside as u64 {
        let t = 200 + 1000 * (k / 2) + 6000 * (k % 2);
        let h = 10 + 2 * k;
        create(&mut b, t - 20, h);
        b.ev((t - 15) * US, h, EventData::GoStart { tid: 2 });
        b.server_span(t * US, h, 100 + k, get, orders);
        b.ev(
            (t + 50) * US,
            h,
            EventData::GoBlock {
                reason: reason::MUTEX,
                stack: lock,
            },
        );
        b.ev((t + 590) * US, 7, EventData::GoUnblock { waker: 0 });
        b.ev((t + 595) * US, 7, EventData::GoStart { tid: 1 });
        b.ev((t + 600) * US, h, EventData::GoUnblock { waker: 7 });
        b.ev(
            (t + 605) * US,
            7,
            EventData::GoBlock {
                reason: reason::SLEEP,
                stack: sleep,
            },
        );
        b.ev((t + 610) * US, h, EventData::GoStart { tid: 2 });
        b.end_span((t + 700) * US, h, 100 + k, 200);
        b.ev((t + 710) * US, h, EventData::GoExit);
        let fast = h + 1;
        create(&mut b, t + 730, fast);
        b.ev((t + 735) * US, fast, EventData::GoStart { tid: 3 });
        b.server_span((t + 750) * US, fast, 200 + k, get, orders);
        b.end_span((t + 800) * US, fast, 200 + k, 200);
        b.ev((t + 805) * US, fast, EventData::GoExit);
    }
    // Straddling the first window's end, then between the windows.
    create(&mut b, 3880, 90);
    b.ev(3885 * US, 90, EventData::GoStart { tid: 2 });
    b.server_span(3900 * US, 90, 300, get, orders);
    b.ev(
        3950 * US,
        90,
        EventData::GoBlock {
            reason: reason::MUTEX,
            stack: lock,
        },
    );
    b.end_span(4500 * US, 90, 300, 200);
    b.server_span(4200 * US, 91, 301, get, orders);
    b.end_span(4800 * US, 91, 301, 200);
    // A fast one between the windows.
    b.server_span(5000 * US, 92, 302, get, orders);
    b.end_span(5100 * US, 92, 302, 200);
    // g60: one more leak, created during the capture.
    b.ev(
        500 * US,
        60,
        EventData::GoCreate {
            parent: 1,
            creation: workers_site,
            start: leaky,
        },
    );
    b.ev(550 * US, 60, EventData::GoStart { tid: 4 });
    b.ev(
        600 * US,
        60,
        EventData::GoBlock {
            reason: reason::CHAN_RECEIVE,
            stack: leak,
        },
    );
    // g50: running when first read, then a select, running again at the window's end.
    b.ev(
        100 * US,
        50,
        EventData::GoStop {
            reason: gcap_format::stop_reason::PREEMPTED,
        },
    );
    b.ev(150 * US, 50, EventData::GoStart { tid: 3 });
    b.ev(
        300 * US,
        50,
        EventData::GoBlock {
            reason: reason::SELECT,
            stack: select,
        },
    );
    b.ev(3500 * US, 50, EventData::GoUnblock { waker: 0 });
    b.ev(3510 * US, 50, EventData::GoStart { tid: 3 });
    b.ev(
        10_000 * US,
        0,
        EventData::Overhead {
            budget_ppm: 20_000,
            cost_ns: 3_000_000,
            target_cpu_ns: 200_000_000,
            hits: 1500,
        },
    );
    b.end(10_000 * US);
    b.finish()
}
