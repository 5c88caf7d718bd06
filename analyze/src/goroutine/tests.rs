//! Known-answer tests of goroutine reconstruction on hand-built captures.

use super::record::Totals;
use super::state::UNKNOWN_REASON;
use super::states::Packed;
use super::*;
use crate::table::GoroutineRow;
use crate::testkit::{reason, scenario, CaptureBuilder};
use crate::{Analysis, CaptureSet};
use gcap_format::EventData;
use std::collections::HashMap;

#[test]
fn record_sizes() {
    // Hundreds of thousands of goroutines per capture, tens of millions of states: every
    // byte is memory the kernel zeroes on first touch.
    eprintln!(
        "Goroutine {} Totals {} Counts<Option<u8>> {} Counts<u64> {} Name {} States {}",
        std::mem::size_of::<Goroutine>(),
        std::mem::size_of::<Totals>(),
        std::mem::size_of::<Counts<Option<u8>>>(),
        std::mem::size_of::<Counts<u64>>(),
        std::mem::size_of::<Name>(),
        std::mem::size_of::<States>(),
    );
    assert_eq!(std::mem::size_of::<Packed>(), 24);
    assert_eq!(std::mem::size_of::<event::GEv>(), 32);
    assert_eq!(std::mem::size_of::<Name>(), 8);
    assert_eq!(std::mem::size_of::<Counts<Option<u8>>>(), 24);
    assert!(std::mem::size_of::<Goroutine>() <= 256);
}

fn analyse(bytes: Vec<u8>) -> (CaptureSet, Analysis) {
    crate::testkit::analysed("t.gcap", bytes)
}

fn get(a: &Analysis, goid: u64) -> &Goroutine {
    a.goroutines.iter().find(|g| g.key.goid == goid).unwrap()
}

#[test]
fn lifecycle_known_answers() {
    for reverse in [false, true] {
        let (set, a) = analyse(scenario::lifecycle(reverse));
        assert_eq!(a.goroutines.len(), 3, "reverse={reverse}");
        let g1 = get(&a, 1);
        assert_eq!(g1.created(), None);
        assert_eq!(g1.parent, None);
        assert_eq!(g1.totals.runnable_ns, 70);
        assert_eq!(g1.totals.running_ns, 380);
        assert_eq!(g1.totals.off_cpu_ns, 50);
        assert_eq!(g1.totals.blocked_ns.get(&Some(19)), Some(&500));
        assert_eq!(g1.totals.wakeups_by.get(&3), Some(&1));
        assert!(g1.alive_at_end());
        assert_eq!(g1.anomalies, 0);
        let g2 = get(&a, 2);
        assert_eq!(g2.parent, Some(1));
        assert_eq!(g2.creation_site, "main.main (main.go:10)");
        assert_eq!(g2.start_function, "main.worker");
        assert_eq!((g2.totals.runnable_ns, g2.totals.running_ns), (110, 210));
        assert_eq!(g2.exited().map(|t| set.rel(t)), Some(420));
        let g3 = get(&a, 3);
        assert_eq!(g3.totals.runnable_ns, 200);
        assert_eq!(g3.totals.running_ns, 170);
        assert_eq!(g3.totals.syscall_ns, 100);
        assert_eq!(g3.totals.blocked_ns.get(&Some(22)), Some(&90));
        assert_eq!(g3.totals.wakeups_by.get(&2), Some(&1));
        assert_eq!(g3.anomalies, 0);

        let row = GoroutineRow::new(g3, &set);
        assert_eq!(
            serde_json::to_value(row.blocked_ns).unwrap(),
            serde_json::json!({"sync.Mutex.Lock": 90})
        );
        assert_eq!(row.created_ns, Some(150));
        assert_eq!(row.exited_ns, Some(710));
        let blocked = g3
            .states
            .iter()
            .find(|s| s.kind == StateKind::Blocked)
            .unwrap();
        assert_eq!(
            set.files[0].where_(0, blocked.stack),
            "main.worker (main.go:25)"
        );
        assert_eq!(
            describe_state(&set.files[0], g3.key, &blocked),
            "blocked: sync.Mutex.Lock at main.worker (main.go:25)"
        );
        // The runnable state after the unblock names its waker.
        assert!(g3
            .states
            .iter()
            .any(|s| s.kind == StateKind::Runnable && s.cause == Cause::Woken(2)));
        // States tile the lifetime.
        for g in &a.goroutines {
            let mut at = g.first_seen;
            for s in &g.states {
                assert_eq!(s.start, at, "goroutine {}", g.key.goid);
                at = s.end;
            }
            assert_eq!(at, g.end);
        }
    }
}

