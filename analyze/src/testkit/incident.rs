//! Known-answer incidents a report must get right although they are easy to get wrong:
//! requests that hang, waits a timer ends, WaitGroups, lazily started workers, keep-alive
//! connections serving many requests, failing requests, events lost while capturing. Times in the docs are after the
//! capture start.

use gcap_format::EventData;

use super::{reason, CaptureBuilder, Setup};

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

/// The runtime's and the standard library's frames every incident's stacks use.
struct Std {
    gopark: u64,
    chanrecv: u64,
    selectgo: u64,
    sleep: u64,
}

fn std_frames(b: &mut CaptureBuilder) -> Std {
    let gopark = 0x10;
    b.symbol(
        gopark,
        "runtime.gopark",
        "/usr/lib/go/src/runtime/proc.go",
        457,
    );
    b.symbol(
        0x11,
        "runtime.chanrecv1",
        "/usr/lib/go/src/runtime/chan.go",
        489,
    );
    b.symbol(
        0x12,
        "runtime.selectgo",
        "/usr/lib/go/src/runtime/select.go",
        351,
    );
    b.symbol(0x13, "time.Sleep", "/usr/lib/go/src/runtime/time.go", 368);
    Std {
        gopark,
        chanrecv: 0x11,
        selectgo: 0x12,
        sleep: 0x13,
    }
}

/// Five requests that hang (pid 300, `GET /api/orders`). 100 requests of 1 µs (span i on
/// g(1000+i), at i ms for i in 1..=100); then five on g200..g204 starting at 200, 201, ...,
/// 204 ms that block at 10 µs in a channel receive at `main.(*api).orders (main.go:30)`,
/// woken by nobody, still running when the capture stops at 10.2 s (durations so far:
/// 10.000 s down to 9.996 s).
pub fn hung() -> Vec<u8> {
    let mut b = CaptureBuilder::new(300, "/srv/orders");
    let s = std_frames(&mut b);
    b.symbol(0x20, "main.(*api).orders", "/src/orders/main.go", 30);
    let wait = b.stack(&[s.gopark, s.chanrecv, 0x20]);
    let (get, orders) = (b.string("GET"), b.string("/api/orders"));
    for i in 1..=100u64 {
        let (g, t) = (1000 + i, i * MS);
        b.ev(t - US, g, EventData::GoStart { tid: 1 });
        b.server_span(t, g, i, get, orders);
        b.end_span(t + US, g, i, 200);
    }
    for j in 0..5u64 {
        let (g, t) = (200 + j, 200 * MS + j * MS);
        b.ev(t - US, g, EventData::GoStart { tid: 2 });
        b.server_span(t, g, 101 + j, get, orders);
        b.ev(
            t + 10 * US,
            g,
            EventData::GoBlock {
                reason: reason::CHAN_RECEIVE,
                stack: wait,
            },
        );
    }
    b.end(10_200 * MS);
    b.finish()
}

