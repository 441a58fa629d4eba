//! Latency histograms: one shape everywhere (1 µs to 60 s, 3 significant
//! digits) and the packed form a folded slot keeps.
//!
//! A dense 3-digit histogram over that range is 17,408 counters (70 KB as
//! `u32`), almost all zero in any one second. A folded slot therefore keeps
//! only its non-zero buckets, as LEB128 varint pairs (bucket-index delta,
//! count): one to three bytes a pair, ~2 bytes typically, because the
//! indices of a second's samples sit close together.

use std::time::Duration;

use hdrhistogram::{Counter, Histogram};

/// The slowest latency kept apart; slower samples are counted as 60 s.
pub(crate) const MAX_MICROS: u64 = 60_000_000;

/// 3 significant digits: 2048 sub-buckets per power of two, of which the
/// upper 1024 (`2^HALF_BITS`) are new in every bucket after the first.
const SIGFIG: u8 = 3;
const HALF_BITS: u32 = 10;

/// A slot's non-zero buckets, packed (see the module doc). Empty when the
/// slot had no samples, which costs no allocation.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Packed(Box<[u8]>);

/// Decodes a [`Packed`] into (bucket index, count).
pub(crate) struct Unpack<'a> {
    bytes: &'a [u8],
    index: u64,
}

/// Counts by bucket index, for merging many packed slots: an array add per
/// pair instead of a `Histogram::record_n` (a 5-minute read at 1k rps
/// merges ~250k pairs), turned into a histogram once at the end.
pub(crate) struct Dense(Vec<u64>);

/// An empty histogram of the one shape.
pub(crate) fn new<T: Counter>() -> Histogram<T> {
    Histogram::new_with_bounds(1, MAX_MICROS, SIGFIG).expect("constant bounds are valid")
}

/// A latency in µs, clamped to the histogram's range.
#[inline]
pub(crate) fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .min(MAX_MICROS)
}

/// The hdrhistogram counts index of `value` for our shape (unit 1 µs,
/// 3 digits). Mirrors `Histogram::index_for`, which is private; a test
/// checks the two agree over the whole range.
fn index_of(value: u64) -> u64 {
    let sub_mask = (1u64 << (HALF_BITS + 1)) - 1;
    let bucket = u64::from(63 - (value | sub_mask).leading_zeros() - HALF_BITS);
    (bucket << HALF_BITS) + (value >> bucket)
}

/// The lowest value recorded at `index` (inverse of [`index_of`]).
fn value_of(index: u64) -> u64 {
    if index < 1 << (HALF_BITS + 1) {
        return index;
    }
    let bucket = (index >> HALF_BITS) - 1;
    (index - (bucket << HALF_BITS)) << bucket
}

fn put(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

// === impl Packed ===

impl Packed {
    /// Packs `hist`'s non-zero buckets; `buf` is scratch space reused
    /// across calls so the only allocation is the exact-size result.
    pub(crate) fn pack(hist: &Histogram<u32>, buf: &mut Vec<u8>) -> Self {
        if hist.is_empty() {
            return Self::default();
        }
        buf.clear();
        let mut prev = 0;
        for v in hist.iter_recorded() {
            let index = index_of(v.value_iterated_to());
            put(buf, index - prev);
            put(buf, u64::from(v.count_at_value()));
            prev = index;
        }
        Self(buf.as_slice().into())
    }

    /// (bucket index, count) pairs, lowest first.
    fn indexed(&self) -> Unpack<'_> {
        Unpack {
            bytes: &self.0,
            index: 0,
        }
    }

    /// (lowest value of the bucket in µs, count) pairs, lowest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.indexed()
            .map(|(index, count)| (value_of(index), count))
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.len()
    }
}

// === impl Unpack ===

impl Unpack<'_> {
    fn take(&mut self) -> u64 {
        let mut v = 0;
        let mut shift = 0;
        while let Some((&b, rest)) = self.bytes.split_first() {
            self.bytes = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        v
    }
}

impl Iterator for Unpack<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        if self.bytes.is_empty() {
            return None;
        }
        self.index += self.take();
        let count = self.take();
        Some((self.index, count))
    }
}

// === impl Dense ===

impl Dense {
    pub(crate) fn new() -> Self {
        Self(vec![0; index_of(MAX_MICROS) as usize + 1])
    }

    pub(crate) fn add(&mut self, packed: &Packed) {
        for (index, count) in packed.indexed() {
            if let Some(c) = usize::try_from(index).ok().and_then(|i| self.0.get_mut(i)) {
                *c += count;
            }
        }
    }

    pub(crate) fn drain_into(&mut self, hist: &mut Histogram<u64>) {
        for (index, c) in (0u64..).zip(self.0.iter_mut()) {
            if *c > 0 {
                hist.saturating_record_n(value_of(index), std::mem::take(c));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_hdrhistogram_buckets() {
        let h = new::<u64>();
        let mut v = 0;
        while v <= MAX_MICROS {
            assert_eq!(value_of(index_of(v)), h.lowest_equivalent(v), "value {v}");
            assert_eq!(index_of(h.highest_equivalent(v)), index_of(v), "value {v}");
            v += 1 + v / 997;
        }
        assert!(index_of(MAX_MICROS) < h.distinct_values() as u64);
    }

    #[test]
    fn pack_round_trips() {
        let mut h = new::<u32>();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..10_000 {
            h.record(rng.u64(0..=MAX_MICROS) >> rng.u32(0..26)).unwrap();
        }
        h.record_n(MAX_MICROS, 300_000).unwrap();
        let packed = Packed::pack(&h, &mut Vec::new());
        let mut back = new::<u64>();
        for (value, count) in packed.iter() {
            back.record_n(value, count).unwrap();
        }
        assert_eq!(back.len(), h.len());
        for q in [0.0, 10.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            assert_eq!(
                back.value_at_percentile(q),
                h.value_at_percentile(q),
                "p{q}"
            );
        }
    }

    #[test]
    fn empty_packs_to_nothing() {
        let packed = Packed::pack(&new(), &mut Vec::new());
        assert_eq!(packed.heap_bytes(), 0);
        assert_eq!(packed.iter().count(), 0);
    }
}