#[test]
fn off_cpu_splits_running() {
    let (_, a) = analyse(scenario::lifecycle(false));
    let g1 = get(&a, 1);
    let kinds: Vec<_> = g1
        .states
        .iter()
        .filter(|s| s.tid == 11)
        .map(|s| (s.kind, s.duration()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (StateKind::Running, 30),
            (StateKind::OffCpu, 50),
            (StateKind::Running, 200)
        ]
    );
}

#[test]
fn existing_goroutines_have_inferred_first_states() {
    let mut b = CaptureBuilder::new(1, "/x");
    b.ev(100, 9, EventData::GoUnblock { waker: 0 });
    b.ev(150, 9, EventData::GoStart { tid: 1 });
    b.ev(200, 8, EventData::SyscallExit { tid: 2 });
    b.ev(300, 8, EventData::GoExit);
    b.end(400);
    let (set, a) = analyse(b.finish());
    let g9 = get(&a, 9);
    assert_eq!(g9.totals.blocked_ns.get(&None), Some(&100));
    assert_eq!(g9.totals.runnable_ns, 50);
    assert_eq!(g9.totals.running_ns, 250);
    assert_eq!(
        GoroutineRow::new(g9, &set).blocked_ns.entries(),
        vec![(UNKNOWN_REASON, 100)]
    );
    assert_eq!(GoroutineRow::new(g9, &set).created_ns, None);
    let g8 = get(&a, 8);
    assert_eq!((g8.totals.syscall_ns, g8.totals.running_ns), (200, 100));
    assert_eq!(g8.totals.wakeups_by.len(), 0);
    assert_eq!(g9.totals.wakeups_by.get(&0), Some(&1));
}

#[test]
fn leak_suspects_need_long_blocks() {
    let (set, a) = analyse(scenario::leak());
    // Two goroutines that did not grow are no suspect at the defaults ...
    assert_eq!(a.leak_suspects(&set, &LeakParams::default()), vec![]);
    // ... and stuck long enough is the first condition whatever the growth.
    let l = a.leak_suspects(&set, &LeakParams::default().any_group());
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].count, 1);
    assert_eq!(l[0].goids, vec![5]);
    assert_eq!(l[0].creation_site, "main.startWorkers (leak.go:5)");
    assert_eq!(l[0].blocked_on, "chan receive");
    assert_eq!(l[0].where_, "main.leaky (leak.go:7)");
    assert_eq!(l[0].max_blocked_ns, 3_000_000_000 - 20);
    // A looser threshold catches g6 too, in the same group.
    let loose = LeakParams {
        min_blocked_ns: 100_000_000,
        min_fraction: 0.1,
        ..LeakParams::default().any_group()
    };
    let l = a.leak_suspects(&set, &loose);
    assert_eq!((l.len(), l[0].count), (1, 2));
}

#[test]
fn lost_events_do_not_derail_the_rest() {
    // GoBlock missing: the unblock arrives while "running"; the goroutine recovers.
    let mut b = CaptureBuilder::new(1, "/x");
    b.ev(0, 4, EventData::GoStart { tid: 1 });
    b.ev(100, 4, EventData::GoUnblock { waker: 5 });
    b.ev(150, 4, EventData::GoStart { tid: 1 });
    b.ev(200, 4, EventData::GoExit);
    b.ev(250, 4, EventData::GoStart { tid: 1 });
    let (_, a) = analyse(b.finish());
    let g = get(&a, 4);
    assert_eq!(g.anomalies, 2);
    assert_eq!(g.totals.running_ns, 150);
    assert_eq!(g.totals.runnable_ns, 50);
    assert_eq!(g.ended_by, EndedBy::Exit);
}

/// In a capture that lost events, the interval before an event that does not follow from
/// the state (an unblock while running: the block was lost) is unknown, in no total, and says
/// why; the rest of the goroutine is as without the loss.
#[test]
fn lost_events_leave_their_gap_unknown() {
    let mut b = CaptureBuilder::new(1, "/x");
    b.ev(0, 4, EventData::GoStart { tid: 1 });
    b.ev(100, 4, EventData::GoUnblock { waker: 5 });
    b.ev(150, 4, EventData::GoStart { tid: 1 });
    b.ev(200, 4, EventData::GoExit);
    b.lost(&[1]);
    let (set, a) = analyse(b.finish());
    let g = get(&a, 4);
    assert_eq!(g.anomalies, 1);
    assert_eq!((g.totals.running_ns, g.totals.runnable_ns), (50, 50));
    assert_eq!(g.unknown_ns(), 100);
    let gap = state_at(&set, g, 50);
    assert_eq!((gap.kind, gap.cause), (StateKind::Unknown, Cause::Lost));
    assert_eq!(gap.unknown_why(), LOST);
}

