//! Small byte helpers: tests for the per-field hot paths (reading, mapping, writing import
//! files), and the one lower-case hex encoder of the crate.
//!
//! Why the tests exist: the values of an export are short, and a call to `memcmp` or `memchr` per
//! value cost more than the work itself; these run inline, eight bytes at a time.

/// Lower-case hex of `bytes`, two digits per byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Byte-wise equality of two names, without a call to `memcmp` for the short names of an export
/// (a call per comparison was a visible part of reading a record).
#[inline]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let load8 = |x: &[u8], i: usize| u64::from_le_bytes(x[i..i + 8].try_into().unwrap());
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            if load8(a, i) != load8(b, i) {
                return false;
            }
            i += 8;
        }
        // The last (possibly overlapping) eight bytes.
        load8(a, n - 8) == load8(b, n - 8)
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

/// Whether `b` holds any of the `needles`, eight bytes at a time (a word has a byte equal to `n`
/// exactly where `word ^ n…n` has a zero byte).
#[inline]
pub(crate) fn contains_any<const N: usize>(b: &[u8], needles: [u8; N]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_le_bytes(c.try_into().unwrap());
        if needles.iter().any(|&n| has_zero(x ^ (ONES * n as u64))) {
            return true;
        }
    }
    chunks.remainder().iter().any(|c| needles.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_and_contains_any_match_the_plain_versions() {
        assert!(same(b"identities", b"identities") && !same(b"identities", b"identitiez"));
        assert!(same(b"", b"") && !same(b"a", b"ab"));
        assert!(!same(b"abcdefgh1", b"abcdefgh2") && same(b"abcdefgh12", b"abcdefgh12"));
        for len in 0..40 {
            for at in 0..len {
                for c in [
                    b'\n',
                    b'\r',
                    b',',
                    b'a',
                    0x0b,
                    0x8a,
                    0x8d,
                    b',' + 0x80,
                    b'\\',
                ] {
                    let mut b = vec![b'x'; len];
                    b[at] = c;
                    let plain = |needles: &[u8]| b.iter().any(|x| needles.contains(x));
                    assert_eq!(contains_any(&b, [b'\n', b'\r']), plain(b"\n\r"), "{b:?}");
                    assert_eq!(contains_any(&b, [b',']), plain(b","), "{b:?}");
                }
            }
        }
    }
}
