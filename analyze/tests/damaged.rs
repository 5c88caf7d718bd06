//! Damaged input never makes figures up, nor costs unbounded memory or time: event times
//! outside the capture are left out, the running-interval index is sparse, and a byte-flip
//! sweep over a corpus capture keeps `report` within twice its normal memory and time.
//! Memory is measured exactly, by counting this test binary's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ganalyze::report::{self, Report};
use ganalyze::testkit::{corpus, scenario, CaptureBuilder};
use ganalyze::{slo, Analysis, CaptureSet, Options};
use gcap_format::EventData;

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator with the caller's arguments; the
// counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        IN_USE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: as above.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            IN_USE.fetch_sub(l.size(), Ordering::Relaxed);
            let now = IN_USE.fetch_add(new, Ordering::Relaxed) + new;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One measurement at a time (the counters are global).
static ONE: Mutex<()> = Mutex::new(());

/// The CPU time of the whole process so far (every thread: the analysis is parallel), which
/// a busy machine disturbs less than the wall clock.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// The peak bytes `f` had allocated at once beyond what was in use before, and the CPU time
/// it took.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, Duration) {
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let t = cpu_time();
    let out = f();
    let took = cpu_time() - t;
    (out, PEAK.load(Ordering::Relaxed) - before, took)
}

/// `report` as the command runs it, on a capture's bytes; None when the file cannot be
/// opened at all.
fn report_of(bytes: Vec<u8>, slos: &[slo::Slo]) -> Option<Report> {
    let set = CaptureSet::from_bytes("c.gcap", bytes).ok()?;
    let a = Analysis::run(&set, &Options::default());
    Some(report::build(&set, &a, slos))
}

const MB: usize = 1 << 20;

/// A request whose end carries a time far past the capture's stop (a damaged delta) lasts
/// until the capture stopped, not 100,000 s, and the report says events were left out.
#[test]
fn times_outside_the_capture_are_left_out() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let mut b = CaptureBuilder::new(1, "/srv/api");
    let (get, path) = (b.string("GET"), b.string("/api/orders"));
    b.ev(1_000_000, 10, EventData::GoStart { tid: 1 });
    b.server_span(1_000_000, 10, 1, get, path);
    b.end_span(100_000_000_000_000, 10, 1, 200);
    b.end(2_000_000_000);
    let r = report_of(b.finish(), &[]).unwrap();
    let e = &r.endpoints[0];
    assert_eq!((e.count, e.open_requests, e.max_ns), (1, 1, 1_999_000_000));
    assert_eq!(r.captures[0].duration_ns, 2_000_000_000);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("1 events had times outside")),
        "{:?}",
        r.warnings
    );
}

/// A goroutine that runs for two days: who held the CPU is found without an index entry per
/// 10 ms of the capture (that was 138 MB here, and 13 GB for a damaged file).
#[test]
fn the_running_index_is_sparse() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    const DAY: u64 = 86_400_000_000_000;
    let mut b = CaptureBuilder::new(1, "/srv/api");
    let (get, path) = (b.string("GET"), b.string("/api/orders"));
    b.ev(0, 7, EventData::GoStart { tid: 1 });
    let t = 2 * DAY - 10_000_000;
    b.server_span(t, 10, 1, get, path);
    // Runnable for 5 ms while g7 holds the only CPU.
    b.ev(t + 1_000_000, 10, EventData::GoStart { tid: 2 });
    b.ev(
        t + 2_000_000,
        10,
        EventData::GoStop {
            reason: gcap_format::stop_reason::PREEMPTED,
        },
    );
    b.ev(t + 7_000_000, 10, EventData::GoStart { tid: 2 });
    b.end_span(t + 8_000_000, 10, 1, 200);
    b.end(2 * DAY);
    let bytes = b.finish();
    let slos = [slo::parse("GET /api/orders: p99 < 1ms").unwrap()];
    let (r, peak, _) = measure(|| report_of(bytes, &slos).unwrap());
    let c = &r.slos[0].root_causes;
    assert!(
        c.iter().any(|c| c.category.name() == "runnable"
            && c.blocker
                .as_deref()
                .is_some_and(|b| b.contains("goroutine 7"))),
        "{c:?}"
    );
    assert!(peak < 16 * MB, "{} MB at once", peak / MB);
}

/// Flips one byte at a time, every `stride` bytes of a corpus capture: `report` never takes
/// more than twice the memory or time of the intact file.
#[test]
fn byte_flips_keep_report_bounded() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let intact = std::fs::read(corpus::capture("lock_convoy")).unwrap();
    let slos = [slo::parse("GET /api/orders: p99 < 10ms").unwrap()];
    let run = |bytes: Vec<u8>| measure(|| report_of(bytes, &slos).map(|r| r.endpoints.len()));
    // The intact file: the least of three runs (the machine may be busy).
    let (mut mem, mut time) = (0, Duration::MAX);
    for _ in 0..3 {
        let (_, m, t) = run(intact.clone());
        (mem, time) = (mem.max(m), time.min(t));
    }
    // Every third byte of the every-97th-byte sweep (325 flips, under a minute unoptimised;
    // FLIP_STRIDE=97 runs the whole sweep). It includes byte 12513, whose flip once took 5×
    // the memory.
    let stride = std::env::var("FLIP_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3 * 97);
    let mut worst = (0usize, 0f64, 0f64);
    for off in (0..intact.len()).step_by(stride) {
        let mut bytes = intact.clone();
        bytes[off] ^= 0xff;
        let (_, m, mut t) = run(bytes.clone());
        for _ in 0..2 {
            if t > 2 * time {
                // A busy machine, or the flip: measure again and keep the fastest.
                t = t.min(run(bytes.clone()).2);
            }
        }
        let (mr, tr) = (m as f64 / mem as f64, t.as_secs_f64() / time.as_secs_f64());
        assert!(mr <= 2.0, "flip at {off}: {mr:.2}× the memory");
        // (Within the clock's granularity.)
        assert!(
            t <= 2 * time + Duration::from_millis(2),
            "flip at {off}: {tr:.2}× the time"
        );
        if mr.max(tr) > worst.1.max(worst.2) {
            worst = (off, mr, tr);
        }
    }
    println!(
        "intact: {} MB at once, {time:?}; worst flip at byte {}: {:.2}× the memory, {:.2}× the time",
        mem / MB,
        worst.0,
        worst.1,
        worst.2
    );
}

/// The hand-built scenarios still read the same (the trusted ranges keep every event of an
/// intact file).
#[test]
fn intact_files_keep_every_event() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let set = CaptureSet::from_bytes("s.gcap", scenario::lifecycle(true)).unwrap();
    let a = Analysis::run(&set, &Options::default());
    assert_eq!(a.events, 17);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
}