/// A start straight after a block is what the network poller does (it readies goroutines
/// without a wake-up event): no anomaly, and no gap even in a capture that lost events.
#[test]
fn a_start_after_a_block_is_no_gap() {
    let mut b = CaptureBuilder::new(1, "/x");
    b.ev(0, 4, EventData::GoStart { tid: 1 });
    b.ev(
        100,
        4,
        EventData::GoBlock {
            reason: reason::IO_WAIT,
            stack: 0,
        },
    );
    b.ev(300, 4, EventData::GoStart { tid: 1 });
    b.ev(400, 4, EventData::GoExit);
    b.lost(&[1]);
    let (_, a) = analyse(b.finish());
    let g = get(&a, 4);
    assert_eq!(g.anomalies, 0);
    assert_eq!((g.totals.running_ns, g.totals.blocked_total()), (200, 200));
    assert_eq!(g.unknown_ns(), 0);
}

#[test]
fn process_exit_ends_goroutines() {
    let mut b = CaptureBuilder::new(1, "/x");
    b.ev(0, 4, EventData::GoStart { tid: 1 });
    b.ev(100, 0, EventData::ProcExit { code: 2 });
    b.end(500);
    let (_, a) = analyse(b.finish());
    let g = get(&a, 4);
    assert_eq!(g.ended_by, EndedBy::ProcessExit);
    assert_eq!(g.totals.running_ns, 100);
    assert!(!g.alive_at_end());
}

/// The state of a goroutine at `t` (ns after the capture start).
fn state_at(set: &CaptureSet, g: &Goroutine, t: i64) -> State {
    let t = set.files[0].start + t;
    g.states
        .iter()
        .find(|s| s.start <= t && t < s.end)
        .unwrap_or_else(|| panic!("goroutine {} has no state at {t}", g.key.goid))
}

const US: i64 = 1000;

#[test]
fn time_outside_lifecycle_windows_is_unknown() {
    let (set, a) = analyse(scenario::windowed(6));
    for g in &a.goroutines {
        assert_eq!(g.anomalies, 0, "goroutine {}", g.key.goid);
        // The states still tile every life.
        let mut at = g.first_seen;
        for s in &g.states {
            assert_eq!(s.start, at, "goroutine {}", g.key.goid);
            at = s.end;
        }
        assert_eq!(at, g.end, "goroutine {}", g.key.goid);
    }
    // g7 slept through the gap as far as anyone knows: unknown, in no total.
    let g7 = get(&a, 7);
    assert_eq!(state_at(&set, g7, 5000 * US).kind, StateKind::Unknown);
    assert_eq!(g7.unknown_ns(), 2000 * US as u64);
    let life = (g7.end - g7.first_seen) as u64;
    let t = &g7.totals;
    assert_eq!(
        t.running_ns + t.runnable_ns + t.blocked_total() + g7.unknown_ns(),
        life
    );
    // Per slow request: runnable 5 µs once woken, then running 10 µs to unlock and sleep.
    assert_eq!(
        (t.running_ns, t.runnable_ns),
        (6 * 10 * US as u64, 6 * 5 * US as u64)
    );
    // Both windows open in the state the snapshot read: asleep at store.go:60.
    for at in [10 * US, 6100 * US] {
        let s = state_at(&set, g7, at);
        assert_eq!(
            (s.kind, s.reason),
            (StateKind::Blocked, Some(reason::SLEEP))
        );
        assert_eq!(
            set.files[0].where_(0, s.stack),
            "main.(*store).refresh (store.go:60)"
        );
    }
    // Its origin comes from the snapshots.
    assert_eq!(g7.start_function, "main.(*store).refresh");
    assert_eq!(g7.creation_site, "main.main (main.go:88)");
    assert_eq!(g7.created(), None);
    // A handler inside a window: all of it known.
    assert_eq!(get(&a, 10).unknown_ns(), 0);
}

