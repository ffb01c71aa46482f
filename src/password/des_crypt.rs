//! Traditional Unix DES `crypt(3)`: what Python's `crypt.crypt(password, "ab")` returns for a
//! two-character salt, and so what Django's `CryptPasswordHasher` stored (`crypt$$ab…`).
//!
//! The algorithm (Seventh Edition Unix `crypt.c`): the key is the first 8 bytes of the password,
//! each byte's low 7 bits shifted left by one (the parity bit ignored); the 12-bit salt swaps
//! entries `i` and `i + 24` of DES's expansion table for each of its set bits; a zero block is
//! encrypted 25 times with that modified DES; the 64-bit result is written as 11 characters of
//! the crypt alphabet, 6 bits each, most significant first (two zero bits pad the last one). The
//! output is the two salt characters followed by those 11.
//!
//! It exists only so that the migration trigger can verify such legacy hashes; nothing here is
//! meant to protect anything. Tables are the standard FIPS 46 ones; the final permutation is
//! derived from the initial one so that it cannot be mistyped.

use super::encoding::CRYPT_ALPHABET;

const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6,
    64, 56, 48, 40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61,
    53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];

const E: [u8; 48] = [
    32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18,
    19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];

const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19,
    13, 30, 6, 22, 11, 4, 25,
];

const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60,
    52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29,
    21, 13, 5, 28, 20, 12, 4,
];

const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52,
    31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

const SHIFTS: [u8; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

const S: [[u8; 64]; 8] = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12,
        11, 9, 5, 3, 8, 4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9,
        1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1,
        10, 6, 9, 11, 5, 0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15,
        4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5,
        14, 12, 11, 15, 1, 13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6,
        9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2,
        12, 1, 10, 14, 9, 10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1,
        13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15,
        10, 3, 9, 8, 6, 4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14,
        2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13,
        14, 0, 11, 3, 8, 9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5,
        15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5,
        12, 2, 15, 8, 6, 1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4,
        10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6,
        11, 0, 14, 9, 2, 7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10,
        8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
];

/// Picks bits of `input` (`width` bits wide, bit 1 the most significant) in `table`'s order.
fn permute(input: u64, width: u32, table: &[u8]) -> u64 {
    table.iter().fold(0u64, |out, &from| {
        (out << 1) | ((input >> (width - u32::from(from))) & 1)
    })
}

/// The value of a crypt-alphabet character, if it is one.
fn crypt_value(c: u8) -> Option<u32> {
    CRYPT_ALPHABET
        .iter()
        .position(|&a| a == c)
        .map(|i| i as u32)
}

/// Whether `s` has the form of a DES-crypt result: 13 characters of the crypt alphabet.
pub(crate) fn is_des_crypt(s: &str) -> bool {
    s.len() == 13 && s.bytes().all(|b| crypt_value(b).is_some())
}

/// `crypt(3)` with a two-character DES salt: the 13-character result. `None` when `salt` is not
/// two characters of the crypt alphabet.
pub(crate) fn des_crypt(password: &[u8], salt: &[u8]) -> Option<String> {
    let [s0, s1] = *salt.first_chunk::<2>()?;
    let salt_bits = crypt_value(s0)? | (crypt_value(s1)? << 6);

    // The expansion table with the salt's swaps.
    let mut e = E;
    for i in 0..12 {
        if salt_bits >> i & 1 == 1 {
            e.swap(i, i + 24);
        }
    }

    // Key: up to 8 bytes, each shifted left by one (the low bit is DES's unused parity bit).
    let key = (0..8).fold(0u64, |k, i| {
        (k << 8) | u64::from(password.get(i).copied().unwrap_or(0) << 1)
    });
    let cd = permute(key, 64, &PC1);
    let (mut c, mut d) = ((cd >> 28) as u32, (cd & 0x0fff_ffff) as u32);
    let mut subkeys = [0u64; 16];
    for (k, shift) in subkeys.iter_mut().zip(SHIFTS) {
        let rot = |v: u32| ((v << shift) | (v >> (28 - shift))) & 0x0fff_ffff;
        c = rot(c);
        d = rot(d);
        *k = permute((u64::from(c) << 28) | u64::from(d), 56, &PC2);
    }

    let fp: [u8; 64] = {
        let mut fp = [0u8; 64];
        for (to, &from) in IP.iter().enumerate() {
            fp[usize::from(from) - 1] = to as u8 + 1;
        }
        fp
    };

    let mut block = 0u64;
    for _ in 0..25 {
        let ip = permute(block, 64, &IP);
        let (mut l, mut r) = ((ip >> 32) as u32, ip as u32);
        for k in &subkeys {
            let x = permute(u64::from(r), 32, &e) ^ k;
            let mut sout = 0u64;
            for (i, sbox) in S.iter().enumerate() {
                let six = ((x >> (42 - 6 * i)) & 0x3f) as usize;
                let row = ((six >> 4) & 2) | (six & 1);
                let col = (six >> 1) & 0xf;
                sout = (sout << 4) | u64::from(sbox[row * 16 + col]);
            }
            let f = permute(sout, 32, &P) as u32;
            (l, r) = (r, l ^ f);
        }
        // The halves are swapped before the final permutation.
        block = permute((u64::from(r) << 32) | u64::from(l), 64, &fp);
    }

    let mut out = String::with_capacity(13);
    out.push(char::from(s0));
    out.push(char::from(s1));
    for i in 0..11 {
        // 66 bits: the 64 of the block and two zero bits.
        let shift = 64i32 - 6 * (i + 1);
        let six = if shift >= 0 {
            (block >> shift) & 0x3f
        } else {
            (block << -shift) & 0x3f
        };
        out.push(char::from(CRYPT_ALPHABET[six as usize]));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_crypt() {
        // Python 3.11 `crypt.crypt(password, salt)` (glibc) on this machine.
        for (password, salt, want) in [
            ("x", "ab", "abiQ6Ep3EYTHc"),
            ("", "..", "..X8NBuQ4l6uQ"),
            ("correct horse battery", "Zz", "ZziV3MgI7K8nk"),
        ] {
            assert_eq!(
                des_crypt(password.as_bytes(), salt.as_bytes()).as_deref(),
                Some(want),
                "{password:?} {salt:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_salts() {
        assert_eq!(des_crypt(b"x", b"a"), None);
        assert_eq!(des_crypt(b"x", b"a$"), None);
        assert!(is_des_crypt("abiQ6Ep3EYTHc"));
        assert!(!is_des_crypt("abiQ6Ep3EYTH"));
        assert!(!is_des_crypt("abiQ6Ep3EYTH$"));
    }
}