/// Waits a timer ends (pid 400).
///
/// * `GET /api/poll` on g10, 1..6.3 ms: running, then in `select` at `main.poll
///   (main.go:40)` 1.1..6.1 ms, woken by the runtime (the `time.After` channel fired),
///   runnable to 6.2, running to the end.
/// * `GET /api/ctx` on g11, 10..15.3 ms: running, then in `select` at `main.withDeadline
///   (main.go:60)` 10.1..15.1 ms, woken by g50, the goroutine `time.AfterFunc` started at
///   15 ms for the context's deadline (`context.WithDeadlineCause.func2`, created at
///   `time.goFunc (sleep.go:177)`), runnable to 15.2, running to the end.
pub fn timers() -> Vec<u8> {
    let mut b = CaptureBuilder::with_start(400, "/srv/poll", 1_800_000_000_000_000_000);
    let s = std_frames(&mut b);
    b.symbol(0x20, "main.poll", "/src/poll/main.go", 40);
    b.symbol(0x21, "main.withDeadline", "/src/poll/main.go", 60);
    let poll = b.stack(&[s.gopark, s.selectgo, 0x20]);
    let deadline = b.stack(&[s.gopark, s.selectgo, 0x21]);
    let go_func = b.func(0x30, "time.goFunc", "/usr/lib/go/src/time/sleep.go", 177);
    let cancel = b.func(
        0x31,
        "context.WithDeadlineCause.func2",
        "/usr/lib/go/src/context/context.go",
        700,
    );
    let (get, poll_path, ctx_path) = (b.string("GET"), b.string("/api/poll"), b.string("/api/ctx"));
    let select = |stack| EventData::GoBlock {
        reason: reason::SELECT,
        stack,
    };
    b.ev(MS - 10 * US, 10, EventData::GoStart { tid: 1 });
    b.server_span(MS, 10, 1, get, poll_path);
    b.ev(1100 * US, 10, select(poll));
    b.ev(6100 * US, 10, EventData::GoUnblock { waker: 0 });
    b.ev(6200 * US, 10, EventData::GoStart { tid: 1 });
    b.end_span(6300 * US, 10, 1, 200);

    b.ev(10 * MS - 10 * US, 11, EventData::GoStart { tid: 2 });
    b.server_span(10 * MS, 11, 2, get, ctx_path);
    b.ev(10_100 * US, 11, select(deadline));
    b.ev(
        15 * MS,
        50,
        EventData::GoCreate {
            parent: 0,
            creation: go_func,
            start: cancel,
        },
    );
    b.ev(15_050 * US, 50, EventData::GoStart { tid: 3 });
    b.ev(15_100 * US, 11, EventData::GoUnblock { waker: 50 });
    b.ev(15_150 * US, 50, EventData::GoExit);
    b.ev(15_200 * US, 11, EventData::GoStart { tid: 2 });
    b.end_span(15_300 * US, 11, 2, 200);
    b.end(20 * MS);
    b.finish()
}

/// A WaitGroup fan-out (pid 500, `GET /api/fanout` on g10, 1..6.3 ms) on Go `go_version`:
/// before Go 1.24 `sync.WaitGroup.Wait` parks as `semacquire`, from 1.24 on as
/// `sync.WaitGroup.Wait`. The handler starts g11 and g12 (`main.work`, created at
/// `main.fanout (main.go:45)`) and waits at `main.fanout (main.go:50)` 1.1..6.15 ms. g11
/// runs 1.05..1.2 ms and exits; g12 runs from 1.06, sleeps at `main.work (main.go:30)`
/// 1.07..6.07, is runnable to 6.1, runs and wakes g10 at 6.15 (its Done), exits at 6.16.
/// g10 is runnable to 6.2 and runs to the end.
pub fn wait_group(go_version: &str) -> Vec<u8> {
    let mut b = CaptureBuilder::with_setup(
        500,
        "/srv/fanout",
        &Setup {
            go_version,
            ..Setup::default()
        },
    );
    let s = std_frames(&mut b);
    let old = go_version < "go1.24";
    b.symbol(
        0x14,
        if old {
            "sync.runtime_Semacquire"
        } else {
            "sync.runtime_SemacquireWaitGroup"
        },
        "/usr/lib/go/src/runtime/sema.go",
        62,
    );
    b.symbol(
        0x15,
        "sync.(*WaitGroup).Wait",
        "/usr/lib/go/src/sync/waitgroup.go",
        118,
    );
    b.symbol(0x20, "main.fanout", "/src/fanout/main.go", 50);
    b.symbol(0x21, "main.work", "/src/fanout/main.go", 30);
    let wait = b.stack(&[s.gopark, 0x14, 0x15, 0x20]);
    let nap = b.stack(&[s.gopark, s.sleep, 0x21]);
    let site = b.func(0x22, "main.fanout", "/src/fanout/main.go", 45);
    let start = b.func(0x23, "main.work", "/src/fanout/main.go", 28);
    let (get, path) = (b.string("GET"), b.string("/api/fanout"));
    b.ev(MS - 10 * US, 10, EventData::GoStart { tid: 1 });
    b.server_span(MS, 10, 1, get, path);
    for (g, t) in [(11, 1010 * US), (12, 1020 * US)] {
        b.ev(
            t,
            g,
            EventData::GoCreate {
                parent: 10,
                creation: site,
                start,
            },
        );
    }
    b.ev(1050 * US, 11, EventData::GoStart { tid: 2 });
    b.ev(1060 * US, 12, EventData::GoStart { tid: 3 });
    b.ev(
        1070 * US,
        12,
        EventData::GoBlock {
            reason: reason::SLEEP,
            stack: nap,
        },
    );
    b.ev(
        1100 * US,
        10,
        EventData::GoBlock {
            reason: if old {
                reason::SEMACQUIRE
            } else {
                reason::WAIT_GROUP
            },
            stack: wait,
        },
    );
    b.ev(1200 * US, 11, EventData::GoExit);
    b.ev(6070 * US, 12, EventData::GoUnblock { waker: 0 });
    b.ev(6100 * US, 12, EventData::GoStart { tid: 3 });
    b.ev(6150 * US, 10, EventData::GoUnblock { waker: 12 });
    b.ev(6160 * US, 12, EventData::GoExit);
    b.ev(6200 * US, 10, EventData::GoStart { tid: 1 });
    b.end_span(6300 * US, 10, 1, 200);
    b.end(10 * MS);
    b.finish()
}

