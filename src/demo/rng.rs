//! The demo's randomness: the shapes its traffic and owners are drawn from
//! (chances, uniform spans, weights, Zipf popularity, exponential waits)
//! over `fastrand`'s generator. Each run is seeded afresh; a fixed seed
//! ([`Rng::with_seed`]) gives the same draws every time, for tests.

/// A generator with the draws the demo needs.
pub(super) struct Rng(fastrand::Rng);

impl Rng {
    /// Seeded afresh: every demo run (and every thread) draws differently.
    pub(super) fn new() -> Self {
        Self(fastrand::Rng::new())
    }

    /// The same draws for the same seed.
    #[cfg(test)]
    pub(super) fn with_seed(seed: u64) -> Self {
        Self(fastrand::Rng::with_seed(seed))
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0.u64(..)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        self.0.f64()
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [lo, hi).
    pub(super) fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in 0..n (0 when `n` is 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        self.0.usize(..n.max(1))
    }

    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// One of `items` by weight.
    pub(super) fn weighted<T: Copy>(&mut self, items: &[(T, f64)]) -> T {
        let total: f64 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.unit() * total;
        for (item, w) in items {
            if x < *w {
                return *item;
            }
            x -= w;
        }
        items[items.len() - 1].0
    }

    /// A rank in 0..n with Zipf-like popularity (exponent `s`): the
    /// continuous power law's inverse CDF, floored.
    pub(super) fn zipf(&mut self, n: usize, s: f64) -> usize {
        let u = self.unit();
        let n_f = n as f64;
        let x = if (s - 1.0).abs() < 1e-9 {
            n_f.powf(u)
        } else {
            let e = 1.0 - s;
            ((n_f.powf(e) - 1.0) * u + 1.0).powf(1.0 / e)
        };
        (x as usize).clamp(1, n) - 1
    }

    /// Exponentially distributed, mean `mean` seconds.
    pub(super) fn exp_secs(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn zipf_stays_in_range_and_favours_the_head() {
        let mut rng = Rng::with_seed(7);
        let mut head = 0;
        for _ in 0..10_000 {
            let r = rng.zipf(1000, 1.0);
            assert!(r < 1000);
            if r < 10 {
                head += 1;
            }
        }
        assert!(head > 2000, "{head}");
    }

    #[test]
    fn the_same_seed_draws_the_same() {
        let (mut a, mut b) = (Rng::with_seed(42), Rng::with_seed(42));
        let draw = |r: &mut Rng| (r.next_u64(), r.below(10), r.weighted(&[("a", 1.0), ("b", 2.0)]), r.zipf(100, 0.4));
        for _ in 0..100 {
            assert_eq!(draw(&mut a), draw(&mut b));
        }
    }
}
