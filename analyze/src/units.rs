//! Durations and numbers as text: written for people (`4.56ms`, `+1.234567s`), and (from
//! `gcap_slo`, shared with gcap) written and read the way SLOs and options spell them
//! (`200ms`, `1.5s`, `2m`).

pub use gcap_slo::{fmt_dur, parse_duration, short_decimal, DurationError};

/// A duration for people: "850ns", "12.3µs", "4.56ms", "1.234s".
pub(crate) fn fmt_ns(ns: u64) -> String {
    let f = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}µs", f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", f / 1e6)
    } else {
        format!("{:.3}s", f / 1e9)
    }
}

/// A time since the capture start, in seconds: "+1.234567s".
pub(crate) fn fmt_at(ns: i64) -> String {
    format!("{:+.6}s", ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_durations_and_times() {
        assert_eq!(fmt_ns(850), "850ns");
        assert_eq!(fmt_ns(12_345), "12.3µs");
        assert_eq!(fmt_ns(4_561_000), "4.56ms");
        assert_eq!(fmt_ns(1_234_000_000), "1.234s");
        assert_eq!(fmt_at(1_234_567_000), "+1.234567s");
    }
}