/// A worker started lazily by the first request (pid 600, `GET /api/orders`).
///
/// * request 1 on g10, 1..2 ms: creates g20 (`main.worker`, created at
///   `main.(*pool).start (main.go:20)`) at 1.1 ms; g20 runs 1.2..1.3 and waits for jobs at
///   `main.worker (main.go:25)`.
/// * request 2 on g11, 10..20 ms: sends a job at 10.1 ms (waking g20), waits for the answer
///   at `main.submit (main.go:40)` 10.2..19.8 ms while g20 runs the job 10.2..19.8, woken by
///   g20; runnable to 19.9, running to the end. g20 waits for jobs again from 19.9.
/// * request 3 on g12, 30..30.1 ms: running.
pub fn lazy_worker() -> Vec<u8> {
    let mut b = CaptureBuilder::new(600, "/srv/lazy");
    let s = std_frames(&mut b);
    b.symbol(0x20, "main.worker", "/src/lazy/main.go", 25);
    b.symbol(0x21, "main.submit", "/src/lazy/main.go", 40);
    let jobs = b.stack(&[s.gopark, s.chanrecv, 0x20]);
    let answer = b.stack(&[s.gopark, s.chanrecv, 0x21]);
    let site = b.func(0x22, "main.(*pool).start", "/src/lazy/main.go", 20);
    let start = b.func(0x23, "main.worker", "/src/lazy/main.go", 23);
    let (get, path) = (b.string("GET"), b.string("/api/orders"));
    let recv = |stack| EventData::GoBlock {
        reason: reason::CHAN_RECEIVE,
        stack,
    };
    b.ev(MS - 10 * US, 10, EventData::GoStart { tid: 1 });
    b.server_span(MS, 10, 1, get, path);
    b.ev(
        1100 * US,
        20,
        EventData::GoCreate {
            parent: 10,
            creation: site,
            start,
        },
    );
    b.ev(1200 * US, 20, EventData::GoStart { tid: 2 });
    b.ev(1300 * US, 20, recv(jobs));
    b.end_span(2 * MS, 10, 1, 200);

    b.ev(10 * MS - 10 * US, 11, EventData::GoStart { tid: 1 });
    b.server_span(10 * MS, 11, 2, get, path);
    b.ev(10_100 * US, 20, EventData::GoUnblock { waker: 11 });
    b.ev(10_200 * US, 11, recv(answer));
    b.ev(10_200 * US, 20, EventData::GoStart { tid: 2 });
    b.ev(19_800 * US, 11, EventData::GoUnblock { waker: 20 });
    b.ev(19_900 * US, 20, recv(jobs));
    b.ev(19_900 * US, 11, EventData::GoStart { tid: 1 });
    b.end_span(20 * MS, 11, 2, 200);

    b.ev(30 * MS - 10 * US, 12, EventData::GoStart { tid: 1 });
    b.server_span(30 * MS, 12, 3, get, path);
    b.end_span(30_100 * US, 12, 3, 200);
    b.end(40 * MS);
    b.finish()
}

