//! Durations the way SLOs and options spell them: written (`200ms`, `1.5s`, `2m`) and read
//! back, and the short decimals SLOs use.

/// A number in at most six decimals, without trailing zeros: "99.9", "1", "0.25".
pub fn short_decimal(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A duration the way SLOs write them (what [`parse_duration`] reads back): "200ms", "1s",
/// "1.5s", "250us", "2m".
pub fn fmt_dur(ns: u64) -> String {
    // (Not `is_multiple_of`: the workspace supports Rust 1.85.)
    let multiple = |of: u64| ns > 0 && ns / of * of == ns;
    if multiple(60_000_000_000) {
        format!("{}m", ns / 60_000_000_000)
    } else if multiple(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns >= 1_000_000_000 {
        format!("{}s", short_decimal(ns as f64 / 1e9))
    } else if ns >= 1_000_000 {
        format!("{}ms", short_decimal(ns as f64 / 1e6))
    } else if ns >= 1_000 {
        format!("{}us", short_decimal(ns as f64 / 1e3))
    } else {
        format!("{ns}ns")
    }
}

/// The units a duration may be written in.
const UNITS: [&str; 6] = ["ns", "us", "µs", "ms", "s", "m"];

/// Why a duration was not accepted; the message shows the right form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration (write a number and a unit: 200ms, 1.5s, 250us)")]
    NoNumber(String),
    #[error("{text:?} has no unit (write {number}ms or {number}s; units: ns, us, ms, s, m)")]
    NoUnit { text: String, number: String },
    #[error("{0:?} is not a duration unit (use ns, us, ms, s or m, e.g. 200ms)")]
    UnknownUnit(String),
    #[error("{0:?} is not a duration (write e.g. 200ms, 1.5s, 250us)")]
    Malformed(String),
    /// Finer than a nanosecond, or too large for 64-bit nanoseconds.
    #[error("{0:?} is out of range: a duration is a whole number of nanoseconds, up to about 584 years (e.g. 200ms)")]
    OutOfRange(String),
}

/// Reads a duration, in nanoseconds: a number, decimals allowed, and one unit of `ns`,
/// `us` (or `µs`), `ms`, `s`, `m` ("200ms", "1.5s", "250us", "2m", "100ns").
pub fn parse_duration(s: &str) -> Result<u64, DurationError> {
    let s = s.trim();
    // The unit is checked here so that a missing or unknown one is named, and so that only
    // the units above are accepted of all that humantime knows.
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() {
        return Err(DurationError::NoNumber(s.into()));
    }
    match unit.trim() {
        "" => {
            return Err(DurationError::NoUnit {
                text: s.into(),
                number: number.into(),
            })
        }
        u if !UNITS.contains(&u) => return Err(DurationError::UnknownUnit(u.into())),
        _ => {}
    }
    let d = humantime::parse_duration(s).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => DurationError::OutOfRange(s.into()),
        _ => DurationError::Malformed(s.into()),
    })?;
    u64::try_from(d.as_nanos()).map_err(|_| DurationError::OutOfRange(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_written() {
        for (s, ns) in [
            ("100ns", 100),
            ("250us", 250_000),
            ("250µs", 250_000),
            ("1.5ms", 1_500_000),
            ("200ms", 200_000_000),
            (" 200 ms ", 200_000_000),
            ("1s", 1_000_000_000),
            ("0.1s", 100_000_000),
            ("2m", 120_000_000_000),
        ] {
            assert_eq!(parse_duration(s), Ok(ns), "{s}");
        }
        assert_eq!(fmt_dur(200_000_000), "200ms");
        assert_eq!(fmt_dur(1_500_000_000), "1.5s");
        assert_eq!(fmt_dur(120_000_000_000), "2m");
        assert_eq!(fmt_dur(250_000), "250us");
        assert_eq!(fmt_dur(0), "0ns");
    }

    #[test]
    fn malformed_durations_say_why() {
        let e = |s: &str| parse_duration(s).unwrap_err().to_string();
        assert_eq!(
            e("ms"),
            "\"ms\" is not a duration (write a number and a unit: 200ms, 1.5s, 250us)"
        );
        assert_eq!(
            e("200"),
            "\"200\" has no unit (write 200ms or 200s; units: ns, us, ms, s, m)"
        );
        assert_eq!(
            e("1h"),
            "\"h\" is not a duration unit (use ns, us, ms, s or m, e.g. 200ms)"
        );
        assert_eq!(
            e("1.2.3s"),
            "\"1.2.3s\" is not a duration (write e.g. 200ms, 1.5s, 250us)"
        );
        assert!(matches!(
            parse_duration("99999999999999m"),
            Err(DurationError::OutOfRange(_))
        ));
    }

    #[test]
    fn short_decimals() {
        assert_eq!(short_decimal(99.9), "99.9");
        assert_eq!(short_decimal(1.0), "1");
    }
}