#[test]
fn goroutines_seen_only_in_snapshots_are_listed() {
    let (set, a) = analyse(scenario::windowed(0));
    for goid in [100, 101, 102] {
        let g = get(&a, goid);
        assert_eq!(g.start_function, "main.leaky");
        assert_eq!(g.creation_site, "main.startWorkers (leak.go:5)");
        assert_eq!(g.parent, Some(1));
        assert!(g.alive_at_end());
        // Parked in both windows, unknown between them.
        assert_eq!(
            g.totals.blocked_ns.get(&Some(reason::CHAN_RECEIVE)),
            Some(&(8000 * US as u64))
        );
        assert_eq!(g.unknown_ns(), 2000 * US as u64);
        let row = GoroutineRow::new(g, &set);
        assert_eq!(
            row.state_at_end.as_deref(),
            Some("blocked: chan receive at main.leaky (leak.go:7)")
        );
    }
    // The accept loop: known only as parked in IO wait.
    let g1 = get(&a, 1);
    assert_eq!(g1.start_function, "main.main");
    assert_eq!(g1.totals.running_ns, 0);
}

#[test]
fn goroutines_missing_from_a_later_snapshot_exited_unseen() {
    let (set, a) = analyse(scenario::windowed(0));
    for goid in [50, 90] {
        let g = get(&a, goid);
        assert_eq!(g.ended_by, EndedBy::ExitedUnseen, "goroutine {goid}");
        assert_eq!(g.end - set.files[0].start, 6000 * US);
        assert_eq!(g.exited(), None);
        assert!(!g.alive_at_end());
        assert_eq!(state_at(&set, g, 5000 * US).kind, StateKind::Unknown);
    }
    // g50 was running when first read.
    let g50 = get(&a, 50);
    assert_eq!(state_at(&set, g50, 50 * US).kind, StateKind::Running);
    assert_eq!(g50.totals.running_ns, 740 * US as u64);
}

#[test]
fn leak_suspects_come_from_goroutines_parked_in_every_snapshot() {
    let (set, a) = analyse(scenario::windowed(6));
    // Three workers there from the start that never grew: no suspect at the defaults.
    assert_eq!(a.leak_suspects(&set, &LeakParams::default()), vec![]);
    let l = a.leak_suspects(&set, &LeakParams::default().any_group());
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].count, 3);
    assert_eq!(l[0].goids, vec![100, 101, 102]);
    assert_eq!(l[0].creation_site, "main.startWorkers (leak.go:5)");
    assert_eq!(l[0].start_function, "main.leaky");
    assert_eq!(l[0].blocked_on, "chan receive");
    assert_eq!(l[0].where_, "main.leaky (leak.go:7)");
    // Waiting 10 s when first read, at the capture's start, which lasted 10 ms.
    assert_eq!(l[0].max_blocked_ns, 10_010_000_000);
    // g7 sleeps in both snapshots but ran between them: not stuck.
    assert!(get(&a, 7).parked.is_none());
    // g60, created during the capture, is parked since it blocked (600 µs), before the
    // one snapshot that had it: blocked 9.4 ms, too short for the default threshold.
    let p = get(&a, 60).parked.as_deref().copied().unwrap();
    assert_eq!(p.since - set.files[0].start, 600 * US);
    let loose = LeakParams {
        min_blocked_ns: 1_000_000,
        min_fraction: 0.5,
        ..LeakParams::default().any_group()
    };
    let l = a.leak_suspects(&set, &loose);
    assert_eq!((l[0].count, l[0].min_blocked_ns), (4, 9_400_000));
}

#[test]
fn a_snapshot_opens_goroutines_of_a_capture_without_windows() {
    let mut b = CaptureBuilder::new(1, "/x");
    let site = b.func(0x10, "main.main", "/src/x/main.go", 9);
    let start = b.func(0x20, "main.wait", "/src/x/main.go", 20);
    b.symbol(0x30, "main.wait", "/src/x/main.go", 22);
    let parked = b.stack(&[0x30]);
    for (goid, status) in [(5, 4), (6, 1)] {
        b.ev(
            10,
            goid,
            EventData::GoSnapshot {
                status,
                reason: crate::testkit::reason::SELECT,
                waiting_ns: u64::MAX,
                parent: 1,
                creation: site,
                start,
                stack: if status == 4 { parked } else { 0 },
                snapshot: 0,
            },
        );
    }
    b.ev(
        10,
        0,
        EventData::SnapshotEnd {
            snapshot: 0,
            goroutines: 2,
            torn: 0,
        },
    );
    b.ev(300, 6, EventData::GoStart { tid: 1 });
    b.end(1000);
    let (set, a) = analyse(b.finish());
    // Everything was recorded: no unknown time, states from the capture's start.
    let g5 = get(&a, 5);
    assert_eq!(g5.unknown_ns(), 0);
    assert_eq!(
        g5.totals
            .blocked_ns
            .get(&Some(crate::testkit::reason::SELECT)),
        Some(&1000)
    );
    assert_eq!(
        GoroutineRow::new(g5, &set).state_at_end.as_deref(),
        Some("blocked: select at main.wait (main.go:22)")
    );
    assert_eq!(g5.start_function, "main.wait");
    let g6 = get(&a, 6);
    assert_eq!((g6.totals.runnable_ns, g6.totals.running_ns), (300, 700));
    assert_eq!(state_at(&set, g6, 0).cause, Cause::Snapshot);
    assert_eq!(g6.anomalies, 0);
}

