//! The precomputed weighted pick: cumulative shares on a 2^32 scale.

/// Cumulative upper bounds of each version's share of `[0, 2^32)`.
///
/// Version `i` owns the points `[bounds[i-1], bounds[i])`: a weight of 0
/// owns nothing, and a 0.1% canary owns ~4.3 million points, so fractional
/// percents are exact enough. Because versions keep their order, a growing
/// canary only moves its lower bound, so sticky keys already on it stay
/// (the pick is monotone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickTable {
    bounds: Box<[u64]>,
}

/// Points on the pick scale: `[0, SCALE)`.
const SCALE: u64 = 1 << 32;

// === impl PickTable ===

impl PickTable {
    /// Builds the table; `None` when no weight is above zero.
    ///
    /// Weights must be finite and >= 0 (the compiler checks before).
    pub fn new(weights: &[f64]) -> Option<Self> {
        let total: f64 = weights.iter().sum();
        if total.is_nan() || total <= 0.0 || !total.is_finite() {
            return None;
        }
        let mut acc = 0.0;
        let mut bounds: Box<[u64]> = weights
            .iter()
            .map(|w| {
                acc += w;
                // `as` saturates; the last bound is forced to SCALE below.
                ((acc / total) * SCALE as f64).round() as u64
            })
            .collect();
        // Float rounding must not leave a gap at the top: the last version
        // with weight owns everything up to SCALE.
        if let Some(last) = weights.iter().rposition(|w| *w > 0.0) {
            for b in &mut bounds[last..] {
                *b = SCALE;
            }
        }
        Some(Self { bounds })
    }

    /// The version index owning `point` (taken modulo the scale).
    #[inline]
    pub fn pick(&self, point: u32) -> usize {
        let p = u64::from(point);
        // Routes have a handful of versions: a linear scan beats a binary
        // search and never allocates.
        self.bounds
            .iter()
            .position(|&b| p < b)
            .unwrap_or(self.bounds.len() - 1)
    }

    /// The share of version `i`, in [0, 1].
    pub fn share(&self, i: usize) -> f64 {
        let lo = if i == 0 { 0 } else { self.bounds[i - 1] };
        (self.bounds[i] - lo) as f64 / SCALE as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_weight_gets_no_point() {
        let t = PickTable::new(&[90.0, 0.0, 10.0]).unwrap();
        assert_eq!(t.share(1), 0.0);
        for p in [0u32, 1 << 31, u32::MAX] {
            assert_ne!(t.pick(p), 1);
        }
        assert_eq!(t.pick(u32::MAX), 2);
        assert_eq!(t.pick(0), 0);
    }

    #[test]
    fn fractional_canary_is_exact_enough() {
        let t = PickTable::new(&[99.9, 0.1]).unwrap();
        assert!((t.share(1) - 0.001).abs() < 1e-9);
    }

    #[test]
    fn growing_canary_keeps_its_points() {
        let small = PickTable::new(&[90.0, 10.0]).unwrap();
        let big = PickTable::new(&[75.0, 25.0]).unwrap();
        for p in (0..=u32::MAX).step_by(1 << 20) {
            if small.pick(p) == 1 {
                assert_eq!(big.pick(p), 1);
            }
        }
    }

    #[test]
    fn all_zero_is_refused() {
        assert!(PickTable::new(&[0.0, 0.0]).is_none());
        assert!(PickTable::new(&[]).is_none());
    }

    #[test]
    fn trailing_zero_weights_never_win() {
        let t = PickTable::new(&[1.0, 0.0]).unwrap();
        assert_eq!(t.pick(u32::MAX), 0);
    }
}
