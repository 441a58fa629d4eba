//! FNV-1a 64: the body checksum `/echo` and `/upload` report.
//!
//! Not cryptographic, and does not need to be: it only proves that the bytes
//! a test sent through the proxy are the bytes the fake version received,
//! without a hashing dependency.

use std::fmt;

/// An incremental FNV-1a 64-bit hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv64(u64);

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// The FNV-1a 64 hash of `data`, as `Fnv64::new().update(data).finish()`.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h = Fnv64::new();
    h.update(data);
    h.finish()
}

// === impl Fnv64 ===

impl Fnv64 {
    /// A hash of no bytes yet.
    pub fn new() -> Self {
        Self(OFFSET_BASIS)
    }

    /// Folds `data` into the hash; chunks give the same result as one slice.
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
        }
    }

    /// The hash of every byte folded in so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

/// Lowercase hex, 16 digits: the form the JSON bodies carry.
impl fmt::Display for Fnv64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn chunks_equal_whole() {
        let mut h = Fnv64::new();
        h.update(b"foo");
        h.update(b"bar");
        assert_eq!(h.finish(), fnv1a64(b"foobar"));
        assert_eq!(h.to_string(), "85944171f73967e8");
    }
}