/// One keep-alive connection (pid 700, its goroutine g5) serving `n` requests
/// `GET /api/items` one after the other, each making one SQL query
/// (`SELECT * FROM items WHERE id = ?`); the query of every 50th request (i % 50 == 49)
/// takes 5 ms, the others 20 µs. Request i: server span 2i+1 from t, query span 2i+2 from
/// t + 10 µs, the server span ends 10 µs after the query; the goroutine then waits for the
/// next request in `IO wait` and starts 20 µs after the end. `lost`: the capture's stats
/// count lost events (none of this goroutine's), so every request's path is checked.
pub fn keep_alive(n: u64, lost: bool) -> Vec<u8> {
    let mut b = CaptureBuilder::with_setup(
        700,
        "/srv/items",
        &Setup {
            block_events: 1 << 14,
            ..Setup::default()
        },
    );
    let s = std_frames(&mut b);
    b.symbol(
        0x14,
        "internal/poll.(*FD).Read",
        "/usr/lib/go/src/internal/poll/fd_unix.go",
        165,
    );
    let read = b.stack(&[s.gopark, 0x14]);
    let (get, path, select) = (b.string("GET"), b.string("/api/items"), b.string("SELECT"));
    let query = b.string("SELECT * FROM items WHERE id = ?");
    let mut t = 100 * US;
    b.ev(t - 2 * US, 5, EventData::GoStart { tid: 1 });
    for i in 0..n {
        let d = if i % 50 == 49 { 5 * MS } else { 20 * US };
        b.server_span(t, 5, 2 * i + 1, get, path);
        b.query_span(t + 10 * US, 5, 2 * i + 2, select, query);
        b.end_span(t + 10 * US + d, 5, 2 * i + 2, 0);
        let end = t + 20 * US + d;
        b.end_span(end, 5, 2 * i + 1, 200);
        b.ev(
            end + US,
            5,
            EventData::GoBlock {
                reason: reason::IO_WAIT,
                stack: read,
            },
        );
        t = end + 20 * US;
        b.ev(t - 2 * US, 5, EventData::GoUnblock { waker: 0 });
        b.ev(t - US, 5, EventData::GoStart { tid: 1 });
    }
    if lost {
        b.lost(&[1]);
    }
    b.end(t);
    b.finish()
}

/// One slow run of a query among fast ones (pid 800, `GET /api/orders`, ten requests on
/// g10..g19, request i from 1 + i ms). Each runs 10 µs, then the query `SELECT * FROM
/// orders WHERE id = ?` from 10 µs: the fast ones (i < 9) take 100 µs without blocking and
/// then run 200 µs more; the slow one (i = 9) waits 10 ms in `select` at `main.loadOrder
/// (main.go:118)` (20 µs into the query, woken by the runtime 10 µs before its end) and
/// then runs 10 µs more.
///
/// Answers with `p95 < 1ms`: the slow request takes 10.02 ms (on CPU 20 µs, in the query
/// 10 ms), the others 310 µs (on CPU 210 µs, in the query 100 µs). The excess is 9.71 ms:
/// the query 9.9 ms (10 ms against the fast runs' 100 µs), CPU −190 µs.
pub fn slow_query() -> Vec<u8> {
    let mut b = CaptureBuilder::new(800, "/srv/orders");
    let s = std_frames(&mut b);
    b.symbol(
        0x14,
        "database/sql.(*DB).queryDC",
        "/usr/lib/go/src/database/sql/sql.go",
        1780,
    );
    b.symbol(0x20, "main.loadOrder", "/src/orders/main.go", 118);
    let wait = b.stack(&[s.gopark, s.selectgo, 0x14, 0x20]);
    let (get, path, select) = (b.string("GET"), b.string("/api/orders"), b.string("SELECT"));
    let query = b.string("SELECT * FROM orders WHERE id = ?");
    for i in 0..10u64 {
        let (g, t) = (10 + i, (1 + i) * MS);
        let slow = i == 9;
        b.ev(t - 10 * US, g, EventData::GoStart { tid: 1 });
        b.server_span(t, g, 2 * i + 1, get, path);
        b.query_span(t + 10 * US, g, 2 * i + 2, select, query);
        let done = if slow {
            b.ev(
                t + 20 * US,
                g,
                EventData::GoBlock {
                    reason: reason::SELECT,
                    stack: wait,
                },
            );
            b.ev(t + 10 * MS, g, EventData::GoUnblock { waker: 0 });
            b.ev(t + 10 * MS, g, EventData::GoStart { tid: 1 });
            t + 10 * US + 10 * MS
        } else {
            t + 110 * US
        };
        b.end_span(done, g, 2 * i + 2, 0);
        let after = if slow { 10 * US } else { 200 * US };
        b.end_span(done + after, g, 2 * i + 1, 200);
    }
    b.end(20 * MS);
    b.finish()
}