/// A capture of 5 s: `grown` goroutines created at `main.serve` one every 400 ms, and
/// `workers` created at `main.(*Manager).Run` within a millisecond, every one blocked on a
/// channel receive from its start to the end.
fn piling(grown: u64, workers: u64) -> Vec<u8> {
    let mut b = CaptureBuilder::new(9, "/srv/pile");
    let serve = b.func(0x1000, "main.serve", "/src/pile/main.go", 10);
    let run = b.func(0x1100, "main.(*Manager).Run", "/src/pile/main.go", 20);
    let start = b.func(0x2000, "main.wait", "/src/pile/main.go", 30);
    b.symbol(0x3000, "runtime.gopark", "/goroot/src/runtime/proc.go", 400);
    b.symbol(0x3100, "main.wait", "/src/pile/main.go", 31);
    let st = b.stack(&[0x3000, 0x3100]);
    let mut starts: Vec<(u64, u64, u32)> = (0..grown)
        .map(|i| (10_000_000 + 400_000_000 * i, 100 + i, serve))
        .chain((0..workers).map(|i| (20_000_000 + 100 * i, 10_000 + i, run)))
        .collect();
    starts.sort_unstable();
    for (t, g, creation) in starts {
        b.ev(
            t,
            g,
            EventData::GoCreate {
                parent: 1,
                creation,
                start,
            },
        );
        b.ev(t + 10, g, EventData::GoStart { tid: 2 });
        b.ev(
            t + 20,
            g,
            EventData::GoBlock {
                reason: reason::CHAN_RECEIVE,
                stack: st,
            },
        );
    }
    b.end(5_000_000_000);
    b.finish()
}

#[test]
fn leak_suspects_grow_during_the_capture() {
    let (set, a) = analyse(piling(10, 2));
    let l = a.leak_suspects(&set, &LeakParams::default());
    // Those arriving over the capture are one suspect; the two workers started at once are
    // not.
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].creation_site, "main.serve (main.go:10)");
    // Seven were blocked half the capture (2.5 s); the first is no growth, nor the second
    // (400 ms after it, within the 500-ms grace).
    assert_eq!((l[0].count, l[0].growth), (7, 5));
    assert_eq!(l[0].how(), "+5 during the capture");
    // Any group of stuck goroutines lists the workers too, which did not grow.
    let all = a.leak_suspects(&set, &LeakParams::default().any_group());
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].creation_site, "main.(*Manager).Run (main.go:20)");
    assert_eq!((all[1].count, all[1].growth), (2, 0));
}

#[test]
fn a_pile_without_growth_is_a_suspect_when_it_outnumbers_the_requests() {
    let (set, a) = analyse(piling(0, 1_000));
    let none = HashMap::new();
    let l = leak::leak_suspects(&set, &a.goroutines, &LeakParams::default(), &none);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!((l[0].count, l[0].growth), (1_000, 0));
    assert_eq!(l[0].how(), "none new during the capture");
    // 1,000 goroutines for 200 requests in flight (five a request): no pile.
    let busy = HashMap::from([(9, 200)]);
    let l = leak::leak_suspects(&set, &a.goroutines, &LeakParams::default(), &busy);
    assert_eq!(l, vec![]);
    let l = leak::leak_suspects(
        &set,
        &a.goroutines,
        &LeakParams::default().any_group(),
        &busy,
    );
    assert_eq!(
        l[0].how(),
        "none new during the capture; at most 200 requests in flight"
    );
    // One fewer than the minimum pile is no suspect either.
    let (set, a) = analyse(piling(0, 999));
    assert_eq!(a.leak_suspects(&set, &LeakParams::default()), vec![]);
}

#[test]
fn requests_in_flight_are_the_most_at_once() {
    let f = leak::requests_in_flight(
        [
            (1, 0, 10),
            (1, 5, 20),
            (1, 10, 30), // starts as the first ends
            (1, 12, 18), // three at once
            (1, 25, 26),
            (2, 0, 100),
        ]
        .into_iter(),
    );
    assert_eq!(f, HashMap::from([(1, 3), (2, 1)]));
}
