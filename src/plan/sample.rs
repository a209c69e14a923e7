//! Weighted sampling from recorded counts.

use rand::RngExt;
use rand::rngs::SmallRng;

/// Picks an index with probability proportional to its weight (cumulative
/// sums and a binary search: O(log n) per draw, no per-draw allocation).
#[derive(Clone, Debug, Default)]
pub struct Weighted {
    cumulative: Vec<f64>,
}

impl Weighted {
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Weighted {
        let mut total = 0.0;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w.max(0.0);
                total
            })
            .collect();
        Weighted { cumulative }
    }

    pub fn total(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(0.0)
    }

    pub fn is_empty(&self) -> bool {
        self.total() <= 0.0
    }

    /// An index, or `None` when every weight is zero.
    pub fn pick(&self, rng: &mut SmallRng) -> Option<usize> {
        let total = self.total();
        if total <= 0.0 {
            return None;
        }
        let u = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c <= u);
        Some(i.min(self.cumulative.len() - 1))
    }
}

/// A generator seeded from a run seed and a stream number, so that session
/// `n` of a run is the same whichever process or thread makes it.
pub fn rng_for(seed: u64, stream: u64) -> SmallRng {
    use rand::SeedableRng;
    SmallRng::seed_from_u64(mix(seed ^ mix(stream.wrapping_add(0x51_7cc1_b727_220a))))
}

/// splitmix64: a cheap, well-spread hash of a 64-bit value.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_weights() {
        let w = Weighted::new([1.0, 0.0, 3.0]);
        let mut rng = rng_for(1, 2);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[w.pick(&mut rng).unwrap()] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = counts[2] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.01, "{share}");
        assert!(Weighted::new([0.0, 0.0]).pick(&mut rng).is_none());
        assert!(Weighted::new([]).pick(&mut rng).is_none());
    }

    #[test]
    fn streams_are_reproducible() {
        let a: f64 = rng_for(7, 100).random();
        let b: f64 = rng_for(7, 100).random();
        let c: f64 = rng_for(7, 101).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
