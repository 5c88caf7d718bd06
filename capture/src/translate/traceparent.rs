//! W3C Trace Context: the `traceparent` header of an HTTP request, parsed into the trace
//! and parent span ids a span start records.

use gcap_format::TraceContext;

/// Parses a W3C `traceparent` value: `VV-<32 hex trace id>-<16 hex parent id>-<2 hex
/// flags>` (version ff and all-zero ids are invalid; a future version may append fields
/// after a `-`).
pub fn parse_traceparent(v: &[u8]) -> Option<TraceContext> {
    let s = std::str::from_utf8(v).ok()?.trim();
    if s.len() < 55 || !s.is_char_boundary(55) {
        return None;
    }
    let (head, rest) = s.split_at(55);
    let b = head.as_bytes();
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let hex = |x: &str| {
        x.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    let (ver, trace, span, flags) = (&head[0..2], &head[3..35], &head[36..52], &head[53..55]);
    if !(hex(ver) && hex(trace) && hex(span) && hex(flags)) || ver == "ff" {
        return None;
    }
    if ver == "00" && !rest.is_empty() {
        return None;
    }
    if !rest.is_empty() && !rest.starts_with('-') {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let span_id = u64::from_str_radix(span, 16).ok()?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(TraceContext {
        trace_id,
        span_id,
        flags: u8::from_str_radix(flags, 16).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents() {
        let t =
            parse_traceparent(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        assert_eq!(t.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
        assert_eq!(t.span_id, 0xb7ad6b7169203331);
        assert_eq!(t.flags, 1);
        for bad in [
            &b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"[..],
            b"00-00000000000000000000000000000000-b7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            b"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
            b"00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(
                parse_traceparent(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // A future version may carry more fields.
        assert!(
            parse_traceparent(b"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-abcd")
                .is_some()
        );
    }
}
