//! A small seeded random number generator for shuffling and augmentation.
//!
//! Every random choice of a run is drawn from a stream named by `(seed, purpose, epoch,
//! batch)`, never from a generator carried across epochs, so a run resumed at any epoch
//! boundary draws exactly what the uninterrupted run drew, and the loader thread is
//! deterministic whatever its timing. The generator is SplitMix64 (Steele, Lea, Flood
//! 2014): tiny, fast and plenty for picking crops and permutations.

/// What a stream of random numbers is used for; part of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// The order of the training examples in one epoch.
    Shuffle = 1,
    /// Crops and flips of one batch.
    Augment = 2,
    /// libtorch's own generator (dropout), reseeded at each epoch.
    Torch = 3,
}

/// SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// The stream named by `seed` and `path` (e.g. `[Purpose::Augment as u64, epoch, batch]`).
    pub fn stream(seed: u64, path: &[u64]) -> Rng {
        let mut state = mix(seed ^ 0x5851_f42d_4c95_7f2d);
        for &p in path {
            state = mix(state ^ mix(p.wrapping_add(0x9e37_79b9_7f4a_7c15)));
        }
        Rng { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift (bias below 2^-32
    /// for the sizes used here).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// A uniform float in `[0, 1)` (53 random bits).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::stream(7, &[1, 2]);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::stream(7, &[1, 2]);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert_ne!(Rng::stream(7, &[1, 3]).next_u64(), a[0]);
        assert_ne!(Rng::stream(8, &[1, 2]).next_u64(), a[0]);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..1000).collect();
        Rng::stream(1, &[]).shuffle(&mut v);
        assert_ne!(v, (0..1000).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..1000).collect::<Vec<_>>());
        let mut r = Rng::stream(2, &[]);
        assert!((0..10_000).all(|_| r.below(10) < 10));
    }
}
