//! Slow requests, as the budget's trigger sees them while the capture runs: server spans
//! that end (or are still running) past their endpoint's threshold.
//!
//! The threshold is the one of an SLO given to gcap for the endpoint (`--slo`,
//! `--slo-file`: the strictest that covers it): every request over it is slow. Without one
//! it is the endpoint's running p99 (or [`OVER_P50`] times its running median, when that is
//! lower: a steady tail of 5% of requests 400 times the median sets the p99 itself, and is
//! what the user calls slow), taken over the requests that ended in the
//! [`HISTORY_NS`] before the last second (at most [`PER_SECOND`] a second: a sample at high
//! rates). The last second is left out because it is what is judged: a baseline of the last
//! few hundred requests would take in a slowdown within milliseconds on a busy service,
//! and call nothing slow. A p99 is exceeded by 1% of requests by definition, and a
//! service's tail is noisy, so a request is slow over [`OVER_P99`] times the p99 and the
//! trigger waits for more than one: at least [`MIN_SLOW`] slow requests making
//! [`SLOW_SHARE`] of the endpoint's requests of the last second (and of at least
//! [`MIN_RECENT`] requests), or one request still running at [`STUCK`] times the p99.

use std::collections::{HashMap, VecDeque};

use gcap_slo::Slo;

use crate::translate::spans::Request;

/// The running p99 is taken over the requests that ended this long before the last second.
const HISTORY_NS: u64 = 10 * SECOND_NS;
/// Requests a second kept for the running p99.
const PER_SECOND: u32 = 200;
/// How often the running p99 is taken again.
const P99_EVERY_NS: u64 = 100_000_000;
/// Requests an endpoint needs before its p99 is trusted.
const MIN_HISTORY: usize = 200;
/// Without an SLO, a request is slow over this many times its endpoint's running p99...
const OVER_P99: u64 = 2;
/// ...or over this many times its running median, and [`SLOW_MIN_NS`].
const OVER_P50: u64 = 20;
const SLOW_MIN_NS: u64 = 1_000_000;
/// Slow requests in one second that trigger...
const MIN_SLOW: usize = 3;
/// ...when they are at least this share of the second's requests (5× the expected 1%)...
const SLOW_SHARE: f64 = 0.05;
/// ...counted over the last second, or the last this many requests if that is more.
const MIN_RECENT: usize = 50;
/// A request still running after this many times its endpoint's p99 (and at least
/// [`STUCK_MIN_NS`]) triggers on its own.
const STUCK: u64 = 4;
const STUCK_MIN_NS: u64 = 100_000_000;
const SECOND_NS: u64 = 1_000_000_000;

/// Recent requests of one endpoint.
#[derive(Debug, Default)]
struct Endpoint {
    /// (end, duration) of the requests kept for the p99, oldest first.
    history: VecDeque<(u64, u64)>,
    /// The second the last request kept ended in, and how many of it were kept.
    second: u64,
    in_second: u32,
    /// The slow threshold from the history before the last second (None until
    /// [`MIN_HISTORY`]), and when it was taken.
    threshold: Option<u64>,
    threshold_at: u64,
    /// The requests of the last second (at least [`MIN_RECENT`]): (end, slow).
    last_second: VecDeque<(u64, bool)>,
    slow_in_last_second: usize,
}

impl Endpoint {
    fn record(&mut self, end: u64, duration: u64) {
        let second = end / SECOND_NS;
        if second != self.second {
            (self.second, self.in_second) = (second, 0);
        }
        if self.in_second < PER_SECOND {
            self.in_second += 1;
            self.history.push_back((end, duration));
        }
        while self
            .history
            .front()
            .is_some_and(|h| h.0 + HISTORY_NS + SECOND_NS < end)
        {
            self.history.pop_front();
        }
        // Sorting a few thousand values costs tens of µs: not on every request.
        if self.threshold.is_some() && end < self.threshold_at + P99_EVERY_NS {
            return;
        }
        self.threshold_at = end;
        let mut v: Vec<u64> = self
            .history
            .iter()
            .take_while(|h| h.0 + SECOND_NS <= end)
            .map(|h| h.1)
            .collect();
        self.threshold = (v.len() >= MIN_HISTORY).then(|| {
            v.sort_unstable();
            let p99 = v[(v.len() * 99).div_ceil(100) - 1];
            let p50 = v[v.len().div_ceil(2) - 1];
            (OVER_P99 * p99).min((OVER_P50 * p50).max(SLOW_MIN_NS))
        });
    }
}

/// Finds slow requests among those the capture sees.
pub(crate) struct SlowRequests {
    /// SLOs given to gcap (those with a latency objective count).
    slos: Vec<Slo>,
    endpoints: HashMap<(u32, Box<str>), Endpoint>,
    /// Requests found slow so far, for the summary.
    pub(crate) slow: u64,
}

impl SlowRequests {
    /// `slos`: the SLOs given to gcap (`--slo`, `--slo-file`).
    pub(crate) fn new(slos: Vec<Slo>) -> SlowRequests {
        SlowRequests {
            slos,
            endpoints: HashMap::new(),
            slow: 0,
        }
    }

