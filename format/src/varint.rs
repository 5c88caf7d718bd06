//! FORMAT.md §5 varints: LEB128 unsigned varints and zigzag signed integers, the encoding of
//! every column inside an events block (small numbers take one byte, and zstd squeezes the
//! rest).
//!
//! Hand-written rather than taken from a varint crate: any LEB128 encoder writes the same
//! bytes, but decoders differ in which malformed input they reject (non-minimal encodings,
//! bits past 64), and this one's rules are what readers of existing files accept; it is also
//! the innermost loop of every read.

/// Appends `v` as an unsigned LEB128 varint (1 to 10 bytes).
#[inline]
pub(crate) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Maps a signed value to an unsigned one so that small magnitudes stay small.
#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over a varint column. Reading past the end or an over-long varint yields `None`,
/// never a panic: columns come from untrusted files.
#[derive(Clone, Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Reads one varint.
    #[inline(always)]
    pub(crate) fn get(&mut self) -> Option<u64> {
        // Fast path: one byte, the common case for deltas and small ids.
        let b = *self.buf.get(self.pos)?;
        if b < 0x80 {
            self.pos += 1;
            return Some(b as u64);
        }
        self.get_long()
    }

    #[cold]
    #[inline(never)]
    fn get_long(&mut self) -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return None; // more than 64 bits
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Some(v);
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    }

    /// True when every byte was consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip(vals in proptest::collection::vec(any::<u64>(), 0..64)) {
            let mut buf = Vec::new();
            for &v in &vals { put(&mut buf, v); }
            let mut c = Cursor::new(&buf);
            for &v in &vals { prop_assert_eq!(c.get(), Some(v)); }
            prop_assert!(c.is_empty());
            prop_assert_eq!(c.get(), None);
        }

        #[test]
        fn zigzag_roundtrip(v in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut c = Cursor::new(&bytes);
            while c.get().is_some() {}
        }
    }

    #[test]
    fn overlong_is_rejected() {
        let bytes = [0xffu8; 11];
        assert_eq!(Cursor::new(&bytes).get(), None);
        let mut max = Vec::new();
        put(&mut max, u64::MAX);
        assert_eq!(max.len(), 10);
        assert_eq!(Cursor::new(&max).get(), Some(u64::MAX));
    }
}