/// Failing requests, fast ones (pid 900, `POST /api/pay`, twenty requests on g10..g29,
/// request i from 1 + i ms, 100 µs each, each running the query `INSERT INTO payments
/// VALUES (?)` 10..60 µs into it, in `IO wait` at `main.charge (main.go:77)` 20..50 µs).
/// Requests 3, 8 and 13: the query returns an error and the request answers 500;
/// request 17 answers 503 although its query succeeded; the others answer 200.
pub fn failing() -> Vec<u8> {
    let mut b = CaptureBuilder::new(900, "/srv/pay");
    let s = std_frames(&mut b);
    b.symbol(
        0x14,
        "internal/poll.(*FD).Read",
        "/usr/lib/go/src/internal/poll/fd_unix.go",
        165,
    );
    b.symbol(
        0x15,
        "database/sql.(*DB).execDC",
        "/usr/lib/go/src/database/sql/sql.go",
        1690,
    );
    b.symbol(0x20, "main.charge", "/src/pay/main.go", 77);
    let read = b.stack(&[s.gopark, 0x14, 0x15, 0x20]);
    let (post, path, insert) = (b.string("POST"), b.string("/api/pay"), b.string("INSERT"));
    let query = b.string("INSERT INTO payments VALUES (?)");
    for i in 0..20u64 {
        let (g, t) = (10 + i, (1 + i) * MS);
        let failed_query = matches!(i, 3 | 8 | 13);
        b.ev(t - 10 * US, g, EventData::GoStart { tid: 1 });
        b.server_span(t, g, 2 * i + 1, post, path);
        b.query_span(t + 10 * US, g, 2 * i + 2, insert, query);
        b.ev(
            t + 20 * US,
            g,
            EventData::GoBlock {
                reason: reason::IO_WAIT,
                stack: read,
            },
        );
        b.ev(t + 50 * US, g, EventData::GoUnblock { waker: 0 });
        b.ev(t + 50 * US, g, EventData::GoStart { tid: 1 });
        b.ev(
            t + 60 * US,
            g,
            EventData::SpanEnd {
                span: 2 * i + 2,
                status: 0,
                error: failed_query,
            },
        );
        let status = match i {
            17 => 503,
            _ if failed_query => 500,
            _ => 200,
        };
        b.end_span(t + 100 * US, g, 2 * i + 1, status);
    }
    b.end(30 * MS);
    b.finish()
}

/// Events lost while capturing (pid 950, `GET /api/orders`, a capture whose stats count 2
/// lost events). Twenty requests on g10..g29, request i from (1 + i) ms to 100 µs later,
/// running throughout, except requests 10..19: they sleep at `main.(*api).orders
/// (main.go:30)` from 10 µs to 5.01 ms (woken by the runtime), then run 10 µs more. The
/// sleeps of requests 18 and 19 (g28, g29) were lost: their goroutine's events go from its
/// start straight to the wake-up.
pub fn lost_block() -> Vec<u8> {
    let mut b = CaptureBuilder::new(950, "/srv/orders");
    let s = std_frames(&mut b);
    b.symbol(0x20, "main.(*api).orders", "/src/orders/main.go", 30);
    let sleep = b.stack(&[s.gopark, s.sleep, 0x20]);
    let (get, path) = (b.string("GET"), b.string("/api/orders"));
    for i in 0..20u64 {
        let (g, t) = (10 + i, (1 + i) * MS);
        b.ev(t - 10 * US, g, EventData::GoStart { tid: 1 });
        b.server_span(t, g, i + 1, get, path);
        let end = if i >= 10 {
            if i < 18 {
                b.ev(
                    t + 10 * US,
                    g,
                    EventData::GoBlock {
                        reason: reason::SLEEP,
                        stack: sleep,
                    },
                );
            }
            b.ev(t + 5010 * US, g, EventData::GoUnblock { waker: 0 });
            b.ev(t + 5010 * US, g, EventData::GoStart { tid: 1 });
            t + 5020 * US
        } else {
            t + 100 * US
        };
        b.end_span(end, g, i + 1, 200);
        b.ev(end + US, g, EventData::GoExit);
    }
    b.lost(&[2]);
    b.end(30 * MS);
    b.finish()
}