    /// Takes requests that ended; true when they should open a window.
    pub(crate) fn ended(&mut self, requests: &[Request]) -> bool {
        let mut trigger = false;
        for r in requests {
            let duration = r.end.saturating_sub(r.start);
            if let Some(t) = self.threshold(&r.endpoint) {
                if duration > t {
                    self.slow += 1;
                    trigger = true;
                }
                continue;
            }
            let e = self
                .endpoints
                .entry((r.target, r.endpoint.clone()))
                .or_default();
            // The threshold comes from the requests before this one.
            let slow = e.threshold.is_some_and(|t| duration > t);
            e.last_second.push_back((r.end, slow));
            while e.last_second.len() > MIN_RECENT
                && e.last_second
                    .front()
                    .is_some_and(|f| f.0 + SECOND_NS < r.end)
            {
                if e.last_second.pop_front().is_some_and(|f| f.1) {
                    e.slow_in_last_second -= 1;
                }
            }
            if slow {
                e.slow_in_last_second += 1;
                self.slow += 1;
                let n = e.slow_in_last_second;
                if e.last_second.len() >= MIN_RECENT
                    && n >= MIN_SLOW
                    && n as f64 >= SLOW_SHARE * e.last_second.len() as f64
                {
                    trigger = true;
                }
            }
            e.record(r.end, duration);
        }
        trigger
    }

    /// The latency threshold of the SLOs covering `endpoint` ("GET /api/orders"): the
    /// strictest, if several do.
    fn threshold(&self, endpoint: &str) -> Option<u64> {
        self.slos
            .iter()
            .filter(|s| s.endpoint.matches(endpoint))
            .filter_map(|s| s.latency.map(|l| l.threshold_ns()))
            .min()
    }

    /// Whether a request to `endpoint` of `target` that started at `start` and still runs
    /// at `now` is slow enough to open a window.
    pub(crate) fn running(&self, target: u32, endpoint: &str, start: u64, now: u64) -> bool {
        let elapsed = now.saturating_sub(start);
        if let Some(t) = self.threshold(endpoint) {
            return elapsed > t;
        }
        self.endpoints
            .get(&(target, Box::from(endpoint)))
            .and_then(|e| e.threshold)
            .is_some_and(|t| elapsed > (STUCK * t / OVER_P99).max(STUCK_MIN_NS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn req(end: u64, duration: u64) -> Request {
        Request {
            target: 0,
            endpoint: "GET /a".into(),
            start: end - duration,
            end,
        }
    }

    #[test]
    fn a_steady_tail_does_not_trigger_a_slowdown_does() {
        let mut s = SlowRequests::new(Vec::new());
        // 100 requests a second, 1 ms each but 2% at 3 ms and 1% at 10 ms: the p99 is
        // the tail itself.
        let mut t = SECOND_NS;
        for i in 0..3000u64 {
            t += 10 * MS;
            let d = match i % 100 {
                7 => 10 * MS,
                9 | 55 => 3 * MS,
                _ => MS,
            };
            assert!(!s.ended(&[req(t, d)]), "request {i}");
        }
        // Now every request takes 20 ms.
        let triggered = (0..10).any(|_| {
            t += 10 * MS;
            s.ended(&[req(t, 20 * MS)])
        });
        assert!(triggered);
    }

    #[test]
    fn a_slowdown_of_a_busy_service_triggers() {
        // 20,000 requests a second of 100 µs; then one in five takes 20 ms. A baseline of
        // the last few hundred requests would take the slowdown in within milliseconds.
        let mut s = SlowRequests::new(Vec::new());
        let mut t = SECOND_NS;
        for _ in 0..100_000u64 {
            t += 50_000;
            assert!(!s.ended(&[req(t, MS / 10)]));
        }
        let mut triggered = false;
        for i in 0..20_000u64 {
            t += 50_000;
            let d = if i % 5 == 0 { 20 * MS } else { MS / 10 };
            triggered |= s.ended(&[req(t, d)]);
        }
        assert!(triggered);
    }

    #[test]
    fn a_steady_tail_far_above_the_median_triggers() {
        // 100 requests a second of 250 µs, and one in twenty takes 100 ms (a slow query):
        // the p99 is 100 ms, but the median is 400 times less.
        let mut s = SlowRequests::new(Vec::new());
        let mut t = SECOND_NS;
        let mut triggered = false;
        for i in 0..3000u64 {
            t += 10 * MS;
            let d = if i % 20 == 0 { 100 * MS } else { MS / 4 };
            triggered |= s.ended(&[req(t, d)]);
        }
        assert!(triggered);
        // Fast requests are not slow, however far above the median: 1 ms is the least.
        let mut s = SlowRequests::new(Vec::new());
        let mut t = SECOND_NS;
        for i in 0..3000u64 {
            t += 10 * MS;
            let d = if i % 10 == 0 { 900_000 } else { 20_000 };
            assert!(!s.ended(&[req(t, d)]), "request {i}");
        }
    }

    #[test]
    fn a_stuck_request_triggers() {
        let mut s = SlowRequests::new(Vec::new());
        let mut t = SECOND_NS;
        for _ in 0..400 {
            t += 10 * MS;
            s.ended(&[req(t, 2 * MS)]);
        }
        assert!(!s.running(0, "GET /a", t, t + 50 * MS));
        assert!(s.running(0, "GET /a", t, t + 150 * MS));
        assert!(!s.running(0, "GET /other", t, t + 150 * MS), "no history");
    }

    #[test]
    fn with_an_slo_every_request_over_it_is_slow() {
        let slos = vec![
            gcap_slo::parse("GET /a*: p99 < 5ms").unwrap(),
            gcap_slo::parse("*: errors < 1%").unwrap(),
        ];
        let mut s = SlowRequests::new(slos);
        assert!(!s.ended(&[req(SECOND_NS, MS)]));
        assert!(s.ended(&[req(SECOND_NS, 6 * MS)]));
        assert!(s.running(0, "GET /a", 0, 6 * MS));
        assert!(!s.running(0, "GET /a", 0, 4 * MS));
        assert_eq!(s.slow, 1);
    }
}
